package state

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"runtime"
	"slices"
	"sync"
)

// Bounds of keys and values.
const (
	MaxKeySize   = 1 << 10
	MaxValueSize = 64 << 10
	nonceSize    = 12
	tagSize      = 16
)

// Errors.
var (
	// ErrTooLarge means a key or value above the bounds.
	ErrTooLarge = errors.New("state: key or value too large")
	// ErrCorruptEntry means a loaded entry does not decrypt under the state
	// key with its blinded key: tampered, or from another shard.
	ErrCorruptEntry = errors.New("state: entry does not decrypt")
	// ErrDuplicateEntry means a loaded entry's key was loaded before.
	ErrDuplicateEntry = errors.New("state: duplicate entry")
	// ErrCommitted means a batch was used after it was committed or written.
	ErrCommitted = errors.New("state: batch already committed")
)

// Key is a blinded key.
type Key = [32]byte

// Entry is an encrypted entry; in a ChangeSet an empty Value deletes it.
type Entry struct {
	Key   Key
	Value []byte
}

// ChangeSet is what a commit changed: the encrypted entries to write or
// delete, sorted by key, and the new root.
type ChangeSet struct {
	Height  int64
	Entries []Entry
	Root    [32]byte
}

// KV is the state access the STF gets.
type KV interface {
	// Get returns the value of key and whether it exists.
	Get(key []byte) ([]byte, bool, error)
	Set(key, value []byte) error
	Delete(key []byte) error
}

// State is the committed state of a shard. It is not safe for concurrent
// use.
type State struct {
	blind, nonce *macs
	aead         cipher.AEAD
	tree         tree // the entries' plaintext values live in its leaves
}

// New returns an empty state under stateKey (keys.StateKeySize bytes).
func New(stateKey []byte) (*State, error) {
	if len(stateKey) != 32 {
		return nil, fmt.Errorf("state: state key of %d bytes, want 32", len(stateKey))
	}
	derive := func(info string) ([]byte, error) {
		return hkdf.Key(sha256.New, stateKey, nil, "integritee/state/v1/"+info, 32)
	}
	blind, err := derive("blind")
	if err != nil {
		return nil, fmt.Errorf("state: %w", err)
	}
	nonce, err := derive("nonce")
	if err != nil {
		return nil, fmt.Errorf("state: %w", err)
	}
	enc, err := derive("encrypt")
	if err != nil {
		return nil, fmt.Errorf("state: %w", err)
	}
	blk, err := aes.NewCipher(enc)
	if err != nil {
		return nil, fmt.Errorf("state: %w", err)
	}
	g, err := cipher.NewGCM(blk)
	if err != nil {
		return nil, fmt.Errorf("state: %w", err)
	}
	return &State{blind: newMACs(blind), nonce: newMACs(nonce), aead: g}, nil
}

// macs hands out HMAC-SHA256 instances of one key, reset for reuse:
// hmac.New for each blinded key or nonce hashed the key's two pads again
// and allocated five times, about a third of a state access's hashing.
// Safe for concurrent use.
type macs struct{ pool sync.Pool }

func newMACs(key []byte) *macs {
	m := &macs{}
	m.pool.New = func() any { return hmac.New(sha256.New, key) }
	return m
}

// sum returns the MAC of the concatenated parts.
func (m *macs) sum(parts ...[]byte) [32]byte {
	h := m.pool.Get().(hash.Hash)
	h.Reset() // restores the keyed state saved at the first Reset
	for _, p := range parts {
		h.Write(p)
	}
	var out [32]byte
	h.Sum(out[:0])
	m.pool.Put(h)
	return out
}

// Blind returns the blinded key of a plaintext key.
func (s *State) Blind(key []byte) Key {
	return s.blind.sum(key)
}

// Root returns the state hash.
func (s *State) Root() [32]byte { return s.tree.rootHash() }

// Len returns the number of entries.
func (s *State) Len() int { return s.tree.n }

// Get reads committed state.
func (s *State) Get(key []byte) ([]byte, bool) {
	v, ok := s.committed(s.Blind(key))
	return bytes.Clone(v), ok
}

// committed returns the committed value of k, aliasing the tree.
func (s *State) committed(k Key) ([]byte, bool) {
	i, ok := s.tree.get(&k)
	if !ok {
		return nil, false
	}
	return s.tree.value(i), true
}

func (s *State) encrypt(k Key, height int64, v []byte) []byte {
	var h [8]byte
	binary.BigEndian.PutUint64(h[:], uint64(height))
	mac := s.nonce.sum(k[:], h[:], v)
	out := make([]byte, nonceSize, nonceSize+len(v)+tagSize)
	copy(out, mac[:nonceSize])
	return s.aead.Seal(out, out[:nonceSize], v, k[:])
}

func (s *State) decrypt(k Key, ct []byte) ([]byte, error) {
	if len(ct) < nonceSize+tagSize || len(ct) > nonceSize+MaxValueSize+tagSize {
		return nil, fmt.Errorf("%w: %x: %d bytes", ErrCorruptEntry, k[:8], len(ct))
	}
	v, err := s.aead.Open(nil, ct[:nonceSize], ct[nonceSize:], k[:])
	if err != nil {
		return nil, fmt.Errorf("%w: %x", ErrCorruptEntry, k[:8])
	}
	return v, nil
}

// Reserve sizes the state for n entries before a Load, so that a large
// state is built without growing (and copying) its tree. n comes
// from the enclave's own sealed checkpoint; it is only a size hint.
func (s *State) Reserve(n int) {
	s.tree.reserve(n)
}

// Load adds persisted entries to the state (after a restart). Each must
// decrypt under its blinded key and appear once. The caller compares Root
// with the root it expects (the checkpoint's) when all are loaded.
//
// The entries are decrypted and hashed on all cores, then inserted in
// order; the error is the first entry's that fails.
func (s *State) Load(entries []Entry) error {
	type opened struct {
		v     []byte
		vhash [32]byte
		err   error
	}
	out := make([]opened, len(entries))
	parallel(len(entries), func(i int) {
		e := &entries[i]
		v, err := s.decrypt(e.Key, e.Value)
		out[i] = opened{v: v, vhash: sha256.Sum256(e.Value), err: err}
	})
	for i, e := range entries {
		if out[i].err != nil {
			return out[i].err
		}
		if !s.tree.set(e.Key, out[i].vhash, out[i].v) {
			return fmt.Errorf("%w: %x", ErrDuplicateEntry, e.Key[:8])
		}
	}
	return nil
}

// parallel runs fn(0..n-1) split over the available cores.
func parallel(n int, fn func(i int)) {
	procs := runtime.GOMAXPROCS(0)
	if procs < 2 || n < 256 {
		for i := range n {
			fn(i)
		}
		return
	}
	var wg sync.WaitGroup
	per := (n + procs - 1) / procs
	for lo := 0; lo < n; lo += per {
		hi := min(lo+per, n)
		wg.Go(func() {
			for i := lo; i < hi; i++ {
				fn(i)
			}
		})
	}
	wg.Wait()
}

// RootOf computes the state hash of a full set of encrypted entries, as
// the host persists them, without any key.
func RootOf(entries []Entry) [32]byte {
	var t tree
	t.reserve(len(entries))
	for _, e := range entries {
		t.set(e.Key, sha256.Sum256(e.Value), nil)
	}
	return t.rootHash()
}

// write is a pending change of a batch.
type write struct {
	value   []byte
	deleted bool
}

// Batch is a set of uncommitted changes on the state or on a parent batch.
// A block's changes are one batch; each trusted call runs in a child batch
// that is written to the block's batch only if the call succeeds.
type Batch struct {
	s      *State
	parent *Batch
	writes map[Key]write
	done   bool
	// blinded are the last keys this batch blinded, a ring: a call reads
	// the keys it then writes (a transfer: both balances and the
	// sender's nonce), and each blinded key is an HMAC. A cache across
	// batches kept every key a block touched and, at a million accounts
	// touched at random, cost more than it saved.
	blinded [blindedKeys]blindedKey
	next    int
}

// blindedKeys is how many keys a batch remembers blinded, and
// maxBlindedKey the longest it remembers (the STF's keys are 33–34
// bytes: a prefix and an address).
const (
	blindedKeys   = 4
	maxBlindedKey = 40
)

type blindedKey struct {
	n   uint8 // 0: empty
	key [maxBlindedKey]byte
	k   Key
}

// blind returns key's blinded key, from the batch's ring if it is there.
func (b *Batch) blind(key []byte) Key {
	for i := range b.blinded {
		if e := &b.blinded[i]; e.n != 0 && int(e.n) == len(key) && bytes.Equal(e.key[:e.n], key) {
			return e.k
		}
	}
	k := b.s.Blind(key)
	if len(key) > 0 && len(key) <= maxBlindedKey {
		e := &b.blinded[b.next]
		e.n, e.k = uint8(copy(e.key[:], key)), k
		b.next = (b.next + 1) % blindedKeys
	}
	return k
}

var _ KV = (*Batch)(nil)

// Begin starts a batch on the committed state.
func (s *State) Begin() *Batch { return &Batch{s: s, writes: make(map[Key]write)} }

// Child starts a batch on b.
func (b *Batch) Child() *Batch { return &Batch{s: b.s, parent: b, writes: make(map[Key]write)} }

func (b *Batch) lookup(k Key) ([]byte, bool) {
	for x := b; x != nil; x = x.parent {
		if w, ok := x.writes[k]; ok {
			return w.value, !w.deleted
		}
	}
	return b.s.committed(k)
}

// Get reads through the batch.
func (b *Batch) Get(key []byte) ([]byte, bool, error) {
	if b.done {
		return nil, false, ErrCommitted
	}
	if len(key) > MaxKeySize {
		return nil, false, fmt.Errorf("%w: key of %d bytes", ErrTooLarge, len(key))
	}
	v, ok := b.lookup(b.blind(key))
	return bytes.Clone(v), ok, nil
}

// Set writes key.
func (b *Batch) Set(key, value []byte) error {
	if b.done {
		return ErrCommitted
	}
	if len(key) > MaxKeySize || len(value) > MaxValueSize {
		return fmt.Errorf("%w: key of %d, value of %d bytes", ErrTooLarge, len(key), len(value))
	}
	b.writes[b.blind(key)] = write{value: bytes.Clone(value)}
	return nil
}

// Delete removes key.
func (b *Batch) Delete(key []byte) error {
	if b.done {
		return ErrCommitted
	}
	if len(key) > MaxKeySize {
		return fmt.Errorf("%w: key of %d bytes", ErrTooLarge, len(key))
	}
	b.writes[b.blind(key)] = write{deleted: true}
	return nil
}

// Write merges a child batch into its parent.
func (b *Batch) Write() error {
	if b.done {
		return ErrCommitted
	}
	if b.parent == nil {
		return errors.New("state: Write on a top-level batch; use State.Commit")
	}
	for k, w := range b.writes {
		b.parent.writes[k] = w
	}
	b.done = true
	return nil
}

// Commit applies a top-level batch at height and returns what changed.
// Writes that leave a value as it was produce no entry.
func (s *State) Commit(b *Batch, height int64) (ChangeSet, error) {
	if b.done {
		return ChangeSet{}, ErrCommitted
	}
	if b.s != s || b.parent != nil {
		return ChangeSet{}, errors.New("state: batch is not a top-level batch of this state")
	}
	b.done = true
	keys := make([]Key, 0, len(b.writes))
	for k := range b.writes {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b Key) int { return bytes.Compare(a[:], b[:]) })
	cs := ChangeSet{Height: height}
	for _, k := range keys {
		w := b.writes[k]
		old, exists := s.committed(k)
		switch {
		case w.deleted && !exists:
			continue
		case w.deleted:
			s.tree.remove(k)
			cs.Entries = append(cs.Entries, Entry{Key: k})
		case exists && bytes.Equal(old, w.value):
			continue
		default:
			ct := s.encrypt(k, height, w.value)
			s.tree.set(k, sha256.Sum256(ct), w.value)
			cs.Entries = append(cs.Entries, Entry{Key: k, Value: ct})
		}
	}
	cs.Root = s.tree.rootHash()
	return cs, nil
}
