// Package loadgen measures a local integritee network under load: public
// transfers through the node (Transfers) and direct trusted calls through a
// worker (Direct). It only ever talks to loopback addresses (CheckLoopback):
// it is a development tool and must never load another machine.
//
// Senders are dev-derived accounts (accounts.DevKey("Alice//load/...")),
// funded from Alice first, so a run needs a dev genesis. Each sender keeps
// its own nonce sequence and submits without waiting for earlier calls to
// commit, so the senders pipeline.
package loadgen

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"
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
	MaxConcurrency = 256
	DefaultTimeout = 2 * time.Minute
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
	// WorkerURL is the worker's JSON-RPC (Direct only).
	WorkerURL string
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
	if err := CheckLoopback(c.NodeURL); err != nil {
		return fmt.Errorf("node: %w", err)
	}
	if needWorker {
		if err := CheckLoopback(c.WorkerURL); err != nil {
			return fmt.Errorf("worker: %w", err)
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
}

// Report is the result of a run.
type Report struct {
	Kind        string `json:"kind"` // "transfers" or "direct"
	N           int    `json:"n"`
	Concurrency int    `json:"concurrency"`
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
	// Retries are rate-limited direct calls resent after a pause.
	Retries int `json:"retries,omitempty"`
	// SubmitSeconds is from the first submission to the last one
	// accepted; TotalSeconds until the last commit (or execution).
	SubmitSeconds   float64 `json:"submit_seconds"`
	TotalSeconds    float64 `json:"total_seconds"`
	SubmittedPerSec float64 `json:"submitted_per_sec"`
	CommittedPerSec float64 `json:"committed_per_sec"`
	Latency         Latency `json:"latency"`
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
	retries   int
	latencies []time.Duration
	blocks    map[uint64]struct{}
	lastOK    time.Time
	lastSub   time.Time
}

func newTally() *tally {
	return &tally{failures: map[string]int{}, blocks: map[uint64]struct{}{}}
}

func (t *tally) fail(code string, n int) {
	if n <= 0 {
		return
	}
	t.mu.Lock()
	t.failures[code] += n
	t.mu.Unlock()
}

func (t *tally) fill(r *Report, start time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	r.Submitted, r.Committed, r.Retries = t.submitted, t.committed, t.retries
	for _, n := range t.failures {
		r.Failed += n
	}
	if len(t.failures) > 0 {
		r.Failures = t.failures
	}
	r.Latency = percentiles(t.latencies)
	r.Blocks = len(t.blocks)
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
