package trusted_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/integritee-go/integritee/chain/types"
	"github.com/integritee-go/integritee/client/trusted"
	"github.com/integritee-go/integritee/enclave/protocol"
	"github.com/integritee-go/integritee/enclave/stf"
	"github.com/integritee-go/integritee/worker/rpc"
	"github.com/integritee-go/integritee/worker/rpc/api"
	"github.com/integritee-go/integritee/worker/rpc/rpctest"
)

// The workers of these tests share one enclave (one rpctest.Enclave behind
// several rpc.Servers): one shard state, one order of calls, one signer,
// as the shard's enclaves will present once they order calls among
// themselves. Each worker sits behind a gate that can refuse, cut or count
// its requests.

// action is what a gate does with a request.
type action int

const (
	pass       action = iota
	cutBefore         // close the connection without passing the request on
	cutAfter          // pass it on, then close the connection unanswered
	badGateway        // answer HTTP 502 without passing it on, as a proxy would
)

// gate is a worker's HTTP front: hook decides for each JSON-RPC request
// (by method) whether to pass, cut or refuse it with an error code.
type gate struct {
	srv  *rpc.Server
	mu   sync.Mutex
	hook func(method string) (action, int)
	seen map[string]int
	ws   int // WebSocket sessions opened
}

func (g *gate) count(method string) int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.seen[method]
}

func (g *gate) sessions() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.ws
}

func (g *gate) set(hook func(method string) (action, int)) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.hook = hook
}

func (g *gate) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		g.mu.Lock()
		g.ws++
		g.mu.Unlock()
		g.srv.ServeHTTP(w, r)
		return
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	var req struct {
		ID     json.RawMessage `json:"id"`
		Method string          `json:"method"`
	}
	json.Unmarshal(body, &req)
	g.mu.Lock()
	if g.seen == nil {
		g.seen = map[string]int{}
	}
	g.seen[req.Method]++
	act, code := pass, 0
	if g.hook != nil {
		act, code = g.hook(req.Method)
	}
	g.mu.Unlock()
	switch {
	case code != 0:
		b, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": req.ID, "error": api.Error{Code: code, Message: "gate says no"}})
		w.Header().Set("Content-Type", "application/json")
		w.Write(b)
	case act == cutBefore:
		panic(http.ErrAbortHandler)
	case act == badGateway:
		http.Error(w, "bad gateway", http.StatusBadGateway)
	case act == cutAfter:
		r.Body = io.NopCloser(bytes.NewReader(body))
		g.srv.ServeHTTP(httptest.NewRecorder(), r)
		panic(http.ErrAbortHandler)
	default:
		r.Body = io.NopCloser(bytes.NewReader(body))
		g.srv.ServeHTTP(w, r)
	}
}

// serveGated serves backend b behind a gate on 127.0.0.1.
func serveGated(t *testing.T, b rpc.Backend) (*gate, *rpc.Server, string) {
	t.Helper()
	srv := rpc.New(b, rpc.Options{})
	g := &gate{srv: srv}
	ts := httptest.NewServer(g)
	t.Cleanup(func() {
		srv.Close()
		ts.Close()
	})
	return g, srv, ts.URL
}

// deadURL is the URL of a port on which nothing listens any more.
func deadURL(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u := "http://" + ln.Addr().String()
	ln.Close()
	return u
}

// fast fails over without pausing long: what these tests check does not
// depend on the pause.
func fast() trusted.Options {
	return trusted.Options{Now: func() time.Time { return now }, FailoverBackoff: time.Millisecond}
}

// fund gives alice 1000 with the sudo key.
func fund(t *testing.T, c *trusted.Client, alice ed25519.PrivateKey) {
	t.Helper()
	if _, err := c.SubmitCall(context.Background(), rpctest.SudoKey(), stf.Call{SetBalance: &stf.SetBalance{Who: rpctest.Address(alice), Amount: 1000}}); err != nil {
		t.Fatal(err)
	}
}

func transferCall(from, to ed25519.PrivateKey, amount uint64) stf.Call {
	return stf.Call{Transfer: &stf.Transfer{From: rpctest.Address(from), To: rpctest.Address(to), Amount: amount}}
}

// balances returns the free balances of keys.
func balances(t *testing.T, c *trusted.Client, keys ...ed25519.PrivateKey) []uint64 {
	t.Helper()
	var out []uint64
	for _, k := range keys {
		b, err := c.Balance(context.Background(), k)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b)
	}
	return out
}

func TestStaleNonceReason(t *testing.T) {
	if trusted.ReasonStaleNonce != protocol.ReasonStaleNonce {
		t.Fatalf("the client's copy %q of protocol.ReasonStaleNonce %q", trusted.ReasonStaleNonce, protocol.ReasonStaleNonce)
	}
}

// TestFailoverDeadFirstWorker: a first worker that does not answer is
// skipped at Dial and after.
func TestFailoverDeadFirstWorker(t *testing.T) {
	e := rpctest.NewEnclave(t, "failover dead")
	_, _, url := serveGated(t, e)
	ctx := context.Background()
	dead := deadURL(t)
	c, err := trusted.DialWorkers(ctx, []string{dead, url}, registered(e.Identity()), fast())
	if err != nil {
		t.Fatal(err)
	}
	if c.URL() != url || len(c.Workers()) != 2 {
		t.Fatalf("in use %s of %v, want %s", c.URL(), c.Workers(), url)
	}
	alice, bob := rpctest.Key("alice"), rpctest.Key("bob")
	fund(t, c, alice)
	if r, err := c.Transfer(ctx, alice, rpctest.Address(bob), 10); err != nil || !r.Success {
		t.Fatalf("transfer %+v %v", r, err)
	}
	if got := balances(t, c, alice, bob); got[0] != 990 || got[1] != 10 {
		t.Fatalf("balances %v", got)
	}
}

// TestFailoverNoQuorum: a worker that answers CodeNoQuorum (or another
// "not serving" code, or HTTP 5xx) gets the call once; the next worker
// executes it and stays in use.
func TestFailoverNoQuorum(t *testing.T) {
	for _, code := range []int{api.CodeNoQuorum, api.CodeSeveralWorkers, api.CodeNotReady, api.CodeBusy, api.CodeRateLimited, 502} {
		t.Run(fmt.Sprint(code), func(t *testing.T) {
			e := rpctest.NewEnclave(t, "failover quorum")
			a, _, urlA := serveGated(t, e)
			b, _, urlB := serveGated(t, e)
			ctx := context.Background()
			c, err := trusted.DialWorkers(ctx, []string{urlA, urlB}, registered(e.Identity()), fast())
			if err != nil {
				t.Fatal(err)
			}
			a.set(func(m string) (action, int) {
				switch {
				case m != api.MethodSubmitTrustedCall:
					return pass, 0
				case code == 502:
					return badGateway, 0
				}
				return pass, code
			})
			alice, bob := rpctest.Key("alice"), rpctest.Key("bob")
			fund(t, c, alice)
			if r, err := c.Transfer(ctx, alice, rpctest.Address(bob), 10); err != nil || !r.Success {
				t.Fatalf("transfer %+v %v", r, err)
			}
			if n, m := a.count(api.MethodSubmitTrustedCall), b.count(api.MethodSubmitTrustedCall); n != 1 || m != 2 {
				t.Fatalf("submissions: %d to the refusing worker, %d to the other; want 1 and 2", n, m)
			}
			if c.URL() != urlB {
				t.Fatalf("in use: %s", c.URL())
			}
			if got := balances(t, c, alice, bob); got[0] != 990 || got[1] != 10 {
				t.Fatalf("balances %v", got)
			}
		})
	}
}

// TestFailoverResubmits: a worker takes a call and the connection dies
// before its answer; the client resends the same ciphertext to the next
// worker and reports one outcome, and the call runs once.
func TestFailoverResubmits(t *testing.T) {
	alice, bob := rpctest.Key("alice"), rpctest.Key("bob")
	ctx := context.Background()
	setup := func(t *testing.T, act action) (*trusted.Client, *gate, *gate, string) {
		e := rpctest.NewEnclave(t, "failover resubmit")
		a, _, urlA := serveGated(t, e)
		b, _, urlB := serveGated(t, e)
		c, err := trusted.DialWorkers(ctx, []string{urlA, urlB}, registered(e.Identity()), fast())
		if err != nil {
			t.Fatal(err)
		}
		fund(t, c, alice)
		// The next submission to a is cut.
		once := false
		a.set(func(m string) (action, int) {
			if m == api.MethodSubmitTrustedCall && !once {
				once = true
				return act, 0
			}
			return pass, 0
		})
		return c, a, b, urlA
	}

	t.Run("not executed before the cut", func(t *testing.T) {
		c, _, b, _ := setup(t, cutBefore)
		r, err := c.Transfer(ctx, alice, rpctest.Address(bob), 10)
		if err != nil || !r.Success {
			t.Fatalf("transfer %+v %v", r, err)
		}
		if b.count(api.MethodSubmitTrustedCall) != 1 {
			t.Fatal("not resubmitted to the next worker")
		}
		if got := balances(t, c, alice, bob); got[0] != 990 || got[1] != 10 {
			t.Fatalf("balances %v", got)
		}
	})

	t.Run("executed before the cut", func(t *testing.T) {
		c, _, b, urlA := setup(t, cutAfter)
		_, err := c.Transfer(ctx, alice, rpctest.Address(bob), 10)
		var oe *trusted.OutcomeError
		if !errors.Is(err, trusted.ErrExecutedEarlier) || !errors.As(err, &oe) || oe.Worker != urlA || !oe.Executed || oe.Nonce != 0 {
			t.Fatalf("transfer: %v", err)
		}
		// Not a refusal: a caller must not send the transfer again.
		if errors.Is(err, trusted.ErrOutcomeUnknown) || errors.Is(err, trusted.ErrInvalidCall) {
			t.Fatalf("transfer: %v matches the wrong errors", err)
		}
		if b.count(api.MethodSubmitTrustedCall) != 1 {
			t.Fatal("not resubmitted to the next worker")
		}
		if got := balances(t, c, alice, bob); got[0] != 990 || got[1] != 10 {
			t.Fatalf("balances %v: the call ran other than once", got)
		}
		if n, err := c.Nonce(ctx, alice); err != nil || n != 1 {
			t.Fatalf("nonce %d %v", n, err)
		}
	})

	t.Run("executed before the cut, sender unknown", func(t *testing.T) {
		c, _, _, urlA := setup(t, cutAfter)
		ct, err := c.EncryptCall(alice, transferCall(alice, bob, 10), 0)
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.Submit(ctx, ct)
		var oe *trusted.OutcomeError
		if !errors.Is(err, trusted.ErrOutcomeUnknown) || !errors.As(err, &oe) || oe.Worker != urlA || oe.Hash != sha256.Sum256(ct) {
			t.Fatalf("submit: %v", err)
		}
		if !strings.Contains(err.Error(), "resubmitting the same ciphertext is safe") {
			t.Fatalf("submit: %v says not what to do", err)
		}
		if got := balances(t, c, alice, bob); got[0] != 990 || got[1] != 10 {
			t.Fatalf("balances %v", got)
		}
	})

	t.Run("every worker cut", func(t *testing.T) {
		c, a, b, urlA := setup(t, cutAfter)
		cut := func(act action) func(string) (action, int) {
			return func(m string) (action, int) {
				if m == api.MethodSubmitTrustedCall {
					return act, 0
				}
				return pass, 0
			}
		}
		a.set(cut(cutAfter))
		b.set(cut(cutBefore))
		_, err := c.Transfer(ctx, alice, rpctest.Address(bob), 10)
		var oe *trusted.OutcomeError
		if !errors.Is(err, trusted.ErrOutcomeUnknown) || !errors.Is(err, trusted.ErrNoWorker) || !errors.As(err, &oe) || oe.Worker != urlA {
			t.Fatalf("transfer: %v", err)
		}
	})
}

// TestFailoverTimeout: a worker that takes a call and never answers is
// left after the HTTP client's timeout; the next one executes the call,
// and the first one's copy, once it runs, is a harmless repeat.
func TestFailoverTimeout(t *testing.T) {
	e := rpctest.NewEnclave(t, "failover timeout")
	h := newHeld(e)
	_, _, urlA := serveGated(t, h)
	t.Cleanup(h.free)
	_, _, urlB := serveGated(t, e)
	ctx := context.Background()
	opts := fast()
	// Long enough for any answer the test waits for; a never finishes.
	opts.HTTPClient = &http.Client{Timeout: 2 * time.Second}
	c, err := trusted.DialWorkers(ctx, []string{urlA, urlB}, registered(e.Identity()), opts)
	if err != nil {
		t.Fatal(err)
	}
	alice, bob := rpctest.Key("alice"), rpctest.Key("bob")
	fund(t, c, alice)
	h.hold()
	r, err := c.Transfer(ctx, alice, rpctest.Address(bob), 10)
	if err != nil || !r.Success || c.URL() != urlB {
		t.Fatalf("transfer %+v %v at %s", r, err, c.URL())
	}
	h.free()
	<-h.done
	if got := balances(t, c, alice, bob); got[0] != 990 || got[1] != 10 {
		t.Fatalf("balances %v", got)
	}
}

// TestFailoverGivesUp: with every worker refusing, a request ends after
// FailoverRounds rounds with ErrNoWorker and each worker's error; a refusal
// of the call itself is not sent elsewhere.
func TestFailoverGivesUp(t *testing.T) {
	e := rpctest.NewEnclave(t, "failover down")
	a, _, urlA := serveGated(t, e)
	b, _, urlB := serveGated(t, e)
	ctx := context.Background()
	opts := fast()
	opts.FailoverRounds = 3
	c, err := trusted.DialWorkers(ctx, []string{urlA, urlB}, registered(e.Identity()), opts)
	if err != nil {
		t.Fatal(err)
	}
	alice := rpctest.Key("alice")
	fund(t, c, alice)
	ct, err := c.EncryptCall(alice, transferCall(alice, alice, 1), 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Submit(ctx, ct); err != nil {
		t.Fatal(err)
	}
	// A stale nonce is the call's fault: no other worker is asked.
	if _, err := c.Submit(ctx, ct); !errors.Is(err, trusted.ErrInvalidCall) {
		t.Fatal(err)
	}
	submits := func() int { return a.count(api.MethodSubmitTrustedCall) + b.count(api.MethodSubmitTrustedCall) }
	if submits() != 3 {
		t.Fatalf("%d submissions, want 3", submits())
	}
	busy := func(m string) (action, int) {
		if m == api.MethodSubmitTrustedCall {
			return pass, api.CodeBusy
		}
		return pass, 0
	}
	a.set(busy)
	b.set(busy)
	ct, err = c.EncryptCall(alice, transferCall(alice, alice, 1), 1)
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Submit(ctx, ct)
	var re *api.Error
	if !errors.Is(err, trusted.ErrNoWorker) || !errors.As(err, &re) || re.Code != api.CodeBusy ||
		!strings.Contains(err.Error(), urlA) || !strings.Contains(err.Error(), urlB) || strings.Contains(err.Error(), "\n") {
		t.Fatalf("submit: %v", err)
	}
	if n, m := a.count(api.MethodSubmitTrustedCall), b.count(api.MethodSubmitTrustedCall); n != 3+3 || m != 0+3 {
		t.Fatalf("submissions %d and %d, want 3 more each", n, m)
	}

	// No worker at all.
	_, err = trusted.DialWorkers(ctx, []string{deadURL(t), deadURL(t)}, registered(e.Identity()), opts)
	if !errors.Is(err, trusted.ErrNoWorker) || !strings.Contains(err.Error(), "6 attempts") {
		t.Fatalf("dial: %v", err)
	}
	// One worker: one attempt, its error as it is (Dial's behaviour).
	one, err := trusted.Dial(ctx, urlA, registered(e.Identity()), fast())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := one.Submit(ctx, ct); !errors.As(err, &re) || re.Code != api.CodeBusy || errors.Is(err, trusted.ErrNoWorker) {
		t.Fatalf("one worker: %v", err)
	}
	if n := a.count(api.MethodSubmitTrustedCall); n != 7 {
		t.Fatalf("one worker: %d submissions, want 7", n)
	}
	if _, err := trusted.DialWorkers(ctx, nil, registered(e.Identity()), opts); err == nil {
		t.Fatal("no URL accepted")
	}
}

// otherSigner presents the enclave's key and measurement under another
// signer: a worker whose enclave is not the registered one.
type otherSigner struct {
	*rpctest.Enclave
}

func (o otherSigner) ShieldingKey(ctx context.Context) (*rpc.Identity, error) {
	id, err := o.Enclave.ShieldingKey(ctx)
	if err != nil {
		return nil, err
	}
	c := *id
	c.Signer = rpctest.Key("unregistered").Public().(ed25519.PublicKey)
	return &c, nil
}

// TestFailoverVerifiesEachWorker: a worker the client fails over to is
// verified against the chain like the first; one whose enclave is not
// registered, or that presents another shielding key, is skipped and never
// gets a call.
func TestFailoverVerifiesEachWorker(t *testing.T) {
	e := rpctest.NewEnclave(t, "failover verify")
	reg := registered(e.Identity())
	a, _, urlA := serveGated(t, e)
	imp, _, urlImp := serveGated(t, otherSigner{e})
	other := rpctest.NewEnclave(t, "failover verify") // same shard and measurement, its own keys
	for s, en := range registered(other.Identity()).enclaves {
		reg.enclaves[s] = en // registered and active
	}
	oth, _, urlOther := serveGated(t, other)
	c3, _, url3 := serveGated(t, e)
	ctx := context.Background()

	c, err := trusted.DialWorkers(ctx, []string{urlA, urlImp, urlOther, url3}, reg, fast())
	if err != nil {
		t.Fatal(err)
	}
	a.set(func(string) (action, int) { return pass, api.CodeNotReady })
	alice := rpctest.Key("alice")
	fund(t, c, alice)
	if c.URL() != url3 {
		t.Fatalf("in use: %s", c.URL())
	}
	if imp.count(api.MethodGetShieldingKey) != 1 || oth.count(api.MethodGetShieldingKey) != 1 {
		t.Fatal("the skipped workers were not asked who they are")
	}
	for _, g := range []*gate{imp, oth} {
		if n := g.count(api.MethodSubmitTrustedCall) + g.count(api.MethodGetNonce); n != 0 {
			t.Fatalf("an unverified worker got %d requests", n)
		}
	}
	if c3.count(api.MethodSubmitTrustedCall) != 1 {
		t.Fatal("the verified worker did not get the call")
	}

	// Only unverifiable workers left: the client refuses them.
	_, err = trusted.DialWorkers(ctx, []string{deadURL(t), urlImp}, reg, fast())
	if !errors.Is(err, trusted.ErrNoWorker) || !errors.Is(err, trusted.ErrEnclaveNotActive) {
		t.Fatalf("dial: %v", err)
	}
	c, err = trusted.DialWorkers(ctx, []string{url3, urlOther}, reg, fast())
	if err != nil {
		t.Fatal(err)
	}
	c3.set(func(string) (action, int) { return pass, api.CodeNotReady })
	if _, err := c.Nonce(ctx, alice); !errors.Is(err, trusted.ErrNoWorker) || !errors.Is(err, trusted.ErrIdentityMismatch) {
		t.Fatalf("nonce: %v", err)
	}
	if n := oth.count(api.MethodGetNonce); n != 0 {
		t.Fatalf("the worker with another key got %d getters", n)
	}
}

// held can block the enclave's execution of calls until released.
type held struct {
	*rpctest.Enclave
	mu      sync.Mutex
	on      bool
	entered chan struct{} // a held batch is waiting
	release chan struct{}
	done    chan struct{} // a held batch was executed
	once    sync.Once
}

func newHeld(e *rpctest.Enclave) *held {
	return &held{Enclave: e, entered: make(chan struct{}, 16), release: make(chan struct{}), done: make(chan struct{}, 16)}
}

// hold holds the batches from now on, until free.
func (h *held) hold() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.on = true
}

// free lets every batch through; the test's cleanup must call it before
// the server closes (it waits for the batch in flight).
func (h *held) free() { h.once.Do(func() { close(h.release) }) }

func (h *held) SubmitCalls(ctx context.Context, calls [][]byte) ([]rpc.Outcome, error) {
	h.mu.Lock()
	on := h.on
	h.mu.Unlock()
	if !on {
		return h.Enclave.SubmitCalls(ctx, calls)
	}
	h.entered <- struct{}{}
	<-h.release
	defer func() { h.done <- struct{}{} }()
	// The request's context may be gone with its connection: the
	// enclave executes the batch all the same.
	return h.Enclave.SubmitCalls(context.Background(), calls)
}

// proxy is a TCP proxy to a worker whose connections can be cut.
type proxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	conns  []net.Conn
	wg     sync.WaitGroup
}

func newProxy(t *testing.T, targetURL string) *proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{ln: ln, target: strings.TrimPrefix(targetURL, "http://")}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			u, err := net.Dial("tcp", p.target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, u)
			p.mu.Unlock()
			p.wg.Add(2)
			go func() { defer p.wg.Done(); io.Copy(u, c); u.Close() }()
			go func() { defer p.wg.Done(); io.Copy(c, u); c.Close() }()
		}
	}()
	t.Cleanup(func() {
		p.stop()
		p.wg.Wait()
	})
	return p
}

func (p *proxy) URL() string { return "http://" + p.ln.Addr().String() }

// cut closes every connection through the proxy.
func (p *proxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

// stop cuts and takes no more connections.
func (p *proxy) stop() {
	p.ln.Close()
	p.cut()
}

// TestWatchFailover: a watch whose connection drops resubmits the call to
// the next worker and goes on with its statuses, or, once the call
// executed, follows its confirmation on chain; without another worker it
// ends with an error that says what to do.
func TestWatchFailover(t *testing.T) {
	alice, bob := rpctest.Key("alice"), rpctest.Key("bob")
	ctx := context.Background()
	type watchNet struct {
		c      *trusted.Client
		reg    *registry
		h      *held // a's enclave
		b      *gate
		p      *proxy // in front of a, the worker in use
		srvB   *rpc.Server
		ct     []byte
		signed trusted.CallOption
	}
	// setup starts a worker a (behind a proxy) and, withB, a worker b of
	// the same enclave, funds alice through a and encrypts her transfer.
	setup := func(t *testing.T, withB bool) *watchNet {
		e := rpctest.NewEnclave(t, "watch failover")
		n := &watchNet{reg: registered(e.Identity()), h: newHeld(e)}
		_, _, urlA := serveGated(t, n.h)
		t.Cleanup(n.h.free) // before the servers close
		n.p = newProxy(t, urlA)
		urls := []string{n.p.URL()}
		if withB {
			var urlB string
			n.b, n.srvB, urlB = serveGated(t, e)
			urls = append(urls, urlB)
		}
		c, err := trusted.DialWorkers(ctx, urls, n.reg, fast())
		if err != nil {
			t.Fatal(err)
		}
		n.c = c
		fund(t, c, alice)
		nonce, err := c.Nonce(ctx, alice)
		if err != nil {
			t.Fatal(err)
		}
		if c.URL() != n.p.URL() {
			t.Fatalf("in use: %s", c.URL())
		}
		if n.ct, err = c.EncryptCall(alice, transferCall(alice, bob, 10), nonce); err != nil {
			t.Fatal(err)
		}
		n.signed = trusted.SignedBy(alice, nonce)
		return n
	}
	next := func(t *testing.T, w *trusted.Watch, want string) *trusted.Status {
		t.Helper()
		st, err := w.Next(ctx)
		if err != nil || st.Status != want {
			t.Fatalf("status %+v %v, want %s", st, err, want)
		}
		return st
	}

	t.Run("dropped before executing", func(t *testing.T) {
		n := setup(t, true)
		n.h.hold()
		w, err := n.c.Watch(ctx, n.ct, n.signed)
		if err != nil {
			t.Fatal(err)
		}
		defer w.Close()
		next(t, w, api.StatusSubmitted)
		<-n.h.entered // a has the call, and keeps it
		n.p.cut()
		st := next(t, w, api.StatusExecuted) // at b
		if !st.Result.Success || n.b.sessions() != 1 {
			t.Fatalf("executed %+v after %d sessions at b", st.Result, n.b.sessions())
		}
		n.reg.blocks = map[uint64]types.Hash{st.Result.Block.Number: st.Result.HeaderHash}
		n.srvB.Confirmed(st.Result.Block.Number)
		next(t, w, api.StatusConfirmed)
		n.h.free() // a's copy now runs: a repeat, refused
		<-n.h.done
		if got := balances(t, n.c, alice, bob); got[0] != 990 || got[1] != 10 {
			t.Fatalf("balances %v", got)
		}
	})

	t.Run("dropped after a executed it unseen", func(t *testing.T) {
		n := setup(t, true)
		n.h.hold()
		w, err := n.c.Watch(ctx, n.ct, n.signed)
		if err != nil {
			t.Fatal(err)
		}
		defer w.Close()
		next(t, w, api.StatusSubmitted)
		<-n.h.entered
		n.p.cut()
		n.h.free()
		<-n.h.done // executed at a; its statuses went nowhere
		_, err = w.Next(ctx)
		if !errors.Is(err, trusted.ErrExecutedEarlier) {
			t.Fatalf("next: %v", err)
		}
		if _, err := w.Next(ctx); err == nil || errors.Is(err, trusted.ErrExecutedEarlier) {
			t.Fatalf("next after the end: %v", err)
		}
		if got := balances(t, n.c, alice, bob); got[0] != 990 || got[1] != 10 {
			t.Fatalf("balances %v", got)
		}
	})

	t.Run("dropped after executed", func(t *testing.T) {
		n := setup(t, true)
		w, err := n.c.Watch(ctx, n.ct, n.signed)
		if err != nil {
			t.Fatal(err)
		}
		defer w.Close()
		next(t, w, api.StatusSubmitted)
		st := next(t, w, api.StatusExecuted)
		n.reg.blocks = map[uint64]types.Hash{st.Result.Block.Number: st.Result.HeaderHash}
		n.p.cut()
		conf := next(t, w, api.StatusConfirmed) // the chain's word
		if conf.Result.HeaderHash != st.Result.HeaderHash || n.b.sessions() != 0 {
			t.Fatalf("confirmed %+v, %d sessions at b", conf.Result, n.b.sessions())
		}
	})

	t.Run("no other worker", func(t *testing.T) {
		n := setup(t, false)
		n.h.hold()
		w, err := n.c.Watch(ctx, n.ct, n.signed)
		if err != nil {
			t.Fatal(err)
		}
		defer w.Close()
		next(t, w, api.StatusSubmitted)
		<-n.h.entered
		n.p.stop()
		_, err = w.Next(ctx)
		var oe *trusted.OutcomeError
		if !errors.Is(err, trusted.ErrOutcomeUnknown) || !errors.As(err, &oe) || oe.Worker != n.p.URL() ||
			!strings.Contains(err.Error(), "went away") || !strings.Contains(err.Error(), "check the sender's nonce") {
			t.Fatalf("next: %v", err)
		}
	})
}

// TestFailoverConcurrent: requests in flight on several goroutines fail
// over together (run with -race).
func TestFailoverConcurrent(t *testing.T) {
	e := rpctest.NewEnclave(t, "failover concurrent")
	a, _, urlA := serveGated(t, e)
	_, _, urlB := serveGated(t, e)
	ctx := context.Background()
	c, err := trusted.DialWorkers(ctx, []string{urlA, urlB}, registered(e.Identity()), fast())
	if err != nil {
		t.Fatal(err)
	}
	a.set(func(string) (action, int) { return pass, api.CodeNoQuorum })
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for i := range 8 {
		wg.Go(func() {
			if _, err := c.Balance(ctx, rpctest.Key(fmt.Sprint("user ", i))); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if c.URL() != urlB {
		t.Fatalf("in use: %s", c.URL())
	}
}
