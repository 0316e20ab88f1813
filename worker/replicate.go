package worker

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/integritee-go/integritee/chain/bridge"
	"github.com/integritee-go/integritee/chain/sidechain"
	"github.com/integritee-go/integritee/chain/teerex"
	"github.com/integritee-go/integritee/chain/tx"
	"github.com/integritee-go/integritee/chain/types"
	"github.com/integritee-go/integritee/enclave/protocol"
	"github.com/integritee-go/integritee/worker/store"
)

// Replication (docs/sidechain.md): the enclaves of a shard order its state
// transitions with Raft inside the enclaves; this host ticks its enclave's
// replica, carries its envelopes to the other workers of the shard and
// back, persists its records with the transitions they apply, and answers
// direct calls once the group ordered and this enclave applied them. With
// a single worker the group is that one enclave and a call is applied in
// the request that submits it.

// Replication timing: Raft's tick (its election timeout is 10 ticks) and
// how often the leader is shown the registry for membership.
const (
	replicaTick      = 100 * time.Millisecond
	registryInterval = 2 * time.Second
	// maxInbox and maxInboxBytes bound the envelopes waiting for the
	// enclave; older ones are dropped first (Raft tolerates loss).
	maxInbox      = 4096
	maxInboxBytes = 64 << 20
)

// EnvelopeSender delivers an enclave's envelopes to the worker of their
// recipient, never blocking (worker/peer.Sender).
type EnvelopeSender interface {
	Send(to tx.Address, data []byte)
}

// replicaHost is the worker's side of replication.
type replicaHost struct {
	mu      sync.Mutex
	inbox   [][]byte
	inBytes int
	wake    chan struct{}
	waiters map[[16]byte]chan protocol.ProposalResult
	status  protocol.ReplicaOutput // the last output's leader and voters
	lastReg time.Time
	// reads wait for read indexes; applied is the enclave's applied log
	// index, moved signals that it moved (closed and replaced).
	reads   map[string]chan uint64
	applied uint64
	moved   chan struct{}
	// awaiting is the last chain height the enclave said it waits for;
	// awaitNow what its last output said (0: it waits for none).
	awaiting int64
	awaitNow int64
}

func newReplicaHost() *replicaHost {
	return &replicaHost{wake: make(chan struct{}, 1), waiters: map[[16]byte]chan protocol.ProposalResult{},
		reads: map[string]chan uint64{}, moved: make(chan struct{})}
}

// Deliver queues an envelope a peer sent for this worker's enclave.
func (r *replicaHost) Deliver(data []byte) {
	if len(data) == 0 || len(data) > protocol.MaxEnvelopeBytes {
		return // the enclave would drop it too
	}
	r.mu.Lock()
	r.inbox = append(r.inbox, data)
	r.inBytes += len(data)
	for len(r.inbox) > maxInbox || r.inBytes > maxInboxBytes {
		r.inBytes -= len(r.inbox[0])
		r.inbox = r.inbox[1:]
	}
	r.mu.Unlock()
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// take returns the waiting envelopes that fit one ReplicaStep (the
// enclave's bounds and a protocol frame), oldest first; the rest wait for
// the next step.
func (r *replicaHost) take() [][]byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	n, size := 0, 0
	for n < len(r.inbox) && n < protocol.MaxReplicaEnvelopes && size+len(r.inbox[n]) <= maxStepBytes {
		size += len(r.inbox[n])
		n++
	}
	in := r.inbox[:n:n]
	r.inbox = r.inbox[n:]
	r.inBytes -= size
	if len(r.inbox) > 0 {
		select {
		case r.wake <- struct{}{}:
		default:
		}
	}
	return in
}

// takeInto returns an update's admit that fills req with the waiting
// envelopes once the step has its turn with the enclave, so that those
// that arrived while it waited for the turn go in it too, rather than in
// a step of their own right after.
func (r *replicaHost) takeInto(req *protocol.ReplicaStep) func() error {
	return func() error {
		req.Envelopes = r.take()
		return nil
	}
}

// maxStepBytes bounds the envelopes of one ReplicaStep, well within a
// protocol frame.
const maxStepBytes = 16 << 20

// wait registers a proposal's waiter (in the turn of its SubmitCalls, so
// that no later output can carry its result first).
func (r *replicaHost) wait(id [16]byte) chan protocol.ProposalResult {
	ch := make(chan protocol.ProposalResult, 1)
	r.mu.Lock()
	r.waiters[id] = ch
	r.mu.Unlock()
	return ch
}

func (r *replicaHost) forget(id [16]byte) {
	r.mu.Lock()
	delete(r.waiters, id)
	r.mu.Unlock()
}

// Status is the replica's view of the group from its last output.
func (r *replicaHost) Status() (leader tx.Address, isLeader bool, voters int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.status.Leader, r.status.IsLeader, len(r.status.Voters)
}

// replicated returns the transition of a replica output, checked against
// the persisted progress p: chain steps at the next heights, direct steps
// on the current one.
func replicated(out *protocol.ReplicaOutput, p Progress) (*transition, error) {
	t := &transition{records: out.Records, keep: out.KeepRecords, out: out}
	h := p.Height
	for i, a := range out.Applied {
		b := store.Batch{
			Checkpoint: store.Checkpoint{Height: a.Height, StateRoot: a.StateRoot, Sealed: a.Checkpoint},
			Changes:    a.Changes,
			Outgoing:   a.Outgoing,
		}
		switch {
		case a.Chain && a.Height == h+1:
			b.Block = a.Block
			t.steps = append(t.steps, store.Step{Batch: b})
			h = a.Height
		case !a.Chain && a.Block != nil && a.Height == h && a.Block.Header.ChainHeight == h:
			t.steps = append(t.steps, store.Step{Batch: b, Direct: a.Block})
		default:
			return nil, fmt.Errorf("%w: applied step %d (chain %v) at height %d, store at %d", ErrStateMismatch, i, a.Chain, a.Height, h)
		}
	}
	return t, nil
}

// onReplica hands a persisted output on: envelopes to the peers, results
// to the waiting clients, new outgoing calls to the submitter. It runs in
// the supervisor's turn and does not block.
func (w *Worker) onReplica(out *protocol.ReplicaOutput) {
	r := w.repl
	if w.peers != nil {
		for _, m := range out.Messages {
			w.peers.Send(m.To, m.Data)
		}
	}
	r.mu.Lock()
	for _, res := range out.Results {
		if ch, ok := r.waiters[res.ID]; ok {
			ch <- res
			delete(r.waiters, res.ID)
		}
	}
	for _, rd := range out.Reads {
		if ch, ok := r.reads[string(rd.ID)]; ok {
			// A barrier that asked again shares its channel among its
			// reads: the first answer will do, never block the turn.
			select {
			case ch <- rd.Index:
			default:
			}
			delete(r.reads, string(rd.ID))
		}
	}
	if out.AppliedIndex > r.applied {
		r.applied = out.AppliedIndex
		close(r.moved)
		r.moved = make(chan struct{})
	}
	was := r.status.IsLeader
	r.status = protocol.ReplicaOutput{Leader: out.Leader, IsLeader: out.IsLeader, Voters: out.Voters, Height: out.Height}
	// Wake the chain sync once per awaited height, not per output.
	awaitNew := out.Awaiting > r.awaiting
	r.awaiting = max(r.awaiting, out.Awaiting)
	r.awaitNow = out.Awaiting
	r.mu.Unlock()
	if awaitNew {
		select {
		case w.syncNow <- struct{}{}:
		default:
		}
	}
	if out.IsLeader != was {
		w.log.Info("replica", "leader", out.IsLeader, "voters", len(out.Voters))
	}
	for _, a := range out.Applied {
		if len(a.Outgoing) > 0 {
			w.wakeSubmitter()
			break
		}
	}
}

// replicaLoop ticks the enclave's replica and hands it the envelopes that
// arrive, at once rather than at the next tick.
func (w *Worker) replicaLoop(ctx context.Context) error {
	t := time.NewTicker(replicaTick)
	defer t.Stop()
	last := time.Now()
	b := backoff{}
	for ctx.Err() == nil {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		case <-w.repl.wake:
		}
		ticks := uint32(min(time.Since(last)/replicaTick, 10))
		last = last.Add(time.Duration(ticks) * replicaTick)
		if err := w.replicaStep(ctx, ticks); err != nil {
			if isFatal(err) {
				return err
			}
			b.wait(ctx, w.log, "replica step", err)
			continue
		}
		b.reset()
	}
	return ctx.Err()
}

// replicaStep is one ReplicaStep: ticks, the waiting envelopes and, every
// registryInterval, the registry for the leader's membership changes.
func (w *Worker) replicaStep(ctx context.Context, ticks uint32) error {
	req := &protocol.ReplicaStep{Ticks: ticks}
	var regHeight int64
	if time.Since(w.repl.lastReg) > registryInterval {
		// The leader changes membership; an enclave that knows no leader
		// may take the group over if the others are gone (enclave:
		// takeOver).
		if lead, leader, _ := w.repl.Status(); leader || lead == (tx.Address{}) {
			regHeight = w.sup.Progress().Height - 1
			var err error
			if !leader {
				// Without a leader the enclave applies no chain block:
				// show it the chain's present.
				req.Ahead, regHeight, err = w.aheadHeader(ctx, w.sup.Progress().Height)
			}
			var reg []protocol.ProvedValue
			if err == nil {
				reg, err = w.membershipProofs(ctx, regHeight)
			}
			if err != nil {
				w.log.Debug("registry for membership", "err", err)
				req.Ahead = nil
			} else {
				req.Registry = reg
			}
		}
		w.repl.lastReg = time.Now()
	}
	take := w.repl.takeInto(req)
	admit := func() error {
		// The enclave checks the proofs against its newest verified
		// header: if a chain block was applied while they were fetched,
		// they no longer match it and would fail the whole step, so they
		// wait for the next step instead.
		if dropStaleRegistry(req, regHeight, w.sup.Progress().Height) {
			w.repl.lastReg = time.Time{} // again at the next step
		}
		return take()
	}
	_, err := w.sup.Apply(ctx, update{req: req, admit: admit, check: func(r protocol.Reply, p Progress) (*transition, error) {
		rep, err := protocol.ReplyAs[*protocol.ReplicaStepReply](req, r, nil)
		if err != nil {
			return nil, err
		}
		return replicated(rep.Replica, p)
	}})
	return err
}

// dropStaleRegistry removes req's registry proofs, made at regHeight, if
// the enclave's newest verified header is no longer regHeight+1 (the
// header whose app hash commits to the state at regHeight) or, with an
// Ahead header (at regHeight+1), if it reached that height, and reports
// whether it did.
func dropStaleRegistry(req *protocol.ReplicaStep, regHeight, headerHeight int64) bool {
	if req.Registry == nil {
		return false
	}
	if req.Ahead != nil && headerHeight < regHeight+1 || req.Ahead == nil && headerHeight-1 == regHeight {
		return false
	}
	req.Registry, req.Ahead = nil, nil
	return true
}

// aheadHeader returns the node's latest header for an enclave whose light
// client is at lcHeight (protocol.Ahead), and the height whose state it
// commits to.
func (w *Worker) aheadHeader(ctx context.Context, lcHeight int64) (*protocol.Ahead, int64, error) {
	if lcHeight < 1 {
		return nil, 0, errors.New("no chain block verified yet")
	}
	// Its own reader: the sync loop's caches the header it fetched last.
	cr := &chainReader{rpc: w.node.RPC()}
	top, err := cr.latest(ctx)
	if err != nil {
		return nil, 0, err
	}
	if top <= lcHeight {
		return nil, 0, fmt.Errorf("the node's latest block %d is not ahead of the light client's %d", top, lcHeight)
	}
	hdr, err := cr.header(ctx, top)
	if err != nil {
		return nil, 0, err
	}
	next, err := cr.validators(ctx, lcHeight+1)
	if err != nil {
		return nil, 0, err
	}
	raw, err := protocol.EncodeValidatorSet(next)
	if err != nil {
		return nil, 0, err
	}
	return &protocol.Ahead{Header: hdr, NextValidators: raw}, top - 1, nil
}

// membershipProofs proves the shard measurement's registrations at height
// (what the enclave's light client trusts: the state its latest header's
// app hash commits to), for the leader's membership (protocol.ReplicaStep).
func (w *Worker) membershipProofs(ctx context.Context, height int64) ([]protocol.ProvedValue, error) {
	if height < 1 {
		return nil, errors.New("no state yet")
	}
	id := w.sup.Identity()
	if id == nil {
		return nil, errors.New("enclave not started")
	}
	var out []protocol.ProvedValue
	prove := func(path string, key []byte) ([]byte, error) {
		v, p, err := w.node.ProofAt(ctx, path, key, height)
		if err != nil {
			return nil, err
		}
		out = append(out, protocol.ProvedValue{Key: key, Value: v, Proof: *p})
		return v, nil
	}
	// This measurement's registrations and, during an upgrade, those of
	// the shard's other configured measurement (the enclave decides which
	// it needs).
	ms := []types.Hash{types.Hash(id.MRENCLAVE)}
	if st, err := w.node.ShardAt(ctx, types.Hash(w.cfg.Shard), height); err == nil {
		for _, c := range []*bridge.Config{&st.Shard.Config, st.Shard.Pending} {
			if c != nil && !slices.Contains(ms, c.MRENCLAVE) {
				ms = append(ms, c.MRENCLAVE)
			}
		}
	}
	for _, m := range ms {
		var count uint64
		v, err := prove("/teerex/enclaves/"+m.String(), teerex.EnclavesOfCountKey(m))
		if err != nil {
			return nil, err
		}
		if v != nil {
			if err := protocol.Unmarshal(v, &count); err != nil {
				return nil, err
			}
		}
		if count > 256 {
			return nil, fmt.Errorf("%d registrations of measurement %s", count, m)
		}
		for i := range count {
			v, err := prove(fmt.Sprintf("/teerex/enclaves/%s/%d", m, i), teerex.EnclavesOfSlotKey(m, i))
			if err != nil {
				return nil, err
			}
			var s tx.Address
			if err := protocol.Unmarshal(v, &s); err != nil {
				return nil, err
			}
			if _, err := prove("/teerex/enclave/"+s.String(), teerex.EnclaveKey(s)); err != nil {
				return nil, err
			}
		}
	}
	if _, err := prove("/teerex/policy", teerex.PolicyKey()); err != nil {
		return nil, err
	}
	// The shard's latest confirmation: an enclave checks it holds that
	// block before it takes its group over.
	shard := types.Hash(w.cfg.Shard)
	if _, err := prove("/sidechain/shard/"+shard.String(), sidechain.ShardKey(shard)); err != nil {
		return nil, err
	}
	if _, err := prove("/teerex/allowlist", teerex.AllowlistKey()); err != nil {
		return nil, err
	}
	return out, nil
}

// Read barrier bounds. readWait bounds getting a read index: a round
// trip to the leader, which drops the request if it knows none (Raft), so
// an unanswered request is asked again after readRetry. applyWait bounds
// the wait for this enclave to apply up to the index it got: the entries
// are committed, so only this worker's own progress (a chain block to
// verify, a busy machine) is waited for, as long as it moves; without
// progress for readWait it gives up too. Both stay well below a client's
// request timeout.
const (
	readWait  = 2 * time.Second
	readRetry = 500 * time.Millisecond
	applyWait = 5 * time.Second
)

// errNoReadIndex and errNotApplied are the read barrier's failures.
var (
	errNoReadIndex = errors.New("no read index from the shard's leader")
	errNotApplied  = errors.New("this enclave has not applied the read index yet")
)

// readBarrier waits until this worker's enclave applied every call the
// shard's group committed before now (Raft's read index), so that a
// getter here sees a call another worker answered a moment ago: a client
// that sends its next call elsewhere reads the right nonce. Alone in its
// group (one worker) there is nothing to wait for. It returns nil if the
// barrier held; else (no leader within readWait: a minority; or this
// enclave lagging) why not, and the getter's answer is marked stale.
func (w *Worker) readBarrier(ctx context.Context) error {
	r := w.repl
	if r == nil {
		return nil // a test's worker without replication
	}
	if _, _, voters := r.Status(); voters <= 1 {
		return nil
	}
	index, err := w.readIndex(ctx)
	if err != nil {
		return err
	}
	return r.awaitApplied(ctx, index, readWait, applyWait, func(h int64) {
		// The entries wait for a chain block: have the sync feed it now.
		select {
		case w.syncNow <- struct{}{}:
		default:
		}
	})
}

// readIndex asks the enclave's replica for a read index and waits for it,
// asking again every readRetry: Raft drops a read it cannot forward (no
// leader known yet, say right after an election), without an answer.
func (w *Worker) readIndex(ctx context.Context) (uint64, error) {
	r := w.repl
	ch := make(chan uint64, 1)
	var ids []string
	defer func() {
		r.mu.Lock()
		for _, id := range ids {
			delete(r.reads, id)
		}
		r.mu.Unlock()
	}()
	deadline := time.NewTimer(readWait)
	defer deadline.Stop()
	for {
		var id [16]byte
		if _, err := rand.Read(id[:]); err != nil {
			return 0, err
		}
		r.mu.Lock()
		r.reads[string(id[:])] = ch
		ids = append(ids, string(id[:]))
		r.mu.Unlock()
		req := &protocol.ReplicaStep{Reads: [][]byte{id[:]}}
		if _, err := w.sup.Apply(ctx, update{req: req, admit: r.takeInto(req), check: func(rep protocol.Reply, p Progress) (*transition, error) {
			rr, err := protocol.ReplyAs[*protocol.ReplicaStepReply](req, rep, nil)
			if err != nil {
				return nil, err
			}
			return replicated(rr.Replica, p)
		}}); err != nil {
			return 0, fmt.Errorf("ask for a read index: %w", err)
		}
		retry := time.NewTimer(readRetry)
		select {
		case index := <-ch:
			retry.Stop()
			if len(ids) > 1 {
				w.log.Debug("read index after asking again", "asked", len(ids))
			}
			return index, nil
		case <-retry.C:
		case <-deadline.C:
			retry.Stop()
			return 0, fmt.Errorf("%w within %s", errNoReadIndex, readWait)
		case <-ctx.Done():
			retry.Stop()
			return 0, ctx.Err()
		}
	}
}

// awaitApplied waits until the enclave applied index: at most total, and
// at most idle without the applied index moving. await is called when the
// enclave waits for a chain block before it can go on.
func (r *replicaHost) awaitApplied(ctx context.Context, index uint64, idle, total time.Duration, await func(int64)) error {
	end := time.NewTimer(total)
	defer end.Stop()
	stall := time.NewTimer(idle)
	defer stall.Stop()
	for {
		r.mu.Lock()
		applied, moved, awaiting := r.applied, r.moved, r.awaitNow
		r.mu.Unlock()
		if applied >= index {
			return nil
		}
		if awaiting > 0 {
			await(awaiting)
		}
		select {
		case <-moved:
			stall.Reset(idle)
		case <-stall.C:
			return fmt.Errorf("%w: applied %d, read index %d, no progress for %s (awaiting chain block %d)", errNotApplied, applied, index, idle, awaiting)
		case <-end.C:
			return fmt.Errorf("%w: applied %d, read index %d after %s (awaiting chain block %d)", errNotApplied, applied, index, total, awaiting)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
