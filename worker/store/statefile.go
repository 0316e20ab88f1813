package store

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	bolt "go.etcd.io/bbolt"
	bolterr "go.etcd.io/bbolt/errors"
)

// The folded state lives in a second bbolt file beside the main one
// (StatePath): its state bucket and the sequence number of the last
// pending record folded into it. A fold writes and fsyncs there, so it
// never holds the main file's only write transaction: block commits go on
// beside it (docs/performance.md, "Where the million-account gap is").
// The main file keeps the pending records, the checkpoint, the outbox and
// the Raft records, each block's in one transaction as before, and drops
// the records the state file has folded in a later commit. Both files
// carry the same random store id, written when the store is created, and
// the main file the highest record it dropped: a state file of another
// store, a missing one, one older than the records the main file dropped
// or one ahead of every record the main file ever wrote is refused at Open
// with ErrStateFile, never read as the state.

// ErrStateFile means the state file is missing or does not belong with
// the main file (another store's, or a copy older or newer than it).
var ErrStateFile = errors.New("store: state file does not match the main file")

var (
	keyStoreID     = []byte("store_id")
	keyPendingNext = []byte("pending_next")
	keyDroppedSeq  = []byte("dropped_seq")
	keyFoldedSeq   = []byte("folded_seq")
	// keyFoldingSeq is the last record of a fold whose transactions are
	// not all committed yet (see foldTxKeys): the state file may hold
	// changes of records up to it.
	keyFoldingSeq = []byte("folding_seq")
)

// StatePath is the path of the state file that belongs to the main file
// at path: "state-" before its name, in the same directory (so a glob of
// the main file's name and a suffix never matches it).
func StatePath(path string) string {
	return filepath.Join(filepath.Dir(path), "state-"+filepath.Base(path))
}

// openState opens the state file and reconciles it with the main file
// (s.db open): creating it for a new store, moving a state bucket of the
// main file (stores written before the state file existed) into it, or
// checking it and dropping the records a crash left folded but not
// dropped. It sets the fold's position and backlog.
func (s *Store) openState(path string, o *bolt.Options) error {
	sp := StatePath(path)
	var mainID []byte
	if err := s.db.View(func(tx *bolt.Tx) error {
		mainID = bytes.Clone(tx.Bucket(bucketMeta).Get(keyStoreID))
		return nil
	}); err != nil {
		return err
	}
	if _, err := os.Stat(sp); err != nil && mainID != nil {
		return fmt.Errorf("%w: %s is missing (%v)", ErrStateFile, sp, err)
	}
	// Without an id in the main file no state was ever committed with it,
	// and a state file that never had a commit either (a crash while bbolt
	// created it can leave it short or torn, and bbolt would refuse it for
	// good) holds nothing: it is created again.
	if mainID == nil && neverCommitted(sp) {
		if err := os.Remove(sp); err != nil {
			return fmt.Errorf("remove the unfinished %s: %w", sp, err)
		}
	}
	if err := checkLength(sp); err != nil {
		return err
	}
	st, err := bolt.Open(sp, 0o600, o)
	if errors.Is(err, bolterr.ErrTimeout) {
		return fmt.Errorf("open %s: %w", sp, ErrLocked)
	}
	if err != nil {
		return fmt.Errorf("open %s: %w", sp, err)
	}
	s.state = st
	err = st.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketMeta, bucketState} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("open %s: %w", sp, err)
	}
	if mainID == nil {
		if err := s.initState(filepath.Dir(path)); err != nil {
			return fmt.Errorf("create %s: %w", sp, err)
		}
	}
	if err := s.checkState(); err != nil {
		return fmt.Errorf("%s: %w", sp, err)
	}
	return nil
}

// initState ties a new state file to a main file without a store id: a
// new store, or one written before the state file existed, whose state
// bucket it copies over (the state file's content of an interrupted
// earlier attempt is replaced). The state file gets a new id first; the
// main file's commit (id, legacy bucket gone) completes it. A state file
// that already holds folded state of another store is refused; an empty
// one (a creation interrupted before the main file's commit) gets the new
// id, so no two stores ever share one.
func (s *Store) initState(dir string) error {
	var legacy bool
	var pendingNext uint64 = 1
	if err := s.db.View(func(tx *bolt.Tx) error {
		legacy = tx.Bucket(bucketState) != nil
		_, last, ok, err := pendingSeqs(tx, 0)
		if ok {
			pendingNext = last + 1
		}
		return err
	}); err != nil {
		return err
	}
	id := make([]byte, 16)
	if err := s.state.Update(func(stx *bolt.Tx) error {
		m := stx.Bucket(bucketMeta)
		if old := m.Get(keyStoreID); old != nil && !legacy {
			k, _ := stx.Bucket(bucketState).Cursor().First()
			if k != nil || readUint(m.Get(keyFoldedSeq)) != 0 {
				return fmt.Errorf("%w: it holds the state of store %x, the main file is new", ErrStateFile, old)
			}
		}
		rand.Read(id)
		if err := stx.DeleteBucket(bucketState); err != nil {
			return err
		}
		sb, err := stx.CreateBucket(bucketState)
		if err != nil {
			return err
		}
		if legacy {
			if err := s.db.View(func(mtx *bolt.Tx) error {
				return mtx.Bucket(bucketState).ForEach(func(k, v []byte) error { return sb.Put(k, v) })
			}); err != nil {
				return fmt.Errorf("move the state bucket: %w", err)
			}
		}
		if err := m.Put(keyFoldedSeq, binary.BigEndian.AppendUint64(nil, 0)); err != nil {
			return err
		}
		return m.Put(keyStoreID, id)
	}); err != nil {
		return err
	}
	// The state file's name must be durable before the main file says the
	// store has one: after a power loss the main file's id with no state
	// file beside it would be refused for good.
	if err := s.syncDir(dir); err != nil {
		return err
	}
	return s.db.Update(func(tx *bolt.Tx) error {
		if legacy {
			if err := tx.DeleteBucket(bucketState); err != nil {
				return err
			}
		}
		m := tx.Bucket(bucketMeta)
		if err := m.Put(keyPendingNext, binary.BigEndian.AppendUint64(nil, pendingNext)); err != nil {
			return err
		}
		if err := m.Put(keyDroppedSeq, binary.BigEndian.AppendUint64(nil, 0)); err != nil {
			return err
		}
		return m.Put(keyStoreID, id)
	})
}

// checkState checks that the state file belongs with the main file, drops
// the records it folded that a crash left in the main file, and sets the
// fold's position and backlog.
func (s *Store) checkState() error {
	var stateID []byte
	var folded, folding uint64
	if err := s.state.View(func(tx *bolt.Tx) error {
		m := tx.Bucket(bucketMeta)
		stateID = bytes.Clone(m.Get(keyStoreID))
		folded = readUint(m.Get(keyFoldedSeq))
		folding = max(folded, readUint(m.Get(keyFoldingSeq)))
		return nil
	}); err != nil {
		return err
	}
	var backlog int
	err := s.db.Update(func(tx *bolt.Tx) error {
		m := tx.Bucket(bucketMeta)
		if id := m.Get(keyStoreID); !bytes.Equal(id, stateID) {
			return fmt.Errorf("%w: it belongs to store %x, the main file to %x", ErrStateFile, stateID, id)
		}
		if len(m.Get(keyPendingNext)) != 8 || len(m.Get(keyDroppedSeq)) != 8 {
			return fmt.Errorf("%w: the main file has a store id but no record positions", ErrCorrupt)
		}
		next, dropped := readUint(m.Get(keyPendingNext)), readUint(m.Get(keyDroppedSeq))
		if folding >= next {
			return fmt.Errorf("%w: it folded record %d, the main file has written records up to %d only (an older main file?)", ErrStateFile, folding, next-1)
		}
		if folded < dropped {
			return fmt.Errorf("%w: it folded records up to %d, the main file dropped up to %d (an older state file?)", ErrStateFile, folded, dropped)
		}
		if _, err := dropFolded(tx, folded, 0); err != nil {
			return err
		}
		return tx.Bucket(bucketPending).ForEach(func(_, v []byte) error {
			n, err := changeCount(v)
			backlog += n
			return err
		})
	})
	if err != nil {
		return err
	}
	s.foldedSeq, s.droppedSeq, s.backlog = folded, folded, backlog
	return nil
}

// dropFolded deletes the pending records up to seq (folded into the state
// file), if limit is positive only as many as come to at most limit bytes
// (at least one), and records and returns the sequence number they are
// dropped through.
func dropFolded(tx *bolt.Tx, seq uint64, limit int) (uint64, error) {
	m := tx.Bucket(bucketMeta)
	if dropped := readUint(m.Get(keyDroppedSeq)); dropped >= seq {
		return dropped, nil
	}
	// The keys are gathered first and deleted after: a cursor's First
	// after each delete stepped again over every leaf already emptied in
	// this transaction (bbolt removes them at the commit), a cost that grew
	// with the square of the records dropped.
	through, size := seq, 0
	var drop []uint64
	b := tx.Bucket(bucketPending)
	c := b.Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		if len(k) != 8 {
			return 0, fmt.Errorf("%w: pending record key of %d bytes", ErrCorrupt, len(k))
		}
		if binary.BigEndian.Uint64(k) > seq {
			break
		}
		if size += len(v); limit > 0 && len(drop) > 0 && size > limit {
			// Records are dropped in order: those before this one are.
			through = binary.BigEndian.Uint64(k) - 1
			break
		}
		drop = append(drop, binary.BigEndian.Uint64(k))
	}
	var key [8]byte
	for _, n := range drop {
		if err := b.Delete(binary.BigEndian.AppendUint64(key[:0], n)); err != nil {
			return 0, err
		}
	}
	return through, m.Put(keyDroppedSeq, binary.BigEndian.AppendUint64(nil, through))
}
