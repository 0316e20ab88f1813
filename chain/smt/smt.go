// Package smt is the chain state's authenticated map: the hashing of its
// compact sparse Merkle tree and the proofs of one key's value (or
// absence) under a root. The store (chain/store) builds the tree; clients and
// enclaves verify proofs with this package alone.
//
// The authenticated map is a compact sparse Merkle tree over 256-bit paths
// (path = sha256(key)), the construction of Dahlberg, Pulls and Peeters,
// "Efficient Sparse Merkle Trees" (2016), as used by Diem's Jellyfish tree
// and Celestia's SMT:
//
//   - an empty subtree hashes to 32 zero bytes;
//   - a subtree holding exactly one entry is that entry's leaf, placed at the
//     top of the subtree: leaf = sha256(0x00 || path || sha256(value));
//   - any other subtree is an inner node: sha256(0x01 || left || right),
//     left for bit 0 of the path at that depth (most significant bit first).
//
// The shape, and so the root, depends only on the set of entries, never on
// the order of updates. Nodes are content-addressed and immutable, so every
// committed version stays readable and provable.
package smt

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"

	cmtcrypto "github.com/cometbft/cometbft/proto/tendermint/crypto"

	"github.com/integritee-go/integritee/chain/codec"
)

// Tree parameters.
const (
	HashLen  = sha256.Size
	PathBits = 8 * HashLen

	leafPrefix  = 0x00
	innerPrefix = 0x01

	leafNodeLen  = 1 + 2*HashLen
	innerNodeLen = 1 + 2*HashLen
)

// Hash is a node hash, path or value hash.
type Hash = [HashLen]byte

// Empty is the hash of an empty subtree.
var Empty Hash

// ErrMalformedNode reports bytes that are no encoded node.
var ErrMalformedNode = errors.New("malformed merkle node")

// Path is the tree path of key.
func Path(key []byte) Hash { return sha256.Sum256(key) }

// ValueHash is the hash of a value in its leaf.
func ValueHash(value []byte) Hash { return sha256.Sum256(value) }

// Bit returns bit i of p, most significant first.
func Bit(p *Hash, i int) int {
	return int(p[i/8]>>(7-uint(i%8))) & 1
}

// Leaf returns the hash and encoding of the leaf of path with value hash vh.
func Leaf(path, vh Hash) (Hash, []byte) {
	n := make([]byte, 0, leafNodeLen)
	n = append(n, leafPrefix)
	n = append(n, path[:]...)
	n = append(n, vh[:]...)
	return sha256.Sum256(n), n
}

// Inner returns the hash and encoding of the inner node of two subtrees.
func Inner(left, right Hash) (Hash, []byte) {
	n := make([]byte, 0, innerNodeLen)
	n = append(n, innerPrefix)
	n = append(n, left[:]...)
	n = append(n, right[:]...)
	return sha256.Sum256(n), n
}

// Node is a decoded tree node: a leaf (Path, ValueHash) or an inner node
// (Left, Right).
type Node struct {
	Leaf            bool
	Path, ValueHash Hash
	Left, Right     Hash
}

// DecodeNode decodes a node's encoding.
func DecodeNode(b []byte) (Node, error) {
	var n Node
	switch {
	case len(b) == leafNodeLen && b[0] == leafPrefix:
		n.Leaf = true
		copy(n.Path[:], b[1:1+HashLen])
		copy(n.ValueHash[:], b[1+HashLen:])
	case len(b) == innerNodeLen && b[0] == innerPrefix:
		copy(n.Left[:], b[1:1+HashLen])
		copy(n.Right[:], b[1+HashLen:])
	default:
		return n, fmt.Errorf("%w: %d bytes", ErrMalformedNode, len(b))
	}
	return n, nil
}

// ProofOpType names the proof operation in abci_query responses.
const ProofOpType = "integritee:smt:v1"

// ErrInvalidProof is returned by Verify for any proof that does not bind the
// key and value (or absence) to the root.
var ErrInvalidProof = errors.New("invalid merkle proof")

// Proof proves the value of one key, or its absence, under a root.
type Proof struct {
	// Siblings are the sibling hashes from the root down to the position of
	// the key's leaf (or of the empty subtree or other leaf where it would be).
	Siblings [][]byte `cbor:"siblings"`
	// LeafPath and LeafValueHash are set in a proof of absence that ends at
	// the leaf of another key sharing the path prefix.
	LeafPath      []byte `cbor:"leaf_path,omitempty"`
	LeafValueHash []byte `cbor:"leaf_value_hash,omitempty"`
}

// ProofOp wraps the proof for key as a CometBFT proof operation.
func (p *Proof) ProofOp(key []byte) (cmtcrypto.ProofOp, error) {
	data, err := codec.Marshal(p)
	if err != nil {
		return cmtcrypto.ProofOp{}, fmt.Errorf("encode proof: %w", err)
	}
	return cmtcrypto.ProofOp{Type: ProofOpType, Key: key, Data: data}, nil
}

// ProofFromOps extracts the proof for key from query proof operations.
func ProofFromOps(ops *cmtcrypto.ProofOps, key []byte) (*Proof, error) {
	if ops == nil || len(ops.Ops) != 1 {
		return nil, fmt.Errorf("%w: want exactly one proof op", ErrInvalidProof)
	}
	op := ops.Ops[0]
	if op.Type != ProofOpType {
		return nil, fmt.Errorf("%w: op type %q", ErrInvalidProof, op.Type)
	}
	if !bytes.Equal(op.Key, key) {
		return nil, fmt.Errorf("%w: proof is for another key", ErrInvalidProof)
	}
	var p Proof
	if err := codec.Unmarshal(op.Data, &p); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidProof, err)
	}
	return &p, nil
}

// Verify checks that under root, key has value, or is absent if value is nil.
func (p *Proof) Verify(root, key, value []byte) error {
	got, err := p.computeRoot(key, value)
	if err != nil {
		return err
	}
	if !bytes.Equal(got[:], root) {
		return fmt.Errorf("%w: root mismatch", ErrInvalidProof)
	}
	return nil
}

func (p *Proof) computeRoot(key, value []byte) (Hash, error) {
	if len(p.Siblings) > PathBits {
		return Empty, fmt.Errorf("%w: %d siblings", ErrInvalidProof, len(p.Siblings))
	}
	path := Path(key)
	depth := len(p.Siblings)
	var cur Hash
	switch {
	case value != nil:
		if p.LeafPath != nil || p.LeafValueHash != nil {
			return Empty, fmt.Errorf("%w: membership proof with another leaf", ErrInvalidProof)
		}
		cur, _ = Leaf(path, ValueHash(value))
	case p.LeafPath == nil && p.LeafValueHash == nil:
		cur = Empty
	default:
		if len(p.LeafPath) != HashLen || len(p.LeafValueHash) != HashLen {
			return Empty, fmt.Errorf("%w: bad leaf witness length", ErrInvalidProof)
		}
		var other, vh Hash
		copy(other[:], p.LeafPath)
		copy(vh[:], p.LeafValueHash)
		if other == path {
			return Empty, fmt.Errorf("%w: absence proof names the key itself", ErrInvalidProof)
		}
		// The other leaf must sit where path would be: same first depth bits.
		for i := range depth {
			if Bit(&other, i) != Bit(&path, i) {
				return Empty, fmt.Errorf("%w: witness leaf off the key's path", ErrInvalidProof)
			}
		}
		cur, _ = Leaf(other, vh)
	}
	for i := depth - 1; i >= 0; i-- {
		if len(p.Siblings[i]) != HashLen {
			return Empty, fmt.Errorf("%w: sibling %d has %d bytes", ErrInvalidProof, i, len(p.Siblings[i]))
		}
		var sib Hash
		copy(sib[:], p.Siblings[i])
		if Bit(&path, i) == 0 {
			cur, _ = Inner(cur, sib)
		} else {
			cur, _ = Inner(sib, cur)
		}
	}
	return cur, nil
}
