// Package ed25519xtest has the keys and the forgery of issue 9, finding 1,
// for tests that show a signature check refuses them.
package ed25519xtest

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha512"
	"encoding/hex"

	"filippo.io/edwards25519"
)

// Key is a named public key encoding.
type Key struct {
	Name string
	Key  [32]byte
}

// SmallOrder are the canonical encodings of the eight points of small order
// (the torsion subgroup), as listed in "Taming the many EdDSAs" (Chalkias
// et al., 2020). The all-zero address is one of them.
var SmallOrder = []Key{
	key("identity (order 1)", "0100000000000000000000000000000000000000000000000000000000000000"),
	key("y=-1 (order 2)", "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f"),
	key("all-zero, y=0 (order 4)", "0000000000000000000000000000000000000000000000000000000000000000"),
	key("y=0, negative x (order 4)", "0000000000000000000000000000000000000000000000000000000000000080"),
	key("order 8 a", "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a"),
	key("order 8 b", "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa"),
	key("order 8 c", "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05"),
	key("order 8 d", "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc85"),
}

// NonCanonical are encodings with y >= p (or a sign bit on x = 0) of
// small-order points, which crypto/ed25519 decodes as the point they alias.
var NonCanonical = []Key{
	key("y=p (alias of the all-zero key)", "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f"),
	key("y=p, sign set", "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff"),
	key("y=p+1 (alias of the identity)", "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f"),
	key("identity, x=-0", "0100000000000000000000000000000000000000000000000000000000000080"),
	key("y=-1, x=-0", "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff"),
}

func key(name, h string) Key {
	var k Key
	k.Name = name
	if n, err := hex.Decode(k.Key[:], []byte(h)); err != nil || n != len(k.Key) {
		panic("ed25519xtest: bad key " + h)
	}
	return k
}

// Forge returns a signature of msg under pub made without a private key,
// or nil: S = 0 and R one of the small-order points. A cofactorless
// verifier such as crypto/ed25519 computes R' = [S]B - [k]A = -[k]A with
// k = SHA-512(R || A || msg); for a small-order A that is itself a
// small-order point, equal to R for a good share of messages.
func Forge(pub, msg []byte) []byte {
	a, err := new(edwards25519.Point).SetBytes(pub)
	if err != nil {
		return nil
	}
	for _, r := range SmallOrder {
		p := new(edwards25519.Point).ScalarMult(Challenge(r.Key[:], pub, msg), a)
		if bytes.Equal(p.Negate(p).Bytes(), r.Key[:]) {
			return append(r.Key[:], make([]byte, 32)...)
		}
	}
	return nil
}

// AcceptedByStdlib reports whether crypto/ed25519 accepts sig: what a test
// checks of a forgery before it shows the project refusing it (so that it
// can fail). It lives here because no other code may call ed25519.Verify.
func AcceptedByStdlib(pub, msg, sig []byte) bool {
	return len(pub) == ed25519.PublicKeySize && ed25519.Verify(pub, msg, sig)
}

// SignWithTorsion signs msg with priv as ed25519.Sign does, except that R
// carries a point of order 8: a signature only the key's holder can make,
// which the cofactored equation takes ([8] clears the torsion) and the
// cofactorless one refuses. Tests use it to show which rule a replica
// applied.
func SignWithTorsion(priv ed25519.PrivateKey, msg []byte) []byte {
	h := sha512.Sum512(priv.Seed())
	a, err := new(edwards25519.Scalar).SetBytesWithClamping(h[:32])
	if err != nil {
		panic(err)
	}
	nh := sha512.New()
	nh.Write(h[32:])
	nh.Write(msg)
	r, err := new(edwards25519.Scalar).SetUniformBytes(nh.Sum(nil))
	if err != nil {
		panic(err)
	}
	t, err := new(edwards25519.Point).SetBytes(SmallOrder[4].Key[:])
	if err != nil {
		panic(err)
	}
	R := new(edwards25519.Point).ScalarBaseMult(r)
	R.Add(R, t)
	return SignWith(a, r, R.Bytes(), priv.Public().(ed25519.PublicKey), msg)
}

// Challenge is a signature's k = SHA-512(R || A || msg) mod L.
func Challenge(R, A, msg []byte) *edwards25519.Scalar {
	h := sha512.New()
	h.Write(R)
	h.Write(A)
	h.Write(msg)
	k, err := new(edwards25519.Scalar).SetUniformBytes(h.Sum(nil))
	if err != nil {
		panic(err) // a SHA-512 digest is 64 bytes
	}
	return k
}

// SignWith makes the signature R || S, S = k·a + r, that the holder of the
// secret scalar a (public key A) makes with the nonce r (nil for 0) and
// the encoding R, which a test may spoil or give a small-order part.
func SignWith(a, r *edwards25519.Scalar, R, A, msg []byte) []byte {
	if r == nil {
		r = edwards25519.NewScalar()
	}
	S := new(edwards25519.Scalar).MultiplyAdd(Challenge(R, A, msg), a, r)
	return append(bytes.Clone(R), S.Bytes()...)
}
