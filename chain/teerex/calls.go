package teerex

import (
	"fmt"
	"net/url"
	"slices"

	"github.com/integritee-go/integritee/chain/tx"
	"github.com/integritee-go/integritee/chain/types"
)

// Name is the module name: call namespace, key prefix and query path.
const Name = "teerex"

// Call methods.
const (
	MethodRegisterEnclave      = "register_enclave"
	MethodUnregisterEnclave    = "unregister_enclave"
	MethodAllowMRENCLAVE       = "allow_mrenclave"
	MethodDisallowMRENCLAVE    = "disallow_mrenclave"
	MethodSetAttestationPolicy = "set_attestation_policy"
	MethodSetCollateral        = "set_collateral"
	MethodKeepAlive            = "keep_alive"
	MethodRemoveEnclave        = "remove_enclave"
)

// Event types; every state change emits one.
const (
	EventRegistered   = "teerex.enclave_registered"   // signer, mrenclave, kind, tcb_status, worker_url
	EventRenewed      = "teerex.enclave_renewed"      // same attributes
	EventUnregistered = "teerex.enclave_unregistered" // signer, mrenclave
	EventAlive        = "teerex.enclave_alive"        // signer
	EventRemoved      = "teerex.enclave_removed"      // signer, mrenclave, by
	EventAllowed      = "teerex.mrenclave_allowed"    // mrenclave
	EventDisallowed   = "teerex.mrenclave_disallowed" // mrenclave
	EventPolicySet    = "teerex.policy_set"           // tcb_infos, allow_debug, allow_any_mrenclave, renewal_period_secs, liveness_secs
	EventCollateral   = "teerex.collateral_set"       // tcb_infos, qe_identity, pck_crls, root_crl
)

// Bounds of call arguments.
const (
	MaxShieldingKeyBytes = 4 << 10
	MaxWorkerURLBytes    = 512
)

// RegisterEnclave is the argument of register_enclave: the sender is the
// enclave's signer key.
type RegisterEnclave struct {
	Attestation  Evidence `cbor:"attestation"`
	ShieldingKey []byte   `cbor:"shielding_key"`
	WorkerURL    string   `cbor:"worker_url"`
}

// UnregisterEnclave is the argument of unregister_enclave: the sender's
// registration is removed.
type UnregisterEnclave struct{}

// KeepAlive is the argument of keep_alive: the sender, a registered
// enclave, is alive now. Under a policy with a liveness period, an enclave
// that neither registered nor kept alive for that long is not active, so a
// lost machine's enclave leaves its shard's membership and voting set
// without anyone having to remove it (docs/sidechain.md).
type KeepAlive struct{}

// RemoveEnclave is the argument of remove_enclave (sudo): the registration
// of Signer is removed, e.g. an enclave whose machine is lost.
type RemoveEnclave struct {
	Signer tx.Address `cbor:"signer"`
}

// AllowMRENCLAVE is the argument of allow_mrenclave (sudo).
type AllowMRENCLAVE struct {
	MRENCLAVE types.Hash `cbor:"mrenclave"`
}

// DisallowMRENCLAVE is the argument of disallow_mrenclave (sudo). Enclaves
// of the measurement stay registered but are no longer Active.
type DisallowMRENCLAVE struct {
	MRENCLAVE types.Hash `cbor:"mrenclave"`
}

// SetAttestationPolicy is the argument of set_attestation_policy (sudo): it
// replaces the whole policy.
type SetAttestationPolicy struct {
	Policy Policy `cbor:"policy"`
}

// SetCollateral is the argument of set_collateral (sudo): it adds or
// replaces pieces of the policy's collateral, so that monthly refreshes
// and many FMSPCs need not resend the whole policy. TCB infos replace those
// of the same FMSPC, PCK CRLs those of the same issuer.
type SetCollateral struct {
	TCBInfos   []SignedDoc `cbor:"tcb_infos,omitempty"`
	QEIdentity *SignedDoc  `cbor:"qe_identity,omitempty"`
	PCKCRLs    []CRLDoc    `cbor:"pck_crls,omitempty"`
	RootCRL    *CRLDoc     `cbor:"root_crl,omitempty"`
}

// RegisterEnclaveCall builds the call of a registration.
func RegisterEnclaveCall(ev Evidence, shieldingKey []byte, workerURL string) (tx.Call, error) {
	return tx.NewCall(Name, MethodRegisterEnclave, RegisterEnclave{Attestation: ev, ShieldingKey: shieldingKey, WorkerURL: workerURL})
}

// Validate checks the structure and bounds of a registration call; its
// certificates and quotes are verified when it executes.
func (m *RegisterEnclave) Validate() error {
	if err := m.Attestation.validate(); err != nil {
		return err
	}
	if len(m.ShieldingKey) > MaxShieldingKeyBytes {
		return fmt.Errorf("shielding key of %d bytes, limit %d", len(m.ShieldingKey), MaxShieldingKeyBytes)
	}
	if len(m.WorkerURL) > MaxWorkerURLBytes {
		return fmt.Errorf("worker url of %d bytes, limit %d", len(m.WorkerURL), MaxWorkerURLBytes)
	}
	if m.WorkerURL != "" {
		u, err := url.Parse(m.WorkerURL)
		if err != nil {
			return fmt.Errorf("worker url: %w", err)
		}
		if !slices.Contains([]string{"ws", "wss", "http", "https"}, u.Scheme) || u.Host == "" {
			return fmt.Errorf("worker url %q: want ws, wss, http or https with a host", m.WorkerURL)
		}
	}
	return nil
}

// GenesisState is the module's entry in genesis app_state.
type GenesisState struct {
	Policy    Policy       `json:"policy"`
	Allowlist []types.Hash `json:"allowlist,omitempty"`
}

// ProductionGenesis is the genesis of a production chain with the given
// allowlisted measurements (see ProductionPolicy).
func ProductionGenesis(allow ...types.Hash) GenesisState {
	return GenesisState{Policy: ProductionPolicy(), Allowlist: allow}
}

// EventPruned is the removal of a long-expired registration at the end of
// a block (attributes signer, mrenclave).
const EventPruned = "teerex.enclave_pruned"
