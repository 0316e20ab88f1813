package trusted_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/integritee-go/integritee/client/trusted"
	"github.com/integritee-go/integritee/enclave/protocol"
	"github.com/integritee-go/integritee/enclave/shielding"
	"github.com/integritee-go/integritee/enclave/stf"
	"github.com/integritee-go/integritee/worker/rpc/rpctest"
)

// Calls on a channel verify as one-shot calls do; a data ciphertext the
// enclave cannot place (here: one sent before the channel was opened) is
// refused with ErrUnknownChannel, applied nowhere, and SubmitCall sends
// the call again, opened, so it applies exactly once.
func TestChannelCalls(t *testing.T) {
	c, ctx := dialNew(t, "sdk channel")
	alice, bob := rpctest.Key("alice"), rpctest.Key("bob")
	if _, err := c.SubmitCall(ctx, rpctest.SudoKey(), stf.Call{SetBalance: &stf.SetBalance{Who: rpctest.Address(alice), Amount: 100}}); err != nil {
		t.Fatal(err)
	}
	transfer := stf.Call{Transfer: &stf.Transfer{From: rpctest.Address(alice), To: rpctest.Address(bob), Amount: 1}}

	ch, err := c.OpenChannel()
	if err != nil {
		t.Fatal(err)
	}
	// A data ciphertext first: refused, nothing applied.
	early, err := ch.EncryptCallAs(alice, transfer, 0, false)
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Submit(ctx, early)
	if !errors.Is(err, trusted.ErrUnknownChannel) || !errors.Is(err, trusted.ErrInvalidCall) {
		t.Fatalf("data before open: %v, want ErrUnknownChannel", err)
	}
	if n, err := c.Nonce(ctx, alice); err != nil || n != 0 {
		t.Fatalf("nonce %d %v after a refused call, want 0", n, err)
	}

	// As if the channel had been opened at an enclave that forgot it.
	ch.Opened(nil)
	for i := range 3 {
		r, err := ch.SubmitCall(ctx, alice, transfer)
		if err != nil || !r.Success {
			t.Fatalf("call %d: %+v %v", i, r, err)
		}
	}
	if b, err := c.Balance(ctx, bob); err != nil || b != 3 {
		t.Fatalf("bob %d %v, want 3", b, err)
	}
	// The channel is open now: the next call is a data ciphertext.
	ct, err := ch.EncryptCall(alice, transfer, 3)
	if err != nil {
		t.Fatal(err)
	}
	if p, err := shielding.ParseChannel(ct); err != nil || p.Open {
		t.Fatalf("after answers the channel still seals open ciphertexts (%v)", err)
	}
	if r, err := c.Submit(ctx, ct); err != nil || !r.Success {
		t.Fatalf("data call: %+v %v", r, err)
	}
}

// dialNew starts a worker on a new enclave and dials it.
func dialNew(t *testing.T, name string) (*trusted.Client, context.Context) {
	t.Helper()
	e, _, url := start(t, name)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	t.Cleanup(cancel)
	c, err := trusted.Dial(ctx, url, registered(e.Identity()), trusted.Options{Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	return c, ctx
}

func TestChannelReasonsMatchTheEnclave(t *testing.T) {
	if trusted.ReasonUnknownChannel != protocol.ReasonUnknownChannel || trusted.ReasonUndecryptable != protocol.ReasonUndecryptable {
		t.Fatalf("the client's copies %q, %q of the enclave's reasons %q, %q", trusted.ReasonUnknownChannel, trusted.ReasonUndecryptable,
			protocol.ReasonUnknownChannel, protocol.ReasonUndecryptable)
	}
	if trusted.ReasonBadSignature != protocol.ReasonBadSignature || trusted.ReasonFutureNonce != protocol.ReasonFutureNonce {
		t.Fatalf("the client's copies %q, %q of the enclave's reasons %q, %q", trusted.ReasonBadSignature, trusted.ReasonFutureNonce,
			protocol.ReasonBadSignature, protocol.ReasonFutureNonce)
	}
}

// Only an answer that needs the call decrypted marks the channel opened: a
// refusal of the ciphertext itself (too large, malformed, undecryptable)
// leaves the next call an open ciphertext.
func TestChannelOpenedBy(t *testing.T) {
	c, _ := dialNew(t, "sdk channel opened")
	for _, tc := range []struct {
		answer error
		opened bool
	}{
		{nil, true},
		{&trusted.InvalidCallError{Reason: protocol.ReasonStaleNonce}, true},
		{&trusted.InvalidCallError{Reason: protocol.ReasonBadSignature}, true},
		{&trusted.InvalidCallError{Reason: protocol.ReasonFutureNonce}, true},
		{&trusted.InvalidCallError{Reason: protocol.ReasonTooLarge}, false},
		{&trusted.InvalidCallError{Reason: protocol.ReasonMalformed}, false},
		{&trusted.InvalidCallError{Reason: protocol.ReasonUndecryptable}, false},
		{errors.New("connection reset"), false},
	} {
		ch, err := c.OpenChannel()
		if err != nil {
			t.Fatal(err)
		}
		ch.Opened(tc.answer)
		ct, err := ch.EncryptCall(rpctest.Key("alice"), stf.Call{Transfer: &stf.Transfer{To: rpctest.Address(rpctest.Key("bob")), Amount: 1}}, 0)
		if err != nil {
			t.Fatal(err)
		}
		p, err := shielding.ParseChannel(ct)
		if err != nil {
			t.Fatal(err)
		}
		if got := !p.Open; got != tc.opened {
			t.Errorf("after %v: opened %v, want %v", tc.answer, got, tc.opened)
		}
	}
}
