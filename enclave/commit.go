package enclave

import (
	"fmt"

	cmttypes "github.com/cometbft/cometbft/types"

	"github.com/integritee-go/integritee/chain/bridge"
	"github.com/integritee-go/integritee/chain/sidechain"
	"github.com/integritee-go/integritee/chain/tx"
	"github.com/integritee-go/integritee/chain/types"
	"github.com/integritee-go/integritee/enclave/lightclient"
	"github.com/integritee-go/integritee/enclave/protocol"
	"github.com/integritee-go/integritee/enclave/state"
)

// A transition is the state change of one request, applied to a batch but
// not yet committed: a verified chain block (ProcessBlock) or a batch of
// direct calls (SubmitCalls). Both requests end in commit, so the state,
// the shard chain, the light client and the checkpoint move on together
// and in one way, whichever request moved them.
type transition struct {
	batch     *state.Batch
	unshields []sidechain.Unshield

	// chain is the verified chain block, nil for direct calls; calls are
	// the hashes of its shard's bridge transactions, in chain order.
	chain *lightclient.Block
	calls [][32]byte

	// leaves are the direct calls' leaves (sidechain.CallLeaf), and
	// hostTime the host's clock for the direct block's header.
	leaves   [][]byte
	hostTime int64
	// author proposed the direct calls: this enclave, or with replication
	// the group member that received them.
	author tx.Address
}

// committed is what the host persists of a transition in one atomic batch
// (protocol's host duties).
type committed struct {
	root       [32]byte
	changes    []protocol.Entry
	block      *sidechain.SignedHeader // nil: the transition made no shard block
	outgoing   []protocol.Outgoing
	checkpoint []byte
}

// commit makes t the enclave's state: it commits the batch, moves the
// light client and the calls pending confirmation on (a chain block),
// seals the shard block (a chain block with shard calls, or direct calls),
// adds the chain block's confirm_processed_block when one is due
// (heartbeatDue), and seals the checkpoint of the result.
//
// From its first step the enclave's memory is ahead of what the host has
// persisted: any failure stops the enclave (fail), and the host restarts
// it from its last persisted checkpoint.
func (e *Enclave) commit(t transition) (*committed, error) {
	var (
		hdr         *sidechain.Header
		nonceHeight int64
		confirm     bool
	)
	if t.chain != nil {
		nonceHeight = t.chain.Header.Height
	} else {
		// A direct block sits on the light client's last block and the
		// shard's last block.
		h := e.directHeader(t.leaves, t.hostTime, t.author)
		hdr, nonceHeight = &h, sidechainNonceHeight(h.Number)
	}
	cs, err := e.state.Commit(t.batch, nonceHeight)
	if err != nil {
		return nil, e.fail(fmt.Errorf("commit state: %w", err))
	}
	if t.chain != nil {
		// The window is judged against the block before, which the light
		// client trusts until it accepts this one.
		heartbeat := e.heartbeatDue(e.lc.Trusted(), t.chain.Header)
		e.lc.Accept(t.chain)
		e.pending = append(e.pending, t.calls...)
		confirm = heartbeat || len(e.pending) > 0 || cs.Root != e.confirmed
		if len(t.calls) > 0 {
			// The shard's calls of this chain block are one shard block,
			// which the chain must confirm before its unshields pay.
			h := e.chainHeader(t.chain.Header.Height, t.chain.Header.Time.UnixMilli(), t.calls, cs.Root)
			hdr = &h
		}
	} else {
		hdr.StateHash = types.Hash(cs.Root)
	}
	c := &committed{root: cs.Root, changes: make([]protocol.Entry, len(cs.Entries))}
	for i, x := range cs.Entries {
		c.changes[i] = protocol.Entry{Key: x.Key, Value: x.Value}
	}
	if hdr != nil {
		if c.block, c.outgoing, err = e.sealBlock(*hdr, t.unshields); err != nil {
			return nil, e.fail(err)
		}
	}
	if confirm {
		o, err := e.confirmProcessed(t.chain.Header.Height, t.chain.Header.Hash(), cs.Root)
		if err != nil {
			return nil, e.fail(err)
		}
		c.outgoing = append(c.outgoing, o)
		e.pending, e.confirmed = nil, cs.Root
	}
	if !e.serving(e.lc.Height()) && !e.next() {
		// A measurement the shard's configuration does not name: the chain
		// would refuse its calls. The next release's calls are refused too
		// until its enactment height, but its host keeps them and they
		// pass from then on: that is how the shard blocks and unshields
		// the old release left unconfirmed at that height get confirmed.
		c.outgoing = nil
	}
	lcHeader, err := protocol.EncodeSignedHeader(e.lc.Trusted())
	if err != nil {
		return nil, e.fail(err)
	}
	if c.checkpoint, err = e.sealCheckpoint(&checkpoint{
		ChainID: e.chainID, Signer: e.signerAddress(), Height: e.lc.Height(), Root: cs.Root,
		Entries: uint64(e.state.Len()), Header: lcHeader, Pending: e.pending, Confirmed: e.confirmed,
	}); err != nil {
		return nil, e.fail(fmt.Errorf("seal checkpoint: %w", err))
	}
	return c, nil
}

// confirmProcessed is the confirm_processed_block of chain block height:
// its hash, the root of the shard's calls since the last confirmation and
// the state hash after it.
func (e *Enclave) confirmProcessed(height int64, blockHash []byte, root [32]byte) (protocol.Outgoing, error) {
	c, err := tx.NewCall(bridge.Name, bridge.MethodConfirmProcessedBlock, bridge.ConfirmProcessedBlock{
		Shard: types.Hash(e.shard), Height: uint64(height), BlockHash: types.Hash(blockHash),
		CallsRoot: types.Hash(callsRoot(e.pending)), StateHash: types.Hash(root),
	})
	if err != nil {
		return protocol.Outgoing{}, fmt.Errorf("confirm call: %w", err)
	}
	return e.outgoing(c)
}

// maxHeartbeat bounds the confirmation heartbeat (a year): a larger value
// means no heartbeat, and window arithmetic stays far from overflow.
const maxHeartbeat = 365 * 24 * 3600 * 1000

// heartbeatDue tells whether chain block hdr, whose predecessor is prev
// (nil for the chain's first block), is due a confirmation although it
// changed nothing: with a heartbeat, when it is the first block of a window
// of heartbeat milliseconds of block time; without, always.
//
// Confirmations that follow changes and heartbeats depend only on verified
// chain data and the shard's ordered state, so every enclave of the shard
// confirms the same heights and the bridge compares their state hashes at
// each (its divergence check). The heartbeat comes from the host, which
// can only make confirmations more or less frequent: a host could always
// withhold them, so it is liveness, never trust.
func (e *Enclave) heartbeatDue(prev, hdr *cmttypes.SignedHeader) bool {
	if e.heartbeat <= 0 || prev == nil {
		return true
	}
	return window(hdr.Time.UnixMilli(), e.heartbeat) != window(prev.Time.UnixMilli(), e.heartbeat)
}

// window is the heartbeat window of block time ms (floored, also before
// 1970).
func window(ms, heartbeat int64) int64 {
	w := ms / heartbeat
	if ms%heartbeat < 0 {
		w--
	}
	return w
}
