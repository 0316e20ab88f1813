package protocol

import (
	"bytes"
	"testing"

	"github.com/integritee-go/integritee/enclave/internal/testchain"
)

func TestCometRoundTrip(t *testing.T) {
	c := testchain.New("c", 3, "v")
	b := c.Add([][]byte{[]byte("tx")}, nil)
	sh, err := EncodeSignedHeader(b.Header)
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodeSignedHeader(sh, "c")
	if err != nil || !bytes.Equal(got.Hash(), b.Header.Hash()) {
		t.Fatalf("header round trip: %v", err)
	}
	if _, err := DecodeSignedHeader(sh, "other"); err == nil {
		t.Fatal("header of another chain accepted")
	}
	vs, err := EncodeValidatorSet(c.Vals)
	if err != nil {
		t.Fatal(err)
	}
	gv, err := DecodeValidatorSet(vs)
	if err != nil || !bytes.Equal(gv.Hash(), c.Vals.Hash()) {
		t.Fatalf("validators round trip: %v", err)
	}
	for _, bad := range [][]byte{nil, {0xff}, sh[:len(sh)/2]} {
		if _, err := DecodeSignedHeader(bad, "c"); err == nil {
			t.Errorf("header %x accepted", bad)
		}
		if _, err := DecodeValidatorSet(bad); err == nil {
			t.Errorf("validators %x accepted", bad)
		}
	}
}

// FuzzDecodeComet feeds arbitrary bytes to the CometBFT decoders the enclave
// runs on host input: errors, never panics.
func FuzzDecodeComet(f *testing.F) {
	c := testchain.New("c", 2, "v")
	b := c.Add(nil, nil)
	sh, _ := EncodeSignedHeader(b.Header)
	vs, _ := EncodeValidatorSet(c.Vals)
	f.Add(sh)
	f.Add(vs)
	f.Fuzz(func(t *testing.T, data []byte) {
		DecodeSignedHeader(data, "c")
		DecodeValidatorSet(data)
	})
}
