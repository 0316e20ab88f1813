package rpc

import (
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/cometbft/cometbft/crypto/merkle"

	"github.com/integritee-go/integritee/chain/sidechain"
	"github.com/integritee-go/integritee/chain/types"
	"github.com/integritee-go/integritee/enclave/protocol"
	"github.com/integritee-go/integritee/worker/rpc/api"
)

// Outcome is what became of one submitted call.
type Outcome struct {
	Status protocol.CallStatus
	// Reason classifies a failure or invalidity.
	Reason string
	// Block is the shard block holding an executed or failed call, and
	// Proof the Merkle proof of the call's leaf under its CallsRoot.
	Block *sidechain.SignedHeader
	Proof *merkle.Proof
	// blockRef is what the call's answer says of its block besides the
	// proof, made once per block (Outcomes): every call of a block shares
	// it.
	blockRef *blockRef
}

// blockRef is the part of api.BlockRef that all calls of a block share.
type blockRef struct {
	hash      types.Hash
	signature string
}

// Outcomes turns an enclave reply into one Outcome per submitted call.
func Outcomes(rep *protocol.SubmitCallsReply) ([]Outcome, error) {
	var (
		proofs []*merkle.Proof
		ref    *blockRef
	)
	if rep.Block != nil {
		var root []byte
		root, proofs = merkle.ProofsFromByteSlices(rep.Leaves)
		if string(root) != string(rep.Block.Header.CallsRoot[:]) {
			return nil, errors.New("rpc: enclave reply's leaves do not hash to the block's calls root")
		}
		h, err := rep.Block.Header.Hash()
		if err != nil {
			return nil, err
		}
		ref = &blockRef{hash: h, signature: hex.EncodeToString(rep.Block.Signature)}
	}
	out := make([]Outcome, len(rep.Results))
	for i, r := range rep.Results {
		out[i] = Outcome{Status: r.Status, Reason: r.Reason}
		if r.Status == protocol.CallInvalid {
			continue
		}
		if rep.Block == nil || int(r.Index) >= len(proofs) {
			return nil, fmt.Errorf("rpc: call %d executed outside the reply's block", i)
		}
		out[i].Block, out[i].Proof, out[i].blockRef = rep.Block, proofs[r.Index], ref
	}
	return out, nil
}

// callResult builds the client's view of an outcome.
func callResult(hash [32]byte, o *Outcome) (*api.CallResult, error) {
	r := &api.CallResult{Hash: hex.EncodeToString(hash[:])}
	if o.Status == protocol.CallInvalid {
		r.Status, r.Reason = api.StatusInvalid, o.Reason
		return r, nil
	}
	r.Status = api.StatusExecuted
	r.Result = &api.ExecResult{Success: o.Status == protocol.CallExecuted}
	if !r.Result.Success {
		r.Result.Error = o.Reason
	}
	if o.Block == nil || o.Proof == nil || o.blockRef == nil {
		return nil, errors.New("executed call without its block")
	}
	r.Block = &api.BlockRef{Header: o.Block.Header, HeaderHash: o.blockRef.hash, Signature: o.blockRef.signature, Proof: api.NewProofJSON(o.Proof)}
	return r, nil
}
