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
	if e.repl.node != nil {
		return e.proposeChain(b)
	}
	if err := e.outsideLog(); err != nil {
		return nil, err
	}
	return e.applyChain(b)
}

// applyChain applies the shard's calls of verified chain block b and
// commits.
func (e *Enclave) applyChain(b *lightclient.Block) (*protocol.ProcessBlockReply, error) {
	height := b.Header.Height
	// The shard's configuration first: an enclave of the release that
	// served until this block retires here, before applying anything.
	served := e.serving(height - 1)
	e.followConfig(b)
	if served && !e.serving(height) {
		e.retire(height)
		return nil, e.retiredError()
	}
	// The chain's confirmations of this shard's blocks come first: a state
	// that is not the confirmed one must not go on.
	for i, raw := range b.Txs {
		if b.Results[i].Code != abci.CodeTypeOK {
			continue
		}
		// A vote is not a confirmation: only the vote that confirmed its
		// block carries sidechain.ResultConfirmed in its (verified)
		// result, followed by the last block it confirmed from votes
		// recorded early, if any; a run of votes that confirmed blocks
		// names the last of them.
		h, ok := e.shardVote(raw)
		if !ok {
			continue
		}
		last, lastHash, through, ok := sidechain.ParseConfirmedResult(b.Results[i].Data)
		if !ok {
			continue
		}
		var err error
		if h != nil {
			hash, herr := h.Hash()
			if herr != nil {
				continue // the chain would not have accepted it
			}
			err = e.checkConfirmed(h.Number, hash)
		}
		// A run's data always names its last block (through).
		if err == nil && through {
			// Headers are hash-chained: the last one holds this
			// enclave to every block in between.
			err = e.checkConfirmed(last, lastHash)
		}
		if err != nil {
			e.phase = phaseFailed
			e.log.Error("enclave stopped", "err", err)
			return nil, protocol.Errorf(protocol.CodeState, "%v", err)
		}
	}
	batch := e.state.Begin()
	if e.serving(height) {
		// From the first block this release serves, the state is in its
		// format.
		if err := e.migrate(batch); err != nil {
			return nil, e.fail(err)
		}
	}
	// The signature rule is the (migrated) state's, not this build's:
	// until it serves, a new release checks its predecessor's calls as
	// the predecessor does.
	env, err := e.env(height, batch)
	if err != nil {
		return nil, e.fail(err)
	}
	var (
		stats     protocol.Stats
		calls     [][32]byte
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

	// commit moves the enclave on; the host persists the reply.
	c, err := e.commit(transition{batch: batch, unshields: unshields, chain: b, calls: calls})
	if err != nil {
		return nil, err
	}
	rep := &protocol.ProcessBlockReply{
		Height: height, BlockHash: b.Header.Hash(), StateRoot: c.root, Checkpoint: c.checkpoint,
		Outgoing: c.outgoing, Stats: stats, Changes: c.changes, Block: c.block,
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
