package enclave

import (
	"fmt"

	"github.com/cometbft/cometbft/crypto/merkle"

	"github.com/integritee-go/integritee/chain/sidechain"
	"github.com/integritee-go/integritee/chain/teerex"
	"github.com/integritee-go/integritee/enclave/protocol"
)

// sidechainHead is the last shard block of direct calls: what the next
// block chains to. It travels in the sealed checkpoint.
type sidechainHead struct {
	Number    uint64   `cbor:"number"`
	Hash      [32]byte `cbor:"hash"`
	Timestamp int64    `cbor:"timestamp"`
}

// sidechainNonceHeight is the height argument of state.Commit for shard
// block n: negative, so a shard block never shares the synthetic nonce
// input of a chain block, and the same for every enclave of the shard.
func sidechainNonceHeight(n uint64) int64 { return -int64(n) }

// nextHeader returns the header of the shard block after e.side holding
// leaves with state hash root.
func (e *Enclave) nextHeader(leaves [][]byte, root [32]byte, hostTime int64) sidechain.Header {
	h := sidechain.Header{
		Shard: teerex.Hash(e.shard), Number: 1, ChainHeight: e.lc.Height(),
		CallsRoot: teerex.Hash(merkle.HashFromByteSlices(leaves)), StateHash: teerex.Hash(root),
		Timestamp: hostTime, Author: e.signerAddress(),
	}
	if t := e.lc.Trusted(); t != nil {
		// The host's clock is untrusted: never before the chain's.
		h.Timestamp = max(h.Timestamp, t.Time.UnixMilli())
	}
	if e.side != nil {
		h.Number, h.ParentHash = e.side.Number+1, teerex.Hash(e.side.Hash)
		h.Timestamp = max(h.Timestamp, e.side.Timestamp)
	}
	return h
}

// sealBlock signs the header and returns it with its confirmation call.
func (e *Enclave) sealBlock(h sidechain.Header) (*sidechain.SignedHeader, protocol.Outgoing, error) {
	hash, err := h.Hash()
	if err != nil {
		return nil, protocol.Outgoing{}, err
	}
	c, err := sidechain.ConfirmCall(h.Shard, h.Number, hash)
	if err != nil {
		return nil, protocol.Outgoing{}, fmt.Errorf("confirm call: %w", err)
	}
	o, err := e.outgoing(c)
	if err != nil {
		return nil, protocol.Outgoing{}, err
	}
	e.side = &sidechainHead{Number: h.Number, Hash: hash, Timestamp: h.Timestamp}
	return &sidechain.SignedHeader{Header: h, Signature: e.keys.Sign(hash[:])}, o, nil
}
