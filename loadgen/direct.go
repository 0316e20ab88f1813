package loadgen

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
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
// signed shard block.
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
	tcs, err := dialWorkers(ctx, c, cfg.WorkerURLs, m, trusted.Options{})
	if err != nil {
		return nil, err
	}
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
	if cfg.Recipients > 0 {
		rep.Recipient = fmt.Sprintf("one of %d generated accounts per call (stf.DevAccount 0..%d)", cfg.Recipients, cfg.Recipients-1)
	}
	for w, u := range cfg.WorkerURLs {
		rep.Workers[w].URL = u
	}
	for i := range m {
		w := workerOf(i, len(tcs))
		rep.Senders[i] = Sender{Name: senders[i].name, Address: senders[i].addr.String(), Shielded: uint64(counts[i]) * cfg.Amount,
			Worker: cfg.WorkerURLs[w]}
		rep.Workers[w].Senders++
	}
	cfg.Logger.Info("shielding", "accounts", m)
	if err := shieldAll(ctx, c, tcs, payers, senders, rep.Senders); err != nil {
		return nil, err
	}
	shard := tcs[0].Shard()
	nonces := make([]uint64, m)
	for i, s := range senders {
		if nonces[i], err = tcs[workerOf(i, len(tcs))].Nonce(ctx, s.key); err != nil {
			return nil, fmt.Errorf("trusted nonce of %s: %w", s.name, err)
		}
	}

	// Every call is built, signed and encrypted before the timed phase.
	// An open loop's sender may take any of the calls: it gets twice its
	// share, and builds more in the timed phase only if it takes more
	// (counted in BuiltLive).
	prep := time.Now()
	built := make([][][]byte, m)
	for i := range m {
		n := counts[i]
		if cfg.Rate > 0 {
			n = min(cfg.N, 2*share(cfg.N, m, 0)+8)
		}
		built[i] = make([][]byte, n)
	}
	seal, err := senderChannels(cfg, tcs, m, rep)
	if err != nil {
		return nil, err
	}
	build := func(i, j int) ([]byte, error) {
		to := recipient.addr
		if cfg.Recipients > 0 {
			to = stf.DevAccount(spread(i, j, cfg.Recipients))
		}
		call := stf.Call{Transfer: &stf.Transfer{From: senders[i].addr, To: to, Amount: cfg.Amount}}
		return seal(i, j, senders[i].key, call, nonces[i]+uint64(j))
	}
	if err := buildAll(ctx, built, build); err != nil {
		return nil, err
	}
	rep.PrepareSeconds = time.Since(prep).Seconds()
	rep.workerLimits(ctx, tcs)
	submit, closeTransport, err := directTransport(ctx, cfg, tcs, rep)
	if err != nil {
		return nil, err
	}
	defer closeTransport()

	probe := newProbe(cfg.NodeURL, cfg.WorkerURLs)
	conf := newConfirmWatch(c, types.Hash(shard))
	t := newTally()
	prog := &progress{total: cfg.N}
	var (
		recMu   sync.Mutex
		records []callRecord
		live    int
	)
	// send sends sender i's j-th call, due at due (its first submission
	// in a closed loop), and records the worker's answer, unverified. It
	// reports whether the sender may go on.
	send := func(i, j int, due time.Time) bool {
		w := workerOf(i, len(tcs))
		var ct []byte
		if j < len(built[i]) {
			ct = built[i][j]
		} else {
			var err error
			if ct, err = build(i, j); err != nil {
				t.fail("build", 1)
				prog.failed.Add(1)
				return false
			}
			recMu.Lock()
			live++
			recMu.Unlock()
		}
		sentAt := time.Now()
		if due.IsZero() {
			due = sentAt
		}
		sub, refused, err := submit(i, ct)
		now := time.Now()
		t.sent(prog, refused, cfg.Rate > 0, due, sentAt, now, err)
		if err != nil {
			t.failErr(directFailCode(ctx, err), err)
			prog.failed.Add(1)
			recMu.Lock()
			rep.Workers[w].Failed++
			recMu.Unlock()
			// The nonce may or may not be used: later calls of this
			// sender cannot be trusted to line up.
			return false
		}
		prog.done.Add(1)
		recMu.Lock()
		records = append(records, callRecord{sender: i, worker: w, ct: ct, sub: sub, due: due, done: now})
		recMu.Unlock()
		return true
	}

	stopConf := conf.run(ctx)
	probe.start()
	defer probe.release()
	start := time.Now()
	t.start = start
	stopProg := startProgress(cfg.Progress, prog, start)
	drive(ctx, cfg, counts, t, send)
	stopProg()
	probe.finish(rep)
	rep.BuiltLive = live

	// After the timed phase: verify every answer (block signed by the
	// worker's verified enclave, call proved in it), then wait for the
	// chain to confirm the blocks.
	ver := time.Now()
	for k := range records {
		r := &records[k]
		if res := t.verify(ctx, tcs, r, rep, start); res != nil {
			s := &rep.Senders[r.sender]
			s.Sent++
			s.Amount += cfg.Amount
			conf.verified(res, r.done)
		}
	}
	rep.VerifySeconds = time.Since(ver).Seconds()
	t.fill(rep, start)
	confirmedAt, mismatch, confErr := conf.wait(ctx, stopConf, cfg.ConfirmWait)
	var toConfirmed []time.Duration
	for _, r := range records {
		if at, ok := confirmedAt[r.block]; ok && r.ok {
			// A block is confirmed at the first poll after its first
			// answer; a later answer of the same block is not confirmed
			// before it came.
			if at.Before(r.done) {
				at = r.done
			}
			toConfirmed = append(toConfirmed, at.Sub(r.due))
		}
	}
	if len(toConfirmed) > 0 {
		l := percentiles(toConfirmed)
		rep.Confirmed, rep.LatencyConfirmed = len(toConfirmed), &l
	}
	if mismatch > 0 {
		if rep.Failures == nil {
			rep.Failures = map[string]int{}
		}
		rep.Failures["fork"] += mismatch
		rep.Failed += mismatch
		rep.Committed -= mismatch
	}
	rep.cpuPerCall()
	rep.limits(cfg, len(tcs))
	if rep.BuiltLive > 0 {
		rep.Limits = append(rep.Limits, fmt.Sprintf("%d calls were built in the timed phase (a sender took more than the calls prepared for it)", rep.BuiltLive))
	}
	if confErr != nil {
		rep.Limits = append(rep.Limits, "confirmations not counted: "+confErr.Error())
	}
	if rep.Confirmed < rep.Committed {
		rep.Limits = append(rep.Limits, fmt.Sprintf("%d executed calls' blocks were not seen confirmed on chain within %s after the run", rep.Committed-rep.Confirmed, cfg.ConfirmWait))
	}
	return rep, nil
}

// callRecord is a call the worker answered, kept for verification after
// the timed phase.
type callRecord struct {
	sender, worker int
	ct             []byte
	sub            *trusted.Submission
	due, done      time.Time
	// ok and block are set by verification: executed with success in
	// the verified shard block.
	ok    bool
	block uint64
}

// verify checks a worker's answer to r (its shard block signed by the
// worker's verified enclave, the call proved in it) and counts it: an
// executed call (r.ok, r.block set; the result returned) or a failure by
// kind (nil).
func (t *tally) verify(ctx context.Context, tcs []*trusted.Client, r *callRecord, rep *Report, start time.Time) *trusted.Result {
	res, err := tcs[r.worker].VerifySubmission(r.ct, r.sub)
	switch {
	case err != nil:
		t.failErr(directFailCode(ctx, err), err)
	case !res.Success:
		t.fail("stf_failed", 1)
	default:
		t.committed++
		t.latencies = append(t.latencies, r.done.Sub(r.due))
		t.byWorker[r.worker] = append(t.byWorker[r.worker], r.done.Sub(r.due))
		t.done = append(t.done, completion{at: r.done.Sub(start), lat: r.done.Sub(r.due)})
		t.blocks[res.Block.Number] = struct{}{}
		if r.done.After(t.lastOK) {
			t.lastOK = r.done
		}
		rep.Workers[r.worker].Executed++
		r.ok, r.block = true, res.Block.Number
		return res
	}
	rep.Workers[r.worker].Failed++
	return nil
}

// buildAll fills built[i][j] = build(i, j) on every core.
func buildAll(ctx context.Context, built [][][]byte, build func(i, j int) ([]byte, error)) error {
	return prepareAll(ctx, built, build)
}

// prepareAll fills out[i][j] = build(i, j) on every core.
func prepareAll[T any](ctx context.Context, built [][]T, build func(i, j int) (T, error)) error {
	type job struct{ i, j int }
	var jobs []job
	for i := range built {
		for j := range built[i] {
			jobs = append(jobs, job{i, j})
		}
	}
	var (
		next  atomic.Int64
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
	)
	for range runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			for {
				k := int(next.Add(1) - 1)
				if k >= len(jobs) || ctx.Err() != nil {
					return
				}
				jb := jobs[k]
				ct, err := build(jb.i, jb.j)
				if err != nil {
					mu.Lock()
					first = cmp.Or(first, fmt.Errorf("build call %d of sender %d: %w", jb.j, jb.i, err))
					mu.Unlock()
					return
				}
				built[jb.i][jb.j] = ct
			}
		})
	}
	wg.Wait()
	return cmp.Or(first, ctx.Err())
}

// shieldAll shields each sender's Shielded amount from payers[i] to
// senders[i] through the chain and waits until every worker processed
// the shields.
func shieldAll(ctx context.Context, c *client.Client, tcs []*trusted.Client, payers, senders []account, rs []Sender) error {
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		shieldH  int64
		shieldEr error
	)
	tc0 := tcs[0]
	for i := range payers {
		wg.Go(func() {
			enc, err := shielding.Encrypt(tc0.ShieldingKey(), shielding.InfoShieldRecipient, senders[i].addr[:])
			var sub *client.Submitted
			if err == nil {
				sub, err = c.ShieldFunds(ctx, payers[i].key, types.Hash(tc0.Shard()), rs[i].Shielded, enc)
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
		return shieldEr
	}
	for _, tc := range tcs {
		if err := waitProcessed(ctx, tc, shieldH); err != nil {
			return err
		}
	}
	return nil
}

// drive runs the timed phase: in a closed loop, sender i sends its
// counts[i] calls one after the other; in an open loop (cfg.Rate), call k
// is due at t.start + k/Rate and the next free sender takes it. send
// sends sender i's j-th call due at due (zero in a closed loop) and
// reports whether the sender may go on. Calls never sent are counted as
// not_sent.
func drive(ctx context.Context, cfg Config, counts []int, t *tally, send func(i, j int, due time.Time) bool) {
	var wg sync.WaitGroup
	if cfg.Rate == 0 {
		for i := range counts {
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
		return
	}
	// The schedule's slots; any free sender takes the next one due.
	slots := make(chan time.Time, cfg.N)
	pctx, stop := context.WithCancel(ctx)
	paced := make(chan int, 1)
	go func() { paced <- pace(pctx, realClock{}, t.start, cfg.Rate, cfg.N, slots) }()
	var took atomic.Int64
	for i := range counts {
		wg.Go(func() {
			for j := 0; ; j++ {
				due, ok := <-slots
				if !ok {
					return
				}
				took.Add(1)
				if !send(i, j, due) {
					return
				}
			}
		})
	}
	wg.Wait() // every sender failed, or the schedule is done
	stop()
	<-paced
	t.fail("not_sent", cfg.N-int(took.Load()))
}

// workerOf is the worker sender i is bound to: round robin.
func workerOf(i, workers int) int { return i % workers }

// refusals counts the times a worker refused a call for want of capacity
// (the call was sent again after refusalPause).
type refusals struct{ rateLimited, busy int }

// directTransport returns how sender i submits a call by cfg.Transport,
// and what closes the transport after the run. Over TransportWS every
// sender gets its session first, from its own loopback address (as
// Clients' sessions), to its worker; a session that does not open fails
// the run's setup. Either way a call is resent after a pause while the
// worker answers that the client is rate limited or that it is busy, and
// the answer is verified later (trusted.Client.VerifySubmission).
func directTransport(ctx context.Context, cfg Config, tcs []*trusted.Client, rep *Report) (submit func(i int, ct []byte) (*trusted.Submission, refusals, error), closeAll func(), err error) {
	rep.Transport = cfg.Transport
	if cfg.Transport != TransportWS {
		submit = func(i int, ct []byte) (sub *trusted.Submission, n refusals, err error) {
			tc := tcs[workerOf(i, len(tcs))]
			n, err = retryRefused(ctx, func() (err error) {
				sub, err = tc.SubmitUnverified(ctx, ct)
				return err
			})
			return sub, n, err
		}
		return submit, func() {}, nil
	}
	st := SessionStats{OpenErrors: map[string]int{}}
	sess := openSessions(ctx, tcs, cfg.Concurrency, &st)
	if st.Opened < cfg.Concurrency {
		closeSessions(sess)
		return nil, nil, fmt.Errorf("websocket sessions: %d of %d opened (failures %v)", st.Opened, cfg.Concurrency, st.OpenErrors)
	}
	rep.TransportSources = st.Sources
	submit = func(i int, ct []byte) (sub *trusted.Submission, n refusals, err error) {
		open := func(ctx context.Context) (*trusted.Session, error) {
			return tcs[workerOf(i, len(tcs))].OpenSession(ctx, trusted.SessionOptions{LocalIP: sourceIP(i)})
		}
		n, err = retryRefused(ctx, func() (err error) {
			sub, err = submitReopening(ctx, &sess[i], open, ct)
			return err
		})
		return sub, n, err
	}
	return submit, func() { closeSessions(sess) }, nil
}

// callSession is what a sender needs of its WebSocket session.
type callSession interface {
	SubmitUnverified(ctx context.Context, ct []byte) (*trusted.Submission, error)
	Ended() bool
	Close() error
}

// submitReopening submits ct on *s. If the worker closed *s between calls
// (its idle timeout, in an open loop slow for its senders), it first opens
// a new session, as a client reconnects, and closes the old: the call was
// not sent on it. If the new session does not open, the call is not sent
// and *s stays as it was.
func submitReopening[S callSession](ctx context.Context, s *S, open func(context.Context) (S, error), ct []byte) (*trusted.Submission, error) {
	if (*s).Ended() {
		ns, err := open(ctx)
		if err != nil {
			return nil, fmt.Errorf("reopen the session: %w", err)
		}
		(*s).Close()
		*s = ns
	}
	return (*s).SubmitUnverified(ctx, ct)
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

// spread picks the generated account that sender i's call j goes to:
// a multiplicative hash, so calls land all over the state.
func spread(i, j int, n uint32) uint32 {
	x := (uint64(i)<<32 | uint64(uint32(j))) * 0x9e3779b97f4a7c15
	return uint32((x >> 32) % uint64(n))
}
