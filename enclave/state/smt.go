package state

import (
	"crypto/sha256"
)

const (
	leafPrefix  = 0x00
	innerPrefix = 0x01
)

type node struct {
	left, right *node
	leaf        bool
	key, vhash  [32]byte // leaf only
	hash        [32]byte
	dirty       bool
}

func bit(k *[32]byte, i int) int { return int(k[i/8]>>(7-uint(i%8))) & 1 }

type tree struct {
	root *node
	n    int
}

// set inserts or updates a leaf.
func (t *tree) set(key, vhash [32]byte) {
	var added bool
	t.root, added = insert(t.root, 0, key, vhash)
	if added {
		t.n++
	}
}

func insert(n *node, depth int, key, vhash [32]byte) (*node, bool) {
	if n == nil {
		return &node{leaf: true, key: key, vhash: vhash, dirty: true}, true
	}
	if n.leaf {
		if n.key == key {
			n.vhash, n.dirty = vhash, true
			return n, false
		}
		return split(n, &node{leaf: true, key: key, vhash: vhash, dirty: true}, depth), true
	}
	var added bool
	if bit(&key, depth) == 0 {
		n.left, added = insert(n.left, depth+1, key, vhash)
	} else {
		n.right, added = insert(n.right, depth+1, key, vhash)
	}
	n.dirty = true
	return n, added
}

// split returns the subtree at depth holding the two distinct leaves a, b.
func split(a, b *node, depth int) *node {
	in := &node{dirty: true}
	ba, bb := bit(&a.key, depth), bit(&b.key, depth)
	switch {
	case ba != bb && ba == 0:
		in.left, in.right = a, b
	case ba != bb:
		in.left, in.right = b, a
	case ba == 0:
		in.left = split(a, b, depth+1)
	default:
		in.right = split(a, b, depth+1)
	}
	return in
}

// remove deletes a leaf, if present.
func (t *tree) remove(key [32]byte) {
	var found bool
	t.root, found = del(t.root, 0, key)
	if found {
		t.n--
	}
}

func del(n *node, depth int, key [32]byte) (*node, bool) {
	if n == nil {
		return nil, false
	}
	if n.leaf {
		if n.key == key {
			return nil, true
		}
		return n, false
	}
	var found bool
	if bit(&key, depth) == 0 {
		n.left, found = del(n.left, depth+1, key)
	} else {
		n.right, found = del(n.right, depth+1, key)
	}
	if !found {
		return n, false
	}
	n.dirty = true
	// A subtree left with one entry becomes that entry's leaf.
	switch {
	case n.left == nil && n.right == nil:
		return nil, true
	case n.left == nil && n.right.leaf:
		return n.right, true
	case n.right == nil && n.left.leaf:
		return n.left, true
	}
	return n, true
}

// rootHash rehashes the dirty nodes and returns the root.
func (t *tree) rootHash() [32]byte { return hashOf(t.root) }

func hashOf(n *node) [32]byte {
	if n == nil {
		return [32]byte{}
	}
	if !n.dirty {
		return n.hash
	}
	var buf [1 + 64]byte
	if n.leaf {
		buf[0] = leafPrefix
		copy(buf[1:], n.key[:])
		copy(buf[33:], n.vhash[:])
	} else {
		l, r := hashOf(n.left), hashOf(n.right)
		buf[0] = innerPrefix
		copy(buf[1:], l[:])
		copy(buf[33:], r[:])
	}
	n.hash, n.dirty = sha256.Sum256(buf[:]), false
	return n.hash
}
