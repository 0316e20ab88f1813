package enclave

import (
	"fmt"

	abci "github.com/cometbft/cometbft/abci/types"
	"github.com/cometbft/cometbft/crypto/merkle"

	"github.com/integritee-go/integritee/chain/bridge"
	"github.com/integritee-go/integritee/chain/sidechain"
	"github.com/integritee-go/integritee/chain/tx"
	"github.com/integritee-go/integritee/chain/types"
	"github.com/integritee-go/integritee/enclave/lightclient"
	"github.com/integritee-go/integritee/enclave/protocol"
	"github.com/integritee-go/integritee/enclave/shielding"
	"github.com/integritee-go/integritee/enclave/stf"
)

// decodeBlock turns the request into a light client block.
func (e *Enclave) decodeBlock(r *protocol.ProcessBlock) (*lightclient.Block, error) {
	hdr, err := protocol.DecodeSignedHeader(r.Block.SignedHeader, e.chainID)
	if err != nil {
		return nil, err
	}
	vals, err := protocol.DecodeValidatorSet(r.Block.Validators)
	if err != nil {
		return nil, err
	}
	next, err := protocol.DecodeSignedHeader(r.Next.SignedHeader, e.chainID)
	if err != nil {
		return nil, fmt.Errorf("next: %w", err)
	}
	nextVals, err := protocol.DecodeValidatorSet(r.Next.Validators)
	if err != nil {
		return nil, fmt.Errorf("next: %w", err)
	}
	results := make([]*abci.ExecTxResult, len(r.Results))
	for i, x := range r.Results {
		results[i] = &abci.ExecTxResult{Code: x.Code, Data: x.Data, GasWanted: x.GasWanted, GasUsed: x.GasUsed}
	}
	return &lightclient.Block{Header: hdr, Validators: vals, Txs: r.Txs, Results: results, Next: next, NextValidators: nextVals}, nil
}

// bridgeCall decodes a transaction into a bridge call of this shard, or
// returns nil. Transactions that are not bridge calls are none of the
// enclave's business; a successful transaction always decodes, since the
// chain decoded it.
func (e *Enclave) bridgeCall(raw []byte) any {
	stx, err := tx.Decode(raw)
	if err != nil || stx.Body.Call.Module != bridge.Name {
		return nil
	}
	switch stx.Body.Call.Method {
	case bridge.MethodInvoke:
		var m bridge.Invoke
		if stx.Body.Call.DecodeArgs(&m) == nil && m.Shard == types.Hash(e.shard) {
			return &m
		}
	case bridge.MethodShieldFunds:
		var m bridge.ShieldFunds
		if stx.Body.Call.DecodeArgs(&m) == nil && m.Shard == types.Hash(e.shard) {
			return &m
		}
	}
	return nil
}

func (e *Enclave) processBlock(r *protocol.ProcessBlock) (protocol.Reply, error) {
	b, err := e.decodeBlock(r)
	if err != nil {
		return nil, protocol.Errorf(protocol.CodeVerification, "%v", err)
	}
	if err := e.lc.Verify(b); err != nil {
		return nil, protocol.Errorf(protocol.CodeVerification, "%v", err)
	}
	height := b.Header.Height
	// The chain's confirmations of this shard's blocks come first: a state
	// that is not the confirmed one must not go on.
	for i, raw := range b.Txs {
		if b.Results[i].Code != abci.CodeTypeOK {
			continue
		}
		if h, ok := e.confirmedBlock(raw); ok {
			if err := e.checkConfirmed(h); err != nil {
				e.phase = phaseFailed
				e.log.Error("enclave stopped", "err", err)
				return nil, protocol.Errorf(protocol.CodeState, "%v", err)
			}
		}
	}
	env := e.env(height)
	batch := e.state.Begin()
	var (
		stats     protocol.Stats
		calls     [][32]byte
		out       []protocol.Outgoing
		unshields []sidechain.Unshield
	)
	for i, raw := range b.Txs {
		if b.Results[i].Code != abci.CodeTypeOK {
			continue
		}
		switch m := e.bridgeCall(raw).(type) {
		case *bridge.Invoke:
			stats.Invokes++
			calls = append(calls, tx.Hash(raw))
			pt, err := e.keys.Decrypt(shielding.InfoTrustedCall, m.Ciphertext)
			if err != nil {
				stats.Rejected++
				continue
			}
			res, err := e.rt.Apply(env, batch, pt)
			if err != nil {
				return nil, protocol.Errorf(protocol.CodeInternal, "apply call: %v", err)
			}
			switch res.Status {
			case stf.Rejected:
				stats.Rejected++
				continue
			case stf.Failed:
				stats.Failed++
				continue
			}
			stats.Applied++
			unshields = append(unshields, unshieldsOf(&res)...)
		case *bridge.ShieldFunds:
			stats.Shields++
			calls = append(calls, tx.Hash(raw))
			pt, err := e.keys.Decrypt(shielding.InfoShieldRecipient, m.EncryptedRecipient)
			if err != nil || len(pt) != tx.AddressLen {
				stats.ShieldsRejected++
				continue
			}
			if _, err := e.rt.Shield(env, batch, tx.Address(pt), m.Amount); err != nil {
				stats.ShieldsRejected++
			}
		}
	}

	// From here on the enclave's memory moves to the new height: a failure
	// leaves it ahead of what the host persisted, so it must restart.
	cs, err := e.state.Commit(batch, height)
	if err != nil {
		return nil, e.fail(fmt.Errorf("commit state: %w", err))
	}
	e.lc.Accept(b)
	e.pending = append(e.pending, calls...)
	var shardBlock *sidechain.SignedHeader
	if len(calls) > 0 {
		// The shard's calls of this chain block are one shard block, which
		// the chain must confirm before its unshields pay.
		h := e.chainHeader(height, b.Header.Time.UnixMilli(), calls, cs.Root)
		sb, o, err := e.sealBlock(h, unshields)
		if err != nil {
			return nil, e.fail(err)
		}
		shardBlock, out = sb, append(out, o...)
	}
	blockHash := b.Header.Hash()
	if height%e.confirmEvery == 0 {
		c, err := tx.NewCall(bridge.Name, bridge.MethodConfirmProcessedBlock, bridge.ConfirmProcessedBlock{
			Shard: types.Hash(e.shard), Height: uint64(height), BlockHash: types.Hash(blockHash),
			CallsRoot: types.Hash(callsRoot(e.pending)), StateHash: types.Hash(cs.Root),
		})
		if err != nil {
			return nil, e.fail(fmt.Errorf("confirm call: %w", err))
		}
		o, err := e.outgoing(c)
		if err != nil {
			return nil, e.fail(err)
		}
		out = append(out, o)
		e.pending = nil
	}
	hdr, err := protocol.EncodeSignedHeader(b.Header)
	if err != nil {
		return nil, e.fail(err)
	}
	ckpt, err := e.sealCheckpoint(&checkpoint{
		ChainID: e.chainID, Signer: e.signerAddress(), Height: height, Root: cs.Root,
		Entries: uint64(e.state.Len()), Header: hdr, Pending: e.pending,
	})
	if err != nil {
		return nil, e.fail(fmt.Errorf("seal checkpoint: %w", err))
	}
	rep := &protocol.ProcessBlockReply{
		Height: height, BlockHash: blockHash, StateRoot: cs.Root, Checkpoint: ckpt,
		Outgoing: out, Stats: stats, Changes: make([]protocol.Entry, len(cs.Entries)), Block: shardBlock,
	}
	for i, x := range cs.Entries {
		rep.Changes[i] = protocol.Entry{Key: x.Key, Value: x.Value}
	}
	e.log.Debug("block processed", "height", height, "changes", len(rep.Changes), "invokes", stats.Invokes, "applied", stats.Applied)
	return rep, nil
}

func unshields(evs []stf.Event) []stf.Unshield {
	var out []stf.Unshield
	for _, ev := range evs {
		if ev.Unshield != nil {
			out = append(out, *ev.Unshield)
		}
	}
	return out
}

// callsRoot is the Merkle root (CometBFT's RFC 6962 tree, as for the data
// hash) of the hashes of the shard's bridge transactions since the last
// confirmation, in chain order.
func callsRoot(calls [][32]byte) [32]byte {
	items := make([][]byte, len(calls))
	for i := range calls {
		items[i] = calls[i][:]
	}
	return [32]byte(merkle.HashFromByteSlices(items))
}
