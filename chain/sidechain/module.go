// Package sidechain is the chain's record of the blocks that a shard's
// enclaves produce from direct invocations (calls sent straight to a
// worker rather than through the chain). An enclave executes a batch of
// direct calls, seals the result into a numbered, hash-chained shard block
// (Header) and confirms the block's header hash here with
// confirm_sidechain_block; clients and other workers then hold the
// enclave to that block.
//
// State (values deterministic CBOR):
//
//	sidechain/s/<shard>                  Confirmation: the shard's latest
//	sidechain/b/<shard><8-byte number>   Confirmation of block number
//
// Queries: /sidechain/shard/<hex shard> (absent until the shard's first
// confirmation), /sidechain/block/<hex shard>/<number>.
//
// Membership is the bridge's: the sender must be an Active teerex enclave
// (registered, unexpired, allowed) whose MRENCLAVE serves the shard at the
// current height (bridge.Shard.MRENCLAVEAt).
//
// One shard, one confirmed chain. A confirmation carries the whole header,
// and the chain accepts only the next block: number latest+1 whose parent
// is the latest confirmed header, at a chain height not before the
// latest's. A second block of a confirmed number (a fork, for example of
// an enclave whose host rolled its disk back) is refused
// (ErrForkedBlock); the same block again is ErrAlreadyConfirmed, which
// workers treat as done, since every enclave of a shard derives the same
// chain blocks (Header.Direct false). A direct block is confirmed only from
// its author, and only while no other active enclave of the measurement
// was registered by the chain height the block sits at: direct calls are
// not ordered among several workers, so such an enclave's chain blocks
// could spend what the direct block spends (ErrSeveralEnclaves). An
// enclave registered later joined from a later state and does not hold
// the block back, so a registration racing an unconfirmed direct block
// cannot freeze the shard.
//
// Unshields are paid by the bridge (bridge.unshield_funds) only with a
// Merkle proof into the UnshieldsRoot of a block confirmed here
// (UnshieldsRoot).
package sidechain

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/integritee-go/integritee/chain/bridge"
	"github.com/integritee-go/integritee/chain/runtime"
	"github.com/integritee-go/integritee/chain/store"
	"github.com/integritee-go/integritee/chain/teerex"
	"github.com/integritee-go/integritee/chain/tx"
	"github.com/integritee-go/integritee/chain/types"
)

// Name is the module name: call namespace, key prefix and query path.
const Name = "sidechain"

// MethodConfirmSidechainBlock is the module's only call.
const MethodConfirmSidechainBlock = "confirm_sidechain_block"

// EventBlockConfirmed is emitted per confirmation; attributes shard,
// number, header_hash, enclave (all indexed).
const EventBlockConfirmed = "sidechain.block_confirmed"

// Errors of this module's calls (codespace "sidechain"). Never renumber.
var (
	ErrNotActive       = types.NewError(Name, 1, "sender is not an active registered enclave")
	ErrNotShardEnclave = types.NewError(Name, 2, "enclave does not serve this shard")
	// ErrForkedBlock: a block of a number the shard has confirmed with
	// another header, or one that does not extend the confirmed chain.
	ErrForkedBlock        = types.NewError(Name, 3, "block does not extend the shard's confirmed chain")
	ErrCorruptShardRecord = types.NewError(Name, 4, "sidechain record does not belong to the shard")
	// ErrAlreadyConfirmed: this very block is confirmed already (another
	// enclave of the shard, or a resubmission, was first).
	ErrAlreadyConfirmed = types.NewError(Name, 5, "block already confirmed")
	ErrNotAuthor        = types.NewError(Name, 6, "a direct block is confirmed only by its author")
	ErrSeveralEnclaves  = types.NewError(Name, 7, "direct blocks are confirmed only while the shard has one active enclave")
	ErrChainHeight      = types.NewError(Name, 8, "block's chain height is not between its parent's and the current block")
)

// ConfirmSidechainBlock is the argument of confirm_sidechain_block: the
// block's whole header, so the chain can check what it extends.
type ConfirmSidechainBlock struct {
	Header Header `cbor:"header"`
}

// ConfirmCall returns the confirm_sidechain_block call of a header.
func ConfirmCall(h Header) (tx.Call, error) {
	return tx.NewCall(Name, MethodConfirmSidechainBlock, ConfirmSidechainBlock{Header: h})
}

// Confirmation is a confirmed shard block.
type Confirmation struct {
	Shard      types.Hash `cbor:"shard" json:"shard"`
	Number     uint64     `cbor:"number" json:"number"`
	HeaderHash types.Hash `cbor:"header_hash" json:"header_hash"`
	// ChainHeight, StateHash and UnshieldsRoot are the header's.
	ChainHeight   int64      `cbor:"chain_height" json:"chain_height"`
	StateHash     types.Hash `cbor:"state_hash" json:"state_hash"`
	UnshieldsRoot types.Hash `cbor:"unshields_root" json:"unshields_root"`
	// Author is the header's (zero for a chain block); Enclave sent the
	// confirmation.
	Author  tx.Address `cbor:"author" json:"author"`
	Enclave tx.Address `cbor:"enclave" json:"enclave"`
	// ConfirmedHeight is the height of the chain block that carried it.
	ConfirmedHeight uint64 `cbor:"confirmed_height" json:"confirmed_height"`
}

// Registry reports whether an enclave may act, and how many of a
// measurement may, up to a limit (teerexkeeper.Keeper).
type Registry interface {
	Active(r store.Reader, signer tx.Address, now time.Time) (teerex.Enclave, error)
	OtherActiveOf(r store.Reader, m types.Hash, except tx.Address, registeredBy int64, now time.Time) (bool, error)
}

// Shards returns a shard's record, with the measurement serving it
// (*bridge.Module).
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
func (*Module) Name() string { return Name }

// DecodeCall implements runtime.Module.
func (*Module) DecodeCall(call tx.Call) (runtime.Msg, error) {
	if call.Method != MethodConfirmSidechainBlock {
		return nil, fmt.Errorf("%w: %s.%s", types.ErrUnknownCall, Name, call.Method)
	}
	var m ConfirmSidechainBlock
	if err := call.DecodeArgs(&m); err != nil {
		return nil, fmt.Errorf("%w: %w", types.ErrMalformedCall, err)
	}
	if m.Header.Number == 0 {
		return nil, fmt.Errorf("%w: %s.%s: block numbers start at 1", types.ErrMalformedCall, Name, call.Method)
	}
	return &m, nil
}

// Execute implements runtime.Module.
func (m *Module) Execute(ctx *runtime.Context, msg runtime.Msg) error {
	if m.registry == nil || m.shards == nil {
		// A wiring mistake, not the transaction's fault: halt loudly.
		return errors.New("sidechain: module built without registry or shards")
	}
	c, ok := msg.(*ConfirmSidechainBlock)
	if !ok {
		return fmt.Errorf("%w: sidechain cannot execute %T", types.ErrUnknownCall, msg)
	}
	return m.confirm(ctx, c)
}

// State keys.
var (
	keyShardPrefix = []byte(Name + "/s/")
	keyBlockPrefix = []byte(Name + "/b/")
)

// ShardKey is the state key of a shard's latest confirmation.
func ShardKey(shard types.Hash) []byte { return slices.Concat(keyShardPrefix, shard[:]) }

// BlockKey is the state key of the confirmation of a shard's block number.
func BlockKey(shard types.Hash, number uint64) []byte {
	return binary.BigEndian.AppendUint64(slices.Concat(keyBlockPrefix, shard[:]), number)
}

// Latest returns the shard's latest confirmation, if any.
func (m *Module) Latest(r store.Reader, shard types.Hash) (Confirmation, bool, error) {
	var c Confirmation
	ok, err := runtime.Get(r, ShardKey(shard), &c)
	if err == nil && ok && c.Shard != shard {
		return c, false, fmt.Errorf("%w: record of %s names %s", ErrCorruptShardRecord, shard, c.Shard)
	}
	return c, ok, err
}

// Block returns the confirmation of a shard's block number, if any.
func (m *Module) Block(r store.Reader, shard types.Hash, number uint64) (Confirmation, bool, error) {
	var c Confirmation
	ok, err := runtime.Get(r, BlockKey(shard, number), &c)
	return c, ok, err
}

// height is the current block height; genesis and block heights are
// positive.
func height(ctx *runtime.Context) uint64 { return uint64(max(ctx.Height, 0)) }

func (m *Module) confirm(ctx *runtime.Context, msg *ConfirmSidechainBlock) error {
	h := &msg.Header
	e, err := m.registry.Active(ctx.Store, ctx.Sender, ctx.Time)
	if err != nil {
		var re *types.Error
		if errors.As(err, &re) {
			return fmt.Errorf("%w: %w", ErrNotActive, err)
		}
		return err
	}
	s, err := m.shards.Shard(ctx.Store, h.Shard)
	if err != nil {
		return err
	}
	measurement := s.MRENCLAVEAt(height(ctx))
	if e.MRENCLAVE != measurement {
		return fmt.Errorf("%w: %s runs %s, shard %s is served by %s", ErrNotShardEnclave, ctx.Sender, e.MRENCLAVE, h.Shard, measurement)
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
			return fmt.Errorf("%w: block %d of shard %s", ErrAlreadyConfirmed, h.Number, h.Shard)
		}
		return fmt.Errorf("%w: block %d %s, the shard confirmed %s (latest %d)", ErrForkedBlock, h.Number, hash, have.HeaderHash, latest.Number)
	}
	var parent types.Hash
	var next uint64 = 1
	var minHeight int64
	if seen {
		parent, next, minHeight = latest.HeaderHash, latest.Number+1, latest.ChainHeight
	}
	if h.Number != next || h.ParentHash != parent {
		return fmt.Errorf("%w: block %d with parent %s, the next is %d with parent %s", ErrForkedBlock, h.Number, h.ParentHash, next, parent)
	}
	// A block applies chain blocks that are committed, in chain order.
	if h.ChainHeight < minHeight || h.ChainHeight >= ctx.Height {
		return fmt.Errorf("%w: %d, parent's %d, current block %d", ErrChainHeight, h.ChainHeight, minHeight, ctx.Height)
	}
	if h.Direct() {
		if h.Author != ctx.Sender {
			return fmt.Errorf("%w: author %s, sender %s", ErrNotAuthor, h.Author, ctx.Sender)
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
			return fmt.Errorf("%w: another active enclave of %s was registered by chain height %d", ErrSeveralEnclaves, measurement, h.ChainHeight)
		}
	}
	c := Confirmation{
		Shard: h.Shard, Number: h.Number, HeaderHash: hash, ChainHeight: h.ChainHeight, StateHash: h.StateHash,
		UnshieldsRoot: h.UnshieldsRoot, Author: h.Author, Enclave: ctx.Sender, ConfirmedHeight: height(ctx),
	}
	if err := runtime.Put(ctx.Store, ShardKey(h.Shard), c); err != nil {
		return err
	}
	if err := runtime.Put(ctx.Store, BlockKey(h.Shard, h.Number), c); err != nil {
		return err
	}
	ctx.Emit(EventBlockConfirmed, "shard", h.Shard.String(), "number", strconv.FormatUint(h.Number, 10),
		"header_hash", hash.String(), "enclave", ctx.Sender.String())
	return nil
}

// UnshieldsRoot returns the unshields root of a confirmed block of the
// shard; ok is false if the shard has not confirmed that number
// (bridge.ShardBlocks).
func (m *Module) UnshieldsRoot(r store.Reader, shard types.Hash, number uint64) (types.Hash, bool, error) {
	c, ok, err := m.Block(r, shard, number)
	if err != nil || !ok {
		return types.Hash{}, false, err
	}
	if c.Shard != shard || c.Number != number {
		return types.Hash{}, false, fmt.Errorf("%w: record of %s/%d names %s/%d", ErrCorruptShardRecord, shard, number, c.Shard, c.Number)
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
		return ShardKey(shard), nil
	case path[0] == "block" && len(path) == 3:
		n, err := strconv.ParseUint(path[2], 10, 64)
		if err != nil {
			return nil, fmt.Errorf("query path: number: %w", err)
		}
		return BlockKey(shard, n), nil
	}
	return nil, bad
}

// Confirmed is a confirm_sidechain_block read from a block's events.
type Confirmed struct {
	Shard      types.Hash
	Number     uint64
	HeaderHash types.Hash
	Enclave    tx.Address
}

// ParseEvent reads an EventBlockConfirmed (type and attributes as ABCI
// events carry them); ok is false for any other or a malformed event.
// Workers use it to tell their clients which blocks are confirmed.
func ParseEvent(typ string, attrs map[string]string) (Confirmed, bool) {
	var c Confirmed
	if typ != EventBlockConfirmed {
		return c, false
	}
	var err error
	if c.Shard, err = types.ParseHash(attrs["shard"]); err != nil {
		return c, false
	}
	if c.Number, err = strconv.ParseUint(attrs["number"], 10, 64); err != nil {
		return c, false
	}
	if c.HeaderHash, err = types.ParseHash(attrs["header_hash"]); err != nil {
		return c, false
	}
	if c.Enclave, err = tx.ParseAddress(attrs["enclave"]); err != nil {
		return c, false
	}
	return c, true
}
