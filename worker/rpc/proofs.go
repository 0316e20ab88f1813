package rpc

import (
	"crypto/sha256"
	"hash"
	"math/bits"

	"github.com/cometbft/cometbft/crypto/merkle"
)

// blockProofs returns the root of items (RFC 6962, as
// merkle.HashFromByteSlices) and each item's inclusion proof, the same as
// merkle.ProofsFromByteSlices: the root a block's header names and the
// proof each executed call's answer carries. cometbft's builds a tree of
// nodes, copies each leaf to hash it and flattens every proof's aunts
// into slices of its own, which was an eighth of the worker's allocated
// bytes under load; here the hashes and the aunts live in a few arrays
// that the proofs share (read-only).
func blockProofs(items [][]byte) (root []byte, proofs []*merkle.Proof) {
	n := len(items)
	if n == 0 {
		h := sha256.Sum256(nil)
		return h[:], nil
	}
	depth := bits.Len(uint(n - 1)) // aunts of the deepest leaf
	b := proofBuilder{
		items:  items,
		h:      sha256.New(),
		hashes: make([]byte, 0, (2*n-1)*sha256.Size),
		store:  make([]merkle.Proof, n),
	}
	aunts := make([][]byte, n*depth)
	proofs = make([]*merkle.Proof, n)
	for i := range b.store {
		b.store[i] = merkle.Proof{Total: int64(n), Index: int64(i), Aunts: aunts[i*depth : i*depth : (i+1)*depth]}
		proofs[i] = &b.store[i]
	}
	return b.build(0, n), proofs
}

type proofBuilder struct {
	items  [][]byte
	h      hash.Hash
	hashes []byte // every node's hash, appended; never grows past its capacity
	store  []merkle.Proof
}

// sum appends the hash of the parts to b.hashes and returns it.
func (b *proofBuilder) sum(parts ...[]byte) []byte {
	b.h.Reset()
	for _, p := range parts {
		b.h.Write(p)
	}
	start := len(b.hashes)
	b.hashes = b.h.Sum(b.hashes)
	return b.hashes[start:len(b.hashes):len(b.hashes)]
}

var (
	leafPrefix  = []byte{0}
	innerPrefix = []byte{1}
)

// build returns the hash of items[lo:hi] and appends, to each of its
// leaves' aunts, the hash of the other side at every level below: a
// leaf's aunts run from its sibling up, as merkle.Proof wants them.
func (b *proofBuilder) build(lo, hi int) []byte {
	if hi-lo == 1 {
		h := b.sum(leafPrefix, b.items[lo])
		b.store[lo].LeafHash = h
		return h
	}
	k := lo + splitPoint(hi-lo)
	left, right := b.build(lo, k), b.build(k, hi)
	for i := lo; i < k; i++ {
		b.store[i].Aunts = append(b.store[i].Aunts, right)
	}
	for i := k; i < hi; i++ {
		b.store[i].Aunts = append(b.store[i].Aunts, left)
	}
	return b.sum(innerPrefix, left, right)
}

// splitPoint is the largest power of two below n (n > 1): RFC 6962's
// split of a tree of n leaves.
func splitPoint(n int) int {
	k := 1 << (bits.Len(uint(n)) - 1)
	if k == n {
		k >>= 1
	}
	return k
}
