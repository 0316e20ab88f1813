package loadgen

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/integritee-go/integritee/chain/tx"
	"github.com/integritee-go/integritee/client"
	"github.com/integritee-go/integritee/client/trusted"
	"github.com/integritee-go/integritee/enclave/stf"
)

// Limits of a Clients run.
const (
	// MaxClients bounds ClientsConfig.Clients: the source addresses
	// 127.1.0.1 and up stay inside 127.0.0.0/8.
	MaxClients = 1 << 20
	// DefaultClientsTimeout is a Clients run's default Timeout.
	DefaultClientsTimeout = 10 * time.Minute
	// fdMargin is the descriptors kept for everything but the sessions
	// (the node client, the worker clients, /proc reads).
	fdMargin = 256
	// openParallel is how many sessions are dialled at once: more would
	// overflow the listener's accept backlog for nothing.
	openParallel = 128
	// fanOut is the default number of accounts that fund the sessions'.
	fanOut = 64
)

// ClientsConfig configures a Clients run. Of Config, NodeURL, WorkerURL(s),
// Amount, Timeout, Tag, Funder, Logger and Progress apply; Concurrency is
// the number of accounts that fund the sessions' (default 64); N and Rate
// are set by the run (Clients × calls per session, Clients / Interval).
// Concurrency also bounds the parallel reads that check the results.
type ClientsConfig struct {
	Config
	// Clients is the number of WebSocket sessions, each from its own
	// source address (127.1.0.1, 127.1.0.2, ...) with its own account.
	Clients int
	// Interval is the time between a session's calls; default 1s.
	Interval time.Duration
	// Duration is how long the sessions send: each sends
	// Duration/Interval calls (at least one); default 30s.
	Duration time.Duration
	// WarmUp has every session send one call more before the timed
	// phase, all at once, and waits for its answer (warmUp): with
	// shielded channels that call opens the session's channel.
	WarmUp bool
}

// SessionStats is the WebSocket sessions' part of a Clients report.
type SessionStats struct {
	// Accounts names the run's dev-derived accounts: session i's is
	// Accounts+"/i", the recipient's Accounts+"/recipient".
	Accounts string `json:"accounts"`
	Wanted   int    `json:"wanted"`
	Opened   int    `json:"opened"`
	// Sources is the number of distinct source addresses of the opened
	// sessions, as their sockets had them.
	Sources int `json:"distinct_sources"`
	// OpenErrors are the sessions that could not be opened, by kind
	// ("refused/429" for an HTTP refusal of the upgrade, "conn_refused",
	// "reset", "timeout", "addr", "fds", "other").
	OpenErrors  map[string]int `json:"open_errors,omitempty"`
	OpenSeconds float64        `json:"open_seconds"`
	// Lost are the sessions whose connection failed in the timed phase.
	Lost int `json:"lost,omitempty"`
	// Behind are the calls that came due while their session's previous
	// call was still unanswered: sent late, after that answer.
	Behind          int     `json:"behind,omitempty"`
	IntervalSeconds float64 `json:"interval_seconds"`
	CallsPerSession int     `json:"calls_per_session"`
	// FDLimit is this process's soft limit of open files.
	FDLimit uint64 `json:"fd_limit"`
	// WarmUp is the calls sent before the timed phase, if any.
	WarmUp *WarmUpStats `json:"warm_up,omitempty"`
	// NoncesChecked are the sessions whose account nonce was read after
	// the run and equals their executed calls; RecipientBalance is the
	// recipient's balance read after the run (it must be executed calls
	// times the amount: each executed call applied exactly once).
	NoncesChecked    int    `json:"nonces_checked"`
	RecipientBalance uint64 `json:"recipient_balance"`
}

// WarmUpStats are the calls a Clients run sent before its timed phase:
// each session's first, all at once.
type WarmUpStats struct {
	// Executed are the sessions whose first call executed; the others
	// (Failed) take no part in the timed phase and count as failed.
	Executed int     `json:"executed"`
	Failed   int     `json:"failed,omitempty"`
	Seconds  float64 `json:"seconds"`
}

// Clients opens cfg.Clients WebSocket sessions to the workers (session i
// to worker i mod len(workers)), each from its own loopback source address
// and with its own shielded account, and has each send one direct
// transfer to one recipient every cfg.Interval for cfg.Duration over
// author_submitTrustedCall, one call out at a time: the many-clients
// scenario. With cfg.WarmUp each session first sends one call before the
// timed phase (warmUp). The timed phase's first calls are spread
// uniformly over the first interval. Latency is from a call's due time to its executed answer, so
// a call sent late because the session's previous one was still
// unanswered counts its wait.
//
// The sessions' accounts are fresh for every run (their names carry a
// random run ID) and funded inside the shard: cfg.Concurrency accounts
// are shielded through the chain and each sends direct transfers to its
// share of the sessions' accounts. Calls are built, signed and encrypted
// before the sessions open; after the timed phase every answer is
// verified against the enclave's signed block, and each session's nonce
// and the recipient's balance are read back to show that each executed
// call was applied exactly once.
func Clients(ctx context.Context, cfg ClientsConfig) (*Report, error) {
	if cfg.Clients <= 0 || cfg.Clients > MaxClients {
		return nil, fmt.Errorf("%w: clients %d not in 1..%d", ErrConfig, cfg.Clients, MaxClients)
	}
	if cfg.Interval == 0 {
		cfg.Interval = time.Second
	}
	if cfg.Duration == 0 {
		cfg.Duration = 30 * time.Second
	}
	if cfg.Interval < time.Millisecond || cfg.Duration < 0 {
		return nil, fmt.Errorf("%w: interval %s, duration %s", ErrConfig, cfg.Interval, cfg.Duration)
	}
	if cfg.Rate != 0 || cfg.N != 0 {
		return nil, fmt.Errorf("%w: a clients run sets n and rate itself (--clients, --interval, --duration)", ErrConfig)
	}
	perSession := max(1, int(cfg.Duration/cfg.Interval))
	if cfg.Clients*perSession > MaxN {
		return nil, fmt.Errorf("%w: %d clients × %d calls exceeds %d calls", ErrConfig, cfg.Clients, perSession, MaxN)
	}
	if cfg.Concurrency == 0 {
		cfg.Concurrency = fanOut
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultClientsTimeout
	}
	cfg.N = cfg.Clients * perSession
	if err := cfg.normalize(true); err != nil {
		return nil, err
	}
	m := min(cfg.Concurrency, cfg.Clients)

	// Every session holds a descriptor here, and so does the worker's
	// end when the worker runs in this process (a test).
	probe := newProbe(cfg.NodeURL, cfg.WorkerURLs)
	need := uint64(cfg.Clients + fdMargin)
	for _, p := range probe.procs {
		if p.PID == os.Getpid() && p.Role != "loadgen" {
			need += uint64(cfg.Clients) // a worker in this process
			break
		}
	}
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return nil, fmt.Errorf("open files limit: %w", err)
	}
	if rl.Cur < need {
		return nil, fmt.Errorf("%w: %d sessions need about %d open files, the soft limit is %d (hard %d): raise it (ulimit -n) or use fewer clients", ErrConfig, cfg.Clients, need, rl.Cur, rl.Max)
	}

	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	c, err := client.New(ctx, cfg.NodeURL, client.Options{})
	if err != nil {
		return nil, err
	}
	tcs, err := dialWorkers(ctx, c, cfg.WorkerURLs, m, trusted.Options{})
	if err != nil {
		return nil, err
	}
	params, err := c.Params(ctx)
	if err != nil {
		return nil, fmt.Errorf("params: %w", err)
	}
	var rid [4]byte
	if _, err := rand.Read(rid[:]); err != nil {
		return nil, err
	}
	prefix := "Alice//load/" + cfg.Tag
	run := prefix + "/clients/" + hex.EncodeToString(rid[:])
	recipient := devAccount(run + "/recipient")
	payers := make([]account, m)
	funders := make([]account, m)
	funding := make([]uint64, m)
	// lead is the calls per session before the timed phase.
	lead := 0
	if cfg.WarmUp {
		lead = 1
	}
	perAccount := uint64(perSession+lead) * cfg.Amount
	for i := range m {
		payers[i] = devAccount(fmt.Sprintf("%s/clients-shield/%d", prefix, i))
		funders[i] = devAccount(fmt.Sprintf("%s/clients-funder/%d", prefix, i))
		funding[i] = uint64(share(cfg.Clients, m, i))*perAccount + params.MinFee(tx.MaxTxBytes)
	}
	sessAcc := make([]account, cfg.Clients)
	for i := range sessAcc {
		sessAcc[i] = devAccount(fmt.Sprintf("%s/%d", run, i))
	}
	rep := &Report{Kind: "clients", Mode: "sessions", N: cfg.N, Concurrency: cfg.Clients,
		OfferedPerSec: float64(cfg.Clients) / cfg.Interval.Seconds(), Recipient: recipient.addr.String(), Amount: cfg.Amount,
		Workers: make([]WorkerShare, len(tcs)),
		Sessions: &SessionStats{Accounts: run, Wanted: cfg.Clients, IntervalSeconds: cfg.Interval.Seconds(), CallsPerSession: perSession,
			FDLimit: rl.Cur, OpenErrors: map[string]int{}}}
	for w, u := range cfg.WorkerURLs {
		rep.Workers[w].URL = u
	}
	for i := range cfg.Clients {
		rep.Workers[workerOf(i, len(tcs))].Senders++
	}

	// Funding: shield to the funders through the chain, then each funder
	// pays its share of the sessions' accounts with direct transfers.
	cfg.Logger.Info("funding payers", "payers", m)
	if err := fund(ctx, c, params, cfg.Funder, payers, funding); err != nil {
		return nil, err
	}
	shields := make([]Sender, m)
	for i := range m {
		shields[i].Shielded = funding[i] - params.MinFee(tx.MaxTxBytes)
	}
	cfg.Logger.Info("shielding", "accounts", m)
	if err := shieldAll(ctx, c, tcs, payers, funders, shields); err != nil {
		return nil, err
	}
	cfg.Logger.Info("funding session accounts", "accounts", cfg.Clients)
	if err := fundSessions(ctx, tcs, funders, sessAcc, perAccount); err != nil {
		return nil, err
	}

	// Every call is built, signed and encrypted before the timed phase
	// (the accounts are fresh: nonces from 0).
	prep := time.Now()
	built := make([][][]byte, cfg.Clients)
	for i := range built {
		built[i] = make([][]byte, lead+perSession)
	}
	seal, err := senderChannels(cfg.Config, tcs, cfg.Clients, rep)
	if err != nil {
		return nil, err
	}
	err = buildAll(ctx, built, func(i, j int) ([]byte, error) {
		call := stf.Call{Transfer: &stf.Transfer{From: sessAcc[i].addr, To: recipient.addr, Amount: cfg.Amount}}
		return seal(i, j, sessAcc[i].key, call, uint64(j))
	})
	if err != nil {
		return nil, err
	}
	rep.PrepareSeconds = time.Since(prep).Seconds()
	rep.workerLimits(ctx, tcs)

	cfg.Logger.Info("opening sessions", "sessions", cfg.Clients)
	opened := time.Now()
	sess := openSessions(ctx, tcs, cfg.Clients, rep.Sessions)
	rep.Sessions.OpenSeconds = time.Since(opened).Seconds()
	defer closeSessions(sess)
	executed := make([]uint64, cfg.Clients)
	var warmFailed []int
	if lead > 0 {
		cfg.Logger.Info("warm-up: each session's first call", "sessions", rep.Sessions.Opened)
		warmFailed = warmUp(sess, func(i int, s *trusted.Session) bool {
			var sub *trusted.Submission
			_, err := retryRefused(ctx, func() (err error) {
				sub, err = s.SubmitUnverified(ctx, built[i][0])
				return err
			})
			if err != nil {
				return false
			}
			res, err := tcs[workerOf(i, len(tcs))].VerifySubmission(built[i][0], sub)
			return err == nil && res.Success
		}, executed, rep.Sessions)
	}

	t := newTally()
	prog := &progress{total: cfg.N}
	for _, s := range sess {
		if s == nil {
			t.fail("no_session", perSession)
			prog.failed.Add(int64(perSession))
		}
	}
	for _, i := range warmFailed {
		t.fail("warm_up_failed", perSession)
		prog.failed.Add(int64(perSession))
		sess[i] = nil
	}
	reserveAnswers(sess, perSession)
	async := make([]asyncSession, len(sess))
	timed := make([][][]byte, len(sess))
	for i, s := range sess {
		if s != nil {
			async[i], timed[i] = s, built[i][lead:]
		}
	}
	probe.start()
	defer probe.release()
	start := time.Now()
	t.start = start
	stopProg := startProgress(cfg.Progress, prog, start)
	phase := newTimedSessions(ctx, start, cfg.Interval, perSession, len(tcs), async, timed, t, prog, rep)
	phase.closeAll = func() { closeSessions(sess) }
	records := phase.run()
	stopProg()
	probe.finish(rep)
	rep.Sessions.Lost = int(phase.lost.Load())
	rep.Sessions.Behind = int(phase.behind.Load())
	closeSessions(sess)

	// Verify every answer, then read back what was applied.
	ver := time.Now()
	for k := range records {
		if r := &records[k]; t.verify(ctx, tcs, r, rep, start) != nil {
			executed[r.sender]++
		}
	}
	t.fill(rep, start)
	if err := checkApplied(ctx, tcs, m, sessAcc, executed, recipient, cfg.Amount, rep); err != nil {
		return nil, err
	}
	rep.VerifySeconds = time.Since(ver).Seconds()
	rep.cpuPerCall()
	rep.limits(cfg.Config, len(tcs))
	rep.clientLimits(cfg)
	return rep, nil
}

// warmUp sends each open session's first call (first, which reports
// whether it executed) at once, before the timed phase. With shielded
// channels that call opens the session's channel, an ML-KEM and X25519
// decapsulation in the enclave that costs more than the call itself: a
// run that opened every channel inside its first interval would measure
// that burst, not clients in their steady state, each connected with
// its channel open as after its first call. The sessions whose first
// call did not execute are returned, in order; executed[i] counts the
// others'.
func warmUp(sess []*trusted.Session, first func(i int, s *trusted.Session) bool, executed []uint64, st *SessionStats) (failed []int) {
	start := time.Now()
	ok := make([]bool, len(sess))
	var wg sync.WaitGroup
	for i, s := range sess {
		if s == nil {
			continue
		}
		wg.Go(func() { ok[i] = first(i, s) })
	}
	wg.Wait()
	w := &WarmUpStats{Seconds: time.Since(start).Seconds()}
	for i, s := range sess {
		switch {
		case s == nil:
		case ok[i]:
			executed[i]++
			w.Executed++
		default:
			failed = append(failed, i)
			w.Failed++
		}
	}
	st.WarmUp = w
	return failed
}

// reserveAnswers has each session set aside room for calls answers, each
// an eighth longer than the longest it has read (none before its first
// answer: a run without warm-up reserves nothing), on every core: the
// answers are kept for verification after the timed phase, and memory
// mapped in it was an eighth of the generator's CPU (Session.Reserve).
func reserveAnswers(sess []*trusted.Session, calls int) {
	parallel(len(sess), runtime.GOMAXPROCS(0), func(i int) {
		if s := sess[i]; s != nil {
			s.Reserve(calls * (s.AnswerSize() + s.AnswerSize()/8))
		}
	})
}

// fundSessions has funder k pay amount to each of its share of the
// session accounts (accounts k, k+m, k+2m, ...), one verified direct
// transfer after the other, all funders at once.
func fundSessions(ctx context.Context, tcs []*trusted.Client, funders, to []account, amount uint64) error {
	tc := tcs[0]
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
	)
	m := len(funders)
	nonces := make([]uint64, m)
	for k, f := range funders {
		n, err := tc.Nonce(ctx, f.key)
		if err != nil {
			return fmt.Errorf("trusted nonce of %s: %w", f.name, err)
		}
		nonces[k] = n
	}
	for k := range funders {
		wg.Go(func() {
			nonce := nonces[k]
			for i := k; i < len(to); i += m {
				call := stf.Call{Transfer: &stf.Transfer{From: funders[k].addr, To: to[i].addr, Amount: amount}}
				ct, err := tc.EncryptCall(funders[k].key, call, nonce)
				var res *trusted.Result
				if err == nil {
					_, err = retryRefused(ctx, func() (err error) {
						res, err = tc.Submit(ctx, ct)
						return err
					})
				}
				if err == nil && !res.Success {
					err = fmt.Errorf("%w: %s", ErrFunding, res.Error)
				}
				if err != nil {
					mu.Lock()
					first = errors.Join(first, fmt.Errorf("fund session account %s: %w", to[i].name, err))
					mu.Unlock()
					return
				}
				nonce++
				nonces[k] = nonce
			}
		})
	}
	wg.Wait()
	if first != nil {
		return first
	}
	// Other workers of the shard must have applied the funding before
	// their sessions send.
	for _, w := range tcs[1:] {
		for k, f := range funders {
			for {
				n, err := w.Nonce(ctx, f.key)
				if err == nil && n >= nonces[k] {
					break
				}
				select {
				case <-ctx.Done():
					return fmt.Errorf("worker %s did not apply the sessions' funding: %w", w.URL(), ctx.Err())
				case <-time.After(50 * time.Millisecond):
				}
			}
		}
	}
	return nil
}

// ErrFunding is a funding transfer the enclave executed without success.
var ErrFunding = errors.New("loadgen: funding transfer failed")

// sourceIP is session i's source address: 127.1.0.1 + i.
func sourceIP(i int) net.IP {
	ip := make(net.IP, 4)
	binary.BigEndian.PutUint32(ip, 127<<24|1<<16+uint32(i)+1)
	return ip
}

// openSessions opens n sessions, session i from sourceIP(i) to worker i
// mod len(tcs), openParallel at a time; a session that could not be
// opened is nil and counted in st.OpenErrors.
func openSessions(ctx context.Context, tcs []*trusted.Client, n int, st *SessionStats) []*trusted.Session {
	sess := make([]*trusted.Session, n)
	var mu sync.Mutex
	sources := map[string]bool{}
	parallel(n, openParallel, func(i int) {
		octx, cancel := context.WithTimeout(ctx, 30*time.Second)
		s, err := tcs[workerOf(i, len(tcs))].OpenSession(octx, trusted.SessionOptions{LocalIP: sourceIP(i)})
		cancel()
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			st.OpenErrors[openErrorKind(ctx, err)]++
			return
		}
		sess[i] = s
		st.Opened++
		if host, _, err := net.SplitHostPort(s.LocalAddr()); err == nil {
			sources[host] = true
		}
	})
	st.Sources = len(sources)
	if len(st.OpenErrors) == 0 {
		st.OpenErrors = nil
	}
	return sess
}

// closeSessions closes the open sessions, openParallel at a time.
func closeSessions(sess []*trusted.Session) {
	parallel(len(sess), openParallel, func(i int) {
		if sess[i] != nil {
			sess[i].Close()
		}
	})
}

// parallel calls f(i) for every i below n, from up to workers goroutines
// at once, each taking the next i.
func parallel(n, workers int, f func(i int)) {
	var (
		next atomic.Int64
		wg   sync.WaitGroup
	)
	for range min(workers, n) {
		wg.Go(func() {
			for i := int(next.Add(1) - 1); i < n; i = int(next.Add(1) - 1) {
				f(i)
			}
		})
	}
	wg.Wait()
}

// openErrorKind names why a session could not be opened.
func openErrorKind(ctx context.Context, err error) string {
	var se *trusted.SessionRefusedError
	switch {
	case errors.As(err, &se):
		return fmt.Sprintf("refused/%d", se.Status)
	case errors.Is(err, syscall.ECONNREFUSED):
		return "conn_refused"
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "reset"
	case errors.Is(err, syscall.EADDRNOTAVAIL), errors.Is(err, syscall.EADDRINUSE):
		return "addr"
	case errors.Is(err, syscall.EMFILE), errors.Is(err, syscall.ENFILE):
		return "fds"
	case errors.Is(err, context.DeadlineExceeded), ctx.Err() != nil:
		return "timeout"
	default:
		return "other"
	}
}

// checkApplied reads each session account's nonce and the recipient's
// balance and counts each disagreement with the verified answers as an
// "applied_mismatch" failure: a nonce above the executed calls is a call
// applied without a verified answer (or twice), one below an answer the
// state does not hold.
func checkApplied(ctx context.Context, tcs []*trusted.Client, parallel int, sessAcc []account, executed []uint64, recipient account, amount uint64, rep *Report) error {
	var (
		next     atomic.Int64
		wg       sync.WaitGroup
		mu       sync.Mutex
		mismatch int
		readErr  error
	)
	for range min(parallel, len(sessAcc)) {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= len(sessAcc) {
					return
				}
				n, err := tcs[workerOf(i, len(tcs))].Nonce(ctx, sessAcc[i].key)
				mu.Lock()
				switch {
				case err != nil:
					readErr = errors.Join(readErr, fmt.Errorf("nonce of %s: %w", sessAcc[i].name, err))
				case n != executed[i]:
					mismatch++
				default:
					rep.Sessions.NoncesChecked++
				}
				mu.Unlock()
				if err != nil {
					return
				}
			}
		})
	}
	wg.Wait()
	if readErr != nil {
		return fmt.Errorf("reading back the run's nonces: %w", readErr)
	}
	bal, err := tcs[0].Balance(ctx, recipient.key)
	if err != nil {
		return fmt.Errorf("reading back the recipient's balance: %w", err)
	}
	rep.Sessions.RecipientBalance = bal
	var calls uint64 // warm-up calls included
	for _, n := range executed {
		calls += n
	}
	if want := calls * amount; bal != want {
		mismatch++
		rep.Limits = append(rep.Limits, fmt.Sprintf("the recipient holds %d, the verified answers say %d", bal, want))
	}
	if mismatch > 0 {
		if rep.Failures == nil {
			rep.Failures = map[string]int{}
		}
		rep.Failures["applied_mismatch"] += mismatch
		rep.Failed += mismatch
	}
	return nil
}

// clientLimits states what bounded a Clients run besides the workers.
func (r *Report) clientLimits(cfg ClientsConfig) {
	st := r.Sessions
	if st.Opened < st.Wanted {
		r.Limits = append(r.Limits, fmt.Sprintf("only %d of %d sessions opened (%v): check the workers' --rpc-max-conns and this process's open files limit (%d)", st.Opened, st.Wanted, st.OpenErrors, st.FDLimit))
	}
	if w := st.WarmUp; w != nil {
		r.Limits = append(r.Limits, fmt.Sprintf("before the timed phase each session sent one call (%d executed, %d failed, in %.2fs), which opened its shielded channel if it has one: the run measures sessions in their steady state, not the channels' opening (--warm-up=false includes it)",
			w.Executed, w.Failed, w.Seconds))
	}
	if st.Sources < st.Opened {
		r.Limits = append(r.Limits, fmt.Sprintf("the %d sessions came from only %d source addresses", st.Opened, st.Sources))
	}
	if st.Behind > 0 {
		r.Limits = append(r.Limits, fmt.Sprintf("%d of %d calls came due while their session's previous call was still unanswered (one call out per session) and were sent after that answer: the offer fell below %.0f/s, and latency counts the wait",
			st.Behind, r.N, r.OfferedPerSec))
	}
	if r.Late > st.Behind {
		r.Limits = append(r.Limits, fmt.Sprintf("%d of %d calls were sent more than %s after they were due (%d of them behind an unanswered call, the others late by the load generator's own scheduling on a busy machine): latency counts the delay",
			r.Late, r.N, LateAfter, st.Behind))
	}
	for _, w := range r.Workers {
		l := w.Limits
		if l == nil {
			continue
		}
		if l.MaxConns < w.Senders+1 {
			r.Limits = append(r.Limits, fmt.Sprintf("worker %s keeps at most %d connections (--rpc-max-conns) for %d sessions", w.URL, l.MaxConns, w.Senders))
		}
		if l.RateLimit < 1/cfg.Interval.Seconds() {
			r.Limits = append(r.Limits, fmt.Sprintf("worker %s allows %g requests/s per client IP, below one call per %s", w.URL, l.RateLimit, cfg.Interval))
		}
		if l.CallQueue < w.Senders {
			r.Limits = append(r.Limits, fmt.Sprintf("worker %s queues at most %d calls (--rpc-call-queue) for %d sessions: beyond it calls meet 1031 busy", w.URL, l.CallQueue, w.Senders))
		}
		r.Limits = append(r.Limits, fmt.Sprintf("each source address has one session with one call out every %s: of the worker's per-IP rate (%g/s), per-IP connections (%d) and in-flight requests per session (%d) this run needs %g/s, 1 and 1",
			cfg.Interval, l.RateLimit, l.MaxConnsPerIP, l.MaxInFlight, 1/cfg.Interval.Seconds()))
	}
}
