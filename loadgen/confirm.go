package loadgen

import (
	"context"
	"sync"
	"time"

	"github.com/integritee-go/integritee/chain/types"
	"github.com/integritee-go/integritee/client"
	"github.com/integritee-go/integritee/client/trusted"
)

// confirmWatch follows the chain's confirmations of a shard's blocks
// while a Direct run goes on: when it first sees the shard's latest
// confirmed block at or past a block's number (the chain confirms a
// shard's blocks in order), that block is confirmed. After the run, each
// block the calls were verified in is checked against the chain's record
// of its number, where there is one.
type confirmWatch struct {
	c     *client.Client
	shard types.Hash

	mu        sync.Mutex
	pending   map[uint64]bool // executed, not yet seen confirmed
	confirmed map[uint64]time.Time
	hashes    map[uint64]types.Hash // verified header hash per block
	calls     map[uint64]int        // verified calls per block
}

func newConfirmWatch(c *client.Client, shard types.Hash) *confirmWatch {
	return &confirmWatch{c: c, shard: shard, pending: map[uint64]bool{}, confirmed: map[uint64]time.Time{},
		hashes: map[uint64]types.Hash{}, calls: map[uint64]int{}}
}

// executed notes that a call executed in block (as the worker says; the
// block is verified later).
func (w *confirmWatch) executed(block uint64, _ time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if _, ok := w.confirmed[block]; !ok {
		w.pending[block] = true
	}
}

// verified notes a verified result's block.
func (w *confirmWatch) verified(r *trusted.Result) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.hashes[r.Block.Number] = r.HeaderHash
	w.calls[r.Block.Number]++
}

// poll asks the chain once; it reports whether nothing is pending.
func (w *confirmWatch) poll(ctx context.Context) bool {
	conf, _, err := w.c.SidechainLatest(ctx, w.shard)
	now := time.Now()
	w.mu.Lock()
	defer w.mu.Unlock()
	if err == nil && conf != nil {
		for b := range w.pending {
			if b <= conf.Number {
				w.confirmed[b] = now
				delete(w.pending, b)
			}
		}
	}
	return len(w.pending) == 0
}

// run polls every ConfirmPoll until the returned stop.
func (w *confirmWatch) run(ctx context.Context) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(ConfirmPoll)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				w.poll(ctx)
			}
		}
	}()
	return func() { cancel(); <-done }
}

// wait waits at most maxWait for the pending blocks, stops the poller,
// and checks each verified block against the chain's confirmation of its
// number. It returns when each block was seen confirmed and the number
// of verified calls in blocks the chain confirmed with another hash.
func (w *confirmWatch) wait(ctx context.Context, stop func(), maxWait time.Duration) (map[uint64]time.Time, int) {
	wctx, cancel := context.WithTimeout(ctx, maxWait)
	defer cancel()
	for !w.poll(wctx) {
		select {
		case <-wctx.Done():
		case <-time.After(ConfirmPoll):
			continue
		}
		break
	}
	stop()
	w.mu.Lock()
	defer w.mu.Unlock()
	mismatch := 0
	for b, h := range w.hashes {
		if _, ok := w.confirmed[b]; !ok {
			continue
		}
		conf, _, err := w.c.SidechainBlock(ctx, w.shard, b)
		if err == nil && conf != nil && conf.HeaderHash != h {
			mismatch += w.calls[b]
			delete(w.confirmed, b)
		}
	}
	return w.confirmed, mismatch
}
