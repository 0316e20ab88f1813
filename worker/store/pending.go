package store

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"slices"

	bolt "go.etcd.io/bbolt"

	"github.com/integritee-go/integritee/enclave/protocol"
)

// A block's state changes are committed as one record of the pending
// bucket (key: 8-byte sequence number), in the block's transaction, and
// folded into the state bucket afterwards, oldest first, each record's
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
	for {
		more, err := foldOldest(tx)
		if err != nil {
			return err
		}
		if !more {
			break
		}
	}
	st := tx.Bucket(bucketState)
	for _, c := range changes {
		var err error
		if len(c.Value) == 0 {
			err = st.Delete(c.Key[:])
		} else {
			err = st.Put(c.Key[:], c.Value)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// putPending appends a record of changes, folding the oldest first if
// maxPending are waiting.
func putPending(tx *bolt.Tx, changes []protocol.Entry) error {
	p := tx.Bucket(bucketPending)
	c := p.Cursor()
	first, _ := c.First()
	last, _ := c.Last()
	seq := uint64(1)
	if last != nil {
		if len(first) != 8 || len(last) != 8 {
			return fmt.Errorf("%w: pending record key", ErrCorrupt)
		}
		seq = binary.BigEndian.Uint64(last) + 1
		if seq-binary.BigEndian.Uint64(first) >= maxPending {
			if _, err := foldOldest(tx); err != nil {
				return err
			}
		}
	}
	return p.Put(binary.BigEndian.AppendUint64(nil, seq), encodeChanges(changes))
}

// foldOldest writes the oldest pending record into the state bucket and
// deletes it; false if there was none.
func foldOldest(tx *bolt.Tx) (bool, error) {
	p := tx.Bucket(bucketPending)
	k, v := p.Cursor().First()
	if k == nil {
		return false, nil
	}
	st := tx.Bucket(bucketState)
	var err error
	derr := decodeChanges(v, func(key, value []byte) {
		if err != nil {
			return
		}
		if len(value) == 0 {
			err = st.Delete(key)
		} else {
			err = st.Put(key, value)
		}
	})
	if derr != nil {
		return false, derr
	}
	if err != nil {
		return false, err
	}
	return true, p.Delete(k)
}

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
	keys := make([][32]byte, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b [32]byte) int { return bytes.Compare(a[:], b[:]) })
	return m, keys, nil
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
			more, err = foldOldest(tx)
			return err
		})
		if err != nil || !more {
			return err
		}
	}
}

// folder folds in the background after each commit until Close.
func (s *Store) folder() {
	defer close(s.folded)
	for {
		select {
		case <-s.stop:
			return
		case <-s.kick:
			if err := s.fold(s.stop); err != nil {
				s.foldErr = err
				return
			}
		}
	}
}
