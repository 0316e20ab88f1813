package trusted_test

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/integritee-go/integritee/client/trusted"
	"github.com/integritee-go/integritee/enclave/protocol"
	"github.com/integritee-go/integritee/enclave/stf"
	"github.com/integritee-go/integritee/worker/rpc"
	"github.com/integritee-go/integritee/worker/rpc/api"
	"github.com/integritee-go/integritee/worker/rpc/rpctest"
)

// A session sends calls one after the other over one WebSocket, from the
// source address it was given; the answers verify as Submit's would; a
// refusal is the call's error, also when the worker answers it without
// an ID.
func TestSession(t *testing.T) {
	e := rpctest.NewEnclave(t, "sdk session")
	srv := rpc.New(e, rpc.Options{MaxConnsPerIP: 1})
	url, _ := rpctest.Serve(t, srv)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := trusted.Dial(ctx, url, registered(e.Identity()), trusted.Options{Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	alice, bob := rpctest.Key("alice"), rpctest.Key("bob")
	if _, err := c.SubmitCall(ctx, rpctest.SudoKey(), stf.Call{SetBalance: &stf.SetBalance{Who: rpctest.Address(alice), Amount: 100}}); err != nil {
		t.Fatal(err)
	}
	s, err := c.OpenSession(ctx, trusted.SessionOptions{LocalIP: net.IPv4(127, 3, 0, 7)})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if host, _, err := net.SplitHostPort(s.LocalAddr()); err != nil || host != "127.3.0.7" {
		t.Fatalf("local address %q %v", s.LocalAddr(), err)
	}
	transfer := func(nonce uint64) []byte {
		ct, err := c.EncryptCall(alice, stf.Call{Transfer: &stf.Transfer{From: rpctest.Address(alice), To: rpctest.Address(bob), Amount: 1}}, nonce)
		if err != nil {
			t.Fatal(err)
		}
		return ct
	}
	// The answers are verified once all are in: each stays intact while
	// the session reads the next ones (it reuses its read buffer). After
	// the first, the session reserves room for two and a half answers
	// (they differ only in their proof): the next two are kept there, the
	// fourth, which finds the space used up, in memory of its own.
	var cts [][]byte
	var subs []*trusted.Submission
	for nonce := range uint64(4) {
		ct := transfer(nonce)
		sub, err := s.SubmitUnverified(ctx, ct)
		if err != nil {
			t.Fatalf("call %d: %v", nonce, err)
		}
		cts, subs = append(cts, ct), append(subs, sub)
		if nonce == 0 {
			s.Reserve(len(trusted.Answer(sub))*5/2 + 64)
		}
	}
	for i, want := range []bool{false, true, true, false} {
		if got := trusted.InReserve(s, subs[i]); got != want {
			t.Errorf("answer %d kept in the reserved space: %v, want %v", i, got, want)
		}
	}
	// A size below zero releases the space rather than panicking; the
	// answers kept in it stay valid (verified below).
	s.Reserve(-1)
	if trusted.InReserve(s, subs[1]) {
		t.Error("space still reserved after Reserve(-1)")
	}
	for i, sub := range subs {
		r, err := c.VerifySubmission(cts[i], sub)
		if err != nil || !r.Success {
			t.Fatalf("call %d: %+v %v", i, r, err)
		}
		// An answer verifies only for its own call.
		if _, err := c.VerifySubmission(transfer(uint64(i)+10), sub); !errors.Is(err, trusted.ErrUnproven) {
			t.Fatalf("answer verified for another call: %v", err)
		}
	}
	var ie *trusted.InvalidCallError
	if _, err := s.SubmitUnverified(ctx, transfer(0)); !errors.As(err, &ie) || ie.Reason != protocol.ReasonStaleNonce {
		t.Fatalf("replay: %v", err)
	}
	if b, err := c.Balance(ctx, bob); err != nil || b != 4 {
		t.Fatalf("bob holds %d %v", b, err)
	}

	// The worker admits one session per client IP: a second from the
	// same address is refused with its HTTP status, one from another
	// address is not.
	var re *trusted.SessionRefusedError
	if _, err := c.OpenSession(ctx, trusted.SessionOptions{LocalIP: net.IPv4(127, 3, 0, 7)}); !errors.As(err, &re) || re.Status != 429 || !errors.Is(err, trusted.ErrSessionRefused) {
		t.Fatalf("second session from one address: %v", err)
	}
	s2, err := c.OpenSession(ctx, trusted.SessionOptions{LocalIP: net.IPv4(127, 3, 0, 8)})
	if err != nil {
		t.Fatal(err)
	}
	s2.Close()
}

// A rate-limit refusal comes without a request ID: the session takes it
// as its call's answer rather than waiting for another.
func TestSessionRateLimited(t *testing.T) {
	ctx, c, s := openSession(t, "sdk session limited",
		rpc.Options{RateLimit: 1e-9, RateBurst: 4, Now: func() time.Time { return time.Unix(0, 0) }}, net.IPv4(127, 3, 1, 1))
	ct, err := c.EncryptCall(rpctest.Key("alice"), stf.Call{Transfer: &stf.Transfer{From: rpctest.Address(rpctest.Key("alice")), To: rpctest.Address(rpctest.Key("bob")), Amount: 1}}, 0)
	if err != nil {
		t.Fatal(err)
	}
	var re *api.Error
	for range 6 {
		_, err = s.SubmitUnverified(ctx, ct)
		if errors.As(err, &re) {
			break
		}
	}
	if re == nil || re.Code != api.CodeRateLimited {
		t.Fatalf("after the burst: %v, want rate limited", err)
	}
}

// A session the worker closed (its idle timeout) reports that it ended,
// before a call is sent on it; an open one does not.
func TestSessionEnded(t *testing.T) {
	ctx, c, s := openSession(t, "sdk session ended", rpc.Options{WSIdleTimeout: 50 * time.Millisecond}, net.IPv4(127, 3, 2, 1))
	if s.Ended() {
		t.Fatal("a new session ended")
	}
	for !s.Ended() {
		select {
		case <-ctx.Done():
			t.Fatal("the worker's idle timeout did not end the session")
		case <-time.After(10 * time.Millisecond):
		}
	}
	s2, err := c.OpenSession(ctx, trusted.SessionOptions{LocalIP: net.IPv4(127, 3, 2, 2)})
	if err != nil {
		t.Fatal(err)
	}
	s2.Close()
	if !s2.Ended() {
		t.Error("a closed session has not ended")
	}
}

// openSession serves a test enclave named name with opts, dials it and
// opens a session from ip; the context bounds the test.
func openSession(t *testing.T, name string, opts rpc.Options, ip net.IP) (context.Context, *trusted.Client, *trusted.Session) {
	t.Helper()
	e := rpctest.NewEnclave(t, name)
	url, _ := rpctest.Serve(t, rpc.New(e, opts))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	c, err := trusted.Dial(ctx, url, registered(e.Identity()), trusted.Options{Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	s, err := c.OpenSession(ctx, trusted.SessionOptions{LocalIP: ip})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return ctx, c, s
}

// Send hands each answer to its callback on the session's reader, which
// may send the next call from there; a second call while one is out is
// refused; answers verify as SubmitUnverified's do; a refusal is the
// call's error; once the session is closed, Send fails and no callback is
// left waiting.
func TestSessionSend(t *testing.T) {
	ctx, c, s := openSession(t, "sdk session send", rpc.Options{}, net.IPv4(127, 3, 3, 1))
	alice, bob := rpctest.Key("alice"), rpctest.Key("bob")
	if _, err := c.SubmitCall(ctx, rpctest.SudoKey(), stf.Call{SetBalance: &stf.SetBalance{Who: rpctest.Address(alice), Amount: 100}}); err != nil {
		t.Fatal(err)
	}
	transfer := func(nonce uint64) []byte {
		ct, err := c.EncryptCall(alice, stf.Call{Transfer: &stf.Transfer{From: rpctest.Address(alice), To: rpctest.Address(bob), Amount: 1}}, nonce)
		if err != nil {
			t.Fatal(err)
		}
		return ct
	}
	const calls = 5
	cts := make([][]byte, calls+1)
	for i := range cts {
		cts[i] = transfer(uint64(i))
	}
	cts[calls] = cts[0] // a replay: refused
	type answer struct {
		sub *trusted.Submission
		err error
	}
	answers := make(chan answer, len(cts))
	var next func(i int)
	next = func(i int) {
		if err := s.Send(cts[i], func(sub *trusted.Submission, err error) {
			answers <- answer{sub, err}
			if i+1 < len(cts) {
				next(i + 1) // from the reader, as a load generator's behind call
			}
			if i == 0 {
				// Call 1 is out, and its answer cannot come while the
				// reader is here.
				if err := s.Send(cts[2], func(*trusted.Submission, error) { t.Error("a second call out was taken") }); !errors.Is(err, trusted.ErrCallOut) {
					t.Errorf("second call out: %v, want ErrCallOut", err)
				}
			}
		}); err != nil {
			t.Errorf("send %d: %v", i, err)
		}
	}
	next(0)
	for i := range cts {
		var a answer
		select {
		case a = <-answers:
		case <-ctx.Done():
			t.Fatalf("answer %d: %v", i, ctx.Err())
		}
		if i == calls {
			var ie *trusted.InvalidCallError
			if !errors.As(a.err, &ie) || ie.Reason != protocol.ReasonStaleNonce {
				t.Fatalf("replay: %v", a.err)
			}
			continue
		}
		if a.err != nil {
			t.Fatalf("call %d: %v", i, a.err)
		}
		if r, err := c.VerifySubmission(cts[i], a.sub); err != nil || !r.Success {
			t.Fatalf("call %d: %+v %v", i, r, err)
		}
	}
	if b, err := c.Balance(ctx, bob); err != nil || b != calls {
		t.Fatalf("bob holds %d %v, want %d", b, err, calls)
	}
	// SubmitUnverified works on the session after Send's calls.
	if _, err := s.SubmitUnverified(ctx, transfer(calls)); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if err := s.Send(transfer(calls+1), func(*trusted.Submission, error) { t.Error("callback after close") }); err == nil {
		t.Fatal("Send on a closed session succeeded")
	}
}
