package protocol

import "github.com/integritee-go/integritee/chain/sidechain"

// Message types of direct invocation.
const (
	TypeSubmitCalls   = "submit_calls"
	TypePrivateGetter = "private_getter"
)

// Bounds of a SubmitCalls.
const (
	// MaxSubmitCalls is the most calls per request.
	MaxSubmitCalls = 1024
	// MaxCallCiphertext bounds one call's ciphertext: a maximal trusted
	// call (stf.MaxCallBytes) plus HPKE overhead.
	MaxCallCiphertext = 66 << 10
)

// SubmitCalls executes a batch of direct calls: each is a trusted call
// (stf.SignedCall CBOR) HPKE-encrypted to the shard's shielding key with
// shielding.InfoTrustedCall, exactly as in an invoke.
type SubmitCalls struct {
	Calls [][]byte `cbor:"calls"`
	// Timestamp is the host's clock in Unix milliseconds, for the block
	// header. The enclave keeps block timestamps monotonic and never
	// before the last verified chain header.
	Timestamp int64 `cbor:"timestamp"`
}

func (*SubmitCalls) Type() string      { return TypeSubmitCalls }
func (*SubmitCalls) newReply() Reply   { return &SubmitCallsReply{} }
func (*SubmitCallsReply) Type() string { return TypeSubmitCalls + replySuffix }

// CallStatus is what became of a direct call.
type CallStatus uint8

// Call statuses.
const (
	// CallExecuted: applied; its effects are in the block.
	CallExecuted CallStatus = 1
	// CallFailed: authentic and fresh but refused by the STF; the block
	// holds it and only its nonce was consumed.
	CallFailed CallStatus = 2
	// CallInvalid: undecryptable, malformed, badly signed or with a wrong
	// nonce; not in the block, nothing changed.
	CallInvalid CallStatus = 3
)

func (s CallStatus) String() string {
	switch s {
	case CallExecuted:
		return "executed"
	case CallFailed:
		return "failed"
	case CallInvalid:
		return "invalid"
	}
	return "unknown"
}

// Reasons of invalid calls (CallResult.Reason). Failed calls carry the
// STF's error class (e.g. "balances: insufficient funds").
const (
	ReasonUndecryptable = "undecryptable"
	// ReasonUnknownChannel is a channel data ciphertext
	// (shielding.ChannelData) whose channel this enclave has not seen
	// opened: the client sends the call again as an open ciphertext.
	ReasonUnknownChannel = "unknown channel"
	ReasonTooLarge       = "ciphertext too large"
	ReasonMalformed      = "malformed"
	ReasonBadSignature   = "bad signature"
	ReasonStaleNonce     = "stale nonce"
	ReasonFutureNonce    = "future nonce"
	ReasonFailed         = "failed"
)

// CallResult is the outcome of one call of a SubmitCalls, in request
// order.
type CallResult struct {
	Status CallStatus `cbor:"status"`
	// Reason classifies a failure or invalidity; empty when executed.
	Reason string `cbor:"reason,omitempty"`
	// Index is the call's position among the block's calls (the leaf of
	// Header.CallsRoot), for executed and failed calls.
	Index uint32 `cbor:"index"`
}

// SubmitCallsReply is the outcome of a SubmitCalls. See the host duties
// above: Changes, Checkpoint, Outgoing and Block are persisted atomically
// before any executed status leaves the host.
type SubmitCallsReply struct {
	Results []CallResult `cbor:"results"`
	// Block is the signed header of the shard block holding the executed
	// and failed calls; nil if every call was invalid.
	Block *sidechain.SignedHeader `cbor:"block,omitempty"`
	// Leaves are the block's leaves (sidechain.CallLeaf), in order: what
	// Block.Header.CallsRoot commits to.
	Leaves     [][]byte   `cbor:"leaves,omitempty"`
	StateRoot  [32]byte   `cbor:"state_root"`
	Changes    []Entry    `cbor:"changes,omitempty"`
	Checkpoint []byte     `cbor:"checkpoint,omitempty"`
	Outgoing   []Outgoing `cbor:"outgoing,omitempty"`
	// With replication (ReplicaStart) the calls are proposed: Proposal is
	// the ID their ProposalResult will carry, Replica the host's work, and
	// the fields above are empty.
	Proposal [16]byte       `cbor:"proposal,omitempty"`
	Replica  *ReplicaOutput `cbor:"replica,omitempty"`
}

// PrivateGetter runs a getter whose answer only the asking client can
// read: Request is a shielding.GetterRequest encrypted to the shard's
// shielding key with shielding.InfoGetter (shielding.NewGetterRequest).
// The enclave answers only a getter signed for the request's reply key
// and not expired by the time of the latest chain block it verified
// (stf.Runtime.Get), so a host replaying a request gets refusals once the
// chain has moved past its expiry.
type PrivateGetter struct {
	Request []byte `cbor:"request"`
}

func (*PrivateGetter) Type() string      { return TypePrivateGetter }
func (*PrivateGetter) newReply() Reply   { return &PrivateGetterReply{} }
func (*PrivateGetterReply) Type() string { return TypePrivateGetter + replySuffix }

// PrivateGetterReply is the shielding.GetterResponse encrypted to the
// request's reply key (value, or the getter's refusal). A request that
// does not decrypt, or carries no valid reply key, gets an error reply
// with CodeInvalidInput instead, since there is nobody to encrypt to.
type PrivateGetterReply struct {
	Response []byte `cbor:"response"`
}
