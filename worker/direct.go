package worker

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/integritee-go/integritee/chain/sidechain"
	"github.com/integritee-go/integritee/chain/teerex"
	"github.com/integritee-go/integritee/enclave/protocol"
	"github.com/integritee-go/integritee/worker/rpc"
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
		c, _, err := w.node.SidechainLatest(ctx, teerex.Hash(w.cfg.Shard))
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
