package teerex

import (
	"encoding/hex"
	"fmt"
	"time"

	"github.com/integritee-go/integritee/attestation"
	"github.com/integritee-go/integritee/chain/tx"
)

// Hash is a 32-byte value: a measurement (MRENCLAVE, MRSIGNER) or a digest.
// CBOR carries it as a byte string, JSON as lower-case hex.
type Hash [32]byte

// String returns h as lower-case hex.
func (h Hash) String() string { return hex.EncodeToString(h[:]) }

// MarshalText encodes h as hex (JSON genesis and query output).
func (h Hash) MarshalText() ([]byte, error) { return []byte(h.String()), nil }

// UnmarshalText decodes exactly 64 hex characters.
func (h *Hash) UnmarshalText(b []byte) error {
	p, err := ParseHash(string(b))
	if err != nil {
		return err
	}
	*h = p
	return nil
}

// ParseHash decodes a hex hash of exactly 32 bytes.
func ParseHash(s string) (Hash, error) {
	var h Hash
	if len(s) != 2*len(h) {
		return h, fmt.Errorf("hash %q: want %d hex characters, got %d", s, 2*len(h), len(s))
	}
	if _, err := hex.Decode(h[:], []byte(s)); err != nil {
		return h, fmt.Errorf("hash %q: %w", s, err)
	}
	return h, nil
}

// Enclave is a registration: what the chain verified about an enclave whose
// signer key (an account) sends its transactions.
type Enclave struct {
	Signer      tx.Address            `cbor:"signer" json:"signer"`
	Kind        attestation.Kind      `cbor:"kind" json:"kind"`
	MRENCLAVE   Hash                  `cbor:"mrenclave" json:"mrenclave"`
	MRSIGNER    Hash                  `cbor:"mrsigner" json:"mrsigner"`
	ISVProdID   uint16                `cbor:"isv_prod_id" json:"isv_prod_id"`
	ISVSVN      uint16                `cbor:"isv_svn" json:"isv_svn"`
	TCBStatus   attestation.TCBStatus `cbor:"tcb_status" json:"tcb_status"`
	AdvisoryIDs []string              `cbor:"advisory_ids,omitempty" json:"advisory_ids,omitempty"`
	Debug       bool                  `cbor:"debug" json:"debug"`
	// ShieldingKeyHash is SHA-256 of the shielding public key the enclave
	// declared (and its report data committed to): clients compare the key
	// a worker hands out against it.
	ShieldingKeyHash Hash   `cbor:"shielding_key_hash" json:"shielding_key_hash"`
	WorkerURL        string `cbor:"worker_url" json:"worker_url"`
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
type MRENCLAVEs []Hash
