package teerex

import (
	"fmt"
	"slices"
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
	// AliveAt is the block time (Unix nanoseconds) of the latest
	// keep_alive since the latest registration; zero if none.
	AliveAt int64 `cbor:"alive_at,omitempty" json:"alive_at,omitempty"`
}

// Attested returns AttestedAt as a time.
func (e *Enclave) Attested() time.Time { return time.Unix(0, e.AttestedAt).UTC() }

// ExpiresAt returns when the registration expires under renewal period d.
func (e *Enclave) ExpiresAt(d time.Duration) time.Time { return e.Attested().Add(d) }

// LastSeen returns when the enclave last showed it is alive: its latest
// registration or keep_alive.
func (e *Enclave) LastSeen() time.Time {
	return time.Unix(0, max(e.AttestedAt, e.AliveAt)).UTC()
}

// MRENCLAVEs is a sorted set of measurements: the value of the allowlist.
type MRENCLAVEs []types.Hash

// Allows reports whether measurement m may register under policy p and
// allowlist l (sorted).
func (p *Policy) Allows(l MRENCLAVEs, m types.Hash) bool {
	if p.AllowAnyMRENCLAVE {
		return true
	}
	_, found := slices.BinarySearchFunc(l, m, types.Hash.Compare)
	return found
}

// CheckActive reports whether registration e may act at time now under
// policy p and allowlist l: attested no longer than the renewal period
// ago, seen alive within the liveness period (if the policy has one), and still acceptable to the policy (its measurement allowed, not a
// debug enclave unless debug is allowed), so that disallowing a
// measurement deactivates its enclaves at once. The error wraps
// ErrExpired, ErrSilent, ErrDebugEnclave or ErrMRENCLAVENotAllowed. The chain
// (keeper.Active) and an enclave judging a peer from proved state use
// this one rule.
func (e *Enclave) CheckActive(p *Policy, l MRENCLAVEs, now time.Time) error {
	if exp := e.ExpiresAt(p.RenewalPeriod()); now.After(exp) {
		return fmt.Errorf("%w: %s attested %s, expired %s", ErrExpired, e.Signer,
			e.Attested().Format(time.RFC3339), exp.Format(time.RFC3339))
	}
	if d := p.Liveness(); d > 0 && now.After(e.LastSeen().Add(d)) {
		return fmt.Errorf("%w: %s last seen %s, liveness period %s", ErrSilent, e.Signer,
			e.LastSeen().Format(time.RFC3339), d)
	}
	if e.Debug && !p.AllowDebug {
		return fmt.Errorf("%w: %s", ErrDebugEnclave, e.Signer)
	}
	if !p.Allows(l, e.MRENCLAVE) {
		return fmt.Errorf("%w: %s of %s", ErrMRENCLAVENotAllowed, e.MRENCLAVE, e.Signer)
	}
	return nil
}
