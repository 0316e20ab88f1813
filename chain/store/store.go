package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"sort"
	"sync"

	dbm "github.com/cometbft/cometbft-db"

	"github.com/integritee-go/integritee/chain/smt"
)

// Database key prefixes.
const (
	prefixNode  = 'n' // node hash -> node
	prefixValue = 'v' // value hash -> value
	prefixFlat  = 'k' // key -> latest value
	prefixRoot  = 'r' // big-endian version -> root
)

var keyLatest = []byte("m/latest") // -> big-endian latest version

// ErrVersionNotFound is returned for a version that was never committed.
var ErrVersionNotFound = errors.New("store: version not found")

// Reader reads state.
type Reader interface {
	// Get returns the value of key, or nil if it is absent.
	Get(key []byte) ([]byte, error)
	// Iterate calls fn for each key with prefix and its value, in key
	// order, until fn returns false. fn must not modify key or value, nor
	// keep them after it returns, nor write to the state it iterates.
	Iterate(prefix []byte, fn func(key, value []byte) bool) error
}

// Store is the committed state. It is safe for concurrent use.
type Store struct {
	mu      sync.RWMutex
	db      dbm.DB
	version int64
	root    hash
}

// Open loads the latest committed version of db.
func Open(db dbm.DB) (*Store, error) {
	s := &Store{db: db}
	b, err := db.Get(keyLatest)
	if err != nil {
		return nil, fmt.Errorf("store: read latest version: %w", err)
	}
	if b == nil {
		return s, nil
	}
	if len(b) != 8 {
		return nil, fmt.Errorf("store: latest version has %d bytes", len(b))
	}
	s.version = int64(binary.BigEndian.Uint64(b))
	root, err := s.rootAt(s.version)
	if err != nil {
		return nil, err
	}
	s.root = root
	return s, nil
}

// Version returns the latest committed version (0 before the first commit).
func (s *Store) Version() int64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.version
}

// Root returns the Merkle root of the latest committed version.
func (s *Store) Root() []byte {
	s.mu.RLock()
	defer s.mu.RUnlock()
	r := s.root
	return r[:]
}

// Get returns the latest committed value of key, or nil.
func (s *Store) Get(key []byte) ([]byte, error) {
	v, err := s.db.Get(prefixed(prefixFlat, key))
	if err != nil {
		return nil, fmt.Errorf("store: get: %w", err)
	}
	return v, nil
}

// Iterate calls fn for each latest committed key with prefix, in key order,
// until fn returns false. It reads the flat index, which Commit writes in
// the same batch as the tree, so it sees exactly the latest committed
// version; an older version cannot be iterated (the tree hashes its keys),
// only read key by key with GetWithProof.
func (s *Store) Iterate(prefix []byte, fn func(key, value []byte) bool) error {
	start := prefixed(prefixFlat, prefix)
	it, err := s.db.Iterator(start, prefixEnd(start))
	if err != nil {
		return fmt.Errorf("store: iterate: %w", err)
	}
	defer it.Close()
	for ; it.Valid(); it.Next() {
		if !fn(it.Key()[1:], it.Value()) {
			break
		}
	}
	return it.Error()
}

// Proved is a value (nil if absent) with its proof against the root of a
// committed version.
type Proved struct {
	Value   []byte
	Proof   *smt.Proof
	Root    []byte
	Version int64
}

// GetWithProof returns the value of key at a committed version with its
// proof. Version 0 means the latest.
func (s *Store) GetWithProof(key []byte, version int64) (*Proved, error) {
	s.mu.RLock()
	latest, r := s.version, s.root
	s.mu.RUnlock()
	if version == 0 {
		version = latest
	}
	if version != latest {
		if version < 0 || version > latest {
			return nil, fmt.Errorf("%w: %d (latest %d)", ErrVersionNotFound, version, latest)
		}
		var err error
		if r, err = s.rootAt(version); err != nil {
			return nil, err
		}
	}
	proof, vh, err := prove(dbNodes{s.db}, r, smt.Path(key))
	if err != nil {
		return nil, err
	}
	out := &Proved{Proof: proof, Root: r[:], Version: version}
	if vh != nil {
		v, err := s.db.Get(prefixed(prefixValue, vh[:]))
		if err != nil {
			return nil, fmt.Errorf("store: get value: %w", err)
		}
		if v == nil {
			return nil, fmt.Errorf("%w: value missing", errCorrupt)
		}
		out.Value = v
	}
	return out, nil
}

func (s *Store) rootAt(version int64) (hash, error) {
	var r hash
	b, err := s.db.Get(versionKey(version))
	if err != nil {
		return r, fmt.Errorf("store: read root %d: %w", version, err)
	}
	if b == nil {
		return r, fmt.Errorf("%w: %d", ErrVersionNotFound, version)
	}
	if len(b) != smt.HashLen {
		return r, fmt.Errorf("%w: root of version %d has %d bytes", errCorrupt, version, len(b))
	}
	copy(r[:], b)
	return r, nil
}

// Pending is a computed but not yet committed version.
type Pending struct {
	version int64
	root    hash
	base    hash // root the changes were applied to
	nodes   map[hash][]byte
	changes []Change
}

// Root returns the root the pending version will have: the app hash.
func (p *Pending) Root() []byte { r := p.root; return r[:] }

// Version returns the version the pending changes will be committed as.
func (p *Pending) Version() int64 { return p.version }

// Change is one write: a value, or a deletion when Value is nil.
type Change struct {
	Key   []byte
	Value []byte
}

// Prepare computes the version after applying changes to the latest
// committed version, without writing anything.
func (s *Store) Prepare(version int64, changes []Change) (*Pending, error) {
	s.mu.RLock()
	latest, base := s.version, s.root
	s.mu.RUnlock()
	if version <= latest {
		return nil, fmt.Errorf("store: version %d not after latest %d", version, latest)
	}
	ups := make([]update, 0, len(changes))
	for _, c := range changes {
		u := update{path: smt.Path(c.Key), delete: c.Value == nil}
		if !u.delete {
			u.vhash = smt.ValueHash(c.Value)
		}
		ups = append(ups, u)
	}
	sort.Slice(ups, func(i, j int) bool { return bytes.Compare(ups[i].path[:], ups[j].path[:]) < 0 })
	for i := 1; i < len(ups); i++ {
		if ups[i].path == ups[i-1].path {
			return nil, errors.New("store: duplicate key in changes")
		}
	}
	w := &treeWriter{r: dbNodes{s.db}, nodes: make(map[hash][]byte)}
	root, err := w.apply(base, 0, ups)
	if err != nil {
		return nil, fmt.Errorf("store: apply changes: %w", err)
	}
	return &Pending{version: version, root: root, base: base, nodes: w.nodes, changes: changes}, nil
}

// Commit writes a pending version atomically and durably.
func (s *Store) Commit(p *Pending) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if p.version <= s.version || p.base != s.root {
		return fmt.Errorf("store: pending version %d does not extend version %d", p.version, s.version)
	}
	batch := s.db.NewBatch()
	defer batch.Close()
	for h, n := range p.nodes {
		if err := batch.Set(prefixed(prefixNode, h[:]), n); err != nil {
			return fmt.Errorf("store: batch: %w", err)
		}
	}
	for _, c := range p.changes {
		var err error
		if c.Value == nil {
			err = batch.Delete(prefixed(prefixFlat, c.Key))
		} else {
			vh := smt.ValueHash(c.Value)
			if err = batch.Set(prefixed(prefixValue, vh[:]), c.Value); err == nil {
				err = batch.Set(prefixed(prefixFlat, c.Key), c.Value)
			}
		}
		if err != nil {
			return fmt.Errorf("store: batch: %w", err)
		}
	}
	if err := batch.Set(versionKey(p.version), p.root[:]); err != nil {
		return fmt.Errorf("store: batch: %w", err)
	}
	var v [8]byte
	binary.BigEndian.PutUint64(v[:], uint64(p.version))
	if err := batch.Set(keyLatest, v[:]); err != nil {
		return fmt.Errorf("store: batch: %w", err)
	}
	if err := batch.WriteSync(); err != nil {
		return fmt.Errorf("store: commit version %d: %w", p.version, err)
	}
	s.version, s.root = p.version, p.root
	return nil
}

type dbNodes struct{ db dbm.DB }

func (d dbNodes) node(h hash) (node, error) {
	b, err := d.db.Get(prefixed(prefixNode, h[:]))
	if err != nil {
		return node{}, fmt.Errorf("store: read node: %w", err)
	}
	if b == nil {
		return node{}, fmt.Errorf("%w: node %x missing", errCorrupt, h[:8])
	}
	return decodeNode(b)
}

func prefixed(p byte, key []byte) []byte {
	out := make([]byte, 0, 1+len(key))
	out = append(out, p)
	return append(out, key...)
}

func versionKey(v int64) []byte {
	k := make([]byte, 9)
	k[0] = prefixRoot
	binary.BigEndian.PutUint64(k[1:], uint64(v))
	return k
}

// prefixEnd returns the smallest key greater than every key with prefix p.
func prefixEnd(p []byte) []byte {
	end := bytes.Clone(p)
	for i := len(end) - 1; i >= 0; i-- {
		if end[i] < 0xff {
			end[i]++
			return end[:i+1]
		}
	}
	return nil
}
