package ed25519x_test

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/sha512"
	"fmt"
	"math/big"
	"math/rand/v2"
	"slices"
	"testing"

	"filippo.io/edwards25519"

	"github.com/integritee-go/integritee/internal/ed25519x"
	"github.com/integritee-go/integritee/internal/ed25519x/ed25519xtest"
)

// reference is Verify's contract written on filippo.io/edwards25519, the
// code crypto/ed25519 is built on, independently of curve25519-voi: the
// key checks, a 64-byte signature whose R is the canonical encoding of a
// curve point and whose S is below L, and the cofactored equation
// [8]([S]B - R - [k]A) = 0 with k = SHA-512(R || A || msg).
func reference(pub, msg, sig []byte) bool {
	if len(sig) != ed25519.SignatureSize || ed25519x.CheckPublicKey(pub) != nil {
		return false
	}
	S, err := new(edwards25519.Scalar).SetCanonicalBytes(sig[32:])
	if err != nil {
		return false
	}
	R, err := new(edwards25519.Point).SetBytes(sig[:32])
	if err != nil || !bytes.Equal(R.Bytes(), sig[:32]) {
		return false
	}
	A, err := new(edwards25519.Point).SetBytes(pub)
	if err != nil {
		return false
	}
	h := sha512.New()
	h.Write(sig[:32])
	h.Write(pub)
	h.Write(msg)
	k, err := new(edwards25519.Scalar).SetUniformBytes(h.Sum(nil))
	if err != nil {
		panic(err)
	}
	// [k](-A) + [S]B - R, times the cofactor.
	d := new(edwards25519.Point).VarTimeDoubleScalarBaseMult(k, new(edwards25519.Point).Negate(A), S)
	d.Subtract(d, R).MultByCofactor(d)
	return d.Equal(edwards25519.NewIdentityPoint()) == 1
}

// stdlib is the cofactorless check Verify made before it could batch,
// written again on crypto/ed25519 (Cofactorless is held to it):
// the same key and S checks, then crypto/ed25519's verdict.
func stdlib(pub, msg, sig []byte) bool {
	if len(sig) != ed25519.SignatureSize || ed25519x.CheckPublicKey(pub) != nil {
		return false
	}
	if _, err := new(edwards25519.Scalar).SetCanonicalBytes(sig[32:]); err != nil {
		return false
	}
	return ed25519.Verify(pub, msg, sig)
}

// agree fails t if Verify and the reference differ on the input, if
// Verify panics, or if Verify refuses what the cofactorless check takes
// (that one is stricter: every signature it takes, the cofactored equation
// takes). It reports Verify's verdict and whether the cofactorless check
// refused what Verify took.
func agree(t *testing.T, pub, msg, sig []byte) (got, onlyCofactored bool) {
	t.Helper()
	want := reference(pub, msg, sig)
	func() {
		defer func() {
			if r := recover(); r != nil {
				t.Fatalf("Verify(%x, %x, %x) panicked: %v", pub, msg, sig, r)
			}
		}()
		got = ed25519x.Verify(pub, msg, sig)
	}()
	if got != want {
		t.Errorf("Verify(%x, %x, %x) = %v, the reference says %v", pub, msg, sig, got, want)
	}
	old := stdlib(pub, msg, sig)
	if old && !got {
		t.Errorf("Verify(%x, %x, %x) refuses a signature crypto/ed25519 takes", pub, msg, sig)
	}
	// The rules: Cofactored is Verify, Cofactorless the check before it
	// (kept for states of version 1), an unknown rule takes nothing.
	if r := ed25519x.Cofactored.Verify(pub, msg, sig); r != got {
		t.Errorf("Cofactored.Verify(%x, %x, %x) = %v, Verify says %v", pub, msg, sig, r, got)
	}
	if r := ed25519x.Cofactorless.Verify(pub, msg, sig); r != old {
		t.Errorf("Cofactorless.Verify(%x, %x, %x) = %v, crypto/ed25519 with the key and S checks says %v", pub, msg, sig, r, old)
	}
	for _, r := range []ed25519x.Rule{0, 3, 255} {
		if r.Verify(pub, msg, sig) {
			t.Errorf("unknown rule %v took (%x, %x, %x)", r, pub, msg, sig)
		}
	}
	return got, got && !old
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

// sigCase is one input to a signature check.
type sigCase struct{ pub, msg, sig []byte }

// spoiledCases are honest signatures and every way of spoiling one that a
// verifier's semantics could tell apart: each bit of R, S and the key
// flipped, R replaced by points of small order and by non-canonical
// encodings, R plus a point of small order (a mixed-order R, where
// cofactored and cofactorless checks disagree), S + L, S = 0, the forged
// signatures under small-order keys, and signatures by a key's holder
// with a small-order component on R or on the key (cofactoredOnly).
// honest counts the honest signatures among them, torsion the ones made
// by cofactoredOnly.
func spoiledCases(t *testing.T) (cases []sigCase, honest, torsion int) {
	t.Helper()
	add := func(pub, msg, sig []byte) { cases = append(cases, sigCase{pub, msg, sig}) }
	l, _ := new(big.Int).SetString("7237005577332262213973186563042994240857116359379907606001950938285454250989", 10)
	for k := range 8 {
		seed := sha256.Sum256(fmt.Appendf(nil, "agree %d", k))
		priv := ed25519.NewKeyFromSeed(seed[:])
		pub := priv.Public().(ed25519.PublicKey)
		msg := fmt.Appendf(nil, "message %d", k)
		sig := ed25519.Sign(priv, msg)
		add(pub, msg, sig)
		honest++
		add(pub, append(bytes.Clone(msg), 0), sig)
		add(pub, nil, sig)
		for bit := range 8 * len(sig) {
			add(pub, msg, flipBit(sig, bit))
		}
		for bit := range 8 * len(pub) {
			add(flipBit(pub, bit), msg, sig)
		}
		for _, r := range smallOrderPoints() {
			add(pub, msg, append(bytes.Clone(r), sig[32:]...))
			// A mixed-order R made without the key: the signature's R
			// plus a point of small order. k changes with R, so no
			// check takes it.
			R, err := new(edwards25519.Point).SetBytes(sig[:32])
			if err != nil {
				t.Fatal(err)
			}
			T, err := new(edwards25519.Point).SetBytes(r)
			if err != nil {
				t.Fatal(err)
			}
			if T.Equal(edwards25519.NewIdentityPoint()) == 1 {
				continue // R itself: the honest signature
			}
			mixed := new(edwards25519.Point).Add(R, T).Bytes()
			add(pub, msg, append(mixed, sig[32:]...))
		}
		for _, tc := range ed25519xtest.NonCanonical {
			add(pub, msg, append(bytes.Clone(tc.Key[:]), sig[32:]...))
		}
		// R replaced by y = p + 1, a non-canonical encoding of the
		// identity, with R's sign bit.
		nonCanonR := bytes.Clone(sig)
		nonCanonR[0], nonCanonR[31] = 0xee, 0x7f|(sig[31]&0x80)
		for i := 1; i < 31; i++ {
			nonCanonR[i] = 0xff
		}
		add(pub, msg, nonCanonR)
		s := new(big.Int).SetBytes(reverse(sig[32:]))
		add(pub, msg, append(bytes.Clone(sig[:32]), reverse(new(big.Int).Add(s, l).FillBytes(make([]byte, 32)))...))
		add(pub, msg, append(bytes.Clone(sig[:32]), make([]byte, 32)...))
	}
	for _, tc := range append(ed25519xtest.SmallOrder, ed25519xtest.NonCanonical...) {
		for i := range 8 {
			msg := fmt.Appendf(nil, "accounts.set_balance #%d", i)
			if sig := ed25519xtest.Forge(tc.Key[:], msg); sig != nil {
				add(tc.Key[:], msg, sig)
			}
			// S = 0 and R small order: the cofactored equation holds for
			// every message under a small-order key, which is why such
			// keys are refused.
			add(tc.Key[:], msg, append(bytes.Clone(tc.Key[:]), make([]byte, 32)...))
		}
	}
	// The key's holder signing with R a non-canonical encoding of a
	// small-order point (r = 0, S = k·a): the cofactored equation holds,
	// so only the encoding check refuses it (found in review: a ZIP-215
	// mutant passed every other case).
	holder := sha512.Sum512([]byte("holder"))
	a, err := new(edwards25519.Scalar).SetBytesWithClamping(holder[:32])
	if err != nil {
		t.Fatal(err)
	}
	holderPub := new(edwards25519.Point).ScalarBaseMult(a).Bytes()
	for _, tc := range ed25519xtest.NonCanonical {
		msg := []byte("non-canonical R")
		add(holderPub, msg, ed25519xtest.SignWith(a, nil, tc.Key[:], holderPub, msg))
	}
	for i, T := range smallOrderPoints() {
		for _, onKey := range []bool{false, true} {
			pub, msg, sig := cofactoredOnly(t, i, T, onKey)
			add(pub, msg, sig)
			torsion++
		}
	}
	return cases, honest, torsion
}

// TestVerifyAgreesWithReference: Verify, which runs curve25519-voi's
// check, gives the reference's verdict on every spoiled signature, takes
// the honest ones, refuses everything made without the key, and takes the
// signatures a key's holder made with a small-order component, most of
// which crypto/ed25519 refuses: the one way the two checks differ.
func TestVerifyAgreesWithReference(t *testing.T) {
	cases, honest, torsion := spoiledCases(t)
	accepted, onlyCofactored := 0, 0
	for _, c := range cases {
		got, only := agree(t, c.pub, c.msg, c.sig)
		if got {
			accepted++
		}
		if only {
			onlyCofactored++
		}
	}
	if accepted != honest+torsion {
		t.Errorf("%d accepted, want the %d honest and %d with torsion", accepted, honest, torsion)
	}
	if onlyCofactored < torsion/2 {
		t.Fatalf("crypto/ed25519 refused only %d of the %d signatures with torsion: the cases test nothing", onlyCofactored, torsion)
	}
}

// TestBatchAgreesWithVerify: a Batch's verdict on each signature is
// Verify's, whatever else is in the batch: the spoiled cases shuffled into
// batches of 1 to 100, and batches of honest signatures alone, with one
// spoiled signature among them, and with a refused key among them.
func TestBatchAgreesWithVerify(t *testing.T) {
	cases, _, _ := spoiledCases(t)
	rng := rand.New(rand.NewPCG(1, 2))
	rng.Shuffle(len(cases), func(i, j int) { cases[i], cases[j] = cases[j], cases[i] })
	// Each batch is checked with no key cache, with a cache that holds
	// every key seen (its keys are expanded once, then found), and with one
	// so small that it drops keys all the time.
	warm, churn := ed25519x.NewKeys(1<<12), ed25519x.NewKeys(4)
	check := func(batch []sigCase) {
		t.Helper()
		for _, keys := range []*ed25519x.Keys{nil, warm, churn} {
			checkBatch(t, batch, keys)
		}
	}
	for rest := cases; len(rest) > 0; {
		n := min(1+rng.IntN(100), len(rest))
		check(rest[:n])
		rest = rest[n:]
	}
	var good []sigCase
	for i := range 64 {
		seed := sha256.Sum256(fmt.Appendf(nil, "batch %d", i))
		priv := ed25519.NewKeyFromSeed(seed[:])
		msg := fmt.Appendf(nil, "call %d", i)
		good = append(good, sigCase{priv.Public().(ed25519.PublicKey), msg, ed25519.Sign(priv, msg)})
	}
	check(good)
	for _, bad := range []sigCase{
		{good[3].pub, good[3].msg, flipBit(good[3].sig, 300)},
		{good[3].pub, good[4].msg, good[3].sig},
		{bytes.Clone(ed25519xtest.SmallOrder[2].Key[:]), good[3].msg, good[3].sig},
		{good[3].pub, good[3].msg, good[3].sig[:63]},
	} {
		check(append(slices.Clone(good[:40]), append([]sigCase{bad}, good[40:]...)...))
	}
	// An empty batch has no verdicts.
	if ok := ed25519x.NewBatch(0, nil).Verify(); len(ok) != 0 {
		t.Fatalf("empty batch: %v", ok)
	}
}

// checkBatch checks batch in one Batch with keys against Verify.
func checkBatch(t *testing.T, batch []sigCase, keys *ed25519x.Keys) {
	t.Helper()
	b := ed25519x.NewBatch(len(batch), keys)
	for i, c := range batch {
		// Half the keys cached in one of two scopes, half not at all.
		if i%2 == 0 {
			b.Add(c.pub, c.msg, c.sig)
		} else {
			b.AddIn(&ed25519x.Scope{byte(i % 4)}, c.pub, c.msg, c.sig)
		}
	}
	if b.Len() != len(batch) {
		t.Fatalf("Len %d, want %d", b.Len(), len(batch))
	}
	ok := b.Verify()
	if len(ok) != len(batch) {
		t.Fatalf("%d verdicts for %d signatures", len(ok), len(batch))
	}
	for i, c := range batch {
		if want := ed25519x.Verify(c.pub, c.msg, c.sig); ok[i] != want {
			t.Errorf("batch of %d with keys %p, entry %d (%x, %x, %x): %v, Verify says %v", len(batch), keys, i, c.pub, c.msg, c.sig, ok[i], want)
		}
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
	return pub, msg, ed25519xtest.SignWith(a, r, R.Bytes(), pub, msg)
}

// FuzzVerifyAgreesWithReference signs msg under a key made from seed, then
// spoils the signature and key with the xor mask (the first 64 bytes over
// the signature, the next 32 over the key): Verify must give the
// reference's verdict and never panic, and a batch of the spoiled
// signature between two honest ones must give Verify's verdicts. A mask of zeros keeps an
// honest signature, so the fuzzer explores near-valid inputs, not only
// noise.
func FuzzVerifyAgreesWithReference(f *testing.F) {
	f.Add([]byte("seed"), []byte("message"), []byte{})
	f.Add([]byte("seed"), []byte("message"), []byte{1})
	f.Add([]byte("other"), []byte{}, bytes.Repeat([]byte{0x80}, 96))
	f.Add([]byte("s"), []byte("m"), append(make([]byte, 63), 0x10))
	cache := ed25519x.NewKeys(64)
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
			// Lengths matter too: the rest of the mask cuts the signature
			// and the key.
			sig = sig[:int(mask[96])%(len(sig)+1)]
		}
		if len(mask) > 97 {
			pub = pub[:int(mask[97])%(len(pub)+1)]
		}
		got, _ := agree(t, pub, msg, sig)
		// Six signatures, so that the batch equation runs (minBatch).
		other := ed25519.NewKeyFromSeed(make([]byte, 32))
		// With no key cache, and with one that the fuzzer's keys pass
		// through (a spoiled key cached must not change a verdict).
		for _, keys := range []*ed25519x.Keys{nil, cache} {
			b := ed25519x.NewBatch(6, keys)
			for i := range 6 {
				if i == 2 {
					b.AddIn(&ed25519x.Scope{}, pub, msg, sig)
					continue
				}
				m := fmt.Appendf(nil, "other %d", i)
				b.AddIn(&ed25519x.Scope{}, other.Public().(ed25519.PublicKey), m, ed25519.Sign(other, m))
			}
			for i, ok := range b.Verify() {
				if want := i != 2 || got; ok != want {
					t.Errorf("batch verdict %d (keys %p): %v, want %v", i, keys, ok, want)
				}
			}
		}
	})
}

func flipBit(b []byte, bit int) []byte {
	c := bytes.Clone(b)
	c[bit/8] ^= 1 << (bit % 8)
	return c
}

// TestSignWithTorsion: the helper other packages' tests use to tell the
// rules apart makes what it says, for many keys and messages.
func TestSignWithTorsion(t *testing.T) {
	for i := range 32 {
		seed := sha256.Sum256(fmt.Appendf(nil, "torsion helper %d", i))
		priv := ed25519.NewKeyFromSeed(seed[:])
		pub, msg := priv.Public().(ed25519.PublicKey), fmt.Appendf(nil, "message %d", i)
		sig := ed25519xtest.SignWithTorsion(priv, msg)
		if !ed25519x.Cofactored.Verify(pub, msg, sig) || ed25519x.Cofactorless.Verify(pub, msg, sig) {
			t.Fatalf("key %d: cofactored %v, cofactorless %v; want true, false", i,
				ed25519x.Cofactored.Verify(pub, msg, sig), ed25519x.Cofactorless.Verify(pub, msg, sig))
		}
		if got, _ := agree(t, pub, msg, sig); !got {
			t.Fatalf("key %d: the reference refuses the signature", i)
		}
	}
}

// TestSmallOrderRHolder: a key's holder signs with R one of the eight
// small-order points (r = 0, S = k·a). crypto/ed25519 takes it when R is
// the identity, so Cofactorless, the rule of older states, must; the
// cofactored equation takes all eight. agree holds each rule to its
// reference (found in review: a Cofactorless refusing small-order R
// passed every other test).
func TestSmallOrderRHolder(t *testing.T) {
	seed := sha512.Sum512([]byte("small-order R by the holder"))
	priv := ed25519.NewKeyFromSeed(seed[:32])
	pub := priv.Public().(ed25519.PublicKey)
	msg := []byte("message")
	h := sha512.Sum512(priv.Seed())
	a, err := new(edwards25519.Scalar).SetBytesWithClamping(h[:32])
	if err != nil {
		t.Fatal(err)
	}
	cofactorless := 0
	for _, r := range smallOrderPoints() {
		sig := ed25519xtest.SignWith(a, nil, r, pub, msg)
		if got, _ := agree(t, pub, msg, sig); !got {
			t.Errorf("R %x: the cofactored rule refused the holder's signature", r)
		}
		if ed25519x.Cofactorless.Verify(pub, msg, sig) {
			cofactorless++
		}
	}
	if cofactorless != 1 {
		t.Errorf("the cofactorless rule took %d of the 8 small-order R, want 1 (the identity)", cofactorless)
	}
}
