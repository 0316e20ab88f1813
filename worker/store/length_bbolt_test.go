package store

import (
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	bolt "go.etcd.io/bbolt"
)

// TestLastCommitAgreesWithBbolt compares lastCommit's choice of meta page
// with bbolt's own on files whose meta pages are damaged: the intact
// file, each meta page's checksum broken, and bytes of the first two
// pages (page headers and meta pages) overwritten at random. bbolt opens
// each file in a child process, since a damaged file may crash it, and
// reports the transaction id, size and page size of its read view.
// Whenever bbolt opens a file, lastCommit must have chosen the same
// commit; when lastCommit finds no valid meta page, bbolt must refuse it.
func TestLastCommitAgreesWithBbolt(t *testing.T) {
	if p := os.Getenv("STORE_BOLT_CHILD"); p != "" {
		boltChild(p)
		return
	}
	seed := uint64(rand.Int64())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 1))
	for _, c := range []struct{ ps, commits int }{
		{os.Getpagesize(), 4}, {os.Getpagesize(), 5}, {16384, 4}, {16384, 5}, {65536, 4}, {65536, 5},
	} {
		// An even and an odd number of commits: the newer meta page is
		// the first in one file, the second in the other.
		ps := c.ps
		orig := filepath.Join(t.TempDir(), "orig.db")
		db, err := bolt.Open(orig, 0o600, &bolt.Options{PageSize: ps})
		if err != nil {
			t.Fatal(err)
		}
		for i := range c.commits {
			if err := db.Update(func(tx *bolt.Tx) error {
				b, err := tx.CreateBucketIfNotExists([]byte("b"))
				if err != nil {
					return err
				}
				return b.Put(fmt.Appendf(nil, "k%d", i), make([]byte, 3*ps))
			}); err != nil {
				t.Fatal(err)
			}
		}
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
		good, err := os.ReadFile(orig)
		if err != nil {
			t.Fatal(err)
		}
		type variant struct {
			name string
			at   []int // offsets overwritten
			with []byte
		}
		variants := []variant{
			{name: "intact"},
			{name: "first checksum", at: []int{metaOffset + metaSumOffset}, with: []byte{^good[metaOffset+metaSumOffset]}},
			{name: "second checksum", at: []int{ps + metaOffset + metaSumOffset}, with: []byte{^good[ps+metaOffset+metaSumOffset]}},
		}
		for i := range 20 {
			v := variant{name: fmt.Sprintf("random %d", i)}
			for range 1 + rng.IntN(3) {
				page := rng.IntN(2) * ps
				v.at = append(v.at, page+rng.IntN(metaOffset+metaLen))
				v.with = append(v.with, byte(rng.IntN(256)))
			}
			variants = append(variants, v)
		}
		for _, v := range variants {
			name := fmt.Sprintf("page size %d, %d commits, %s %v", ps, c.commits, v.name, v.at)
			b := append([]byte(nil), good...)
			for j, off := range v.at {
				b[off] = v.with[j]
			}
			path := filepath.Join(t.TempDir(), "w.db")
			if err := os.WriteFile(path, b, 0o600); err != nil {
				t.Fatal(err)
			}
			m, ok := lastCommit(strings.NewReader(string(b)), int64(len(b)))
			cmd := exec.Command(os.Args[0], "-test.run=^TestLastCommitAgreesWithBbolt$")
			cmd.Env = append(os.Environ(), "STORE_BOLT_CHILD="+path)
			out, err := cmd.Output()
			got := strings.TrimSpace(string(out))
			opened := err == nil && !strings.HasPrefix(got, "refused")
			switch {
			case opened && !ok:
				t.Errorf("%s: bbolt opened it (%s), lastCommit found no valid meta page", name, got)
			case opened && got != fmt.Sprintf("txid %d size %d page %d", m.txid, int64(m.pgid)*int64(m.pageSize), m.pageSize):
				t.Errorf("%s: bbolt read %s, lastCommit chose txid %d of %d pages of %d", name, got, m.txid, m.pgid, m.pageSize)
			case !opened && ok && err != nil:
				// bbolt died on a file lastCommit accepted: a check
				// bbolt has beyond the meta pages (left to it).
				t.Logf("%s: bbolt crashed (%v); lastCommit chose txid %d", name, err, m.txid)
			}
		}
	}
}

// boltChild opens the bbolt file at path read-only and prints what its
// read view uses, or why bbolt refused it.
func boltChild(path string) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true})
	if err != nil {
		fmt.Printf("refused: %v\n", err)
		os.Exit(0)
	}
	tx, err := db.Begin(false)
	if err != nil {
		fmt.Printf("refused: %v\n", err)
		os.Exit(0)
	}
	fmt.Printf("txid %d size %d page %d\n", tx.ID(), tx.Size(), db.Info().PageSize)
	os.Exit(0)
}
