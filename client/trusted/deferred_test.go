package trusted_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/integritee-go/integritee/chain/tx"
	"github.com/integritee-go/integritee/client/trusted"
	"github.com/integritee-go/integritee/enclave/protocol"
	"github.com/integritee-go/integritee/enclave/stf"
	"github.com/integritee-go/integritee/worker/rpc"
	"github.com/integritee-go/integritee/worker/rpc/rpctest"
)

// TestDeferredVerification: SubmitUnverified and VerifySubmission give
// Submit's result in two steps, and an answer the worker altered fails
// the later verification as it fails Submit.
func TestDeferredVerification(t *testing.T) {
	ctx := context.Background()
	e, _, url := start(t, "sdk deferred")
	c, err := trusted.Dial(ctx, url, registered(e.Identity()), trusted.Options{Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	alice, bob := rpctest.Key("alice"), rpctest.Key("bob")
	if _, err := c.SubmitCall(ctx, rpctest.SudoKey(), stf.Call{SetBalance: &stf.SetBalance{Who: rpctest.Address(alice), Amount: 100}}); err != nil {
		t.Fatal(err)
	}
	ct, err := c.EncryptCall(alice, stf.Call{Transfer: &stf.Transfer{From: rpctest.Address(alice), To: rpctest.Address(bob), Amount: 7}}, 0)
	if err != nil {
		t.Fatal(err)
	}
	sub, err := c.SubmitUnverified(ctx, ct)
	if err != nil {
		t.Fatal(err)
	}
	r, err := c.VerifySubmission(ct, sub)
	if err != nil || !r.Success {
		t.Fatalf("verified %+v (%v)", r, err)
	}
	// The answer to another call does not verify for this one.
	ct2, err := c.EncryptCall(alice, stf.Call{Transfer: &stf.Transfer{From: rpctest.Address(alice), To: rpctest.Address(bob), Amount: 7}}, 1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.VerifySubmission(ct2, sub); !errors.Is(err, trusted.ErrUnproven) {
		t.Errorf("another call's answer: %v, want ErrUnproven", err)
	}
	// A replayed call is refused at once, as by Submit.
	if _, err := c.SubmitUnverified(ctx, ct); !errors.As(err, new(*trusted.InvalidCallError)) {
		t.Errorf("replay: %v, want an InvalidCallError", err)
	}
	// A prepared getter answers the balance.
	p, err := c.PrepareGetter(bob, stf.Getter{FreeBalance: new(rpctest.Address(bob))})
	if err != nil {
		t.Fatal(err)
	}
	ans, err := c.SendGetter(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	v, err := p.Open(ans)
	if err != nil {
		t.Fatal(err)
	}
	if b, err := trusted.DecodeUint(v); err != nil || b != 7 {
		t.Errorf("bob's balance %d, %v; want 7", b, err)
	}
	ans[len(ans)-1] ^= 1
	if _, err := p.Open(ans); err == nil {
		t.Error("a tampered getter answer opened")
	}
}

// TestDeferredVerificationCatchesLies: a worker that alters its answer is
// caught by VerifySubmission.
func TestDeferredVerificationCatchesLies(t *testing.T) {
	ctx := context.Background()
	e := rpctest.NewEnclave(t, "sdk deferred lies")
	srv := rpc.New(&lying{Enclave: e, alter: func(o *rpc.Outcome) { o.Status = protocol.CallExecuted }}, rpc.Options{})
	url, _ := rpctest.Serve(t, srv)
	c, err := trusted.Dial(ctx, url, registered(e.Identity()), trusted.Options{Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	// A transfer without funds fails in the STF; the worker says success.
	key := rpctest.Key("nobody")
	ct, err := c.EncryptCall(key, stf.Call{Transfer: &stf.Transfer{From: rpctest.Address(key), To: tx.Address{1}, Amount: 5}}, 0)
	if err != nil {
		t.Fatal(err)
	}
	sub, err := c.SubmitUnverified(ctx, ct)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.VerifySubmission(ct, sub); !errors.Is(err, trusted.ErrUnproven) {
		t.Fatalf("altered answer verified: %v", err)
	}
}
