// Package bridge is the enclave bridge module (enclave_bridge): the public
// chain's side of the shards that enclaves run. It carries encrypted calls
// to the workers (invoke), moves public funds into a shard's vault
// (shield_funds) and out of it (unshield_funds, once per call hash, only
// as proved by a confirmed shard block), records the blocks enclaves confirm to have processed and
// flags disagreement, and says which enclave measurement serves each shard.
//
// State (values deterministic CBOR):
//
//	bridge/s/<shard>                  Shard (config, latest confirmation, divergences)
//	bridge/c/<shard><enclave>         Confirmation: the enclave's latest
//	bridge/u/<shard><call hash>       Unshielded
//	bridge/b/<shard><8-byte height>   Confirmation: the first for the height
//
// Queries: /bridge/shard/<hex shard> (absent until the shard's first
// confirmation or configuration change: read it as DefaultShard), with the
// vault balance at /accounts/<hex Shard.Vault>;
// /bridge/confirmation/<hex shard>/<hex enclave>;
// /bridge/unshielded/<hex shard>/<hex call hash>;
// /bridge/block/<hex shard>/<height>.
//
// Confirmations. confirm_processed_block must name the chain's own block:
// its block hash must be the one the chain recorded for that height
// (runtime.Context.BlockHash, the last runtime.BlockHashWindow blocks),
// else ErrUnknownBlock, so a worker fed a fake chain cannot confirm it.
//
// Membership. An enclave serves a shard at height h if teerex reports it
// Active (registered, not expired, still allowed) and its MRENCLAVE is the
// shard's measurement at h: by default the shard ID itself, changed by
// update_shard_config from an enactment height on, so that a shard moves to
// a new enclave release while keeping its ID, vault and state.
//
// Unshielding. An enclave's word is not enough: a host can roll an
// enclave's state back and have it sign the same funds out twice. An
// unshield_funds names a shard block that the sidechain module confirmed
// (the shard's one confirmed chain of state transitions) and carries a
// Merkle proof that the unshield is in that block's unshields root
// (ShardBlocks). A forked state's blocks are never confirmed, so its
// unshields never pay. Every worker of a shard submits the same
// unshield_funds; the first to execute pays, every later one fails with
// ErrAlreadyUnshielded and changes nothing. Being an error, a repeat that
// reaches CheckTx after the first committed is refused before it enters the
// mempool and costs no fee.
package bridge

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"time"

	abci "github.com/cometbft/cometbft/abci/types"
	"github.com/cometbft/cometbft/crypto/merkle"

	"github.com/integritee-go/integritee/chain/runtime"
	"github.com/integritee-go/integritee/chain/store"
	"github.com/integritee-go/integritee/chain/teerex"
	"github.com/integritee-go/integritee/chain/tx"
	"github.com/integritee-go/integritee/chain/types"
)

// Name is the module name: call namespace, key prefix and query path.
const Name = "bridge"

// Call methods.
const (
	MethodInvoke                = "invoke"
	MethodShieldFunds           = "shield_funds"
	MethodUnshieldFunds         = "unshield_funds"
	MethodConfirmProcessedBlock = "confirm_processed_block"
	MethodUpdateShardConfig     = "update_shard_config"
)

// Event types; every state change emits one. Ciphertexts are carried in
// non-indexed attributes: workers read them from the block results.
const (
	EventInvoked         = "bridge.invoked"              // shard, sender, ciphertext (base64)
	EventShielded        = "bridge.shielded"             // shard, from, amount, encrypted_recipient (base64)
	EventUnshielded      = "bridge.unshielded"           // shard, beneficiary, amount, call_hash, enclave
	EventBlockConfirmed  = "bridge.block_confirmed"      // shard, height, block_hash, calls_root, state_hash, enclave
	EventStateDivergence = "bridge.state_divergence"     // shard, height, enclave, state_hash, block_hash, first_enclave, first_state_hash, first_block_hash
	EventConfigUpdated   = "bridge.shard_config_updated" // shard, mrenclave, enactment_height, by
)

// Bounds of call arguments.
const (
	MaxCiphertextBytes         = 32 << 10
	MaxEncryptedRecipientBytes = 4 << 10
)

// Errors of this module's calls (codespace "bridge"). Never renumber.
var (
	ErrNotActive          = types.NewError(Name, 1, "sender is not an active registered enclave")
	ErrNotShardEnclave    = types.NewError(Name, 2, "enclave does not serve this shard")
	ErrAlreadyUnshielded  = types.NewError(Name, 3, "unshield call already executed")
	ErrFutureHeight       = types.NewError(Name, 4, "confirmed block is not yet committed")
	ErrStaleConfirmation  = types.NewError(Name, 5, "confirmation not above the enclave's last confirmed height")
	ErrNotAuthorized      = types.NewError(Name, 6, "sender may not change the shard configuration")
	ErrEnactmentInPast    = types.NewError(Name, 7, "enactment height before the current block")
	ErrCorruptShardRecord = types.NewError(Name, 8, "shard record does not belong to the shard")
	ErrUnknownBlock       = types.NewError(Name, 9, "confirmed block hash is not the chain's block at that height")
	// Code 9 is ErrUnknownBlock (confirm_processed_block).
	ErrBlockNotConfirmed = types.NewError(Name, 10, "unshield names a shard block that is not confirmed")
	ErrUnshieldProof     = types.NewError(Name, 11, "unshield is not in the confirmed block's unshields root")
)

// Invoke is the argument of invoke: an encrypted call for the shard's
// enclaves (indirect invocation). Anyone may send it.
type Invoke struct {
	Shard      types.Hash `cbor:"shard"`
	Ciphertext []byte     `cbor:"ciphertext"`
}

// ShieldFunds is the argument of shield_funds: Amount moves from the sender
// to the shard's vault; the enclaves credit the recipient they decrypt.
type ShieldFunds struct {
	Shard              types.Hash `cbor:"shard"`
	Amount             uint64     `cbor:"amount"`
	EncryptedRecipient []byte     `cbor:"encrypted_recipient"`
}

// UnshieldFunds is the argument of unshield_funds, sent by an enclave of
// the shard: pay Amount from the vault to Beneficiary, once per CallHash,
// as shard block Block (confirmed) proves.
type UnshieldFunds struct {
	Shard       types.Hash `cbor:"shard"`
	Beneficiary tx.Address `cbor:"beneficiary"`
	Amount      uint64     `cbor:"amount"`
	CallHash    types.Hash `cbor:"call_hash"`
	// Block is the number of the confirmed shard block whose unshields
	// root holds this unshield; Proof is the Merkle proof.
	Block uint64        `cbor:"block"`
	Proof UnshieldProof `cbor:"proof"`
}

// MaxProofAunts bounds an unshield proof (a tree of 2^32 leaves).
const MaxProofAunts = 32

// UnshieldProof is an RFC 6962 Merkle proof (CometBFT's merkle.Proof) of
// the unshield's leaf (sidechain.UnshieldLeaf) at Index of Total.
type UnshieldProof struct {
	Index uint64   `cbor:"index"`
	Total uint64   `cbor:"total"`
	Aunts [][]byte `cbor:"aunts"`
}

// unshieldDomain separates unshield leaves from other hashes.
const unshieldDomain = "integritee-sidechain-unshield-v1"

// UnshieldLeaf is an unshield's leaf of a shard block's unshields root
// (sidechain.Header.UnshieldsRoot): sha256(domain || beneficiary || amount
// (8 bytes, big endian) || call hash).
func UnshieldLeaf(beneficiary tx.Address, amount uint64, callHash types.Hash) []byte {
	s := sha256.New()
	s.Write([]byte(unshieldDomain))
	s.Write(beneficiary[:])
	s.Write(binary.BigEndian.AppendUint64(nil, amount))
	s.Write(callHash[:])
	return s.Sum(nil)
}

// merkleLeafHash is RFC 6962's leaf hash, as CometBFT's merkle package
// computes it: sha256(0x00 || leaf).
func merkleLeafHash(leaf []byte) []byte {
	s := sha256.New()
	s.Write([]byte{0})
	s.Write(leaf)
	return s.Sum(nil)
}

// ShardBlocks reports the unshields root of a confirmed shard block
// (sidechain.Module).
type ShardBlocks interface {
	UnshieldsRoot(r store.Reader, shard types.Hash, number uint64) (types.Hash, bool, error)
}

// ConfirmProcessedBlock is the argument of confirm_processed_block, sent by
// an enclave of the shard after it processed the chain block at Height.
type ConfirmProcessedBlock struct {
	Shard     types.Hash `cbor:"shard"`
	Height    uint64     `cbor:"height"`
	BlockHash types.Hash `cbor:"block_hash"`
	CallsRoot types.Hash `cbor:"calls_root"`
	StateHash types.Hash `cbor:"state_hash"`
}

// UpdateShardConfig is the argument of update_shard_config, sent by sudo or
// by an enclave of the shard's current measurement: from EnactmentHeight on,
// MRENCLAVE serves the shard. A later update replaces a pending one.
type UpdateShardConfig struct {
	Shard           types.Hash `cbor:"shard"`
	MRENCLAVE       types.Hash `cbor:"mrenclave"`
	EnactmentHeight uint64     `cbor:"enactment_height"`
}

// Registry reports whether an enclave may act (teerexkeeper.Keeper).
type Registry interface {
	Active(r store.Reader, signer tx.Address, now time.Time) (teerex.Enclave, error)
}

// Bank moves funds and emits the transfer event (accounts.Keeper).
type Bank interface {
	Transfer(ctx *runtime.Context, from, to tx.Address, amount uint64) error
}

// Sudo tells whether an account is the sudo key (accounts.Keeper).
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
func (*Module) Name() string { return Name }

// DecodeCall implements runtime.Module.
func (*Module) DecodeCall(call tx.Call) (runtime.Msg, error) {
	var (
		msg   runtime.Msg
		check func() error
	)
	switch call.Method {
	case MethodInvoke:
		var m Invoke
		msg, check = &m, func() error {
			return bounded("ciphertext", len(m.Ciphertext), MaxCiphertextBytes)
		}
	case MethodShieldFunds:
		var m ShieldFunds
		msg, check = &m, func() error {
			if m.Amount == 0 {
				return errors.New("shield of zero")
			}
			return bounded("encrypted recipient", len(m.EncryptedRecipient), MaxEncryptedRecipientBytes)
		}
	case MethodUnshieldFunds:
		var m UnshieldFunds
		msg, check = &m, func() error {
			if m.Amount == 0 {
				return errors.New("unshield of zero")
			}
			if len(m.Proof.Aunts) > MaxProofAunts {
				return fmt.Errorf("proof of %d aunts, at most %d", len(m.Proof.Aunts), MaxProofAunts)
			}
			return nil
		}
	case MethodConfirmProcessedBlock:
		var m ConfirmProcessedBlock
		msg, check = &m, func() error { return nil }
	case MethodUpdateShardConfig:
		var m UpdateShardConfig
		msg, check = &m, func() error { return nil }
	default:
		return nil, fmt.Errorf("%w: %s.%s", types.ErrUnknownCall, Name, call.Method)
	}
	if err := call.DecodeArgs(msg); err != nil {
		return nil, fmt.Errorf("%w: %w", types.ErrMalformedCall, err)
	}
	if err := check(); err != nil {
		return nil, fmt.Errorf("%w: %s.%s: %w", types.ErrMalformedCall, Name, call.Method, err)
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
	case *Invoke:
		ctx.AddEvents([]abci.Event{event(EventInvoked,
			attr("shard", msg.Shard.String(), true), attr("sender", ctx.Sender.String(), true),
			attr("ciphertext", base64.StdEncoding.EncodeToString(msg.Ciphertext), false))})
		return nil
	case *ShieldFunds:
		if err := m.bank.Transfer(ctx, ctx.Sender, VaultAddress(msg.Shard), msg.Amount); err != nil {
			return err
		}
		ctx.AddEvents([]abci.Event{event(EventShielded,
			attr("shard", msg.Shard.String(), true), attr("from", ctx.Sender.String(), true),
			attr("amount", strconv.FormatUint(msg.Amount, 10), true),
			attr("encrypted_recipient", base64.StdEncoding.EncodeToString(msg.EncryptedRecipient), false))})
		return nil
	case *UnshieldFunds:
		return m.unshield(ctx, msg)
	case *ConfirmProcessedBlock:
		return m.confirm(ctx, msg)
	case *UpdateShardConfig:
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

// State keys.
var (
	keyShardPrefix        = []byte(Name + "/s/")
	keyConfirmationPrefix = []byte(Name + "/c/")
	keyUnshieldedPrefix   = []byte(Name + "/u/")
	keyBlockPrefix        = []byte(Name + "/b/")
)

// ShardKey is the state key of a shard's record.
func ShardKey(shard types.Hash) []byte { return slices.Concat(keyShardPrefix, shard[:]) }

// ConfirmationKey is the state key of an enclave's latest confirmation of
// a shard's processed blocks.
func ConfirmationKey(shard types.Hash, enclave tx.Address) []byte {
	return slices.Concat(keyConfirmationPrefix, shard[:], enclave[:])
}

// UnshieldedKey is the state key marking an executed unshield call.
func UnshieldedKey(shard, callHash types.Hash) []byte {
	return slices.Concat(keyUnshieldedPrefix, shard[:], callHash[:])
}

// BlockKey is the state key of the first confirmation of a shard's height.
func BlockKey(shard types.Hash, height uint64) []byte {
	return binary.BigEndian.AppendUint64(slices.Concat(keyBlockPrefix, shard[:]), height)
}

// Shard returns the record of a shard, DefaultShard if it has none.
func (ShardStore) Shard(r store.Reader, id types.Hash) (Shard, error) {
	s := DefaultShard(id)
	ok, err := runtime.Get(r, ShardKey(id), &s)
	if err != nil {
		return s, err
	}
	if ok && s.ID != id {
		return s, fmt.Errorf("%w: record of %s names %s", ErrCorruptShardRecord, id, s.ID)
	}
	return s, nil
}

// ConfirmationOf returns an enclave's latest confirmation of a shard's
// processed blocks, if it confirmed any.
func (ShardStore) ConfirmationOf(r store.Reader, shard types.Hash, enclave tx.Address) (Confirmation, bool, error) {
	var c Confirmation
	ok, err := runtime.Get(r, ConfirmationKey(shard, enclave), &c)
	if err == nil && ok && c.Enclave != enclave {
		return c, false, fmt.Errorf("%w: confirmation of %s in %s names %s", ErrCorruptShardRecord, enclave, shard, c.Enclave)
	}
	return c, ok, err
}

// Unshielded returns the record of an executed unshield call, if any.
func (m *Module) Unshielded(r store.Reader, shard, callHash types.Hash) (Unshielded, bool, error) {
	var u Unshielded
	ok, err := runtime.Get(r, UnshieldedKey(shard, callHash), &u)
	return u, ok, err
}

// member checks that the sender is an Active enclave serving shard s at the
// current height.
func (m *Module) member(ctx *runtime.Context, s *Shard) (teerex.Enclave, error) {
	e, err := m.registry.Active(ctx.Store, ctx.Sender, ctx.Time)
	if err != nil {
		var re *types.Error
		if errors.As(err, &re) {
			return e, fmt.Errorf("%w: %w", ErrNotActive, err)
		}
		return e, err
	}
	if want := s.MRENCLAVEAt(height(ctx)); e.MRENCLAVE != want {
		return e, fmt.Errorf("%w: %s runs %s, shard %s is served by %s", ErrNotShardEnclave, ctx.Sender, e.MRENCLAVE, s.ID, want)
	}
	return e, nil
}

// height is the current block height; genesis and block heights are
// positive.
func height(ctx *runtime.Context) uint64 { return uint64(max(ctx.Height, 0)) }

func (m *Module) unshield(ctx *runtime.Context, msg *UnshieldFunds) error {
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
		return fmt.Errorf("%w: block %d of shard %s", ErrBlockNotConfirmed, msg.Block, msg.Shard)
	}
	leaf := UnshieldLeaf(msg.Beneficiary, msg.Amount, msg.CallHash)
	p := merkle.Proof{Total: int64(min(msg.Proof.Total, math.MaxInt64)), Index: int64(min(msg.Proof.Index, math.MaxInt64)),
		LeafHash: merkleLeafHash(leaf), Aunts: msg.Proof.Aunts}
	if err := p.Verify(root[:], leaf); err != nil {
		return fmt.Errorf("%w: block %d: %v", ErrUnshieldProof, msg.Block, err)
	}
	prev, done, err := m.Unshielded(ctx.Store, msg.Shard, msg.CallHash)
	if err != nil {
		return err
	}
	if done {
		return fmt.Errorf("%w: call %s of shard %s paid at height %d on the word of %s",
			ErrAlreadyUnshielded, msg.CallHash, msg.Shard, prev.Height, prev.Enclave)
	}
	if err := m.bank.Transfer(ctx, s.Vault, msg.Beneficiary, msg.Amount); err != nil {
		return err
	}
	u := Unshielded{Enclave: ctx.Sender, Beneficiary: msg.Beneficiary, Amount: msg.Amount, Height: height(ctx)}
	if err := runtime.Put(ctx.Store, UnshieldedKey(msg.Shard, msg.CallHash), u); err != nil {
		return err
	}
	ctx.Emit(EventUnshielded, "shard", msg.Shard.String(), "beneficiary", msg.Beneficiary.String(),
		"amount", strconv.FormatUint(msg.Amount, 10), "call_hash", msg.CallHash.String(), "enclave", ctx.Sender.String())
	return nil
}

func (m *Module) confirm(ctx *runtime.Context, msg *ConfirmProcessedBlock) error {
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
		return fmt.Errorf("%w: height %d in block %d", ErrFutureHeight, msg.Height, ctx.Height)
	}
	if err := ownBlock(ctx, msg); err != nil {
		return err
	}
	last, found, err := m.ConfirmationOf(ctx.Store, msg.Shard, ctx.Sender)
	if err != nil {
		return err
	}
	if found && msg.Height <= last.Height {
		return fmt.Errorf("%w: %d, last %d", ErrStaleConfirmation, msg.Height, last.Height)
	}
	c := Confirmation{
		Enclave: ctx.Sender, Height: msg.Height,
		BlockHash: msg.BlockHash, CallsRoot: msg.CallsRoot, StateHash: msg.StateHash,
		ConfirmedHeight: height(ctx),
	}
	var first Confirmation
	seen, err := runtime.Get(ctx.Store, BlockKey(msg.Shard, msg.Height), &first)
	if err != nil {
		return err
	}
	if !seen {
		if err := runtime.Put(ctx.Store, BlockKey(msg.Shard, msg.Height), c); err != nil {
			return err
		}
	}
	if err := runtime.Put(ctx.Store, ConfirmationKey(msg.Shard, ctx.Sender), c); err != nil {
		return err
	}
	s.enact(height(ctx))
	s.record(c)
	diverged := seen && !first.same(&c)
	if diverged {
		s.Divergences++
		s.LastDivergence = msg.Height
	}
	if err := runtime.Put(ctx.Store, ShardKey(msg.Shard), s); err != nil {
		return err
	}
	h := strconv.FormatUint(msg.Height, 10)
	ctx.Emit(EventBlockConfirmed, "shard", msg.Shard.String(), "height", h, "block_hash", msg.BlockHash.String(),
		"calls_root", msg.CallsRoot.String(), "state_hash", msg.StateHash.String(), "enclave", ctx.Sender.String())
	if diverged {
		ctx.Emit(EventStateDivergence, "shard", msg.Shard.String(), "height", h,
			"enclave", ctx.Sender.String(), "state_hash", msg.StateHash.String(), "block_hash", msg.BlockHash.String(),
			"first_enclave", first.Enclave.String(), "first_state_hash", first.StateHash.String(),
			"first_block_hash", first.BlockHash.String())
	}
	return nil
}

// ownBlock checks that msg confirms this chain's block at its height, so
// that an enclave whose host feeds it another chain (or a fork) cannot
// confirm blocks here. msg.Height is below the current height.
func ownBlock(ctx *runtime.Context, msg *ConfirmProcessedBlock) error {
	h := int64(msg.Height)
	want, ok, err := ctx.BlockHash(h)
	if err != nil {
		return err
	}
	switch {
	case !ok && h < ctx.Height-runtime.BlockHashWindow:
		return fmt.Errorf("%w: height %d is outside the last %d blocks, whose hashes the chain keeps",
			ErrUnknownBlock, msg.Height, runtime.BlockHashWindow)
	case !ok:
		return fmt.Errorf("%w: the chain has no block %d", ErrUnknownBlock, msg.Height)
	case !bytes.Equal(want, msg.BlockHash[:]):
		return fmt.Errorf("%w: %s at height %d, the chain's block is %X", ErrUnknownBlock, msg.BlockHash, msg.Height, want)
	}
	return nil
}

func (m *Module) updateConfig(ctx *runtime.Context, msg *UpdateShardConfig) error {
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
			return fmt.Errorf("%w: %w", ErrNotAuthorized, err)
		}
	}
	if msg.EnactmentHeight < height(ctx) {
		return fmt.Errorf("%w: %d, block %d", ErrEnactmentInPast, msg.EnactmentHeight, ctx.Height)
	}
	s.enact(height(ctx))
	s.Pending = &Config{MRENCLAVE: msg.MRENCLAVE, Since: msg.EnactmentHeight}
	if err := runtime.Put(ctx.Store, ShardKey(msg.Shard), s); err != nil {
		return err
	}
	ctx.Emit(EventConfigUpdated, "shard", msg.Shard.String(), "mrenclave", msg.MRENCLAVE.String(),
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
		return ShardKey(shard), nil
	case path[0] == "confirmation" && len(path) == 3:
		a, err := tx.ParseAddress(path[2])
		if err != nil {
			return nil, fmt.Errorf("query path: enclave: %w", err)
		}
		return ConfirmationKey(shard, a), nil
	case path[0] == "unshielded" && len(path) == 3:
		h, err := types.ParseHash(path[2])
		if err != nil {
			return nil, fmt.Errorf("query path: call hash: %w", err)
		}
		return UnshieldedKey(shard, h), nil
	case path[0] == "block" && len(path) == 3:
		n, err := strconv.ParseUint(path[2], 10, 64)
		if err != nil {
			return nil, fmt.Errorf("query path: height: %w", err)
		}
		return BlockKey(shard, n), nil
	}
	return nil, bad
}
