package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/integritee-go/integritee/enclave/protocol"
)

// A block's state changes are committed as pending records of the main
// file (key: 8-byte sequence number), in the block's transaction, and
// folded into the state file (statefile.go) afterwards, oldest first,
// many records in one transaction. State keys are blinded, uniformly
// random: written straight into the state's B+tree, a block's few hundred
// changes each dirty their own leaf page once the state has more leaves
// than the block has changes (1,459 pages, ~30 ms fsynced at a million
// accounts against 92 at a thousand); as a record they dirty a handful of
// pages at any size. The fold runs in the background, in the state file,
// so a block's commit never waits for it; a commit waits only when the
// fold is maxBacklog changes behind. Readers see the state file with the
// records it has not folded laid over it in order, from read transactions
// of both files taken together (Store.view): a committed change is visible
// whether or not it was folded yet, and a crash at any moment leaves each
// record unfolded (pending, laid over the state file, which may hold some
// of its changes already: see foldTxKeys) or folded (its changes in the
// state file, the record dropped or, until the next commit drops it,
// ignored); either reads the same.

var bucketPending = []byte("pending_changes")

// maxPendingRecordBytes bounds a pending record's encoding (a record holds
// at least one change, however large): a batch's changes are written as
// records of about a kilobyte, in order, in its transaction. bbolt keeps at least two values in a leaf
// and splits a leaf of four or fewer not at all, so each block's one
// record of ~16 KB was written again with the two or three before it in
// every commit, in freshly allocated multi-page buffers; small records fill
// single pages, which a commit writes once and takes from bbolt's pool.
// The worker wrote ~30% fewer bytes per call (docs/performance.md, "Pending
// changes in small records").
const maxPendingRecordBytes = 1 << 10

// A batch of more than bulkChanges changes (a provisioned state) is written
// in records of up to maxBulkRecordBytes (before records of a kilobyte:
// 8,192 changes each, whatever their size): it is one commit, and in
// records of a kilobyte the two million changes of a million accounts took
// twice as long to write (1.2 s against 0.6).
const (
	bulkChanges        = 8192
	maxBulkRecordBytes = 1 << 20
)

// pendingFillPercent is how full bbolt fills the pending bucket's pages:
// records are only appended (and dropped from the front), so a page is
// never split again for an insert in its middle.
const pendingFillPercent = 0.9

// maxBacklog is the number of unfolded changes at which commits of
// further changes wait for the fold, so that the backlog (and what
// readers lay over the state) stays bounded. A provisioned state of a
// million accounts fits below it: the commits after it do not wait.
const maxBacklog = 1 << 21

// maxFoldChanges is the most changes one fold takes (at least one
// record). Under load records gather while a fold runs, and the next fold
// writes the leaf pages they share once; a large batch is folded in one
// pass in key order.
const maxFoldChanges = 1 << 20

// foldTxKeys is the most keys a fold writes in one state file
// transaction; the last of a fold's transactions records its last
// sequence number. bbolt holds a decoded copy of every leaf a transaction
// touches until it commits, and random keys touch one leaf each: a fold of
// 50,000 changes into a million entries in one transaction held most of
// the tree, and the worker's heap passed 340 MiB after a bulk load
// (docs/performance.md, "The fold in bounded transactions"). A crash
// between a fold's transactions leaves the state file with some of the
// records' changes while its sequence number still says they are not
// folded: readers and the next fold lay the records over it again, in
// order, and each key ends at the same latest value. Every transaction but
// the last records the fold's last record as folding_seq, so that a
// reader whose view of the main file ends before it takes both views
// again (Store.view), as after a finished fold: it would see changes of
// records it does not lay over.
const foldTxKeys = 4096

// foldPause paces a fold: after each of its steps (reading gatherStep records,
// then each state file transaction) it waits foldPause times as long as
// the step took, so that it takes at most a third of a core. Unpaced, a
// fold of foldAtChanges changes took a core for a second or two at once:
// under 10,000 clients that stalled the worker's hot path, and p99 rose
// from 242 ms without folds to 432 ms (docs/performance.md, "The fold
// paced"). The fold still keeps up: paced, it folds some 50,000 changes a
// second at 1k accounts, against the ~20,000 a second the load makes. Once
// the backlog reaches half of maxBacklog it runs unpaced, so that commits
// never wait for a pause.
const (
	foldPause    = 2
	foldPauseMax = time.Second
)

// gatherStep is how many records a fold reads between two pauses (about
// 4 MB of a block's records of a kilobyte): read at once, the 32 MB of a fold of 262,144 changes took
// 11-80 ms of a core, and the latency of the calls around it rose
// (docs/performance.md, "Votes in runs").
const gatherStep = 4096

// encodeChanges encodes changes as, for each, its 32-byte key, the value's
// length as a uvarint and the value (length 0: a deletion).
func encodeChanges(changes []protocol.Entry) []byte {
	b := make([]byte, 0, changesSize(changes))
	for _, c := range changes {
		b = append(b, c.Key[:]...)
		b = binary.AppendUvarint(b, uint64(len(c.Value)))
		b = append(b, c.Value...)
	}
	return b
}

// decodeChanges calls fn for each change of an encoded record; values
// alias b.
func decodeChanges(b []byte, fn func(key []byte, value []byte)) error {
	for len(b) > 0 {
		if len(b) < 33 {
			return fmt.Errorf("%w: pending change truncated", ErrCorrupt)
		}
		key := b[:32]
		n, w := binary.Uvarint(b[32:])
		if w <= 0 || n > uint64(len(b)-32-w) {
			return fmt.Errorf("%w: pending change length", ErrCorrupt)
		}
		v := b[32+w : 32+w+int(n)]
		fn(key, v)
		b = b[32+w+int(n):]
	}
	return nil
}

// changeCount returns the number of changes in an encoded record.
func changeCount(b []byte) (int, error) {
	n := 0
	err := decodeChanges(b, func(_, _ []byte) { n++ })
	return n, err
}

// putChanges appends a batch's changes as pending records.
func putChanges(tx *bolt.Tx, changes []protocol.Entry) error {
	m := tx.Bucket(bucketMeta)
	seq := readUint(m.Get(keyPendingNext))
	if seq == 0 {
		return fmt.Errorf("%w: no pending record sequence", ErrCorrupt)
	}
	p := tx.Bucket(bucketPending)
	p.FillPercent = pendingFillPercent
	limit := maxPendingRecordBytes
	if len(changes) > bulkChanges {
		limit = maxBulkRecordBytes
	}
	for len(changes) > 0 {
		n := recordChanges(changes, limit)
		if err := p.Put(binary.BigEndian.AppendUint64(nil, seq), encodeChanges(changes[:n])); err != nil {
			return err
		}
		seq++
		changes = changes[n:]
	}
	return m.Put(keyPendingNext, binary.BigEndian.AppendUint64(nil, seq))
}

// recordChanges is how many of changes (at least one) the next pending
// record takes: as many as fit in limit bytes.
func recordChanges(changes []protocol.Entry, limit int) int {
	size := 0
	for i, c := range changes {
		if size += changeSize(c); i > 0 && size > limit {
			return i
		}
	}
	return len(changes)
}

// changesSize is the length of the pending records that hold changes:
// their encodings, one after the other.
func changesSize(changes []protocol.Entry) int {
	n := 0
	for _, c := range changes {
		n += changeSize(c)
	}
	return n
}

// changeSize is the length of c's encoding in a record.
func changeSize(c protocol.Entry) int {
	var n [binary.MaxVarintLen64]byte
	return 32 + binary.PutUvarint(n[:], uint64(len(c.Value))) + len(c.Value)
}

// putOrDelete writes a change: an empty value deletes the key.
func putOrDelete(b *bolt.Bucket, key, value []byte) error {
	if len(value) == 0 {
		return b.Delete(key)
	}
	return b.Put(key, value)
}

// unfolded calls fn with each pending record after the sequence number
// after, oldest first, until fn returns false.
func unfolded(tx *bolt.Tx, after uint64, fn func(seq uint64, rec []byte) (bool, error)) error {
	c := tx.Bucket(bucketPending).Cursor()
	for k, v := c.Seek(binary.BigEndian.AppendUint64(nil, after+1)); k != nil; k, v = c.Next() {
		if len(k) != 8 {
			return fmt.Errorf("%w: pending record key of %d bytes", ErrCorrupt, len(k))
		}
		more, err := fn(binary.BigEndian.Uint64(k), v)
		if err != nil || !more {
			return err
		}
	}
	return nil
}

// pendingSeqs returns the sequence numbers of the oldest and the newest
// pending record after the sequence number after; ok false if there is
// none.
func pendingSeqs(tx *bolt.Tx, after uint64) (first, last uint64, ok bool, err error) {
	c := tx.Bucket(bucketPending).Cursor()
	f, _ := c.Seek(binary.BigEndian.AppendUint64(nil, after+1))
	l, _ := c.Last()
	if f == nil {
		return 0, 0, false, nil
	}
	if len(f) != 8 || len(l) != 8 {
		return 0, 0, false, fmt.Errorf("%w: pending record key", ErrCorrupt)
	}
	return binary.BigEndian.Uint64(f), binary.BigEndian.Uint64(l), true, nil
}

// gather reads the oldest unfolded records, and after the first more while
// their changes come to at most limit: each changed key with its latest
// value (aliasing tx), the last record's sequence number and the number of
// changes read. A key changed by several records is folded once. pause, if
// set, is called every step records (a fold paces itself there); if
// it returns false, gather ends with errFoldStopped.
func gather(tx *bolt.Tx, after uint64, limit, step int, pause func() bool) (latest map[[32]byte][]byte, last uint64, changes int, err error) {
	latest = map[[32]byte][]byte{}
	records := 0
	err = unfolded(tx, after, func(seq uint64, rec []byte) (bool, error) {
		if records++; pause != nil && records%step == 0 && !pause() {
			return false, errFoldStopped
		}
		if last != 0 && changes+len(rec)/33 > limit {
			return false, nil // each change takes at least 33 bytes
		}
		if err := decodeChanges(rec, func(key, value []byte) {
			latest[[32]byte(key)] = value
			changes++
		}); err != nil {
			return false, err
		}
		last = seq
		return true, nil
	})
	return latest, last, changes, err
}

// overlay returns the changes of the records after the sequence number
// after, later ones replacing earlier ones (an empty value: deleted), and
// their keys in order.
func overlay(tx *bolt.Tx, after uint64) (map[[32]byte][]byte, [][32]byte, error) {
	m, _, _, err := gather(tx, after, int(^uint(0)>>1), 1, nil)
	if err != nil {
		return nil, nil, err
	}
	return m, sortedKeys(m), nil
}

// sortedKeys returns m's keys in order.
func sortedKeys(m map[[32]byte][]byte) [][32]byte {
	return slices.SortedFunc(maps.Keys(m), func(a, b [32]byte) int { return bytes.Compare(a[:], b[:]) })
}

// errFoldStopped ends a fold that was told to stop between transactions.
var errFoldStopped = errors.New("store: fold stopped")

// foldOnce folds the oldest unfolded records, up to limit changes (at
// least one record), into the state file in transactions of up to
// foldTxKeys keys in key order, the last with their last sequence number;
// false if there was none. The records are dropped by a later commit.
// Once stop is closed it ends between two transactions, as a crash there
// would (the records stay unfolded; see foldTxKeys), and returns false:
// a store closing in the middle of a large fold does not wait for it.
func (s *Store) foldOnce(limit int, stop <-chan struct{}) (bool, error) {
	s.foldMu.Lock()
	defer s.foldMu.Unlock()
	s.mu.Lock()
	after := s.foldedSeq
	s.mu.Unlock()
	var last uint64
	var n int
	err := s.db.View(func(mtx *bolt.Tx) error {
		// The values alias the main file's read transaction, open until
		// the state file's commit returned.
		step := time.Now()
		latest, l, cnt, err := gather(mtx, after, limit, s.gatherStep, func() bool {
			ok := s.pace(time.Since(step), stop)
			step = time.Now()
			return ok
		})
		if err != nil || l == 0 {
			return err
		}
		last, n = l, cnt
		keys := sortedKeys(latest)
		for len(keys) > 0 {
			if !s.pace(time.Since(step), stop) {
				return errFoldStopped
			}
			step = time.Now()
			part := keys[:min(len(keys), s.foldTxKeys)]
			keys = keys[len(part):]
			if err := s.state.Update(func(stx *bolt.Tx) error {
				sb := stx.Bucket(bucketState)
				for _, k := range part {
					if err := putOrDelete(sb, k[:], latest[k]); err != nil {
						return err
					}
				}
				seq := binary.BigEndian.AppendUint64(nil, last)
				if len(keys) > 0 {
					return stx.Bucket(bucketMeta).Put(keyFoldingSeq, seq)
				}
				return stx.Bucket(bucketMeta).Put(keyFoldedSeq, seq)
			}); err != nil {
				return err
			}
			if len(keys) == 0 {
				break
			}
			if s.betweenFoldTxs != nil {
				if err := s.betweenFoldTxs(); err != nil {
					return err
				}
			}
			select {
			case <-stop:
				return errFoldStopped
			default:
			}
		}
		return nil
	})
	if errors.Is(err, errFoldStopped) {
		return false, nil
	}
	if err != nil || last == 0 {
		return false, err
	}
	s.mu.Lock()
	s.foldedSeq = last
	s.backlog -= n
	s.cond.Broadcast()
	s.mu.Unlock()
	return true, nil
}

// pace waits foldPause times busy, the time of the fold's last step,
// unless the backlog is half of maxBacklog or more; false if stop closed
// meanwhile.
func (s *Store) pace(busy time.Duration, stop <-chan struct{}) bool {
	s.mu.Lock()
	behind := s.backlog >= s.maxBacklog/2
	s.mu.Unlock()
	if behind || s.foldPause == 0 {
		return true
	}
	return s.foldWait(min(time.Duration(s.foldPause*float64(busy)), foldPauseMax), stop)
}

// sleep waits d; false if stop closed first.
func sleep(d time.Duration, stop <-chan struct{}) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-stop:
		return false
	case <-t.C:
		return true
	}
}

// fold folds pending records until there are none or stop is closed.
func (s *Store) fold(stop <-chan struct{}) error {
	return s.foldWhile(stop, func() bool { return true })
}

// foldWhile folds pending records while due says so and some remain, or
// until stop is closed.
func (s *Store) foldWhile(stop <-chan struct{}, due func() bool) error {
	for due() {
		select {
		case <-stop:
			return nil
		default:
		}
		more, err := s.foldOnce(maxFoldChanges, stop)
		if err != nil || !more {
			return err
		}
	}
	return nil
}

// foldAtChanges is the number of unfolded changes at which the
// background fold runs; fewer are folded once no commit came for foldIdle.
// A fold writes each leaf page its changes touch once, so waiting turns
// the busy accounts' many small writes into one, and at a million
// accounts, where each random change lands on its own leaf, lets changes
// share leaves: in BenchmarkStoreFoldEvery a fold of 393,216 changes costs
// half the CPU per change of one of 98,304. It counts changes, not
// records, whose size follows the load. Only reads of the whole state at a
// start or a snapshot lay the unfolded records over the state file, so
// more of them cost no commit or getter; they stay well below maxBacklog,
// at which commits would wait.
//
// foldIdle is far longer than a busy worker's gap between two commits: at
// 100 ms, a worker behind under 10,000 clients (enclave round trips of
// 100-250 ms) looked idle between its commits and folded 2,000-50,000
// changes at a time, ten times as often as at foldAtChanges, each fold a
// few state file transactions whose fsyncs held the commits back
// (docs/performance.md, "The fold waits for real idleness").
const (
	foldAtChanges = 1 << 18
	foldIdle      = time.Second
)

// Unfolded returns the number of committed changes not yet folded into
// the state file: at most foldAtChanges in steady operation, more for a
// while after a large batch (a provisioned state).
func (s *Store) Unfolded() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.backlog
}

// foldDue folds what is due. After a kick (idle false): while foldAt
// changes or more are unfolded; the changes committed during such a fold
// wait for the next one (or for idleness) rather than being folded at
// once in a fold of their own, which would write the state file again for
// a few thousand changes. When the idle timer fired: everything, if no
// commit came for foldIdle; otherwise nothing, and it returns how long
// until then (the timer may have run out during a long fold, whose
// commits' kicks wait behind it).
func (s *Store) foldDue(stop <-chan struct{}, idle bool) (time.Duration, error) {
	if !idle {
		return 0, s.foldWhile(stop, func() bool { return s.Unfolded() >= s.foldAt })
	}
	s.mu.Lock()
	quiet := s.now().Sub(s.lastCommit)
	s.mu.Unlock()
	if quiet < s.foldIdle {
		return s.foldIdle - quiet, nil
	}
	return 0, s.fold(stop)
}

// folder folds in the background until Close: once foldAt changes
// are unfolded, and the rest once no commit came for foldIdle.
func (s *Store) folder() {
	defer close(s.foldDone)
	defer func() {
		s.mu.Lock()
		s.foldRunning = false
		s.cond.Broadcast()
		s.mu.Unlock()
	}()
	idle := time.NewTimer(foldIdle) // s.foldIdle is read after a kick: tests set it before
	idle.Stop()
	for {
		fired := false
		select {
		case <-s.stop:
			return
		case <-s.kick:
			idle.Reset(s.foldIdle)
		case <-idle.C:
			fired = true
		}
		wait, err := s.foldDue(s.stop, fired)
		if err != nil {
			s.mu.Lock()
			s.foldErr = err
			s.mu.Unlock()
			return
		}
		if wait > 0 {
			idle.Reset(wait)
		}
	}
}
