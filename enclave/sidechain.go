package enclave

import (
	"fmt"

	"github.com/cometbft/cometbft/crypto/merkle"

	"github.com/integritee-go/integritee/chain/sidechain"
	"github.com/integritee-go/integritee/chain/tx"
	"github.com/integritee-go/integritee/chain/types"
	"github.com/integritee-go/integritee/enclave/protocol"
	"github.com/integritee-go/integritee/enclave/stf"
)

// maxRecent bounds the blocks this enclave remembers until it sees them
// confirmed; older ones are forgotten (the chain still refuses their
// forks, the enclave just cannot notice them itself: a host that makes a
// rolled-back enclave seal more blocks than this before feeding it the
// confirmation keeps it answering getters on the fork, never paying).
const maxRecent = 1024

// sidechainHead is a shard block this enclave produced: the last one is
// what the next block chains to. It travels in the sealed checkpoint.
type sidechainHead struct {
	Number    uint64   `cbor:"number"`
	Hash      [32]byte `cbor:"hash"`
	Timestamp int64    `cbor:"timestamp"`
}

// sidechainNonceHeight is the height argument of state.Commit for shard
// block n: negative, so a shard block never shares the synthetic nonce
// input of a chain block, and the same for every enclave of the shard.
func sidechainNonceHeight(n uint64) int64 { return -int64(n) }

// parent fills in what a new header chains to: the number, the parent
// hash, and a timestamp never before the parent's.
func (e *Enclave) parent(h *sidechain.Header) {
	h.Number = 1
	if e.side != nil {
		h.Number, h.ParentHash = e.side.Number+1, types.Hash(e.side.Hash)
		h.Timestamp = max(h.Timestamp, e.side.Timestamp)
	}
}

// directHeader returns the header of the direct block after e.side holding
// leaves.
func (e *Enclave) directHeader(leaves [][]byte, hostTime int64, author tx.Address) sidechain.Header {
	h := sidechain.Header{
		Shard: types.Hash(e.shard), ChainHeight: e.lc.Height(),
		CallsRoot: types.Hash(merkle.HashFromByteSlices(leaves)),
		Timestamp: hostTime, Author: author,
	}
	if t := e.lc.Trusted(); t != nil {
		// The host's clock is untrusted: never before the chain's.
		h.Timestamp = max(h.Timestamp, t.Time.UnixMilli())
	}
	e.parent(&h)
	return h
}

// chainHeader returns the header of the chain block for the shard's calls
// (their transaction hashes, in chain order) of chain block height, whose
// header time is chainTime. Only chain data goes into it, so every enclave
// of the shard derives the same one.
func (e *Enclave) chainHeader(height int64, chainTime int64, calls [][32]byte, root [32]byte) sidechain.Header {
	h := sidechain.Header{
		Shard: types.Hash(e.shard), ChainHeight: height, CallsRoot: types.Hash(callsRoot(calls)),
		StateHash: types.Hash(root), Timestamp: chainTime,
	}
	e.parent(&h)
	return h
}

// unshieldsOf lists the unshields a call's events ask for.
func unshieldsOf(res *stf.Result) []sidechain.Unshield {
	var out []sidechain.Unshield
	for j, ev := range unshields(res.Events) {
		out = append(out, sidechain.Unshield{Beneficiary: ev.Beneficiary, Amount: ev.Amount, CallHash: types.Hash(res.UnshieldHash(j))})
	}
	return out
}

// sealBlock completes the header with the unshields root, makes it the
// head, and returns it signed with its outgoing calls: the confirmation
// first, then one unshield_funds per unshield, each with its proof.
func (e *Enclave) sealBlock(h sidechain.Header, us []sidechain.Unshield) (*sidechain.SignedHeader, []protocol.Outgoing, error) {
	root, proofs := sidechain.UnshieldsRoot(us)
	h.UnshieldsRoot = root
	hash, err := h.Hash()
	if err != nil {
		return nil, nil, err
	}
	calls := make([]tx.Call, 0, 1+len(us))
	c, err := sidechain.ConfirmCall(h)
	if err != nil {
		return nil, nil, fmt.Errorf("confirm call: %w", err)
	}
	calls = append(calls, c)
	for i, u := range us {
		c, err := sidechain.UnshieldCall(h.Shard, h.Number, u, proofs[i])
		if err != nil {
			return nil, nil, fmt.Errorf("unshield call: %w", err)
		}
		calls = append(calls, c)
	}
	out := make([]protocol.Outgoing, len(calls))
	for i, c := range calls {
		if out[i], err = e.outgoing(c); err != nil {
			return nil, nil, err
		}
	}
	head := sidechainHead{Number: h.Number, Hash: hash, Timestamp: h.Timestamp}
	e.side = &head
	e.recent = append(e.recent, head)
	if len(e.recent) > maxRecent {
		e.recent = e.recent[len(e.recent)-maxRecent:]
	}
	return &sidechain.SignedHeader{Header: h, Signature: e.keys.Sign(hash[:])}, out, nil
}

// shardVote reports whether a transaction is a vote for this shard's
// blocks: a confirm_sidechain_block (h is its header) or a
// confirm_sidechain_blocks (h is nil: its result data names the last block
// it confirmed).
func (e *Enclave) shardVote(raw []byte) (h *sidechain.Header, ok bool) {
	stx, err := tx.Decode(raw)
	if err != nil || stx.Body.Call.Module != sidechain.Name {
		return nil, false
	}
	switch stx.Body.Call.Method {
	case sidechain.MethodConfirmSidechainBlock:
		var m sidechain.ConfirmSidechainBlock
		if stx.Body.Call.DecodeArgs(&m) != nil || m.Header.Shard != types.Hash(e.shard) {
			return nil, false
		}
		return &m.Header, true
	case sidechain.MethodConfirmSidechainBlocks:
		var m sidechain.ConfirmSidechainBlocks
		if stx.Body.Call.DecodeArgs(&m) != nil || len(m.Headers) == 0 || m.Headers[0].Shard != types.Hash(e.shard) {
			return nil, false
		}
		return nil, true
	}
	return nil, false
}

// checkConfirmed holds this enclave to the shard blocks the chain
// confirmed in a verified block (number and header hash): each must be one
// it produced. A confirmed block beyond its head, or one of its numbers
// with another hash, means its state is not the shard's confirmed state
// (its host restored an old copy of the store, or it was provisioned from
// a diverged peer).
func (e *Enclave) checkConfirmed(number uint64, hash types.Hash) error {
	stale := func(why string) error {
		return fmt.Errorf("%w: the chain confirmed shard block %d (%s) %s; this state is not the shard's confirmed state "+
			"(an old copy of the store, or a diverged peer): provision this worker again", ErrRolledBack, number, hash, why)
	}
	if e.side == nil || number > e.side.Number {
		head := uint64(0)
		if e.side != nil {
			head = e.side.Number
		}
		return stale(fmt.Sprintf("but this enclave is at block %d", head))
	}
	for i, r := range e.recent {
		if r.Number != number {
			continue
		}
		if r.Hash != hash {
			return stale(fmt.Sprintf("but this enclave's block %d is %x", r.Number, r.Hash))
		}
		e.recent = e.recent[i+1:]
		break
	}
	return nil
}
