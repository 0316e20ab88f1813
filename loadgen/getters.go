package loadgen

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/integritee-go/integritee/client"
	"github.com/integritee-go/integritee/client/trusted"
	"github.com/integritee-go/integritee/enclave/stf"
	"github.com/integritee-go/integritee/worker/rpc/api"
)

// getterLifetime is how long the prepared getters stay answerable: a
// getters run must end within it (later ones are refused as expired).
const getterLifetime = 5 * time.Minute

// Getters sends cfg.N private getters (each sender's trusted free
// balance: signed, with a fresh reply key, encrypted to the enclave)
// from cfg.Concurrency dev-derived accounts through the workers'
// JSON-RPC, closed loop or at cfg.Rate, like Direct. The getters are
// prepared before the timed phase; after it, every answer is decrypted
// and must be the balance read before the run (nothing changes the
// accounts meanwhile).
func Getters(ctx context.Context, cfg Config) (*Report, error) {
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
	tcs, err := dialWorkers(ctx, c, cfg.WorkerURLs, m, trusted.Options{GetterLifetime: getterLifetime})
	if err != nil {
		return nil, err
	}
	prefix := "Alice//load/" + cfg.Tag
	senders := make([]account, m)
	counts := make([]int, m)
	balances := make([]uint64, m)
	rep := &Report{Kind: "getters", Mode: "closed", N: cfg.N, Concurrency: m, Senders: make([]Sender, m), Workers: make([]WorkerShare, len(tcs))}
	if cfg.Rate > 0 {
		rep.Mode, rep.OfferedPerSec = "open", cfg.Rate
	}
	for w, u := range cfg.WorkerURLs {
		rep.Workers[w].URL = u
	}
	for i := range m {
		w := workerOf(i, len(tcs))
		senders[i] = devAccount(fmt.Sprintf("%s/getter/%d", prefix, i))
		counts[i] = share(cfg.N, m, i)
		if cfg.Rate > 0 {
			counts[i] = cfg.N
		}
		if balances[i], err = tcs[w].Balance(ctx, senders[i].key); err != nil {
			return nil, fmt.Errorf("balance of %s: %w", senders[i].name, err)
		}
		rep.Senders[i] = Sender{Name: senders[i].name, Address: senders[i].addr.String(), Worker: cfg.WorkerURLs[w]}
		rep.Workers[w].Senders++
	}

	prep := time.Now()
	prepared := make([][]*trusted.PreparedGetter, m)
	for i := range m {
		n := counts[i]
		if cfg.Rate > 0 {
			n = min(cfg.N, 2*share(cfg.N, m, 0)+8)
		}
		prepared[i] = make([]*trusted.PreparedGetter, n)
	}
	build := func(i int) (*trusted.PreparedGetter, error) {
		return tcs[workerOf(i, len(tcs))].PrepareGetter(senders[i].key, stf.Getter{FreeBalance: &senders[i].addr})
	}
	if err := prepareAll(ctx, prepared, func(i, _ int) (*trusted.PreparedGetter, error) { return build(i) }); err != nil {
		return nil, err
	}
	rep.PrepareSeconds = time.Since(prep).Seconds()
	rep.workerLimits(ctx, tcs)

	type answer struct {
		sender, worker int
		p              *trusted.PreparedGetter
		ct             []byte
		due, done      time.Time
	}
	probe := newProbe(cfg.NodeURL, cfg.WorkerURLs)
	t := newTally()
	prog := &progress{total: cfg.N}
	var (
		mu      sync.Mutex
		answers []answer
		live    int
	)
	send := func(i, j int, due time.Time) bool {
		w := workerOf(i, len(tcs))
		var p *trusted.PreparedGetter
		if j < len(prepared[i]) {
			p = prepared[i][j]
		} else {
			var err error
			if p, err = build(i); err != nil {
				t.fail("build", 1)
				prog.failed.Add(1)
				return false
			}
			mu.Lock()
			live++
			mu.Unlock()
		}
		sentAt := time.Now()
		if due.IsZero() {
			due = sentAt
		}
		var ct []byte
		refused, err := retryRefused(ctx, func() (err error) {
			ct, err = tcs[w].SendGetter(ctx, p)
			return err
		})
		now := time.Now()
		t.sent(prog, refused, cfg.Rate > 0, due, sentAt, now, err)
		if err != nil {
			t.failErr(directFailCode(ctx, err), err)
			prog.failed.Add(1)
			mu.Lock()
			rep.Workers[w].Failed++
			mu.Unlock()
			// A getter changes nothing: the sender goes on.
			return true
		}
		prog.done.Add(1)
		mu.Lock()
		answers = append(answers, answer{sender: i, worker: w, p: p, ct: ct, due: due, done: now})
		mu.Unlock()
		return true
	}

	probe.start()
	defer probe.release()
	start := time.Now()
	t.start = start
	stopProg := startProgress(cfg.Progress, prog, start)
	drive(ctx, cfg, counts, t, send)
	stopProg()
	probe.finish(rep)
	rep.BuiltLive = live

	ver := time.Now()
	for _, a := range answers {
		v, err := a.p.Open(a.ct)
		var bal uint64
		if err == nil {
			bal, err = trusted.DecodeUint(v)
		}
		switch {
		case errors.Is(err, trusted.ErrGetter):
			t.fail("getter_refused", 1)
			rep.Workers[a.worker].Failed++
		case err != nil:
			t.fail("unproven", 1)
			rep.Workers[a.worker].Failed++
		case bal != balances[a.sender]:
			t.fail("wrong_value", 1)
			rep.Workers[a.worker].Failed++
		default:
			t.committed++
			t.latencies = append(t.latencies, a.done.Sub(a.due))
			t.done = append(t.done, completion{at: a.done.Sub(start), lat: a.done.Sub(a.due)})
			if a.done.After(t.lastOK) {
				t.lastOK = a.done
			}
			rep.Senders[a.sender].Sent++
			rep.Workers[a.worker].Executed++
		}
	}
	rep.VerifySeconds = time.Since(ver).Seconds()
	t.fill(rep, start)
	rep.cpuPerCall()
	rep.limits(cfg, len(tcs))
	if rep.BuiltLive > 0 {
		rep.Limits = append(rep.Limits, fmt.Sprintf("%d getters were built in the timed phase (a sender took more than were prepared for it)", rep.BuiltLive))
	}
	return rep, nil
}

// retryRefused runs send, again after refusalPause while the worker
// refuses it with CodeRateLimited or CodeBusy.
func retryRefused(ctx context.Context, send func() error) (refusals, error) {
	var n refusals
	for {
		err := send()
		var re *api.Error
		switch {
		case !errors.As(err, &re):
			return n, err
		case re.Code == api.CodeRateLimited:
			n.rateLimited++
		case re.Code == api.CodeBusy:
			n.busy++
		default:
			return n, err
		}
		select {
		case <-ctx.Done():
			return n, err
		case <-time.After(refusalPause):
		}
	}
}
