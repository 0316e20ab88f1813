package ed25519x_test

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"testing"

	"filippo.io/edwards25519"

	"github.com/integritee-go/integritee/internal/ed25519x"
	"github.com/integritee-go/integritee/internal/ed25519x/ed25519xtest"
)

// fieldP returns the little-endian encoding of p+k (p = 2^255-19): for
// k < 19 a non-canonical encoding of y = k.
func fieldP(k byte) []byte {
	b := bytes.Repeat([]byte{0xff}, 32)
	b[0] = 0xed + k
	b[31] = 0x7f
	return b
}

// TestSmallOrderTable checks the table itself, so that the tests below
// test what they claim: each entry is a canonical encoding of a point
// whose cofactor multiple is the identity, and they are eight distinct
// points.
func TestSmallOrderTable(t *testing.T) {
	seen := map[[32]byte]bool{}
	for _, tc := range ed25519xtest.SmallOrder {
		p, err := new(edwards25519.Point).SetBytes(tc.Key[:])
		if err != nil {
			t.Fatalf("%s: %v", tc.Name, err)
		}
		if !bytes.Equal(p.Bytes(), tc.Key[:]) {
			t.Fatalf("%s: not canonical", tc.Name)
		}
		if new(edwards25519.Point).MultByCofactor(p).Equal(edwards25519.NewIdentityPoint()) != 1 {
			t.Fatalf("%s: not of small order", tc.Name)
		}
		seen[tc.Key] = true
	}
	if len(seen) != 8 {
		t.Fatalf("%d distinct points, want 8", len(seen))
	}
	for _, tc := range ed25519xtest.NonCanonical {
		p, err := new(edwards25519.Point).SetBytes(tc.Key[:])
		if err != nil {
			t.Fatalf("%s: %v", tc.Name, err)
		}
		if !seen[[32]byte(p.Bytes())] || bytes.Equal(p.Bytes(), tc.Key[:]) {
			t.Fatalf("%s: not a non-canonical alias of a small-order point", tc.Name)
		}
	}
}

// TestForgedSignatureUnderSmallOrderKey is finding 1 of issue 9: for every
// small-order key, including the all-zero address that production genesis
// used as "no sudo", and for non-canonical aliases of them, crypto/ed25519
// accepts signatures that nobody made, and Verify refuses them.
func TestForgedSignatureUnderSmallOrderKey(t *testing.T) {
	keys := append(slices.Clone(ed25519xtest.SmallOrder), ed25519xtest.NonCanonical...)
	for _, tc := range keys {
		t.Run(tc.Name, func(t *testing.T) {
			pub := tc.Key[:]
			forged := 0
			for i := range 32 {
				msg := fmt.Appendf(nil, "accounts.set_balance #%d", i)
				sig := ed25519xtest.Forge(pub, msg)
				if sig == nil {
					continue
				}
				forged++
				// The attack works on the standard library; without this
				// the refusal below would prove nothing.
				if !ed25519.Verify(pub, msg, sig) {
					t.Fatalf("crypto/ed25519 refuses the forgery of %q", msg)
				}
				if ed25519x.Verify(pub, msg, sig) {
					t.Fatalf("Verify accepts a forged signature of %q", msg)
				}
			}
			if forged == 0 {
				t.Fatal("no message forged")
			}
			t.Logf("%d of 32 messages forged against crypto/ed25519", forged)
		})
	}
}

func TestCheckPublicKey(t *testing.T) {
	notOnCurve := func() []byte {
		for y := uint64(2); ; y++ {
			b := make([]byte, 32)
			binary.LittleEndian.PutUint64(b, y)
			if _, err := new(edwards25519.Point).SetBytes(b); err != nil {
				return b
			}
		}
	}()
	// A non-canonical encoding (y = p+k) of a point of large order, so that
	// only the canonical check refuses it.
	aliasLarge := func() []byte {
		for k := byte(2); k < 19; k++ {
			b := fieldP(k)
			p, err := new(edwards25519.Point).SetBytes(b)
			if err == nil && new(edwards25519.Point).MultByCofactor(p).Equal(edwards25519.NewIdentityPoint()) == 0 {
				return b
			}
		}
		t.Fatal("no non-canonical encoding of a large-order point")
		return nil
	}()
	pub, _, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		pub  []byte
		want error
	}{
		{"generated key", pub, nil},
		{"dev key", func() []byte {
			seed := sha256.Sum256([]byte("//Alice"))
			return ed25519.NewKeyFromSeed(seed[:]).Public().(ed25519.PublicKey)
		}(), nil},
		{"empty", nil, ed25519x.ErrKeySize},
		{"31 bytes", pub[:31], ed25519x.ErrKeySize},
		{"33 bytes", append(bytes.Clone(pub), 0), ed25519x.ErrKeySize},
		{"not on the curve", notOnCurve, ed25519x.ErrKeyNotOnCurve},
		{"y = p+k, large order", aliasLarge, ed25519x.ErrKeyNonCanonical},
	}
	for _, tc := range ed25519xtest.SmallOrder {
		tests = append(tests, struct {
			name string
			pub  []byte
			want error
		}{tc.Name, tc.Key[:], ed25519x.ErrKeySmallOrder})
	}
	for _, tc := range ed25519xtest.NonCanonical {
		tests = append(tests, struct {
			name string
			pub  []byte
			want error
		}{tc.Name, tc.Key[:], ed25519x.ErrKeyNonCanonical})
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := ed25519x.CheckPublicKey(tc.pub); !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
}

func TestVerify(t *testing.T) {
	pub, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	msg := []byte("integritee")
	sig := ed25519.Sign(priv, msg)
	if !ed25519x.Verify(pub, msg, sig) {
		t.Fatal("honest signature refused")
	}

	// S + L is the same scalar, non-canonically encoded: a second valid
	// looking signature for the same message unless S < L is enforced.
	l, _ := new(big.Int).SetString("7237005577332262213973186563042994240857116359379907606001950938285454250989", 10)
	s := new(big.Int).SetBytes(reverse(sig[32:]))
	s.Add(s, l)
	malleated := append(bytes.Clone(sig[:32]), reverse(s.FillBytes(make([]byte, 32)))...)
	if ed25519.Verify(pub, msg, malleated) {
		t.Error("crypto/ed25519 accepts S >= L")
	}

	tests := []struct {
		name          string
		pub, msg, sig []byte
	}{
		{"other message", pub, []byte("integritee!"), sig},
		{"flipped bit", pub, msg, flip(sig, 5)},
		{"S >= L", pub, msg, malleated},
		{"short signature", pub, msg, sig[:63]},
		{"long signature", pub, msg, append(bytes.Clone(sig), 0)},
		{"no signature", pub, msg, nil},
		{"short key", pub[:31], msg, sig},
		{"no key", nil, msg, sig},
		{"other key", flip(pub, 0), msg, sig},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if ed25519x.Verify(tc.pub, tc.msg, tc.sig) {
				t.Fatal("accepted")
			}
		})
	}
}

func reverse(b []byte) []byte {
	r := make([]byte, len(b))
	for i := range b {
		r[len(b)-1-i] = b[i]
	}
	return r
}

func flip(b []byte, i int) []byte {
	c := bytes.Clone(b)
	c[i] ^= 1
	return c
}
