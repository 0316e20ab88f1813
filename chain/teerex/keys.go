package teerex

import (
	"encoding/binary"
	"slices"

	"github.com/integritee-go/integritee/chain/tx"
	"github.com/integritee-go/integritee/chain/types"
)

var (
	keyPolicy          = []byte(Name + "/policy")
	keyAllowlist       = []byte(Name + "/allowlist")
	keyEnclavePrefix   = []byte(Name + "/e/")
	keyMRENCLAVEPrefix = []byte(Name + "/m/")
)

// PolicyKey is the state key of the attestation policy.
func PolicyKey() []byte { return slices.Clone(keyPolicy) }

// AllowlistKey is the state key of the MRENCLAVE allowlist (MRENCLAVEs).
func AllowlistKey() []byte { return slices.Clone(keyAllowlist) }

// EnclaveKey is the state key of the registration of signer.
func EnclaveKey(signer tx.Address) []byte { return slices.Concat(keyEnclavePrefix, signer[:]) }

// EnclavesCountKey is the state key of the number of registrations
// (uint64), expired ones included; absent when there are none.
func EnclavesCountKey() []byte { return AllEnclaves.CountKey() }

// EnclavesSlotKey is the state key of the signer (tx.Address) in slot i
// of the list of all registrations, for i below EnclavesCountKey's number.
func EnclavesSlotKey(i uint64) []byte { return AllEnclaves.SlotKey(i) }

// EnclavesOfCountKey is the state key of the number of registrations with
// measurement m (uint64): the enclaves that may serve the shard m.
func EnclavesOfCountKey(m types.Hash) []byte { return EnclavesOf(m).CountKey() }

// EnclavesOfSlotKey is the state key of the signer in slot i of the
// registrations with measurement m.
func EnclavesOfSlotKey(m types.Hash, i uint64) []byte { return EnclavesOf(m).SlotKey(i) }

// Index is the key layout of a numbered set of signers kept one state key
// per entry, so that no value grows with it: its length, the signer in each
// slot 0..length-1, and each signer's slot. Slots stay dense: removing a
// signer moves the last one into its slot. The state is a Merkle tree over
// hashed keys, which proves single keys but no key ranges; a client proves
// the length and then slots, all at one height, and a listing is complete
// exactly when it holds that many distinct proved slots.
type Index struct{ prefix []byte }

// AllEnclaves indexes every registration, expired ones included.
var AllEnclaves = Index{prefix: []byte(Name + "/all/")}

// EnclavesOf indexes the registrations with measurement m.
func EnclavesOf(m types.Hash) Index {
	return Index{prefix: slices.Concat(keyMRENCLAVEPrefix, m[:], []byte("/"))}
}

// Prefix is the common prefix of the index's keys.
func (l Index) Prefix() []byte { return slices.Clone(l.prefix) }

// CountKey is the key of the number of signers (uint64).
func (l Index) CountKey() []byte { return slices.Concat(l.prefix, []byte("n")) }

// SlotKey is the key of the signer (tx.Address) in slot i.
func (l Index) SlotKey(i uint64) []byte {
	return binary.BigEndian.AppendUint64(slices.Concat(l.prefix, []byte("i/")), i)
}

// PosKey is the key of the slot (uint64) of signer s.
func (l Index) PosKey(s tx.Address) []byte { return slices.Concat(l.prefix, []byte("s/"), s[:]) }

// EnclaveKeyPrefix is the common prefix of every registration's key.
func EnclaveKeyPrefix() []byte { return slices.Clone(keyEnclavePrefix) }
