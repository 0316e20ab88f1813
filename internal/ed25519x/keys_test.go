package ed25519x

import (
	"crypto/ed25519"
	"crypto/sha256"
	"fmt"
	"sync"
	"testing"
)

// scope is the tests' one scope.
var scope = Scope{1}

// TestKeysBounded: a Keys cache holds at most its size, finds a key used
// within the last size/2 distinct keys (the same expansion, not a new
// one), and a nil cache expands nothing.
func TestKeysBounded(t *testing.T) {
	const size = 16
	pubs := make([][]byte, 3*size)
	for i := range pubs {
		seed := sha256.Sum256(fmt.Appendf(nil, "keys %d", i))
		pubs[i] = ed25519.NewKeyFromSeed(seed[:]).Public().(ed25519.PublicKey)
	}
	k := NewKeys(size)
	first := k.expanded(scope, pubs[0])
	if first == nil {
		t.Fatal("no expansion of a valid key")
	}
	for i, pub := range pubs {
		k.expanded(scope, pub)
		if n := k.Len(); n > size {
			t.Fatalf("after %d keys the cache holds %d, more than %d", i+1, n, size)
		}
		// The key used size/2 keys ago is still there: found, and kept.
		if i >= size/2 {
			back := pubs[i-size/2+1]
			x := k.expanded(scope, back)
			if y := k.expanded(scope, back); x != y {
				t.Fatalf("key %d expanded anew while cached", i-size/2+1)
			}
		}
	}
	if k.expanded(scope, pubs[0]) == first {
		t.Fatal("the first key is still cached after 3×size others")
	}
	var none *Keys
	if none.expanded(scope, pubs[0]) != nil || none.Len() != 0 {
		t.Fatal("a nil cache returned a key")
	}
	// Not a point: y² = (y²-1)/(dy²+1) has no root for y = 2 (canonical,
	// not small order); nothing is cached for it.
	bad := make([]byte, 32)
	bad[0] = 2
	if !keyShape(bad) {
		t.Fatal("test key refused by keyShape")
	}
	before := k.Len()
	if k.expanded(scope, bad) != nil || k.Len() != before {
		t.Fatal("a key that is not a point was expanded or cached")
	}
}

// TestKeysConcurrent runs lookups from many goroutines (for -race).
func TestKeysConcurrent(t *testing.T) {
	pubs := make([][]byte, 40)
	for i := range pubs {
		seed := sha256.Sum256(fmt.Appendf(nil, "concurrent %d", i))
		pubs[i] = ed25519.NewKeyFromSeed(seed[:]).Public().(ed25519.PublicKey)
	}
	k := NewKeys(16)
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 200 {
				if k.expanded(scope, pubs[(g*7+i)%len(pubs)]) == nil {
					t.Error("no expansion")
					return
				}
			}
		})
	}
	wg.Wait()
	if k.Len() > 16 {
		t.Fatalf("%d keys held, more than 16", k.Len())
	}
}

// TestKeysConcurrentBatches: batches checked at once from several
// goroutines through one small cache (keys dropped and expanded again all
// the time) give Verify's verdicts, a fifth of the signatures spoiled.
func TestKeysConcurrentBatches(t *testing.T) {
	type sig struct{ pub, msg, sig []byte }
	var sigs []sig
	for i := range 24 {
		seed := sha256.Sum256(fmt.Appendf(nil, "concurrent batch %d", i))
		priv := ed25519.NewKeyFromSeed(seed[:])
		msg := fmt.Appendf(nil, "call %d", i)
		s := ed25519.Sign(priv, msg)
		if i%5 == 0 {
			s[3] ^= 1
		}
		sigs = append(sigs, sig{priv.Public().(ed25519.PublicKey), msg, s})
	}
	k := NewKeys(6)
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for r := range 30 {
				n := 1 + (g+r)%10
				b := NewBatch(n, k)
				var in []sig
				for j := range n {
					s := sigs[(g*5+r*3+j)%len(sigs)]
					in = append(in, s)
					b.AddIn(&Scope{byte(j % 2)}, s.pub, s.msg, s.sig)
				}
				for i, ok := range b.Verify() {
					if want := Verify(in[i].pub, in[i].msg, in[i].sig); ok != want {
						t.Errorf("goroutine %d round %d entry %d: %v, Verify says %v", g, r, i, ok, want)
					}
				}
			}
		})
	}
	wg.Wait()
}

// TestKeysScoped: a key cached in one scope is not found in another (the
// enclave's host must not learn, by timing its own calls, which keys its
// clients' calls were signed by), and is still found in its own.
func TestKeysScoped(t *testing.T) {
	seed := sha256.Sum256([]byte("scoped"))
	pub := ed25519.NewKeyFromSeed(seed[:]).Public().(ed25519.PublicKey)
	k := NewKeys(16)
	client, other := Scope{0xc1}, Scope{0x0e}
	x := k.expanded(client, pub)
	if y := k.expanded(other, pub); y == nil || y == x {
		t.Fatal("a key cached in one scope was found in another")
	}
	if k.expanded(client, pub) != x {
		t.Fatal("a key cached in its scope was expanded anew")
	}
	if k.Len() != 2 {
		t.Fatalf("%d entries, want one per scope", k.Len())
	}
	// A batch caches only what is added in a scope.
	msg := []byte("call")
	sig := ed25519.Sign(ed25519.NewKeyFromSeed(seed[:]), msg)
	b := NewBatch(1, k)
	b.Add(pub, msg, sig)
	b.Add(pub, msg, sig)
	if ok := b.Verify(); !ok[0] || !ok[1] || k.Len() != 2 {
		t.Fatalf("verdicts %v, %d entries: an unscoped signature's key was cached", ok, k.Len())
	}
	b = NewBatch(1, k)
	b.AddIn(&Scope{0x77}, pub, msg, sig)
	if ok := b.Verify(); !ok[0] || k.Len() != 3 {
		t.Fatalf("verdict %v, %d entries: a scoped signature's key was not cached in its scope", ok, k.Len())
	}
}
