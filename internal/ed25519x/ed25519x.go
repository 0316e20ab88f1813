// Package ed25519x is the project's one ed25519 signature check. Every
// signature the chain, the enclave, the worker or the client accepts goes
// through Verify, never through crypto/ed25519.Verify directly.
//
// crypto/ed25519 accepts any public key that decodes as a curve point,
// including the eight points of small order. For such a key A, [k]A takes
// at most eight values whatever the message, so a signature (R, S = 0) with
// R one of those values verifies for a large share of messages without
// any private key: the all-zero address, once used as "no sudo", is such a
// key (issue 9, finding 1). Verify refuses small-order keys, non-canonical
// key encodings and non-canonical S before it runs the standard
// (cofactorless) check, so honest signatures verify exactly as before.
//
// The point checks use filippo.io/edwards25519, the code crypto/ed25519
// itself is built on, so decoding agrees with the verifier's. The check
// itself is curve25519-voi's (oasis-core's, already in the module through
// CometBFT) with the standard library's semantics: its verdicts are
// crypto/ed25519's (TestVerifyAgreesWithStdlib, FuzzVerifyAgreesWithStdlib)
// at ~60% of the CPU, and signature checks were half of an enclave's CPU
// under direct calls.
package ed25519x

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"slices"

	"filippo.io/edwards25519"
	voi "github.com/oasisprotocol/curve25519-voi/primitives/ed25519"
)

// stdlib is crypto/ed25519's verification: cofactorless, R compared as
// bytes, S below L. Its allowances for small-order and non-canonical keys
// never apply: CheckPublicKey refuses those keys first.
var stdlib = &voi.Options{Verify: voi.VerifyOptionsStdLib}

// Reasons CheckPublicKey refuses a key.
var (
	ErrKeySize         = errors.New("ed25519 public key has the wrong size")
	ErrKeyNotOnCurve   = errors.New("ed25519 public key is not a curve point")
	ErrKeyNonCanonical = errors.New("ed25519 public key is not canonically encoded")
	ErrKeySmallOrder   = errors.New("ed25519 public key is a point of small order")
)

// CheckPublicKey reports why pub cannot be a signer's key, or nil: it must
// be the canonical encoding (y < p, no sign bit on x = 0) of a curve point
// that is not of small order. Keys made by ed25519.GenerateKey or
// ed25519.NewKeyFromSeed always pass.
func CheckPublicKey(pub []byte) error {
	if len(pub) != ed25519.PublicKeySize {
		return fmt.Errorf("%w: %d bytes, want %d", ErrKeySize, len(pub), ed25519.PublicKeySize)
	}
	p, err := new(edwards25519.Point).SetBytes(pub)
	if err != nil {
		return ErrKeyNotOnCurve
	}
	// SetBytes accepts non-canonical encodings. Checked on the bytes: the
	// point's own encoding (p.Bytes) would cost a field inversion, a
	// seventh of a verification.
	if !canonical(pub) {
		return ErrKeyNonCanonical
	}
	// The curve's order is 8·L: a point is of small order exactly when its
	// multiple by the cofactor is the identity.
	if new(edwards25519.Point).MultByCofactor(p).Equal(edwards25519.NewIdentityPoint()) == 1 {
		return ErrKeySmallOrder
	}
	return nil
}

// Encodings of y = 1 and y = p-1, the two curve points with x = 0.
var (
	yOne      = [32]byte{0x01}
	yMinusOne = [32]byte{0xec, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
		0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f}
)

// canonical reports whether enc, the 32-byte encoding of a curve point,
// is the point's canonical encoding, the one Point.Bytes gives: y below
// p = 2^255-19, and no sign bit on x = 0 (x is 0 exactly when y is 1 or
// p-1).
func canonical(enc []byte) bool {
	y := [32]byte(enc)
	sign := y[31] >> 7
	y[31] &= 0x7f
	// y >= p: 2^255-19 .. 2^255-1, the first byte at least 0xed and all
	// the others 0xff (the last one 0x7f).
	if y[0] >= 0xed && y[31] == 0x7f && !slices.ContainsFunc(y[1:31], func(b byte) bool { return b != 0xff }) {
		return false
	}
	return sign == 0 || (y != yOne && y != yMinusOne)
}

// Verify reports whether sig is a valid signature of msg by pub. It is
// false for a key CheckPublicKey refuses, for a signature that is not
// ed25519.SignatureSize bytes or whose S is not below the group order L,
// and otherwise exactly what ed25519.Verify says. It never panics: voi
// panics only on a key of the wrong size, which it never gets.
func Verify(pub, msg, sig []byte) bool {
	if len(sig) != ed25519.SignatureSize || CheckPublicKey(pub) != nil {
		return false
	}
	// crypto/ed25519 refuses S >= L too, but nothing documents it; checked
	// here so that signatures cannot be malleated whatever it does.
	if _, err := new(edwards25519.Scalar).SetCanonicalBytes(sig[32:]); err != nil {
		return false
	}
	return voi.VerifyWithOptions(voi.PublicKey(pub), msg, sig, stdlib)
}
