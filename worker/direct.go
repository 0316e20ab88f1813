package worker

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/integritee-go/integritee/chain/sidechain"
	"github.com/integritee-go/integritee/chain/tx"
	"github.com/integritee-go/integritee/chain/types"
	"github.com/integritee-go/integritee/enclave/protocol"
	"github.com/integritee-go/integritee/worker/rpc"
	"github.com/integritee-go/integritee/worker/rpc/api"
	"github.com/integritee-go/integritee/worker/store"
)

// Direct invocation. The JSON-RPC server (package worker/rpc) batches the
// clients' encrypted calls; directBackend passes each batch to the enclave
// in one SubmitCalls, which proposes it to the shard's group
// (replicate.go). The batch is answered once the group ordered it and
// this enclave applied it: its shard block persisted before the server
// may tell anyone "executed". Every worker of the shard accepts direct
// calls; the group gives them one order with the chain's indirect calls.

// shardCount is the last count of the shard's active enclaves (renew.go):
// for the log, and for warnings about a shard whose keys live on one
// machine.
type shardCount struct {
	mu sync.Mutex
	n  int
}

// set records the chain's count; it reports whether it changed.
func (c *shardCount) set(n int) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	prev := c.n
	c.n = n
	return n != prev
}

// get returns the chain's count (0 before the first).
func (c *shardCount) get() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n
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
	id := w.sup.Identity()
	if id == nil {
		return nil, rpc.ErrNotReady
	}
	return &rpc.Identity{
		ShieldingKey: id.ShieldingPublic, Signer: id.SignerPublic,
		MRENCLAVE: id.MRENCLAVE, Shard: w.cfg.Shard,
	}, nil
}

// SubmitCalls implements rpc.Backend: the enclave proposes the batch to
// the shard's group; it answers once the group ordered it and this
// enclave applied it, persisted (with one worker, in the same round trip;
// replicate.go).
func (b directBackend) SubmitCalls(ctx context.Context, calls [][]byte) ([]rpc.Outcome, error) {
	outs, err := b.submitCalls(ctx, calls)
	b.w.metrics.directBatch(len(calls), outs, err)
	return outs, err
}

func (b directBackend) submitCalls(ctx context.Context, calls [][]byte) ([]rpc.Outcome, error) {
	w := b.w
	if !w.isReady() {
		return nil, rpc.ErrNotReady
	}
	req := &protocol.SubmitCalls{Calls: calls, Timestamp: time.Now().UnixMilli()}
	var (
		rep    *protocol.SubmitCallsReply
		waiter chan protocol.ProposalResult
	)
	_, err := w.sup.Apply(ctx, update{
		req: req,
		check: func(r protocol.Reply, p Progress) (*transition, error) {
			var err error
			if rep, err = protocol.ReplyAs[*protocol.SubmitCallsReply](req, r, nil); err != nil {
				return nil, err
			}
			if rep.Replica == nil {
				// An enclave without a replica (a test's) executes at once.
				return legacyDirect(rep, len(calls), p)
			}
			// Registered before the output is handed on: it may carry the
			// result already.
			waiter = w.repl.wait(rep.Proposal)
			t, err := replicated(rep.Replica, p)
			if err != nil {
				w.repl.forget(rep.Proposal)
			}
			return t, err
		},
	})
	if errors.Is(err, protocol.ErrNoQuorum) {
		return nil, fmt.Errorf("%w: %w", ErrNoQuorum, &api.Error{Code: api.CodeNoQuorum, Message: noQuorumMessage})
	}
	if isRetired(err) {
		return nil, w.retiredError(ctx, err)
	}
	if err != nil {
		return nil, err
	}
	var res protocol.ProposalResult
	if rep.Replica == nil {
		res = protocol.ProposalResult{Results: rep.Results, Block: rep.Block, Leaves: rep.Leaves}
	} else {
		t := time.NewTimer(proposalWait)
		defer t.Stop()
		select {
		case res = <-waiter:
		case <-t.C:
			// A proposal forwarded to a leader that just died is lost
			// without a word: do not hold the client.
			w.repl.forget(rep.Proposal)
			return nil, fmt.Errorf("direct calls: not ordered within %s (the shard's leader may be changing); outcome unknown, send again (the nonce makes a repeat harmless)", proposalWait)
		case <-ctx.Done():
			w.repl.forget(rep.Proposal)
			// Ordered or not, the outcome is unknown here: the client asks
			// again (the nonce makes a repeat harmless).
			return nil, fmt.Errorf("direct calls: outcome unknown: %w", ctx.Err())
		}
	}
	outs, err := rpc.Outcomes(&protocol.SubmitCallsReply{Results: res.Results, Block: res.Block, Leaves: res.Leaves})
	if err == nil && len(outs) != len(calls) {
		err = fmt.Errorf("enclave answered %d of %d calls", len(outs), len(calls))
	}
	if err != nil {
		return nil, err
	}
	if res.Block != nil {
		w.log.Debug("shard block", "number", res.Block.Header.Number, "calls", len(calls), "in_block", len(res.Leaves))
	}
	return outs, nil
}

// legacyDirect is the transition of the direct calls of an enclave that
// executes them as it gets them (no replica).
func legacyDirect(rep *protocol.SubmitCallsReply, n int, p Progress) (*transition, error) {
	if len(rep.Results) != n {
		return nil, fmt.Errorf("enclave answered %d of %d calls", len(rep.Results), n)
	}
	if rep.Block == nil {
		return nil, nil // every call invalid: nothing changed
	}
	if h := rep.Block.Header.ChainHeight; h != p.Height {
		return nil, fmt.Errorf("%w: shard block %d on chain height %d, store at %d", ErrStateMismatch, rep.Block.Header.Number, h, p.Height)
	}
	return directStep(store.Batch{
		Checkpoint: store.Checkpoint{Height: p.Height, StateRoot: rep.StateRoot, Sealed: rep.Checkpoint},
		Changes:    rep.Changes,
		Outgoing:   rep.Outgoing,
	}, rep.Block), nil
}

// proposalWait bounds how long a batch waits to be ordered: longer than an
// election (10 ticks) and a commit round, shorter than clients wait.
const proposalWait = 5 * time.Second

// ErrNoQuorum means this worker's enclave cannot reach a quorum of the
// shard's enclaves: it orders no calls (api.CodeNoQuorum).
var ErrNoQuorum = errors.New("worker: no quorum of the shard's enclaves")

const noQuorumMessage = "this worker's enclave cannot reach a quorum of the shard's enclaves; the call was not ordered: send it to another worker"

// ExecuteGetter implements rpc.Backend. The request and the response are
// ciphertexts for the enclave and the client. It runs between state
// changes (not between a change and its commit: supervisor.Call takes its
// turn), so an answer never shows state that a crash could still take
// back. It answers after the read barrier (replicate.go); if that failed
// (no leader reached, this enclave lagging), it answers all the same from
// this worker's state and says so (stale): the client decides whether a
// possibly old answer will do.
func (b directBackend) ExecuteGetter(ctx context.Context, request []byte) ([]byte, bool, error) {
	w := b.w
	if !w.isReady() {
		return nil, false, rpc.ErrNotReady
	}
	stale := false
	if err := w.readBarrier(ctx); err != nil {
		if ctx.Err() != nil {
			return nil, false, err
		}
		stale = true
		w.log.Info("getter answered without a read barrier: marked stale", "err", err)
	}
	w.metrics.getter(stale)
	// A client that goes away mid-call must not cut the enclave's
	// connection (which would force a restart): the call is short.
	rep, err := callAs[*protocol.PrivateGetterReply](context.WithoutCancel(ctx), w.sup, &protocol.PrivateGetter{Request: request})
	if isRetired(err) {
		return nil, false, w.retiredError(ctx, err)
	}
	if err != nil {
		return nil, false, err
	}
	return rep.Response, stale, nil
}

// Health implements rpc.Backend.
func (b directBackend) Health(context.Context) (*rpc.Health, error) {
	p := b.w.sup.Progress()
	h := &rpc.Health{Height: p.Height, StateRoot: p.StateRoot, ShardBlock: p.ShardBlock,
		Enclaves: b.w.enclaves.get(), Warnings: b.w.warnings()}
	if b.w.repl == nil {
		return h, nil
	}
	if leader, _, voters := b.w.repl.Status(); leader != (tx.Address{}) {
		h.Leader, h.Voters = leader.String(), voters
	}
	return h, nil
}

// confirmed tells the RPC's watchers which of this worker's shard blocks
// the chain confirmed: a confirmation counts if it names the shard, the
// number and the header hash of a block this worker persisted.
func (w *Worker) confirmed(cs []sidechain.Confirmed) {
	if w.rpcServer == nil {
		return
	}
	for _, c := range cs {
		if [32]byte(c.Shard) != w.cfg.Shard {
			continue
		}
		if ok, err := w.ownShardBlock(c.Number, c.HeaderHash); err != nil {
			w.log.Warn("confirmed shard block", "number", c.Number, "err", err)
		} else if ok {
			w.rpcServer.Confirmed(c.Number)
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
	if w.rpcServer == nil {
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
