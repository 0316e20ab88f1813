package state

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"testing"

	"github.com/integritee-go/integritee/internal/cputime"
)

// Benchmarks of the state at 1k, 100k and 1M accounts (docs/performance.md,
// "A million accounts"). An account is what the balances STF keeps: a
// balance entry (20-byte address under a prefix, a CBOR uint64) and a
// nonce entry. The costs that must not grow with the state are a block
// (BenchmarkScaleBlock); loading (restart, provisioning) is linear and
// must stay within the restart budget; heap per entry bounds the RSS.

var scaleSizes = []int{1_000, 100_000, 1_000_000}

func acctKey(prefix string, i int) []byte {
	k := append([]byte(prefix), make([]byte, 20)...)
	binary.BigEndian.PutUint64(k[len(prefix):], uint64(i)*0x9e3779b97f4a7c15)
	binary.BigEndian.PutUint32(k[len(prefix)+8:], uint32(i))
	return k
}

func amount(v uint64) []byte { return binary.BigEndian.AppendUint64([]byte{0x1b}, v) }

// scaleState returns a state of n accounts (2n entries) and its entries as
// the host stores them, sorted by key.
func scaleState(tb testing.TB, n int) (*State, []Entry) {
	tb.Helper()
	s := newState(tb, 1)
	b := s.Begin()
	for i := range n {
		b.Set(acctKey("balances/free/", i), amount(1<<40))
		b.Set(acctKey("system/nonce/", i), amount(uint64(i%7)))
	}
	cs, err := s.Commit(b, 1)
	if err != nil {
		tb.Fatal(err)
	}
	return s, cs.Entries
}

// transfers applies a block of k transfers between random accounts, each
// in a child batch as the runtime runs calls, and commits it.
func transfers(tb testing.TB, s *State, r *rand.Rand, n, k int, height int64) ChangeSet {
	return block(tb, s, k, height, func(int) (int, int) { return r.IntN(n), r.IntN(n) })
}

// block applies a block of k transfers, the i-th between the accounts
// pair(i) returns, each in a child batch as the runtime runs calls, and
// commits it.
func block(tb testing.TB, s *State, k int, height int64, pair func(i int) (from, to int)) ChangeSet {
	bt := s.Begin()
	for i := range k {
		c := bt.Child()
		from, to := pair(i)
		for _, key := range [][]byte{acctKey("balances/free/", from), acctKey("balances/free/", to), acctKey("system/nonce/", from)} {
			v, ok, err := c.Get(key)
			if err != nil || !ok {
				tb.Fatalf("account %x: %v %v", key, ok, err)
			}
			if err := c.Set(key, amount(binary.BigEndian.Uint64(v[1:])+1)); err != nil {
				tb.Fatal(err)
			}
		}
		if err := c.Write(); err != nil {
			tb.Fatal(err)
		}
	}
	cs, err := s.Commit(bt, height)
	if err != nil {
		tb.Fatal(err)
	}
	return cs
}

// BenchmarkScaleBlock measures a block of 256 transfers with its commit
// (encryption, root, change set) at each state size.
func BenchmarkScaleBlock(b *testing.B) {
	for _, n := range scaleSizes {
		b.Run(fmt.Sprintf("accounts=%d", n), func(b *testing.B) {
			s, _ := scaleState(b, n)
			r := rand.New(rand.NewPCG(1, 1))
			height := int64(2)
			c0 := cputime.Used()
			for b.Loop() {
				transfers(b, s, r, n, 256, height)
				height++
			}
			cputime.ReportPerOp(b, c0)
		})
	}
}

// BenchmarkScaleBlockHot measures a block of 192 transfers from 192
// senders to one recipient, the same accounts in every block (the load
// tool's closed loop): what grows with the state is the tree's depth
// under those accounts, not the accounts touched.
func BenchmarkScaleBlockHot(b *testing.B) {
	const senders = 192
	for _, n := range scaleSizes {
		b.Run(fmt.Sprintf("accounts=%d", n), func(b *testing.B) {
			s, _ := scaleState(b, n)
			height := int64(2)
			c0 := cputime.Used()
			for b.Loop() {
				block(b, s, senders, height, func(i int) (int, int) { return i, senders })
				height++
			}
			cputime.ReportPerOp(b, c0)
		})
	}
}

// BenchmarkScaleLoad measures a restart's state load: decrypting every
// entry and rebuilding the tree, in the host's chunks, then the root.
func BenchmarkScaleLoad(b *testing.B) {
	for _, n := range scaleSizes {
		b.Run(fmt.Sprintf("accounts=%d", n), func(b *testing.B) {
			want, entries := scaleState(b, n)
			root := want.Root()
			want = nil
			var s *State
			c0 := cputime.Used()
			for b.Loop() {
				s = newState(b, 1)
				s.Reserve(len(entries))
				for c := range slices.Chunk(entries, 4096) {
					if err := s.Load(c); err != nil {
						b.Fatal(err)
					}
				}
				if s.Root() != root {
					b.Fatal("root differs")
				}
			}
			b.StopTimer()
			cputime.ReportPerOp(b, c0)
			b.ReportMetric(float64(retained(func() { s = nil }))/float64(len(entries)), "heapB/entry")
		})
	}
}

// retained returns the live heap that drop frees.
func retained(drop func()) uint64 {
	var with, without runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&with)
	drop()
	runtime.GC()
	runtime.ReadMemStats(&without)
	return with.HeapAlloc - without.HeapAlloc
}

// BenchmarkScaleRootOf measures the keyless root of a full entry set (what
// the host and a provisioning peer compute).
func BenchmarkScaleRootOf(b *testing.B) {
	for _, n := range scaleSizes {
		b.Run(fmt.Sprintf("accounts=%d", n), func(b *testing.B) {
			s, entries := scaleState(b, n)
			for b.Loop() {
				if RootOf(entries) != s.Root() {
					b.Fatal("root differs")
				}
			}
		})
	}
}

// TestScaleRoots checks, on a state large enough to have deep shared
// prefixes, that the incremental root after blocks of transfers equals the
// root rebuilt from the host's entries and the root of a loaded state.
func TestScaleRoots(t *testing.T) {
	const n = 20_000
	s, entries := scaleState(t, n)
	h := host{}
	for _, e := range entries {
		h[e.Key] = e.Value
	}
	r := rand.New(rand.NewPCG(3, 4))
	for height := int64(2); height < 6; height++ {
		h.apply(transfers(t, s, r, n, 300, height))
	}
	all := h.entries()
	if got := RootOf(all); got != s.Root() {
		t.Fatalf("rebuilt root %x, incremental %x", got, s.Root())
	}
	slices.SortFunc(all, func(a, b Entry) int { return bytes.Compare(a.Key[:], b.Key[:]) })
	loaded := newState(t, 1)
	for c := range slices.Chunk(all, 1000) {
		if err := loaded.Load(c); err != nil {
			t.Fatal(err)
		}
	}
	if loaded.Root() != s.Root() || loaded.Len() != s.Len() {
		t.Fatalf("loaded %d entries root %x, want %d root %x", loaded.Len(), loaded.Root(), s.Len(), s.Root())
	}
}

// refRoot is the state hash by its definition (doc.go), computed directly
// from sorted entries without the incremental tree.
func refRoot(entries []Entry, depth int) [32]byte {
	switch len(entries) {
	case 0:
		return [32]byte{}
	case 1:
		vh := sha256.Sum256(entries[0].Value)
		return sha256.Sum256(slices.Concat([]byte{leafPrefix}, entries[0].Key[:], vh[:]))
	}
	i := 0
	for i < len(entries) && bit(&entries[i].Key, depth) == 0 {
		i++
	}
	l, r := refRoot(entries[:i], depth+1), refRoot(entries[i:], depth+1)
	return sha256.Sum256(slices.Concat([]byte{innerPrefix}, l[:], r[:]))
}

// TestRootDefinition checks the arena tree against the definition and a
// plaintext model, through
// inserts, updates and deletes that collapse subtrees, including keys that
// share long prefixes.
func TestRootDefinition(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	s := newState(t, 1)
	h := host{}
	model := map[string][]byte{}
	check := func(height int64) {
		t.Helper()
		for k, v := range model {
			if got, ok := s.Get([]byte(k)); !ok || !bytes.Equal(got, v) {
				t.Fatalf("height %d: %s = %q %v, want %q", height, k, got, ok, v)
			}
		}
		if s.Len() != len(model) {
			t.Fatalf("height %d: %d entries, want %d", height, s.Len(), len(model))
		}
		all := h.entries()
		slices.SortFunc(all, func(a, b Entry) int { return bytes.Compare(a.Key[:], b.Key[:]) })
		if want := refRoot(all, 0); s.Root() != want || RootOf(all) != want {
			t.Fatalf("height %d: root %x, RootOf %x, by definition %x", height, s.Root(), RootOf(all), want)
		}
	}
	check(0)
	for height := int64(1); height <= 60; height++ {
		h.apply(commit(t, s, height, func(b *Batch) {
			for range 1 + r.IntN(40) {
				k := fmt.Appendf(nil, "k%d", r.IntN(300))
				if r.IntN(3) == 0 {
					b.Delete(k)
					delete(model, string(k))
				} else {
					// Values inline in a leaf and larger ones, and
					// changes between the two.
					v := bytes.Repeat([]byte{byte(r.Int())}, r.IntN(2*inlineValue+2))
					b.Set(k, v)
					model[string(k)] = v
				}
			}
		}))
		check(height)
	}
	// Keys sharing their first 250 bits: a long chain of one-child nodes,
	// built and collapsed again.
	tr := tree{}
	var a, b [32]byte
	b[31] = 0x3
	va, vb := sha256.Sum256([]byte("a")), sha256.Sum256([]byte("b"))
	tr.set(a, va, nil)
	tr.set(b, vb, nil)
	want := refRoot([]Entry{{Key: a, Value: []byte("a")}, {Key: b, Value: []byte("b")}}, 0)
	if tr.rootHash() != want {
		t.Fatal("root of two keys with a long shared prefix differs from the definition")
	}
	tr.remove(b)
	if tr.rootHash() != refRoot([]Entry{{Key: a, Value: []byte("a")}}, 0) || len(tr.kids)-1 != len(tr.freeI) {
		t.Fatalf("after removing one: root differs or %d inner nodes left", len(tr.kids)-1-len(tr.freeI))
	}
}
