package store

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/integritee-go/integritee/chain/smt"
)

// The tree's hashing and proofs are package smt's; this file builds and
// walks the tree over the store's node database.

// errCorrupt reports a node that is missing or malformed in the database.
var errCorrupt = errors.New("store: corrupt merkle node")

type (
	hash = smt.Hash
	node = smt.Node
)

func decodeNode(b []byte) (node, error) {
	n, err := smt.DecodeNode(b)
	if err != nil {
		return n, fmt.Errorf("%w: %w", errCorrupt, err)
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
	h, n := smt.Leaf(path, vh)
	w.nodes[h] = n
	return h
}

// apply returns the root of the subtree at depth after applying ups, which are
// sorted by path and all share the subtree's path prefix.
func (w *treeWriter) apply(root hash, depth int, ups []update) (hash, error) {
	if len(ups) == 0 {
		return root, nil
	}
	if root == smt.Empty {
		return w.build(depth, inserts(ups)), nil
	}
	n, err := w.load(root)
	if err != nil {
		return smt.Empty, err
	}
	if n.Leaf {
		// The subtree holds one entry: merge it with the updates and
		// rebuild, unless an update replaces or deletes it.
		entries := inserts(ups)
		replaced := false
		for _, u := range ups {
			if u.path == n.Path {
				replaced = true
				break
			}
		}
		if !replaced {
			entries = insertSorted(entries, update{path: n.Path, vhash: n.ValueHash})
		}
		return w.build(depth, entries), nil
	}
	if depth >= smt.PathBits {
		return smt.Empty, fmt.Errorf("%w: inner node below the last path bit", errCorrupt)
	}
	split := splitAt(ups, depth)
	left, err := w.apply(n.Left, depth+1, ups[:split])
	if err != nil {
		return smt.Empty, err
	}
	right, err := w.apply(n.Right, depth+1, ups[split:])
	if err != nil {
		return smt.Empty, err
	}
	return w.join(left, right)
}

// join makes the canonical parent of two subtrees: a lone leaf moves up.
func (w *treeWriter) join(left, right hash) (hash, error) {
	switch {
	case left == smt.Empty && right == smt.Empty:
		return smt.Empty, nil
	case left == smt.Empty || right == smt.Empty:
		only := left
		if only == smt.Empty {
			only = right
		}
		n, err := w.load(only)
		if err != nil {
			return smt.Empty, err
		}
		if n.Leaf {
			return only, nil
		}
	}
	h, b := smt.Inner(left, right)
	w.nodes[h] = b
	return h, nil
}

// build makes the subtree at depth holding exactly entries (sorted, no
// deletions).
func (w *treeWriter) build(depth int, entries []update) hash {
	switch len(entries) {
	case 0:
		return smt.Empty
	case 1:
		return w.putLeaf(entries[0].path, entries[0].vhash)
	}
	split := splitAt(entries, depth)
	left := w.build(depth+1, entries[:split])
	right := w.build(depth+1, entries[split:])
	// Two or more entries: this is an inner node even if one side is empty.
	h, b := smt.Inner(left, right)
	w.nodes[h] = b
	return h
}

// splitAt returns the index of the first update whose path has bit depth set.
func splitAt(ups []update, depth int) int {
	for i := range ups {
		if smt.Bit(&ups[i].path, depth) == 1 {
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
func prove(r nodeReader, root, path hash) (*smt.Proof, *hash, error) {
	p := &smt.Proof{}
	cur := root
	for depth := 0; ; depth++ {
		if cur == smt.Empty {
			return p, nil, nil
		}
		n, err := r.node(cur)
		if err != nil {
			return nil, nil, err
		}
		if n.Leaf {
			if n.Path == path {
				vh := n.ValueHash
				return p, &vh, nil
			}
			p.LeafPath = n.Path[:]
			p.LeafValueHash = n.ValueHash[:]
			return p, nil, nil
		}
		if depth >= smt.PathBits {
			return nil, nil, fmt.Errorf("%w: inner node below the last path bit", errCorrupt)
		}
		if smt.Bit(&path, depth) == 0 {
			p.Siblings = append(p.Siblings, n.Right[:])
			cur = n.Left
		} else {
			p.Siblings = append(p.Siblings, n.Left[:])
			cur = n.Right
		}
	}
}
