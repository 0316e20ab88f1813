package ed25519x_test

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"testing"

	"filippo.io/edwards25519"

	"github.com/integritee-go/integritee/internal/ed25519x"
	"github.com/integritee-go/integritee/internal/ed25519x/ed25519xtest"
)

// checkByPoint is CheckPublicKey as it was first written, on the decoded
// point: canonical means equal to the point's own encoding.
func checkByPoint(pub []byte) error {
	if len(pub) != ed25519.PublicKeySize {
		return ed25519x.ErrKeySize
	}
	p, err := new(edwards25519.Point).SetBytes(pub)
	if err != nil {
		return ed25519x.ErrKeyNotOnCurve
	}
	if !bytes.Equal(p.Bytes(), pub) {
		return ed25519x.ErrKeyNonCanonical
	}
	if new(edwards25519.Point).MultByCofactor(p).Equal(edwards25519.NewIdentityPoint()) == 1 {
		return ed25519x.ErrKeySmallOrder
	}
	return nil
}

// checkAgrees holds CheckPublicKey to checkByPoint, and Verify's cheaper
// key check (KeyShape, which leaves the decoding to curve25519-voi) to
// CheckPublicKey on every key that decodes.
func checkAgrees(t *testing.T, pub []byte) {
	t.Helper()
	got, want := ed25519x.CheckPublicKey(pub), checkByPoint(pub)
	if !errors.Is(got, want) && (got != nil || want != nil) {
		t.Errorf("CheckPublicKey(%x) = %v, the point's own encoding says %v", pub, got, want)
	}
	if want != ed25519x.ErrKeyNotOnCurve && ed25519x.KeyShape(pub) != (want == nil) {
		t.Errorf("KeyShape(%x) = %v, CheckPublicKey says %v", pub, ed25519x.KeyShape(pub), want)
	}
}

// TestCanonicalOnBytes: CheckPublicKey's canonical check on the bytes
// gives the verdicts of comparing with the point's own encoding, on every
// encoding whose y is within 64 of 0, 1, p-1 or p (both signs: all the
// non-canonical encodings there are, and the points with x = 0), on the
// small-order and non-canonical keys, and on honest keys with each bit
// flipped.
func TestCanonicalOnBytes(t *testing.T) {
	var encs [][]byte
	// p+d, little-endian: from p-64 to 2^255-1 only the first byte moves
	// (p's is 0xed).
	for d := -64; d <= 18; d++ {
		b := fieldP(0)
		b[0] = byte(0xed + d)
		encs = append(encs, b)
	}
	for y := range uint64(64) {
		b := make([]byte, 32)
		binary.LittleEndian.PutUint64(b, y)
		encs = append(encs, b)
	}
	for _, tc := range append(ed25519xtest.SmallOrder, ed25519xtest.NonCanonical...) {
		encs = append(encs, bytes.Clone(tc.Key[:]))
	}
	for k := range 16 {
		seed := sha256.Sum256(fmt.Appendf(nil, "key %d", k))
		pub := ed25519.NewKeyFromSeed(seed[:]).Public().(ed25519.PublicKey)
		for bit := range 256 {
			encs = append(encs, flipBit(pub, bit))
		}
	}
	nonCanonical := 0
	for _, e := range encs {
		for _, sign := range []byte{0, 0x80} {
			b := bytes.Clone(e)
			b[31] = b[31]&0x7f | sign
			checkAgrees(t, b)
			if checkByPoint(b) == ed25519x.ErrKeyNonCanonical {
				nonCanonical++
			}
		}
	}
	if nonCanonical < 10 {
		t.Fatalf("only %d non-canonical encodings among the cases", nonCanonical)
	}
}

// FuzzCheckPublicKey holds CheckPublicKey to the point-based check on any
// input.
func FuzzCheckPublicKey(f *testing.F) {
	f.Add(make([]byte, 32))
	f.Add(fieldP(1))
	f.Add(bytes.Repeat([]byte{0xff}, 32))
	f.Add([]byte{1})
	f.Fuzz(func(t *testing.T, pub []byte) {
		checkAgrees(t, pub)
	})
}
