package worker

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/integritee-go/integritee/chain/sidechain"
	"github.com/integritee-go/integritee/enclave/protocol"
	"github.com/integritee-go/integritee/worker/store"
)

// supervisor runs the enclave and keeps it in step with the store, in the
// spirit of oasis-core's runtime/host: Start starts a process and restores
// it from the store, Stop ends it, Call serves requests that change no
// state, and Apply is the one operation that changes state (call, check,
// commit). Every other part of the worker (chain sync, direct calls,
// submission, registration, provisioning) talks to the enclave through it.
//
// The invariant it keeps: the enclave holds no state that the store does
// not. Whenever that may be broken (the process died or failed internally,
// a reply was refused, a commit failed) it stops the enclave, and the next
// request starts a fresh one restored from the store: a reply that was not
// committed did not happen. Requests take turns (turn), so a restart never
// reads the store in the middle of a commit and no request sees state that
// is not yet persisted.
type supervisor struct {
	factory EnclaveFactory
	store   *store.Store
	// init is the Init of every start, without the sealed keys and
	// checkpoint (the store's, at each start).
	init protocol.Init
	log  *slog.Logger
	// commit persists a transition: the store's (persist), or a test's
	// that fails on purpose.
	commit func(transition) error
	// onReplica takes a persisted replica output (the worker's
	// replication: envelopes out, results to clients); it must not block.
	onReplica func(*protocol.ReplicaOutput)
	// metrics, if set, time the enclave's round trips and the commits.
	metrics *workerMetrics

	// turn orders the requests to the enclave, each with its commit and
	// with a restart before it. It is taken in request order, so that a
	// chain block waits only for what was queued before it (a bounded
	// number of getters, see rpc.Options.MaxGetters), never for a stream
	// of later requests.
	turn fifoMutex

	mu       sync.Mutex // guards the fields below
	encl     Enclave    // nil: none running; the next request starts one
	stopped  bool
	starts   uint64 // enclaves started so far
	identity *protocol.InitReply
	progress Progress
}

// Progress is what the store holds and the enclave agrees with.
type Progress struct {
	// Height is the last chain block processed and persisted.
	Height int64
	// StateRoot is the state root after the last persisted transition.
	StateRoot [32]byte
	// ShardBlock is the number of the last persisted shard block.
	ShardBlock uint64
}

// A transition is what one enclave reply changed, as the store takes it:
// the sealed Raft records of the shard's replica (replicate.go), then the
// applied steps in log order, each a chain block (the next height;
// Batch.Block is its shard block, if any) or a direct shard block (on the
// same height). out is the reply's replica output, handed on (envelopes
// to peers, results to clients) once it is persisted.
type transition struct {
	records [][]byte
	keep    uint64 // the records to keep, if the last compacted the log
	steps   []store.Step
	out     *protocol.ReplicaOutput
}

// chainStep and directStep make a transition of one step.
func chainStep(b store.Batch) *transition { return &transition{steps: []store.Step{{Batch: b}}} }

func directStep(b store.Batch, h *sidechain.SignedHeader) *transition {
	return &transition{steps: []store.Step{{Batch: b, Direct: h}}}
}

// after returns the progress once t is persisted.
func (t *transition) after(p Progress) Progress {
	for _, st := range t.steps {
		p.Height, p.StateRoot = st.Batch.Checkpoint.Height, st.Batch.Checkpoint.StateRoot
		if b := st.Batch.Block; b != nil {
			p.ShardBlock = b.Header.Number
		}
		if st.Direct != nil {
			p.ShardBlock = st.Direct.Header.Number
		}
	}
	return p
}

func newSupervisor(factory EnclaveFactory, st *store.Store, init protocol.Init, log *slog.Logger) *supervisor {
	s := &supervisor{factory: factory, store: st, init: init, log: log}
	s.commit = s.persist
	return s
}

// persist writes t to the store in one transaction.
func (s *supervisor) persist(t transition) error {
	return s.store.CommitSteps(store.Records{Shard: s.init.Shard, Data: t.records, KeepLast: t.keep}, t.steps)
}

// Start starts the enclave and restores it from the store, if none is
// running.
func (s *supervisor) Start(ctx context.Context) error {
	s.turn.Lock()
	defer s.turn.Unlock()
	_, err := s.running(ctx)
	return err
}

// Stop ends the enclave for good. It does not wait for a turn: a request
// in flight fails.
func (s *supervisor) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stopped = true
	if s.encl != nil {
		s.encl.Close()
		s.encl = nil
	}
}

// setStore replaces the store, for a worker that moved an unreadable
// one aside (recover.go). The identity of the enclave that could not
// start from it is forgotten: the next is a new one.
func (s *supervisor) setStore(st *store.Store) {
	s.turn.Lock()
	defer s.turn.Unlock()
	s.store = st
	s.mu.Lock()
	defer s.mu.Unlock()
	s.identity, s.progress = nil, Progress{}
}

// Identity is the running enclave's public identity, nil before the
// first start.
func (s *supervisor) Identity() *protocol.InitReply {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.identity
}

// Progress returns what the store holds.
func (s *supervisor) Progress() Progress {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.progress
}

// Between runs f between two requests: none is in flight meanwhile.
func (s *supervisor) Between(f func()) {
	s.turn.Lock()
	defer s.turn.Unlock()
	f()
}

// Call sends a request that changes no state, restarting the enclave from
// the store when the process died. Error replies are returned as they
// are.
func (s *supervisor) Call(ctx context.Context, req protocol.Request) (protocol.Reply, error) {
	s.turn.Lock()
	defer s.turn.Unlock()
	for attempt := 0; ; attempt++ {
		e, err := s.running(ctx)
		if err != nil {
			return nil, err
		}
		start := time.Now()
		rep, err := e.Call(ctx, req)
		s.metrics.enclaveRequest(req, start)
		if err == nil || !needsRestart(err) || ctx.Err() != nil {
			return rep, err
		}
		s.drop(e, req, err)
		if attempt >= 3 {
			return nil, fmt.Errorf("enclave %s: %w", req.Type(), err)
		}
	}
}

// An update is a request that changes the enclave's state.
type update struct {
	req protocol.Request
	// admit, if set, runs first in the turn: an error refuses the request
	// before the enclave sees it.
	admit func() error
	// check checks the reply (protocol.ReplyAs) against the persisted
	// progress and returns what to persist; nil if the reply changed
	// nothing. An error refuses the reply.
	check func(rep protocol.Reply, p Progress) (*transition, error)
}

// Apply is the one operation that changes the enclave's state: in one
// turn it sends u.req, has u.check say what the reply changed, and
// commits that to the store. An error reply that changed nothing (a
// *protocol.Error other than CodeInternal) is returned as it is; after
// any other failure the enclave is stopped, so that the next request
// restores it from the store, which has not seen this one. Apply does not
// retry: the caller feeds the block again, the client resubmits.
func (s *supervisor) Apply(ctx context.Context, u update) (protocol.Reply, error) {
	s.turn.Lock()
	defer s.turn.Unlock()
	if u.admit != nil {
		if err := u.admit(); err != nil {
			return nil, err
		}
	}
	e, err := s.running(ctx)
	if err != nil {
		return nil, err
	}
	start := time.Now()
	rep, err := e.Call(ctx, u.req)
	s.metrics.enclaveRequest(u.req, start)
	if err != nil {
		if needsRestart(err) {
			// The process died, the call was cut off (the connection is
			// then out of step), or the enclave stopped after moving on.
			s.drop(e, u.req, err)
		}
		return nil, fmt.Errorf("enclave %s: %w", u.req.Type(), err)
	}
	t, err := u.check(rep, s.Progress())
	if err != nil {
		s.drop(e, u.req, err)
		return rep, err
	}
	if t == nil {
		return rep, nil
	}
	if err := s.commitOut(t); err != nil {
		s.drop(e, u.req, err)
		return rep, fmt.Errorf("persist %s: %w", u.req.Type(), err)
	}
	return rep, nil
}

// commitOut persists t, moves the progress on and hands t's replica
// output on. Called in a turn.
func (s *supervisor) commitOut(t *transition) error {
	// A step that only moved messages (heartbeats) writes nothing: no
	// transaction, no fsync.
	var took time.Duration
	if len(t.records) > 0 || len(t.steps) > 0 {
		start := time.Now()
		if err := s.commit(*t); err != nil {
			return err
		}
		took = time.Since(start)
	}
	s.mu.Lock()
	before := s.progress.Height
	s.progress = t.after(s.progress)
	processed := s.progress.Height - before
	s.mu.Unlock()
	s.metrics.committed(took, processed)
	if t.out != nil && s.onReplica != nil {
		s.onReplica(t.out)
	}
	return nil
}

// running returns the running enclave, starting one and restoring it from
// the store if there is none. Called in a turn.
func (s *supervisor) running(ctx context.Context) (Enclave, error) {
	s.mu.Lock()
	e, stopped := s.encl, s.stopped
	s.mu.Unlock()
	if stopped {
		return nil, errors.New("worker: enclave stopped")
	}
	if e != nil {
		return e, nil
	}
	e, err := s.factory(ctx)
	if err != nil {
		return nil, fmt.Errorf("start enclave: %w", err)
	}
	id, p, err := s.restore(ctx, e)
	if err != nil {
		e.Close()
		return nil, err
	}
	if err := s.adopt(ctx, e, id, p); err != nil {
		return nil, err
	}
	return e, nil
}

// adopt makes e, which holds what the store holds (identity id, progress
// p), the running enclave and starts its replica. On failure e is ended.
// Called in a turn.
func (s *supervisor) adopt(ctx context.Context, e Enclave, id *protocol.InitReply, p Progress) error {
	s.mu.Lock()
	if s.stopped {
		s.mu.Unlock()
		e.Close()
		return errors.New("worker: enclave stopped")
	}
	s.encl, s.identity, s.progress = e, id, p
	s.starts++
	s.mu.Unlock()
	if err := s.startReplica(ctx, e); err != nil {
		s.drop(e, &protocol.ReplicaStart{}, err)
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.log.Info("enclave started", "start", s.starts, "height", p.Height, "shard_block", p.ShardBlock,
		"state_root", hex.EncodeToString(p.StateRoot[:]))
	return nil
}

// drop stops e after a failure of req, if it is still the running
// enclave, so that the next request restores a fresh one from the store.
func (s *supervisor) drop(e Enclave, req protocol.Request, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.encl != e {
		return
	}
	s.log.Error("enclave failed; restarting it from the store", "request", req.Type(), "err", err)
	s.encl.Close()
	s.encl = nil
}

// restore runs the start sequence on a fresh enclave: Init with the
// persisted keys and checkpoint, then the stored entries and Resume. It
// returns the enclave's identity and the progress both agree on.
func (s *supervisor) restore(ctx context.Context, e Enclave) (*protocol.InitReply, Progress, error) {
	var p Progress
	keys, err := s.store.SealedKeys()
	if err != nil {
		return nil, p, err
	}
	cp, haveCP, err := s.store.Checkpoint()
	if err != nil {
		return nil, p, err
	}
	req := s.init
	req.SealedKeys = keys
	if haveCP {
		req.Checkpoint = cp.Sealed
	}
	rep, err := callAs[*protocol.InitReply](ctx, e, &req)
	if err != nil {
		return nil, p, err
	}
	switch {
	case keys == nil:
		// Persist before anything depends on the keys (registration).
		if err := s.store.SaveSealedKeys(rep.SealedKeys); err != nil {
			return nil, p, err
		}
	case rep.Created:
		return nil, p, ErrKeysRegenerated
	}
	if prev := s.Identity(); prev != nil && (string(prev.SignerPublic) != string(rep.SignerPublic) ||
		string(prev.ShieldingPublic) != string(rep.ShieldingPublic)) {
		return nil, p, ErrIdentityChanged
	}
	p.Height, p.StateRoot = rep.Height, rep.StateRoot
	if haveCP && !rep.AwaitingEntries {
		// A checkpoint of an empty state needs no entries: the enclave
		// resumed at Init (e.g. a worker provisioned before any shield).
		n, err := s.store.EntryCount()
		if err != nil {
			return nil, p, err
		}
		if n != 0 || p.Height != cp.Height || p.StateRoot != cp.StateRoot {
			return nil, p, fmt.Errorf("%w: enclave does not wait for the state of height %d", ErrStateMismatch, cp.Height)
		}
	} else if haveCP {
		res, err := s.loadEntries(ctx, e)
		if err != nil {
			return nil, p, err
		}
		p.Height, p.StateRoot = res.Height, res.StateRoot
		if p.Height != cp.Height || p.StateRoot != cp.StateRoot {
			return nil, p, fmt.Errorf("%w: enclave at %d root %x, store at %d root %x", ErrStateMismatch, p.Height, p.StateRoot, cp.Height, cp.StateRoot)
		}
	} else if rep.AwaitingEntries {
		return nil, p, fmt.Errorf("%w: enclave waits for entries but the store has no checkpoint", ErrStateMismatch)
	}
	last, _, err := s.store.LastShardBlock()
	if err != nil {
		return nil, p, err
	}
	p.ShardBlock = last.Header.Number
	if rep.MRENCLAVE != s.init.Shard {
		s.log.Warn("enclave measurement differs from the shard ID: the shard must be configured for it on chain",
			"mrenclave", hex.EncodeToString(rep.MRENCLAVE[:]), "shard", hex.EncodeToString(s.init.Shard[:]))
	}
	return rep, p, nil
}

// Bounds of one ReplicaStart request, well within a protocol frame.
const (
	replicaChunkRecords = 512
	replicaChunkBytes   = 8 << 20
)

// startReplica starts the restored enclave's replica from the shard's
// stored records (in chunks) and persists what that first step applied.
// Called in a turn.
func (s *supervisor) startReplica(ctx context.Context, e Enclave) error {
	recs, err := s.store.Records(s.init.Shard)
	if err != nil {
		return err
	}
	for {
		n, size := 0, 0
		for n < len(recs) && n < replicaChunkRecords && size+len(recs[n]) <= replicaChunkBytes {
			size += len(recs[n])
			n++
		}
		if n == 0 && len(recs) > 0 {
			n = 1 // one record larger than a chunk goes alone
		}
		req := &protocol.ReplicaStart{Records: recs[:n], More: n < len(recs)}
		rep, err := callAs[*protocol.ReplicaStartReply](ctx, e, req)
		if err != nil {
			return fmt.Errorf("start replica: %w", err)
		}
		recs = recs[n:]
		if req.More {
			continue
		}
		if rep.Replica == nil {
			return errors.New("start replica: no output")
		}
		t, err := replicated(rep.Replica, s.Progress())
		if err != nil {
			return err
		}
		return s.commitOut(t)
	}
}

// Bounds of one LoadEntries request, well within a protocol frame.
const (
	loadChunkEntries = 4096
	loadChunkBytes   = 4 << 20
)

// loadEntries streams the stored entries into e and resumes it. The host
// reads and packs the next chunk while the enclave loads the last one.
func (s *supervisor) loadEntries(ctx context.Context, e Enclave) (*protocol.ResumeReply, error) {
	lctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	chunks := make(chan []byte, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for p := range chunks {
			if _, err := callAs[*protocol.LoadEntriesReply](lctx, e, &protocol.LoadEntries{Packed: p}); err != nil {
				cancel(err)
				for range chunks { // let the reader end
				}
				return
			}
		}
	}()
	var (
		buf []byte
		n   int
	)
	send := func() error {
		if n == 0 {
			return nil
		}
		select {
		case chunks <- buf:
		case <-lctx.Done():
			return context.Cause(lctx)
		}
		buf, n = nil, 0 // the sender owns the sent chunk
		return nil
	}
	err := s.store.Entries(func(en protocol.Entry) error {
		if buf == nil {
			buf = make([]byte, 0, loadChunkBytes/8)
		}
		buf = protocol.AppendEntry(buf, en.Key, en.Value)
		if n++; n >= loadChunkEntries || len(buf) >= loadChunkBytes {
			return send()
		}
		return nil
	})
	if err == nil {
		err = send()
	}
	close(chunks)
	<-done
	if err == nil {
		err = context.Cause(lctx)
	}
	if err != nil {
		return nil, fmt.Errorf("load state into enclave: %w", err)
	}
	res, err := callAs[*protocol.ResumeReply](ctx, e, &protocol.Resume{})
	if err == nil {
		s.log.Info("enclave restored", "height", res.Height, "entries", res.Entries)
	}
	return res, err
}

// Provision has a fresh enclave take the shard's keys and state from a
// peer (take drives it and returns the enclave's identity, with its sealed
// keys, and what to persist), persists them and keeps that enclave as the
// running one: it holds exactly what the store now holds (the entries it
// checked against the checkpoint, the keys and checkpoint it sealed), as
// one restored from the store would, so the state is not loaded a second
// time. It runs before the first Start. Nothing is persisted unless take
// succeeded (the entries checked out); if the commit fails, the enclave is
// ended and Provision fails; once the commit succeeded Provision succeeds,
// and if the enclave cannot be kept (its replica fails to start), it is
// ended and the next request restores one from the store.
func (s *supervisor) Provision(ctx context.Context, take func(Enclave) (*protocol.InitReply, *transition, error)) error {
	s.turn.Lock()
	defer s.turn.Unlock()
	e, err := s.factory(ctx)
	if err != nil {
		return fmt.Errorf("start enclave: %w", err)
	}
	keep := false
	defer func() {
		if !keep {
			e.Close()
		}
	}()
	id, t, err := take(e)
	if err != nil {
		return err
	}
	// Keys first: a crash before the commit leaves keys without a
	// checkpoint, and the worker then replays the chain from genesis with
	// the shard's keys, which reaches the same state.
	if err := s.store.SaveSealedKeys(id.SealedKeys); err != nil {
		return err
	}
	if err := s.commit(*t); err != nil {
		return err
	}
	// The keys and state are persisted, so provisioning succeeded whatever
	// follows: if the enclave cannot be kept, the next request restores a
	// fresh one from the store.
	p := t.after(Progress{})
	last, _, err := s.store.LastShardBlock()
	if err == nil {
		p.ShardBlock = last.Header.Number
		keep = true // adopt ends it if it fails
		err = s.adopt(ctx, e, id, p)
	}
	if err != nil {
		s.log.Warn("provisioned enclave not kept; the next start restores one from the store", "err", err)
	}
	return nil
}

// needsRestart tells the errors after which the enclave must be replaced
// by a fresh process restored from the store: the connection broke (the
// process died), or the enclave stopped after an internal failure
// (CodeInternal, "restart required").
func needsRestart(err error) bool {
	var pe *protocol.Error
	return !errors.As(err, &pe) || pe.Code == protocol.CodeInternal
}

// fifoMutex is a mutex that goes to its waiters in the order they came:
// sync.Mutex lets a goroutine that keeps coming back (a getter worker)
// take the lock ahead of one that has waited (block processing) until the
// wait exceeds a millisecond, and only then hands it over in order.
type fifoMutex struct {
	mu      sync.Mutex
	locked  bool
	waiters []chan struct{}
}

func (m *fifoMutex) Lock() {
	m.mu.Lock()
	if !m.locked {
		m.locked = true
		m.mu.Unlock()
		return
	}
	ch := make(chan struct{})
	m.waiters = append(m.waiters, ch)
	m.mu.Unlock()
	<-ch // Unlock handed the lock over
}

func (m *fifoMutex) Unlock() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.locked {
		panic("worker: unlock of unlocked fifoMutex")
	}
	if len(m.waiters) == 0 {
		m.locked = false
		return
	}
	ch := m.waiters[0]
	m.waiters[0] = nil
	m.waiters = m.waiters[1:]
	close(ch)
}
