// Package store is the worker host's persistent storage, an embedded bbolt
// database: the enclave's sealed keys, the shard's encrypted state entries
// (blinded key -> ciphertext), the enclave's sealed checkpoint with the last
// processed height and state root, the outbox of chain calls the enclave
// produced and that are not yet on chain, the signed headers of the
// shard's own blocks (direct invocation) and the sealed records of the
// enclave's Raft node (sidechain, in progress: records.go).
//
// Everything a processed block changes (entries, checkpoint, height, new
// outgoing calls) is written in ONE bbolt transaction (Commit), and bbolt
// fsyncs before a transaction counts as committed: after a crash at any
// moment the store holds either the block's whole result or none of it, so
// the worker resumes at exactly the next block, neither skipping nor
// repeating one. The state changes are written as one pending record that
// a background fold moves into the state's B+tree later (pending.go), and
// readers see both. A shard block of direct calls is committed the same way
// (CommitShardBlock), with its header; the worker acknowledges its calls
// only after that commit.
//
// Raft records (AppendRecords, or Batch.Records with a commit) form an
// append-only sequence per shard. Raft requires them on disk before the
// messages of the same step leave the host, and a bbolt commit is that
// point; Records gives them back, in order, to a restarted enclave, which
// checks their hash chain itself, and Records.KeepLast (in the same
// transaction) drops the prefix a compaction record superseded. The store never sees plaintext: entries are
// sealed by the enclave, keys sealed to its TEE.
package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterr "go.etcd.io/bbolt/errors"

	"github.com/integritee-go/integritee/chain/sidechain"
	"github.com/integritee-go/integritee/enclave/protocol"
	"github.com/integritee-go/integritee/internal/atomicfile"
)

// Errors.
var (
	// ErrLocked means another process has the database open.
	ErrLocked = errors.New("store: database locked by another process")
	// ErrWrongShard means the database belongs to another shard or chain.
	ErrWrongShard = errors.New("store: database belongs to another shard or chain")
	// ErrHeightGap means a commit is not for the block after the last one.
	ErrHeightGap = errors.New("store: commit is not for the next height")
	// ErrCorrupt means a stored record does not decode.
	ErrCorrupt = errors.New("store: corrupt record")
	// ErrShardBlockGap means a shard block is not the one after the last
	// stored, or comes before any chain block or with another height.
	ErrShardBlockGap = errors.New("store: shard block is not the next one")
)

var (
	bucketMeta   = []byte("meta")
	bucketState  = []byte("state")
	bucketOutbox = []byte("outbox")
	bucketShard  = []byte("shard_blocks")

	keyShard      = []byte("shard")
	keyChainID    = []byte("chain_id")
	keySealedKeys = []byte("sealed_keys")
	keyCheckpoint = []byte("checkpoint")
	keyOutboxSeq  = []byte("outbox_seq")
)

// Store is the worker's database. It is safe for concurrent use.
type Store struct {
	db    *bolt.DB // the main file
	state *bolt.DB // the folded state (statefile.go)
	// The background fold (pending.go): kick after a commit, stop and
	// foldDone (closed when it returned) at Close; foldMu serializes folds.
	kick     chan struct{}
	stop     chan struct{}
	foldDone chan struct{}
	foldMu   sync.Mutex
	// mu guards the fold's position and backlog; cond signals their changes.
	mu          sync.Mutex
	cond        *sync.Cond
	foldedSeq   uint64    // the last record folded into the state file
	droppedSeq  uint64    // the last record dropped from the main file
	backlog     int       // changes in records not folded yet
	lastCommit  time.Time // when the last commit returned (s.now): the idle fold
	maxBacklog  int       // maxBacklog; tests lower it
	foldRunning bool
	foldErr     error
	// betweenViews, if set (tests), runs between a view's two read
	// transactions.
	betweenViews func()
	foldTxKeys   int           // foldTxKeys; tests lower it
	gatherStep   int           // gatherStep; tests lower it
	dropFloor    int           // minDropBytes; tests change it
	foldPause    float64       // foldPause; tests set 0 (unpaced)
	foldAt       int           // foldAtChanges; tests lower it
	foldIdle     time.Duration // foldIdle; tests change it
	// foldWait waits a fold's pause (sleep; tests record the pauses).
	foldWait func(d time.Duration, stop <-chan struct{}) bool
	// now is the clock of the idle fold (time.Now; tests set it).
	now func() time.Time
	// betweenFoldTxs, if set (tests), runs between a fold's state file
	// transactions; an error ends the fold there, as a crash would.
	betweenFoldTxs func() error
	// syncDir makes the state file's name durable (atomicfile.SyncDir).
	syncDir func(dir string) error
}

// A commit drops about as many bytes of folded records as it appends in
// new ones (at least minDropBytes and one record). The pages a drop frees
// are taken again by the next commits' records, so the main file's free
// pages stay few. bbolt writes its whole freelist in every commit:
// dropped all at once after a fold of 262,144 changes (32 MB), the
// records' 8,000 freed pages took 13 s to be used again, and meanwhile
// every commit wrote a freelist of up to 71 KB (12-17 KB at most now;
// docs/performance.md, "The fold waits for real idleness"). The folded
// records wait in the file instead, where readers skip them: at most
// about what was appended since, as every commit drops at least what it
// appends. (Dropping a fold's 32 MB in one commit made it take 8-21 ms:
// "Votes in runs".)
const minDropBytes = 4 << 10

// initialMmapSize is the address space the database is mapped with from
// the start (not memory: pages are read in as used). bbolt copies every
// key and value a write transaction touched out of the map each time it
// grows the map, which made the one commit of a provisioned state of a
// million accounts take ten seconds; a map that does not grow under the
// commit avoids it.
const initialMmapSize = 1 << 30

// options are the bbolt options the store opens its database with: bbolt's
// defaults (4 KiB pages, the freelist written with every commit). Smaller
// pages, the hashmap freelist and an unsynced freelist (as etcd runs bbolt)
// were measured and did not make a block commit at a million accounts
// cheaper: its cost is the fsync of one dirtied leaf per changed entry,
// which none of them changes (docs/performance.md, "A million accounts").
func options() *bolt.Options {
	return &bolt.Options{Timeout: time.Second, InitialMmapSize: initialMmapSize}
}

// Open opens (creating if needed) the database at path, first finishing a
// Rename of it that a crash interrupted. A database held by another
// process gives ErrLocked after a second.
func Open(path string) (*Store, error) { return open(path, options()) }

func open(path string, o *bolt.Options) (*Store, error) { return openWith(path, o, atomicfile.SyncDir) }

// openWith opens the store with syncDir as the directory sync of its state
// file's creation (tests inject failures: a crash before the name was
// durable).
func openWith(path string, o *bolt.Options, syncDir func(dir string) error) (*Store, error) {
	if err := finishMove(path); err != nil {
		return nil, err
	}
	// A crash while bbolt created the main file (a new store, or the fresh
	// one after a machine-loss move) can leave it torn, and bbolt would
	// refuse it for good or panic on it. It holds nothing, so it is
	// created again.
	if neverCommitted(path) {
		if err := os.Remove(path); err != nil {
			return nil, fmt.Errorf("remove the unfinished %s: %w", path, err)
		}
	}
	if err := checkLength(path); err != nil {
		return nil, err
	}
	db, err := bolt.Open(path, 0o600, o)
	if errors.Is(err, bolterr.ErrTimeout) {
		return nil, fmt.Errorf("open %s: %w", path, ErrLocked)
	}
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketMeta, bucketOutbox, bucketShard, bucketRecords, bucketPending} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	s := &Store{db: db, kick: make(chan struct{}, 1), stop: make(chan struct{}), foldDone: make(chan struct{}), foldRunning: true, maxBacklog: maxBacklog, foldTxKeys: foldTxKeys, gatherStep: gatherStep, dropFloor: minDropBytes, foldPause: foldPause, foldAt: foldAtChanges, foldIdle: foldIdle, foldWait: sleep, now: time.Now, syncDir: syncDir}
	s.cond = sync.NewCond(&s.mu)
	if err := s.openState(path, o); err != nil {
		if s.state != nil {
			s.state.Close()
		}
		db.Close()
		return nil, err
	}
	// The records a restart finds are folded once commits resume (the
	// first kicks the fold), not beside the restart's read of the whole
	// state: a fold of up to foldAtChanges takes a second of the two
	// cores' time.
	go s.folder()
	return s, nil
}

// kickFold wakes the background fold.
func (s *Store) kickFold() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// Close stops the background fold (pending changes stay committed and are
// folded after the next Open, once commits resume) and closes the
// database's files.
func (s *Store) Close() error {
	select {
	case <-s.stop:
	default:
		close(s.stop)
	}
	<-s.foldDone
	err := errors.Join(s.db.Close(), s.state.Close())
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.foldErr != nil {
		return errors.Join(fmt.Errorf("fold pending changes: %w", s.foldErr), err)
	}
	return err
}

// update runs a commit's write transaction fn, which adds changes state
// changes in pending records of size bytes (changesSize): it waits while
// the fold is maxBacklog changes behind, drops folded records in the same
// transaction (about as many bytes as fn appended, see minDropBytes), and
// wakes the fold.
func (s *Store) update(changes, size int, fn func(*bolt.Tx) error) error {
	s.mu.Lock()
	for changes > 0 && s.backlog >= s.maxBacklog && s.foldRunning {
		s.kickFold() // no commit may have kicked it since an Open
		s.cond.Wait()
	}
	if changes > 0 && s.backlog >= s.maxBacklog && s.foldErr != nil {
		err := s.foldErr
		s.mu.Unlock()
		return fmt.Errorf("fold pending changes: %w", err)
	}
	drop := s.foldedSeq
	dropping := drop > s.droppedSeq
	s.mu.Unlock()
	var through uint64
	err := s.db.Update(func(tx *bolt.Tx) error {
		if err := fn(tx); err != nil {
			return err
		}
		if dropping {
			var err error
			through, err = dropFolded(tx, drop, max(size, s.dropFloor))
			return err
		}
		return nil
	})
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.droppedSeq = max(s.droppedSeq, through)
	s.backlog += changes
	s.lastCommit = s.now()
	s.mu.Unlock()
	s.kickFold()
	return nil
}

// view runs fn with read transactions of the main file and of the state
// file (folded is the last record the latter folded). The main file's is
// taken first: every record the state file's has not folded is still in
// it, since a commit drops only records the state file had folded by then.
// The state file's must not have folded a record newer than the main
// file's view, nor hold part of a fold of one (folding_seq), which a fold
// committed in between could do; then both are taken again. Neither is held while waiting for the other's writer, so
// the fold (which holds a main file read transaction while it writes the
// state file) cannot deadlock with a reader.
func (s *Store) view(fn func(stx, mtx *bolt.Tx, folded uint64) error) error {
	for range 1000 {
		mtx, err := s.db.Begin(false)
		if err != nil {
			return err
		}
		if s.betweenViews != nil {
			s.betweenViews()
		}
		stx, err := s.state.Begin(false)
		if err != nil {
			mtx.Rollback()
			return err
		}
		sm := stx.Bucket(bucketMeta)
		folded := readUint(sm.Get(keyFoldedSeq))
		// The state file may hold changes up to the fold in progress
		// (foldTxKeys): they must be in this view of the main file.
		if max(folded, readUint(sm.Get(keyFoldingSeq))) < readUint(mtx.Bucket(bucketMeta).Get(keyPendingNext)) {
			err = fn(stx, mtx, folded)
			stx.Rollback()
			mtx.Rollback()
			return err
		}
		stx.Rollback()
		mtx.Rollback()
	}
	return errors.New("store: no consistent view of the state file and the main file")
}

// Bind ties the database to a shard and chain on first use and checks them
// afterwards, so that state of one shard is never fed to another's enclave.
func (s *Store) Bind(shard [32]byte, chainID string) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		m := tx.Bucket(bucketMeta)
		got, gotChain := m.Get(keyShard), m.Get(keyChainID)
		if got == nil {
			if err := m.Put(keyShard, shard[:]); err != nil {
				return err
			}
			return m.Put(keyChainID, []byte(chainID))
		}
		if !bytes.Equal(got, shard[:]) || string(gotChain) != chainID {
			return fmt.Errorf("%w: stored shard %x on %q, want %x on %q", ErrWrongShard, got, gotChain, shard, chainID)
		}
		return nil
	})
}

// SealedKeys returns the enclave's sealed keys, nil before the first start.
func (s *Store) SealedKeys() (*protocol.SealedKeys, error) {
	var k *protocol.SealedKeys
	err := s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketMeta).Get(keySealedKeys)
		if b == nil {
			return nil
		}
		k = new(protocol.SealedKeys)
		if err := protocol.Unmarshal(b, k); err != nil {
			return fmt.Errorf("%w: sealed keys: %w", ErrCorrupt, err)
		}
		return nil
	})
	return k, err
}

// SaveSealedKeys stores the enclave's sealed keys durably.
func (s *Store) SaveSealedKeys(k protocol.SealedKeys) error {
	b, err := protocol.Marshal(k)
	if err != nil {
		return fmt.Errorf("encode sealed keys: %w", err)
	}
	return s.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketMeta).Put(keySealedKeys, b) })
}

// Checkpoint is the enclave's sealed bookkeeping after the last processed
// block, with its public height and state root.
type Checkpoint struct {
	Height    int64    `cbor:"height"`
	StateRoot [32]byte `cbor:"state_root"`
	Sealed    []byte   `cbor:"sealed"`
}

// Checkpoint returns the last committed checkpoint; ok is false before the
// first block.
func (s *Store) Checkpoint() (cp Checkpoint, ok bool, err error) {
	err = s.db.View(func(tx *bolt.Tx) error {
		cp, ok, err = checkpoint(tx)
		return err
	})
	return cp, ok, err
}

func checkpoint(tx *bolt.Tx) (Checkpoint, bool, error) {
	var cp Checkpoint
	b := tx.Bucket(bucketMeta).Get(keyCheckpoint)
	if b == nil {
		return cp, false, nil
	}
	if err := protocol.Unmarshal(b, &cp); err != nil {
		return cp, false, fmt.Errorf("%w: checkpoint: %w", ErrCorrupt, err)
	}
	return cp, true, nil
}

// Batch is the result of one processed block.
type Batch struct {
	Checkpoint Checkpoint
	// Changes are written; an empty Value deletes the entry.
	Changes []protocol.Entry
	// Outgoing are appended to the outbox.
	Outgoing []protocol.Outgoing
	// Block is the shard block of a chain block's shard calls, if it had
	// any (Commit stores it with the rest).
	Block *sidechain.SignedHeader
	// Records, if any, are appended to their shard's Raft records in the
	// same transaction (see AppendRecords).
	Records Records
}

// Commit writes a block's result atomically. Its height must follow the
// last committed checkpoint's (any height for the first).
func (s *Store) Commit(b Batch) error {
	enc, err := encodeBatch(b)
	if err != nil {
		return err
	}
	return s.update(len(b.Changes), changesSize(b.Changes), func(tx *bolt.Tx) error {
		prev, ok, err := checkpoint(tx)
		if err != nil {
			return err
		}
		if ok && b.Checkpoint.Height != prev.Height+1 {
			return fmt.Errorf("%w: height %d after %d", ErrHeightGap, b.Checkpoint.Height, prev.Height)
		}
		if b.Block != nil {
			if err := putShardBlock(tx, *b.Block); err != nil {
				return err
			}
		}
		return enc.write(tx)
	})
}

// putShardBlock stores a shard block whose number follows the last stored
// one's (any number for the first: a provisioned enclave continues the
// shard's blocks where its provider was).
func putShardBlock(tx *bolt.Tx, block sidechain.SignedHeader) error {
	hdr, err := protocol.Marshal(block)
	if err != nil {
		return fmt.Errorf("encode shard block: %w", err)
	}
	n := block.Header.Number
	last, err := lastShardNumber(tx)
	if err != nil {
		return err
	}
	if last != 0 && n != last+1 {
		return fmt.Errorf("%w: shard block %d after %d", ErrShardBlockGap, n, last)
	}
	return tx.Bucket(bucketShard).Put(binary.BigEndian.AppendUint64(nil, n), hdr)
}

// CommitShardBlock writes the result of a direct shard block
// atomically with its signed header: the state changes, the checkpoint
// (whose height stays that of the last chain block: the enclave executed
// the calls on top of it) and the outgoing calls (its confirmation and
// unshields). The block's number must follow the last stored shard block's
// (any number for the first: a provisioned enclave continues the shard's
// blocks where its provider was), and a chain block must have been
// committed before.
func (s *Store) CommitShardBlock(b Batch, block sidechain.SignedHeader) error {
	enc, err := encodeBatch(b)
	if err != nil {
		return err
	}
	n := block.Header.Number
	return s.update(len(b.Changes), changesSize(b.Changes), func(tx *bolt.Tx) error {
		prev, ok, err := checkpoint(tx)
		if err != nil {
			return err
		}
		if !ok || b.Checkpoint.Height != prev.Height {
			return fmt.Errorf("%w: shard block %d at height %d, last chain block %d (stored: %v)", ErrShardBlockGap, n, b.Checkpoint.Height, prev.Height, ok)
		}
		if err := putShardBlock(tx, block); err != nil {
			return err
		}
		return enc.write(tx)
	})
}

func lastShardNumber(tx *bolt.Tx) (uint64, error) {
	k, _ := tx.Bucket(bucketShard).Cursor().Last()
	if k == nil {
		return 0, nil
	}
	if len(k) != 8 {
		return 0, fmt.Errorf("%w: shard block key of %d bytes", ErrCorrupt, len(k))
	}
	return binary.BigEndian.Uint64(k), nil
}

// LastShardBlock returns the last stored shard block; ok is false before
// the first.
func (s *Store) LastShardBlock() (h sidechain.SignedHeader, ok bool, err error) {
	err = s.db.View(func(tx *bolt.Tx) error {
		n, err := lastShardNumber(tx)
		if err != nil || n == 0 {
			return err
		}
		h, ok, err = shardBlock(tx, n)
		return err
	})
	return h, ok, err
}

// ShardBlock returns the stored shard block number n; ok is false if there
// is none.
func (s *Store) ShardBlock(n uint64) (h sidechain.SignedHeader, ok bool, err error) {
	err = s.db.View(func(tx *bolt.Tx) error {
		h, ok, err = shardBlock(tx, n)
		return err
	})
	return h, ok, err
}

func shardBlock(tx *bolt.Tx, n uint64) (sidechain.SignedHeader, bool, error) {
	var h sidechain.SignedHeader
	v := tx.Bucket(bucketShard).Get(binary.BigEndian.AppendUint64(nil, n))
	if v == nil {
		return h, false, nil
	}
	if err := protocol.Unmarshal(v, &h); err != nil {
		return h, false, fmt.Errorf("%w: shard block %d: %w", ErrCorrupt, n, err)
	}
	if h.Header.Number != n {
		return h, false, fmt.Errorf("%w: shard block %d holds number %d", ErrCorrupt, n, h.Header.Number)
	}
	return h, true, nil
}

// encodedBatch is a Batch encoded outside the write transaction.
type encodedBatch struct {
	b          Batch
	checkpoint []byte
	outgoing   [][]byte
}

func encodeBatch(b Batch) (*encodedBatch, error) {
	cpb, err := protocol.Marshal(b.Checkpoint)
	if err != nil {
		return nil, fmt.Errorf("encode checkpoint: %w", err)
	}
	out := make([][]byte, len(b.Outgoing))
	for i, o := range b.Outgoing {
		if out[i], err = protocol.Marshal(o); err != nil {
			return nil, fmt.Errorf("encode outgoing call: %w", err)
		}
	}
	if err := checkRecords(b.Records.Data); err != nil {
		return nil, err
	}
	return &encodedBatch{b: b, checkpoint: cpb, outgoing: out}, nil
}

// write writes the batch's changes, checkpoint and outgoing calls in tx.
func (e *encodedBatch) write(tx *bolt.Tx) error {
	if len(e.b.Changes) > 0 {
		if err := putChanges(tx, e.b.Changes); err != nil {
			return err
		}
	}
	if len(e.b.Records.Data) > 0 {
		if err := putRecords(tx, e.b.Records); err != nil {
			return err
		}
	}
	m := tx.Bucket(bucketMeta)
	if err := m.Put(keyCheckpoint, e.checkpoint); err != nil {
		return err
	}
	if len(e.outgoing) == 0 {
		return nil
	}
	seq := readUint(m.Get(keyOutboxSeq))
	ob := tx.Bucket(bucketOutbox)
	for _, o := range e.outgoing {
		seq++
		if err := ob.Put(binary.BigEndian.AppendUint64(nil, seq), o); err != nil {
			return err
		}
	}
	return m.Put(keyOutboxSeq, binary.BigEndian.AppendUint64(nil, seq))
}

func readUint(b []byte) uint64 {
	if len(b) != 8 {
		return 0
	}
	return binary.BigEndian.Uint64(b)
}

// Entries calls fn for every state entry in key order: the state file
// with the unfolded changes laid over it, from one view of both files.
// The entry's value may be kept: it is a copy. fn must not call the Store:
// it runs inside read transactions of both files, and a commit that has to
// grow a file's map waits for them to end, so a commit from fn (or one fn
// waits for) never returns.
func (s *Store) Entries(fn func(protocol.Entry) error) error {
	return s.view(func(stx, mtx *bolt.Tx, folded uint64) error { return entries(stx, mtx, folded, fn) })
}

// Snapshot returns the checkpoint and calls fn for every state entry of
// the same commit (one view of both files; see Entries, whose rule for fn
// applies); ok is false, and fn is not called, before the first block.
func (s *Store) Snapshot(fn func(protocol.Entry) error) (cp Checkpoint, ok bool, err error) {
	err = s.view(func(stx, mtx *bolt.Tx, folded uint64) error {
		cp, ok, err = checkpoint(mtx)
		if err != nil || !ok {
			return err
		}
		return entries(stx, mtx, folded, fn)
	})
	return cp, ok, err
}

func entries(stx, mtx *bolt.Tx, folded uint64, fn func(protocol.Entry) error) error {
	over, keys, err := overlay(mtx, folded)
	if err != nil {
		return err
	}
	emit := func(k, v []byte) error {
		if len(v) == 0 {
			return nil // deleted by a pending change
		}
		e := protocol.Entry{Value: bytes.Clone(v)}
		copy(e.Key[:], k)
		return fn(e)
	}
	c := stx.Bucket(bucketState).Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		if len(k) != 32 {
			return fmt.Errorf("%w: state key of %d bytes", ErrCorrupt, len(k))
		}
		for len(keys) > 0 && bytes.Compare(keys[0][:], k) < 0 {
			if err := emit(keys[0][:], over[keys[0]]); err != nil {
				return err
			}
			keys = keys[1:]
		}
		if len(keys) > 0 && bytes.Equal(keys[0][:], k) {
			v = over[keys[0]]
			keys = keys[1:]
		}
		if err := emit(k, v); err != nil {
			return err
		}
	}
	for _, k := range keys {
		if err := emit(k[:], over[k]); err != nil {
			return err
		}
	}
	return nil
}

// EntryCount returns the number of state entries.
func (s *Store) EntryCount() (int, error) {
	var n int
	err := s.view(func(stx, mtx *bolt.Tx, folded uint64) error {
		over, _, err := overlay(mtx, folded)
		if err != nil {
			return err
		}
		st := stx.Bucket(bucketState)
		n = st.Stats().KeyN
		for k, v := range over {
			switch had := st.Get(k[:]) != nil; {
			case had && len(v) == 0:
				n--
			case !had && len(v) > 0:
				n++
			}
		}
		return nil
	})
	return n, err
}

// Pending is an outgoing call waiting in the outbox.
type Pending struct {
	Seq  uint64
	Call protocol.Outgoing
}

// Outbox returns up to limit pending calls, oldest first.
func (s *Store) Outbox(limit int) ([]Pending, error) {
	var out []Pending
	err := s.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketOutbox).Cursor()
		for k, v := c.First(); k != nil && len(out) < limit; k, v = c.Next() {
			p := Pending{Seq: readUint(k)}
			if err := protocol.Unmarshal(v, &p.Call); err != nil {
				return fmt.Errorf("%w: outbox entry %d: %w", ErrCorrupt, p.Seq, err)
			}
			out = append(out, p)
		}
		return nil
	})
	return out, err
}

// OutboxLen returns the number of pending calls.
func (s *Store) OutboxLen() (int, error) {
	var n int
	err := s.db.View(func(tx *bolt.Tx) error {
		n = tx.Bucket(bucketOutbox).Stats().KeyN
		return nil
	})
	return n, err
}

// Done removes calls from the outbox.
func (s *Store) Done(seqs ...uint64) error {
	if len(seqs) == 0 {
		return nil
	}
	return s.db.Update(func(tx *bolt.Tx) error {
		ob := tx.Bucket(bucketOutbox)
		for _, q := range seqs {
			if err := ob.Delete(binary.BigEndian.AppendUint64(nil, q)); err != nil {
				return err
			}
		}
		return nil
	})
}
