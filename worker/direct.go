package worker

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/integritee-go/integritee/chain/bridge"
	"github.com/integritee-go/integritee/chain/sidechain"
	"github.com/integritee-go/integritee/chain/teerex"
	"github.com/integritee-go/integritee/chain/types"
	"github.com/integritee-go/integritee/enclave/protocol"
	"github.com/integritee-go/integritee/worker/rpc"
	"github.com/integritee-go/integritee/worker/rpc/api"
	"github.com/integritee-go/integritee/worker/store"
)

// Direct invocation. The JSON-RPC server (package worker/rpc) batches the
// clients' encrypted calls; directBackend passes each batch to the enclave
// in one SubmitCalls and persists the resulting shard block before the
// server may tell anyone "executed" (protocol.SubmitCalls' host duties).
// SubmitCalls and ProcessBlock hold the same lock (Worker.exec) around the
// enclave call and the commit, so the state changes only by whole,
// persisted requests, in one order: a shard block always sits on top of
// the last persisted chain block and the shard block before it.

// Direct calls and redundancy. A direct call reaches only the worker it is
// sent to; the shard's other workers never see it, so with several
// workers their states would fork (ordering direct calls among them needs
// the sidechain's block production order, a later milestone). So a worker
// refuses direct calls while more than one active enclave serves the
// shard: the count comes from the chain at start and at every
// registration check (submitLoop), and a worker that hands the shard's
// keys to a new one (provisioning) counts it at once, before it has even
// registered. Private getters stay allowed; indirect calls, ordered by the
// chain, work with any number of workers.

// CodeSeveralWorkers is the JSON-RPC error code of a direct call refused
// because several enclaves serve the shard (ErrSeveralWorkers); nothing
// changed. Clients know it as api.CodeSeveralWorkers.
const CodeSeveralWorkers = api.CodeSeveralWorkers

// ErrSeveralWorkers means a direct call was refused because more than one
// active enclave serves the shard. The error returned also holds the
// *api.Error (CodeSeveralWorkers) the RPC server answers with.
var ErrSeveralWorkers = errors.New("worker: several enclaves serve the shard")

// directRefusal is the message clients get with CodeSeveralWorkers.
const directRefusal = "direct invocation needs a single worker per shard until sidechain ordering lands; use --indirect"

// peerGrace is how long a worker that served a provisioning session counts
// the new enclave without seeing it on chain: longer than a session lives
// plus the new worker's registration and a few registration checks, after
// which the chain's count alone decides.
const peerGrace = provisionSessionTTL + 3*renewCheck

// directAllowed returns nil if the shard has a single active enclave (this
// one), else an ErrSeveralWorkers error carrying the RPC error. A
// provisioning session in progress counts as a second enclave (until it
// ends or expires, so a requester that is refused or goes away blocks
// direct calls only briefly), a completed one for peerGrace.
func (w *Worker) directAllowed() error {
	w.mu.Lock()
	n := w.shardEnclaves
	if (w.joinOpen > 0 && time.Since(w.joinOpened) < provisionSessionTTL) ||
		(!w.peerJoined.IsZero() && time.Since(w.peerJoined) < peerGrace) {
		n = max(n, 2)
	}
	w.mu.Unlock()
	if n <= 1 {
		return nil
	}
	return fmt.Errorf("%w: %w", ErrSeveralWorkers, &api.Error{
		Code:    CodeSeveralWorkers,
		Message: fmt.Sprintf("%s (%d or more active enclaves serve shard %x)", directRefusal, n, w.cfg.Shard),
		Data:    map[string]int{"enclaves": n},
	})
}

// peerSessionOpened records that this worker starts handing the shard's
// keys and state to another enclave. It waits for a direct batch in
// flight (exec), so the snapshot served next holds every direct call this
// worker accepted, and none is accepted after it.
func (w *Worker) peerSessionOpened() {
	w.exec.Lock()
	defer w.exec.Unlock()
	w.mu.Lock()
	defer w.mu.Unlock()
	w.joinOpen++
	w.joinOpened = time.Now()
}

// peerSessionEnded records the end of a provisioning session: completed
// (the keys went to the peer, which is to register next) or refused.
func (w *Worker) peerSessionEnded(completed bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.joinOpen = max(w.joinOpen-1, 0)
	if completed {
		w.peerJoined = time.Now()
		w.log.Info("provisioned another enclave of the shard: direct calls refused from now on")
	}
}

// refreshShardEnclaves reads from the chain how many active enclaves are
// registered with the shard's current measurement.
func (w *Worker) refreshShardEnclaves(ctx context.Context) error {
	st, err := w.node.Shard(ctx, types.Hash(w.cfg.Shard))
	if err != nil {
		return fmt.Errorf("shard %x: %w", w.cfg.Shard, err)
	}
	n, err := w.activeEnclaves(ctx, st.Shard, st.Height)
	if err != nil {
		return err
	}
	w.mu.Lock()
	prev := w.shardEnclaves
	w.shardEnclaves = n
	w.mu.Unlock()
	if n != prev {
		w.log.Info("active enclaves of the shard", "enclaves", n, "direct_calls", n <= 1)
	}
	return nil
}

// activeEnclaves counts the active enclaves registered with the shard's
// measurement at height, stopping at two: all that direct calls depend on
// (one or not), however many registrations the measurement has.
func (w *Worker) activeEnclaves(ctx context.Context, s bridge.Shard, height int64) (int, error) {
	m := s.MRENCLAVEAt(uint64(max(height, 0)))
	pol, _, err := w.node.Policy(ctx)
	if err != nil {
		return 0, err
	}
	n := 0
	if _, _, err := w.node.EachEnclave(ctx, &m, func(e teerex.Enclave) bool {
		if time.Now().Before(e.ExpiresAt(pol.RenewalPeriod())) {
			n++
		}
		return n < 2
	}); err != nil {
		return 0, fmt.Errorf("enclaves of %s: %w", m, err)
	}
	return n, nil
}

// directBackend is the worker as the RPC server's rpc.Backend.
type directBackend struct{ w *Worker }

var _ rpc.Backend = directBackend{}

// isReady reports whether the worker is registered and syncing: before
// that its enclave may still receive the shard's keys and state
// (provisioning), so neither its identity nor its state may be served.
func (w *Worker) isReady() bool {
	select {
	case <-w.ready:
		return true
	default:
		return false
	}
}

// ShieldingKey implements rpc.Backend.
func (b directBackend) ShieldingKey(context.Context) (*rpc.Identity, error) {
	w := b.w
	if !w.isReady() {
		return nil, rpc.ErrNotReady
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.identity == nil {
		return nil, rpc.ErrNotReady
	}
	return &rpc.Identity{
		ShieldingKey: w.identity.ShieldingPublic, Signer: w.identity.SignerPublic,
		MRENCLAVE: w.identity.MRENCLAVE, Shard: w.cfg.Shard,
	}, nil
}

// SubmitCalls implements rpc.Backend: one enclave round trip per batch,
// the shard block persisted before it returns.
func (b directBackend) SubmitCalls(ctx context.Context, calls [][]byte) ([]rpc.Outcome, error) {
	w := b.w
	if !w.isReady() {
		return nil, rpc.ErrNotReady
	}
	w.exec.Lock()
	defer w.exec.Unlock()
	// Checked under exec: peerJoining takes it too, so no batch slips in
	// between a provisioning snapshot and the refusal.
	if err := w.directAllowed(); err != nil {
		return nil, err
	}
	e, gen, err := w.enclave(ctx)
	if err != nil {
		return nil, err
	}
	rep, err := call[*protocol.SubmitCallsReply](ctx, e, &protocol.SubmitCalls{Calls: calls, Timestamp: time.Now().UnixMilli()})
	if err != nil {
		if needsRestart(err) {
			// The process died, the call was cut off (the connection is
			// then out of step), or the enclave failed after moving on:
			// restore it from the store, which has not seen this batch.
			w.log.Error("enclave failed on direct calls; restarting it from the store", "calls", len(calls), "err", err)
			w.dropEnclave(e)
		}
		return nil, err
	}
	outs, err := rpc.Outcomes(rep)
	if err == nil && len(outs) != len(calls) {
		err = fmt.Errorf("enclave answered %d of %d calls", len(outs), len(calls))
	}
	if rep.Block == nil || err != nil {
		if err != nil {
			// Never persisted, so never acknowledged: drop the enclave's
			// memory of the batch.
			w.dropEnclave(e)
		}
		return outs, err
	}
	w.mu.Lock()
	height := w.height
	w.mu.Unlock()
	n := rep.Block.Header.Number
	if rep.Block.Header.ChainHeight != height {
		w.dropEnclave(e)
		return nil, fmt.Errorf("%w: shard block %d on chain height %d, store at %d", ErrStateMismatch, n, rep.Block.Header.ChainHeight, height)
	}
	err = w.store.CommitShardBlock(store.Batch{
		Checkpoint: store.Checkpoint{Height: height, StateRoot: rep.StateRoot, Sealed: rep.Checkpoint},
		Changes:    rep.Changes,
		Outgoing:   rep.Outgoing,
	}, *rep.Block)
	w.mu.Lock()
	if err != nil || w.gen != gen {
		// As in processBlock: the enclave and the store may disagree.
		if w.encl != nil {
			w.encl.Close()
			w.encl = nil
		}
	}
	if err == nil {
		w.stateRoot, w.shardBlock = rep.StateRoot, n
	}
	w.mu.Unlock()
	if err != nil {
		return nil, fmt.Errorf("persist shard block %d: %w", n, err)
	}
	w.log.Debug("shard block", "number", n, "calls", len(calls), "in_block", len(rep.Leaves), "changes", len(rep.Changes))
	w.wakeSubmitter()
	return outs, nil
}

// ExecuteGetter implements rpc.Backend. The request and the response are
// ciphertexts for the enclave and the client. It runs between state
// changes (not between a change and its commit: callEnclave holds exec),
// so an answer never shows state that a crash could still take back.
func (b directBackend) ExecuteGetter(ctx context.Context, request []byte) ([]byte, error) {
	w := b.w
	if !w.isReady() {
		return nil, rpc.ErrNotReady
	}
	// callAs holds exec. A client that goes away mid-call must not cut
	// the enclave's connection (which would force a restart): the call
	// is short.
	rep, err := callAs[*protocol.PrivateGetterReply](context.WithoutCancel(ctx), w, &protocol.PrivateGetter{Request: request})
	if err != nil {
		return nil, err
	}
	return rep.Response, nil
}

// Health implements rpc.Backend.
func (b directBackend) Health(context.Context) (*rpc.Health, error) {
	w := b.w
	w.mu.Lock()
	defer w.mu.Unlock()
	return &rpc.Health{Height: w.height, StateRoot: w.stateRoot, ShardBlock: w.shardBlock}, nil
}

// wakeSubmitter tells the submit loop that the outbox has new calls.
func (w *Worker) wakeSubmitter() {
	select {
	case w.notify <- struct{}{}:
	default:
	}
}

// confirmed tells the RPC's watchers which of this worker's shard blocks
// the chain confirmed: a confirmation counts if it names the shard, the
// number and the header hash of a block this worker persisted.
func (w *Worker) confirmed(cs []sidechain.Confirmed) {
	if w.srv == nil {
		return
	}
	for _, c := range cs {
		if [32]byte(c.Shard) != w.cfg.Shard {
			continue
		}
		if ok, err := w.ownShardBlock(c.Number, c.HeaderHash); err != nil {
			w.log.Warn("confirmed shard block", "number", c.Number, "err", err)
		} else if ok {
			w.srv.Confirmed(c.Number)
		}
	}
}

func (w *Worker) ownShardBlock(n uint64, hash [32]byte) (bool, error) {
	b, ok, err := w.store.ShardBlock(n)
	if err != nil || !ok {
		return false, err
	}
	h, err := b.Header.Hash()
	if err != nil {
		return false, err
	}
	return [32]byte(h) == hash, nil
}

// confirmedAtStart reads the shard's latest confirmation from the chain
// once (proved), so that watchers of blocks confirmed before this start
// are told; later confirmations come with the blocks processed.
func (w *Worker) confirmedAtStart(ctx context.Context) {
	if w.srv == nil {
		return
	}
	err := retry(ctx, w.log, "read the shard's latest confirmed block", func() error {
		c, _, err := w.node.SidechainLatest(ctx, types.Hash(w.cfg.Shard))
		if err != nil || c == nil {
			return err
		}
		w.confirmed([]sidechain.Confirmed{{Shard: c.Shard, Number: c.Number, HeaderHash: c.HeaderHash, Enclave: c.Enclave}})
		return nil
	})
	if err != nil && !errors.Is(err, context.Canceled) {
		w.log.Warn("latest confirmed shard block unknown", "err", err)
	}
}
