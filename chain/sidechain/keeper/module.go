// Package keeper is the sidechain module's state machine: it confirms each
// shard's one chain of blocks (calls of package sidechain) in the chain's
// state, taking membership from teerex and measurements from the bridge.
package keeper

import (
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/integritee-go/integritee/chain/bridge"
	"github.com/integritee-go/integritee/chain/runtime"
	"github.com/integritee-go/integritee/chain/sidechain"
	"github.com/integritee-go/integritee/chain/store"
	"github.com/integritee-go/integritee/chain/teerex"
	"github.com/integritee-go/integritee/chain/tx"
	"github.com/integritee-go/integritee/chain/types"
)

// Registry reports whether an enclave may act, and how many of a
// measurement may, up to a limit (teerexkeeper.Keeper).
type Registry interface {
	Active(r store.Reader, signer tx.Address, now time.Time) (teerex.Enclave, error)
	OtherActiveOf(r store.Reader, m types.Hash, except tx.Address, registeredBy int64, now time.Time) (bool, error)
}

// Shards returns a shard's record, with the measurement serving it
// (*bridgekeeper.Module).
type Shards interface {
	Shard(r store.Reader, id types.Hash) (bridge.Shard, error)
}

// Module is the sidechain module.
type Module struct {
	registry Registry
	shards   Shards
}

var _ runtime.Module = (*Module)(nil)

// New returns the module on its dependencies, both required (New(nil, nil)
// serves DecodeCall and QueryKey only).
func New(registry Registry, shards Shards) *Module {
	return &Module{registry: registry, shards: shards}
}

// Name implements runtime.Module.
func (*Module) Name() string { return sidechain.Name }

// DecodeCall implements runtime.Module.
func (*Module) DecodeCall(call tx.Call) (runtime.Msg, error) {
	if call.Method != sidechain.MethodConfirmSidechainBlock {
		return nil, fmt.Errorf("%w: %s.%s", types.ErrUnknownCall, sidechain.Name, call.Method)
	}
	var m sidechain.ConfirmSidechainBlock
	if err := call.DecodeArgs(&m); err != nil {
		return nil, fmt.Errorf("%w: %w", types.ErrMalformedCall, err)
	}
	if m.Header.Number == 0 {
		return nil, fmt.Errorf("%w: %s.%s: block numbers start at 1", types.ErrMalformedCall, sidechain.Name, call.Method)
	}
	return &m, nil
}

// Execute implements runtime.Module.
func (m *Module) Execute(ctx *runtime.Context, msg runtime.Msg) error {
	if m.registry == nil || m.shards == nil {
		// A wiring mistake, not the transaction's fault: halt loudly.
		return errors.New("sidechain: module built without registry or shards")
	}
	c, ok := msg.(*sidechain.ConfirmSidechainBlock)
	if !ok {
		return fmt.Errorf("%w: sidechain cannot execute %T", types.ErrUnknownCall, msg)
	}
	return m.confirm(ctx, c)
}

// Latest returns the shard's latest confirmation, if any.
func (m *Module) Latest(r store.Reader, shard types.Hash) (sidechain.Confirmation, bool, error) {
	var c sidechain.Confirmation
	ok, err := runtime.Get(r, sidechain.ShardKey(shard), &c)
	if err == nil && ok && c.Shard != shard {
		return c, false, fmt.Errorf("%w: record of %s names %s", sidechain.ErrCorruptShardRecord, shard, c.Shard)
	}
	return c, ok, err
}

// Block returns the confirmation of a shard's block number, if any.
func (m *Module) Block(r store.Reader, shard types.Hash, number uint64) (sidechain.Confirmation, bool, error) {
	var c sidechain.Confirmation
	ok, err := runtime.Get(r, sidechain.BlockKey(shard, number), &c)
	return c, ok, err
}

// height is the current block height; genesis and block heights are
// positive.
func height(ctx *runtime.Context) uint64 { return uint64(max(ctx.Height, 0)) }

func (m *Module) confirm(ctx *runtime.Context, msg *sidechain.ConfirmSidechainBlock) error {
	h := &msg.Header
	e, err := m.registry.Active(ctx.Store, ctx.Sender, ctx.Time)
	if err != nil {
		var re *types.Error
		if errors.As(err, &re) {
			return fmt.Errorf("%w: %w", sidechain.ErrNotActive, err)
		}
		return err
	}
	s, err := m.shards.Shard(ctx.Store, h.Shard)
	if err != nil {
		return err
	}
	measurement := s.MRENCLAVEAt(height(ctx))
	if e.MRENCLAVE != measurement {
		return fmt.Errorf("%w: %s runs %s, shard %s is served by %s", sidechain.ErrNotShardEnclave, ctx.Sender, e.MRENCLAVE, h.Shard, measurement)
	}
	hash, err := h.Hash()
	if err != nil {
		return fmt.Errorf("%w: %w", types.ErrMalformedCall, err)
	}
	latest, seen, err := m.Latest(ctx.Store, h.Shard)
	if err != nil {
		return err
	}
	if seen && h.Number <= latest.Number {
		have, _, err := m.Block(ctx.Store, h.Shard, h.Number)
		if err != nil {
			return err
		}
		if have.HeaderHash == hash {
			return fmt.Errorf("%w: block %d of shard %s", sidechain.ErrAlreadyConfirmed, h.Number, h.Shard)
		}
		return fmt.Errorf("%w: block %d %s, the shard confirmed %s (latest %d)", sidechain.ErrForkedBlock, h.Number, hash, have.HeaderHash, latest.Number)
	}
	var parent types.Hash
	var next uint64 = 1
	var minHeight int64
	if seen {
		parent, next, minHeight = latest.HeaderHash, latest.Number+1, latest.ChainHeight
	}
	if h.Number != next || h.ParentHash != parent {
		return fmt.Errorf("%w: block %d with parent %s, the next is %d with parent %s", sidechain.ErrForkedBlock, h.Number, h.ParentHash, next, parent)
	}
	// A block applies chain blocks that are committed, in chain order.
	if h.ChainHeight < minHeight || h.ChainHeight >= ctx.Height {
		return fmt.Errorf("%w: %d, parent's %d, current block %d", sidechain.ErrChainHeight, h.ChainHeight, minHeight, ctx.Height)
	}
	if h.Direct() {
		if h.Author != ctx.Sender {
			return fmt.Errorf("%w: author %s, sender %s", sidechain.ErrNotAuthor, h.Author, ctx.Sender)
		}
		// Another active enclave of the measurement that was registered
		// by the chain height this block sits at may have applied the
		// chain's calls to a state without this block: refuse. One that
		// registered later joined after it (provisioned from a later
		// state), so it cannot hold this block back: a registration
		// racing an unconfirmed direct block would otherwise freeze the
		// shard, since every later block of its author builds on it.
		other, err := m.registry.OtherActiveOf(ctx.Store, measurement, h.Author, h.ChainHeight, ctx.Time)
		if err != nil {
			return err
		}
		if other {
			return fmt.Errorf("%w: another active enclave of %s was registered by chain height %d", sidechain.ErrSeveralEnclaves, measurement, h.ChainHeight)
		}
	}
	c := sidechain.Confirmation{
		Shard: h.Shard, Number: h.Number, HeaderHash: hash, ChainHeight: h.ChainHeight, StateHash: h.StateHash,
		UnshieldsRoot: h.UnshieldsRoot, Author: h.Author, Enclave: ctx.Sender, ConfirmedHeight: height(ctx),
	}
	if err := runtime.Put(ctx.Store, sidechain.ShardKey(h.Shard), c); err != nil {
		return err
	}
	if err := runtime.Put(ctx.Store, sidechain.BlockKey(h.Shard, h.Number), c); err != nil {
		return err
	}
	ctx.Emit(sidechain.EventBlockConfirmed, "shard", h.Shard.String(), "number", strconv.FormatUint(h.Number, 10),
		"header_hash", hash.String(), "enclave", ctx.Sender.String())
	return nil
}

// UnshieldsRoot returns the unshields root of a confirmed block of the
// shard; ok is false if the shard has not confirmed that number
// (bridgekeeper.ShardBlocks).
func (m *Module) UnshieldsRoot(r store.Reader, shard types.Hash, number uint64) (types.Hash, bool, error) {
	c, ok, err := m.Block(r, shard, number)
	if err != nil || !ok {
		return types.Hash{}, false, err
	}
	if c.Shard != shard || c.Number != number {
		return types.Hash{}, false, fmt.Errorf("%w: record of %s/%d names %s/%d", sidechain.ErrCorruptShardRecord, shard, number, c.Shard, c.Number)
	}
	return c.UnshieldsRoot, true, nil
}

// QueryKey implements runtime.Module.
func (*Module) QueryKey(path []string) ([]byte, error) {
	bad := errors.New("query path: want /sidechain/shard/<hex shard> or /sidechain/block/<hex shard>/<number>")
	if len(path) < 2 {
		return nil, bad
	}
	shard, err := types.ParseHash(path[1])
	if err != nil {
		return nil, fmt.Errorf("query path: shard: %w", err)
	}
	switch {
	case path[0] == "shard" && len(path) == 2:
		return sidechain.ShardKey(shard), nil
	case path[0] == "block" && len(path) == 3:
		n, err := strconv.ParseUint(path[2], 10, 64)
		if err != nil {
			return nil, fmt.Errorf("query path: number: %w", err)
		}
		return sidechain.BlockKey(shard, n), nil
	}
	return nil, bad
}
