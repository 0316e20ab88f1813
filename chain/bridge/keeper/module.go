// Package keeper is the enclave bridge's state machine: it executes the
// calls of package bridge against the chain's state (shard records,
// confirmations, unshields) and moves funds through the accounts keeper.
package keeper

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"time"

	abci "github.com/cometbft/cometbft/abci/types"

	"github.com/integritee-go/integritee/chain/bridge"
	"github.com/integritee-go/integritee/chain/runtime"
	"github.com/integritee-go/integritee/chain/store"
	"github.com/integritee-go/integritee/chain/teerex"
	"github.com/integritee-go/integritee/chain/tx"
	"github.com/integritee-go/integritee/chain/types"
)

// ShardBlocks reports the unshields root of a confirmed shard block
// (sidechainkeeper.Module).
type ShardBlocks interface {
	UnshieldsRoot(r store.Reader, shard types.Hash, number uint64) (types.Hash, bool, error)
}

// Registry reports whether an enclave may act (teerexkeeper.Keeper).
type Registry interface {
	Active(r store.Reader, signer tx.Address, now time.Time) (teerex.Enclave, error)
}

// Bank moves funds and emits the transfer event (accountskeeper.Keeper).
type Bank interface {
	Transfer(ctx *runtime.Context, from, to tx.Address, amount uint64) error
}

// Sudo tells whether an account is the sudo key (accountskeeper.Keeper).
type Sudo interface {
	IsSudo(r store.Reader, a tx.Address) (bool, error)
}

// Module is the bridge module.
type Module struct {
	ShardStore
	registry Registry
	bank     Bank
	sudo     Sudo
	blocks   ShardBlocks
}

var _ runtime.Module = (*Module)(nil)

// New returns the module on its dependencies, all required (New(nil, nil,
// nil, nil) serves DecodeCall and QueryKey only).
func New(registry Registry, bank Bank, sudo Sudo, blocks ShardBlocks) *Module {
	return &Module{registry: registry, bank: bank, sudo: sudo, blocks: blocks}
}

// ShardStore reads shard records from the state. The sidechain module uses
// it for the measurement that serves a shard, which it needs before the
// bridge (which needs the sidechain's confirmed blocks) exists.
type ShardStore struct{}

// Name implements runtime.Module.
func (*Module) Name() string { return bridge.Name }

// DecodeCall implements runtime.Module.
func (*Module) DecodeCall(call tx.Call) (runtime.Msg, error) {
	var (
		msg   runtime.Msg
		check func() error
	)
	switch call.Method {
	case bridge.MethodInvoke:
		var m bridge.Invoke
		msg, check = &m, func() error {
			return bounded("ciphertext", len(m.Ciphertext), bridge.MaxCiphertextBytes)
		}
	case bridge.MethodShieldFunds:
		var m bridge.ShieldFunds
		msg, check = &m, func() error {
			if m.Amount == 0 {
				return errors.New("shield of zero")
			}
			return bounded("encrypted recipient", len(m.EncryptedRecipient), bridge.MaxEncryptedRecipientBytes)
		}
	case bridge.MethodUnshieldFunds:
		var m bridge.UnshieldFunds
		msg, check = &m, func() error {
			if m.Amount == 0 {
				return errors.New("unshield of zero")
			}
			if len(m.Proof.Aunts) > bridge.MaxProofAunts {
				return fmt.Errorf("proof of %d aunts, at most %d", len(m.Proof.Aunts), bridge.MaxProofAunts)
			}
			return nil
		}
	case bridge.MethodConfirmProcessedBlock:
		var m bridge.ConfirmProcessedBlock
		msg, check = &m, func() error { return nil }
	case bridge.MethodUpdateShardConfig:
		var m bridge.UpdateShardConfig
		msg, check = &m, func() error { return nil }
	default:
		return nil, fmt.Errorf("%w: %s.%s", types.ErrUnknownCall, bridge.Name, call.Method)
	}
	if err := call.DecodeArgs(msg); err != nil {
		return nil, fmt.Errorf("%w: %w", types.ErrMalformedCall, err)
	}
	if err := check(); err != nil {
		return nil, fmt.Errorf("%w: %s.%s: %w", types.ErrMalformedCall, bridge.Name, call.Method, err)
	}
	return msg, nil
}

func bounded(what string, n, limit int) error {
	if n == 0 || n > limit {
		return fmt.Errorf("%s of %d bytes, want 1..%d", what, n, limit)
	}
	return nil
}

// Execute implements runtime.Module.
func (m *Module) Execute(ctx *runtime.Context, msg runtime.Msg) error {
	if m.registry == nil || m.bank == nil || m.sudo == nil || m.blocks == nil {
		// A wiring mistake, not the transaction's fault: halt loudly.
		return errors.New("bridge: module built without registry, bank, sudo or shard blocks")
	}
	switch msg := msg.(type) {
	case *bridge.Invoke:
		ctx.AddEvents([]abci.Event{event(bridge.EventInvoked,
			attr("shard", msg.Shard.String(), true), attr("sender", ctx.Sender.String(), true),
			attr("ciphertext", base64.StdEncoding.EncodeToString(msg.Ciphertext), false))})
		return nil
	case *bridge.ShieldFunds:
		if err := m.bank.Transfer(ctx, ctx.Sender, bridge.VaultAddress(msg.Shard), msg.Amount); err != nil {
			return err
		}
		ctx.AddEvents([]abci.Event{event(bridge.EventShielded,
			attr("shard", msg.Shard.String(), true), attr("from", ctx.Sender.String(), true),
			attr("amount", strconv.FormatUint(msg.Amount, 10), true),
			attr("encrypted_recipient", base64.StdEncoding.EncodeToString(msg.EncryptedRecipient), false))})
		return nil
	case *bridge.UnshieldFunds:
		return m.unshield(ctx, msg)
	case *bridge.ConfirmProcessedBlock:
		return m.confirm(ctx, msg)
	case *bridge.UpdateShardConfig:
		return m.updateConfig(ctx, msg)
	}
	return fmt.Errorf("%w: bridge cannot execute %T", types.ErrUnknownCall, msg)
}

func event(typ string, attrs ...abci.EventAttribute) abci.Event {
	return abci.Event{Type: typ, Attributes: attrs}
}

func attr(k, v string, index bool) abci.EventAttribute {
	return abci.EventAttribute{Key: k, Value: v, Index: index}
}

// Shard returns the record of a shard, DefaultShard if it has none.
func (ShardStore) Shard(r store.Reader, id types.Hash) (bridge.Shard, error) {
	s := bridge.DefaultShard(id)
	ok, err := runtime.Get(r, bridge.ShardKey(id), &s)
	if err != nil {
		return s, err
	}
	if ok && s.ID != id {
		return s, fmt.Errorf("%w: record of %s names %s", bridge.ErrCorruptShardRecord, id, s.ID)
	}
	return s, nil
}

// ConfirmationOf returns an enclave's latest confirmation of a shard's
// processed blocks, if it confirmed any.
func (ShardStore) ConfirmationOf(r store.Reader, shard types.Hash, enclave tx.Address) (bridge.Confirmation, bool, error) {
	var c bridge.Confirmation
	ok, err := runtime.Get(r, bridge.ConfirmationKey(shard, enclave), &c)
	if err == nil && ok && c.Enclave != enclave {
		return c, false, fmt.Errorf("%w: confirmation of %s in %s names %s", bridge.ErrCorruptShardRecord, enclave, shard, c.Enclave)
	}
	return c, ok, err
}

// Unshielded returns the record of an executed unshield call, if any.
func (m *Module) Unshielded(r store.Reader, shard, callHash types.Hash) (bridge.Unshielded, bool, error) {
	var u bridge.Unshielded
	ok, err := runtime.Get(r, bridge.UnshieldedKey(shard, callHash), &u)
	return u, ok, err
}

// member checks that the sender is an Active enclave serving shard s at the
// current height.
func (m *Module) member(ctx *runtime.Context, s *bridge.Shard) (teerex.Enclave, error) {
	e, err := m.registry.Active(ctx.Store, ctx.Sender, ctx.Time)
	if err != nil {
		var re *types.Error
		if errors.As(err, &re) {
			return e, fmt.Errorf("%w: %w", bridge.ErrNotActive, err)
		}
		return e, err
	}
	if want := s.MRENCLAVEAt(height(ctx)); e.MRENCLAVE != want {
		return e, fmt.Errorf("%w: %s runs %s, shard %s is served by %s", bridge.ErrNotShardEnclave, ctx.Sender, e.MRENCLAVE, s.ID, want)
	}
	return e, nil
}

// height is the current block height; genesis and block heights are
// positive.
func height(ctx *runtime.Context) uint64 { return uint64(max(ctx.Height, 0)) }

func (m *Module) unshield(ctx *runtime.Context, msg *bridge.UnshieldFunds) error {
	s, err := m.Shard(ctx.Store, msg.Shard)
	if err != nil {
		return err
	}
	if _, err := m.member(ctx, &s); err != nil {
		return err
	}
	root, confirmed, err := m.blocks.UnshieldsRoot(ctx.Store, msg.Shard, msg.Block)
	if err != nil {
		return err
	}
	if !confirmed {
		return fmt.Errorf("%w: block %d of shard %s", bridge.ErrBlockNotConfirmed, msg.Block, msg.Shard)
	}
	leaf := bridge.UnshieldLeaf(msg.Beneficiary, msg.Amount, msg.CallHash)
	if err := msg.Proof.Verify(root, leaf); err != nil {
		return fmt.Errorf("%w: block %d: %v", bridge.ErrUnshieldProof, msg.Block, err)
	}
	prev, done, err := m.Unshielded(ctx.Store, msg.Shard, msg.CallHash)
	if err != nil {
		return err
	}
	if done {
		return fmt.Errorf("%w: call %s of shard %s paid at height %d on the word of %s",
			bridge.ErrAlreadyUnshielded, msg.CallHash, msg.Shard, prev.Height, prev.Enclave)
	}
	if err := m.bank.Transfer(ctx, s.Vault, msg.Beneficiary, msg.Amount); err != nil {
		return err
	}
	u := bridge.Unshielded{Enclave: ctx.Sender, Beneficiary: msg.Beneficiary, Amount: msg.Amount, Height: height(ctx)}
	if err := runtime.Put(ctx.Store, bridge.UnshieldedKey(msg.Shard, msg.CallHash), u); err != nil {
		return err
	}
	ctx.Emit(bridge.EventUnshielded, "shard", msg.Shard.String(), "beneficiary", msg.Beneficiary.String(),
		"amount", strconv.FormatUint(msg.Amount, 10), "call_hash", msg.CallHash.String(), "enclave", ctx.Sender.String())
	return nil
}

func (m *Module) confirm(ctx *runtime.Context, msg *bridge.ConfirmProcessedBlock) error {
	s, err := m.Shard(ctx.Store, msg.Shard)
	if err != nil {
		return err
	}
	if _, err := m.member(ctx, &s); err != nil {
		return err
	}
	// A worker processes a block after it is committed, so its
	// confirmation lands in a later block.
	if msg.Height >= height(ctx) {
		return fmt.Errorf("%w: height %d in block %d", bridge.ErrFutureHeight, msg.Height, ctx.Height)
	}
	if err := ownBlock(ctx, msg); err != nil {
		return err
	}
	last, found, err := m.ConfirmationOf(ctx.Store, msg.Shard, ctx.Sender)
	if err != nil {
		return err
	}
	if found && msg.Height <= last.Height {
		return fmt.Errorf("%w: %d, last %d", bridge.ErrStaleConfirmation, msg.Height, last.Height)
	}
	c := bridge.Confirmation{
		Enclave: ctx.Sender, Height: msg.Height,
		BlockHash: msg.BlockHash, CallsRoot: msg.CallsRoot, StateHash: msg.StateHash,
		ConfirmedHeight: height(ctx),
	}
	var first bridge.Confirmation
	seen, err := runtime.Get(ctx.Store, bridge.BlockKey(msg.Shard, msg.Height), &first)
	if err != nil {
		return err
	}
	if !seen {
		if err := runtime.Put(ctx.Store, bridge.BlockKey(msg.Shard, msg.Height), c); err != nil {
			return err
		}
	}
	if err := runtime.Put(ctx.Store, bridge.ConfirmationKey(msg.Shard, ctx.Sender), c); err != nil {
		return err
	}
	enact(&s, height(ctx))
	record(&s, c)
	diverged := seen && !same(&first, &c)
	if diverged {
		s.Divergences++
		s.LastDivergence = msg.Height
	}
	if err := runtime.Put(ctx.Store, bridge.ShardKey(msg.Shard), s); err != nil {
		return err
	}
	h := strconv.FormatUint(msg.Height, 10)
	ctx.Emit(bridge.EventBlockConfirmed, "shard", msg.Shard.String(), "height", h, "block_hash", msg.BlockHash.String(),
		"calls_root", msg.CallsRoot.String(), "state_hash", msg.StateHash.String(), "enclave", ctx.Sender.String())
	if diverged {
		ctx.Emit(bridge.EventStateDivergence, "shard", msg.Shard.String(), "height", h,
			"enclave", ctx.Sender.String(), "state_hash", msg.StateHash.String(), "block_hash", msg.BlockHash.String(),
			"first_enclave", first.Enclave.String(), "first_state_hash", first.StateHash.String(),
			"first_block_hash", first.BlockHash.String())
	}
	return nil
}

// ownBlock checks that msg confirms this chain's block at its height, so
// that an enclave whose host feeds it another chain (or a fork) cannot
// confirm blocks here. msg.Height is below the current height.
func ownBlock(ctx *runtime.Context, msg *bridge.ConfirmProcessedBlock) error {
	h := int64(msg.Height)
	want, ok, err := ctx.BlockHash(h)
	if err != nil {
		return err
	}
	switch {
	case !ok && h < ctx.Height-runtime.BlockHashWindow:
		return fmt.Errorf("%w: height %d is outside the last %d blocks, whose hashes the chain keeps",
			bridge.ErrUnknownBlock, msg.Height, runtime.BlockHashWindow)
	case !ok:
		return fmt.Errorf("%w: the chain has no block %d", bridge.ErrUnknownBlock, msg.Height)
	case !bytes.Equal(want, msg.BlockHash[:]):
		return fmt.Errorf("%w: %s at height %d, the chain's block is %X", bridge.ErrUnknownBlock, msg.BlockHash, msg.Height, want)
	}
	return nil
}

func (m *Module) updateConfig(ctx *runtime.Context, msg *bridge.UpdateShardConfig) error {
	s, err := m.Shard(ctx.Store, msg.Shard)
	if err != nil {
		return err
	}
	sudo, err := m.sudo.IsSudo(ctx.Store, ctx.Sender)
	if err != nil {
		return err
	}
	if !sudo {
		if _, err := m.member(ctx, &s); err != nil {
			return fmt.Errorf("%w: %w", bridge.ErrNotAuthorized, err)
		}
	}
	if msg.EnactmentHeight < height(ctx) {
		return fmt.Errorf("%w: %d, block %d", bridge.ErrEnactmentInPast, msg.EnactmentHeight, ctx.Height)
	}
	enact(&s, height(ctx))
	s.Pending = &bridge.Config{MRENCLAVE: msg.MRENCLAVE, Since: msg.EnactmentHeight}
	if err := runtime.Put(ctx.Store, bridge.ShardKey(msg.Shard), s); err != nil {
		return err
	}
	ctx.Emit(bridge.EventConfigUpdated, "shard", msg.Shard.String(), "mrenclave", msg.MRENCLAVE.String(),
		"enactment_height", strconv.FormatUint(msg.EnactmentHeight, 10), "by", ctx.Sender.String())
	return nil
}

// QueryKey implements runtime.Module.
func (*Module) QueryKey(path []string) ([]byte, error) {
	bad := errors.New("query path: want /bridge/shard/<hex shard>, /bridge/confirmation/<hex shard>/<hex enclave>, /bridge/unshielded/<hex shard>/<hex call hash> or /bridge/block/<hex shard>/<height>")
	if len(path) < 2 {
		return nil, bad
	}
	shard, err := types.ParseHash(path[1])
	if err != nil {
		return nil, fmt.Errorf("query path: shard: %w", err)
	}
	switch {
	case path[0] == "shard" && len(path) == 2:
		return bridge.ShardKey(shard), nil
	case path[0] == "confirmation" && len(path) == 3:
		a, err := tx.ParseAddress(path[2])
		if err != nil {
			return nil, fmt.Errorf("query path: enclave: %w", err)
		}
		return bridge.ConfirmationKey(shard, a), nil
	case path[0] == "unshielded" && len(path) == 3:
		h, err := types.ParseHash(path[2])
		if err != nil {
			return nil, fmt.Errorf("query path: call hash: %w", err)
		}
		return bridge.UnshieldedKey(shard, h), nil
	case path[0] == "block" && len(path) == 3:
		n, err := strconv.ParseUint(path[2], 10, 64)
		if err != nil {
			return nil, fmt.Errorf("query path: height: %w", err)
		}
		return bridge.BlockKey(shard, n), nil
	}
	return nil, bad
}
