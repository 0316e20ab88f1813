package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/integritee-go/integritee/enclave/protocol"
)

// commitN commits blocks from..to, block h setting entry h to h and
// deleting entry h-2, and records them in want.
func commitN(t *testing.T, s *Store, from, to int, want map[[32]byte][]byte) {
	t.Helper()
	for h := from; h <= to; h++ {
		ch := []protocol.Entry{{Key: blinded(h), Value: []byte{byte(h)}}, {Key: blinded(h - 2)}}
		want[blinded(h)] = []byte{byte(h)}
		delete(want, blinded(h-2))
		if err := s.Commit(Batch{Checkpoint: Checkpoint{Height: int64(h), Sealed: []byte{byte(h)}}, Changes: ch}); err != nil {
			t.Fatal(err)
		}
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestFoldedNotDropped: a crash after a fold's commit to the state file and
// before a commit of the main file dropped its records leaves records in
// the main file that the state file holds already; reads skip them (laid
// over again, in order, they would give the same state, only slower) and
// the next Open drops them.
func TestFoldedNotDropped(t *testing.T) {
	path := filepath.Join(t.TempDir(), "w.db")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	stopFolder(s)
	want := map[[32]byte][]byte{}
	commitN(t, s, 1, 6, want)
	if _, err := s.foldOnce(4, nil); err != nil { // records 1 to 2 (4 changes)
		t.Fatal(err)
	}
	checkEntries(t, s, want, "folded, not dropped")
	if n := pendingCount(t, s); n != 6 {
		t.Fatalf("%d records in the main file, want all 6", n)
	}
	closeFiles(s) // the crash: nothing dropped
	s, err = Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if n := pendingCount(t, s); n != 4 {
		t.Fatalf("%d records in the main file after Open, want 4 (records 3 to 6)", n)
	}
	checkEntries(t, s, want, "reopened")
	commitN(t, s, 7, 9, want)
	if err := s.fold(make(chan struct{})); err != nil {
		t.Fatal(err)
	}
	checkEntries(t, s, want, "folded after reopening")
}

// contents returns every bucket's keys and values of a bbolt file, in
// order (not the file's bytes: an Open's empty transaction writes a meta
// page).
func contents(t *testing.T, path string) string {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var b strings.Builder
	var walk func(*bolt.Bucket, string) error
	walk = func(bk *bolt.Bucket, prefix string) error {
		return bk.ForEach(func(k, v []byte) error {
			if v == nil {
				return walk(bk.Bucket(k), prefix+string(k)+"/")
			}
			fmt.Fprintf(&b, "%s%x=%x\n", prefix, k, v)
			return nil
		})
	}
	if err := db.View(func(tx *bolt.Tx) error {
		return tx.ForEach(func(name []byte, bk *bolt.Bucket) error { return walk(bk, string(name)+"/") })
	}); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// advance reopens the store at path and commits and folds blocks 5 to 8,
// and block 9 as well if drop (whose commit drops records 5 to 8).
func advance(t *testing.T, path string, drop bool) {
	t.Helper()
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	commitN(t, s, 5, 8, map[[32]byte][]byte{})
	if err := s.fold(make(chan struct{})); err != nil {
		t.Fatal(err)
	}
	if drop {
		commitN(t, s, 9, 9, map[[32]byte][]byte{})
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestStateFileMismatch: the host swaps, loses or rolls back one of the two
// files: Open refuses with ErrStateFile and changes neither file.
func TestStateFileMismatch(t *testing.T) {
	dir := t.TempDir()
	build := func(name string, blocks int) string {
		t.Helper()
		path := filepath.Join(dir, name)
		s, err := Open(path)
		if err != nil {
			t.Fatal(err)
		}
		commitN(t, s, 1, blocks, map[[32]byte][]byte{})
		if err := s.fold(make(chan struct{})); err != nil {
			t.Fatal(err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		return path
	}
	for name, tamper := range map[string]func(t *testing.T, path string){
		"state file missing": func(t *testing.T, path string) {
			if err := os.Remove(StatePath(path)); err != nil {
				t.Fatal(err)
			}
		},
		"another store's state file": func(t *testing.T, path string) {
			other := build("other-"+filepath.Base(path), 3)
			copyFile(t, StatePath(other), StatePath(path))
		},
		"an older state file": func(t *testing.T, path string) {
			old := filepath.Join(t.TempDir(), "old-state")
			copyFile(t, StatePath(path), old)
			advance(t, path, true)
			copyFile(t, old, StatePath(path))
		},
		"an older main file, a fold in progress": func(t *testing.T, path string) {
			old := filepath.Join(t.TempDir(), "old-main")
			copyFile(t, path, old)
			s, err := Open(path)
			if err != nil {
				t.Fatal(err)
			}
			stopFolder(s)
			commitN(t, s, 5, 8, map[[32]byte][]byte{})
			s.foldTxKeys = 1
			s.betweenFoldTxs = func() error { return errors.New("crash") }
			if _, err := s.foldOnce(maxFoldChanges, nil); err == nil {
				t.Fatal("the fold was not cut short")
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			copyFile(t, old, path)
		},
		"an older main file": func(t *testing.T, path string) {
			old := filepath.Join(t.TempDir(), "old-main")
			copyFile(t, path, old)
			advance(t, path, false)
			copyFile(t, old, path)
		},
	} {
		t.Run(name, func(t *testing.T) {
			path := build(filepath.Base(t.Name())+".db", 4)
			tamper(t, path)
			before := contents(t, path)
			s, err := Open(path)
			if !errors.Is(err, ErrStateFile) {
				if err == nil {
					s.Close()
				}
				t.Fatalf("open: %v, want ErrStateFile", err)
			}
			if after := contents(t, path); after != before {
				t.Fatal("a refused Open changed the main file's contents")
			}
			// Refused again: nothing was repaired in a wrong way.
			if _, err := Open(path); !errors.Is(err, ErrStateFile) {
				t.Fatalf("second open: %v, want ErrStateFile", err)
			}
		})
	}
}

// TestLegacyStore opens a store written before the state file existed
// (the state bucket in the main file, pending records laid over it) and
// checks that its state moves into the state file, reads the same, and
// that an interrupted move is done again.
func TestLegacyStore(t *testing.T) {
	for _, interrupted := range []bool{false, true} {
		path := filepath.Join(t.TempDir(), "w.db")
		want := map[[32]byte][]byte{}
		db, err := bolt.Open(path, 0o600, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := db.Update(func(tx *bolt.Tx) error {
			for _, b := range [][]byte{bucketMeta, bucketOutbox, bucketShard, bucketRecords} {
				if _, err := tx.CreateBucket(b); err != nil {
					return err
				}
			}
			cp, err := protocol.Marshal(Checkpoint{Height: 9, Sealed: []byte{9}})
			if err != nil {
				return err
			}
			if err := tx.Bucket(bucketMeta).Put(keyCheckpoint, cp); err != nil {
				return err
			}
			st, err := tx.CreateBucket(bucketState)
			if err != nil {
				return err
			}
			for i := range 100 {
				want[blinded(i)] = []byte{byte(i)}
				k := blinded(i)
				if err := st.Put(k[:], []byte{byte(i)}); err != nil {
					return err
				}
			}
			p, err := tx.CreateBucket(bucketPending)
			if err != nil {
				return err
			}
			want[blinded(1)] = []byte{0xee}
			delete(want, blinded(2))
			return p.Put(binary.BigEndian.AppendUint64(nil, 41), encodeChanges([]protocol.Entry{{Key: blinded(1), Value: []byte{0xee}}, {Key: blinded(2)}}))
		}); err != nil {
			t.Fatal(err)
		}
		db.Close()
		if interrupted {
			// A state file of an earlier attempt, with an id and half the
			// state, that the main file never recorded.
			sdb, err := bolt.Open(StatePath(path), 0o600, nil)
			if err != nil {
				t.Fatal(err)
			}
			if err := sdb.Update(func(tx *bolt.Tx) error {
				m, _ := tx.CreateBucket(bucketMeta)
				st, _ := tx.CreateBucket(bucketState)
				k := blinded(5)
				if err := st.Put(k[:], []byte{0xbb}); err != nil {
					return err
				}
				return m.Put(keyStoreID, []byte("an earlier try!!"))
			}); err != nil {
				t.Fatal(err)
			}
			sdb.Close()
		}
		s, err := Open(path)
		if err != nil {
			t.Fatal(err)
		}
		checkEntries(t, s, want, "moved")
		if err := s.db.View(func(tx *bolt.Tx) error {
			if tx.Bucket(bucketState) != nil {
				t.Error("the main file still has a state bucket")
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		// New records follow the legacy ones.
		if err := s.Commit(Batch{Checkpoint: Checkpoint{Height: 10, Sealed: []byte{10}}, Changes: []protocol.Entry{{Key: blinded(3)}}}); err != nil {
			t.Fatal(err)
		}
		delete(want, blinded(3))
		if err := s.fold(make(chan struct{})); err != nil {
			t.Fatal(err)
		}
		if s.foldedSeq != 42 {
			t.Fatalf("folded up to record %d, want 42", s.foldedSeq)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		if s, err = Open(path); err != nil {
			t.Fatal(err)
		}
		checkEntries(t, s, want, "reopened")
		s.Close()
	}
}

// TestBacklogWaits: with the fold maxBacklog changes behind, a commit of
// more changes waits until it catches up, and fails instead if the fold
// failed; commits without changes never wait.
func TestBacklogWaits(t *testing.T) {
	s, err := Open(filepath.Join(t.TempDir(), "w.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	s.maxBacklog = 4
	s.foldMu.Lock() // the fold cannot run
	want := map[[32]byte][]byte{}
	commitN(t, s, 1, 2, want) // 4 changes: the backlog is full
	if err := s.Commit(Batch{Checkpoint: Checkpoint{Height: 3, Sealed: []byte{3}}}); err != nil {
		t.Fatalf("a commit without changes: %v", err)
	}
	done := make(chan error, 1)
	go func() {
		done <- s.Commit(Batch{Checkpoint: Checkpoint{Height: 4, Sealed: []byte{4}}, Changes: []protocol.Entry{{Key: blinded(4), Value: []byte{4}}}})
	}()
	select {
	case err := <-done:
		t.Fatalf("a commit returned (%v) while the fold was a full backlog behind", err)
	case <-time.After(50 * time.Millisecond):
	}
	s.foldMu.Unlock()
	s.kickFold()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	want[blinded(4)] = []byte{4}
	checkEntries(t, s, want, "after the wait")

	// A failed fold: the commit that would wait reports it.
	stopFolder(s)
	s.mu.Lock()
	s.foldErr, s.backlog = ErrCorrupt, 4
	s.mu.Unlock()
	err = s.Commit(Batch{Checkpoint: Checkpoint{Height: 5, Sealed: []byte{5}}, Changes: []protocol.Entry{{Key: blinded(5), Value: []byte{5}}}})
	if !errors.Is(err, ErrCorrupt) {
		t.Fatalf("commit behind a failed fold: %v, want ErrCorrupt", err)
	}
	s.mu.Lock()
	s.foldErr = nil
	s.mu.Unlock()
}

// TestRename moves a store's two files and opens it at the new path.
func TestRename(t *testing.T) {
	path := filepath.Join(t.TempDir(), "worker.db")
	want := closedStore(t, path)
	kept := path + ".unsealable-x"
	if err := Rename(path, kept); err != nil {
		t.Fatal(err)
	}
	if m, _ := filepath.Glob(path + ".unsealable-*"); len(m) != 1 {
		t.Fatalf("the kept store's glob matches %q, want the main file only", m)
	}
	openEntries(t, kept, want, "renamed")
}

// TestSnapshotConsistent takes snapshots while blocks are committed and
// folded beside them: each holds exactly the entries of its checkpoint's
// height (block h writes entry h with value h and deletes entry h-2), never
// a later or half a block, and never a folded record laid over again.
//
// It runs with the store's options (both files mapped ahead) and with
// bbolt's small initial map and big values, so that commits and folds
// remap the files while snapshots read: a remap waits for every read
// transaction of its file, and a reader that held one file's while waiting
// for the other's would deadlock with it.
func TestSnapshotConsistent(t *testing.T) {
	for name, c := range map[string]struct {
		o      *bolt.Options
		pad    int
		txKeys int
	}{
		"mapped ahead":           {options(), 4, foldTxKeys},
		"remapped":               {&bolt.Options{Timeout: time.Second}, 3000, foldTxKeys},
		"folds of one key a txn": {options(), 4, 1},
	} {
		t.Run(name, func(t *testing.T) { snapshotConsistent(t, c.o, c.pad, c.txKeys) })
	}
}

func snapshotConsistent(t *testing.T, o *bolt.Options, pad, txKeys int) {
	s, err := open(filepath.Join(t.TempDir(), "w.db"), o)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	s.foldMu.Lock() // the background fold reads it under foldMu
	s.foldTxKeys = txKeys
	s.foldMu.Unlock()
	if _, ok, err := s.Snapshot(func(protocol.Entry) error { return errors.New("called") }); ok || err != nil {
		t.Fatalf("snapshot before the first block: %v, %v", ok, err)
	}
	const blocks = 300
	done := make(chan error, 1)
	go func() {
		for h := 1; h <= blocks; h++ {
			v := binary.BigEndian.AppendUint32(make([]byte, 0, pad), uint32(h))
			ch := []protocol.Entry{{Key: blinded(h), Value: v[:pad]}, {Key: blinded(h - 2)}}
			if err := s.Commit(Batch{Checkpoint: Checkpoint{Height: int64(h), Sealed: []byte{byte(h)}}, Changes: ch}); err != nil {
				done <- err
				return
			}
			if h%7 == 0 {
				if err := s.fold(make(chan struct{})); err != nil {
					done <- err
					return
				}
			}
		}
		done <- nil
	}()
	for n := 0; ; n++ {
		got := map[uint32]bool{}
		cp, ok, err := s.Snapshot(func(e protocol.Entry) error {
			got[binary.BigEndian.Uint32(e.Value)] = true
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if ok {
			h := uint32(cp.Height)
			want := map[uint32]bool{h: true}
			if h > 1 {
				want[h-1] = true
			}
			if len(got) != len(want) || !got[h] || (h > 1 && !got[h-1]) {
				t.Fatalf("snapshot %d at height %d holds entries %v, want %v", n, h, got, want)
			}
		}
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
			return
		default:
		}
	}
}

// TestViewStateFileAhead: a fold and a commit that land between a reader's
// two read transactions put the state file ahead of the main file's view;
// the reader takes both again instead of reading the newer state under
// the older checkpoint.
func TestViewStateFileAhead(t *testing.T) {
	s, err := Open(filepath.Join(t.TempDir(), "w.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	stopFolder(s)
	want := map[[32]byte][]byte{}
	commitN(t, s, 1, 3, want)
	views := 0
	s.betweenViews = func() {
		views++
		if views == 1 { // block 4 committed and folded behind the first view
			commitN(t, s, 4, 4, want)
			if err := s.fold(make(chan struct{})); err != nil {
				t.Error(err)
			}
		}
	}
	got := map[[32]byte][]byte{}
	cp, ok, err := s.Snapshot(func(e protocol.Entry) error { got[e.Key] = e.Value; return nil })
	if err != nil || !ok {
		t.Fatalf("snapshot: %v, %v", ok, err)
	}
	if views != 2 || cp.Height != 4 {
		t.Fatalf("%d views, snapshot at height %d: want a second view at height 4", views, cp.Height)
	}
	if len(got) != len(want) {
		t.Fatalf("snapshot holds %d entries, want %d", len(got), len(want))
	}
	for k, v := range want {
		if string(got[k]) != string(v) {
			t.Fatalf("entry %x is %x, want %x", k, got[k], v)
		}
	}
}

// mustOpen opens the store at path or fails the test.
func mustOpen(t *testing.T, path string) *Store {
	t.Helper()
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// inParts returns a store at a new path, its background fold stopped,
// with blocks 1 to 6 folded and 7 to 12 pending (they set 7 to 12 and
// delete 5 to 10: 8 keys), folded in parts of 2 keys.
func inParts(t *testing.T) (path string, s *Store, want map[[32]byte][]byte) {
	t.Helper()
	path = filepath.Join(t.TempDir(), "w.db")
	s = mustOpen(t, path)
	stopFolder(s)
	want = map[[32]byte][]byte{}
	commitN(t, s, 1, 6, want)
	if err := s.fold(make(chan struct{})); err != nil {
		t.Fatal(err)
	}
	commitN(t, s, 7, 12, want)
	s.foldTxKeys = 2
	return path, s, want
}

// reopenFolds reopens the store at path and checks that it reads want,
// before and after it folds what is pending. The caller closes it.
func reopenFolds(t *testing.T, path string, want map[[32]byte][]byte) *Store {
	t.Helper()
	s := mustOpen(t, path)
	checkEntries(t, s, want, "reopened")
	if err := s.fold(make(chan struct{})); err != nil {
		s.Close()
		t.Fatal(err)
	}
	checkEntries(t, s, want, "folded")
	return s
}

// TestFoldInParts: a fold writes its keys in several state file
// transactions. Between them readers see the committed state, and a crash
// after any of them (the fold's sequence number not yet written) reads
// the same after reopening and folds to the same state.
func TestFoldInParts(t *testing.T) {
	for crashAfter := 1; crashAfter <= 3; crashAfter++ { // 8 keys in parts of 2
		t.Run(fmt.Sprintf("crash after part %d", crashAfter), func(t *testing.T) {
			path, s, want := inParts(t)
			parts := 0
			crash := errors.New("crash")
			s.betweenFoldTxs = func() error {
				parts++
				checkEntries(t, s, want, fmt.Sprintf("after part %d", parts))
				if parts == crashAfter {
					return crash
				}
				return nil
			}
			if _, err := s.foldOnce(maxFoldChanges, nil); !errors.Is(err, crash) {
				t.Fatalf("fold: %v, want the crash", err)
			}
			if s.foldedSeq != 6 {
				t.Fatalf("folded up to %d after the crash, want 6", s.foldedSeq)
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			s = reopenFolds(t, path, want)
			defer s.Close()
			commitN(t, s, 13, 13, want)
			checkEntries(t, s, want, "the next block")
		})
	}
}

// TestViewFoldInProgress: between a reader's view of the main file and its
// view of the state file, a block is committed and the first part of its
// fold written. The state file then holds a change the reader's records
// do not lay over; the reader takes both views again and reads the later
// block whole, never the earlier block with part of the later one.
func TestViewFoldInProgress(t *testing.T) {
	s, err := Open(filepath.Join(t.TempDir(), "w.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	stopFolder(s)
	want := map[[32]byte][]byte{}
	commitN(t, s, 1, 6, want)
	if err := s.fold(make(chan struct{})); err != nil {
		t.Fatal(err)
	}
	s.foldTxKeys = 1
	stop := errors.New("stop after the first part")
	s.betweenFoldTxs = func() error { return stop }
	views := 0
	s.betweenViews = func() {
		if views++; views == 1 {
			commitN(t, s, 7, 7, want)
			if _, err := s.foldOnce(maxFoldChanges, nil); !errors.Is(err, stop) {
				t.Errorf("fold: %v", err)
			}
		}
	}
	got := map[[32]byte][]byte{}
	cp, _, err := s.Snapshot(func(e protocol.Entry) error {
		got[e.Key] = e.Value
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if views != 2 || cp.Height != 7 {
		t.Fatalf("%d views, checkpoint at height %d: want 2 views and height 7", views, cp.Height)
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("entries %x, want %x", got, want)
	}
}

// TestStateFileNameDurableFirst: a new store's state file must be durable
// under its name before the main file records the store id that requires
// it. A power loss before the directory sync can lose the name; the sync
// fails here, as the crash would end the open there, and the state file is
// removed, as the lost name would leave it. The store opens again as a new
// one and works. Had the main file committed the id first, every later
// Open would refuse the store for good (ErrStateFile: missing).
func TestStateFileNameDurableFirst(t *testing.T) {
	path := filepath.Join(t.TempDir(), "w.db")
	crash := errors.New("power lost before the directory sync")
	var synced []string
	_, err := openWith(path, options(), func(dir string) error {
		synced = append(synced, dir)
		return crash
	})
	if !errors.Is(err, crash) || len(synced) != 1 || synced[0] != filepath.Dir(path) {
		t.Fatalf("open with the directory sync failing: %v (synced %q)", err, synced)
	}
	if err := os.Remove(StatePath(path)); err != nil {
		t.Fatal(err)
	}
	s, err := Open(path)
	if err != nil {
		t.Fatalf("open after the lost name: %v", err)
	}
	commitN(t, s, 1, 3, map[[32]byte][]byte{})
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = mustOpen(t, path)
	defer s.Close()
	if cp, ok, err := s.Checkpoint(); err != nil || !ok || cp.Height != 3 {
		t.Fatalf("checkpoint after reopen: %+v %v %v", cp, ok, err)
	}
}

// TestFoldStops: a fold told to stop (the store closing) ends after the
// transaction it is in, leaves its records unfolded, reads the same, and
// the store reopens and folds them. Without the check a Close waited for
// the whole fold: here all four parts.
func TestFoldStops(t *testing.T) {
	path, s, want := inParts(t)
	stop := make(chan struct{})
	parts := 0
	s.betweenFoldTxs = func() error {
		if parts++; parts == 1 {
			close(stop)
		}
		return nil
	}
	if more, err := s.foldOnce(maxFoldChanges, stop); err != nil || more {
		t.Fatalf("stopped fold: more %v, %v", more, err)
	}
	if parts != 1 || s.foldedSeq != 6 {
		t.Fatalf("stopped after %d parts, folded up to %d: want 1 part and 6", parts, s.foldedSeq)
	}
	checkEntries(t, s, want, "stopped")
	closeFiles(s)
	reopenFolds(t, path, want).Close()
}

// TestReopenedBacklogFolds: Open does not start a fold, so a store
// reopened with a full backlog folds only once a commit kicks it; a commit
// that has to wait for the fold kicks it itself. Without that kick the
// commit below waited for good.
func TestReopenedBacklogFolds(t *testing.T) {
	path := filepath.Join(t.TempDir(), "w.db")
	s := mustOpen(t, path)
	stopFolder(s) // the records stay unfolded
	want := map[[32]byte][]byte{}
	commitN(t, s, 1, 2, want) // 4 changes
	closeFiles(s)
	s = mustOpen(t, path)
	defer s.Close()
	s.mu.Lock()
	s.maxBacklog = 4 // the backlog is full
	s.mu.Unlock()
	done := make(chan error, 1)
	go func() {
		done <- s.Commit(Batch{Checkpoint: Checkpoint{Height: 3, Sealed: []byte{3}}, Changes: []protocol.Entry{{Key: blinded(3), Value: []byte{3}}}})
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("a commit behind a full backlog still waits: nothing started the fold")
	}
	want[blinded(3)] = []byte{3}
	checkEntries(t, s, want, "after the wait")
}
