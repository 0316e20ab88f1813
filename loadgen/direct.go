package loadgen

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/integritee-go/integritee/chain/tx"
	"github.com/integritee-go/integritee/chain/types"
	"github.com/integritee-go/integritee/client"
	"github.com/integritee-go/integritee/client/trusted"
	"github.com/integritee-go/integritee/enclave/shielding"
	"github.com/integritee-go/integritee/enclave/stf"
	"github.com/integritee-go/integritee/worker/rpc/api"
)

// refusalPause is how long a sender waits before resending a call the
// worker refused with CodeRateLimited or CodeBusy.
const refusalPause = 100 * time.Millisecond

// directFailCode names a direct call's error for the failure table.
func directFailCode(ctx context.Context, err error) string {
	var re *api.Error
	switch {
	case errors.Is(err, trusted.ErrInvalidCall):
		return "invalid"
	case errors.Is(err, trusted.ErrUnproven):
		return "unproven"
	case errors.As(err, &re):
		return fmt.Sprintf("rpc/%d", re.Code)
	case ctx.Err() != nil:
		return "timeout"
	default:
		return "transport"
	}
}

// Direct shields funds to cfg.Concurrency incognito accounts (one
// shield_funds per public sender, through the chain), then sends cfg.N
// direct trusted transfers of cfg.Amount from them to one incognito
// recipient through the workers' JSON-RPC. Sender i is bound to worker
// i mod len(workers). Every worker's enclave is first verified against its
// registration (trusted.Dial), and every result against the enclave's
// signed shard block. The calls are encrypted before the timing starts
// (in an open loop, twice each sender's even share).
//
// Without cfg.Rate it is a closed loop: each sender sends its share of the
// calls one after the other, each once the previous one executed, and
// latency is from a call's first submission to its executed answer. With
// cfg.Rate it is an open loop: call k is due at start + k/Rate whatever
// the answers, the next free sender takes it, and latency is from when it
// was due (so a call waiting for a free sender counts its wait). An error
// means the run could not be set up; failed calls are in the report.
func Direct(ctx context.Context, cfg Config) (*Report, error) {
	if err := cfg.normalize(true); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	c, err := client.New(ctx, cfg.NodeURL, client.Options{})
	if err != nil {
		return nil, err
	}
	m := cfg.Concurrency
	// Keep a connection per sender: the default transport keeps two idle
	// connections per host and would open and close one per call.
	hc := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		MaxIdleConns: 2 * m, MaxIdleConnsPerHost: m + 2, IdleConnTimeout: 30 * time.Second}}
	tcs := make([]*trusted.Client, len(cfg.WorkerURLs))
	for w, u := range cfg.WorkerURLs {
		tc, err := trusted.Dial(ctx, u, c, trusted.Options{HTTPClient: hc})
		if err != nil {
			return nil, fmt.Errorf("worker %s: %w", u, err)
		}
		if w > 0 && tc.Shard() != tcs[0].Shard() {
			return nil, fmt.Errorf("%w: worker %s serves shard %x, worker %s shard %x", ErrConfig, u, tc.Shard(), cfg.WorkerURLs[0], tcs[0].Shard())
		}
		tcs[w] = tc
	}
	tc0 := tcs[0]
	params, err := c.Params(ctx)
	if err != nil {
		return nil, fmt.Errorf("params: %w", err)
	}
	prefix := "Alice//load/" + cfg.Tag
	payers := make([]account, m)
	senders := make([]account, m)
	counts := make([]int, m)
	funding := make([]uint64, m)
	recipient := devAccount(prefix + "/direct-recipient")
	for i := range m {
		payers[i] = devAccount(fmt.Sprintf("%s/shield/%d", prefix, i))
		senders[i] = devAccount(fmt.Sprintf("%s/direct/%d", prefix, i))
		counts[i] = share(cfg.N, m, i)
		if cfg.Rate > 0 {
			// Any sender may take any of the calls.
			counts[i] = cfg.N
		}
		// The largest possible fee bounds the shield's.
		funding[i] = uint64(counts[i])*cfg.Amount + params.MinFee(tx.MaxTxBytes)
	}
	cfg.Logger.Info("funding payers", "payers", m)
	if err := fund(ctx, c, params, cfg.Funder, payers, funding); err != nil {
		return nil, err
	}
	rep := &Report{Kind: "direct", Mode: "closed", N: cfg.N, Concurrency: m, Recipient: recipient.addr.String(), Amount: cfg.Amount,
		Senders: make([]Sender, m), Workers: make([]WorkerShare, len(tcs))}
	if cfg.Rate > 0 {
		rep.Mode, rep.OfferedPerSec = "open", cfg.Rate
	}
	for w, u := range cfg.WorkerURLs {
		rep.Workers[w].URL = u
	}
	cfg.Logger.Info("shielding", "accounts", m)
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		shieldH  int64
		shieldEr error
	)
	shard := tc0.Shard()
	for i := range m {
		w := workerOf(i, len(tcs))
		rep.Senders[i] = Sender{Name: senders[i].name, Address: senders[i].addr.String(), Shielded: uint64(counts[i]) * cfg.Amount,
			Worker: cfg.WorkerURLs[w]}
		rep.Workers[w].Senders++
		wg.Go(func() {
			enc, err := shielding.Encrypt(tc0.ShieldingKey(), shielding.InfoShieldRecipient, senders[i].addr[:])
			var sub *client.Submitted
			if err == nil {
				sub, err = c.ShieldFunds(ctx, payers[i].key, types.Hash(shard), rep.Senders[i].Shielded, enc)
			}
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				shieldEr = errors.Join(shieldEr, fmt.Errorf("shield to %s: %w", senders[i].name, err))
				return
			}
			shieldH = max(shieldH, sub.Height)
		})
	}
	wg.Wait()
	if shieldEr != nil {
		return nil, shieldEr
	}
	for _, tc := range tcs {
		if err := waitProcessed(ctx, tc, shieldH); err != nil {
			return nil, err
		}
	}
	nonces := make([]uint64, m)
	for i, s := range senders {
		if nonces[i], err = tcs[workerOf(i, len(tcs))].Nonce(ctx, s.key); err != nil {
			return nil, fmt.Errorf("trusted nonce of %s: %w", s.name, err)
		}
	}

	// The calls are encrypted before the timed phase, so that the run
	// measures the workers rather than the tool's HPKE: all of them in a
	// closed loop; in an open loop, where any sender may take any slot,
	// twice a sender's even share (beyond that it encrypts as it goes).
	built := make([][][]byte, m)
	{
		var bw sync.WaitGroup
		var bmu sync.Mutex
		var berr error
		for i := range m {
			k := counts[i]
			if cfg.Rate > 0 {
				k = min(cfg.N, 2*share(cfg.N, m, 0))
			}
			built[i] = make([][]byte, k)
			bw.Go(func() {
				tc := tcs[workerOf(i, len(tcs))]
				for j := range k {
					call := stf.Call{Transfer: &stf.Transfer{From: senders[i].addr, To: recipient.addr, Amount: cfg.Amount}}
					ct, err := tc.EncryptCall(senders[i].key, call, nonces[i]+uint64(j))
					if err != nil {
						bmu.Lock()
						berr = errors.Join(berr, err)
						bmu.Unlock()
						return
					}
					built[i][j] = ct
				}
			})
		}
		bw.Wait()
		if berr != nil {
			return nil, fmt.Errorf("encrypt calls: %w", berr)
		}
	}
	t := newTally()
	// send sends sender i's j-th call, due at due (its first submission
	// in a closed loop), and records the outcome. It reports whether
	// the sender may go on.
	send := func(i, j int, due time.Time) bool {
		w := workerOf(i, len(tcs))
		s := &rep.Senders[i]
		var ct []byte
		if j < len(built[i]) {
			ct, built[i][j] = built[i][j], nil
		} else {
			call := stf.Call{Transfer: &stf.Transfer{From: senders[i].addr, To: recipient.addr, Amount: cfg.Amount}}
			var err error
			if ct, err = tcs[w].EncryptCall(senders[i].key, call, nonces[i]+uint64(j)); err != nil {
				t.fail("build", 1)
				return false
			}
		}
		sentAt := time.Now()
		if due.IsZero() {
			due = sentAt
		}
		r, refused, err := submitDirect(ctx, tcs[w], ct)
		now := time.Now()
		t.mu.Lock()
		t.retries += refused.rateLimited + refused.busy
		t.rateLimited += refused.rateLimited
		t.busy += refused.busy
		if cfg.Rate > 0 {
			t.lags = append(t.lags, sentAt.Sub(due))
		}
		if err == nil {
			t.submitted++
			t.lastSub = now
			if r.Success {
				t.committed++
				t.latencies = append(t.latencies, now.Sub(due))
				t.byWorker[w] = append(t.byWorker[w], now.Sub(due))
				t.blocks[r.Block.Number] = struct{}{}
				t.lastOK = now
				s.Sent++
				s.Amount += cfg.Amount
				rep.Workers[w].Executed++
			} else {
				t.failures["stf_failed"]++
				rep.Workers[w].Failed++
			}
		} else {
			rep.Workers[w].Failed++
		}
		t.mu.Unlock()
		if err != nil {
			t.fail(directFailCode(ctx, err), 1)
			// The nonce may or may not be used: later calls of this
			// sender cannot be trusted to line up.
			return false
		}
		return true
	}

	start := time.Now()
	if cfg.Rate == 0 {
		for i := range m {
			wg.Go(func() {
				for j := range counts[i] {
					if !send(i, j, time.Time{}) {
						t.fail("not_sent", counts[i]-j-1)
						return
					}
				}
			})
		}
		wg.Wait()
	} else {
		// The schedule's slots; any free sender takes the next one due.
		slots := make(chan time.Time, cfg.N)
		pctx, stop := context.WithCancel(ctx)
		paced := make(chan int, 1)
		go func() { paced <- pace(pctx, realClock{}, start, cfg.Rate, cfg.N, slots) }()
		var taken sync.WaitGroup
		var mu sync.Mutex
		took := 0
		for i := range m {
			taken.Go(func() {
				for j := 0; ; j++ {
					due, ok := <-slots
					if !ok {
						return
					}
					mu.Lock()
					took++
					mu.Unlock()
					if !send(i, j, due) {
						return
					}
				}
			})
		}
		taken.Wait() // every sender failed, or the schedule is done
		stop()
		<-paced
		t.fail("not_sent", cfg.N-took)
	}
	t.fill(rep, start)
	rep.limits(cfg, len(tcs))
	return rep, nil
}

// workerOf is the worker sender i is bound to: round robin.
func workerOf(i, workers int) int { return i % workers }

// refusals counts the times a worker refused a call for want of capacity
// (the call was sent again after refusalPause).
type refusals struct{ rateLimited, busy int }

// submitDirect sends ct, resending it after a pause while the worker
// answers that the client is rate limited or that it is busy.
func submitDirect(ctx context.Context, tc *trusted.Client, ct []byte) (*trusted.Result, refusals, error) {
	var n refusals
	for {
		r, err := tc.Submit(ctx, ct)
		var re *api.Error
		switch {
		case !errors.As(err, &re):
			return r, n, err
		case re.Code == api.CodeRateLimited:
			n.rateLimited++
		case re.Code == api.CodeBusy:
			n.busy++
		default:
			return r, n, err
		}
		select {
		case <-ctx.Done():
			return nil, n, err
		case <-time.After(refusalPause):
		}
	}
}

// waitProcessed waits until the worker has processed chain height h.
func waitProcessed(ctx context.Context, tc *trusted.Client, h int64) error {
	for {
		hl, err := tc.Health(ctx)
		if err == nil && hl.Height >= h {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("worker %s did not process block %d: %w", tc.URL(), h, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}
