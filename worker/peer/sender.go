package peer

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/integritee-go/integritee/chain/tx"
)

// Directory finds the worker of an enclave signer: the base URL of its
// worker (the registered worker URL), to which the Sender appends Path.
type Directory interface {
	WorkerURL(ctx context.Context, signer tx.Address) (string, error)
}

// Sender defaults (SenderOptions' zero values). The queue holds as many
// envelopes as a Raft leader keeps in flight to a follower.
const (
	DefaultQueueSize   = 256
	DefaultSendTimeout = 5 * time.Second
	DefaultCacheTTL    = time.Minute
	DefaultRetryMin    = 100 * time.Millisecond
	DefaultRetryMax    = 5 * time.Second
	DefaultIdleTimeout = 2 * time.Minute
)

// SenderOptions configure a Sender; zero values take the defaults.
type SenderOptions struct {
	// QueueSize bounds the envelopes waiting for one recipient; a full
	// queue drops its oldest. Default 256.
	QueueSize int
	// SendTimeout bounds one delivery (and one directory look-up);
	// default 5s.
	SendTimeout time.Duration
	// CacheTTL is how long a worker URL found in the directory is used
	// before it is looked up again; a failed delivery drops it sooner.
	// Default 1m.
	CacheTTL time.Duration
	// RetryMin and RetryMax bound the pause after a failed delivery,
	// which doubles with each failure in a row; defaults 100ms and 5s.
	RetryMin, RetryMax time.Duration
	// IdleTimeout ends the goroutine of a recipient that had nothing to
	// send for this long (a new envelope starts another); default 2m.
	IdleTimeout time.Duration
	// Client sends the requests; default a client of its own, whose
	// connections Close closes.
	Client *http.Client
	Logger *slog.Logger
}

func (o *SenderOptions) defaults() {
	if o.QueueSize <= 0 {
		o.QueueSize = DefaultQueueSize
	}
	defDur := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	defDur(&o.SendTimeout, DefaultSendTimeout)
	defDur(&o.CacheTTL, DefaultCacheTTL)
	defDur(&o.RetryMin, DefaultRetryMin)
	defDur(&o.RetryMax, DefaultRetryMax)
	o.RetryMax = max(o.RetryMax, o.RetryMin)
	defDur(&o.IdleTimeout, DefaultIdleTimeout)
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
}

// Stats counts envelopes since the Sender started.
type Stats struct {
	// Sent were delivered (answered 204).
	Sent uint64
	// Dropped were pushed out of a full queue, or left in a queue at
	// Close.
	Dropped uint64
	// Failed were tried and not delivered: the worker was not found, did
	// not answer or refused.
	Failed uint64
}

// Sender delivers envelopes to the workers of their recipients. Send
// never blocks: each recipient has a bounded queue and one goroutine that
// delivers it in order, one request at a time, over reused connections.
// A failed delivery is not retried (Raft retransmits what still matters);
// the goroutine pauses, with a growing backoff, and looks the worker up
// again before the next one, so a peer that is down costs one request per
// pause and its queue keeps only its newest envelopes. It is safe for
// concurrent use.
type Sender struct {
	dir    Directory
	opts   SenderOptions
	log    *slog.Logger
	client *http.Client
	own    *http.Transport // the default client's, closed by Close

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu     sync.Mutex // guards peers and closed; taken before a peer's mu
	peers  map[tx.Address]*peerQueue
	closed bool

	sent, dropped, failed atomic.Uint64
}

// peerQueue is a recipient's queue; its goroutine alone reads url and
// resolved.
type peerQueue struct {
	to   tx.Address
	wake chan struct{} // capacity 1: something was queued

	mu sync.Mutex
	q  [][]byte

	url      string // the endpoint, empty when it is to be looked up
	resolved time.Time
}

// NewSender returns a sender that finds workers in dir; Close stops it.
func NewSender(dir Directory, opts SenderOptions) *Sender {
	opts.defaults()
	s := &Sender{dir: dir, opts: opts, log: opts.Logger, client: opts.Client, peers: map[tx.Address]*peerQueue{}}
	if s.client == nil {
		t := http.DefaultTransport.(*http.Transport).Clone()
		// One goroutine per recipient sends one request at a time: a
		// connection or two per worker is what it reuses.
		t.MaxIdleConnsPerHost = 2
		t.MaxResponseHeaderBytes = 16 << 10
		s.own = t
		s.client = &http.Client{Transport: t}
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	return s
}

// Send queues data for the enclave to and returns at once. Send keeps
// data: the caller must not change it afterwards. After Close it drops
// data.
func (s *Sender) Send(to tx.Address, data []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		s.dropped.Add(1)
		return
	}
	p := s.peers[to]
	if p == nil {
		p = &peerQueue{to: to, wake: make(chan struct{}, 1)}
		s.peers[to] = p
		s.wg.Add(1)
		go s.run(p)
	}
	p.mu.Lock()
	if len(p.q) >= s.opts.QueueSize {
		p.q[0] = nil
		p.q = p.q[1:]
		s.dropped.Add(1)
	}
	p.q = append(p.q, data)
	p.mu.Unlock()
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// Stats returns the sender's counts.
func (s *Sender) Stats() Stats {
	return Stats{Sent: s.sent.Load(), Dropped: s.dropped.Load(), Failed: s.failed.Load()}
}

// Close stops the sender: requests under way are cancelled, queued
// envelopes dropped, and it returns once every goroutine has ended.
func (s *Sender) Close() error {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.cancel()
	s.wg.Wait()
	if s.own != nil {
		s.own.CloseIdleConnections()
	}
	return nil
}

func (p *peerQueue) pop() ([]byte, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.q) == 0 {
		return nil, false
	}
	d := p.q[0]
	p.q[0] = nil
	p.q = p.q[1:]
	return d, true
}

// retire removes p if its queue is still empty, under the sender's lock
// so that no Send can queue to it in between.
func (s *Sender) retire(p *peerQueue) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.q) > 0 {
		return false
	}
	delete(s.peers, p.to)
	return true
}

// run delivers p's queue until the sender closes or p stays idle.
func (s *Sender) run(p *peerQueue) {
	defer s.wg.Done()
	defer func() {
		p.mu.Lock()
		s.dropped.Add(uint64(len(p.q)))
		p.q = nil
		p.mu.Unlock()
	}()
	idle := time.NewTimer(s.opts.IdleTimeout)
	defer idle.Stop()
	failures := 0
	for {
		data, ok := p.pop()
		if !ok {
			idle.Reset(s.opts.IdleTimeout)
			select {
			case <-s.ctx.Done():
				return
			case <-p.wake:
			case <-idle.C:
				if s.retire(p) {
					return
				}
			}
			continue
		}
		err := s.deliver(p, data)
		if err == nil {
			s.sent.Add(1)
			failures = 0
			continue
		}
		if s.ctx.Err() != nil {
			s.dropped.Add(1)
			return
		}
		s.failed.Add(1)
		failures++
		pause := s.backoff(failures)
		s.log.Debug("peer envelope not delivered", "to", p.to, "err", err, "failures", failures, "pause", pause)
		t := time.NewTimer(pause)
		select {
		case <-s.ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// backoff is the pause after the n-th failure in a row.
func (s *Sender) backoff(n int) time.Duration {
	d := s.opts.RetryMin
	for i := 1; i < n && d < s.opts.RetryMax; i++ {
		d *= 2
	}
	return min(d, s.opts.RetryMax)
}

// errStatus is a refusal by the recipient's worker.
type errStatus struct {
	code int
	msg  string
}

func (e *errStatus) Error() string { return fmt.Sprintf("peer answered %d: %s", e.code, e.msg) }

// deliver sends one envelope to p's worker, looking it up if its URL is
// unknown or old, and forgets the URL when the worker may have moved.
func (s *Sender) deliver(p *peerQueue, data []byte) error {
	ctx, cancel := context.WithTimeout(s.ctx, s.opts.SendTimeout)
	defer cancel()
	if p.url == "" || time.Since(p.resolved) > s.opts.CacheTTL {
		base, err := s.dir.WorkerURL(ctx, p.to)
		if err != nil {
			return fmt.Errorf("worker of %s: %w", p.to, err)
		}
		u, err := endpoint(base)
		if err != nil {
			return fmt.Errorf("worker of %s: %w", p.to, err)
		}
		p.url, p.resolved = u, time.Now()
	}
	hdr := appendHeader(make([]byte, 0, frameHeader), p.to)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.url, io.MultiReader(bytes.NewReader(hdr), bytes.NewReader(data)))
	if err != nil {
		p.url = ""
		return fmt.Errorf("request to %s: %w", p.to, err)
	}
	req.ContentLength = int64(len(hdr) + len(data))
	req.Header.Set("Content-Type", "application/octet-stream")
	resp, err := s.client.Do(req)
	if err != nil {
		p.url = "" // down, or moved: look it up again
		return fmt.Errorf("deliver to %s: %w", p.to, err)
	}
	defer resp.Body.Close()
	// Read a short answer whole, so that the connection is reused.
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<10))
	if resp.StatusCode == http.StatusNoContent || resp.StatusCode == http.StatusOK {
		return nil
	}
	err = fmt.Errorf("deliver to %s at %s: %w", p.to, p.url, &errStatus{code: resp.StatusCode, msg: string(bytes.TrimSpace(msg))})
	switch resp.StatusCode {
	case http.StatusTooManyRequests, http.StatusServiceUnavailable, http.StatusBadRequest, http.StatusRequestEntityTooLarge:
		// The worker is there: keep its URL.
	default:
		p.url = ""
	}
	return err
}

// endpoint is the envelope URL of a worker's base URL; a registered
// ws(s):// URL is the same server's http(s)://.
func endpoint(base string) (string, error) {
	u, err := url.Parse(base)
	if err != nil {
		return "", fmt.Errorf("worker URL %q: %w", base, err)
	}
	switch u.Scheme {
	case "http", "https":
	case "ws":
		u.Scheme = "http"
	case "wss":
		u.Scheme = "https"
	default:
		return "", fmt.Errorf("worker URL %q: want an http(s) or ws(s) URL", base)
	}
	if u.Host == "" {
		return "", fmt.Errorf("worker URL %q: no host", base)
	}
	u.RawQuery, u.Fragment = "", ""
	return u.JoinPath(Path).String(), nil
}
