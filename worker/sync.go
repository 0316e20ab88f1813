package worker

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/integritee-go/integritee/chain/sidechain"
	"github.com/integritee-go/integritee/enclave/protocol"
	"github.com/integritee-go/integritee/worker/store"
)

// Chain sync: every chain block from the last persisted height on goes to
// the enclave in one supervisor.Apply, which persists it before the next.

// syncLoop feeds the enclave every block from the last processed height
// on, persisting each result before the next.
func (w *Worker) syncLoop(ctx context.Context) error {
	b := backoff{}
	latest := int64(0)
	for ctx.Err() == nil {
		next := w.sup.Progress().Height + 1
		if latest < next+1 {
			var err error
			if latest, err = w.chain.latest(ctx); err != nil {
				b.wait(ctx, w.log, "node status", err)
				continue
			}
			w.metrics.headSeen(latest)
			if latest < next+1 {
				w.pollPause(ctx)
				continue
			}
		}
		if err := w.syncBlock(ctx, next); err != nil {
			if isFatal(err) {
				return err
			}
			if isRetired(err) {
				// The new release's workers serve the shard from here; this
				// one keeps its replica and provisioning endpoint.
				w.log.Warn("the shard moved to another release: this worker serves no more blocks or calls, only its keys to the new release", "height", next, "err", err)
				w.retired.Store(true)
				<-ctx.Done()
				return ctx.Err()
			}
			if w.sup.Progress().Height >= next {
				// The shard's log applied the block meanwhile (a replica
				// step ran between reading the progress and feeding it):
				// nothing failed.
				w.log.Debug("block applied through the shard's log meanwhile", "height", next, "err", err)
				continue
			}
			latest = 0
			b.wait(ctx, w.log, fmt.Sprintf("process block %d", next), err)
			continue
		}
		b.reset()
		if w.sup.Progress().Height < next {
			// Verified and proposed, not yet ordered by the shard's
			// group: give it a moment before feeding it again.
			w.pollPause(ctx)
		}
	}
	return ctx.Err()
}

// pollPause waits for the next poll of the node, or less if the
// enclave's replica waits for a chain block: the shard's log ordered a
// block (another worker's enclave verified it) that this enclave has not
// been fed yet, and the entries after it wait for it.
func (w *Worker) pollPause(ctx context.Context) {
	t := time.NewTimer(w.cfg.PollInterval)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	case <-w.syncNow:
	}
}

// syncBlock reads block h from the node and applies it.
func (w *Worker) syncBlock(ctx context.Context, h int64) error {
	req, confirmed, err := w.chain.block(ctx, h)
	if err != nil {
		return err
	}
	err = w.applyBlock(ctx, req, confirmed)
	if errors.Is(err, protocol.ErrVerification) {
		// Never applied; the node may serve it right on a retry.
		w.chain.forgetNext()
	}
	return err
}

// applyBlock has the enclave process a chain block and persists the
// result (protocol's host duties), then hands on what the block produced:
// outgoing calls to the submitter, confirmations to the RPC's watchers.
func (w *Worker) applyBlock(ctx context.Context, req *protocol.ProcessBlock, confirmed []sidechain.Confirmed) error {
	var rep *protocol.ProcessBlockReply
	_, err := w.sup.Apply(ctx, update{req: req, check: func(r protocol.Reply, p Progress) (*transition, error) {
		var err error
		if rep, err = protocol.ReplyAs[*protocol.ProcessBlockReply](req, r, nil); err != nil {
			return nil, err
		}
		if rep.Height != p.Height+1 {
			return nil, fmt.Errorf("%w: enclave processed height %d, store at %d", ErrStateMismatch, rep.Height, p.Height)
		}
		if rep.Replica != nil {
			// Verified and proposed; applied when the shard's group
			// ordered it, now or in a later reply.
			return replicated(rep.Replica, p)
		}
		return chainStep(store.Batch{
			Checkpoint: store.Checkpoint{Height: rep.Height, StateRoot: rep.StateRoot, Sealed: rep.Checkpoint},
			Changes:    rep.Changes,
			Outgoing:   rep.Outgoing,
			Block:      rep.Block,
		}), nil
	}})
	if err != nil {
		return err
	}
	if s := rep.Stats; s.Invokes > 0 || s.Shields > 0 {
		w.log.Info("block processed", "height", rep.Height, "invokes", s.Invokes, "applied", s.Applied, "failed", s.Failed,
			"rejected", s.Rejected, "shields", s.Shields, "shields_rejected", s.ShieldsRejected,
			"changes", len(rep.Changes), "outgoing", len(rep.Outgoing))
	} else {
		w.log.Debug("block processed", "height", rep.Height, "outgoing", len(rep.Outgoing))
	}
	if len(rep.Outgoing) > 0 {
		w.wakeSubmitter()
	}
	w.confirmed(confirmed)
	return nil
}

// isFatal tells the errors that retrying cannot cure: the store and the
// enclave disagree, or the enclave refuses its sealed keys or state.
func isFatal(err error) bool {
	for _, f := range []error{store.ErrHeightGap, store.ErrCorrupt, ErrStateMismatch, ErrKeysRegenerated,
		ErrIdentityChanged, protocol.ErrSealing, protocol.ErrState} {
		if errors.Is(err, f) {
			return true
		}
	}
	return false
}
