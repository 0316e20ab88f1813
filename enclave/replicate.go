package enclave

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"slices"
	"sync/atomic"

	cmttypes "github.com/cometbft/cometbft/types"
	"github.com/fxamacker/cbor/v2"

	"github.com/integritee-go/integritee/chain/sidechain"
	"github.com/integritee-go/integritee/chain/teerex"
	"github.com/integritee-go/integritee/chain/tx"
	"github.com/integritee-go/integritee/chain/types"
	"github.com/integritee-go/integritee/enclave/lightclient"
	"github.com/integritee-go/integritee/enclave/protocol"
	"github.com/integritee-go/integritee/enclave/replica"
	"github.com/integritee-go/integritee/enclave/seal"
)

// Replication (docs/sidechain.md). Once the host sent ReplicaStart, the
// enclave no longer applies a chain block or a batch of direct calls when
// its host hands it one: it proposes it to the shard's Raft group
// (enclave/replica) and applies the group's committed log, in order, on
// every enclave of the shard. A chain block is applied only once this
// enclave's own light client verified it with the hash the log names; a
// direct batch is applied by every enclave the same way, its header's
// author and time taken from the log. So every enclave reaches the same
// state and the same shard blocks, whichever worker a call went to.

const labelRecord = "integritee/enclave/v1/replica-record"

// command is one entry of the shard's log. Its format is versioned by
// its keys: "p" is a direct batch of decrypted, authenticated calls (log
// format 2); "d", the ciphertexts of format 1, is refused (decodeCommand).
type command struct {
	Direct *directCommand  `cbor:"p,omitempty"`
	Chain  *chainCommand   `cbor:"c,omitempty"`
	Legacy cbor.RawMessage `cbor:"d,omitempty"`
}

// directCommand is a batch of direct calls a worker received, decrypted
// and authenticated by the enclave that proposed it (prepareCalls). Only
// the shard's enclaves can append to the log (docs/sidechain.md), so the
// others apply the calls without decrypting them or checking their
// signatures again.
type directCommand struct {
	ID       [16]byte       `cbor:"id"`
	Proposer tx.Address     `cbor:"proposer"`
	Time     int64          `cbor:"time"`
	Calls    []preparedCall `cbor:"calls"`
}

// errLegacyLog refuses a log entry of format 1.
var errLegacyLog = errors.New("direct calls logged as ciphertexts (log format 1, before calls were decrypted once by the proposer); " +
	"this enclave reads log format 2 only: provision this worker again from an up-to-date one")

// decodeCommand decodes a log entry.
func decodeCommand(b []byte) (command, error) {
	var cmd command
	if err := protocol.Unmarshal(b, &cmd); err != nil {
		return cmd, err
	}
	if len(cmd.Legacy) > 0 {
		return cmd, errLegacyLog
	}
	return cmd, nil
}

// chainCommand is the next chain block, by height and hash.
type chainCommand struct {
	Height int64  `cbor:"height"`
	Hash   []byte `cbor:"hash"`
}

// replication is the enclave's replica and what it applies.
type replication struct {
	node *replica.Node
	// records are ReplicaStart's, until the node starts.
	records [][]byte
	// applied is the index of the last log entry applied (checkpointed).
	applied uint64
	// verified is the chain block after the light client's, verified and
	// waiting for its place in the log.
	verified *lightclient.Block
	// queue holds committed entries not yet applied: they wait behind a
	// chain block this enclave has not verified yet, the block at
	// height awaiting (0 when none waits).
	queue    []replica.Entry
	awaiting int64
	// ahead is the height of the latest Ahead header verified.
	ahead int64
	// stored is the applied index of the last checkpoint sealed: the host
	// stores it with the output that carries it, so the log up to it may
	// be compacted. join is the restored checkpoint's position, where a
	// provisioned replica without records starts its log.
	stored uint64
	join   *replica.Position
	// head is the restored checkpoint's record head (replica.Config.After).
	head *replica.Head
	// joining is set while the leader sees an active registered enclave
	// that is not a voter yet: it joins from a position the leader cannot
	// know, so the log is kept for it (replica.CompactionPoint).
	joining bool
	// proposed is the last command this enclave proposed, with its
	// encoding: the log hands those bytes back to be applied, mostly in
	// the same request, and decoding them again was 4% of the enclave's
	// CPU under load. Any other entry is decoded (command). A proposal
	// that never commits stays until the next: one batch at most.
	proposed proposal
	// decodedBatches counts the direct batches decoded from the log
	// (tests: a proposer takes its own from proposed).
	decodedBatches atomic.Uint64
}

// proposal is a command and its encoding.
type proposal struct {
	data []byte
	cmd  command
}

// command returns the command of log entry b: the one this enclave
// proposed as b, once, or else b decoded. Both are the same command
// (TestProposedCommandIsLogged).
func (r *replication) command(b []byte) (command, error) {
	if p := r.proposed; p.data != nil && bytes.Equal(p.data, b) {
		r.proposed = proposal{}
		return p.cmd, nil
	}
	cmd, err := decodeCommand(b)
	if cmd.Direct != nil {
		r.decodedBatches.Add(1)
	}
	return cmd, err
}

// recordSealer seals the replica's records to this enclave and shard.
type recordSealer struct{ e *Enclave }

func (s recordSealer) Seal(p []byte) ([]byte, error) {
	return seal.Seal(s.e.cfg.Backend, labelRecord, s.e.scope, p)
}

func (s recordSealer) Open(b []byte) ([]byte, error) {
	return seal.Open(s.e.cfg.Backend, labelRecord, s.e.scope, b)
}

func (e *Enclave) replicaStart(r *protocol.ReplicaStart) (protocol.Reply, error) {
	if e.repl.node != nil {
		return nil, protocol.Errorf(protocol.CodeAlreadyInitialized, "replica already started")
	}
	if len(e.repl.records)+len(r.Records) > maxRecords {
		return nil, protocol.Errorf(protocol.CodeInvalidInput, "more than %d records", maxRecords)
	}
	e.repl.records = append(e.repl.records, r.Records...)
	if r.More {
		return &protocol.ReplicaStartReply{}, nil
	}
	var voters []tx.Address
	if len(e.repl.records) == 0 && !e.joined {
		// A shard's first enclave founds the group; a provisioned one
		// waits to be added by its leader.
		voters = []tx.Address{e.signerAddress()}
	}
	cfg := replica.Config{Self: e.signerAddress(), ShardKey: e.keys.StateKey(), Sealer: recordSealer{e},
		KeepEntries: e.cfg.ReplicaKeepEntries, KeepBytes: e.cfg.ReplicaKeepBytes,
		// The shard's state never goes through the log (compaction).
		StatelessSnapshots: true,
		// Records cut behind the stored state are refused, none at all
		// included: this enclave would forget its votes, or found or join
		// a group again.
		After: e.repl.head}
	if len(e.repl.records) == 0 && e.joined {
		// A provisioned state starts the log at its position; a leader
		// that compacted its log sends the entries after it.
		cfg.Join = e.repl.join
	}
	n, err := replica.Start(cfg, e.repl.records, voters)
	if err != nil {
		e.repl.records = nil
		return nil, protocol.Errorf(protocol.CodeState, "%v", err)
	}
	if snap := n.SnapshotIndex(); snap > e.repl.applied {
		// The entries between are gone from the log: a host that kept its
		// records but restored an older state (or lost the newer one).
		e.repl.records = nil
		return nil, e.replicaFailed(fmt.Errorf("%w: the stored state is at log entry %d, the stored log starts after %d",
			errBehindLog, e.repl.applied, snap))
	}
	e.repl.node, e.repl.records = n, nil
	out := &protocol.ReplicaOutput{}
	if err := e.drive(out); err != nil {
		return nil, err
	}
	e.log.Info("replica started", "applied", e.repl.applied, "voters", len(out.Voters))
	return &protocol.ReplicaStartReply{Replica: out}, nil
}

// outsideLog refuses to apply a block or calls without the replica when
// the state was written by a replicated enclave: they would be missing
// from the shard's log, and a checkpoint sealed without the replica's
// record head would let a host start it again on no records at all.
func (e *Enclave) outsideLog() error {
	if e.repl.head != nil || e.repl.applied > 0 {
		return protocol.Errorf(protocol.CodeNotInitialized, "this state is the shard's replicated state at log entry %d: send replica_start first", e.repl.applied)
	}
	return nil
}

// maxRecords bounds the records of one replica start: compaction keeps
// them to a few thousand (replica.CompactionPoint).
const maxRecords = 1 << 20

// errBehindLog means this enclave's state is older than the start of the
// log it can get, its own or the leader's (compacted): only a newer state
// brings it back.
var errBehindLog = errors.New("replica: state older than the shard's log")

func (e *Enclave) replicaStep(r *protocol.ReplicaStep) (protocol.Reply, error) {
	if e.repl.node == nil {
		return nil, protocol.Errorf(protocol.CodeNotInitialized, "send replica_start first")
	}
	if len(r.Envelopes) > protocol.MaxReplicaEnvelopes || r.Ticks > 1000 {
		return nil, protocol.Errorf(protocol.CodeInvalidInput, "%d envelopes, %d ticks", len(r.Envelopes), r.Ticks)
	}
	if r.Registry != nil {
		if err := e.reconcile(r.Registry, r.Ahead); err != nil {
			return nil, err
		}
	}
	if len(r.Reads) > protocol.MaxReplicaReads {
		return nil, protocol.Errorf(protocol.CodeInvalidInput, "%d reads", len(r.Reads))
	}
	for _, id := range r.Reads {
		if len(id) == 0 || len(id) > protocol.MaxReadIDBytes {
			return nil, protocol.Errorf(protocol.CodeInvalidInput, "read ID of %d bytes", len(id))
		}
		if err := e.repl.node.ReadIndex(id); err != nil {
			return nil, e.replicaFailed(err)
		}
	}
	for _, env := range r.Envelopes {
		if len(env) > protocol.MaxEnvelopeBytes {
			continue
		}
		// A forged or misdirected envelope is dropped like a lost one: the
		// host can drop envelopes anyway.
		if err := e.repl.node.Receive(env); err != nil {
			if errors.Is(err, replica.ErrLogLost) {
				return nil, e.replicaFailed(err)
			}
			if errors.Is(err, replica.ErrBehindLog) {
				return nil, e.replicaFailed(fmt.Errorf("%w: %w", errBehindLog, err))
			}
			e.log.Debug("envelope refused", "err", err)
		}
	}
	// Ticks after the envelopes: a host that was held up hands several
	// ticks at once with the messages that arrived meanwhile, and a leader
	// that ticked first would find its followers silent for an election
	// timeout and step down (CheckQuorum), though they answered.
	for range r.Ticks {
		if err := e.repl.node.Tick(); err != nil {
			return nil, e.replicaFailed(err)
		}
	}
	out := &protocol.ReplicaOutput{}
	if err := e.drive(out); err != nil {
		return nil, err
	}
	return &protocol.ReplicaStepReply{Replica: out}, nil
}

// replicaFailed stops the enclave for good after the replica found its log
// rolled back: like ErrRolledBack, only provisioning brings it back.
func (e *Enclave) replicaFailed(err error) error {
	e.phase = phaseFailed
	e.log.Error("enclave stopped", "err", err)
	if errors.Is(err, replica.ErrLogLost) || errors.Is(err, errBehindLog) {
		return protocol.Errorf(protocol.CodeState, "%v: provision this worker again", err)
	}
	return protocol.Errorf(protocol.CodeInternal, "restart required: %v", err)
}

// proposeChain proposes verified block b as the log's next chain block
// and moves the replica on. Should several enclaves propose it, the log
// keeps the first and the others are skipped.
func (e *Enclave) proposeChain(b *lightclient.Block) (protocol.Reply, error) {
	// The leader proposes a block when its host first feeds it; another
	// enclave only when its host feeds it again because it is still not
	// ordered (a slow or failed leader), so that each block is usually one
	// entry of the log, not one per enclave.
	again := e.repl.verified != nil && e.repl.verified.Header.Height == b.Header.Height
	e.repl.verified = b
	if again || e.repl.node.Status().IsLeader {
		cmd := command{Chain: &chainCommand{Height: b.Header.Height, Hash: b.Header.Hash()}}
		if err := e.propose(cmd); err != nil && !errors.Is(err, errNoLeader) {
			return nil, err
		}
	}
	// Without a leader (a new member, an election) another enclave
	// orders the block, or the host feeds it again.
	out := &protocol.ReplicaOutput{}
	if err := e.drive(out); err != nil {
		return nil, err
	}
	return &protocol.ProcessBlockReply{Height: b.Header.Height, BlockHash: b.Header.Hash(), Replica: out}, nil
}

// proposeDirect proposes a batch of direct calls; their results come in a
// ProposalResult once the group committed and this enclave applied it.
func (e *Enclave) proposeDirect(r *protocol.SubmitCalls) (protocol.Reply, error) {
	var id [16]byte
	if _, err := rand.Read(id[:]); err != nil {
		return nil, err
	}
	// Decrypted and authenticated here, once for the whole shard.
	cmd := command{Direct: &directCommand{ID: id, Proposer: e.signerAddress(), Time: r.Timestamp, Calls: e.prepareCalls(r.Calls)}}
	if err := e.propose(cmd); errors.Is(err, errNoLeader) {
		return nil, protocol.Errorf(protocol.CodeNoQuorum, "%v", err)
	} else if err != nil {
		return nil, err
	}
	out := &protocol.ReplicaOutput{}
	if err := e.drive(out); err != nil {
		return nil, err
	}
	return &protocol.SubmitCallsReply{Proposal: id, Replica: out}, nil
}

// errNoLeader means a proposal was dropped: this replica knows no leader
// (an election is under way, or it is not a member yet).
var errNoLeader = errors.New("the shard's group has no leader this enclave can reach")

func (e *Enclave) propose(cmd command) error {
	b, err := protocol.Marshal(&cmd)
	if err != nil {
		return err
	}
	e.repl.proposed = proposal{}
	if err := e.repl.node.Propose(b); err != nil {
		if errors.Is(err, replica.ErrLogLost) {
			return e.replicaFailed(err)
		}
		return fmt.Errorf("%w: %w", errNoLeader, err)
	}
	e.repl.proposed = proposal{data: b, cmd: cmd}
	return nil
}

// drive hands out the replica's work until it has none, applying committed
// entries as it goes.
func (e *Enclave) drive(out *protocol.ReplicaOutput) error {
	for {
		o, ok, err := e.repl.node.Ready()
		if err != nil {
			return e.replicaFailed(err)
		}
		if !ok {
			break
		}
		if o.Snapshot != nil && o.Snapshot.Index > e.repl.applied {
			// The leader compacted its log past this enclave's state. A
			// snapshot carries no state (the shard's is far too large to
			// go through the log): provisioning brings a newer one.
			return e.replicaFailed(fmt.Errorf("%w: the leader's log starts after entry %d, this state is at %d",
				errBehindLog, o.Snapshot.Index, e.repl.applied))
		}
		out.Records = append(out.Records, o.Records...)
		for _, m := range o.Messages {
			out.Messages = append(out.Messages, protocol.Envelope{To: m.To, Data: m.Data})
		}
		e.repl.queue = append(e.repl.queue, o.Committed...)
		for _, r := range o.Reads {
			out.Reads = append(out.Reads, protocol.ReadIndex{ID: r.ID, Index: r.Index})
		}
		if err := e.repl.node.Advance(); err != nil {
			return e.replicaFailed(err)
		}
		if err := e.applyQueue(out); err != nil {
			return err
		}
	}
	// Entries may wait for the chain block just verified (ProcessBlock)
	// although Raft has nothing new: apply them now, not at the next
	// message.
	if err := e.applyQueue(out); err != nil {
		return err
	}
	// Compact the log up to the stored state once it is long: its record
	// comes last, stored with the checkpoint it relies on (or after it).
	if at, ok := e.repl.node.CompactionPoint(e.repl.stored, e.repl.joining); ok && e.retired == 0 {
		rec, keep, err := e.repl.node.Compact(at, nil)
		if err != nil {
			return e.replicaFailed(err)
		}
		out.Records = append(out.Records, rec)
		out.KeepRecords = uint64(keep)
		e.log.Debug("replica log compacted", "index", at, "keep_records", keep)
	}
	st := e.repl.node.Status()
	out.Leader, out.IsLeader, out.Voters, out.Height = st.Leader, st.IsLeader, st.Voters, e.lc.Height()
	out.AppliedIndex = e.repl.applied
	out.Awaiting = e.repl.awaiting
	return nil
}

// applyQueue applies committed entries in log order until one waits for a
// chain block this enclave has not verified.
func (e *Enclave) applyQueue(out *protocol.ReplicaOutput) error {
	e.repl.awaiting = 0
	for len(e.repl.queue) > 0 {
		if e.retired != 0 {
			// The new release applies the rest of the log.
			e.repl.queue = nil
			return nil
		}
		ent := e.repl.queue[0]
		if ent.Index <= e.repl.applied {
			e.repl.queue = e.repl.queue[1:] // in the state already (restart, provisioning)
			continue
		}
		cmd, err := e.repl.command(ent.Command)
		if err != nil {
			// Only the shard's enclaves can append to the log.
			return e.fail(fmt.Errorf("log entry %d: %w", ent.Index, err))
		}
		switch {
		case cmd.Chain != nil:
			h := cmd.Chain.Height
			if h <= e.lc.Height() {
				break // proposed by several enclaves: the first applied it
			}
			b := e.repl.verified
			if h != e.lc.Height()+1 || b == nil || b.Header.Height != h {
				e.repl.awaiting = h // wait for the host to feed block h
				return nil
			}
			if !bytes.Equal(b.Header.Hash(), cmd.Chain.Hash) {
				return e.replicaFailed(fmt.Errorf("the shard's log orders chain block %d %X, this light client verified %X",
					h, cmd.Chain.Hash, b.Header.Hash()))
			}
			e.repl.applied = ent.Index
			rep, err := e.applyChain(b)
			if e.retired != 0 {
				continue // stopped at this block, before applying it
			}
			if err != nil {
				return err
			}
			e.repl.verified = nil
			out.Applied = append(out.Applied, protocol.Applied{
				Chain: true, Height: rep.Height, StateRoot: rep.StateRoot, Changes: rep.Changes,
				Block: rep.Block, Outgoing: rep.Outgoing, Checkpoint: rep.Checkpoint,
			})
			e.repl.queue = e.repl.queue[1:]
			continue
		case cmd.Direct != nil:
			d := cmd.Direct
			if len(d.Calls) == 0 || len(d.Calls) > protocol.MaxSubmitCalls {
				break
			}
			e.repl.applied = ent.Index
			rep, err := e.applyDirect(d.Calls, d.Time, d.Proposer)
			if err != nil {
				return err
			}
			res := protocol.ProposalResult{ID: d.ID, Results: rep.Results, Block: rep.Block, Leaves: rep.Leaves}
			if rep.Block != nil {
				out.Applied = append(out.Applied, protocol.Applied{
					Height: e.lc.Height(), StateRoot: rep.StateRoot, Changes: rep.Changes,
					Block: rep.Block, Outgoing: rep.Outgoing, Checkpoint: rep.Checkpoint,
				})
			}
			if d.Proposer == e.signerAddress() {
				out.Results = append(out.Results, res)
			}
			e.repl.queue = e.repl.queue[1:]
			continue
		}
		// An entry that changes nothing still moves the applied index,
		// which the next checkpoint records.
		e.repl.applied = ent.Index
		e.repl.queue = e.repl.queue[1:]
	}
	return nil
}

// maxMembers bounds the registrations a membership listing may name.
const maxMembers = 256

// reconcile moves the group's membership one step towards the active
// registered enclaves of the measurements serving the shard from the light
// client's height on (this one, and during an upgrade the next release's
// until, from the enactment height, only the next release's: upgrade.go),
// as proved against the app hash of the light client's latest header: a registered enclave that is not a
// member joins as a learner, a learner that caught up becomes a voter, a
// voter that is no longer active is removed. Only the leader changes
// membership; one change at a time.
func (e *Enclave) reconcile(proved []protocol.ProvedValue, ahead *protocol.Ahead) error {
	hdr := e.lc.Trusted()
	if hdr == nil {
		return protocol.Errorf(protocol.CodeNotInitialized, "no chain block verified yet")
	}
	// A leader applies chain blocks and judges membership at its light
	// client's header; only a leaderless enclave needs a later one.
	if ahead != nil && !e.repl.node.Status().IsLeader {
		h, err := e.verifyAhead(ahead)
		if err != nil {
			return err
		}
		hdr = h
	}
	st := provedState{}
	for _, v := range proved {
		if err := v.Proof.Verify(hdr.AppHash, v.Key, v.Value); err != nil {
			return protocol.Errorf(protocol.CodeVerification, "registry proof of %q at the header of height %d: %v", v.Key, hdr.Height, err)
		}
		st[string(v.Key)] = v.Value
	}
	var active []tx.Address
	for _, m := range e.memberMeasurements() {
		var n uint64
		if _, err := st.get(teerex.EnclavesOfCountKey(m), &n); err != nil {
			return protocol.Errorf(protocol.CodeVerification, "%v", err)
		}
		if n > maxMembers || len(active)+int(n) > maxMembers {
			return protocol.Errorf(protocol.CodeInvalidInput, "%d registrations of %s, at most %d members supported", n, m, maxMembers)
		}
		for i := range n {
			var s tx.Address
			if ok, err := st.get(teerex.EnclavesOfSlotKey(m, i), &s); err != nil || !ok {
				return protocol.Errorf(protocol.CodeVerification, "registry slot %d of %s: %v", i, m, err)
			}
			enc, err := st.active(s, hdr.Time)
			var re *types.Error
			switch {
			case err == nil && enc.MRENCLAVE == m:
				active = append(active, s)
			case err == nil:
				return protocol.Errorf(protocol.CodeVerification, "registry slot %d of %s names an enclave of %s", i, m, enc.MRENCLAVE)
			case !errors.As(err, &re):
				return protocol.Errorf(protocol.CodeVerification, "%v", err)
			}
		}
	}
	status := e.repl.node.Status()
	e.repl.joining = false
	if !status.IsLeader {
		return e.takeOver(status, active, st)
	}
	for _, a := range active {
		if !slices.Contains(status.Voters, a) {
			e.repl.joining = true
		}
	}
	if err := e.changeMembership(status, active); errors.Is(err, replica.ErrLogLost) {
		return e.replicaFailed(err)
	}
	return nil
}

// takeOver makes this enclave its group's only voter when it knows no
// leader and is the only voter the chain still lists as active: the others
// stopped keeping alive (their machines lost, teerex's liveness period) or
// were removed, so they can never again form a quorum, not even to remove
// themselves, and a group of two that lost one would stop for good.
// Safety does not rest on this judgement: the chain counts only the votes
// of active enclaves, so a voter dropped while it still runs can get no
// block of its own confirmed, and it rejoins as a learner once active again
// (changeMembership). Only one enclave can be the only active voter, so
// two cannot take the group over at once from the same chain state.
func (e *Enclave) takeOver(status replica.Status, active []tx.Address, st provedState) error {
	self := e.signerAddress()
	if status.Leader != (tx.Address{}) || len(status.Voters) < 2 || !slices.Contains(status.Voters, self) {
		return nil
	}
	for _, v := range status.Voters {
		if v != self && slices.Contains(active, v) {
			return nil
		}
	}
	if !slices.Contains(active, self) {
		return nil
	}
	// The others may have committed entries without this enclave (it was
	// cut off from them) and got their blocks confirmed: its log would
	// then fork the shard's confirmed chain, which the chain would refuse
	// block by block. Refuse up front instead.
	var conf sidechain.Confirmation
	found, err := st.get(sidechain.ShardKey(types.Hash(e.shard)), &conf)
	if err != nil {
		e.log.Warn("not taking the shard's group over without a proof of its latest confirmation", "err", err)
		return nil
	}
	if found {
		if err := e.holdsConfirmed(conf.Number, conf.HeaderHash); err != nil {
			e.log.Error("not taking the shard's group over", "err", err)
			return nil
		}
	}
	e.log.Warn("taking the shard's group over: no other voter is active on chain", "voters", len(status.Voters), "height", e.lc.Height())
	if err := e.repl.node.ForceSolo(); errors.Is(err, replica.ErrNoTakeOver) {
		e.log.Error("not taking the shard's group over", "err", err)
		return nil
	} else if err != nil {
		return e.replicaFailed(err)
	}
	// The committed log is handed out again; what waited is in it.
	e.repl.queue = nil
	return nil
}

// holdsConfirmed reports, as an error, whether this enclave's blocks miss
// the shard block the chain confirmed as number n with hash: beyond its
// head, or another hash at that number among its recent blocks.
func (e *Enclave) holdsConfirmed(n uint64, hash types.Hash) error {
	head := uint64(0)
	if e.side != nil {
		head = e.side.Number
	}
	if n > head {
		return fmt.Errorf("the chain confirmed shard block %d, beyond this enclave's block %d: its log misses entries the others committed", n, head)
	}
	for _, r := range e.recent {
		if r.Number == n && r.Hash != hash {
			return fmt.Errorf("the chain confirmed shard block %d %s, this enclave's is %x", n, hash, r.Hash)
		}
	}
	return nil
}

// verifyAhead verifies a later header from the light client's.
func (e *Enclave) verifyAhead(a *protocol.Ahead) (*cmttypes.SignedHeader, error) {
	sh, err := protocol.DecodeSignedHeader(a.Header.SignedHeader, e.chainID)
	if err != nil {
		return nil, protocol.Errorf(protocol.CodeInvalidInput, "ahead header: %v", err)
	}
	vals, err := protocol.DecodeValidatorSet(a.Header.Validators)
	if err != nil {
		return nil, protocol.Errorf(protocol.CodeInvalidInput, "ahead validators: %v", err)
	}
	next, err := protocol.DecodeValidatorSet(a.NextValidators)
	if err != nil {
		return nil, protocol.Errorf(protocol.CodeInvalidInput, "ahead next validators: %v", err)
	}
	// Never back to an older header than one shown before: the host
	// chooses which later header it shows, but cannot go back in time.
	if sh.Height < e.repl.ahead {
		return nil, protocol.Errorf(protocol.CodeInvalidInput, "ahead header %d is older than %d shown before", sh.Height, e.repl.ahead)
	}
	if err := e.lc.VerifyAhead(sh, vals, next); err != nil {
		return nil, protocol.Errorf(protocol.CodeVerification, "%v", err)
	}
	e.repl.ahead = sh.Height
	return sh, nil
}

// changeMembership proposes the first change that moves the group's
// members towards active.
func (e *Enclave) changeMembership(status replica.Status, active []tx.Address) error {
	if len(status.CaughtUp) > 0 && slices.Contains(active, status.CaughtUp[0]) {
		return e.repl.node.AddVoter(status.CaughtUp[0])
	}
	for _, a := range active {
		if !slices.Contains(status.Voters, a) && !slices.Contains(status.Learners, a) {
			return e.repl.node.AddLearner(a)
		}
	}
	for _, v := range slices.Concat(status.Voters, status.Learners) {
		if v != e.signerAddress() && !slices.Contains(active, v) {
			return e.repl.node.RemoveVoter(v)
		}
	}
	return nil
}
