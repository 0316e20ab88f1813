package trusted_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"

	"github.com/integritee-go/integritee/client/trusted"
	"github.com/integritee-go/integritee/enclave/stf"
	"github.com/integritee-go/integritee/worker/rpc/api"
	"github.com/integritee-go/integritee/worker/rpc/rpctest"
)

// staleWorker is a worker whose host marks its getter answers stale while
// stale is set, as one whose read barrier fails does (a minority); the
// enclave's answers are the shared enclave's, unchanged.
type staleWorker struct {
	*rpctest.Enclave
	stale atomic.Bool
}

func (w *staleWorker) ExecuteGetter(ctx context.Context, req []byte) ([]byte, bool, error) {
	resp, _, err := w.Enclave.ExecuteGetter(ctx, req)
	return resp, w.stale.Load(), err
}

// TestNonceFailsOverFromStale: the first worker marks its answers stale;
// the client asks it StaleTries times for the nonce, then takes the nonce
// from the other worker's fresh answer and sends the call there. Read and
// Balance pass the mark on.
func TestNonceFailsOverFromStale(t *testing.T) {
	e := rpctest.NewEnclave(t, "stale failover")
	sw := &staleWorker{Enclave: e}
	sw.stale.Store(true)
	a, _, urlA := serveGated(t, sw)
	b, _, urlB := serveGated(t, e)
	ctx := context.Background()
	c, err := trusted.DialWorkers(ctx, []string{urlA, urlB}, registered(e.Identity()), fast())
	if err != nil {
		t.Fatal(err)
	}
	alice, bob := rpctest.Key("alice"), rpctest.Key("bob")
	fund(t, c, alice)
	if n, m := a.count(api.MethodGetNonce), b.count(api.MethodGetNonce); n != trusted.DefaultStaleTries || m != 1 {
		t.Fatalf("nonce getters: %d to the stale worker, %d to the other; want %d and 1", n, m, trusted.DefaultStaleTries)
	}
	if n := a.count(api.MethodSubmitTrustedCall); n != 0 || c.URL() != urlB {
		t.Fatalf("%d calls sent to the stale worker; in use %s", n, c.URL())
	}
	if r, err := c.Transfer(ctx, alice, rpctest.Address(bob), 10); err != nil || !r.Success {
		t.Fatalf("transfer %+v %v", r, err)
	}
	if got := balances(t, c, alice, bob); got[0] != 990 || got[1] != 10 {
		t.Fatalf("balances %v", got)
	}

	// The stale worker alone: Read and BalanceRead say stale, Balance and
	// Getter answer all the same, Nonce refuses.
	one, err := trusted.Dial(ctx, urlA, registered(e.Identity()), fast())
	if err != nil {
		t.Fatal(err)
	}
	addr := rpctest.Address(alice)
	r, err := one.Read(ctx, alice, stf.Getter{FreeBalance: &addr})
	if err != nil || !r.Stale || r.Worker != urlA {
		t.Fatalf("read %+v %v; want stale from %s", r, err, urlA)
	}
	if v, stale, err := one.BalanceRead(ctx, alice); err != nil || !stale || v != 990 {
		t.Fatalf("balance %d stale %v %v", v, stale, err)
	}
	if v, err := one.Balance(ctx, alice); err != nil || v != 990 {
		t.Fatalf("balance %d %v", v, err)
	}
	before := a.count(api.MethodGetNonce)
	if _, err := one.Nonce(ctx, alice); !errors.Is(err, trusted.ErrStaleAnswer) {
		t.Fatalf("nonce from a stale worker alone: %v, want ErrStaleAnswer", err)
	}
	if n := a.count(api.MethodGetNonce) - before; n != trusted.DefaultStaleTries {
		t.Fatalf("%d nonce getters, want %d", n, trusted.DefaultStaleTries)
	}
	// Fresh again: the same client reads fresh.
	sw.stale.Store(false)
	if r, err := one.Read(ctx, alice, stf.Getter{FreeBalance: &addr}); err != nil || r.Stale {
		t.Fatalf("read %+v %v; want fresh", r, err)
	}
	if n, err := one.Nonce(ctx, alice); err != nil || n != 1 {
		t.Fatalf("nonce %d %v; want 1", n, err)
	}
}

// TestNonceAllStale: every worker answers stale. Nonce asks each
// StaleTries times, once round, and fails with ErrStaleAnswer; with
// AllowStaleNonce it uses the stale nonce, and the call it signs runs.
func TestNonceAllStale(t *testing.T) {
	e := rpctest.NewEnclave(t, "all stale")
	_, _, urlF := serveGated(t, e)
	sa, sb := &staleWorker{Enclave: e}, &staleWorker{Enclave: e}
	a, _, urlA := serveGated(t, sa)
	b, _, urlB := serveGated(t, sb)
	ctx := context.Background()
	setup, err := trusted.Dial(ctx, urlF, registered(e.Identity()), fast())
	if err != nil {
		t.Fatal(err)
	}
	alice, bob := rpctest.Key("alice"), rpctest.Key("bob")
	fund(t, setup, alice)
	sa.stale.Store(true)
	sb.stale.Store(true)

	c, err := trusted.DialWorkers(ctx, []string{urlA, urlB}, registered(e.Identity()), fast())
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Transfer(ctx, alice, rpctest.Address(bob), 10)
	if !errors.Is(err, trusted.ErrStaleAnswer) {
		t.Fatalf("transfer with every answer stale: %v, want ErrStaleAnswer", err)
	}
	if n, m := a.count(api.MethodGetNonce), b.count(api.MethodGetNonce); n != trusted.DefaultStaleTries || m != trusted.DefaultStaleTries {
		t.Fatalf("nonce getters %d and %d, want %d each", n, m, trusted.DefaultStaleTries)
	}
	if n, m := a.count(api.MethodSubmitTrustedCall), b.count(api.MethodSubmitTrustedCall); n+m != 0 {
		t.Fatalf("%d calls sent with a stale nonce", n+m)
	}

	opts := fast()
	opts.AllowStaleNonce = true
	lax, err := trusted.DialWorkers(ctx, []string{urlA, urlB}, registered(e.Identity()), opts)
	if err != nil {
		t.Fatal(err)
	}
	if r, err := lax.Transfer(ctx, alice, rpctest.Address(bob), 10); err != nil || !r.Success {
		t.Fatalf("transfer allowing a stale nonce: %+v %v", r, err)
	}
	if got := balances(t, setup, alice, bob); got[0] != 990 || got[1] != 10 {
		t.Fatalf("balances %v", got)
	}
}

// TestStaleTriesOption: a bad StaleTries is refused; a set one is how
// often a stale worker is asked.
func TestStaleTriesOption(t *testing.T) {
	e := rpctest.NewEnclave(t, "stale tries")
	sw := &staleWorker{Enclave: e}
	sw.stale.Store(true)
	a, _, url := serveGated(t, sw)
	ctx := context.Background()
	opts := fast()
	opts.StaleTries = -1
	if _, err := trusted.Dial(ctx, url, registered(e.Identity()), opts); err == nil {
		t.Fatal("StaleTries -1 accepted")
	}
	opts.StaleTries = 3
	c, err := trusted.Dial(ctx, url, registered(e.Identity()), opts)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Nonce(ctx, rpctest.Key("alice")); !errors.Is(err, trusted.ErrStaleAnswer) {
		t.Fatalf("nonce: %v", err)
	}
	if n := a.count(api.MethodGetNonce); n != 3 {
		t.Fatalf("%d nonce getters, want 3", n)
	}
}
