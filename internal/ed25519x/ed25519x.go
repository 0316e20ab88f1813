// Package ed25519x is the project's one ed25519 signature check. Every
// signature the chain, the enclave, the worker or the client accepts goes
// through Verify or a Batch, never through crypto/ed25519.Verify directly.
//
// crypto/ed25519 accepts any public key that decodes as a curve point,
// including the eight points of small order. For such a key A, [k]A takes
// at most eight values whatever the message, so a signature (R, S = 0) with
// R one of those values verifies for a large share of messages without
// any private key: the all-zero address, once used as "no sudo", is such a
// key (issue 9, finding 1). Verify refuses small-order keys, non-canonical
// encodings of the key and of R, and S >= L.
//
// The equation is the cofactored one of RFC 8032 (and FIPS 186-5):
// [8][S]B = [8]R + [8][k]A. Unlike crypto/ed25519's cofactorless
// [S]B = R + [k]A, it can be checked for many signatures at once (Batch),
// and a batch's verdict on each signature is exactly Verify's; CometBFT
// verifies its votes the same way. The two equations differ only on
// signatures whose R or key has a small-order component, which only the
// key's holder can make (S = r + k·a needs a): honest signatures verify
// under both, and nobody else can make a signature either accepts.
//
// The check is curve25519-voi's (oasis-core's, already in the module
// through CometBFT); the tests hold it to an independent reference written
// on filippo.io/edwards25519, the code crypto/ed25519 is built on.
package ed25519x

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"slices"
	"sync"

	"filippo.io/edwards25519"
	voi "github.com/oasisprotocol/curve25519-voi/primitives/ed25519"
)

// strict is Verify's semantics in curve25519-voi's terms: the cofactored
// equation, canonical encodings of A and R, S below L (voi always checks
// that), no small-order A. voi's own default is the same, spelled out so
// that a change of its default cannot change ours.
var strict = &voi.Options{Verify: &voi.VerifyOptions{AllowSmallOrderR: true}}

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

// Verify reports whether sig is a valid signature of msg by pub: false for
// a key CheckPublicKey refuses, for a signature that is not
// ed25519.SignatureSize bytes, whose R is not the canonical encoding of a
// curve point or whose S is not below the group order L, and otherwise
// whether [8][S]B = [8]R + [8][k]A with k = SHA-512(R || A || msg). It
// never panics: voi panics only on a key of the wrong size, which it never
// gets.
func Verify(pub, msg, sig []byte) bool {
	return keyShape(pub) && voi.VerifyWithOptions(voi.PublicKey(pub), msg, sig, strict)
}

// Rule is an equation a signature is checked under. The rules differ only
// on signatures whose R or key has a small-order component, which only a
// key's holder can make; but a key's holder can make them, so replicas
// that apply the same signed input each under their own rule can be led
// apart. State that replicas apply independently is checked under the rule
// its version names (enclave.SignatureRule), never under whichever rule a
// build prefers.
type Rule uint8

const (
	// Cofactored is Verify's rule. The zero Rule is no rule and takes
	// no signature, so that a rule left unset fails closed.
	Cofactored Rule = iota + 1
	// Cofactorless is crypto/ed25519's equation [S]B = R + [k]A, R
	// compared as bytes, with Verify's refusals of keys and of S >= L:
	// the project's rule before chain AppVersion 3, and the rule of
	// enclave states below version 3. Every signature it takes,
	// Cofactored takes. It cannot be checked in a Batch.
	Cofactorless
)

// cofactorless is the Cofactorless equation in curve25519-voi's terms
// (crypto/ed25519's); its allowances for small-order and non-canonical
// keys never apply, keyShape refuses those keys first.
var cofactorless = &voi.Options{Verify: voi.VerifyOptionsStdLib}

// Verify reports whether sig is a valid signature of msg by pub under
// rule r; false for a rule this package does not know.
func (r Rule) Verify(pub, msg, sig []byte) bool {
	switch r {
	case Cofactored:
		return Verify(pub, msg, sig)
	case Cofactorless:
		return keyShape(pub) && voi.VerifyWithOptions(voi.PublicKey(pub), msg, sig, cofactorless)
	}
	return false
}

func (r Rule) String() string {
	switch r {
	case Cofactored:
		return "cofactored"
	case Cofactorless:
		return "cofactorless"
	}
	return fmt.Sprintf("Rule(%d)", uint8(r))
}

// keyShape is CheckPublicKey without the point decoding, which voi does
// anyway: the size, the canonical encoding, and not one of the eight
// small-order points, which with a canonical encoding is a byte compare.
// voi refuses such keys itself (strict); this keeps the refusal ours.
func keyShape(pub []byte) bool {
	return len(pub) == ed25519.PublicKeySize && canonical(pub) && !slices.Contains(smallOrder[:], [32]byte(pub))
}

// smallOrder are the canonical encodings of the eight points of small
// order (TestSmallOrderEncodings checks them against the curve).
var smallOrder = [8][32]byte{
	{0x01},
	yMinusOne,
	{},
	{31: 0x80},
	{0xc7, 0x17, 0x6a, 0x70, 0x3d, 0x4d, 0xd8, 0x4f, 0xba, 0x3c, 0x0b, 0x76, 0x0d, 0x10, 0x67, 0x0f,
		0x2a, 0x20, 0x53, 0xfa, 0x2c, 0x39, 0xcc, 0xc6, 0x4e, 0xc7, 0xfd, 0x77, 0x92, 0xac, 0x03, 0x7a},
	{0xc7, 0x17, 0x6a, 0x70, 0x3d, 0x4d, 0xd8, 0x4f, 0xba, 0x3c, 0x0b, 0x76, 0x0d, 0x10, 0x67, 0x0f,
		0x2a, 0x20, 0x53, 0xfa, 0x2c, 0x39, 0xcc, 0xc6, 0x4e, 0xc7, 0xfd, 0x77, 0x92, 0xac, 0x03, 0xfa},
	{0x26, 0xe8, 0x95, 0x8f, 0xc2, 0xb2, 0x27, 0xb0, 0x45, 0xc3, 0xf4, 0x89, 0xf2, 0xef, 0x98, 0xf0,
		0xd5, 0xdf, 0xac, 0x05, 0xd3, 0xc6, 0x33, 0x39, 0xb1, 0x38, 0x02, 0x88, 0x6d, 0x53, 0xfc, 0x05},
	{0x26, 0xe8, 0x95, 0x8f, 0xc2, 0xb2, 0x27, 0xb0, 0x45, 0xc3, 0xf4, 0x89, 0xf2, 0xef, 0x98, 0xf0,
		0xd5, 0xdf, 0xac, 0x05, 0xd3, 0xc6, 0x33, 0x39, 0xb1, 0x38, 0x02, 0x88, 0x6d, 0x53, 0xfc, 0x85},
}

// Batch checks many signatures together, with Verify's verdict on each
// (the Cofactored rule):
// from a few dozen on it costs about three quarters of Verify per
// signature (BenchmarkBatch), about half with its keys in a Keys cache.
// One invalid signature makes the batch
// equation fail, after which each signature is checked alone, so a
// spoiled batch of n costs the equation plus n checks; callers keep
// batches small enough (tens) that one bad signature cannot cost much. It
// is not safe for concurrent use.
type Batch struct {
	entries []entry
	keys    *Keys
}

type entry struct {
	pub, msg, sig []byte
	scope         *Scope // nil: not cached
}

// minBatch is the smallest batch worth the batch equation: below it,
// each signature is checked alone, which costs less (BenchmarkBatch).
const minBatch = 4

// NewBatch returns an empty batch with room for n signatures. Keys, if
// not nil, caches the expanded keys of the signatures added with AddIn
// across batches; it changes no verdict.
func NewBatch(n int, keys *Keys) *Batch {
	return &Batch{entries: make([]entry, 0, n), keys: keys}
}

// Add adds a signature to check, its key expanded for this batch only.
// The batch keeps pub, msg and sig until Verify; they must not change
// before.
func (b *Batch) Add(pub, msg, sig []byte) {
	b.entries = append(b.entries, entry{pub: pub, msg: msg, sig: sig})
}

// AddIn is Add with the key cached in the batch's Keys under scope: a
// later signature added in the same scope by the same key skips the
// expansion; one in another scope never finds it (Keys). A nil scope
// caches nothing, as Add. The batch keeps scope until Verify too.
func (b *Batch) AddIn(scope *Scope, pub, msg, sig []byte) {
	b.entries = append(b.entries, entry{pub: pub, msg: msg, sig: sig, scope: scope})
}

// Len is the number of signatures added.
func (b *Batch) Len() int { return len(b.entries) }

// Verify reports, in the order they were added, whether each signature is
// valid: ok[i] is Verify of the i-th Add's arguments. The batch equation's
// random coefficients come from crypto/rand: a batch with an invalid
// signature passes it with probability 2^-128 at most.
func (b *Batch) Verify() (ok []bool) {
	ok = make([]bool, len(b.entries))
	// Keys keyShape refuses never reach voi (at[i] = -1), so that its
	// verdicts on keys are never the only ones.
	at := make([]int, len(b.entries))
	n := 0
	for i, e := range b.entries {
		at[i] = -1
		if keyShape(e.pub) {
			at[i] = n
			n++
		}
	}
	if n < minBatch {
		for i, e := range b.entries {
			ok[i] = at[i] >= 0 && b.verify(e)
		}
		return ok
	}
	bv := voi.NewBatchVerifierWithCapacity(n)
	for i, e := range b.entries {
		if at[i] < 0 {
			continue
		}
		if x := b.cached(e); x != nil {
			bv.AddExpandedWithOptions(x, e.msg, e.sig, strict)
		} else {
			bv.AddWithOptions(voi.PublicKey(e.pub), e.msg, e.sig, strict)
		}
	}
	_, valid := bv.Verify(nil)
	for i, j := range at {
		ok[i] = j >= 0 && valid[j]
	}
	return ok
}

// cached returns e's expanded key from the batch's cache, or nil for an
// entry added without a scope; e's key has keyShape.
func (b *Batch) cached(e entry) *voi.ExpandedPublicKey {
	if e.scope == nil {
		return nil
	}
	return b.keys.expanded(*e.scope, e.pub)
}

// verify is Verify of e, its key from the cache where there is one; e's
// key has keyShape.
func (b *Batch) verify(e entry) bool {
	if x := b.cached(e); x != nil {
		return voi.VerifyExpandedWithOptions(x, e.msg, e.sig, strict)
	}
	return Verify(e.pub, e.msg, e.sig)
}

// Scope is what a cached key is kept for. The enclave's is the shielded
// channel a call came on: a channel's calls come from one client, so a
// key cached for them is found only by that client's next calls.
type Scope [16]byte

// Keys is a bounded cache of expanded public keys (a decoded point and
// its multiplication tables, about 1.5 KiB each): a quarter of the cost
// of checking a signature in a batch is expanding its key, and a client
// signs call after call with the same keys.
//
// A key is cached under a scope and found only in it. A cache of keys
// alone let whoever can time the checks (the enclave's host, which hands
// it the calls) learn whether an address had signed recently: it sends a
// call that names the address, with any signature, and a cached key
// answers ~9 µs sooner. Within a scope it learns at most what the scope's
// own calls tell it. The enclave's host cannot make calls on a client's
// channel, only replay them; by filling the cache with keys of its own
// and then replaying two of a channel's calls, it can tell whether they
// have the same signer. It learns that anyway from the state: put in
// blocks of their own, two calls of one signer both change its nonce's
// entry. Filling the cache also drops every client's keys, which costs
// them time, not correctness.
//
// The cache holds two generations of up to half its size each: an entry
// found in the older one moves to the newer, and when the newer is full
// the older is dropped, so the entries used within the last size/2
// distinct ones stay. Safe for concurrent use; the zero of a *Keys (nil)
// caches nothing.
type Keys struct {
	mu         sync.Mutex
	half       int
	cur, old   map[scopedKey]*voi.ExpandedPublicKey
	expansions uint64
}

type scopedKey struct {
	scope Scope
	pub   [32]byte
}

// NewKeys returns a cache of at most size keys (at least 2).
func NewKeys(size int) *Keys {
	half := max(size/2, 1)
	return &Keys{half: half, cur: make(map[scopedKey]*voi.ExpandedPublicKey, half)}
}

// expanded returns pub's expanded key cached in scope, or nil for a nil
// cache or a key that is not a point (which voi then refuses on its own).
// pub has keyShape.
func (k *Keys) expanded(scope Scope, pub []byte) *voi.ExpandedPublicKey {
	if k == nil {
		return nil
	}
	key := scopedKey{scope, [32]byte(pub)}
	k.mu.Lock()
	if x, ok := k.cur[key]; ok {
		k.mu.Unlock()
		return x
	}
	if x, ok := k.old[key]; ok {
		delete(k.old, key)
		k.put(key, x)
		k.mu.Unlock()
		return x
	}
	k.mu.Unlock()
	// Expanded outside the lock: the other goroutines of a batch's
	// checks go on meanwhile.
	x, err := voi.NewExpandedPublicKey(voi.PublicKey(pub))
	if err != nil {
		return nil
	}
	k.mu.Lock()
	k.put(key, x)
	k.expansions++
	k.mu.Unlock()
	return x
}

// put adds x to the newer generation, which first becomes the older if it
// is full. k.mu is held.
func (k *Keys) put(key scopedKey, x *voi.ExpandedPublicKey) {
	if len(k.cur) >= k.half {
		k.old, k.cur = k.cur, make(map[scopedKey]*voi.ExpandedPublicKey, k.half)
	}
	k.cur[key] = x
}

// Len is the number of keys held.
func (k *Keys) Len() int {
	if k == nil {
		return 0
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	return len(k.cur) + len(k.old)
}

// Expansions is the number of keys expanded for the cache (not found in
// it).
func (k *Keys) Expansions() uint64 {
	if k == nil {
		return 0
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.expansions
}
