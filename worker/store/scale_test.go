package store

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"testing"

	bolt "go.etcd.io/bbolt"

	"github.com/integritee-go/integritee/enclave/protocol"
	"github.com/integritee-go/integritee/internal/cputime"
)

// Benchmarks of the store at 1k, 100k and 1M accounts (2 entries each: a
// balance and a nonce, 37-byte ciphertexts as the enclave writes them);
// docs/performance.md, "A million accounts".

var scaleSizes = []int{1_000, 100_000, 1_000_000}

func blinded(i int) [32]byte { return sha256.Sum256(binary.BigEndian.AppendUint64(nil, uint64(i))) }

// scaleStore returns a store holding entries state entries, written in
// commits of 100k sorted entries.
func scaleStore(b *testing.B, entries int) *Store {
	b.Helper()
	return scaleStoreWith(b, entries, options())
}

// scaleVariants are the bbolt options BenchmarkStoreScaleOpen compares:
// the store's, and etcd's freelist options (not synced: rebuilt on open).
var scaleVariants = []struct {
	name string
	opts func() *bolt.Options
}{
	{"store", options},
	{"freelist=map,nosync", func() *bolt.Options {
		o := options()
		o.FreelistType, o.NoFreelistSync = bolt.FreelistMapType, true
		return o
	}},
}

func scaleStoreWith(b *testing.B, entries int, o *bolt.Options) *Store {
	b.Helper()
	s, err := open(filepath.Join(b.TempDir(), "w.db"), o)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	all := make([]protocol.Entry, entries)
	for i := range all {
		all[i] = protocol.Entry{Key: blinded(i), Value: bytes.Repeat([]byte{byte(i)}, 37)}
	}
	slices.SortFunc(all, func(a, b protocol.Entry) int { return bytes.Compare(a.Key[:], b.Key[:]) })
	for h, c := 0, all; len(c) > 0; h++ {
		n := min(len(c), 100_000)
		if err := s.Commit(Batch{Checkpoint: Checkpoint{Height: int64(h + 1), Sealed: []byte{byte(h)}}, Changes: c[:n]}); err != nil {
			b.Fatal(err)
		}
		c = c[n:]
	}
	if err := s.fold(make(chan struct{})); err != nil { // all in the state bucket, as after a while
		b.Fatal(err)
	}
	return s
}

// BenchmarkStoreScaleBlock measures committing a block that changes 768
// random entries (256 transfers) with its checkpoint. In mode=turn the
// pending changes are folded into the state file between commits off the
// clock, as the background fold does while the worker waits for the
// enclave's next batch: the cost in the worker's turn. In mode=sustained
// commits follow each other with nothing in between while the background
// fold runs beside them (gathering the records that arrived while it
// wrote), and the time includes folding what is left at the end: the
// store's throughput bound. pagewrites/op counts the commits' own page
// writes in mode=turn and everything (both files) in mode=sustained.
func BenchmarkStoreScaleBlock(b *testing.B) {
	for _, mode := range []string{"turn", "sustained"} {
		for _, n := range scaleSizes {
			b.Run(fmt.Sprintf("mode=%s/accounts=%d", mode, n), func(b *testing.B) {
				s := scaleStore(b, 2*n)
				cp, _, err := s.Checkpoint()
				if err != nil {
					b.Fatal(err)
				}
				r := rand.New(rand.NewPCG(1, 2))
				h := cp.Height
				var w int64
				c0 := cputime.Used()
				b.ResetTimer()
				w0 := writes(s)
				for range b.N {
					ch := make([]protocol.Entry, 768)
					for i := range ch {
						ch[i] = protocol.Entry{Key: blinded(r.IntN(2 * n)), Value: bytes.Repeat([]byte{byte(h)}, 37)}
					}
					slices.SortFunc(ch, func(a, b protocol.Entry) int { return bytes.Compare(a.Key[:], b.Key[:]) })
					h++
					if mode == "turn" {
						b.StopTimer()
						if err := s.fold(make(chan struct{})); err != nil {
							b.Fatal(err)
						}
						w0 = writes(s)
						b.StartTimer()
					}
					if err := s.Commit(Batch{Checkpoint: Checkpoint{Height: h, Sealed: []byte{byte(h)}}, Changes: ch}); err != nil {
						b.Fatal(err)
					}
					if mode == "turn" {
						w += writes(s) - w0
					}
				}
				if mode == "sustained" {
					if err := s.fold(make(chan struct{})); err != nil {
						b.Fatal(err)
					}
					w = writes(s) - w0
				}
				b.StopTimer()
				cputime.ReportPerOp(b, c0)
				b.ReportMetric(float64(w)/float64(b.N), "pagewrites/op")
			})
		}
	}
}

// BenchmarkStoreFoldEvery measures a block of 768 random changes at a
// million accounts when the fold runs after every k blocks (k·768
// changes; the store folds at foldAtChanges, k = 341), all in one
// goroutine: the CPU a block costs the worker, commit and fold, and the
// pages written. A fold of more records writes a leaf that several of
// them change once.
func BenchmarkStoreFoldEvery(b *testing.B) {
	const n = 1_000_000
	for _, k := range []int{32, 128, 341, 1024} {
		b.Run(fmt.Sprintf("accounts=%d/k=%d", n, k), func(b *testing.B) {
			s := scaleStore(b, 2*n)
			stopFolder(s)
			cp, _, err := s.Checkpoint()
			if err != nil {
				b.Fatal(err)
			}
			r := rand.New(rand.NewPCG(1, 2))
			h := cp.Height
			c0 := cputime.Used()
			w0 := writes(s)
			b.ResetTimer()
			for i := range b.N {
				ch := make([]protocol.Entry, 768)
				for j := range ch {
					ch[j] = protocol.Entry{Key: blinded(r.IntN(2 * n)), Value: bytes.Repeat([]byte{byte(h)}, 37)}
				}
				slices.SortFunc(ch, func(a, b protocol.Entry) int { return bytes.Compare(a.Key[:], b.Key[:]) })
				h++
				if err := s.Commit(Batch{Checkpoint: Checkpoint{Height: h, Sealed: []byte{byte(h)}}, Changes: ch}); err != nil {
					b.Fatal(err)
				}
				if (i+1)%k == 0 || i == b.N-1 {
					if err := s.fold(make(chan struct{})); err != nil {
						b.Fatal(err)
					}
				}
			}
			b.StopTimer()
			cputime.ReportPerOp(b, c0)
			b.ReportMetric(float64(writes(s)-w0)/float64(b.N), "pagewrites/op")
		})
	}
}

// BenchmarkStoreScaleEntries measures reading every entry in key order: a
// restart's and a provisioning snapshot's read.
func BenchmarkStoreScaleEntries(b *testing.B) {
	for _, n := range scaleSizes {
		b.Run(fmt.Sprintf("accounts=%d", n), func(b *testing.B) {
			s := scaleStore(b, 2*n)
			for b.Loop() {
				got := 0
				if err := s.Entries(func(protocol.Entry) error { got++; return nil }); err != nil || got != 2*n {
					b.Fatalf("read %d entries of %d: %v", got, 2*n, err)
				}
			}
		})
	}
}

// writes is the number of page writes the store made so far, in both
// files.
func writes(s *Store) int64 {
	m, st := s.db.Stats(), s.state.Stats()
	return m.TxStats.GetWrite() + st.TxStats.GetWrite()
}

// BenchmarkStoreScaleProvision measures what a provisioned worker's host
// writes: the whole state in one commit into a fresh store (as pending
// records), then folded into the state file.
func BenchmarkStoreScaleProvision(b *testing.B) {
	for _, n := range scaleSizes {
		b.Run(fmt.Sprintf("accounts=%d", n), func(b *testing.B) {
			all := make([]protocol.Entry, 2*n)
			for i := range all {
				all[i] = protocol.Entry{Key: blinded(i), Value: bytes.Repeat([]byte{byte(i)}, 37)}
			}
			slices.SortFunc(all, func(a, b protocol.Entry) int { return bytes.Compare(a.Key[:], b.Key[:]) })
			for b.Loop() {
				s, err := Open(filepath.Join(b.TempDir(), "w.db"))
				if err != nil {
					b.Fatal(err)
				}
				if err := s.Commit(Batch{Checkpoint: Checkpoint{Height: 7, Sealed: []byte{7}}, Changes: all}); err != nil {
					b.Fatal(err)
				}
				if err := s.fold(make(chan struct{})); err != nil {
					b.Fatal(err)
				}
				s.Close()
			}
		})
	}
}

// BenchmarkStoreScaleOpen measures opening a store of a million accounts,
// with the freelist synced (the store's options) and not (then bbolt
// rebuilds it on open by walking every page).
func BenchmarkStoreScaleOpen(b *testing.B) {
	for _, v := range scaleVariants {
		b.Run(fmt.Sprintf("opts=%s/accounts=%d", v.name, 1_000_000), func(b *testing.B) {
			s := scaleStoreWith(b, 2_000_000, v.opts())
			path := s.db.Path()
			if err := s.Close(); err != nil {
				b.Fatal(err)
			}
			for b.Loop() {
				s, err := open(path, v.opts())
				if err != nil {
					b.Fatal(err)
				}
				if err := s.Close(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
