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
