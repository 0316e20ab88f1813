package store

import (
	"bytes"
	"errors"
	"fmt"

	cmtcrypto "github.com/cometbft/cometbft/proto/tendermint/crypto"

	"github.com/integritee-go/integritee/chain/codec"
)

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

func (p *Proof) computeRoot(key, value []byte) (hash, error) {
	if len(p.Siblings) > pathBits {
		return emptyHash, fmt.Errorf("%w: %d siblings", ErrInvalidProof, len(p.Siblings))
	}
	path := pathOf(key)
	depth := len(p.Siblings)
	var cur hash
	switch {
	case value != nil:
		if p.LeafPath != nil || p.LeafValueHash != nil {
			return emptyHash, fmt.Errorf("%w: membership proof with another leaf", ErrInvalidProof)
		}
		cur, _ = leafNode(path, valueHash(value))
	case p.LeafPath == nil && p.LeafValueHash == nil:
		cur = emptyHash
	default:
		if len(p.LeafPath) != hashLen || len(p.LeafValueHash) != hashLen {
			return emptyHash, fmt.Errorf("%w: bad leaf witness length", ErrInvalidProof)
		}
		var other, vh hash
		copy(other[:], p.LeafPath)
		copy(vh[:], p.LeafValueHash)
		if other == path {
			return emptyHash, fmt.Errorf("%w: absence proof names the key itself", ErrInvalidProof)
		}
		// The other leaf must sit where path would be: same first depth bits.
		for i := range depth {
			if bit(&other, i) != bit(&path, i) {
				return emptyHash, fmt.Errorf("%w: witness leaf off the key's path", ErrInvalidProof)
			}
		}
		cur, _ = leafNode(other, vh)
	}
	for i := depth - 1; i >= 0; i-- {
		if len(p.Siblings[i]) != hashLen {
			return emptyHash, fmt.Errorf("%w: sibling %d has %d bytes", ErrInvalidProof, i, len(p.Siblings[i]))
		}
		var sib hash
		copy(sib[:], p.Siblings[i])
		if bit(&path, i) == 0 {
			cur, _ = innerNode(cur, sib)
		} else {
			cur, _ = innerNode(sib, cur)
		}
	}
	return cur, nil
}
