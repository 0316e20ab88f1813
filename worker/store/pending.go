package store

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"maps"
	"math"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/integritee-go/integritee/enclave/protocol"
)

// A block's state changes are committed as one record of the pending
// bucket (key: 8-byte sequence number), in the block's transaction, and
// folded into the state bucket afterwards, oldest first, several records'
// fold and deletion in one transaction. State keys are blinded, uniformly
// random: written straight into the state's B+tree, a block's few hundred
// changes each dirty their own leaf page once the state has more leaves
// than the block has changes (1,459 pages, ~30 ms fsynced at a million
// accounts against 92 at a thousand); as one record they dirty a handful
// of pages at any size. The fold runs in the background, off the worker's
// turn with the enclave; Commit folds the oldest record itself once
// maxPending are waiting, so the backlog stays bounded. Readers see the
// state bucket with the pending records laid over it in order, in the same
// read transaction: a committed change is visible whether or not it was
// folded yet, and a crash at any moment leaves each record either pending
// or folded, never both or half.

var bucketPending = []byte("pending_changes")

// maxPendingChanges is the most changes a pending record holds: a larger
// batch (a provisioned state, written in one commit) is written straight
// into the state bucket after folding what is pending, in its transaction
// (its changes are dense in the tree anyway, and readers would otherwise
// hold all of them in memory until it is folded).
const maxPendingChanges = 8192

// maxPending is the backlog at which Commit folds the oldest record in its
// own transaction.
const maxPending = 32

// encodeChanges encodes changes as, for each, its 32-byte key, the value's
// length as a uvarint and the value (length 0: a deletion).
func encodeChanges(changes []protocol.Entry) []byte {
	n := 0
	for _, c := range changes {
		n += 32 + binary.MaxVarintLen64 + len(c.Value)
	}
	b := make([]byte, 0, n)
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

// putChanges writes a batch's changes: a pending record, or for more than
// maxPendingChanges everything pending folded and then the changes.
func putChanges(tx *bolt.Tx, changes []protocol.Entry) error {
	if len(changes) <= maxPendingChanges {
		return putPending(tx, changes)
	}
	if _, err := foldRecords(tx, math.MaxInt); err != nil {
		return err
	}
	st := tx.Bucket(bucketState)
	for _, c := range changes {
		if err := putOrDelete(st, c.Key[:], c.Value); err != nil {
			return err
		}
	}
	return nil
}

// putOrDelete writes a change: an empty value deletes the key.
func putOrDelete(b *bolt.Bucket, key, value []byte) error {
	if len(value) == 0 {
		return b.Delete(key)
	}
	return b.Put(key, value)
}

// pendingSeqs returns the sequence numbers of the oldest and the newest
// pending record; ok false if there is none.
func pendingSeqs(tx *bolt.Tx) (first, last uint64, ok bool, err error) {
	c := tx.Bucket(bucketPending).Cursor()
	f, _ := c.First()
	l, _ := c.Last()
	if f == nil {
		return 0, 0, false, nil
	}
	if len(f) != 8 || len(l) != 8 {
		return 0, 0, false, fmt.Errorf("%w: pending record key", ErrCorrupt)
	}
	return binary.BigEndian.Uint64(f), binary.BigEndian.Uint64(l), true, nil
}

// putPending appends a record of changes, folding the oldest first if
// maxPending are waiting.
func putPending(tx *bolt.Tx, changes []protocol.Entry) error {
	first, last, ok, err := pendingSeqs(tx)
	if err != nil {
		return err
	}
	seq := uint64(1)
	if ok {
		seq = last + 1
		if seq-first >= maxPending {
			if _, err := foldOldest(tx); err != nil {
				return err
			}
		}
	}
	return tx.Bucket(bucketPending).Put(binary.BigEndian.AppendUint64(nil, seq), encodeChanges(changes))
}

// foldChanges is the most changes one background fold transaction
// takes: it holds bbolt's only write transaction, so the next block's
// commit waits for it.
const foldChanges = 16384

// foldOldest folds the oldest pending record; false if there was none.
func foldOldest(tx *bolt.Tx) (bool, error) { return foldRecords(tx, 0) }

// foldRecords writes pending records into the state bucket, oldest first,
// and deletes them: the oldest, and after it more while their changes come
// to at most limit. A key changed by several records is written once, with
// its latest value, and the keys are written in order. Under load, records
// gather while a fold runs, so the next fold writes the leaf pages of keys
// that every block changes (a busy sender's balance and nonce) once for
// all of them. False if there was no record.
func foldRecords(tx *bolt.Tx, limit int) (bool, error) {
	p := tx.Bucket(bucketPending)
	c := p.Cursor()
	latest := map[[32]byte][]byte{}
	var done [][]byte
	for k, v := c.First(); k != nil; k, v = c.Next() {
		if len(done) > 0 && len(latest)+countChanges(v) > limit {
			break
		}
		if err := decodeChanges(v, func(key, value []byte) { latest[[32]byte(key)] = value }); err != nil {
			return false, err
		}
		done = append(done, bytes.Clone(k))
	}
	if len(done) == 0 {
		return false, nil
	}
	st := tx.Bucket(bucketState)
	for _, k := range sortedKeys(latest) {
		if err := putOrDelete(st, k[:], latest[k]); err != nil {
			return false, err
		}
	}
	for _, k := range done {
		if err := p.Delete(k); err != nil {
			return false, err
		}
	}
	return true, nil
}

// countChanges is an upper bound of the changes in an encoded record (each
// takes at least 33 bytes).
func countChanges(b []byte) int { return len(b) / 33 }

// overlay returns the pending changes, later ones replacing earlier ones
// (an empty value: deleted), and their keys in order.
func overlay(tx *bolt.Tx) (map[[32]byte][]byte, [][32]byte, error) {
	m := map[[32]byte][]byte{}
	err := tx.Bucket(bucketPending).ForEach(func(_, v []byte) error {
		return decodeChanges(v, func(key, value []byte) { m[[32]byte(key)] = value })
	})
	if err != nil {
		return nil, nil, err
	}
	return m, sortedKeys(m), nil
}

// sortedKeys returns m's keys in order.
func sortedKeys(m map[[32]byte][]byte) [][32]byte {
	return slices.SortedFunc(maps.Keys(m), func(a, b [32]byte) int { return bytes.Compare(a[:], b[:]) })
}

// fold folds pending records until there are none or stop is closed.
func (s *Store) fold(stop <-chan struct{}) error {
	for {
		select {
		case <-stop:
			return nil
		default:
		}
		var more bool
		err := s.db.Update(func(tx *bolt.Tx) error {
			var err error
			more, err = foldRecords(tx, foldChanges)
			return err
		})
		if err != nil || !more {
			return err
		}
	}
}

// foldAt is the number of pending records at which the background fold
// runs; fewer are folded once no commit came for foldIdle. A fold of
// several records writes a leaf page that all of them change once, so
// waiting for a few turns the busy accounts' many small writes into one.
const (
	foldAt   = 16
	foldIdle = 100 * time.Millisecond
)

// pendingRecords counts the pending records.
func (s *Store) pendingRecords() (int, error) {
	n := 0
	err := s.db.View(func(tx *bolt.Tx) error {
		first, last, ok, err := pendingSeqs(tx)
		if ok {
			n = int(last-first) + 1
		}
		return err
	})
	return n, err
}

// folder folds in the background until Close: once foldAt records are
// pending, or foldIdle after the last commit.
func (s *Store) folder() {
	defer close(s.folded)
	idle := time.NewTimer(foldIdle)
	idle.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-s.kick:
			n, err := s.pendingRecords()
			if err == nil && n < foldAt {
				idle.Reset(foldIdle)
				continue
			}
		case <-idle.C:
		}
		if err := s.fold(s.stop); err != nil {
			s.foldErr = err
			return
		}
	}
}
