package store

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
)

const (
	hashLen  = sha256.Size
	pathBits = 8 * hashLen

	leafPrefix  = 0x00
	innerPrefix = 0x01

	leafNodeLen  = 1 + 2*hashLen
	innerNodeLen = 1 + 2*hashLen
)

var emptyHash [hashLen]byte

// errCorrupt reports a node that is missing or malformed in the database.
var errCorrupt = errors.New("store: corrupt merkle node")

type hash = [hashLen]byte

func pathOf(key []byte) hash { return sha256.Sum256(key) }

func valueHash(value []byte) hash { return sha256.Sum256(value) }

// bit returns bit i of p, most significant first.
func bit(p *hash, i int) int {
	return int(p[i/8]>>(7-uint(i%8))) & 1
}

func leafNode(path, vh hash) (hash, []byte) {
	n := make([]byte, 0, leafNodeLen)
	n = append(n, leafPrefix)
	n = append(n, path[:]...)
	n = append(n, vh[:]...)
	return sha256.Sum256(n), n
}

func innerNode(left, right hash) (hash, []byte) {
	n := make([]byte, 0, innerNodeLen)
	n = append(n, innerPrefix)
	n = append(n, left[:]...)
	n = append(n, right[:]...)
	return sha256.Sum256(n), n
}

// node is a decoded tree node.
type node struct {
	leaf        bool
	path, vhash hash // leaf
	left, right hash // inner
}

func decodeNode(b []byte) (node, error) {
	var n node
	switch {
	case len(b) == leafNodeLen && b[0] == leafPrefix:
		n.leaf = true
		copy(n.path[:], b[1:1+hashLen])
		copy(n.vhash[:], b[1+hashLen:])
	case len(b) == innerNodeLen && b[0] == innerPrefix:
		copy(n.left[:], b[1:1+hashLen])
		copy(n.right[:], b[1+hashLen:])
	default:
		return n, fmt.Errorf("%w: %d bytes", errCorrupt, len(b))
	}
	return n, nil
}

// nodeReader loads nodes by hash.
type nodeReader interface {
	node(h hash) (node, error)
}

// update is one change of a tree: a value hash to set, or a deletion.
type update struct {
	path   hash
	vhash  hash
	delete bool
}

// treeWriter applies sorted updates to a tree and collects the new nodes.
type treeWriter struct {
	r     nodeReader
	nodes map[hash][]byte // new nodes by hash
}

func (w *treeWriter) load(h hash) (node, error) {
	if b, ok := w.nodes[h]; ok {
		return decodeNode(b)
	}
	return w.r.node(h)
}

func (w *treeWriter) putLeaf(path, vh hash) hash {
	h, n := leafNode(path, vh)
	w.nodes[h] = n
	return h
}

// apply returns the root of the subtree at depth after applying ups, which are
// sorted by path and all share the subtree's path prefix.
func (w *treeWriter) apply(root hash, depth int, ups []update) (hash, error) {
	if len(ups) == 0 {
		return root, nil
	}
	if root == emptyHash {
		return w.build(depth, inserts(ups)), nil
	}
	n, err := w.load(root)
	if err != nil {
		return emptyHash, err
	}
	if n.leaf {
		// The subtree holds one entry: merge it with the updates and
		// rebuild, unless an update replaces or deletes it.
		entries := inserts(ups)
		replaced := false
		for _, u := range ups {
			if u.path == n.path {
				replaced = true
				break
			}
		}
		if !replaced {
			entries = insertSorted(entries, update{path: n.path, vhash: n.vhash})
		}
		return w.build(depth, entries), nil
	}
	if depth >= pathBits {
		return emptyHash, fmt.Errorf("%w: inner node below the last path bit", errCorrupt)
	}
	split := splitAt(ups, depth)
	left, err := w.apply(n.left, depth+1, ups[:split])
	if err != nil {
		return emptyHash, err
	}
	right, err := w.apply(n.right, depth+1, ups[split:])
	if err != nil {
		return emptyHash, err
	}
	return w.join(left, right)
}

// join makes the canonical parent of two subtrees: a lone leaf moves up.
func (w *treeWriter) join(left, right hash) (hash, error) {
	switch {
	case left == emptyHash && right == emptyHash:
		return emptyHash, nil
	case left == emptyHash || right == emptyHash:
		only := left
		if only == emptyHash {
			only = right
		}
		n, err := w.load(only)
		if err != nil {
			return emptyHash, err
		}
		if n.leaf {
			return only, nil
		}
	}
	h, b := innerNode(left, right)
	w.nodes[h] = b
	return h, nil
}

// build makes the subtree at depth holding exactly entries (sorted, no
// deletions).
func (w *treeWriter) build(depth int, entries []update) hash {
	switch len(entries) {
	case 0:
		return emptyHash
	case 1:
		return w.putLeaf(entries[0].path, entries[0].vhash)
	}
	split := splitAt(entries, depth)
	left := w.build(depth+1, entries[:split])
	right := w.build(depth+1, entries[split:])
	// Two or more entries: this is an inner node even if one side is empty.
	h, b := innerNode(left, right)
	w.nodes[h] = b
	return h
}

// splitAt returns the index of the first update whose path has bit depth set.
func splitAt(ups []update, depth int) int {
	for i := range ups {
		if bit(&ups[i].path, depth) == 1 {
			return i
		}
	}
	return len(ups)
}

func inserts(ups []update) []update {
	out := make([]update, 0, len(ups))
	for _, u := range ups {
		if !u.delete {
			out = append(out, u)
		}
	}
	return out
}

func insertSorted(ups []update, u update) []update {
	i := 0
	for i < len(ups) && bytes.Compare(ups[i].path[:], u.path[:]) < 0 {
		i++
	}
	ups = append(ups, update{})
	copy(ups[i+1:], ups[i:])
	ups[i] = u
	return ups
}

// prove walks from root towards path and returns the proof, and the value
// hash if path is present.
func prove(r nodeReader, root, path hash) (*Proof, *hash, error) {
	p := &Proof{}
	cur := root
	for depth := 0; ; depth++ {
		if cur == emptyHash {
			return p, nil, nil
		}
		n, err := r.node(cur)
		if err != nil {
			return nil, nil, err
		}
		if n.leaf {
			if n.path == path {
				vh := n.vhash
				return p, &vh, nil
			}
			p.LeafPath = n.path[:]
			p.LeafValueHash = n.vhash[:]
			return p, nil, nil
		}
		if depth >= pathBits {
			return nil, nil, fmt.Errorf("%w: inner node below the last path bit", errCorrupt)
		}
		if bit(&path, depth) == 0 {
			p.Siblings = append(p.Siblings, n.right[:])
			cur = n.left
		} else {
			p.Siblings = append(p.Siblings, n.left[:])
			cur = n.right
		}
	}
}
