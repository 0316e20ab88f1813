package runtime

import (
	"fmt"

	"github.com/integritee-go/integritee/chain/codec"
	"github.com/integritee-go/integritee/chain/store"
)

// Get decodes the CBOR value at key into v and reports whether there was
// one. Modules keep their state as canonical CBOR values under their keys.
func Get(r store.Reader, key []byte, v any) (bool, error) {
	b, err := r.Get(key)
	if err != nil || b == nil {
		return false, err
	}
	if err := codec.Unmarshal(b, v); err != nil {
		return false, fmt.Errorf("decode state %q: %w", key, err)
	}
	return true, nil
}

// Put stores v at key as canonical CBOR.
func Put(kv store.KV, key []byte, v any) error {
	b, err := codec.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode state %q: %w", key, err)
	}
	kv.Set(key, b)
	return nil
}
