package ed25519x_test

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/sha512"
	"fmt"
	"math/big"
	"testing"

	"filippo.io/edwards25519"

	"github.com/integritee-go/integritee/internal/ed25519x"
	"github.com/integritee-go/integritee/internal/ed25519x/ed25519xtest"
)

// reference is Verify's contract written with the standard library: the
// key and S checks, then crypto/ed25519's verdict.
func reference(pub, msg, sig []byte) bool {
	if len(sig) != ed25519.SignatureSize || ed25519x.CheckPublicKey(pub) != nil {
		return false
	}
	if _, err := new(edwards25519.Scalar).SetCanonicalBytes(sig[32:]); err != nil {
		return false
	}
	return ed25519.Verify(pub, msg, sig)
}

// agree fails t if Verify and the standard library's check differ on the
// input, or if Verify panics.
func agree(t *testing.T, pub, msg, sig []byte) bool {
	t.Helper()
	want := reference(pub, msg, sig)
	var got bool
	func() {
		defer func() {
			if r := recover(); r != nil {
				t.Fatalf("Verify(%x, %x, %x) panicked: %v", pub, msg, sig, r)
			}
		}()
		got = ed25519x.Verify(pub, msg, sig)
	}()
	if got != want {
		t.Errorf("Verify(%x, %x, %x) = %v, crypto/ed25519 says %v", pub, msg, sig, got, want)
	}
	return got
}

// smallOrderPoints are the canonical encodings of the eight points of
// small order, and torsion-free points are made by the key generator.
func smallOrderPoints() [][]byte {
	var out [][]byte
	for _, tc := range ed25519xtest.SmallOrder {
		out = append(out, bytes.Clone(tc.Key[:]))
	}
	return out
}

// TestVerifyAgreesWithStdlib: Verify, which runs curve25519-voi's check,
// gives crypto/ed25519's verdict on honest signatures and on every way of
// spoiling one that a verifier's semantics could tell apart: each bit of
// R, S and the key flipped, R replaced by points of small order and by
// non-canonical encodings, R plus a point of small order (a mixed-order R,
// where cofactored and cofactorless checks disagree), S + L, S = 0, and
// the forged signatures under small-order keys.
func TestVerifyAgreesWithStdlib(t *testing.T) {
	l, _ := new(big.Int).SetString("7237005577332262213973186563042994240857116359379907606001950938285454250989", 10)
	accepted := 0
	for k := range 8 {
		seed := sha256.Sum256(fmt.Appendf(nil, "agree %d", k))
		priv := ed25519.NewKeyFromSeed(seed[:])
		pub := priv.Public().(ed25519.PublicKey)
		msg := fmt.Appendf(nil, "message %d", k)
		sig := ed25519.Sign(priv, msg)
		if agree(t, pub, msg, sig) {
			accepted++
		}
		agree(t, pub, append(bytes.Clone(msg), 0), sig)
		agree(t, pub, nil, sig)
		for bit := range 8 * len(sig) {
			agree(t, pub, msg, flipBit(sig, bit))
		}
		for bit := range 8 * len(pub) {
			agree(t, flipBit(pub, bit), msg, sig)
		}
		for _, r := range smallOrderPoints() {
			agree(t, pub, msg, append(bytes.Clone(r), sig[32:]...))
			// A mixed-order R: the signature's R plus a point of small
			// order. A cofactored check would take some of these.
			R, err := new(edwards25519.Point).SetBytes(sig[:32])
			if err != nil {
				t.Fatal(err)
			}
			T, err := new(edwards25519.Point).SetBytes(r)
			if err != nil {
				t.Fatal(err)
			}
			mixed := new(edwards25519.Point).Add(R, T).Bytes()
			agree(t, pub, msg, append(mixed, sig[32:]...))
		}
		for _, tc := range ed25519xtest.NonCanonical {
			agree(t, pub, msg, append(bytes.Clone(tc.Key[:]), sig[32:]...))
		}
		// R replaced by y = p + 1, a non-canonical encoding of the
		// identity, with R's sign bit.
		nonCanonR := bytes.Clone(sig)
		nonCanonR[0], nonCanonR[31] = 0xee, 0x7f|(sig[31]&0x80)
		for i := 1; i < 31; i++ {
			nonCanonR[i] = 0xff
		}
		agree(t, pub, msg, nonCanonR)
		s := new(big.Int).SetBytes(reverse(sig[32:]))
		agree(t, pub, msg, append(bytes.Clone(sig[:32]), reverse(new(big.Int).Add(s, l).FillBytes(make([]byte, 32)))...))
		agree(t, pub, msg, append(bytes.Clone(sig[:32]), make([]byte, 32)...))
	}
	for _, tc := range append(ed25519xtest.SmallOrder, ed25519xtest.NonCanonical...) {
		for i := range 8 {
			msg := fmt.Appendf(nil, "accounts.set_balance #%d", i)
			if sig := ed25519xtest.Forge(tc.Key[:], msg); sig != nil {
				agree(t, tc.Key[:], msg, sig)
			}
		}
	}
	if accepted != 8 {
		t.Fatalf("%d of 8 honest signatures accepted", accepted)
	}
	// Signatures a cofactored check takes: their R or key has a
	// small-order component. crypto/ed25519 refuses most of them, so
	// Verify must.
	refused := 0
	for i, T := range smallOrderPoints() {
		for _, onKey := range []bool{false, true} {
			pub, msg, sig := cofactoredOnly(t, i, T, onKey)
			if !reference(pub, msg, sig) {
				refused++
			}
			agree(t, pub, msg, sig)
		}
	}
	if refused < 8 {
		t.Fatalf("crypto/ed25519 refused only %d of the 16 signatures with torsion: the cases test nothing", refused)
	}
}

// cofactoredOnly signs a message under a key with T added to R (or to the
// key): S = r + k·a still holds for the torsion-free parts, so the
// cofactored equation [8][S]B = [8]R + [8][k]A holds and the cofactorless
// [S]B = R + [k]A does not, unless T is the identity or, on the key,
// [k]T happens to vanish.
func cofactoredOnly(t *testing.T, i int, torsion []byte, onKey bool) (pub, msg, sig []byte) {
	t.Helper()
	T, err := new(edwards25519.Point).SetBytes(torsion)
	if err != nil {
		t.Fatal(err)
	}
	h := sha512.Sum512(fmt.Appendf(nil, "cofactored %d", i))
	a, err := new(edwards25519.Scalar).SetBytesWithClamping(h[:32])
	if err != nil {
		t.Fatal(err)
	}
	A := new(edwards25519.Point).ScalarBaseMult(a)
	rh := sha512.Sum512(fmt.Appendf(nil, "nonce %d", i))
	r, err := new(edwards25519.Scalar).SetUniformBytes(rh[:])
	if err != nil {
		t.Fatal(err)
	}
	R := new(edwards25519.Point).ScalarBaseMult(r)
	if onKey {
		A.Add(A, T)
	} else {
		R.Add(R, T)
	}
	pub, msg = A.Bytes(), fmt.Appendf(nil, "torsion %d", i)
	kh := sha512.New()
	kh.Write(R.Bytes())
	kh.Write(pub)
	kh.Write(msg)
	k, err := new(edwards25519.Scalar).SetUniformBytes(kh.Sum(nil))
	if err != nil {
		t.Fatal(err)
	}
	S := new(edwards25519.Scalar).MultiplyAdd(k, a, r)
	return pub, msg, append(R.Bytes(), S.Bytes()...)
}

// FuzzVerifyAgreesWithStdlib signs msg under a key made from seed, then
// spoils the signature and key with the xor mask (the first 64 bytes over
// the signature, the next 32 over the key): Verify must give
// crypto/ed25519's verdict and never panic. A mask of zeros keeps an
// honest signature, so the fuzzer explores near-valid inputs, not only
// noise.
func FuzzVerifyAgreesWithStdlib(f *testing.F) {
	f.Add([]byte("seed"), []byte("message"), []byte{})
	f.Add([]byte("seed"), []byte("message"), []byte{1})
	f.Add([]byte("other"), []byte{}, bytes.Repeat([]byte{0x80}, 96))
	f.Add([]byte("s"), []byte("m"), append(make([]byte, 63), 0x10))
	f.Fuzz(func(t *testing.T, seed, msg, mask []byte) {
		s := sha256.Sum256(seed)
		priv := ed25519.NewKeyFromSeed(s[:])
		pub := bytes.Clone(priv.Public().(ed25519.PublicKey))
		sig := ed25519.Sign(priv, msg)
		for i, m := range mask {
			switch {
			case i < len(sig):
				sig[i] ^= m
			case i < len(sig)+len(pub):
				pub[i-len(sig)] ^= m
			}
		}
		if len(mask) > 96 {
			// Lengths matter too: the rest of the mask cuts the signature.
			sig = sig[:int(mask[96])%(len(sig)+1)]
		}
		agree(t, pub, msg, sig)
	})
}

func flipBit(b []byte, bit int) []byte {
	c := bytes.Clone(b)
	c[bit/8] ^= 1 << (bit % 8)
	return c
}
