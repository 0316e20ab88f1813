// Package codec is the project's deterministic CBOR: Core Deterministic
// Encoding (RFC 8949 section 4.2.1) for output and strict, canonical-only
// decoding for input. The chain's transactions and the enclave protocol use
// it with different size limits.
package codec

import (
	"bytes"
	"errors"
	"fmt"
	"sync"

	"github.com/fxamacker/cbor/v2"
	"github.com/integritee-go/integritee/internal/bufpool"
)

// ErrNonCanonical is returned when input decodes but is not in Core
// Deterministic Encoding, so that every value has exactly one encoding (and
// one hash). Re-encoding also catches what the decoder lets pass silently,
// such as a byte string of the wrong length for a fixed-size array.
var ErrNonCanonical = errors.New("cbor is not in core deterministic encoding")

// Limits bound what a decoder accepts, against inputs built to exhaust
// memory.
type Limits struct {
	MaxArrayElements int
	MaxMapPairs      int
}

// chainLimits are the limits of chain transactions and state.
var chainLimits = Limits{MaxArrayElements: 4096, MaxMapPairs: 256}

// Codec encodes and decodes with fixed limits.
type Codec struct {
	enc cbor.EncMode
	dec cbor.DecMode
	// check is enc writing into a buffer of bufs: Unmarshal's re-encode
	// is compared and dropped, so it needs no allocation of its own
	// (Marshal's result was a tenth of the worker's allocations under
	// load, mostly from this check).
	check cbor.UserBufferEncMode
	bufs  *bufpool.Pool
}

// maxPooledCheck bounds the buffers Unmarshal keeps for its re-encode: a
// rare large message does not pin its buffer. An enclave reply of a
// direct batch is 50-500 KiB, and its re-encode was 8% of the worker's
// allocations under 10,000 clients at a limit of 64 KiB.
const maxPooledCheck = 1 << 20

// New returns a codec with the given decoding limits.
func New(l Limits) (*Codec, error) {
	eo := cbor.CoreDetEncOptions()
	eo.ByteArray = cbor.ByteArrayToByteSlice
	eo.IndefLength = cbor.IndefLengthForbidden
	eo.TagsMd = cbor.TagsForbidden
	enc, err := eo.EncMode()
	if err != nil {
		return nil, fmt.Errorf("cbor encoding options: %w", err)
	}
	check, err := eo.UserBufferEncMode()
	if err != nil {
		return nil, fmt.Errorf("cbor encoding options: %w", err)
	}
	do := cbor.DecOptions{
		DupMapKey:         cbor.DupMapKeyEnforcedAPF,
		IndefLength:       cbor.IndefLengthForbidden,
		TagsMd:            cbor.TagsForbidden,
		ExtraReturnErrors: cbor.ExtraDecErrorUnknownField,
		MaxNestedLevels:   16,
		MaxArrayElements:  l.MaxArrayElements,
		MaxMapPairs:       l.MaxMapPairs,
		UTF8:              cbor.UTF8RejectInvalid,
	}
	dec, err := do.DecMode()
	if err != nil {
		return nil, fmt.Errorf("cbor decoding options: %w", err)
	}
	return &Codec{enc: enc, dec: dec, check: check, bufs: bufpool.New(maxPooledCheck)}, nil
}

// Marshal encodes v in Core Deterministic Encoding.
func (c *Codec) Marshal(v any) ([]byte, error) { return c.enc.Marshal(v) }

// MarshalTo appends Marshal's encoding of v to buf.
func (c *Codec) MarshalTo(buf *bytes.Buffer, v any) error { return c.check.MarshalToBuffer(v, buf) }

// Unmarshal decodes data into v strictly: duplicate keys, unknown fields,
// indefinite lengths, tags, trailing bytes and non-canonical encodings are
// all rejected.
func (c *Codec) Unmarshal(data []byte, v any) error {
	if err := c.dec.Unmarshal(data, v); err != nil {
		return err
	}
	buf := c.bufs.Get()
	defer c.bufs.Put(buf)
	if err := c.check.MarshalToBuffer(v, buf); err != nil {
		return fmt.Errorf("re-encode: %w", err)
	}
	if !bytes.Equal(buf.Bytes(), data) {
		return ErrNonCanonical
	}
	return nil
}

// chain is built once; its options are constants, so an error is a
// programming error that every call reports.
var chain = sync.OnceValues(func() (*Codec, error) { return New(chainLimits) })

// Marshal encodes v with the chain's codec.
func Marshal(v any) ([]byte, error) {
	c, err := chain()
	if err != nil {
		return nil, err
	}
	return c.Marshal(v)
}

// Unmarshal decodes data into v with the chain's codec.
func Unmarshal(data []byte, v any) error {
	c, err := chain()
	if err != nil {
		return err
	}
	return c.Unmarshal(data, v)
}
