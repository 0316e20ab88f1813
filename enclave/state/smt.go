package state

import (
	"crypto/sha256"
	"runtime"
	"sync"
	"sync/atomic"
)

const (
	leafPrefix  = 0x00
	innerPrefix = 0x01
)

// The tree lives in two arenas of plain structs addressed by index, not
// in a node per allocation: a million accounts are several million nodes,
// and as pointer-free slices they cost about half the memory, cost the
// garbage collector nothing to scan, and need no allocation per insert.

// ref addresses a subtree: 0 is the empty subtree, leafBit marks an index
// into tree.leaves, anything else an index into tree.inner.
type ref uint32

const leafBit ref = 1 << 31

func (r ref) isLeaf() bool { return r&leafBit != 0 }
func (r ref) idx() uint32  { return uint32(r &^ leafBit) }

// An inner node is an index into two arenas, its children and its hash,
// and a bit of a bitset that tells whether that hash is stale. A lookup
// walks only the children: at a million accounts ~20 levels, and 8 bytes
// per node (against 40 with the hash beside them) keep most of those
// levels in the CPU's caches. The hashes are 32 bytes apart, so each lies
// in one cache line (with a stale flag beside it, 33 bytes apart, half of
// them spanned two), and marking a path stale writes the bitset, which
// stays in the caches, not each node's hash line.

// lnode is a leaf with its hash, computed when it is set, and the
// entry's plaintext value: inline up to inlineValue bytes (a balance, a
// nonce), else in tree.big. The leaves are the state's only copy of the
// values, so the state has no map beside the tree.
type lnode struct {
	key, hash [32]byte
	vlen      uint8 // bigValue: in tree.big
	inline    [inlineValue]byte
}

const (
	inlineValue = 15
	bigValue    = 0xff
)

func bit(k *[32]byte, i int) int { return int(k[i/8]>>(7-uint(i%8))) & 1 }

func leafHash(key, vhash *[32]byte) [32]byte {
	var buf [1 + 64]byte
	buf[0] = leafPrefix
	copy(buf[1:], key[:])
	copy(buf[33:], vhash[:])
	return sha256.Sum256(buf[:])
}

type tree struct {
	kids   [][2]ref   // inner nodes' children; [0] unused: ref 0 is the empty subtree
	hashes [][32]byte // inner nodes' hashes, by the same index; valid unless dirty
	// dirty has bit i set while inner node i's hash is stale. rootHash
	// clears bits from several goroutines, atomically: nodes of different
	// subtrees share words.
	dirty  []uint64
	leaves []lnode // [0] unused
	freeI  []uint32
	freeL  []uint32
	big    map[uint32][]byte // values of leaves larger than inlineValue
	root   ref
	n      int
}

// reserve sizes the arenas for n entries (a random key set of n entries
// has about 1.44n inner nodes).
func (t *tree) reserve(n int) {
	if len(t.leaves) == 0 && n > 0 {
		t.leaves = make([]lnode, 1, n+1)
		t.kids = make([][2]ref, 1, n+n/2+1)
		t.hashes = make([][32]byte, 1, n+n/2+1)
		t.dirty = make([]uint64, 1, (n+n/2+1)/64+1)
	}
}

func (t *tree) isDirty(i uint32) bool {
	return atomic.LoadUint64(&t.dirty[i/64])&(1<<(i%64)) != 0
}

// setDirty marks inner node i's hash stale. Not concurrent with rootHash.
func (t *tree) setDirty(i uint32) { t.dirty[i/64] |= 1 << (i % 64) }

func (t *tree) clearDirty(i uint32) { atomic.AndUint64(&t.dirty[i/64], ^(1 << (i % 64))) }

func (t *tree) newLeaf(key, vhash *[32]byte, value []byte) ref {
	var i uint32
	if k := len(t.freeL); k > 0 {
		i = t.freeL[k-1]
		t.freeL = t.freeL[:k-1]
	} else {
		if len(t.leaves) == 0 {
			t.leaves = append(t.leaves, lnode{})
		}
		t.leaves = append(t.leaves, lnode{})
		i = uint32(len(t.leaves) - 1)
	}
	t.leaves[i].key = *key
	t.setLeaf(i, vhash, value)
	return leafBit | ref(i)
}

// setLeaf sets leaf i's value and hash.
func (t *tree) setLeaf(i uint32, vhash *[32]byte, value []byte) {
	l := &t.leaves[i]
	l.hash = leafHash(&l.key, vhash)
	if len(value) <= inlineValue {
		if l.vlen == bigValue {
			delete(t.big, i)
		}
		l.vlen = uint8(copy(l.inline[:], value))
		return
	}
	if t.big == nil {
		t.big = make(map[uint32][]byte)
	}
	l.vlen = bigValue
	t.big[i] = value
}

// value returns leaf i's value. It aliases the tree: callers copy it
// before the tree changes.
func (t *tree) value(i uint32) []byte {
	l := &t.leaves[i]
	if l.vlen == bigValue {
		return t.big[i]
	}
	return l.inline[:l.vlen:l.vlen]
}

// get returns the leaf of key.
func (t *tree) get(key *[32]byte) (uint32, bool) {
	r := t.root
	for depth := 0; r != 0 && !r.isLeaf(); depth++ {
		r = t.kids[r.idx()][bit(key, depth)]
	}
	if r == 0 || t.leaves[r.idx()].key != *key {
		return 0, false
	}
	return r.idx(), true
}

// newInner adds a dirty inner node with children kids.
func (t *tree) newInner(kids [2]ref) ref {
	if k := len(t.freeI); k > 0 {
		i := t.freeI[k-1]
		t.freeI = t.freeI[:k-1]
		t.kids[i] = kids
		t.setDirty(i)
		return ref(i)
	}
	if len(t.kids) == 0 {
		t.kids, t.hashes = append(t.kids, [2]ref{}), append(t.hashes, [32]byte{})
	}
	t.kids, t.hashes = append(t.kids, kids), append(t.hashes, [32]byte{})
	i := uint32(len(t.kids) - 1)
	for int(i/64) >= len(t.dirty) {
		t.dirty = append(t.dirty, 0)
	}
	t.setDirty(i)
	return ref(i)
}

// set inserts or updates a leaf with the hash of its encrypted value and
// its plaintext value (kept, not copied); added tells an insert.
func (t *tree) set(key, vhash [32]byte, value []byte) (added bool) {
	t.root, added = t.insert(t.root, 0, &key, &vhash, value)
	if added {
		t.n++
	}
	return added
}

func (t *tree) insert(r ref, depth int, key, vhash *[32]byte, value []byte) (ref, bool) {
	switch {
	case r == 0:
		return t.newLeaf(key, vhash, value), true
	case r.isLeaf():
		if t.leaves[r.idx()].key == *key {
			t.setLeaf(r.idx(), vhash, value)
			return r, false
		}
		return t.split(r, t.newLeaf(key, vhash, value), depth), true
	}
	i, b := r.idx(), bit(key, depth)
	c, added := t.insert(t.kids[i][b], depth+1, key, vhash, value)
	t.kids[i][b] = c // after the insert: the arenas may have moved
	t.setDirty(i)
	return r, added
}

// split returns the subtree at depth holding the two distinct leaves a, b:
// an inner node where their keys first differ, under a chain of one-child
// inner nodes for the bits they share.
func (t *tree) split(a, b ref, depth int) ref {
	ka, kb := t.leaves[a.idx()].key, t.leaves[b.idx()].key
	d := depth
	for bit(&ka, d) == bit(&kb, d) {
		d++
	}
	var n [2]ref
	n[bit(&ka, d)], n[bit(&kb, d)] = a, b
	cur := t.newInner(n)
	for d--; d >= depth; d-- {
		var p [2]ref
		p[bit(&ka, d)] = cur
		cur = t.newInner(p)
	}
	return cur
}

// remove deletes a leaf, if present.
func (t *tree) remove(key [32]byte) {
	var found bool
	t.root, found = t.del(t.root, 0, &key)
	if found {
		t.n--
	}
}

func (t *tree) del(r ref, depth int, key *[32]byte) (ref, bool) {
	switch {
	case r == 0:
		return 0, false
	case r.isLeaf():
		if t.leaves[r.idx()].key == *key {
			if t.leaves[r.idx()].vlen == bigValue {
				delete(t.big, r.idx())
			}
			t.leaves[r.idx()] = lnode{}
			t.freeL = append(t.freeL, r.idx())
			return 0, true
		}
		return r, false
	}
	i := r.idx()
	b := bit(key, depth)
	c, found := t.del(t.kids[i][b], depth+1, key)
	if !found {
		return r, false
	}
	t.kids[i][b] = c
	t.setDirty(i)
	// A subtree left with one entry becomes that entry's leaf.
	var keep ref
	switch l, rr := t.kids[i][0], t.kids[i][1]; {
	case l == 0 && rr == 0:
	case l == 0 && rr.isLeaf():
		keep = rr
	case rr == 0 && l.isLeaf():
		keep = l
	default:
		return r, true
	}
	t.kids[i], t.hashes[i] = [2]ref{}, [32]byte{}
	t.clearDirty(i)
	t.freeI = append(t.freeI, i)
	return keep, true
}

// parallelMin is the number of entries from which rootHash hashes the
// dirty subtrees below the top levels concurrently.
const parallelMin = 1 << 14

// rootHash rehashes the dirty nodes and returns the root.
func (t *tree) rootHash() [32]byte {
	if procs := runtime.GOMAXPROCS(0); procs > 1 && t.n >= parallelMin {
		// Subtrees are disjoint and hashOf allocates nothing, so they can
		// be hashed concurrently; the top levels are then hashed below.
		var subs []ref
		t.dirtyAt(t.root, 4, &subs)
		if len(subs) > 1 {
			var wg sync.WaitGroup
			next := make(chan ref, len(subs))
			for _, s := range subs {
				next <- s
			}
			close(next)
			for range min(procs, len(subs)) {
				wg.Go(func() {
					for s := range next {
						t.hashOf(s)
					}
				})
			}
			wg.Wait()
		}
	}
	return t.hashOf(t.root)
}

// dirtyAt appends the dirty inner nodes levels below r.
func (t *tree) dirtyAt(r ref, levels int, out *[]ref) {
	if r == 0 || r.isLeaf() || !t.isDirty(r.idx()) {
		return
	}
	if levels == 0 {
		*out = append(*out, r)
		return
	}
	for _, c := range t.kids[r.idx()] {
		t.dirtyAt(c, levels-1, out)
	}
}

func (t *tree) hashOf(r ref) [32]byte {
	switch {
	case r == 0:
		return [32]byte{}
	case r.isLeaf():
		return t.leaves[r.idx()].hash
	}
	i := r.idx()
	if !t.isDirty(i) {
		return t.hashes[i]
	}
	var buf [1 + 64]byte
	l, rr := t.hashOf(t.kids[i][0]), t.hashOf(t.kids[i][1])
	buf[0] = innerPrefix
	copy(buf[1:], l[:])
	copy(buf[33:], rr[:])
	t.hashes[i] = sha256.Sum256(buf[:])
	t.clearDirty(i)
	return t.hashes[i]
}
