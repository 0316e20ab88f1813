package protocol

import (
	"github.com/integritee-go/integritee/chain/smt"
	"github.com/integritee-go/integritee/chain/teerex"
)

// ProvedValue is a chain state value (nil: absent) with its Merkle proof,
// as an abci_query with prove returns it. It is checked against an app
// hash the enclave trusts, so it may come from the host.
type ProvedValue struct {
	Key   []byte    `cbor:"key"`
	Value []byte    `cbor:"value,omitempty"`
	Proof smt.Proof `cbor:"proof"`
}

// Message types of provisioning.
const (
	TypeProvisionInit  = "provision_init"
	TypeProvisionStep  = "provision_step"
	TypeProvisionServe = "provision_serve"
)

// MaxProvisionRecord bounds the bytes one provisioning step carries in
// either direction: a TLS flight with an RA-TLS certificate (a few KiB),
// or the provisioning payload (keys and a checkpoint with its pending
// calls).
const MaxProvisionRecord = 8 << 20

// ProvisionInit starts an enclave that has no shard keys yet as a
// provisioning requester, instead of Init. Init carries what Init would
// (shard, chain, dev flags, confirmation batch) and must have no sealed
// keys and no checkpoint. The enclave creates its own signer (which never
// leaves it) and starts the TLS client; Out is its first flight.
type ProvisionInit struct {
	Init Init `cbor:"init"`
	// Collateral is PCS collateral (from the chain's attestation policy)
	// for an enclave whose build takes it from the host (Gramine): Intel
	// signs it, and the enclave verifies it under its own roots.
	Collateral *teerex.Collateral `cbor:"collateral,omitempty"`
}

func (*ProvisionInit) Type() string      { return TypeProvisionInit }
func (*ProvisionInit) newReply() Reply   { return &ProvisionInitReply{} }
func (*ProvisionInitReply) Type() string { return TypeProvisionInit + replySuffix }

// ProvisionInitReply carries the requester's public identity so far and
// its first TLS flight for the provider.
type ProvisionInitReply struct {
	MRENCLAVE    [32]byte `cbor:"mrenclave"`
	SignerPublic []byte   `cbor:"signer_public"`
	Out          []byte   `cbor:"out"`
}

// ProvisionStep feeds the requester the provider's TLS bytes.
type ProvisionStep struct {
	In []byte `cbor:"in"`
}

func (*ProvisionStep) Type() string      { return TypeProvisionStep }
func (*ProvisionStep) newReply() Reply   { return &ProvisionStepReply{} }
func (*ProvisionStepReply) Type() string { return TypeProvisionStep + replySuffix }

// ProvisionStepReply is the requester's next TLS bytes for the provider;
// when Done, Result is set (and Out may still hold a final record, e.g. a
// close notification, that the provider need not get).
type ProvisionStepReply struct {
	Out    []byte           `cbor:"out"`
	Done   bool             `cbor:"done"`
	Result *ProvisionResult `cbor:"result,omitempty"`
}

// ProvisionResult is what a requester holds once provisioned: its keys
// (its own signer, the shard's shielding and state keys) and the
// provider's checkpoint, each sealed to the requester, and the
// checkpoint's public position.
type ProvisionResult struct {
	ShieldingPublic []byte     `cbor:"shielding_public"`
	SealedKeys      SealedKeys `cbor:"sealed_keys"`
	Checkpoint      []byte     `cbor:"checkpoint"`
	Height          int64      `cbor:"height"`
	StateRoot       [32]byte   `cbor:"state_root"`
	Entries         uint64     `cbor:"entries"`
}

// ProvisionServe feeds a provider enclave (one that is initialised with
// the shard's keys) a requester's TLS bytes. Session 0 opens a new
// session: Checkpoint must then be the sealed checkpoint the host
// persisted with the entries it will serve; later steps name the session
// the reply returned. Abort ends a session.
type ProvisionServe struct {
	Session uint64 `cbor:"session"`
	// Checkpoint is the sealed checkpoint of the snapshot the host serves,
	// sent once the enclave asks for it (NeedCheckpoint), with no In.
	Checkpoint []byte `cbor:"checkpoint,omitempty"`
	In         []byte `cbor:"in"`
	Abort      bool   `cbor:"abort,omitempty"`
	// Collateral is as ProvisionInit's, with session 0.
	Collateral *teerex.Collateral `cbor:"collateral,omitempty"`
	// Registry proves, with Checkpoint, the provider enclave's registration
	// (teerex.EnclaveKey of its signer), the attestation policy and the
	// allowlist, queried at the height before the checkpoint's, whose
	// header's app hash the requester checks them against.
	Registry []ProvedValue `cbor:"registry,omitempty"`
}

func (*ProvisionServe) Type() string      { return TypeProvisionServe }
func (*ProvisionServe) newReply() Reply   { return &ProvisionServeReply{} }
func (*ProvisionServeReply) Type() string { return TypeProvisionServe + replySuffix }

// ProvisionServeReply is the provider's next TLS bytes for the requester.
// Done means the provider sent the keys (or the session ended) and forgot
// the session.
type ProvisionServeReply struct {
	Session uint64 `cbor:"session"`
	Out     []byte `cbor:"out"`
	Done    bool   `cbor:"done"`
	// NeedCheckpoint means the requester is attested and asked for the
	// shard: send the session's Checkpoint (and Registry) now. Until this
	// point the host copies no state, so an unattested peer costs it
	// nothing but a handshake.
	NeedCheckpoint bool `cbor:"need_checkpoint,omitempty"`
}
