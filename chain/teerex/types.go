package teerex

import (
	"time"

	"github.com/integritee-go/integritee/attestation"
	"github.com/integritee-go/integritee/chain/tx"
	"github.com/integritee-go/integritee/chain/types"
)

// Enclave is a registration: what the chain verified about an enclave whose
// signer key (an account) sends its transactions.
type Enclave struct {
	Signer      tx.Address            `cbor:"signer" json:"signer"`
	Kind        attestation.Kind      `cbor:"kind" json:"kind"`
	MRENCLAVE   types.Hash            `cbor:"mrenclave" json:"mrenclave"`
	MRSIGNER    types.Hash            `cbor:"mrsigner" json:"mrsigner"`
	ISVProdID   uint16                `cbor:"isv_prod_id" json:"isv_prod_id"`
	ISVSVN      uint16                `cbor:"isv_svn" json:"isv_svn"`
	TCBStatus   attestation.TCBStatus `cbor:"tcb_status" json:"tcb_status"`
	AdvisoryIDs []string              `cbor:"advisory_ids,omitempty" json:"advisory_ids,omitempty"`
	Debug       bool                  `cbor:"debug" json:"debug"`
	// ShieldingKeyHash is SHA-256 of the shielding public key the enclave
	// declared (and its report data committed to): clients compare the key
	// a worker hands out against it.
	ShieldingKeyHash types.Hash `cbor:"shielding_key_hash" json:"shielding_key_hash"`
	WorkerURL        string     `cbor:"worker_url" json:"worker_url"`
	// AttestedAt is the block time (Unix nanoseconds) of the latest
	// verified registration; the registration expires a renewal period
	// later.
	AttestedAt int64 `cbor:"attested_at" json:"attested_at"`
	// EvidenceTime is the IAS report's timestamp (Unix nanoseconds); zero
	// for DCAP quotes, which carry no time.
	EvidenceTime int64 `cbor:"evidence_time,omitempty" json:"evidence_time,omitempty"`
	// RegisteredHeight is the height of the first registration,
	// AttestedHeight that of the latest renewal.
	RegisteredHeight int64 `cbor:"registered_height" json:"registered_height"`
	AttestedHeight   int64 `cbor:"attested_height" json:"attested_height"`
}

// Attested returns AttestedAt as a time.
func (e *Enclave) Attested() time.Time { return time.Unix(0, e.AttestedAt).UTC() }

// ExpiresAt returns when the registration expires under renewal period d.
func (e *Enclave) ExpiresAt(d time.Duration) time.Time { return e.Attested().Add(d) }

// MRENCLAVEs is a sorted set of measurements: the value of the allowlist.
type MRENCLAVEs []types.Hash
