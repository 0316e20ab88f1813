package bridge

import (
	"crypto/sha256"
	"slices"

	"github.com/integritee-go/integritee/chain/tx"
	"github.com/integritee-go/integritee/chain/types"
)

// VaultAddress is the account holding a shard's shielded funds. It is a
// hash, not a key anybody generated, so nobody can sign for it: funds leave
// it only through unshield_funds.
func VaultAddress(shard types.Hash) tx.Address {
	return tx.Address(sha256.Sum256(slices.Concat([]byte("integritee/bridge/vault/"), shard[:])))
}

// Config is the enclave measurement allowed to serve a shard from a height
// on.
type Config struct {
	MRENCLAVE types.Hash `cbor:"mrenclave" json:"mrenclave"`
	// Since is the height from which MRENCLAVE serves (0: from the start).
	Since uint64 `cbor:"since" json:"since"`
}

// Confirmation is a processed block confirmed by an enclave.
type Confirmation struct {
	Enclave   tx.Address `cbor:"enclave" json:"enclave"`
	Height    uint64     `cbor:"height" json:"height"`
	BlockHash types.Hash `cbor:"block_hash" json:"block_hash"`
	CallsRoot types.Hash `cbor:"calls_root" json:"calls_root"`
	StateHash types.Hash `cbor:"state_hash" json:"state_hash"`
	// ConfirmedHeight is the height of the block that carried it.
	ConfirmedHeight uint64 `cbor:"confirmed_height" json:"confirmed_height"`
}

// Shard is the on-chain record of a shard. A shard that never had a
// configuration change or a confirmation has no record; it is served by the
// measurement equal to its ID (see DefaultShard).
type Shard struct {
	ID    types.Hash `cbor:"id" json:"id"`
	Vault tx.Address `cbor:"vault" json:"vault"`
	// Config is the measurement serving the shard; Pending a scheduled
	// change, effective from its Since height.
	Config  Config  `cbor:"config" json:"config"`
	Pending *Config `cbor:"pending,omitempty" json:"pending,omitempty"`
	// Latest is the highest confirmed block, by whichever enclave. Each
	// enclave's own latest confirmation has a key of its own
	// (ConfirmationKey), so that the record does not grow with the
	// shard's enclaves.
	Latest *Confirmation `cbor:"latest,omitempty" json:"latest,omitempty"`
	// Divergences counts heights for which enclaves confirmed different
	// results; LastDivergence is the latest such height.
	Divergences    uint64 `cbor:"divergences" json:"divergences"`
	LastDivergence uint64 `cbor:"last_divergence,omitempty" json:"last_divergence,omitempty"`
}

// DefaultShard is the record of a shard without one: created by, and
// served by, the enclave measurement equal to its ID.
func DefaultShard(id types.Hash) Shard {
	return Shard{ID: id, Vault: VaultAddress(id), Config: Config{MRENCLAVE: id}}
}

// MRENCLAVEAt returns the measurement that serves the shard at height h.
func (s *Shard) MRENCLAVEAt(h uint64) types.Hash {
	if s.Pending != nil && h >= s.Pending.Since {
		return s.Pending.MRENCLAVE
	}
	return s.Config.MRENCLAVE
}

// Unshielded records an executed unshield_funds: its call hash can never
// pay again.
type Unshielded struct {
	Enclave     tx.Address `cbor:"enclave" json:"enclave"`
	Beneficiary tx.Address `cbor:"beneficiary" json:"beneficiary"`
	Amount      uint64     `cbor:"amount" json:"amount"`
	Height      uint64     `cbor:"height" json:"height"`
}
