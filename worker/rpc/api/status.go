package api

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"

	"github.com/cometbft/cometbft/crypto/merkle"

	"github.com/integritee-go/integritee/chain/sidechain"
	"github.com/integritee-go/integritee/chain/types"
)

// Statuses of a watched call, in the order they are sent.
const (
	StatusSubmitted = "submitted"
	StatusExecuted  = "executed"
	StatusInvalid   = "invalid"
	StatusConfirmed = "confirmed"
)

// StatusParams are the params of a NotificationTrustedCallStatus
// notification.
type StatusParams struct {
	Subscription string      `json:"subscription"`
	Result       *CallResult `json:"result"`
}

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

// NewProofJSON returns p for the wire.
func NewProofJSON(p *merkle.Proof) ProofJSON {
	j := ProofJSON{Index: p.Index, Total: p.Total}
	for _, a := range p.Aunts {
		j.Aunts = append(j.Aunts, hex.EncodeToString(a))
	}
	return j
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
