package trusted

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/integritee-go/integritee/chain/teerex"
	"github.com/integritee-go/integritee/chain/tx"
	"github.com/integritee-go/integritee/enclave/stf"
	"github.com/integritee-go/integritee/worker/rpc/api"
)

// Failover defaults (see Options).
const (
	// DefaultFailoverRounds: with several workers, a request goes round
	// them at most this many times, pausing after each round in which all
	// failed: 0.5 s, 1 s, 2 s by default, longer than the 3 s the shard's
	// enclaves take to go on without a dead leader.
	DefaultFailoverRounds = 4
	// DefaultFailoverBackoff is the pause after the first failed round;
	// it doubles after each.
	DefaultFailoverBackoff = 500 * time.Millisecond
)

var (
	// ErrNoWorker means no worker served a request within the failover
	// rounds; the error also holds each worker's last error.
	ErrNoWorker = errors.New("trusted: no worker served the request")
	// ErrOutcomeUnknown means a worker took a call and its answer was
	// lost, and the client could not settle what became of the call (see
	// OutcomeError).
	ErrOutcomeUnknown = errors.New("trusted: the call's outcome is unknown")
	// ErrExecutedEarlier means a worker took a call and its answer was
	// lost, and a resubmission showed the call's nonce used on the
	// enclave's word: the call was executed there (see OutcomeError).
	ErrExecutedEarlier = errors.New("trusted: the call was executed by a worker whose answer was lost")
)

// reasonStaleNonce is protocol.ReasonStaleNonce, the reason of a call
// whose nonce is used (not imported: it would link the enclave's protocol
// into every client).
const reasonStaleNonce = "stale nonce"

// OutcomeError is the outcome of a call that a worker took without its
// answer reaching the client (the connection died after the call was
// sent, or the worker failed internally), after the client resubmitted the
// same ciphertext to the next worker. Executed (ErrExecutedEarlier) means
// the resubmission was refused as a repeat and the enclave's nonce getter
// shows the call's nonce used: the call ran once, at the lost worker, but
// whether it succeeded or failed in the STF and in which block cannot be
// fetched, as the worker API has no call status by hash. Otherwise
// (ErrOutcomeUnknown) nothing settled it: resubmitting the same
// ciphertext later is safe (its nonce makes a repeat harmless), and a
// sender nonce past the call's means it ran.
type OutcomeError struct {
	// Hash is the SHA-256 of the call's ciphertext.
	Hash [32]byte
	// Worker is the URL of the worker whose answer was lost.
	Worker string
	// Executed: the call's nonce is used (see above).
	Executed bool
	// Nonce is the call's nonce when the client knows it (SignedBy).
	Nonce uint64
	// Err is what the resubmission got.
	Err error
}

func (e *OutcomeError) Error() string {
	if e.Executed {
		return fmt.Sprintf("trusted: call %x was executed by worker %s, whose answer was lost: the enclave shows its nonce %d used; its result cannot be fetched (no call status by hash): %v", e.Hash, e.Worker, e.Nonce, e.Err)
	}
	return fmt.Sprintf("trusted: outcome of call %x unknown: worker %s took it and its answer was lost: %v; resubmitting the same ciphertext is safe, or check the sender's nonce: past the call's, it was executed", e.Hash, e.Worker, e.Err)
}

// Is matches ErrExecutedEarlier or ErrOutcomeUnknown.
func (e *OutcomeError) Is(target error) bool {
	return (e.Executed && target == ErrExecutedEarlier) || (!e.Executed && target == ErrOutcomeUnknown)
}

func (e *OutcomeError) Unwrap() error { return e.Err }

// CallOption is an option of Submit and Watch.
type CallOption func(*callOptions)

type callOptions struct {
	key   ed25519.PrivateKey
	nonce uint64
}

// SignedBy tells Submit and Watch the key and nonce the call was signed
// with (EncryptCall's): if a failover leaves the call's outcome unknown and
// the resubmission is refused as a repeat, the client asks the enclave for
// the key's nonce (a private getter) to tell whether the call ran
// (ErrExecutedEarlier). Without it such a call ends in ErrOutcomeUnknown.
func SignedBy(key ed25519.PrivateKey, nonce uint64) CallOption {
	return func(o *callOptions) { o.key, o.nonce = key, nonce }
}

func newCallOptions(opts []CallOption) callOptions {
	var o callOptions
	for _, f := range opts {
		f(&o)
	}
	return o
}

// endpoint is a worker's addresses.
type endpoint struct {
	url, wsURL string
}

// parseEndpoint accepts http(s):// and ws(s):// URLs.
func parseEndpoint(workerURL string) (endpoint, error) {
	u := strings.TrimSuffix(workerURL, "/")
	switch {
	case strings.HasPrefix(u, "ws://"):
		u = "http://" + strings.TrimPrefix(u, "ws://")
	case strings.HasPrefix(u, "wss://"):
		u = "https://" + strings.TrimPrefix(u, "wss://")
	case strings.HasPrefix(u, "http://"), strings.HasPrefix(u, "https://"):
	default:
		return endpoint{}, fmt.Errorf("trusted: worker URL %q: want http(s):// or ws(s)://", workerURL)
	}
	return endpoint{url: u, wsURL: "ws" + strings.TrimPrefix(u, "http")}, nil
}

// worker is a worker whose enclave was verified against the chain when
// the client last switched to it.
type worker struct {
	endpoint
	i       int
	signer  tx.Address
	enclave teerex.Enclave
}

// transportError is a request that got no JSON-RPC answer: a connection
// error, a timeout, an HTTP 5xx without one. sent is false only when
// nothing can have reached the worker (the connection was never made).
type transportError struct {
	method string
	err    error
	sent   bool
}

func (e *transportError) Error() string { return fmt.Sprintf("trusted: %s: %v", e.method, e.err) }
func (e *transportError) Unwrap() error { return e.err }

// dialFailed reports whether err is a failure to connect at all.
func dialFailed(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

// movesOn reports whether err means "this worker does not serve now", so
// that the request goes to the next worker.
func movesOn(err error) bool {
	var te *transportError
	if errors.As(err, &te) {
		return true
	}
	var se *staleError
	if errors.As(err, &se) {
		return !se.final
	}
	var re *api.Error
	if errors.As(err, &re) {
		switch re.Code {
		case api.CodeNotReady, api.CodeRateLimited, api.CodeBusy, api.CodeSeveralWorkers, api.CodeNoQuorum, api.CodeInternal, api.CodeRetired:
			return true
		}
	}
	return false
}

// outcomeLost reports whether a submission that failed with err may have
// been ordered all the same: its answer was lost, or the worker failed
// after taking it (CodeInternal). The codes that refuse a call (not
// ready, busy, no quorum...) say it was not ordered.
func outcomeLost(err error) bool {
	var te *transportError
	if errors.As(err, &te) {
		return te.sent
	}
	var re *api.Error
	return errors.As(err, &re) && re.Code == api.CodeInternal
}

// current returns the worker in use, verifying the next one first if the
// last was given up; i is the worker's index, also when it failed.
func (c *Client) current(ctx context.Context) (w *worker, i int, err error) {
	c.mu.Lock()
	w = c.cur
	c.mu.Unlock()
	if w != nil {
		return w, w.i, nil
	}
	// One verification at a time: concurrent requests that lost the same
	// worker wait for it instead of each verifying the next.
	c.pick.Lock()
	defer c.pick.Unlock()
	c.mu.Lock()
	w, i = c.cur, c.next
	c.mu.Unlock()
	if w != nil {
		return w, w.i, nil
	}
	w, err = c.verifyWorker(ctx, i)
	c.mu.Lock()
	defer c.mu.Unlock()
	if err != nil {
		c.next = (i + 1) % len(c.eps)
		return nil, i, err
	}
	c.cur, c.last = w, w
	return w, i, nil
}

// giveUp stops using w: the next request verifies and uses the next
// worker, round robin. A request that failed on a worker another one had
// already given up leaves the newer choice alone. A lone worker stays in
// use, verified once at Dial as ever: there is nothing to switch to, and
// verifying it again after every refusal (say, a rate limit) would load
// the node for nothing.
func (c *Client) giveUp(w *worker) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.eps) > 1 && c.cur == w {
		c.cur, c.next = nil, (w.i+1)%len(c.eps)
	}
}

// do runs attempt on the current worker and, while it fails with an error
// for which movesOn, on the next ones: at most FailoverRounds times round
// the workers, pausing after each round in which all failed. A worker
// that fails verification is skipped like one that does not answer. A
// single attempt's error is returned as it is; else ErrNoWorker with
// each worker's last error.
func (c *Client) do(ctx context.Context, what string, attempt func(context.Context, *worker) error) error {
	n := len(c.eps)
	max := c.rounds * n
	var (
		first error
		last  = make([]error, n)
		pause = c.backoff
	)
	for try := 1; ; try++ {
		// A worker that fails verification is skipped (current moved on).
		w, i, err := c.current(ctx)
		if err == nil {
			if err = attempt(ctx, w); err == nil {
				return nil
			}
			if !movesOn(err) {
				return err
			}
			c.giveUp(w)
		}
		if ctx.Err() != nil {
			return err
		}
		if first == nil {
			first = err
		}
		last[i] = fmt.Errorf("worker %s: %w", c.eps[i].url, err)
		if try == max {
			if try == 1 {
				return first
			}
			return &noWorkerError{what: what, attempts: try, errs: last}
		}
		if try%n == 0 {
			t := time.NewTimer(pause)
			select {
			case <-ctx.Done():
				t.Stop()
				return &noWorkerError{what: what, attempts: try, errs: append(last, ctx.Err())}
			case <-t.C:
			}
			pause *= 2
		}
	}
}

// noWorkerError is ErrNoWorker with the workers' last errors, on one line.
type noWorkerError struct {
	what     string
	attempts int
	errs     []error
}

func (e *noWorkerError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%v: %s: %d attempts", ErrNoWorker, e.what, e.attempts)
	for _, err := range e.errs {
		if err != nil {
			b.WriteString("; ")
			b.WriteString(err.Error())
		}
	}
	return b.String()
}

func (e *noWorkerError) Is(target error) bool { return target == ErrNoWorker }
func (e *noWorkerError) Unwrap() []error      { return e.errs }

// repeated reports whether a resubmission's answer (r or err) says the
// call's nonce was already used: an invalid call for a stale nonce, or,
// where the enclaves order a repeat and fail it, a failed result saying so.
func repeated(r *Result, err error) bool {
	var ie *InvalidCallError
	if errors.As(err, &ie) {
		return ie.Reason == reasonStaleNonce
	}
	return err == nil && r != nil && !r.Success &&
		(r.Error == reasonStaleNonce || strings.HasPrefix(r.Error, stf.ErrStaleNonce.Error()))
}

// settle is the outcome of a call whose answer was lost at worker lost and
// whose resubmission got r or err: one result however many workers took
// it. A proven result other than a repeat is the call's single execution
// (the nonce lets only one run); a refusal other than a repeat would have
// refused the first sending too. A repeat means the nonce is used, which
// only the enclave's nonce getter can confirm: the worker's refusal is
// the host's word, a getter's answer the enclave's.
func (c *Client) settle(ctx context.Context, hash [32]byte, lost string, o callOptions, r *Result, err error) (*Result, error) {
	oe := &OutcomeError{Hash: hash, Worker: lost, Nonce: o.nonce}
	if !repeated(r, err) {
		var ie *InvalidCallError
		if err == nil || errors.As(err, &ie) {
			return r, err
		}
		oe.Err = err
		return nil, oe
	}
	// Not wrapped: the call was not refused, and a caller that took it
	// for an *InvalidCallError might send it again with a new nonce.
	var refusal error
	if ie := (*InvalidCallError)(nil); errors.As(err, &ie) {
		refusal = fmt.Errorf("resubmitted, it was refused: %s", ie.Reason)
	} else {
		refusal = fmt.Errorf("resubmitted, it failed: %s", r.Error)
	}
	if o.key == nil {
		oe.Err = fmt.Errorf("%w (the sender's key and nonce were not given: SignedBy)", refusal)
		return nil, oe
	}
	next, nerr := c.Nonce(ctx, o.key)
	switch {
	case nerr != nil:
		oe.Err = fmt.Errorf("%w; reading the sender's nonce: %w", refusal, nerr)
	case next > o.nonce:
		oe.Executed, oe.Err = true, refusal
	default:
		oe.Err = fmt.Errorf("%w, yet the enclave's next nonce for the sender is %d, not past the call's %d", refusal, next, o.nonce)
	}
	return nil, oe
}
