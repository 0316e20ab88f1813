// Package codec is the deterministic CBOR used on the chain: Core
// Deterministic Encoding (RFC 8949 section 4.2.1) for output and strict,
// canonical-only decoding for input.
package codec

import (
	"bytes"
	"errors"
	"fmt"
	"sync"

	"github.com/fxamacker/cbor/v2"
)

// ErrNonCanonical is returned when input decodes but is not in Core
// Deterministic Encoding, so that every transaction has exactly one encoding
// (and one hash).
var ErrNonCanonical = errors.New("cbor is not in core deterministic encoding")

type modes struct {
	enc cbor.EncMode
	dec cbor.DecMode
}

// codec builds the encoding modes once; the options are constants, so an
// error here is a programming error that every call reports.
var codec = sync.OnceValues(func() (modes, error) {
	eo := cbor.CoreDetEncOptions()
	eo.ByteArray = cbor.ByteArrayToByteSlice
	eo.IndefLength = cbor.IndefLengthForbidden
	eo.TagsMd = cbor.TagsForbidden
	enc, err := eo.EncMode()
	if err != nil {
		return modes{}, fmt.Errorf("cbor encoding options: %w", err)
	}
	do := cbor.DecOptions{
		DupMapKey:         cbor.DupMapKeyEnforcedAPF,
		IndefLength:       cbor.IndefLengthForbidden,
		TagsMd:            cbor.TagsForbidden,
		ExtraReturnErrors: cbor.ExtraDecErrorUnknownField,
		MaxNestedLevels:   16,
		MaxArrayElements:  4096,
		MaxMapPairs:       256,
		UTF8:              cbor.UTF8RejectInvalid,
	}
	dec, err := do.DecMode()
	if err != nil {
		return modes{}, fmt.Errorf("cbor decoding options: %w", err)
	}
	return modes{enc: enc, dec: dec}, nil
})

// Marshal encodes v in Core Deterministic Encoding.
func Marshal(v any) ([]byte, error) {
	m, err := codec()
	if err != nil {
		return nil, err
	}
	return m.enc.Marshal(v)
}

// Unmarshal decodes data into v strictly: duplicate keys, unknown fields,
// indefinite lengths, tags, trailing bytes and non-canonical encodings are
// all rejected.
func Unmarshal(data []byte, v any) error {
	m, err := codec()
	if err != nil {
		return err
	}
	if err := m.dec.Unmarshal(data, v); err != nil {
		return err
	}
	again, err := m.enc.Marshal(v)
	if err != nil {
		return fmt.Errorf("re-encode: %w", err)
	}
	if !bytes.Equal(again, data) {
		return ErrNonCanonical
	}
	return nil
}
