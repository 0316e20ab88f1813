package store

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	dbm "github.com/cometbft/cometbft-db"
	cmtcrypto "github.com/cometbft/cometbft/proto/tendermint/crypto"

	"github.com/integritee-go/integritee/chain/smt"
)

func openMem(t testing.TB) (*Store, dbm.DB) {
	t.Helper()
	db := dbm.NewMemDB()
	s, err := Open(db)
	if err != nil {
		t.Fatal(err)
	}
	return s, db
}

func commit(t *testing.T, s *Store, changes []Change) []byte {
	t.Helper()
	p, err := s.Prepare(s.Version()+1, changes)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Commit(p); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(s.Root(), p.Root()) {
		t.Fatal("committed root differs from prepared root")
	}
	return p.Root()
}

// TestRootIsOrderIndependent checks the canonical shape: the same final set
// of entries gives the same root however it was reached.
func TestRootIsOrderIndependent(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	model := map[string][]byte{}
	incremental, _ := openMem(t)
	for round := range 30 {
		var changes []Change
		seen := map[string]bool{}
		for range 1 + rng.IntN(20) {
			k := fmt.Sprintf("key-%d", rng.IntN(60))
			if seen[k] {
				continue
			}
			seen[k] = true
			if rng.IntN(3) == 0 {
				changes = append(changes, Change{Key: []byte(k)})
				delete(model, k)
			} else {
				v := fmt.Appendf(nil, "v-%d-%d", round, rng.IntN(1000))
				changes = append(changes, Change{Key: []byte(k), Value: v})
				model[k] = v
			}
		}
		root := commit(t, incremental, changes)

		fresh, _ := openMem(t)
		var all []Change
		for k, v := range model {
			all = append(all, Change{Key: []byte(k), Value: v})
		}
		if got := commit(t, fresh, all); !bytes.Equal(got, root) {
			t.Fatalf("round %d: incremental root %x, rebuilt root %x", round, root, got)
		}
		if len(model) == 0 && !bytes.Equal(root, smt.Empty[:]) {
			t.Fatalf("round %d: empty state has root %x", round, root)
		}
	}
}

func TestProofs(t *testing.T) {
	s, _ := openMem(t)
	var changes []Change
	for i := range 50 {
		changes = append(changes, Change{Key: fmt.Appendf(nil, "k%d", i), Value: fmt.Appendf(nil, "v%d", i)})
	}
	root1 := commit(t, s, changes)
	root2 := commit(t, s, []Change{{Key: []byte("k1"), Value: []byte("changed")}, {Key: []byte("k2")}})

	tests := []struct {
		name    string
		key     string
		version int64
		want    []byte
		root    []byte
	}{
		{"member latest", "k7", 0, []byte("v7"), root2},
		{"updated latest", "k1", 2, []byte("changed"), root2},
		{"old value at version 1", "k1", 1, []byte("v1"), root1},
		{"deleted is absent", "k2", 2, nil, root2},
		{"deleted present at version 1", "k2", 1, []byte("v2"), root1},
		{"never present", "nope", 0, nil, root2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := s.GetWithProof([]byte(tc.key), tc.version)
			if err != nil {
				t.Fatal(err)
			}
			v, p, root := got.Value, got.Proof, got.Root
			if !bytes.Equal(v, tc.want) || !bytes.Equal(root, tc.root) {
				t.Fatalf("got %q root %x, want %q root %x", v, root, tc.want, tc.root)
			}
			op, err := p.ProofOp([]byte(tc.key))
			if err != nil {
				t.Fatal(err)
			}
			p2, err := smt.ProofFromOps(opsOf(op), []byte(tc.key))
			if err != nil {
				t.Fatal(err)
			}
			if err := p2.Verify(root, []byte(tc.key), v); err != nil {
				t.Fatalf("valid proof rejected: %v", err)
			}
			// A wrong value, a wrong absence claim and a wrong root must fail.
			if err := p2.Verify(root, []byte(tc.key), []byte("forged")); !errors.Is(err, smt.ErrInvalidProof) {
				t.Fatalf("forged value accepted: %v", err)
			}
			if v != nil {
				if err := p2.Verify(root, []byte(tc.key), nil); !errors.Is(err, smt.ErrInvalidProof) {
					t.Fatalf("forged absence accepted: %v", err)
				}
			}
			other := bytes.Clone(root)
			other[0] ^= 1
			if err := p2.Verify(other, []byte(tc.key), v); !errors.Is(err, smt.ErrInvalidProof) {
				t.Fatalf("wrong root accepted: %v", err)
			}
			if len(p2.Siblings) > 0 {
				p2.Siblings[0][0] ^= 1
				if err := p2.Verify(root, []byte(tc.key), v); !errors.Is(err, smt.ErrInvalidProof) {
					t.Fatalf("tampered sibling accepted: %v", err)
				}
			}
		})
	}
	if _, err := s.GetWithProof([]byte("k1"), 3); !errors.Is(err, ErrVersionNotFound) {
		t.Fatalf("future version: %v", err)
	}
}

func TestReopenKeepsVersionAndRoot(t *testing.T) {
	s, db := openMem(t)
	commit(t, s, []Change{{Key: []byte("a"), Value: []byte("1")}})
	root := commit(t, s, []Change{{Key: []byte("b"), Value: []byte("2")}})
	// A prepared but uncommitted version must leave no trace.
	if _, err := s.Prepare(3, []Change{{Key: []byte("c"), Value: []byte("3")}}); err != nil {
		t.Fatal(err)
	}
	s2, err := Open(db)
	if err != nil {
		t.Fatal(err)
	}
	if s2.Version() != 2 || !bytes.Equal(s2.Root(), root) {
		t.Fatalf("reopened at %d/%x, want 2/%x", s2.Version(), s2.Root(), root)
	}
	if v, _ := s2.Get([]byte("c")); v != nil {
		t.Fatalf("uncommitted write visible: %q", v)
	}
	var keys []string
	if err := s2.Iterate(nil, func(k, _ []byte) bool { keys = append(keys, string(k)); return true }); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(keys) != "[a b]" {
		t.Fatalf("iterate: %v", keys)
	}
}

func TestCacheBranch(t *testing.T) {
	s, _ := openMem(t)
	commit(t, s, []Change{{Key: []byte("a"), Value: []byte("1")}})
	c := NewCache(s)
	b := c.Branch()
	b.Set([]byte("a"), []byte("2"))
	b.Delete([]byte("x"))
	if v, _ := c.Get([]byte("a")); string(v) != "1" {
		t.Fatalf("branch write leaked before Write: %q", v)
	}
	b.Write()
	if v, _ := c.Get([]byte("a")); string(v) != "2" {
		t.Fatalf("after Write: %q", v)
	}
	if got := fmt.Sprint(len(c.Changes())); got != "2" {
		t.Fatalf("changes: %v", c.Changes())
	}
}

func BenchmarkCommit100(b *testing.B) {
	db := dbm.NewMemDB()
	s, err := Open(db)
	if err != nil {
		b.Fatal(err)
	}
	var base []Change
	for i := range 10000 {
		base = append(base, Change{Key: fmt.Appendf(nil, "acct-%d", i), Value: []byte("balance")})
	}
	p, _ := s.Prepare(1, base)
	if err := s.Commit(p); err != nil {
		b.Fatal(err)
	}
	i := 0
	for b.Loop() {
		var ch []Change
		for j := range 100 {
			ch = append(ch, Change{Key: fmt.Appendf(nil, "acct-%d", (i*100+j)%10000), Value: fmt.Appendf(nil, "%d", i)})
		}
		i++
		p, err := s.Prepare(s.Version()+1, ch)
		if err != nil {
			b.Fatal(err)
		}
		if err := s.Commit(p); err != nil {
			b.Fatal(err)
		}
	}
}

func opsOf(op cmtcrypto.ProofOp) *cmtcrypto.ProofOps {
	return &cmtcrypto.ProofOps{Ops: []cmtcrypto.ProofOp{op}}
}

// TestCacheIterate checks a prefix scan through nested caches against a
// model of the state: committed keys, replaced and deleted by the caches,
// in key order, stopping when asked. Before Cache.Iterate, modules could
// not scan a prefix of the state they execute on.
func TestCacheIterate(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	s, _ := openMem(t)
	model := map[string]string{}
	key := func() string { return fmt.Sprintf("%c/%02d", "abc"[rng.IntN(3)], rng.IntN(40)) }
	var base []Change
	for range 60 {
		k := key()
		if _, dup := model[k]; dup {
			continue
		}
		model[k] = "committed " + k
		base = append(base, Change{Key: []byte(k), Value: []byte(model[k])})
	}
	commit(t, s, base)
	// Three levels of caches, each writing and deleting over the one below.
	c := NewCache(s)
	for level, kv := range []*Cache{c, c.Branch(), nil} {
		if kv == nil {
			kv = c.Branch().Branch()
		}
		for range 30 {
			k := key()
			if rng.IntN(3) == 0 {
				kv.Delete([]byte(k))
				delete(model, k)
			} else {
				v := fmt.Sprintf("level %d %s", level, k)
				kv.Set([]byte(k), []byte(v))
				model[k] = v
			}
		}
		for _, prefix := range []string{"", "a", "b/", "b/1", "c/39", "d"} {
			var want []string
			for k, v := range model {
				if strings.HasPrefix(k, prefix) {
					want = append(want, k+"="+v)
				}
			}
			slices.Sort(want)
			var got []string
			if err := kv.Iterate([]byte(prefix), func(k, v []byte) bool {
				got = append(got, string(k)+"="+string(v))
				return true
			}); err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, want) {
				t.Fatalf("level %d prefix %q:\n got %v\nwant %v", level, prefix, got, want)
			}
			// Stopping after n entries yields exactly the first n.
			for _, n := range []int{1, len(want) / 2} {
				var part []string
				if err := kv.Iterate([]byte(prefix), func(k, v []byte) bool {
					part = append(part, string(k)+"="+string(v))
					return len(part) < n
				}); err != nil {
					t.Fatal(err)
				}
				if n > 0 && !slices.Equal(part, want[:min(n, len(want))]) {
					t.Fatalf("level %d prefix %q stop after %d: got %v", level, prefix, n, part)
				}
			}
		}
		if kv != c {
			kv.Write()
		}
	}
}
