package loadgen

import (
	"context"
	"errors"
	"fmt"
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

// rateLimitPause is how long a sender waits before resending a call the
// worker refused with CodeRateLimited.
const rateLimitPause = 100 * time.Millisecond

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
// recipient through the worker's JSON-RPC. The worker's enclave is first
// verified against its registration (trusted.Dial), and every result
// against the enclave's signed shard block. Latency is from submission to
// the executed answer. An error means the run could not be set up; failed
// calls are in the report.
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
	tc, err := trusted.Dial(ctx, cfg.WorkerURL, c, trusted.Options{})
	if err != nil {
		return nil, fmt.Errorf("worker %s: %w", cfg.WorkerURL, err)
	}
	params, err := c.Params(ctx)
	if err != nil {
		return nil, fmt.Errorf("params: %w", err)
	}
	m := cfg.Concurrency
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
		// The largest possible fee bounds the shield's.
		funding[i] = uint64(counts[i])*cfg.Amount + params.MinFee(tx.MaxTxBytes)
	}
	cfg.Logger.Info("funding payers", "payers", m)
	if err := fund(ctx, c, params, cfg.Funder, payers, funding); err != nil {
		return nil, err
	}
	rep := &Report{Kind: "direct", N: cfg.N, Concurrency: m, Recipient: recipient.addr.String(), Amount: cfg.Amount,
		Senders: make([]Sender, m)}
	cfg.Logger.Info("shielding", "accounts", m)
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		shieldH  int64
		shieldEr error
	)
	shard := tc.Shard()
	for i := range m {
		rep.Senders[i] = Sender{Name: senders[i].name, Address: senders[i].addr.String(), Shielded: uint64(counts[i]) * cfg.Amount}
		wg.Go(func() {
			enc, err := shielding.Encrypt(tc.ShieldingKey(), shielding.InfoShieldRecipient, senders[i].addr[:])
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
	if err := waitProcessed(ctx, tc, shieldH); err != nil {
		return nil, err
	}
	nonces := make([]uint64, m)
	for i, s := range senders {
		if nonces[i], err = tc.Nonce(ctx, s.key); err != nil {
			return nil, fmt.Errorf("trusted nonce of %s: %w", s.name, err)
		}
	}

	t := newTally()
	start := time.Now()
	for i := range m {
		wg.Go(func() {
			s := &rep.Senders[i]
			for j := range counts[i] {
				call := stf.Call{Transfer: &stf.Transfer{From: senders[i].addr, To: recipient.addr, Amount: cfg.Amount}}
				ct, err := tc.EncryptCall(senders[i].key, call, nonces[i]+uint64(j))
				if err != nil {
					t.fail("build", 1)
					t.fail("not_sent", counts[i]-j-1)
					return
				}
				r, at, retries, err := submitDirect(ctx, tc, ct)
				now := time.Now()
				t.mu.Lock()
				t.retries += retries
				if err == nil {
					t.submitted++
					t.lastSub = now
					if r.Success {
						t.committed++
						t.latencies = append(t.latencies, now.Sub(at))
						t.blocks[r.Block.Number] = struct{}{}
						t.lastOK = now
						s.Sent++
						s.Amount += cfg.Amount
					} else {
						t.failures["stf_failed"]++
					}
				}
				t.mu.Unlock()
				if err != nil {
					t.fail(directFailCode(ctx, err), 1)
					// The nonce may or may not be used: later calls of
					// this sender cannot be trusted to line up.
					t.fail("not_sent", counts[i]-j-1)
					return
				}
			}
		})
	}
	wg.Wait()
	t.fill(rep, start)
	return rep, nil
}

// submitDirect sends ct, resending it after a pause while the worker
// answers that the client is rate limited. It returns the result, when
// the answered attempt started and how many resends there were.
func submitDirect(ctx context.Context, tc *trusted.Client, ct []byte) (*trusted.Result, time.Time, int, error) {
	for retries := 0; ; retries++ {
		at := time.Now()
		r, err := tc.Submit(ctx, ct)
		var re *api.Error
		if !errors.As(err, &re) || re.Code != api.CodeRateLimited {
			return r, at, retries, err
		}
		select {
		case <-ctx.Done():
			return nil, at, retries, err
		case <-time.After(rateLimitPause):
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
			return fmt.Errorf("worker did not process block %d: %w", h, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}
