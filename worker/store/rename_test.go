package store

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	bolt "go.etcd.io/bbolt"

	"github.com/integritee-go/integritee/internal/atomicfile"
)

// closedStore creates a store at path with blocks 1..3 committed and
// folded, closes it, and returns its entries.
func closedStore(t *testing.T, path string) map[[32]byte][]byte {
	t.Helper()
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	want := map[[32]byte][]byte{}
	commitN(t, s, 1, 3, want)
	if err := s.fold(make(chan struct{})); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	return want
}

func openEntries(t *testing.T, path string, want map[[32]byte][]byte, when string) {
	t.Helper()
	s, err := Open(path)
	if err != nil {
		t.Fatalf("%s: %v", when, err)
	}
	defer s.Close()
	checkEntries(t, s, want, when)
}

// TestRenameInterrupted: a crash at each point of a Rename (the note
// written, the main file moved, both moved) is finished by the next Open
// of the old path: a fresh store there, the moved one whole at the new
// name, the note gone.
func TestRenameInterrupted(t *testing.T) {
	for name, c := range map[string]struct {
		renamed int
		linked  bool
	}{"note only": {0, false}, "main file moved": {1, false}, "state file linked": {1, true}, "both moved": {2, false}} {
		renamed, linked := c.renamed, c.linked
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			path, kept := filepath.Join(dir, "worker.db"), filepath.Join(dir, "worker.db.kept")
			want := closedStore(t, path)
			if err := atomicfile.WriteFile(movingPath(path), []byte(filepath.Base(kept)), 0o600); err != nil {
				t.Fatal(err)
			}
			for _, m := range [][2]string{{path, kept}, {StatePath(path), StatePath(kept)}}[:renamed] {
				if err := os.Rename(m[0], m[1]); err != nil {
					t.Fatal(err)
				}
			}
			if linked {
				// A crash after the new name was linked, before the old
				// was removed.
				if err := os.Link(StatePath(path), StatePath(kept)); err != nil {
					t.Fatal(err)
				}
			}
			openEntries(t, path, map[[32]byte][]byte{}, "the old path after the crash")
			if _, err := os.Stat(movingPath(path)); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("the note is still there: %v", err)
			}
			openEntries(t, kept, want, "the moved store")
		})
	}
}

// TestRenameRefused: a move onto an existing store, to another directory or
// by a note that names no file beside it changes nothing.
func TestRenameRefused(t *testing.T) {
	dir := t.TempDir()
	path, other := filepath.Join(dir, "worker.db"), filepath.Join(dir, "other.db")
	want := closedStore(t, path)
	closedStore(t, other)
	before := contents(t, path)
	for _, to := range []string{other, filepath.Join(t.TempDir(), "worker.db"), path} {
		if err := Rename(path, to); err == nil {
			t.Fatalf("a move to %s succeeded", to)
		}
	}
	// Only the state file's name is taken.
	if err := os.Rename(StatePath(other), StatePath(path+".x")); err != nil {
		t.Fatal(err)
	}
	if err := Rename(path, path+".x"); err == nil {
		t.Fatal("a move onto an existing state file succeeded")
	}
	for _, note := range []string{"", "..", "../worker.db", "worker.db", "state-worker.db.x"} {
		if err := os.WriteFile(movingPath(path), []byte(note), 0o600); err != nil {
			t.Fatal(err)
		}
		if s, err := Open(path); !errors.Is(err, ErrCorrupt) {
			if err == nil {
				s.Close()
			}
			t.Fatalf("open with the note %q: %v, want ErrCorrupt", note, err)
		}
	}
	os.Remove(movingPath(path))
	if contents(t, path) != before {
		t.Fatal("a refused move changed the store")
	}
	openEntries(t, path, want, "after the refused moves")
}

// freshBoltFile returns the bytes of a bbolt file just created: its four
// pages and nothing else.
func freshBoltFile(t *testing.T) []byte {
	t.Helper()
	tmpl := filepath.Join(t.TempDir(), "template.db")
	db, err := bolt.Open(tmpl, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	fresh, err := os.ReadFile(tmpl)
	if err != nil {
		t.Fatal(err)
	}
	if len(fresh) != 4*os.Getpagesize() {
		t.Fatalf("a new bbolt file has %d bytes, want 4 pages", len(fresh))
	}
	return fresh
}

// TestStateFileUnfinished: a crash while bbolt created the state file of a
// new store leaves it short, torn or zeroed; Open creates it again. A state
// file that had a commit is never removed, however broken.
func TestStateFileUnfinished(t *testing.T) {
	fresh, page := freshBoltFile(t), os.Getpagesize()
	for name, b := range map[string][]byte{
		"one byte":       fresh[:1],
		"one page":       fresh[:page],
		"torn meta page": fresh[:page+100],
		"three pages":    fresh[:3*page],
		"zeroed":         make([]byte, 4*page),
		"whole":          fresh,
	} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "worker.db")
			if err := os.WriteFile(StatePath(path), b, 0o600); err != nil {
				t.Fatal(err)
			}
			want := closedStore(t, path)
			openEntries(t, path, want, "reopened")
		})
	}
	t.Run("broken after a commit", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "worker.db")
		broken := make([]byte, 5*page)
		if err := os.WriteFile(StatePath(path), broken, 0o600); err != nil {
			t.Fatal(err)
		}
		if s, err := Open(path); err == nil {
			s.Close()
			t.Fatal("a broken state file of five pages was replaced")
		}
		if b, err := os.ReadFile(StatePath(path)); err != nil || !bytes.Equal(b, broken) {
			t.Fatalf("the broken state file changed (%v)", err)
		}
	})
	t.Run("short, main file with an id", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "worker.db")
		closedStore(t, path)
		if err := os.WriteFile(StatePath(path), fresh[:page], 0o600); err != nil {
			t.Fatal(err)
		}
		if s, err := Open(path); err == nil {
			s.Close()
			t.Fatal("a short state file was accepted for a store with an id")
		}
		if b, _ := os.ReadFile(StatePath(path)); !bytes.Equal(b, fresh[:page]) {
			t.Fatal("the short state file of a store with an id changed")
		}
	})
}

// stateID reads the store id a state file holds.
func stateID(t *testing.T, path string) []byte {
	t.Helper()
	db, err := bolt.Open(StatePath(path), 0o600, &bolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var id []byte
	if err := db.View(func(tx *bolt.Tx) error {
		id = bytes.Clone(tx.Bucket(bucketMeta).Get(keyStoreID))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return id
}

// TestNewMainFile: a new main file next to a state file. One with folded
// state is another store's and refused, unchanged; an empty one (a
// creation cut off between the state file's commit and the main file's)
// is taken over under a new id, never the old one.
func TestNewMainFile(t *testing.T) {
	t.Run("state file with state", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "worker.db")
		closedStore(t, path)
		if err := os.Remove(path); err != nil {
			t.Fatal(err)
		}
		before := contents(t, StatePath(path))
		if s, err := Open(path); !errors.Is(err, ErrStateFile) {
			if err == nil {
				s.Close()
			}
			t.Fatalf("open: %v, want ErrStateFile", err)
		}
		if contents(t, StatePath(path)) != before {
			t.Fatal("the refused open changed the state file")
		}
	})
	t.Run("empty state file", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "worker.db")
		s, err := Open(path)
		if err != nil {
			t.Fatal(err)
		}
		s.Close()
		old := stateID(t, path)
		if err := os.Remove(path); err != nil {
			t.Fatal(err)
		}
		want := closedStore(t, path)
		if id := stateID(t, path); len(id) != 16 || bytes.Equal(id, old) {
			t.Fatalf("store id %x after the takeover, the old one was %x", id, old)
		}
		openEntries(t, path, want, "reopened")
	})
}

// TestCutShort: either file of a store cut short (a lost tail, a truncated
// copy) gives ErrCorrupt and is left as it is; bbolt would read past its
// end and die of SIGBUS.
func TestCutShort(t *testing.T) {
	for _, which := range []string{"main", "state"} {
		for _, keep := range []int{2, 3, 5} {
			t.Run(fmt.Sprintf("%s file, %d pages kept", which, keep), func(t *testing.T) {
				path := filepath.Join(t.TempDir(), "worker.db")
				s, err := Open(path)
				if err != nil {
					t.Fatal(err)
				}
				commitN(t, s, 1, 300, map[[32]byte][]byte{})
				if err := s.fold(make(chan struct{})); err != nil {
					t.Fatal(err)
				}
				if err := s.Close(); err != nil {
					t.Fatal(err)
				}
				f := path
				if which == "state" {
					f = StatePath(path)
				}
				if err := os.Truncate(f, int64(keep*os.Getpagesize())); err != nil {
					t.Fatal(err)
				}
				before, err := os.ReadFile(f)
				if err != nil {
					t.Fatal(err)
				}
				if s, err := Open(path); !errors.Is(err, ErrCorrupt) {
					if err == nil {
						s.Close()
					}
					t.Fatalf("open: %v, want ErrCorrupt", err)
				}
				if after, _ := os.ReadFile(f); !bytes.Equal(after, before) {
					t.Fatal("the refused open changed the file")
				}
			})
		}
	}
}

// TestMainFileUnfinished: a crash while bbolt created the main file of a
// new store (or the fresh one after a machine-loss move) leaves it short,
// torn or zeroed; Open creates it again (bbolt refused some of these for
// good and panicked on the zeroed one).
func TestMainFileUnfinished(t *testing.T) {
	fresh, page := freshBoltFile(t), os.Getpagesize()
	for name, b := range map[string][]byte{
		"one byte":       fresh[:1],
		"torn meta page": fresh[:page+100],
		"three pages":    fresh[:3*page],
		"metas only":     append(bytes.Clone(fresh[:2*page]), make([]byte, 2*page)...),
		"zeroed":         make([]byte, 4*page),
		"whole":          fresh,
	} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "worker.db")
			if err := os.WriteFile(path, b, 0o600); err != nil {
				t.Fatal(err)
			}
			// Its state file may be cut short too.
			if err := os.WriteFile(StatePath(path), fresh[:page], 0o600); err != nil {
				t.Fatal(err)
			}
			want := closedStore(t, path)
			openEntries(t, path, want, "reopened")
		})
	}
}

// metaAt reads the meta page at off of the file at path.
func metaAt(t *testing.T, path string, off int64) boltMeta {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, metaOffset+metaLen)
	if _, err := f.ReadAt(b, off); err != nil {
		t.Fatal(err)
	}
	m, ok := readMeta(b)
	if !ok {
		t.Fatalf("no valid meta page at %d", off)
	}
	return m
}

// TestCutShortMetaChoice: checkLength judges a file by the meta page bbolt
// uses: the newer one (here the second, which counts more pages than the
// first), and with an invalid first meta page the second found by bbolt's
// scan for it, in files of another page size than the machine's.
func TestCutShortMetaChoice(t *testing.T) {
	for _, ps := range []int{os.Getpagesize(), 16384, 65536} {
		for _, brokenFirst := range []bool{false, true} {
			t.Run(fmt.Sprintf("page size %d, first meta broken %v", ps, brokenFirst), func(t *testing.T) {
				path := filepath.Join(t.TempDir(), "worker.db")
				o := options()
				o.PageSize = ps
				s, err := open(path, o)
				if err != nil {
					t.Fatal(err)
				}
				// Commit until the second meta page is the newer and counts
				// more pages than the first (no fold: records pile up and
				// every commit takes new pages).
				stopFolder(s)
				var m0, m1 boltMeta
				for h := 1; ; h++ {
					commitN(t, s, h, h, map[[32]byte][]byte{})
					m0, m1 = metaAt(t, path, 0), metaAt(t, path, int64(ps))
					if m1.txid > m0.txid && m1.pgid > m0.pgid {
						break
					}
					if h > 500 {
						t.Fatal("the second meta page never counted more pages")
					}
				}
				if err := s.Close(); err != nil {
					t.Fatal(err)
				}
				if brokenFirst {
					f, err := os.OpenFile(path, os.O_RDWR, 0)
					if err != nil {
						t.Fatal(err)
					}
					if _, err := f.WriteAt([]byte{0xff}, metaOffset+metaSumOffset); err != nil {
						t.Fatal(err)
					}
					f.Close()
				}
				// Long enough for the first meta page's commit, not the second's.
				if err := os.Truncate(path, int64(m0.pgid)*int64(ps)); err != nil {
					t.Fatal(err)
				}
				if s, err := Open(path); !errors.Is(err, ErrCorrupt) {
					if err == nil {
						s.Close()
					}
					t.Fatalf("open: %v, want ErrCorrupt", err)
				}
			})
		}
	}
}
