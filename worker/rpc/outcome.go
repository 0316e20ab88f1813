package rpc

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/cometbft/cometbft/crypto/merkle"

	"github.com/integritee-go/integritee/chain/sidechain"
	"github.com/integritee-go/integritee/chain/types"
	"github.com/integritee-go/integritee/enclave/protocol"
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
}

// Outcomes turns an enclave reply into one Outcome per submitted call.
func Outcomes(rep *protocol.SubmitCallsReply) ([]Outcome, error) {
	var proofs []*merkle.Proof
	if rep.Block != nil {
		var root []byte
		root, proofs = merkle.ProofsFromByteSlices(rep.Leaves)
		if string(root) != string(rep.Block.Header.CallsRoot[:]) {
			return nil, errors.New("rpc: enclave reply's leaves do not hash to the block's calls root")
		}
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
		out[i].Block, out[i].Proof = rep.Block, proofs[r.Index]
	}
	return out, nil
}

// Statuses of a watched call, in the order they are sent.
const (
	StatusSubmitted = "submitted"
	StatusExecuted  = "executed"
	StatusInvalid   = "invalid"
	StatusConfirmed = "confirmed"
)

// CallResult is the result of author_submitTrustedCall and the payload of
// every status notification.
type CallResult struct {
	// Hash is the SHA-256 of the call's ciphertext: its identity here.
	Hash   string `json:"hash"`
	Status string `json:"status"`
	// Reason is why an invalid call was refused.
	Reason string `json:"reason,omitempty"`
	// Result is an executed call's result: Success is false for a call
	// the STF refused (its nonce is consumed), with the refusal's class.
	Result *ExecResult `json:"result,omitempty"`
	// Block is the shard block holding the call (executed, confirmed).
	Block *BlockRef `json:"block,omitempty"`
}

// ExecResult is the result of an executed call.
type ExecResult struct {
	Success bool   `json:"success"`
	Error   string `json:"error,omitempty"`
}

// BlockRef is a shard block as a client checks it: the enclave-signed
// header, its hash, and the call's Merkle proof under CallsRoot.
type BlockRef struct {
	Header     sidechain.Header `json:"header"`
	HeaderHash types.Hash       `json:"header_hash"`
	Signature  string           `json:"signature"`
	Proof      ProofJSON        `json:"proof"`
}

// ProofJSON is a merkle.Proof with hex aunts.
type ProofJSON struct {
	Index int64    `json:"index"`
	Total int64    `json:"total"`
	Aunts []string `json:"aunts"`
}

// Merkle returns the proof as CometBFT's type, for the leaf leaf.
func (p *ProofJSON) Merkle(leaf []byte) (*merkle.Proof, error) {
	mp := &merkle.Proof{Index: p.Index, Total: p.Total, LeafHash: merkleLeafHash(leaf)}
	for _, a := range p.Aunts {
		b, err := hex.DecodeString(a)
		if err != nil {
			return nil, fmt.Errorf("proof aunt: %w", err)
		}
		mp.Aunts = append(mp.Aunts, b)
	}
	return mp, nil
}

// merkleLeafHash is RFC 6962's leaf hash, as merkle.HashFromByteSlices.
func merkleLeafHash(leaf []byte) []byte {
	h := sha256.Sum256(append([]byte{0}, leaf...))
	return h[:]
}

// Signed returns the header with its signature.
func (b *BlockRef) Signed() (*sidechain.SignedHeader, error) {
	sig, err := hex.DecodeString(b.Signature)
	if err != nil {
		return nil, fmt.Errorf("block signature: %w", err)
	}
	return &sidechain.SignedHeader{Header: b.Header, Signature: sig}, nil
}

// callResult builds the client's view of an outcome.
func callResult(hash [32]byte, o *Outcome) (*CallResult, error) {
	r := &CallResult{Hash: hex.EncodeToString(hash[:])}
	if o.Status == protocol.CallInvalid {
		r.Status, r.Reason = StatusInvalid, o.Reason
		return r, nil
	}
	r.Status = StatusExecuted
	r.Result = &ExecResult{Success: o.Status == protocol.CallExecuted}
	if !r.Result.Success {
		r.Result.Error = o.Reason
	}
	if o.Block == nil || o.Proof == nil {
		return nil, errors.New("executed call without its block")
	}
	h, err := o.Block.Header.Hash()
	if err != nil {
		return nil, err
	}
	ref := &BlockRef{Header: o.Block.Header, HeaderHash: h, Signature: hex.EncodeToString(o.Block.Signature),
		Proof: ProofJSON{Index: o.Proof.Index, Total: o.Proof.Total}}
	for _, a := range o.Proof.Aunts {
		ref.Proof.Aunts = append(ref.Proof.Aunts, hex.EncodeToString(a))
	}
	r.Block = ref
	return r, nil
}
