// Package protocol is the wire protocol between the untrusted worker host and
// the trusted enclave: length-prefixed, versioned, deterministic-CBOR
// request and reply frames over any byte stream (a pipe to the enclave child
// process, a Unix socket, or net.Pipe in tests).
//
// A frame is a 4-byte big-endian length followed by that many bytes of CBOR:
// an envelope {v: version, id: request id, t: message type, b: body}. Every
// request is one of the typed messages of this package; every reply is
// either the request's typed reply or an *Error {code, message}. The server
// answers a malformed frame (bad CBOR, unknown type, wrong version) with an
// error reply and keeps serving; a frame longer than the limit is refused
// with an error reply and the connection is closed, since the stream cannot
// be resynchronised without reading the oversized frame.
//
// Nothing in this package carries private key material: keys leave the
// enclave only sealed (SealedKeys), state only encrypted (Entry).
package protocol

import (
	"bytes"
	"errors"
	"fmt"
	"sync"

	"github.com/fxamacker/cbor/v2"
)

// ErrNonCanonical is returned for CBOR that decodes but is not in Core
// Deterministic Encoding. Re-encoding also catches what the decoder lets
// pass silently, such as a byte string of the wrong length for a fixed-size
// array.
var ErrNonCanonical = errors.New("cbor is not in core deterministic encoding")

type modes struct {
	enc cbor.EncMode
	dec cbor.DecMode
}

// codec builds the CBOR modes once; the options are constants, so an error
// is a programming error that every call reports.
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
		// A block may carry many transactions and a state load many
		// entries; the frame size limit bounds the total anyway.
		MaxArrayElements: 1 << 20,
		MaxMapPairs:      64,
		UTF8:             cbor.UTF8RejectInvalid,
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
// rejected.
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
