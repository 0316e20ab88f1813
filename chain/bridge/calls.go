package bridge

import (
	"crypto/sha256"
	"encoding/binary"
	"math"
	"slices"

	"github.com/cometbft/cometbft/crypto/merkle"

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

// Verify checks that leaf is at the proof's index of a Merkle tree (RFC
// 6962, as CometBFT's merkle package builds it) with the given root.
func (p *UnshieldProof) Verify(root types.Hash, leaf []byte) error {
	lh := sha256.Sum256(append([]byte{0}, leaf...))
	mp := merkle.Proof{Total: int64(min(p.Total, math.MaxInt64)), Index: int64(min(p.Index, math.MaxInt64)),
		LeafHash: lh[:], Aunts: p.Aunts}
	return mp.Verify(root[:], leaf)
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
