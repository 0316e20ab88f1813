package protocol

import (
	"github.com/integritee-go/integritee/chain/sidechain"
	"github.com/integritee-go/integritee/chain/tx"
)

// Replication (docs/sidechain.md): the enclaves of a shard order its state
// transitions with Raft (enclave/replica). Once the host sent
// ReplicaStart, a ProcessBlock or SubmitCalls proposes its transition and
// the transitions are applied as the group commits them, in any request
// that moves the node on (ReplicaStep, ProcessBlock, SubmitCalls): each
// reply's Replica output is then the host's work, in this order:
//
//  1. Persist Records (appended to the shard's record log) and every
//     Applied transition in ONE atomic batch; a reply not persisted did
//     not happen (restart the enclave from the store).
//  2. Then send Messages to the workers of their recipients.
//  3. Answer the clients of Results.
const (
	TypeReplicaStart = "replica_start"
	TypeReplicaStep  = "replica_step"
)

// Bounds of replication requests.
const (
	MaxReplicaEnvelopes = 1024
	MaxReplicaReads     = 1024
	MaxReadIDBytes      = 32
	MaxEnvelopeBytes    = 2 << 20
)

// ReplicaStart starts the enclave's replica from the shard's persisted
// records, in order (sent after Init and Resume; in chunks, More on all
// but the last). A new shard's first enclave (no records, no provisioned
// state) founds the group alone; an enclave provisioned from a peer waits
// to be added by the group's leader.
type ReplicaStart struct {
	Records [][]byte `cbor:"records"`
	More    bool     `cbor:"more"`
}

// ReplicaStartReply reports the replica once started (zero while More).
type ReplicaStartReply struct {
	Replica *ReplicaOutput `cbor:"replica"`
}

// ReplicaStep advances the replica: Envelopes that peers sent, then Ticks
// ticks of its clock (the host ticks every ReplicaTick).
type ReplicaStep struct {
	Ticks     uint32   `cbor:"ticks"`
	Envelopes [][]byte `cbor:"envelopes"`
	// Registry, if set, lists the shard measurement's registrations as
	// proved values at the state the enclave's light client trusts (the
	// app hash of its latest verified header: query height one below):
	// the number of registrations, each slot's signer, each registration,
	// the policy and the allowlist. The leader makes the group's members
	// the active ones among them (new ones as learners until they caught
	// up); proofs that do not verify are refused.
	Registry []ProvedValue `cbor:"registry,omitempty"`
	// Ahead, if set, is a chain header later than the light client's with
	// its validators, and the validators the light client's header names
	// as the next: Registry is then proved against Ahead's app hash (query
	// height one below it). An enclave whose group knows no leader applies
	// no chain block, so its light client stands still; Ahead shows it the
	// chain's present, so that it sees the other members fall silent
	// (teerex's liveness period) and can take the group over. It is
	// verified from the light client's header (lightclient.VerifyAhead),
	// not accepted.
	Ahead *Ahead `cbor:"ahead,omitempty"`
	// Reads asks for read indexes (Raft's linearizable reads), by ID: the
	// answers come in ReplicaOutput.Reads, now or later. A getter run once
	// AppliedIndex reached one sees every call committed before the ask,
	// whichever worker took it.
	Reads [][]byte `cbor:"reads,omitempty"`
}

// Ahead is a later chain header for ReplicaStep.
type Ahead struct {
	Header         Header `cbor:"header"`
	NextValidators []byte `cbor:"next_validators"`
}

// ReplicaStepReply is the replica's output.
type ReplicaStepReply struct {
	Replica *ReplicaOutput `cbor:"replica"`
}

func (*ReplicaStart) Type() string      { return TypeReplicaStart }
func (*ReplicaStart) newReply() Reply   { return &ReplicaStartReply{} }
func (*ReplicaStartReply) Type() string { return TypeReplicaStart + replySuffix }
func (*ReplicaStep) Type() string       { return TypeReplicaStep }
func (*ReplicaStep) newReply() Reply    { return &ReplicaStepReply{} }
func (*ReplicaStepReply) Type() string  { return TypeReplicaStep + replySuffix }

// ReplicaOutput is the host's work after a request that moved the replica
// (see the order above).
type ReplicaOutput struct {
	Records [][]byte `cbor:"records,omitempty"`
	// KeepRecords, if not 0, says the last of Records compacted the log:
	// the host keeps only the last KeepRecords of its stored records,
	// dropping the others in the same write as Records.
	KeepRecords uint64     `cbor:"keep_records,omitempty"`
	Messages    []Envelope `cbor:"messages,omitempty"`
	Applied     []Applied  `cbor:"applied,omitempty"`
	// Results are the outcomes of this enclave's proposals (SubmitCalls)
	// that were applied, by proposal ID.
	Results []ProposalResult `cbor:"results,omitempty"`
	// Leader is the group's leader as this replica knows it (zero if
	// none); Voters the group's voters.
	Leader   tx.Address   `cbor:"leader"`
	IsLeader bool         `cbor:"is_leader"`
	Voters   []tx.Address `cbor:"voters,omitempty"`
	// Height is the last chain block applied; AppliedIndex the last log
	// entry applied.
	Height       int64  `cbor:"height"`
	AppliedIndex uint64 `cbor:"applied_index"`
	// Reads answer ReplicaStep.Reads.
	Reads []ReadIndex `cbor:"reads,omitempty"`
	// Awaiting, if not 0, is the chain height of the next committed
	// entry, which this enclave applies only once its light client
	// verified that block: its host should feed it now rather than at
	// its next poll (the entries after it wait). A hint for liveness
	// only; the enclave checks the block as always.
	Awaiting int64 `cbor:"awaiting,omitempty"`
}

// ReadIndex is the group's commit index when a read was asked for.
type ReadIndex struct {
	ID    []byte `cbor:"id"`
	Index uint64 `cbor:"index"`
}

// Envelope is a sealed message for the enclave To on another worker.
type Envelope struct {
	To   tx.Address `cbor:"to"`
	Data []byte     `cbor:"data"`
}

// Applied is one applied transition, as ProcessBlockReply and
// SubmitCallsReply carry it without replication: a chain block (Chain) or
// a direct shard block.
type Applied struct {
	Chain      bool                    `cbor:"chain"`
	Height     int64                   `cbor:"height"`
	StateRoot  [32]byte                `cbor:"state_root"`
	Changes    []Entry                 `cbor:"changes,omitempty"`
	Block      *sidechain.SignedHeader `cbor:"block,omitempty"`
	Outgoing   []Outgoing              `cbor:"outgoing,omitempty"`
	Checkpoint []byte                  `cbor:"checkpoint"`
}

// ProposalResult is what became of the calls of one SubmitCalls, as
// SubmitCallsReply reports them without replication: the results, the
// shard block holding the executed and failed ones (nil if none; signed
// by this enclave, its author) and the block's leaves.
type ProposalResult struct {
	ID      [16]byte                `cbor:"id"`
	Results []CallResult            `cbor:"results"`
	Block   *sidechain.SignedHeader `cbor:"block,omitempty"`
	Leaves  [][]byte                `cbor:"leaves,omitempty"`
}
