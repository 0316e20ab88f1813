package protocol

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/integritee-go/integritee/chain/sidechain"
	"github.com/integritee-go/integritee/chain/tx"
	"github.com/integritee-go/integritee/chain/types"
)

// Version is the protocol version every envelope carries. A server answers
// any other version with CodeUnsupportedVersion. Version 2 packs
// LoadEntries' entries (Packed); a host and an enclave of different
// versions refuse each other at the first request instead of loading no
// state. Version 3 adds SignedTxs.Covers: an enclave that signs votes in
// runs and a host that takes one transaction per call would drop votes.
const Version = 3

// Request is a typed request. The set is closed: only this package's types
// implement it.
type Request interface {
	// Type is the message type on the wire.
	Type() string
	newReply() Reply
}

// Reply is the typed result of a request.
type Reply interface {
	// Type is the message type on the wire: the request's type + ".reply".
	Type() string
}

// Message types on the wire.
const (
	TypeInit             = "init"
	TypeLoadEntries      = "load_entries"
	TypeResume           = "resume"
	TypeAttest           = "attest"
	TypeSignRegistration = "sign_registration"
	TypeProcessBlock     = "process_block"
	TypeSignOutgoing     = "sign_outgoing"
	TypeExecuteGetter    = "execute_getter"
	TypeStateInfo        = "state_info"
	TypeGetState         = "get_state"

	replySuffix = ".reply"
	// TypeError is the type of the error variant of every reply.
	TypeError = "error"
)

// newRequest returns a zero request of wire type t.
func newRequest(t string) (Request, bool) {
	switch t {
	case TypeInit:
		return &Init{}, true
	case TypeLoadEntries:
		return &LoadEntries{}, true
	case TypeResume:
		return &Resume{}, true
	case TypeAttest:
		return &Attest{}, true
	case TypeSignRegistration:
		return &SignRegistration{}, true
	case TypeProcessBlock:
		return &ProcessBlock{}, true
	case TypeSignOutgoing:
		return &SignOutgoing{}, true
	case TypeExecuteGetter:
		return &ExecuteGetter{}, true
	case TypeStateInfo:
		return &StateInfo{}, true
	case TypeGetState:
		return &GetState{}, true
	case TypeSubmitCalls:
		return &SubmitCalls{}, true
	case TypePrivateGetter:
		return &PrivateGetter{}, true
	case TypeProvisionInit:
		return &ProvisionInit{}, true
	case TypeProvisionStep:
		return &ProvisionStep{}, true
	case TypeProvisionServe:
		return &ProvisionServe{}, true
	case TypeReplicaStart:
		return &ReplicaStart{}, true
	case TypeReplicaStep:
		return &ReplicaStep{}, true
	}
	return nil, false
}

// Requests lists a zero value of every request type (for tests that walk
// the protocol, such as the no-private-keys check).
func Requests() []Request {
	var out []Request
	for _, t := range []string{TypeInit, TypeLoadEntries, TypeResume, TypeAttest, TypeSignRegistration,
		TypeProcessBlock, TypeSignOutgoing, TypeExecuteGetter, TypeStateInfo, TypeGetState,
		TypeSubmitCalls, TypePrivateGetter, TypeProvisionInit, TypeProvisionStep, TypeProvisionServe,
		TypeReplicaStart, TypeReplicaStep} {
		r, _ := newRequest(t)
		out = append(out, r)
	}
	return out
}

// ReplyFor returns a zero value of the reply type of req.
func ReplyFor(req Request) Reply { return req.newReply() }

// SealedKeys are the enclave's keys sealed to its TEE (tee.Backend
// SealingKey), one blob per key so that the shard keys can later be
// replaced by provisioning without touching the signer. The host stores
// them as they are and hands them back in Init after a restart.
type SealedKeys struct {
	Signer    []byte `cbor:"signer"`
	Shielding []byte `cbor:"shielding"`
	State     []byte `cbor:"state"`
}

// Entry is one encrypted state entry: a blinded key (keyed hash of the
// plaintext key) and the sealed value. In a change set an empty Value
// deletes the entry.
type Entry struct {
	Key   types.Hash `cbor:"k"`
	Value []byte     `cbor:"v"`
}

// Init starts the enclave for one shard. On first start SealedKeys and
// Checkpoint are nil and the enclave creates its keys; after a restart the
// host passes back what it persisted, the keys are unsealed (never
// regenerated) and, if Checkpoint is set, the enclave waits for the state
// (LoadEntries, then Resume) before it processes blocks.
type Init struct {
	Shard   [32]byte `cbor:"shard"`
	ChainID string   `cbor:"chain_id"`
	// GenesisValidators is the chain's genesis validator set
	// (cmtproto.ValidatorSet bytes, see EncodeValidatorSet); the light
	// client's root of trust when there is no checkpoint yet.
	GenesisValidators []byte `cbor:"genesis_validators"`
	// InitialHeight is the chain's first block height (1 normally).
	InitialHeight int64       `cbor:"initial_height"`
	SealedKeys    *SealedKeys `cbor:"sealed_keys,omitempty"`
	// Checkpoint is the latest ProcessBlockReply.Checkpoint the host
	// persisted (with the state entries of the same height).
	Checkpoint []byte `cbor:"checkpoint,omitempty"`
	// ConfirmHeartbeat is the heartbeat of confirm_processed_block, in
	// milliseconds of chain block time (0: confirm every block). The
	// enclave confirms a chain block that changed its shard (calls of the
	// shard, or a state hash other than the last confirmed one) and,
	// otherwise, the first block of each heartbeat window of block time.
	// Every worker of a shard should use the same value, so that their
	// confirmations name the same heights and the chain compares them.
	ConfirmHeartbeat uint64 `cbor:"confirm_heartbeat"`
	// Nothing here switches dev features on: whether the enclave has them
	// is a property of its build (enclave.Config.Dev), so part of its
	// measurement.
}

func (*Init) Type() string      { return TypeInit }
func (*Init) newReply() Reply   { return &InitReply{} }
func (*InitReply) Type() string { return TypeInit + replySuffix }

// InitReply carries the enclave's public identity. SealedKeys must be
// persisted (durably, before anything that depends on the keys, such as a
// registration) and handed back in Init after a restart.
type InitReply struct {
	MRENCLAVE [32]byte `cbor:"mrenclave"`
	// SignerPublic is the enclave's ed25519 public key: its chain account.
	SignerPublic []byte `cbor:"signer_public"`
	// ShieldingPublic is the serialised HPKE public key
	// (ML-KEM-768+X25519) clients encrypt to.
	ShieldingPublic []byte     `cbor:"shielding_public"`
	SealedKeys      SealedKeys `cbor:"sealed_keys"`
	// Created is true when the keys were generated by this Init.
	Created bool `cbor:"created"`
	// Height is the last processed block height (InitialHeight-1 when
	// none), StateRoot the state hash at that height.
	Height    int64    `cbor:"height"`
	StateRoot [32]byte `cbor:"state_root"`
	// AwaitingEntries is true when the host must send the persisted
	// entries (LoadEntries) and then Resume.
	AwaitingEntries bool `cbor:"awaiting_entries"`
}

// LoadEntries feeds persisted state entries to the enclave after an Init
// with a checkpoint. Send them in chunks that fit the frame limit, in any
// order, each entry once. Packed holds the chunk's entries one after the
// other as AppendEntry writes them, not as a CBOR array: a restart loads
// every entry of the state, and CBOR's reflection over a million entries
// cost more CPU than the enclave's decryption of them (docs/performance.md,
// "Restart: entries packed").
type LoadEntries struct {
	Packed []byte `cbor:"packed"`
}

// AppendEntry appends an entry in LoadEntries' packed form: the 32-byte
// key, the value's length as a uvarint, the value.
func AppendEntry(b []byte, key [32]byte, value []byte) []byte {
	b = append(b, key[:]...)
	b = binary.AppendUvarint(b, uint64(len(value)))
	return append(b, value...)
}

// PackEntries returns the LoadEntries request of entries.
func PackEntries(entries []Entry) *LoadEntries {
	n := 0
	for _, e := range entries {
		n += 32 + binary.MaxVarintLen32 + len(e.Value)
	}
	b := make([]byte, 0, n)
	for _, e := range entries {
		b = AppendEntry(b, e.Key, e.Value)
	}
	return &LoadEntries{Packed: b}
}

// ErrPacked reports a LoadEntries payload that is cut short or has a
// value length past its end.
var ErrPacked = errors.New("protocol: malformed packed entries")

// Unpack returns the request's entries, whose values alias Packed; a
// malformed payload gives ErrPacked and no entries.
func (r *LoadEntries) Unpack() ([]Entry, error) {
	var out []Entry
	for b := r.Packed; len(b) > 0; {
		if len(b) < 32 {
			return nil, fmt.Errorf("%w: %d bytes left where a key of 32 starts", ErrPacked, len(b))
		}
		key := [32]byte(b[:32])
		l, n := binary.Uvarint(b[32:])
		if n <= 0 || n != len(binary.AppendUvarint(nil, l)) { // one form per payload
			return nil, fmt.Errorf("%w: bad value length after key %x", ErrPacked, key[:8])
		}
		b = b[32+n:]
		if l > uint64(len(b)) {
			return nil, fmt.Errorf("%w: value of %d bytes, %d left", ErrPacked, l, len(b))
		}
		out = append(out, Entry{Key: key, Value: b[:l:l]})
		b = b[l:]
	}
	return out, nil
}

func (*LoadEntries) Type() string      { return TypeLoadEntries }
func (*LoadEntries) newReply() Reply   { return &LoadEntriesReply{} }
func (*LoadEntriesReply) Type() string { return TypeLoadEntries + replySuffix }

// LoadEntriesReply counts the entries loaded so far.
type LoadEntriesReply struct {
	Loaded uint64 `cbor:"loaded"`
}

// Resume ends the state load: the enclave checks that the loaded entries
// hash to the checkpoint's state root and starts accepting blocks.
type Resume struct{}

func (*Resume) Type() string      { return TypeResume }
func (*Resume) newReply() Reply   { return &ResumeReply{} }
func (*ResumeReply) Type() string { return TypeResume + replySuffix }

// ResumeReply confirms the restored state.
type ResumeReply struct {
	Height    int64    `cbor:"height"`
	StateRoot [32]byte `cbor:"state_root"`
	Entries   uint64   `cbor:"entries"`
}

// Attest asks for a quote whose report data commits to the enclave's
// signer and shielding keys: SHA-256(signer_pub || shielding_pub) || 0^32.
type Attest struct{}

func (*Attest) Type() string      { return TypeAttest }
func (*Attest) newReply() Reply   { return &AttestReply{} }
func (*AttestReply) Type() string { return TypeAttest + replySuffix }

// AttestReply is the TEE's quote.
type AttestReply struct {
	Quote      []byte   `cbor:"quote"`
	ReportData [64]byte `cbor:"report_data"`
}

// TxParams are what the enclave needs from the chain to sign transactions
// of its account: the chain ID, the account's next nonce and the fee
// schedule (fee = BaseFee + PerByteFee * encoded size).
type TxParams struct {
	ChainID    string `cbor:"chain_id"`
	Nonce      uint64 `cbor:"nonce"`
	BaseFee    uint64 `cbor:"base_fee"`
	PerByteFee uint64 `cbor:"per_byte_fee"`
}

// SignRegistration asks for a signed teerex register_enclave transaction
// carrying a fresh quote (as Attest) and the worker's URL, or, with
// KeepAlive, a keep_alive transaction (the enclave is alive: teerex's
// liveness period).
type SignRegistration struct {
	Params    TxParams `cbor:"params"`
	WorkerURL string   `cbor:"worker_url"`
	KeepAlive bool     `cbor:"keep_alive,omitempty"`
}

func (*SignRegistration) Type() string    { return TypeSignRegistration }
func (*SignRegistration) newReply() Reply { return &SignedTxs{} }

// SignedTxs are chain transactions signed by the enclave, in nonce order,
// ready for broadcast_tx. NextNonce is the nonce after the last one.
// Covers, if set, says how many of SignOutgoing's calls each transaction
// carries, in order (the enclave takes consecutive votes for a run of shard
// blocks as one confirm_sidechain_blocks); empty, one each.
type SignedTxs struct {
	Txs       [][]byte `cbor:"txs"`
	NextNonce uint64   `cbor:"next_nonce"`
	Covers    []uint32 `cbor:"covers,omitempty"`
}

// Spans returns, for each transaction, the range [from, to) of the n
// calls signed that it carries, after checking that Covers (or its
// absence) accounts for each call once.
func (s *SignedTxs) Spans(n int) ([][2]int, error) {
	if len(s.Covers) == 0 {
		if len(s.Txs) != n {
			return nil, fmt.Errorf("%d transactions for %d calls", len(s.Txs), n)
		}
		spans := make([][2]int, n)
		for i := range spans {
			spans[i] = [2]int{i, i + 1}
		}
		return spans, nil
	}
	if len(s.Covers) != len(s.Txs) {
		return nil, fmt.Errorf("%d transactions, %d covers", len(s.Txs), len(s.Covers))
	}
	spans := make([][2]int, len(s.Txs))
	from := 0
	for i, c := range s.Covers {
		if c == 0 || uint64(c) > uint64(n-from) {
			return nil, fmt.Errorf("transaction %d covers %d of the %d calls left", i, c, n-from)
		}
		spans[i] = [2]int{from, from + int(c)}
		from += int(c)
	}
	if from != n {
		return nil, fmt.Errorf("transactions cover %d of %d calls", from, n)
	}
	return spans, nil
}

func (*SignedTxs) Type() string { return "signed_txs" }

// Header is a signed header with the validator set of its height, both as
// CometBFT protobuf bytes (EncodeSignedHeader, EncodeValidatorSet).
type Header struct {
	SignedHeader []byte `cbor:"signed_header"`
	Validators   []byte `cbor:"validators"`
}

// TxResult is the deterministic part of a transaction's execution result,
// as block_results reports it: what the next header's LastResultsHash
// commits to.
type TxResult struct {
	Code      uint32 `cbor:"code"`
	Data      []byte `cbor:"data"`
	GasWanted int64  `cbor:"gas_wanted"`
	GasUsed   int64  `cbor:"gas_used"`
}

// ProcessBlock feeds block Height() = last processed + 1. Its transactions
// are proved by Block's data hash and their results by Next's
// LastResultsHash, so the host can send block H once H+1 is committed.
type ProcessBlock struct {
	Block   Header     `cbor:"block"`
	Txs     [][]byte   `cbor:"txs"`
	Results []TxResult `cbor:"results"`
	// Next is the signed header of the following height and its
	// validators.
	Next Header `cbor:"next"`
}

func (*ProcessBlock) Type() string      { return TypeProcessBlock }
func (*ProcessBlock) newReply() Reply   { return &ProcessBlockReply{} }
func (*ProcessBlockReply) Type() string { return TypeProcessBlock + replySuffix }

// Outgoing is a chain call the enclave produced (unshield_funds,
// confirm_processed_block) with the enclave's tag on it, so that it can be
// signed again later (SignOutgoing) with another nonce, but only as
// produced.
type Outgoing struct {
	Call tx.Call `cbor:"call"`
	Tag  []byte  `cbor:"tag"`
}

// Stats counts what a block contained for the shard.
type Stats struct {
	// Invokes is the number of successful bridge invoke calls of the
	// shard; Applied of them executed, Failed were authentic but failed in
	// the STF (nonce consumed), Rejected were undecryptable, badly signed,
	// replayed or malformed (state unchanged).
	Invokes  uint32 `cbor:"invokes"`
	Applied  uint32 `cbor:"applied"`
	Failed   uint32 `cbor:"failed"`
	Rejected uint32 `cbor:"rejected"`
	// Shields counts shield_funds of the shard, ShieldsRejected those whose
	// recipient did not decrypt (the funds stay in the vault).
	Shields         uint32 `cbor:"shields"`
	ShieldsRejected uint32 `cbor:"shields_rejected"`
}

// ProcessBlockReply is the outcome of one block. The host persists Changes,
// Checkpoint and Outgoing in ONE atomic batch, then submits the transactions.
type ProcessBlockReply struct {
	Height    int64    `cbor:"height"`
	BlockHash []byte   `cbor:"block_hash"`
	StateRoot [32]byte `cbor:"state_root"`
	// Changes are the entries written (or, with an empty value, deleted)
	// by the block.
	Changes []Entry `cbor:"changes"`
	// Checkpoint is sealed enclave bookkeeping (height, state root, light
	// client header, pending confirmation) to hand back in Init.
	Checkpoint []byte     `cbor:"checkpoint"`
	Outgoing   []Outgoing `cbor:"outgoing"`
	Stats      Stats      `cbor:"stats"`
	// Block is the shard block of the chain block's shard calls (nil when
	// it had none); Outgoing holds its confirmation and unshields.
	Block *sidechain.SignedHeader `cbor:"block,omitempty"`
	// With replication (ReplicaStart) the block is verified and proposed:
	// it is applied when the group commits it, in this reply's Replica
	// output or a later one, and the fields above but Height and
	// BlockHash are empty.
	Replica *ReplicaOutput `cbor:"replica,omitempty"`
}

// SignOutgoing signs outgoing calls the enclave produced earlier, e.g. again
// after a nonce clash. Calls with a wrong tag are refused.
type SignOutgoing struct {
	Calls  []Outgoing `cbor:"calls"`
	Params TxParams   `cbor:"params"`
}

func (*SignOutgoing) Type() string    { return TypeSignOutgoing }
func (*SignOutgoing) newReply() Reply { return &SignedTxs{} }

// ExecuteGetter runs a getter signed by the account owner (stf.SignedGetter
// CBOR) for no reply key, under the same expiry rule as a PrivateGetter.
// The plaintext result goes to the host, so it is allowed in dev mode
// only; clients use PrivateGetter.
type ExecuteGetter struct {
	Getter []byte `cbor:"getter"`
}

func (*ExecuteGetter) Type() string    { return TypeExecuteGetter }
func (*ExecuteGetter) newReply() Reply { return &GetterReply{} }
func (*GetterReply) Type() string      { return TypeExecuteGetter + replySuffix }
func (*StateInfo) Type() string        { return TypeStateInfo }
func (*StateInfo) newReply() Reply     { return &StateInfoReply{} }
func (*StateInfoReply) Type() string   { return TypeStateInfo + replySuffix }
func (*GetState) Type() string         { return TypeGetState }
func (*GetState) newReply() Reply      { return &GetStateReply{} }
func (*GetStateReply) Type() string    { return TypeGetState + replySuffix }

// GetterReply is the getter's CBOR result.
type GetterReply struct {
	Value []byte `cbor:"value"`
}

// StateInfo asks for the enclave's public progress.
type StateInfo struct{}

// StateInfoReply is public bookkeeping: nothing secret.
type StateInfoReply struct {
	Height    int64    `cbor:"height"`
	StateRoot [32]byte `cbor:"state_root"`
	Entries   uint64   `cbor:"entries"`
	MRENCLAVE [32]byte `cbor:"mrenclave"`
}

// GetState is a debug request (dev mode only): the plaintext value of a
// state key.
type GetState struct {
	Key []byte `cbor:"key"`
}

// GetStateReply is the plaintext value; Found is false for an absent key.
type GetStateReply struct {
	Value []byte `cbor:"value"`
	Found bool   `cbor:"found"`
}
