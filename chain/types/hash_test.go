package types_test

import (
	"bytes"
	"errors"
	"testing"

	"github.com/integritee-go/integritee/chain/codec"
	"github.com/integritee-go/integritee/chain/types"
)

// A Hash is a CBOR byte string of its 32 bytes, in a struct or alone, as
// the array it is would be (MarshalBinary only makes the codec copy the
// bytes at once); a byte string of another length is refused.
func TestHashCBOR(t *testing.T) {
	h := types.Hash{1, 2, 3, 31: 0xff}
	type rec struct {
		H types.Hash `cbor:"h"`
		A [32]byte   `cbor:"a"`
	}
	got, err := codec.Marshal(rec{H: h, A: h})
	if err != nil {
		t.Fatal(err)
	}
	str := append([]byte{0x58, 0x20}, h[:]...)
	want := append(append(append(append([]byte{0xa2, 0x61, 'a'}, str...), 0x61), 'h'), str...)
	if !bytes.Equal(got, want) {
		t.Fatalf("encoding %x, want %x", got, want)
	}
	var back rec
	if err := codec.Unmarshal(got, &back); err != nil || back.H != h || back.A != h {
		t.Fatalf("decoded %+v, %v", back, err)
	}
	for _, n := range []int{0, 31, 33} {
		b := append([]byte{0x58, byte(n)}, make([]byte, n)...)
		if n < 24 {
			b = append([]byte{0x40 | byte(n)}, make([]byte, n)...)
		}
		var x types.Hash
		if err := codec.Unmarshal(b, &x); err == nil {
			t.Errorf("a byte string of %d bytes decoded as a hash: %x", n, x)
		}
	}
	if err := new(types.Hash).UnmarshalBinary(make([]byte, 31)); err == nil || errors.Is(err, codec.ErrNonCanonical) {
		t.Errorf("UnmarshalBinary of 31 bytes: %v", err)
	}
}

// BenchmarkHashCodec encodes and decodes a struct of five hashes (a
// sidechain header's share of them).
func BenchmarkHashCodec(b *testing.B) {
	type hdr struct {
		A, B, C, D, E types.Hash
		N             uint64
	}
	v := hdr{A: types.Hash{1}, B: types.Hash{2}, C: types.Hash{3}, D: types.Hash{4}, E: types.Hash{5}, N: 7}
	enc, err := codec.Marshal(v)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("marshal", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := codec.Marshal(v); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("unmarshal", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var x hdr
			if err := codec.Unmarshal(enc, &x); err != nil {
				b.Fatal(err)
			}
		}
	})
}
