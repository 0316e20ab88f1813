package ed25519x_test

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	"testing"

	"filippo.io/edwards25519"

	"github.com/integritee-go/integritee/internal/ed25519x"
)

// smallOrder are the canonical encodings of the eight points of small
// order (the torsion subgroup), as listed in "Taming the many EdDSAs"
// (Chalkias et al., 2020).
var smallOrder = []struct {
	name, hex string
}{
	{"identity (order 1)", "0100000000000000000000000000000000000000000000000000000000000000"},
	{"y=-1 (order 2)", "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f"},
	{"all-zero y=0 (order 4)", "0000000000000000000000000000000000000000000000000000000000000000"},
	{"y=0 negative x (order 4)", "0000000000000000000000000000000000000000000000000000000000000080"},
	{"order 8 a", "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a"},
	{"order 8 b", "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa"},
	{"order 8 c", "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05"},
	{"order 8 d", "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc85"},
}

// fieldP returns the little-endian encoding of p+k (p = 2^255-19), with
// the sign bit set if neg: for k < 19 a non-canonical encoding of y = k.
func fieldP(k byte, neg bool) []byte {
	b := bytes.Repeat([]byte{0xff}, 32)
	b[0] = 0xed + k
	b[31] = 0x7f
	if neg {
		b[31] |= 0x80
	}
	return b
}

func mustHex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// forge looks for a signature of msg under pub made without any private
// key: S = 0 and R a small-order point. ed25519.Verify computes
// R' = [S]B - [k]A = -[k]A, which for a small-order A is itself one of the
// small-order points, so one of them is R for many messages.
func forge(t *testing.T, pub, msg []byte) []byte {
	t.Helper()
	for _, r := range smallOrder {
		sig := append(mustHex(t, r.hex), make([]byte, 32)...)
		if ed25519.Verify(ed25519.PublicKey(pub), msg, sig) {
			return sig
		}
	}
	return nil
}

// TestSmallOrderTable checks the table itself, so that the tests below
// test what they claim: each entry is a canonical encoding of a point
// whose cofactor multiple is the identity, and they are eight distinct
// points.
func TestSmallOrderTable(t *testing.T) {
	seen := map[string]bool{}
	for _, tc := range smallOrder {
		b := mustHex(t, tc.hex)
		p, err := new(edwards25519.Point).SetBytes(b)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if !bytes.Equal(p.Bytes(), b) {
			t.Fatalf("%s: not canonical", tc.name)
		}
		if new(edwards25519.Point).MultByCofactor(p).Equal(edwards25519.NewIdentityPoint()) != 1 {
			t.Fatalf("%s: not of small order", tc.name)
		}
		seen[tc.hex] = true
	}
	if len(seen) != 8 {
		t.Fatalf("%d distinct points, want 8", len(seen))
	}
}

// TestForgedSignatureUnderSmallOrderKey is finding 1 of issue 9: for every
// small-order key, including the all-zero address that production genesis
// used as "no sudo", crypto/ed25519 accepts signatures that nobody made,
// and Verify refuses them.
func TestForgedSignatureUnderSmallOrderKey(t *testing.T) {
	for _, tc := range smallOrder {
		t.Run(tc.name, func(t *testing.T) {
			pub := mustHex(t, tc.hex)
			if err := ed25519x.CheckPublicKey(pub); !errors.Is(err, ed25519x.ErrKeySmallOrder) {
				t.Fatalf("CheckPublicKey: %v, want %v", err, ed25519x.ErrKeySmallOrder)
			}
			forged := 0
			for i := range 32 {
				msg := []byte(fmt.Sprintf("accounts.set_balance #%d", i))
				sig := forge(t, pub, msg)
				if sig == nil {
					continue
				}
				forged++
				if ed25519x.Verify(pub, msg, sig) {
					t.Fatalf("Verify accepts a forged signature of %q", msg)
				}
			}
			// The attack works on the standard library: if this fails, the
			// forgery above proved nothing.
			if forged == 0 {
				t.Fatal("no forgery found: crypto/ed25519 no longer accepts small-order keys?")
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
			b := fieldP(k, false)
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
		{"y = p (alias of the all-zero key)", fieldP(0, false), ed25519x.ErrKeyNonCanonical},
		{"y = p, sign set", fieldP(0, true), ed25519x.ErrKeyNonCanonical},
		{"y = p+1 (alias of the identity)", fieldP(1, false), ed25519x.ErrKeyNonCanonical},
		{"identity, x = -0", mustHex(t, "0100000000000000000000000000000000000000000000000000000000000080"), ed25519x.ErrKeyNonCanonical},
		{"y = -1, x = -0", mustHex(t, "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff"), ed25519x.ErrKeyNonCanonical},
		{"y = p+k, large order", aliasLarge, ed25519x.ErrKeyNonCanonical},
	}
	for _, tc := range smallOrder {
		tests = append(tests, struct {
			name string
			pub  []byte
			want error
		}{tc.name, mustHex(t, tc.hex), ed25519x.ErrKeySmallOrder})
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := ed25519x.CheckPublicKey(tc.pub); !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
}

// TestForgedSignatureUnderNonCanonicalKey: crypto/ed25519 decodes
// non-canonical keys too, so an alias of a small-order point is as
// forgeable as the point.
func TestForgedSignatureUnderNonCanonicalKey(t *testing.T) {
	for _, pub := range [][]byte{fieldP(0, false), fieldP(1, false)} {
		forged := 0
		for i := range 32 {
			msg := []byte{byte(i)}
			sig := forge(t, pub, msg)
			if sig == nil {
				continue
			}
			forged++
			if ed25519x.Verify(pub, msg, sig) {
				t.Fatalf("key %x: Verify accepts a forged signature", pub)
			}
		}
		if forged == 0 {
			t.Fatalf("key %x: no forgery found against crypto/ed25519", pub)
		}
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
