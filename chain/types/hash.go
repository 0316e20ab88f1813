package types

import (
	"bytes"
	"encoding/hex"
	"fmt"
)

// Hash is a 32-byte value: a measurement (MRENCLAVE, MRSIGNER) or a digest.
// CBOR carries it as a byte string, JSON as lower-case hex.
type Hash [32]byte

// String returns h as lower-case hex.
func (h Hash) String() string { return hex.EncodeToString(h[:]) }

// MarshalText encodes h as hex (JSON genesis and query output).
func (h Hash) MarshalText() ([]byte, error) { return []byte(h.String()), nil }

// UnmarshalText decodes exactly 64 hex characters.
func (h *Hash) UnmarshalText(b []byte) error {
	p, err := ParseHash(string(b))
	if err != nil {
		return err
	}
	*h = p
	return nil
}

// MarshalBinary returns h's bytes. The CBOR codec encodes a type with
// this method as a byte string of them, the same bytes as for the array
// itself, but copies them at once: it encodes and decodes a byte array one
// element at a time through reflection, which was ~5% of an enclave's CPU
// under direct calls (docs/performance.md).
func (h Hash) MarshalBinary() ([]byte, error) { return h[:], nil }

// UnmarshalBinary sets h from exactly 32 bytes.
func (h *Hash) UnmarshalBinary(b []byte) error {
	if len(b) != len(h) {
		return fmt.Errorf("hash: want %d bytes, got %d", len(h), len(b))
	}
	copy(h[:], b)
	return nil
}

// ParseHash decodes a hex hash of exactly 32 bytes.
func ParseHash(s string) (Hash, error) {
	var h Hash
	if len(s) != 2*len(h) {
		return h, fmt.Errorf("hash %q: want %d hex characters, got %d", s, 2*len(h), len(s))
	}
	if _, err := hex.Decode(h[:], []byte(s)); err != nil {
		return h, fmt.Errorf("hash %q: %w", s, err)
	}
	return h, nil
}

// Compare orders hashes bytewise, for sorted sets of hashes.
func (h Hash) Compare(o Hash) int { return bytes.Compare(h[:], o[:]) }
