// Package loadgen measures a local integritee network under load: public
// transfers through the node (Transfers), direct trusted calls (Direct)
// and private getters (Getters) through the workers, and trusted calls
// through the chain (Indirect). It only ever talks to loopback addresses
// (CheckLoopback): it is a development tool and must never load another
// machine.
//
// It measures the system, not itself: calls are prepared (built, signed,
// encrypted) before the timed phase and results verified after it; the
// report gives the CPU time and peak RSS of the system's processes, found
// in /proc by their listening ports (procstat.go), so CPU per call is a
// number.
//
// Senders are dev-derived accounts (accounts.DevKey("Alice//load/...")),
// funded from Alice first, so a run needs a dev genesis. Each sender keeps
// its own nonce sequence and submits without waiting for earlier calls to
// commit, so the senders pipeline.
package loadgen

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/integritee-go/integritee/client"
	"github.com/integritee-go/integritee/client/trusted"
	"github.com/integritee-go/integritee/enclave/stf"
	"github.com/integritee-go/integritee/worker/rpc/api"
)

// Errors.
var (
	// ErrNotLoopback refuses a node or worker address that is not on this
	// machine's loopback interface.
	ErrNotLoopback = errors.New("loadgen: address is not loopback (127.0.0.0/8, ::1 or localhost)")
	// ErrConfig is an invalid configuration (counts, concurrency).
	ErrConfig = errors.New("loadgen: invalid configuration")
)

// Limits keep a run bounded however it is configured.
const (
	MaxN           = 1_000_000
	MaxConcurrency = 1024
	MaxRate        = 1_000_000
	DefaultTimeout = 2 * time.Minute
	// DefaultConfirmWait is Config.ConfirmWait's default.
	DefaultConfirmWait = 30 * time.Second
	// ConfirmPoll is how often a Direct run asks the chain for the
	// shard's latest confirmed block: the resolution of the latency to
	// confirmed.
	ConfirmPoll = 200 * time.Millisecond
)

// CheckLoopback accepts only URLs (or host:port) whose host is localhost,
// in 127.0.0.0/8 or ::1. Names other than localhost are refused rather
// than resolved: what they resolve to can change.
func CheckLoopback(addr string) error {
	s := addr
	if !strings.Contains(s, "://") {
		s = "http://" + s
	}
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("%w: %q: %w", ErrNotLoopback, addr, err)
	}
	host := u.Hostname()
	if strings.EqualFold(host, "localhost") {
		return nil
	}
	ip := net.ParseIP(host)
	if ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("%w: %q", ErrNotLoopback, addr)
	}
	return nil
}

// Config configures a run.
type Config struct {
	// NodeURL is the node's CometBFT RPC (http://127.0.0.1:26657).
	NodeURL string
	// WorkerURL is the worker's JSON-RPC (Direct only); the same as
	// WorkerURLs with one URL. Set one or the other.
	WorkerURL string
	// WorkerURLs are the JSON-RPC URLs of workers of one shard (Direct
	// only): sender i is bound to WorkerURLs[i mod len(WorkerURLs)].
	WorkerURLs []string
	// Rate, when not 0, makes Direct an open loop: calls are due at Rate
	// calls per second whatever the answers, and Concurrency senders
	// take them as they come due (see Direct). At most MaxRate.
	Rate float64
	// N is the number of transfers (or direct calls) to send.
	N int
	// Concurrency is the number of senders submitting at once; each has
	// its own account and nonce sequence. Default 8, at most N.
	Concurrency int
	// Amount is what each transfer moves; default 1.
	Amount uint64
	// Timeout bounds the whole run including setup; default 2 minutes.
	Timeout time.Duration
	// Tag names the run's accounts ("Alice//load/TAG/..."); default "default".
	// Runs with the same tag reuse accounts.
	Tag string
	// Funder is the dev account that funds the run's accounts; default
	// "Alice". Runs at the same time need different funders (each funding
	// uses its funder's nonces).
	Funder string
	// Logger receives progress; nil discards it.
	Logger *slog.Logger
	// ConfirmWait bounds the wait, after a Direct run's calls, for the
	// chain to confirm their shard blocks; default DefaultConfirmWait.
	ConfirmWait time.Duration
	// Progress, when set, receives a progress bar redrawn in place
	// (carriage returns) while the calls run: for a terminal.
	Progress io.Writer
	// OneShot makes Direct and Clients seal every call one-shot to the
	// shielding key (one HPKE encapsulation per call) instead of on one
	// shielded channel per sender (trusted.Channel: one encapsulation
	// per sender, then AES-256-GCM per call).
	OneShot bool
	// Recipients, when set, makes Direct send each call to one of the
	// generated accounts stf.DevAccount(0..Recipients-1) (those that
	// `trusted dev-accounts --n` made), picked pseudo-randomly per call,
	// instead of to one recipient: every call then changes an account
	// of its own somewhere in the state, as calls between many users do.
	Recipients uint32
	// Transport is how Direct sends its calls: TransportHTTP (default),
	// a JSON-RPC POST per call over pooled keep-alive connections, or
	// TransportWS, one WebSocket session per sender (from its own
	// loopback address, as Clients' sessions) over which it sends its
	// calls one after the other.
	Transport string
}

// Transport values of a Config and a Report.
const (
	TransportHTTP = "http"
	TransportWS   = "ws"
)

// Shielding values of a Report.
const (
	ShieldingChannel = "channel per sender"
	ShieldingOneShot = "one-shot per call"
)

// senderChannels opens a channel per sender at its worker, or none for a
// one-shot run, and returns the function that builds sender i's j-th call
// on it (the first open, the rest data: each sender sends in order).
func senderChannels(cfg Config, tcs []*trusted.Client, n int, rep *Report) (func(i, j int, key ed25519.PrivateKey, call stf.Call, nonce uint64) ([]byte, error), error) {
	if cfg.OneShot {
		rep.Shielding = ShieldingOneShot
		return func(i, _ int, key ed25519.PrivateKey, call stf.Call, nonce uint64) ([]byte, error) {
			return tcs[workerOf(i, len(tcs))].EncryptCall(key, call, nonce)
		}, nil
	}
	rep.Shielding = ShieldingChannel
	chans := make([]*trusted.Channel, n)
	for i := range chans {
		ch, err := tcs[workerOf(i, len(tcs))].OpenChannel()
		if err != nil {
			return nil, err
		}
		chans[i] = ch
	}
	return func(i, j int, key ed25519.PrivateKey, call stf.Call, nonce uint64) ([]byte, error) {
		return chans[i].EncryptCallAs(key, call, nonce, j == 0)
	}, nil
}

func (c *Config) normalize(needWorker bool) error {
	if c.N <= 0 || c.N > MaxN {
		return fmt.Errorf("%w: n %d not in 1..%d", ErrConfig, c.N, MaxN)
	}
	if c.Concurrency == 0 {
		c.Concurrency = 8
	}
	if c.Concurrency < 0 || c.Concurrency > MaxConcurrency {
		return fmt.Errorf("%w: concurrency %d not in 1..%d", ErrConfig, c.Concurrency, MaxConcurrency)
	}
	c.Concurrency = min(c.Concurrency, c.N)
	if c.Amount == 0 {
		c.Amount = 1
	}
	// Funding sums amounts and fees: keep the total far from overflow.
	if c.Amount > math.MaxUint64/2/uint64(c.N) {
		return fmt.Errorf("%w: amount %d times n %d overflows", ErrConfig, c.Amount, c.N)
	}
	if c.Timeout <= 0 {
		c.Timeout = DefaultTimeout
	}
	if c.ConfirmWait <= 0 {
		c.ConfirmWait = DefaultConfirmWait
	}
	if c.Funder == "" {
		c.Funder = "Alice"
	}
	if c.Tag == "" {
		c.Tag = "default"
	}
	if strings.Contains(c.Tag, "/") {
		return fmt.Errorf("%w: tag %q contains '/'", ErrConfig, c.Tag)
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	switch c.Transport {
	case "":
		c.Transport = TransportHTTP
	case TransportHTTP, TransportWS:
	default:
		return fmt.Errorf("%w: transport %q is neither %q nor %q", ErrConfig, c.Transport, TransportHTTP, TransportWS)
	}
	if err := CheckLoopback(c.NodeURL); err != nil {
		return fmt.Errorf("node: %w", err)
	}
	if !needWorker && (len(c.WorkerURLs) > 0 || c.Rate != 0) {
		return fmt.Errorf("%w: worker URLs and rate are for direct calls only", ErrConfig)
	}
	if !(c.Rate >= 0 && c.Rate <= MaxRate) { // NaN too
		return fmt.Errorf("%w: rate %g not in 0..%d", ErrConfig, c.Rate, MaxRate)
	}
	if needWorker {
		switch {
		case c.WorkerURL != "" && len(c.WorkerURLs) > 0:
			return fmt.Errorf("%w: both WorkerURL and WorkerURLs", ErrConfig)
		case len(c.WorkerURLs) == 0:
			c.WorkerURLs = []string{c.WorkerURL}
		}
		for _, u := range c.WorkerURLs {
			if err := CheckLoopback(u); err != nil {
				return fmt.Errorf("worker: %w", err)
			}
		}
	}
	return nil
}

// Latency summarises durations from submission to commit (Transfers) or
// to executed (Direct), in milliseconds.
type Latency struct {
	P50 float64 `json:"p50_ms"`
	P90 float64 `json:"p90_ms"`
	P99 float64 `json:"p99_ms"`
	Max float64 `json:"max_ms"`
}

// percentiles uses the nearest-rank method.
func percentiles(ds []time.Duration) Latency {
	if len(ds) == 0 {
		return Latency{}
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	rank := func(p float64) float64 {
		i := int(p*float64(len(s))+0.999999) - 1
		i = min(max(i, 0), len(s)-1)
		return ms(s[i])
	}
	return Latency{P50: rank(0.50), P90: rank(0.90), P99: rank(0.99), Max: ms(s[len(s)-1])}
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// Sender is one account's share of a run, for checking balances.
type Sender struct {
	Name    string `json:"name"`
	Address string `json:"address"`
	// Sent is the number of calls that succeeded, Amount their total.
	Sent   int    `json:"sent"`
	Amount uint64 `json:"amount"`
	// Fees is what the sender paid in fees for its successful transfers
	// (Transfers only).
	Fees uint64 `json:"fees,omitempty"`
	// Funded is what Alice sent the sender before the run (Transfers
	// only).
	Funded uint64 `json:"funded,omitempty"`
	// Shielded is what was shielded to the account before the calls
	// (Direct only).
	Shielded uint64 `json:"shielded,omitempty"`
	// Worker is the URL the sender sent its calls to (Direct only).
	Worker string `json:"worker,omitempty"`
}

// WorkerShare is one worker's part of a Direct run.
type WorkerShare struct {
	URL      string `json:"url"`
	Senders  int    `json:"senders"`
	Executed int    `json:"executed"`
	Failed   int    `json:"failed"`
	// Latency is this worker's calls' latency to executed (a call to
	// the shard's Raft leader takes fewer hops than one to a follower).
	Latency Latency `json:"latency"`
	// Limits are the worker's JSON-RPC limits from its system_health
	// (nil if it does not report them).
	Limits *api.Limits `json:"limits,omitempty"`
}

// Report is the result of a run.
type Report struct {
	Kind string `json:"kind"` // "transfers" or "direct"
	// Mode is "closed" (each sender waits for its call's answer before
	// the next) or "open" (calls due at OfferedPerSec; Direct only).
	Mode string `json:"mode,omitempty"`
	// Shielding is how Direct and Clients sealed their calls
	// (ShieldingChannel or ShieldingOneShot).
	Shielding string `json:"shielding,omitempty"`
	// Transport is how Direct sent its calls (TransportHTTP or
	// TransportWS).
	Transport string `json:"transport,omitempty"`
	// TransportSources is, over TransportWS, the number of distinct
	// source addresses of the senders' sessions as their sockets had
	// them.
	TransportSources int `json:"transport_sources,omitempty"`
	N                int `json:"n"`
	Concurrency      int `json:"concurrency"`
	// OfferedPerSec is the open loop's rate.
	OfferedPerSec float64 `json:"offered_per_sec,omitempty"`
	// Submitted were accepted by the node (CheckTx) or the worker;
	// Committed are in a committed block with success (Transfers), or
	// executed with success (Direct).
	Submitted int `json:"submitted"`
	Committed int `json:"committed"`
	// Failed counts the calls that did not succeed; Failures splits them
	// by error code ("integritee/12", "rpc/1030", "transport", "timeout",
	// "not_sent" after an earlier failure of the same sender, ...).
	Failed   int            `json:"failed"`
	Failures map[string]int `json:"failures,omitempty"`
	// FailureExamples is the first error of each kind of Failures that
	// came with one.
	FailureExamples map[string]string `json:"failure_examples,omitempty"`
	// Retries are direct calls resent after a pause because the worker
	// refused them for want of capacity: RateLimited with
	// api.CodeRateLimited (1030, its per-client rate limit), Busy with
	// api.CodeBusy (1031, its call queue full).
	Retries     int `json:"retries,omitempty"`
	RateLimited int `json:"rate_limited,omitempty"`
	Busy        int `json:"busy,omitempty"`
	// SubmitSeconds is from the first submission to the last one
	// accepted; TotalSeconds until the last commit (or execution).
	SubmitSeconds   float64 `json:"submit_seconds"`
	TotalSeconds    float64 `json:"total_seconds"`
	SubmittedPerSec float64 `json:"submitted_per_sec"`
	CommittedPerSec float64 `json:"committed_per_sec"`
	Latency         Latency `json:"latency"`
	// Confirmed are the executed calls whose shard block the chain
	// confirmed (Direct), LatencyConfirmed their latency to that, as the
	// load generator saw it (polling every ConfirmPoll).
	Confirmed int `json:"confirmed,omitempty"`
	// BlocksToExecuted is, for indirect calls, the chain blocks from the
	// height at broadcast to the block holding the call.
	BlocksToExecuted *BlockLatency `json:"blocks_to_executed,omitempty"`
	LatencyConfirmed *Latency      `json:"latency_confirmed,omitempty"`
	// PrepareSeconds is the time spent building, signing and encrypting
	// the calls before the timed phase; BuiltLive counts calls that had
	// to be built in it (an open loop's sender that took more calls than
	// were prepared for it). VerifySeconds is the time spent verifying
	// the results after it.
	PrepareSeconds float64 `json:"prepare_seconds"`
	BuiltLive      int     `json:"built_live,omitempty"`
	VerifySeconds  float64 `json:"verify_seconds,omitempty"`
	// Procs are the measured system's processes (and the load
	// generator's) with the CPU they used in the timed phase and their
	// peak RSS; SystemCPUSeconds sums all but the load generator's, and
	// CPUPerCallMs divides it by the committed calls.
	Procs            []*Proc `json:"processes,omitempty"`
	SystemCPUSeconds float64 `json:"system_cpu_seconds"`
	CPUPerCallMs     float64 `json:"cpu_per_call_ms"`
	// Series is throughput and latency over time (for --plot).
	Series []Point `json:"series,omitempty"`
	// SendLag is, in an open loop, how long after it was due each call
	// was sent (waiting for a free sender); Late counts those sent more
	// than LateAfter after.
	SendLag *Latency `json:"send_lag,omitempty"`
	Late    int      `json:"late,omitempty"`
	// Collector is the load generator's garbage collector during the
	// timed phase (held: it runs only past a memory budget).
	Collector *CollectorStats `json:"collector,omitempty"`
	// Limits say what bounded the run besides the workers' capacity:
	// refusals by a worker's rate limit or queue, a closed loop's
	// senders, an open loop's senders falling behind the schedule.
	// Figures of a run with refusals measure the limit, not capacity.
	Limits []string `json:"limits,omitempty"`
	// Workers are the workers' shares of a Direct run.
	Workers []WorkerShare `json:"workers,omitempty"`
	// Sessions are a Clients run's WebSocket sessions.
	Sessions *SessionStats `json:"sessions,omitempty"`
	// Blocks is the number of chain blocks holding the transfers, or of
	// shard blocks holding the direct calls: N/Blocks is the batching.
	Blocks int `json:"blocks"`
	// Recipient received every successful call's amount.
	Recipient string   `json:"recipient"`
	Amount    uint64   `json:"amount_per_call"`
	Senders   []Sender `json:"senders"`
}

// OK reports whether every call succeeded.
func (r *Report) OK() bool { return r.Failed == 0 && r.Committed == r.N }

// tally collects outcomes from concurrent senders.
type tally struct {
	mu        sync.Mutex
	submitted int
	committed int
	failures  map[string]int
	// examples holds the first error of each failure kind.
	examples map[string]string
	retries  int
	// rateLimited and busy count refusals with 1030 and 1031.
	rateLimited, busy int
	latencies         []time.Duration
	// byWorker are the latencies per worker (Direct).
	byWorker map[int][]time.Duration
	// lags are the open loop's send delays after the due times.
	lags   []time.Duration
	blocks map[uint64]struct{}
	// done are the successful calls' completions, for the series.
	done   []completion
	start  time.Time
	lastOK time.Time
	// prog, when set, counts outcomes for the progress bar.
	prog    *progress
	lastSub time.Time
}

// sent records one submission of an open or closed loop: the refusals it
// met on the way (resent), its lag after its due time in an open loop,
// and, if err is nil, that it was submitted at now.
func (t *tally) sent(prog *progress, refused refusals, open bool, due, sentAt, now time.Time, err error) {
	prog.retry.Add(int64(refused.rateLimited + refused.busy))
	t.mu.Lock()
	defer t.mu.Unlock()
	t.retries += refused.rateLimited + refused.busy
	t.rateLimited += refused.rateLimited
	t.busy += refused.busy
	if open {
		t.lags = append(t.lags, sentAt.Sub(due))
	}
	if err == nil {
		t.submitted++
		t.lastSub = now
	}
}

// dialWorkers connects to the workers of one shard (their enclaves
// verified against the chain by trusted.Dial), sharing one HTTP client
// that keeps a connection per sender: the default transport keeps two
// idle connections per host and would open and close one per call.
func dialWorkers(ctx context.Context, c *client.Client, urls []string, senders int, opts trusted.Options) ([]*trusted.Client, error) {
	opts.HTTPClient = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		MaxIdleConns: 2 * senders, MaxIdleConnsPerHost: senders + 2, IdleConnTimeout: 30 * time.Second}}
	tcs := make([]*trusted.Client, len(urls))
	for w, u := range urls {
		tc, err := trusted.Dial(ctx, u, c, opts)
		if err != nil {
			return nil, fmt.Errorf("worker %s: %w", u, err)
		}
		if w > 0 && tc.Shard() != tcs[0].Shard() {
			return nil, fmt.Errorf("%w: worker %s serves shard %x, worker %s shard %x", ErrConfig, u, tc.Shard(), urls[0], tcs[0].Shard())
		}
		tcs[w] = tc
	}
	return tcs, nil
}

func newTally() *tally {
	return &tally{failures: map[string]int{}, blocks: map[uint64]struct{}{}, byWorker: map[int][]time.Duration{}}
}

func (t *tally) fail(code string, n int) {
	if n <= 0 {
		return
	}
	t.mu.Lock()
	t.failures[code] += n
	t.mu.Unlock()
}

// failErr is fail for one call that failed with err, whose text is kept
// as the kind's example if it is the first.
func (t *tally) failErr(code string, err error) {
	t.fail(code, 1)
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.examples == nil {
		t.examples = map[string]string{}
	}
	if _, ok := t.examples[code]; !ok && err != nil {
		t.examples[code] = err.Error()
	}
}

func (t *tally) fill(r *Report, start time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	r.Submitted, r.Committed, r.Retries = t.submitted, t.committed, t.retries
	r.RateLimited, r.Busy = t.rateLimited, t.busy
	if len(t.lags) > 0 {
		l := percentiles(t.lags)
		r.SendLag = &l
		for _, d := range t.lags {
			if d > LateAfter {
				r.Late++
			}
		}
	}
	for _, n := range t.failures {
		r.Failed += n
	}
	if len(t.failures) > 0 {
		r.Failures = t.failures
		r.FailureExamples = t.examples
	}
	r.Latency = percentiles(t.latencies)
	for w, ds := range t.byWorker {
		if w < len(r.Workers) {
			r.Workers[w].Latency = percentiles(ds)
		}
	}
	r.Blocks = len(t.blocks)
	end0 := t.lastOK
	if end0.IsZero() {
		end0 = time.Now()
	}
	r.Series = series(t.done, end0.Sub(start))
	if !t.lastSub.IsZero() {
		r.SubmitSeconds = t.lastSub.Sub(start).Seconds()
	}
	end := t.lastOK
	if end.IsZero() {
		end = time.Now()
	}
	r.TotalSeconds = end.Sub(start).Seconds()
	if r.SubmitSeconds > 0 {
		r.SubmittedPerSec = float64(r.Submitted) / r.SubmitSeconds
	}
	if r.TotalSeconds > 0 {
		r.CommittedPerSec = float64(r.Committed) / r.TotalSeconds
	}
}

// share splits n calls among k senders as evenly as possible.
func share(n, k, i int) int {
	s := n / k
	if i < n%k {
		s++
	}
	return s
}

// LateAfter is how long after its due time an open loop's call may be
// sent before it counts as late.
const LateAfter = 10 * time.Millisecond

// limits states what bounded a Direct run besides the workers.
func (r *Report) limits(cfg Config, workers int) {
	if r.RateLimited > 0 {
		r.Limits = append(r.Limits, fmt.Sprintf("RATE LIMITED: the workers refused %d requests with 1030 (per-client rate limit); the figures measure that limit, not capacity (raise --rpc-rate/--rpc-burst on loopback)", r.RateLimited))
	}
	if r.Busy > 0 {
		r.Limits = append(r.Limits, fmt.Sprintf("BUSY: the workers refused %d requests with 1031 (call queue full); the figures measure that queue, not capacity", r.Busy))
	}
	if n := r.Failures["transport"]; n > 0 {
		r.Limits = append(r.Limits, fmt.Sprintf("%d calls failed in transport (connection caps such as --rpc-max-conns-per-ip close connections beyond them)", n))
	}
	switch r.Mode {
	case "closed":
		r.Limits = append(r.Limits, fmt.Sprintf("closed loop: at most %d calls in flight (one per sender), so the rate is %d divided by the latency", r.Concurrency, r.Concurrency))
	case "open":
		if r.Late > 0 {
			r.Limits = append(r.Limits, fmt.Sprintf("open loop fell behind: %d of %d calls were sent more than %s after they were due, all %d senders busy (latency counts the wait; more --concurrency offers the rate truly)",
				r.Late, r.N, LateAfter, r.Concurrency))
		}
	}
	if workers > 1 {
		r.Limits = append(r.Limits, fmt.Sprintf("%d workers, senders bound round robin", workers))
	}
	for _, w := range r.Workers {
		if l := w.Limits; l != nil {
			r.Limits = append(r.Limits, fmt.Sprintf("worker %s runs with --rpc-rate %g --rpc-burst %d --rpc-call-queue %d --rpc-calls-per-round %d --rpc-batch-linger %gms --rpc-getters %d --rpc-getter-queue %d --rpc-max-conns %d --rpc-max-conns-per-ip %d",
				w.URL, l.RateLimit, l.RateBurst, l.CallQueue, l.CallsPerRound, l.BatchLingerMs, l.Getters, l.GetterQueue, l.MaxConns, l.MaxConnsPerIP))
		}
	}
}

// workerLimits records each worker's limits from its health.
func (r *Report) workerLimits(ctx context.Context, tcs []*trusted.Client) {
	for w, tc := range tcs {
		if h, err := tc.Health(ctx); err == nil {
			r.Workers[w].Limits = h.Limits
		}
	}
}

// Refused reports whether a worker refused calls for want of capacity
// (rate limit or full queue): then the run measured a limit.
func (r *Report) Refused() bool { return r.RateLimited > 0 || r.Busy > 0 }
