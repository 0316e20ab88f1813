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
// current height (bridge.Shard.MRENCLAVEAt). Block numbers strictly
// increase per shard, so a confirmation can neither be replayed nor
// rewrite history; gaps are allowed (a lost confirmation does not block
// the next), and a header hash chains to all its ancestors anyway.
//
// One shard, one sequence: with several workers per shard producing blocks
// the numbers collide; ordering among redundant workers (authoring in
// turn) is a later milestone (design section 6).
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
	ErrNotActive          = runtime.NewError(Name, 1, "sender is not an active registered enclave")
	ErrNotShardEnclave    = runtime.NewError(Name, 2, "enclave does not serve this shard")
	ErrStaleNumber        = runtime.NewError(Name, 3, "block number not above the shard's latest confirmed block")
	ErrCorruptShardRecord = runtime.NewError(Name, 4, "sidechain record does not belong to the shard")
)

// ConfirmSidechainBlock is the argument of confirm_sidechain_block.
type ConfirmSidechainBlock struct {
	Shard      teerex.Hash `cbor:"shard"`
	Number     uint64      `cbor:"number"`
	HeaderHash teerex.Hash `cbor:"header_hash"`
}

// ConfirmCall returns the confirm_sidechain_block call of a header.
func ConfirmCall(shard teerex.Hash, number uint64, headerHash teerex.Hash) (tx.Call, error) {
	return tx.NewCall(Name, MethodConfirmSidechainBlock, ConfirmSidechainBlock{Shard: shard, Number: number, HeaderHash: headerHash})
}

// Confirmation is a confirmed shard block.
type Confirmation struct {
	Shard      teerex.Hash `cbor:"shard" json:"shard"`
	Number     uint64      `cbor:"number" json:"number"`
	HeaderHash teerex.Hash `cbor:"header_hash" json:"header_hash"`
	Enclave    tx.Address  `cbor:"enclave" json:"enclave"`
	// ConfirmedHeight is the height of the chain block that carried it.
	ConfirmedHeight uint64 `cbor:"confirmed_height" json:"confirmed_height"`
}

// Registry reports whether an enclave may act (teerex.Keeper).
type Registry interface {
	Active(r store.Reader, signer tx.Address, now time.Time) (teerex.Enclave, error)
}

// Shards returns a shard's record, with the measurement serving it
// (*bridge.Module).
type Shards interface {
	Shard(r store.Reader, id teerex.Hash) (bridge.Shard, error)
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
		return nil, fmt.Errorf("%w: %s.%s", runtime.ErrUnknownCall, Name, call.Method)
	}
	var m ConfirmSidechainBlock
	if err := call.DecodeArgs(&m); err != nil {
		return nil, fmt.Errorf("%w: %w", runtime.ErrMalformedCall, err)
	}
	if m.Number == 0 {
		return nil, fmt.Errorf("%w: %s.%s: block numbers start at 1", runtime.ErrMalformedCall, Name, call.Method)
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
		return fmt.Errorf("%w: sidechain cannot execute %T", runtime.ErrUnknownCall, msg)
	}
	return m.confirm(ctx, c)
}

// State keys.
var (
	keyShardPrefix = []byte(Name + "/s/")
	keyBlockPrefix = []byte(Name + "/b/")
)

// ShardKey is the state key of a shard's latest confirmation.
func ShardKey(shard teerex.Hash) []byte { return slices.Concat(keyShardPrefix, shard[:]) }

// BlockKey is the state key of the confirmation of a shard's block number.
func BlockKey(shard teerex.Hash, number uint64) []byte {
	return binary.BigEndian.AppendUint64(slices.Concat(keyBlockPrefix, shard[:]), number)
}

// Latest returns the shard's latest confirmation, if any.
func (m *Module) Latest(r store.Reader, shard teerex.Hash) (Confirmation, bool, error) {
	var c Confirmation
	ok, err := runtime.Get(r, ShardKey(shard), &c)
	if err == nil && ok && c.Shard != shard {
		return c, false, fmt.Errorf("%w: record of %s names %s", ErrCorruptShardRecord, shard, c.Shard)
	}
	return c, ok, err
}

// Block returns the confirmation of a shard's block number, if any.
func (m *Module) Block(r store.Reader, shard teerex.Hash, number uint64) (Confirmation, bool, error) {
	var c Confirmation
	ok, err := runtime.Get(r, BlockKey(shard, number), &c)
	return c, ok, err
}

// height is the current block height; genesis and block heights are
// positive.
func height(ctx *runtime.Context) uint64 { return uint64(max(ctx.Height, 0)) }

func (m *Module) confirm(ctx *runtime.Context, msg *ConfirmSidechainBlock) error {
	e, err := m.registry.Active(ctx.Store, ctx.Sender, ctx.Time)
	if err != nil {
		var re *runtime.Error
		if errors.As(err, &re) {
			return fmt.Errorf("%w: %w", ErrNotActive, err)
		}
		return err
	}
	s, err := m.shards.Shard(ctx.Store, msg.Shard)
	if err != nil {
		return err
	}
	if want := s.MRENCLAVEAt(height(ctx)); e.MRENCLAVE != want {
		return fmt.Errorf("%w: %s runs %s, shard %s is served by %s", ErrNotShardEnclave, ctx.Sender, e.MRENCLAVE, msg.Shard, want)
	}
	latest, seen, err := m.Latest(ctx.Store, msg.Shard)
	if err != nil {
		return err
	}
	if seen && msg.Number <= latest.Number {
		return fmt.Errorf("%w: %d, latest %d", ErrStaleNumber, msg.Number, latest.Number)
	}
	c := Confirmation{Shard: msg.Shard, Number: msg.Number, HeaderHash: msg.HeaderHash, Enclave: ctx.Sender, ConfirmedHeight: height(ctx)}
	if err := runtime.Put(ctx.Store, ShardKey(msg.Shard), c); err != nil {
		return err
	}
	if err := runtime.Put(ctx.Store, BlockKey(msg.Shard, msg.Number), c); err != nil {
		return err
	}
	ctx.Emit(EventBlockConfirmed, "shard", msg.Shard.String(), "number", strconv.FormatUint(msg.Number, 10),
		"header_hash", msg.HeaderHash.String(), "enclave", ctx.Sender.String())
	return nil
}

// QueryKey implements runtime.Module.
func (*Module) QueryKey(path []string) ([]byte, error) {
	bad := errors.New("query path: want /sidechain/shard/<hex shard> or /sidechain/block/<hex shard>/<number>")
	if len(path) < 2 {
		return nil, bad
	}
	shard, err := teerex.ParseHash(path[1])
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
	Shard      teerex.Hash
	Number     uint64
	HeaderHash teerex.Hash
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
	if c.Shard, err = teerex.ParseHash(attrs["shard"]); err != nil {
		return c, false
	}
	if c.Number, err = strconv.ParseUint(attrs["number"], 10, 64); err != nil {
		return c, false
	}
	if c.HeaderHash, err = teerex.ParseHash(attrs["header_hash"]); err != nil {
		return c, false
	}
	if c.Enclave, err = tx.ParseAddress(attrs["enclave"]); err != nil {
		return c, false
	}
	return c, true
}
