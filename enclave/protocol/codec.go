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
// be resynchronised without reading the oversized frame. A panic while
// handling a request is answered with CodeInternal ("restart required")
// and ends serving (ErrHandlerPanic): the handler's state may be
// half-changed, so the enclave process exits and the host starts a fresh
// one from its persisted state.
//
// Nothing in this package carries private key material: keys leave the
// enclave only sealed (SealedKeys), state only encrypted (Entry).
package protocol

import (
	"sync"

	"github.com/integritee-go/integritee/chain/codec"
)

// protocolCodec is the project's deterministic CBOR with the protocol's
// limits: a block may carry many transactions and a state load many
// entries; the frame size limit bounds the total anyway.
var protocolCodec = sync.OnceValues(func() (*codec.Codec, error) {
	return codec.New(codec.Limits{MaxArrayElements: 1 << 20, MaxMapPairs: 64})
})

// Marshal encodes v in Core Deterministic Encoding.
func Marshal(v any) ([]byte, error) {
	c, err := protocolCodec()
	if err != nil {
		return nil, err
	}
	return c.Marshal(v)
}

// Unmarshal decodes data into v strictly: duplicate keys, unknown fields,
// indefinite lengths, tags, trailing bytes and non-canonical encodings
// (codec.ErrNonCanonical) are rejected.
func Unmarshal(data []byte, v any) error {
	c, err := protocolCodec()
	if err != nil {
		return err
	}
	return c.Unmarshal(data, v)
}
