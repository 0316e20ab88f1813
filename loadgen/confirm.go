package loadgen

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/integritee-go/integritee/chain/types"
	"github.com/integritee-go/integritee/client"
	"github.com/integritee-go/integritee/client/trusted"
)

// confirmWatch follows the chain's confirmations of a shard's blocks
// while a Direct run goes on: it records, at every poll, the number of
// the shard's latest confirmed block (the chain confirms a shard's blocks
// in order). After the run, with the answers verified, a block is
// confirmed at the first poll that saw it confirmed after one of its
// calls was answered, and each block is checked against the chain's
// record of its number. Nothing the workers claimed before verification
// feeds it: a lying worker can neither stall the wait nor fake a
// confirmation.
type confirmWatch struct {
	c     *client.Client
	shard types.Hash

	mu   sync.Mutex
	seen []confirmSeen // every successful poll
	// height is the chain height the last successful poll was proved at.
	height int64
	// Of the verified results: each block's header hash, calls, and
	// first answer.
	hashes  map[uint64]types.Hash
	calls   map[uint64]int
	firstAt map[uint64]time.Time
}

// confirmSeen is one poll's answer: the shard's latest confirmed block
// number at a time.
type confirmSeen struct {
	at     time.Time
	number uint64
}

func newConfirmWatch(c *client.Client, shard types.Hash) *confirmWatch {
	return &confirmWatch{c: c, shard: shard, hashes: map[uint64]types.Hash{}, calls: map[uint64]int{}, firstAt: map[uint64]time.Time{}}
}

// verified notes a verified result's block and when its call was
// answered.
func (w *confirmWatch) verified(r *trusted.Result, answered time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := r.Block.Number
	w.hashes[n] = r.HeaderHash
	w.calls[n]++
	if at, ok := w.firstAt[n]; !ok || answered.Before(at) {
		w.firstAt[n] = answered
	}
}

// poll asks the chain once and returns the latest confirmed number (ok
// false if the chain did not answer).
func (w *confirmWatch) poll(ctx context.Context) (number uint64, ok bool) {
	conf, h, err := w.c.SidechainLatest(ctx, w.shard)
	if err != nil || conf == nil {
		return 0, false
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.seen = append(w.seen, confirmSeen{at: time.Now(), number: conf.Number})
	w.height = max(w.height, h)
	return conf.Number, true
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

// wait polls until the chain confirmed the last verified block or
// maxWait passed, stops the poller, and checks each verified block
// against the chain's confirmation of its number. It returns when each
// block was seen confirmed and the number of verified calls in blocks the
// chain confirmed with another hash; if the check failed, no block counts
// as confirmed and the error says why.
func (w *confirmWatch) wait(ctx context.Context, stop func(), maxWait time.Duration) (map[uint64]time.Time, int, error) {
	w.mu.Lock()
	var last uint64
	for b := range w.hashes {
		last = max(last, b)
	}
	w.mu.Unlock()
	wctx, cancel := context.WithTimeout(ctx, maxWait)
	defer cancel()
	for {
		if n, ok := w.poll(wctx); ok && n >= last {
			break
		}
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
	confirmed := firstConfirmed(w.seen, w.firstAt)
	if len(confirmed) == 0 {
		return confirmed, 0, nil
	}
	// Every block a poll saw confirmed is on chain at the last poll's
	// height (the chain keeps each block's confirmation): all of them are
	// proved against that one height's header. A block the proof does not
	// show confirmed, or a failed check, counts as not confirmed.
	blocks := slices.Sorted(maps.Keys(confirmed))
	confs, err := w.c.SidechainBlocks(ctx, w.shard, blocks, w.height)
	if err != nil {
		return map[uint64]time.Time{}, 0, fmt.Errorf("check %d confirmed shard blocks at height %d: %w", len(blocks), w.height, err)
	}
	mismatch := 0
	for _, b := range blocks {
		switch conf := confs[b]; {
		case conf == nil:
			delete(confirmed, b)
		case conf.HeaderHash != w.hashes[b]:
			mismatch += w.calls[b]
			delete(confirmed, b)
		}
	}
	return confirmed, mismatch, nil
}

// firstConfirmed is when each block of firstAt (its first answer) was
// first seen confirmed: the earliest poll of seen, not before that
// answer, whose number is at or past the block's. A block no such poll
// saw is left out.
func firstConfirmed(seen []confirmSeen, firstAt map[uint64]time.Time) map[uint64]time.Time {
	confirmed := map[uint64]time.Time{}
	for b, first := range firstAt {
		for _, s := range seen {
			if s.number < b || s.at.Before(first) {
				continue
			}
			if at, ok := confirmed[b]; !ok || s.at.Before(at) {
				confirmed[b] = s.at
			}
		}
	}
	return confirmed
}
