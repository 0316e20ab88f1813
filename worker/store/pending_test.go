package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"maps"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/integritee-go/integritee/chain/sidechain"
	"github.com/integritee-go/integritee/enclave/protocol"
)

// checkEntries checks Entries and EntryCount against want.
func checkEntries(t *testing.T, s *Store, want map[[32]byte][]byte, when string) {
	t.Helper()
	var got []protocol.Entry
	if err := s.Entries(func(e protocol.Entry) error { got = append(got, e); return nil }); err != nil {
		t.Fatalf("%s: entries: %v", when, err)
	}
	keys := slices.SortedFunc(maps.Keys(want), func(a, b [32]byte) int { return bytes.Compare(a[:], b[:]) })
	if len(got) != len(keys) {
		t.Fatalf("%s: %d entries, want %d", when, len(got), len(keys))
	}
	for i, k := range keys {
		if got[i].Key != k || !bytes.Equal(got[i].Value, want[k]) {
			t.Fatalf("%s: entry %d is %x=%x, want %x=%x", when, i, got[i].Key, got[i].Value, k, want[k])
		}
	}
	if n, err := s.EntryCount(); err != nil || n != len(want) {
		t.Fatalf("%s: entry count %d (%v), want %d", when, n, err, len(want))
	}
}

// pendingCount counts the records in the main file, folded or not.
func pendingCount(t *testing.T, s *Store) int {
	t.Helper()
	n := 0
	if err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketPending).ForEach(func(_, _ []byte) error { n++; return nil })
	}); err != nil {
		t.Fatal(err)
	}
	return n
}

// stateCount counts the entries of the state file.
func stateCount(t *testing.T, s *Store) int {
	t.Helper()
	n := 0
	if err := s.state.View(func(tx *bolt.Tx) error {
		n = tx.Bucket(bucketState).Stats().KeyN
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return n
}

// stopFolder stops the background fold: the test folds by hand.
func stopFolder(s *Store) {
	close(s.stop)
	<-s.foldDone
}

// closeFiles closes a store whose folder was stopped.
func closeFiles(s *Store) {
	s.db.Close()
	s.state.Close()
}

// TestPendingChanges checks that committed changes read the same whether
// they are still pending, folded, or read after a reopen, with keys that
// are created, updated and deleted across blocks, and that the backlog of
// unfolded changes stays within maxBacklog.
func TestPendingChanges(t *testing.T) {
	path := filepath.Join(t.TempDir(), "w.db")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(3, 4))
	want := map[[32]byte][]byte{}
	for h := int64(1); h <= 96; h++ {
		var ch []protocol.Entry
		for range 20 {
			k := blinded(r.IntN(100))
			e := protocol.Entry{Key: k}
			if r.IntN(4) != 0 { // a quarter are deletions, also of absent keys
				e.Value = binary.BigEndian.AppendUint64(nil, uint64(h))
				want[k] = e.Value
			} else {
				delete(want, k)
			}
			ch = append(ch, e)
		}
		// Within a block the enclave sends each key once and sorted.
		slices.SortStableFunc(ch, func(a, b protocol.Entry) int { return bytes.Compare(a.Key[:], b.Key[:]) })
		ch = slices.CompactFunc(ch, func(a, b protocol.Entry) bool { return a.Key == b.Key })
		for i, c := range ch {
			if len(c.Value) > 0 || want[c.Key] != nil {
				ch[i].Value = want[c.Key]
			}
		}
		if err := s.Commit(Batch{Checkpoint: Checkpoint{Height: h, Sealed: []byte{1}}, Changes: ch}); err != nil {
			t.Fatal(err)
		}
		s.mu.Lock()
		backlog := s.backlog
		s.mu.Unlock()
		if backlog > maxBacklog+len(ch) {
			t.Fatalf("height %d: %d unfolded changes, at most %d", h, backlog, maxBacklog+len(ch))
		}
		checkEntries(t, s, want, "committed")
	}
	// A rejected commit leaves nothing pending.
	before := pendingCount(t, s)
	if err := s.Commit(Batch{Checkpoint: Checkpoint{Height: 1}, Changes: []protocol.Entry{{Key: blinded(1000), Value: []byte{1}}}}); !errors.Is(err, ErrHeightGap) {
		t.Fatalf("commit at an old height: %v", err)
	}
	if n := pendingCount(t, s); n > before {
		t.Fatalf("rejected commit left a pending record: %d > %d", n, before)
	}
	checkEntries(t, s, want, "after a rejected commit")
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// Reopened, and folded completely.
	s, err = Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	checkEntries(t, s, want, "reopened")
	if err := s.fold(make(chan struct{})); err != nil {
		t.Fatal(err)
	}
	checkEntries(t, s, want, "folded")
	// The next commits drop the folded records, minDropBytes of them
	// each (at least one record).
	folded := pendingCount(t, s)
	for i := 0; i < folded && pendingCount(t, s) > 0; i++ {
		if err := s.Commit(Batch{Checkpoint: Checkpoint{Height: 97 + int64(i), Sealed: []byte{1}}}); err != nil {
			t.Fatal(err)
		}
	}
	if n := pendingCount(t, s); n != 0 {
		t.Fatalf("%d of %d pending records left after folding and the commits that drop them", n, folded)
	}
	checkEntries(t, s, want, "folded and dropped")
}

// TestPendingCorrupt checks that a pending record that does not decode is
// reported as corrupt by readers, never half-applied by the fold.
func TestPendingCorrupt(t *testing.T) {
	for name, rec := range map[string][]byte{
		"truncated key":   bytes.Repeat([]byte{1}, 20),
		"length too long": append(bytes.Repeat([]byte{1}, 32), 40, 1, 2),
		"bad uvarint":     append(bytes.Repeat([]byte{1}, 32), 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff),
		"second truncated": append(encodeChanges([]protocol.Entry{{Key: blinded(1), Value: []byte{5}}}),
			bytes.Repeat([]byte{2}, 33)...),
	} {
		t.Run(name, func(t *testing.T) {
			s, err := Open(filepath.Join(t.TempDir(), "w.db"))
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Commit(Batch{Checkpoint: Checkpoint{Height: 1}, Changes: []protocol.Entry{{Key: blinded(9), Value: []byte{9}}}}); err != nil {
				t.Fatal(err)
			}
			stopFolder(s)
			if err := s.fold(make(chan struct{})); err != nil {
				t.Fatal(err)
			}
			if err := s.db.Update(func(tx *bolt.Tx) error {
				return tx.Bucket(bucketPending).Put(binary.BigEndian.AppendUint64(nil, 7), rec)
			}); err != nil {
				t.Fatal(err)
			}
			if err := s.Entries(func(protocol.Entry) error { return nil }); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("entries: %v, want ErrCorrupt", err)
			}
			if _, err := s.EntryCount(); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("entry count: %v, want ErrCorrupt", err)
			}
			if err := s.fold(make(chan struct{})); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("fold: %v, want ErrCorrupt", err)
			}
			// Nothing of the bad record reached the state.
			if n := stateCount(t, s); n != 1 {
				t.Errorf("state holds %d entries, want 1", n)
			}
			closeFiles(s)
		})
	}
}

// TestLargeBatchAfterPending checks that a batch too large for one pending
// record (a provisioned state) is written as several, after what is
// pending, and reads and folds in order.
func TestLargeBatchAfterPending(t *testing.T) {
	s, err := Open(filepath.Join(t.TempDir(), "w.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer closeFiles(s)
	stopFolder(s)
	want := map[[32]byte][]byte{}
	var small []protocol.Entry
	for i := range 10 {
		small = append(small, protocol.Entry{Key: blinded(i), Value: []byte{1}})
		want[blinded(i)] = []byte{1}
	}
	slices.SortFunc(small, func(a, b protocol.Entry) int { return bytes.Compare(a.Key[:], b.Key[:]) })
	if err := s.Commit(Batch{Checkpoint: Checkpoint{Height: 1}, Changes: small}); err != nil {
		t.Fatal(err)
	}
	var large []protocol.Entry
	for i := 5; i < 8202; i++ {
		e := protocol.Entry{Key: blinded(i), Value: []byte{2}}
		if i < 8 {
			e.Value = nil // deletes three of the first batch's keys
			delete(want, e.Key)
		} else {
			want[e.Key] = e.Value
		}
		large = append(large, e)
	}
	slices.SortFunc(large, func(a, b protocol.Entry) int { return bytes.Compare(a.Key[:], b.Key[:]) })
	if err := s.Commit(Batch{Checkpoint: Checkpoint{Height: 2}, Changes: large}); err != nil {
		t.Fatal(err)
	}
	// The small batch's 10 changes take one record of maxPendingRecordBytes
	// at most; the large batch's 8,197, more than bulkChanges, records of
	// maxBulkRecordBytes at most (three deletions of 33 bytes and 34-byte
	// changes: 30,840 fit).
	if n := pendingCount(t, s); n != 2 {
		t.Fatalf("%d pending records after a small and a large batch, want 2", n)
	}
	medium := large[:bulkChanges]
	for i := range medium {
		medium[i].Value = []byte{3}
		want[medium[i].Key] = medium[i].Value
	}
	if err := s.Commit(Batch{Checkpoint: Checkpoint{Height: 3}, Changes: medium}); err != nil {
		t.Fatal(err)
	}
	// bulkChanges changes of 34 bytes in records of 30.
	if n, want := pendingCount(t, s), 2+(bulkChanges+29)/30; n != want {
		t.Fatalf("%d pending records after a batch of %d changes, want %d", n, bulkChanges, want)
	}
	if err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketPending).ForEach(func(k, v []byte) error {
			if seq := binary.BigEndian.Uint64(k); seq > 2 && len(v) > maxPendingRecordBytes {
				t.Errorf("pending record %d of %d bytes, limit %d", seq, len(v), maxPendingRecordBytes)
			}
			return nil
		})
	}); err != nil {
		t.Fatal(err)
	}
	checkEntries(t, s, want, "large batch pending")
	if n, want := s.Unfolded(), len(small)+len(large)+len(medium); n != want {
		t.Fatalf("%d changes unfolded before the fold, want %d", n, want)
	}
	if err := s.fold(make(chan struct{})); err != nil {
		t.Fatal(err)
	}
	if n := s.Unfolded(); n != 0 {
		t.Fatalf("%d changes unfolded after the fold, want 0", n)
	}
	checkEntries(t, s, want, "after a large batch")
	if n := stateCount(t, s); n != len(want) {
		t.Fatalf("state file holds %d entries, want %d", n, len(want))
	}
}

// TestFoldRecords checks a fold of several records at once: a key changed
// by several of them ends with its latest value (updated, deleted,
// recreated), the limit bounds how many records one fold takes (but always
// at least the oldest), and the reads are the same before and after, and
// after the next commit dropped the folded records.
func TestFoldRecords(t *testing.T) {
	s, err := Open(filepath.Join(t.TempDir(), "w.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer closeFiles(s)
	stopFolder(s)
	want := map[[32]byte][]byte{}
	commit := func(h int64, ch ...protocol.Entry) {
		t.Helper()
		slices.SortFunc(ch, func(a, b protocol.Entry) int { return bytes.Compare(a.Key[:], b.Key[:]) })
		for _, c := range ch {
			if len(c.Value) == 0 {
				delete(want, c.Key)
			} else {
				want[c.Key] = c.Value
			}
		}
		if err := s.Commit(Batch{Checkpoint: Checkpoint{Height: h, Sealed: []byte{1}}, Changes: ch}); err != nil {
			t.Fatal(err)
		}
	}
	put := func(i int, v byte) protocol.Entry { return protocol.Entry{Key: blinded(i), Value: []byte{v}} }
	del := func(i int) protocol.Entry { return protocol.Entry{Key: blinded(i)} }
	commit(1, put(1, 1), put(2, 1), put(3, 1), put(4, 1))
	commit(2, put(1, 2), del(2), put(5, 2), put(9, 2))
	commit(3, put(2, 3), del(3), put(1, 3), del(9))
	commit(4, del(5), put(6, 4), put(7, 4), put(8, 4))
	fold := func(limit int, foldedAfter uint64) {
		t.Helper()
		more, err := s.foldOnce(limit, nil)
		if err != nil || !more {
			t.Fatalf("fold: %v, %v", more, err)
		}
		if s.foldedSeq != foldedAfter {
			t.Fatalf("folded up to record %d after a fold with limit %d, want %d", s.foldedSeq, limit, foldedAfter)
		}
		checkEntries(t, s, want, "after a fold")
	}
	checkEntries(t, s, want, "pending")
	fold(0, 1) // the oldest record only, however small the limit
	fold(8, 3) // records 2 and 3 (4 + 4 changes, 5 keys), not 4 as well (5 + 4)
	if n := pendingCount(t, s); n != 4 {
		t.Fatalf("%d records in the main file before a commit dropped them, want 4", n)
	}
	commit(5, put(10, 5))
	if n := pendingCount(t, s); n != 2 {
		t.Fatalf("%d records in the main file after a commit, want 2 (4 and 5)", n)
	}
	checkEntries(t, s, want, "after a commit dropped folded records")
	fold(100, 5)
	if more, err := s.foldOnce(100, nil); err != nil || more {
		t.Fatalf("fold with nothing unfolded: %v, %v", more, err)
	}
	if n := stateCount(t, s); n != len(want) {
		t.Errorf("state file holds %d entries, want %d", n, len(want))
	}
}

// TestGatheredFoldCorrupt: a corrupt record behind good ones fails the
// whole gathered fold, so nothing of the good records is folded either
// (they stay pending and read as before) and nothing of the bad one.
func TestGatheredFoldCorrupt(t *testing.T) {
	s, err := Open(filepath.Join(t.TempDir(), "w.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer closeFiles(s)
	stopFolder(s)
	for h := int64(1); h <= 3; h++ {
		if err := s.Commit(Batch{Checkpoint: Checkpoint{Height: h}, Changes: []protocol.Entry{{Key: blinded(int(h)), Value: []byte{byte(h)}}}}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketPending).Put(binary.BigEndian.AppendUint64(nil, 4), bytes.Repeat([]byte{7}, 20)) // a truncated change
	}); err != nil {
		t.Fatal(err)
	}
	if err := s.fold(make(chan struct{})); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("fold: %v, want ErrCorrupt", err)
	}
	if s.foldedSeq != 0 {
		t.Fatalf("folded up to record %d after a failed fold, want 0", s.foldedSeq)
	}
	if n := stateCount(t, s); n != 0 {
		t.Errorf("state holds %d entries after a failed fold, want 0", n)
	}
}

// TestCommitsWakeTheFold checks that every way of committing state changes
// wakes the background fold: a path that did not would leave its records
// to Commit's own fold at the backlog limit, in the worker's turn.
func TestCommitsWakeTheFold(t *testing.T) {
	ch := []protocol.Entry{{Key: blinded(1), Value: []byte{1}}}
	block := func(n uint64) sidechain.SignedHeader {
		return sidechain.SignedHeader{Header: sidechain.Header{Number: n}}
	}
	for name, commit := range map[string]func(s *Store) error{
		"Commit": func(s *Store) error {
			return s.Commit(Batch{Checkpoint: Checkpoint{Height: 1}, Changes: ch})
		},
		"CommitShardBlock": func(s *Store) error {
			if err := s.Commit(Batch{Checkpoint: Checkpoint{Height: 1}}); err != nil {
				return err
			}
			<-s.kick
			return s.CommitShardBlock(Batch{Checkpoint: Checkpoint{Height: 1}, Changes: ch}, block(1))
		},
		"CommitSteps": func(s *Store) error {
			return s.CommitSteps(Records{}, []Step{
				{Batch: Batch{Checkpoint: Checkpoint{Height: 1}, Changes: ch}},
				{Batch: Batch{Checkpoint: Checkpoint{Height: 1}, Changes: ch}, Direct: new(block(1))},
			})
		},
	} {
		t.Run(name, func(t *testing.T) {
			s, err := Open(filepath.Join(t.TempDir(), "w.db"))
			if err != nil {
				t.Fatal(err)
			}
			defer closeFiles(s)
			stopFolder(s) // the folder is gone, so a kick stays in its channel
			if err := commit(s); err != nil {
				t.Fatal(err)
			}
			if len(s.kick) != 1 {
				t.Fatal("the commit did not wake the fold")
			}
		})
	}
}

// TestFoldPaced checks the fold's pacing: it pauses after gathering the
// records and after each state file transaction but the last, foldPause
// times the step's time (at most foldPauseMax); it does not pause once
// the backlog is half of maxBacklog; a stop in a pause ends the fold
// between transactions with nothing lost. The pauses are recorded, not
// slept, so that nothing depends on timing.
func TestFoldPaced(t *testing.T) {
	open := func(t *testing.T) (*Store, *[]time.Duration, map[[32]byte][]byte) {
		s, err := Open(filepath.Join(t.TempDir(), "w.db"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { closeFiles(s) })
		stopFolder(s)
		want := map[[32]byte][]byte{}
		for h := range 4 {
			var ch []protocol.Entry
			for i := range 10 {
				e := protocol.Entry{Key: blinded(h*10 + i), Value: []byte{byte(h), byte(i)}}
				want[e.Key] = e.Value
				ch = append(ch, e)
			}
			slices.SortFunc(ch, func(a, b protocol.Entry) int { return bytes.Compare(a.Key[:], b.Key[:]) })
			if err := s.Commit(Batch{Checkpoint: Checkpoint{Height: int64(h + 1), Sealed: []byte{1}}, Changes: ch}); err != nil {
				t.Fatal(err)
			}
		}
		s.foldTxKeys = 8 // 40 keys: 5 transactions
		var pauses []time.Duration
		s.foldWait = func(d time.Duration, stop <-chan struct{}) bool {
			pauses = append(pauses, d)
			return true
		}
		return s, &pauses, want
	}

	for _, tc := range []struct {
		name   string
		setup  func(s *Store)
		pauses int
	}{
		// After the gather and after each of 5 transactions but the last.
		{"paced", func(*Store) {}, 5},
		// 4 records: a pause before the 2nd and the 4th, then as above.
		{"gather paced", func(s *Store) { s.gatherStep = 2 }, 7},
		// 40 changes unfolded, half of maxBacklog: unpaced.
		{"behind", func(s *Store) { s.maxBacklog = 80 }, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, pauses, want := open(t)
			tc.setup(s)
			if err := s.fold(make(chan struct{})); err != nil {
				t.Fatal(err)
			}
			checkEntries(t, s, want, "after the fold")
			if len(*pauses) != tc.pauses {
				t.Fatalf("%d pauses, want %d", len(*pauses), tc.pauses)
			}
			for _, d := range *pauses {
				if d <= 0 || d > foldPauseMax {
					t.Errorf("pause %s, want in (0, %s]", d, foldPauseMax)
				}
			}
		})
	}
	t.Run("stopped in the gather", func(t *testing.T) {
		s, _, want := open(t)
		s.gatherStep = 2
		s.foldWait = func(time.Duration, <-chan struct{}) bool { return false }
		if err := s.fold(make(chan struct{})); err != nil {
			t.Fatal(err)
		}
		if s.foldedSeq != 0 || stateCount(t, s) != 0 {
			t.Fatalf("a fold stopped in its gather folded up to %d, %d entries in the state file", s.foldedSeq, stateCount(t, s))
		}
		checkEntries(t, s, want, "after a fold stopped in its gather")
	})
	t.Run("stopped in a pause", func(t *testing.T) {
		s, pauses, want := open(t)
		stop := make(chan struct{})
		s.foldWait = func(d time.Duration, stop <-chan struct{}) bool {
			*pauses = append(*pauses, d)
			return len(*pauses) != 3 // a stop in the third pause
		}
		if more, err := s.foldOnce(maxFoldChanges, stop); err != nil || more {
			t.Fatalf("fold stopped in a pause: %v, %v; want false, nil", more, err)
		}
		if s.foldedSeq != 0 {
			t.Fatalf("folded up to record %d, want none recorded as folded", s.foldedSeq)
		}
		checkEntries(t, s, want, "after a fold stopped in a pause")
		if err := s.fold(make(chan struct{})); err != nil {
			t.Fatal(err)
		}
		checkEntries(t, s, want, "after the next fold")
	})
	// The real wait ends at stop.
	stop := make(chan struct{})
	close(stop)
	if sleep(time.Hour, stop) {
		t.Fatal("sleep did not end at stop")
	}
	if !sleep(0, make(chan struct{})) {
		t.Fatal("a pause of 0 reported a stop")
	}
}

// TestFoldDue checks when the background fold folds: nothing below foldAt
// changes; at foldAt, what is unfolded when it starts, while the changes
// committed during it wait for the next fold; when the idle timer fired,
// nothing if a commit came less than foldIdle before (by the store's
// clock, here set by hand), everything otherwise. And the folder itself
// folds the rest once no commit came for foldIdle.
func TestFoldDue(t *testing.T) {
	s := openStopped(t, filepath.Join(t.TempDir(), "w.db"))
	defer closeFiles(s)
	s.foldAt = 8
	clock := time.Unix(1_800_000_000, 0)
	s.now = func() time.Time { return clock }
	want := map[[32]byte][]byte{}
	never := make(chan struct{})
	commitN(t, s, 1, 3, want) // 6 changes
	if _, err := s.foldDue(never, false); err != nil {
		t.Fatal(err)
	}
	if n := s.Unfolded(); n != 6 {
		t.Fatalf("%d changes unfolded after a fold below foldAt, want all 6", n)
	}
	commitN(t, s, 4, 4, want) // 8: due
	// A block committed while the fold runs (in its first pause).
	during := true
	s.foldWait = func(time.Duration, <-chan struct{}) bool {
		if during {
			during = false
			commitN(t, s, 5, 5, want)
		}
		return true
	}
	if _, err := s.foldDue(never, false); err != nil {
		t.Fatal(err)
	}
	if during {
		t.Fatal("the fold did not pause")
	}
	if n := s.Unfolded(); n != 2 {
		t.Fatalf("%d changes unfolded after a fold at foldAt, want the 2 committed during it", n)
	}
	checkEntries(t, s, want, "after the fold at foldAt")
	// The timer ran out, but the last commit is 400 ms old: not idle.
	clock = clock.Add(400 * time.Millisecond)
	if wait, err := s.foldDue(never, true); err != nil || wait != foldIdle-400*time.Millisecond {
		t.Fatalf("idle timer 400 ms after a commit: wait %s, %v; want %s", wait, err, foldIdle-400*time.Millisecond)
	}
	if n := s.Unfolded(); n != 2 {
		t.Fatalf("%d changes unfolded after the timer ran out too early, want 2", n)
	}
	clock = clock.Add(foldIdle - 400*time.Millisecond)
	if wait, err := s.foldDue(never, true); err != nil || wait != 0 {
		t.Fatalf("idle fold: wait %s, %v", wait, err)
	}
	if n := s.Unfolded(); n != 0 {
		t.Fatalf("%d changes unfolded after an idle fold, want 0", n)
	}
	checkEntries(t, s, want, "after the idle fold")

	// The folder: a commit below foldAt is folded foldIdle later.
	s.foldDone, s.stop = make(chan struct{}), make(chan struct{})
	s.foldIdle, s.now = time.Millisecond, time.Now
	go s.folder()
	commitN(t, s, 6, 6, want)
	timedOut := false
	deadline := time.AfterFunc(time.Minute, func() {
		s.mu.Lock()
		timedOut = true
		s.cond.Broadcast()
		s.mu.Unlock()
	})
	defer deadline.Stop()
	s.mu.Lock()
	for s.backlog > 0 && s.foldErr == nil && !timedOut {
		s.cond.Wait() // a fold broadcasts when it is done
	}
	err, late := s.foldErr, timedOut
	s.mu.Unlock()
	if err != nil || late {
		t.Fatalf("the folder's idle fold: %v (a minute passed: %v)", err, late)
	}
	stopFolder(s)
	checkEntries(t, s, want, "after the idle fold of the folder")
}

// TestFoldedRecordsDroppedInSteps: a commit that appends little drops
// minDropBytes of folded records (here 32 records), the next ones the
// rest, in order; reads are the same whether a folded record is
// dropped yet or not, and a reopen between two steps drops what is left.
func TestFoldedRecordsDroppedInSteps(t *testing.T) {
	path := filepath.Join(t.TempDir(), "w.db")
	s := openStopped(t, path)
	// commitN's records: a change of a 1-byte value and a deletion.
	const recordBytes, perStep = 32 + 1 + 1 + 32 + 1, 32
	s.dropFloor = perStep*recordBytes + recordBytes/2
	want := map[[32]byte][]byte{}
	records := 2*perStep + 5
	commitN(t, s, 1, records, want)
	for {
		more, err := s.foldOnce(maxFoldChanges, nil)
		if err != nil {
			t.Fatal(err)
		}
		if !more {
			break
		}
	}
	if n := pendingCount(t, s); n != records {
		t.Fatalf("%d records before a commit dropped any, want %d", n, records)
	}
	// Each commit appends one record and drops up to perStep folded ones.
	commitN(t, s, records+1, records+1, want)
	if n := pendingCount(t, s); n != records-perStep+1 {
		t.Fatalf("%d records after one commit, want %d", n, records-perStep+1)
	}
	checkEntries(t, s, want, "after one step of the drop")
	closeFiles(s)

	s = openStopped(t, path)
	defer closeFiles(s)
	if n := pendingCount(t, s); n != 1 {
		t.Fatalf("%d records after a reopen, want 1 (the unfolded one)", n)
	}
	checkEntries(t, s, want, "after a reopen")
	commitN(t, s, records+2, records+4, want)
	checkEntries(t, s, want, "after more commits")
}

// TestFoldedRecordsDroppedAsRecordsCome: a commit drops about as many
// bytes of folded records as it appends (minDropBytes, here lowered to two
// records, if it appends fewer), so that the pages it frees are used
// again by the next commits instead of lengthening bbolt's freelist.
func TestFoldedRecordsDroppedAsRecordsCome(t *testing.T) {
	s := openStopped(t, filepath.Join(t.TempDir(), "w.db"))
	defer closeFiles(s)
	// commitN's records: a change of a 1-byte value and a deletion.
	const recordBytes = 32 + 1 + 1 + 32 + 1
	s.dropFloor = 2 * recordBytes
	want := map[[32]byte][]byte{}
	const records = 20
	commitN(t, s, 1, records, want)
	if err := s.fold(make(chan struct{})); err != nil {
		t.Fatal(err)
	}
	pending := records
	for j, tc := range []struct {
		name    string
		changes int // of 1-byte values, 34 bytes each, in one record
		dropped int
	}{
		{"a record of five and a bit", 10, 5}, // 340 bytes: 5 records of 67
		{"a record of one", 2, 2},             // 68 bytes, under the floor
		{"no record", 0, 2},                   // the floor
		{"a record of eight and a bit", 16, 8},
	} {
		h := records + 1 + j
		var ch []protocol.Entry
		for i := range tc.changes {
			e := protocol.Entry{Key: blinded(1000*h + i), Value: []byte{1}}
			want[e.Key] = e.Value
			ch = append(ch, e)
		}
		slices.SortFunc(ch, func(a, b protocol.Entry) int { return bytes.Compare(a.Key[:], b.Key[:]) })
		if err := s.Commit(Batch{Checkpoint: Checkpoint{Height: int64(h), Sealed: []byte{1}}, Changes: ch}); err != nil {
			t.Fatal(err)
		}
		if tc.changes > 0 {
			pending++
		}
		pending -= tc.dropped
		if n := pendingCount(t, s); n != pending {
			t.Fatalf("%s: %d records after the commit, want %d (%d dropped)", tc.name, n, pending, tc.dropped)
		}
		checkEntries(t, s, want, tc.name)
	}
}

// openStopped opens the store at path with its background fold stopped.
func openStopped(t *testing.T, path string) *Store {
	t.Helper()
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	stopFolder(s)
	return s
}

// TestRecordChanges: a batch's changes are split into records of at most
// maxPendingRecordBytes, in order, each with at least one change (a change
// larger than the bound is a record of its own), and the records decode
// to the batch.
func TestRecordChanges(t *testing.T) {
	change := func(i, n int) protocol.Entry {
		return protocol.Entry{Key: blinded(i), Value: bytes.Repeat([]byte{byte(i)}, n)}
	}
	for _, tc := range []struct {
		name    string
		changes []protocol.Entry
		want    []int // changes per record
	}{
		{"one", []protocol.Entry{change(1, 10)}, []int{1}},
		{"a deletion", []protocol.Entry{change(1, 0)}, []int{1}},
		// 30 changes of 34 bytes fit in 1,024, 31 do not.
		{"full records", func() (cs []protocol.Entry) {
			for i := range 61 {
				cs = append(cs, change(i, 1))
			}
			return cs
		}(), []int{30, 30, 1}},
		{"exactly the bound", []protocol.Entry{change(1, maxPendingRecordBytes-32-2), change(2, 1)}, []int{1, 1}},
		{"larger than the bound", []protocol.Entry{change(1, 1), change(2, 3000), change(3, 1)}, []int{1, 1, 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []int
			var back []protocol.Entry
			for rest := tc.changes; len(rest) > 0; {
				n := recordChanges(rest, maxPendingRecordBytes)
				rec := encodeChanges(rest[:n])
				if n > 1 && len(rec) > maxPendingRecordBytes {
					t.Errorf("record of %d changes has %d bytes", n, len(rec))
				}
				if err := decodeChanges(rec, func(k, v []byte) {
					back = append(back, protocol.Entry{Key: [32]byte(k), Value: bytes.Clone(v)})
				}); err != nil {
					t.Fatal(err)
				}
				got = append(got, n)
				rest = rest[n:]
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("changes per record %v, want %v", got, tc.want)
			}
			if len(back) != len(tc.changes) {
				t.Fatalf("%d changes back, want %d", len(back), len(tc.changes))
			}
			for i := range back {
				if back[i].Key != tc.changes[i].Key || !bytes.Equal(back[i].Value, tc.changes[i].Value) {
					t.Errorf("change %d back as %x=%x", i, back[i].Key, back[i].Value)
				}
			}
		})
	}
}
