package state

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"runtime"
	"slices"
	"strings"
	"testing"
)

func newState(t testing.TB, key byte) *State {
	t.Helper()
	s, err := New(bytes.Repeat([]byte{key}, 32))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// host is what the host persists: encrypted entries by blinded key.
type host map[Key][]byte

func (h host) apply(cs ChangeSet) {
	for _, e := range cs.Entries {
		if len(e.Value) == 0 {
			delete(h, e.Key)
		} else {
			h[e.Key] = e.Value
		}
	}
}

func (h host) entries() []Entry {
	var out []Entry
	for k, v := range h {
		out = append(out, Entry{Key: k, Value: v})
	}
	return out
}

func commit(t testing.TB, s *State, height int64, f func(b *Batch)) ChangeSet {
	t.Helper()
	b := s.Begin()
	f(b)
	cs, err := s.Commit(b, height)
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

func TestBatchesAndCommit(t *testing.T) {
	s := newState(t, 1)
	if s.Root() != ([32]byte{}) {
		t.Fatal("empty state has a non-zero root")
	}
	h := host{}
	cs := commit(t, s, 1, func(b *Batch) {
		b.Set([]byte("alice"), []byte("100"))
		b.Set([]byte("bob"), []byte("5"))
		c := b.Child()
		c.Set([]byte("carol"), []byte("1"))
		// c is dropped: a failed call.
		c2 := b.Child()
		c2.Set([]byte("bob"), []byte("6"))
		if v, ok, _ := c2.Get([]byte("alice")); !ok || string(v) != "100" {
			t.Fatalf("child reads parent: %q %v", v, ok)
		}
		if err := c2.Write(); err != nil {
			t.Fatal(err)
		}
		if err := c2.Set([]byte("x"), nil); !errors.Is(err, ErrCommitted) {
			t.Fatalf("write after Write: %v", err)
		}
	})
	h.apply(cs)
	if len(cs.Entries) != 2 || cs.Root != s.Root() || cs.Root != RootOf(h.entries()) {
		t.Fatalf("change set %+v", cs)
	}
	for _, e := range cs.Entries {
		for _, secret := range []string{"alice", "bob", "100", "6"} {
			if bytes.Contains(e.Value, []byte(secret)) || bytes.Contains(e.Key[:], []byte(secret)) {
				t.Fatalf("plaintext %q visible in an entry", secret)
			}
		}
	}
	if v, ok := s.Get([]byte("bob")); !ok || string(v) != "6" {
		t.Fatalf("bob = %q %v", v, ok)
	}
	if _, ok := s.Get([]byte("carol")); ok {
		t.Fatal("dropped child batch was applied")
	}

	// Rewriting a value unchanged produces no entry; deleting an absent
	// key neither.
	cs = commit(t, s, 2, func(b *Batch) {
		b.Set([]byte("alice"), []byte("100"))
		b.Delete([]byte("nobody"))
	})
	if len(cs.Entries) != 0 {
		t.Fatalf("no-op commit changed %d entries", len(cs.Entries))
	}
	cs = commit(t, s, 3, func(b *Batch) { b.Delete([]byte("alice")) })
	h.apply(cs)
	if len(cs.Entries) != 1 || len(cs.Entries[0].Value) != 0 || s.Len() != 1 || cs.Root != RootOf(h.entries()) {
		t.Fatalf("delete: %+v len %d", cs, s.Len())
	}
}

func TestDeterministicAcrossEnclaves(t *testing.T) {
	a, b := newState(t, 1), newState(t, 1)
	f := func(bt *Batch) {
		bt.Set([]byte("k1"), []byte("v1"))
		bt.Set([]byte("k2"), []byte("v2"))
	}
	ca, cb := commit(t, a, 5, f), commit(t, b, 5, f)
	if !slices.EqualFunc(ca.Entries, cb.Entries, func(x, y Entry) bool { return x.Key == y.Key && bytes.Equal(x.Value, y.Value) }) {
		t.Fatal("two enclaves of the shard produced different entries")
	}
	// The same value at another height is encrypted under another nonce.
	c := newState(t, 1)
	cc := commit(t, c, 6, f)
	if bytes.Equal(cc.Entries[0].Value, ca.Entries[0].Value) {
		t.Fatal("nonce does not depend on the height")
	}
	// Another state key blinds and encrypts differently.
	d := newState(t, 2)
	cd := commit(t, d, 5, f)
	if cd.Root == ca.Root || d.Blind([]byte("k1")) == a.Blind([]byte("k1")) {
		t.Fatal("state key does not separate shards")
	}
}

func TestRootIndependentOfOrder(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	s := newState(t, 1)
	h := host{}
	live := map[string]bool{}
	for height := int64(1); height <= 40; height++ {
		cs := commit(t, s, height, func(b *Batch) {
			for range 25 {
				k := fmt.Sprintf("k%d", r.IntN(200))
				if r.IntN(3) == 0 {
					b.Delete([]byte(k))
					delete(live, k)
				} else {
					b.Set([]byte(k), []byte(fmt.Sprint(r.Int())))
					live[k] = true
				}
			}
		})
		h.apply(cs)
		entries := h.entries()
		r.Shuffle(len(entries), func(i, j int) { entries[i], entries[j] = entries[j], entries[i] })
		if got := RootOf(entries); got != cs.Root {
			t.Fatalf("height %d: incremental root %x, rebuilt %x", height, cs.Root, got)
		}
		if s.Len() != len(live) || len(h) != len(live) {
			t.Fatalf("height %d: %d entries, host %d, want %d", height, s.Len(), len(h), len(live))
		}
	}
}

func TestLoad(t *testing.T) {
	s := newState(t, 1)
	h := host{}
	h.apply(commit(t, s, 1, func(b *Batch) {
		for i := range 50 {
			b.Set(fmt.Appendf(nil, "k%d", i), fmt.Appendf(nil, "v%d", i))
		}
	}))
	restarted := newState(t, 1)
	if err := restarted.Load(h.entries()); err != nil {
		t.Fatal(err)
	}
	if restarted.Root() != s.Root() || restarted.Len() != 50 {
		t.Fatal("restored state differs")
	}
	if v, ok := restarted.Get([]byte("k7")); !ok || string(v) != "v7" {
		t.Fatalf("k7 = %q", v)
	}

	e := h.entries()[0]
	flipped := bytes.Clone(e.Value)
	flipped[len(flipped)-1] ^= 1
	other := e.Key
	other[0] ^= 1
	tests := []struct {
		name    string
		key     byte
		entries []Entry
		want    error
	}{
		{"tampered value", 1, []Entry{{Key: e.Key, Value: flipped}}, ErrCorruptEntry},
		{"moved to another key", 1, []Entry{{Key: other, Value: e.Value}}, ErrCorruptEntry},
		{"truncated", 1, []Entry{{Key: e.Key, Value: e.Value[:10]}}, ErrCorruptEntry},
		{"empty", 1, []Entry{{Key: e.Key}}, ErrCorruptEntry},
		{"other state key", 2, []Entry{e}, ErrCorruptEntry},
		{"duplicate", 1, []Entry{e, e}, ErrDuplicateEntry},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := newState(t, tt.key).Load(tt.entries); !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestBounds(t *testing.T) {
	b := newState(t, 1).Begin()
	if err := b.Set(make([]byte, MaxKeySize+1), nil); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("long key: %v", err)
	}
	if err := b.Set([]byte("k"), make([]byte, MaxValueSize+1)); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("long value: %v", err)
	}
}

// BenchmarkStateUpdate measures one block that changes 100 entries of a
// state holding 1k or 100k: the cost must not grow with the state.
func BenchmarkStateUpdate(b *testing.B) {
	for _, n := range []int{1_000, 100_000} {
		b.Run(fmt.Sprintf("entries=%d", n), func(b *testing.B) {
			s := newState(b, 1)
			commit(b, s, 1, func(bt *Batch) {
				for i := range n {
					bt.Set(fmt.Appendf(nil, "acct/%d", i), fmt.Appendf(nil, "balance %d", i))
				}
			})
			r := rand.New(rand.NewPCG(1, 1))
			height := int64(2)
			b.ResetTimer()
			for b.Loop() {
				bt := s.Begin()
				for range 100 {
					bt.Set(fmt.Appendf(nil, "acct/%d", r.IntN(n)), fmt.Appendf(nil, "balance %d", r.Int()))
				}
				if _, err := s.Commit(bt, height); err != nil {
					b.Fatal(err)
				}
				height++
			}
		})
	}
}

// TestEntryDefinition recomputes a commit's entries from their definition
// in doc.go with the standard library alone (HKDF-derived keys; blinded
// key HMAC-SHA256(blind key, k); nonce HMAC-SHA256(nonce key, blinded key
// || height || v)[:12]; AES-256-GCM with the blinded key as associated
// data), so that every enclave of a shard, of any release, writes the
// same bytes. Several keys and a second commit reuse the state's MACs.
func TestEntryDefinition(t *testing.T) {
	stateKey := bytes.Repeat([]byte{7}, 32)
	s, err := New(stateKey)
	if err != nil {
		t.Fatal(err)
	}
	derive := func(info string) []byte {
		k, err := hkdf.Key(sha256.New, stateKey, nil, "integritee/state/v1/"+info, 32)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	mac := func(key []byte, parts ...[]byte) []byte {
		m := hmac.New(sha256.New, key)
		for _, p := range parts {
			m.Write(p)
		}
		return m.Sum(nil)
	}
	blk, err := aes.NewCipher(derive("encrypt"))
	if err != nil {
		t.Fatal(err)
	}
	gcm, err := cipher.NewGCM(blk)
	if err != nil {
		t.Fatal(err)
	}
	// Values from 14 bytes to several hash blocks.
	value := func(i int, height int64) []byte {
		return fmt.Appendf(nil, "value %d at %d%s", i, height, strings.Repeat(".", 70*i))
	}
	want := map[Key][]byte{}
	for height := int64(1); height <= 2; height++ {
		cs := commit(t, s, height, func(b *Batch) {
			for i := range 5 {
				b.Set(fmt.Appendf(nil, "key %d", i), value(i, height))
			}
		})
		runtime.GC() // the next commit may find the MACs' pools emptied
		for i := range 5 {
			k, v := fmt.Appendf(nil, "key %d", i), value(i, height)
			blinded := Key(mac(derive("blind"), k))
			if got := s.Blind(k); got != blinded {
				t.Fatalf("Blind(%q) = %x, want %x", k, got, blinded)
			}
			nonce := mac(derive("nonce"), blinded[:], binary.BigEndian.AppendUint64(nil, uint64(height)), v)[:12]
			want[blinded] = gcm.Seal(bytes.Clone(nonce), nonce, v, blinded[:])
		}
		if len(cs.Entries) != 5 {
			t.Fatalf("height %d: %d entries, want 5", height, len(cs.Entries))
		}
		for _, e := range cs.Entries {
			if !bytes.Equal(e.Value, want[e.Key]) {
				t.Fatalf("height %d: entry %x is %x, want %x", height, e.Key[:4], e.Value, want[e.Key])
			}
		}
	}
}

// TestRootChurn checks the tree against the definition (refRoot) through
// rounds of deletes (subtrees collapsing, their nodes freed), inserts that
// reuse the freed nodes, updates and keys sharing long prefixes, above
// parallelMin (rootHash's concurrent subtrees, which clear stale flags that
// share bitset words) and, every fourth round, below it. From a review of
// the bitset of stale flags.
func TestRootChurn(t *testing.T) {
	if runtime.GOMAXPROCS(0) < 2 {
		defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(2))
	}
	r := rand.New(rand.NewPCG(7, 8))
	model := map[[32]byte][]byte{}
	var tr tree
	mk := func(i uint64) [32]byte {
		var b [8]byte
		binary.BigEndian.PutUint64(b[:], i)
		k := sha256.Sum256(b[:])
		if i%5 == 0 { // clusters with long shared prefixes
			base := sha256.Sum256([]byte{byte(i % 97)})
			copy(k[:28], base[:28])
		}
		return k
	}
	check := func(round int) {
		var all []Entry
		for k, v := range model {
			all = append(all, Entry{Key: k, Value: v})
		}
		slices.SortFunc(all, func(a, b Entry) int { return bytes.Compare(a.Key[:], b.Key[:]) })
		want := refRoot(all, 0)
		if got := tr.rootHash(); got != want {
			t.Fatalf("round %d (%d entries): root %x want %x", round, len(model), got, want)
		}
		if tr.n != len(model) {
			t.Fatalf("n %d want %d", tr.n, len(model))
		}
	}
	next := uint64(0)
	add := func(k int) {
		for range k {
			key := mk(next)
			next++
			v := []byte{byte(r.Int())}
			model[key] = v
			tr.set(key, sha256.Sum256(v), nil)
		}
	}
	keys := func() [][32]byte {
		return slices.SortedFunc(maps.Keys(model), func(a, b [32]byte) int { return bytes.Compare(a[:], b[:]) })
	}
	add(20000)
	check(0)
	for round := 1; round <= 12; round++ {
		ks := keys()
		r.Shuffle(len(ks), func(i, j int) { ks[i], ks[j] = ks[j], ks[i] })
		del := 1500
		if round%4 == 0 {
			del = 6000 // drop below parallelMin and come back
		}
		for _, k := range ks[:del] {
			delete(model, k)
			tr.remove(k)
		}
		for _, k := range ks[del : del+500] {
			v := []byte{byte(r.Int()), 1}
			model[k] = v
			tr.set(k, sha256.Sum256(v), nil)
		}
		if round%3 == 0 {
			check(round * 10) // a root between deletes and re-inserts
		}
		add(del)
		// re-insert some deleted keys (same keys, new leaves and inner nodes from the free lists)
		for _, k := range ks[:200] {
			v := []byte{byte(r.Int()), 2}
			model[k] = v
			tr.set(k, sha256.Sum256(v), nil)
		}
		check(round)
	}
}

// TestBatchBlindedRing: a batch's ring of blinded keys gives every key
// its own blinded key, whatever the mix of keys of equal length, keys
// too long for the ring and keys that fell out of it, and reads see the
// writes they follow.
func TestBatchBlindedRing(t *testing.T) {
	s := newState(t, 1)
	keys := [][]byte{
		{}, {1}, {2},
		[]byte("balances/free/aaaaaaaaaaaaaaaaaaaa"), []byte("balances/free/aaaaaaaaaaaaaaaaaaab"),
		[]byte("system/nonce/aaaaaaaaaaaaaaaaaaaa"), bytes.Repeat([]byte{'k'}, maxBlindedKey),
		bytes.Repeat([]byte{'k'}, maxBlindedKey+1), bytes.Repeat([]byte{'x'}, 100),
	}
	r := rand.New(rand.NewPCG(5, 6))
	b := s.Begin()
	want := map[string][]byte{}
	for i := range 2000 {
		k := keys[r.IntN(len(keys))]
		if got := b.blind(k); got != s.Blind(k) {
			t.Fatalf("step %d: key %q blinded %x, want %x", i, k, got, s.Blind(k))
		}
		if r.IntN(2) == 0 {
			v := []byte{byte(i), byte(i >> 8)}
			if err := b.Set(k, v); err != nil {
				t.Fatal(err)
			}
			want[string(k)] = v
			continue
		}
		v, ok, err := b.Get(k)
		if err != nil {
			t.Fatal(err)
		}
		if w, had := want[string(k)]; ok != had || !bytes.Equal(v, w) {
			t.Fatalf("step %d: Get(%q) = %x %v, want %x %v", i, k, v, ok, w, had)
		}
	}
}
