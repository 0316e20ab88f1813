package enclave_test

import (
	"bytes"
	"context"
	"sync"
	"testing"
	"time"

	"github.com/integritee-go/integritee/chain/codec"
	"github.com/integritee-go/integritee/enclave"
	"github.com/integritee-go/integritee/enclave/protocol"
	"github.com/integritee-go/integritee/enclave/shielding"
	"github.com/integritee-go/integritee/enclave/stf"
)

// waitPrepared waits until n calls are prepared ahead in d's enclave.
func waitPrepared(t *testing.T, d *direct, n int) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for enclave.PreparedAhead(d.h.enc) != n {
		if time.Now().After(deadline) {
			t.Fatalf("%d calls prepared ahead, want %d", enclave.PreparedAhead(d.h.enc), n)
		}
		time.Sleep(time.Millisecond)
	}
}

func notify(t *testing.T, d *direct, calls ...[]byte) {
	t.Helper()
	if err := d.h.c.Notify(&protocol.PrepareCalls{Calls: calls}); err != nil {
		t.Fatal(err)
	}
}

func wantResults(t *testing.T, rep *protocol.SubmitCallsReply, want ...protocol.CallResult) {
	t.Helper()
	if len(rep.Results) != len(want) {
		t.Fatalf("%d results, want %d", len(rep.Results), len(want))
	}
	for i, w := range want {
		if got := rep.Results[i]; got.Status != w.Status || got.Reason != w.Reason {
			t.Errorf("call %d: %v %q, want %v %q", i, got.Status, got.Reason, w.Status, w.Reason)
		}
	}
}

var executed = protocol.CallResult{Status: protocol.CallExecuted}

// TestPreparedAhead: calls the host announced (PrepareCalls) are
// prepared beside the batch before them and taken by the batch that
// brings them, with the outcome they get when prepared with it.
func TestPreparedAhead(t *testing.T) {
	d := newDirect(t, "prepared ahead")
	// Nothing is prepared before the first batch has set the rules.
	early := d.transfer(d.aliceI, d.bobI, 1, 0)
	notify(t, d, early)
	wantResults(t, d.submit(early), executed)
	if hits, _, _ := enclave.Ahead(d.h.enc); hits != 0 {
		t.Fatalf("%d calls taken prepared before any batch set the rules", hits)
	}
	const n = 40
	calls := make([][]byte, n)
	for i := range calls {
		calls[i] = d.transfer(d.aliceI, d.bobI, 1, uint64(i+1))
	}
	notify(t, d, calls[:n/2]...)
	notify(t, d, calls[n/2:]...)
	waitPrepared(t, d, n)
	before, misses0, _ := enclave.Ahead(d.h.enc)
	decrypted := enclave.Decryptions(d.h.enc)
	rep := d.submit(calls...)
	want := make([]protocol.CallResult, n)
	for i := range want {
		want[i] = executed
	}
	wantResults(t, rep, want...)
	hits, misses, _ := enclave.Ahead(d.h.enc)
	if hits-before != n || misses != misses0 {
		t.Fatalf("batch took %d calls prepared and prepared %d itself, want %d and 0", hits-before, misses-misses0, n)
	}
	if got := enclave.Decryptions(d.h.enc) - decrypted; got != 0 {
		t.Fatalf("the batch decrypted %d calls again", got)
	}
	d.checkBlock(rep, rep.Block.Header.Number, calls)
	if enclave.PreparedAhead(d.h.enc) != 0 {
		t.Fatal("calls taken are still kept")
	}
	// A notice of calls already taken prepares nothing: a replay of them
	// is prepared with its batch and refused there.
	notify(t, d, calls[:3]...)
	time.Sleep(10 * time.Millisecond)
	if got := enclave.PreparedAhead(d.h.enc); got != 0 {
		t.Fatalf("%d calls taken were prepared again", got)
	}
	wantResults(t, d.submit(calls[0]), invalid(protocol.ReasonStaleNonce))
}

// TestPreparedAheadForged: what a host puts in notices changes no
// outcome. Forged, garbled and oversized ciphertexts are not kept (their
// batch prepares them itself and refuses them as it would), oversized
// notices are dropped, and a call prepared under other rules (here
// targets that name another shard) is prepared again under the batch's.
func TestPreparedAheadForged(t *testing.T) {
	d := newDirect(t, "prepared ahead forged")
	wantResults(t, d.submit(d.transfer(d.aliceI, d.bobI, 1, 0)), executed)

	valid := d.transfer(d.aliceI, d.bobI, 1, 1)
	flipped := bytes.Clone(valid)
	flipped[len(flipped)/2] ^= 1
	forged, err := stf.SignCall(key("eve"), mustEncode(t, stf.Call{Transfer: &stf.Transfer{From: addr(d.aliceI), To: addr(key("eve")), Amount: 1}}), 2, d.target())
	if err != nil {
		t.Fatal(err)
	}
	var sc stf.SignedCall
	if err := codec.Unmarshal(forged, &sc); err != nil {
		t.Fatal(err)
	}
	sc.Signer = addr(d.aliceI)
	forgedRaw, _ := codec.Marshal(sc)
	forgedCT, err := shielding.Encrypt(d.pub, shielding.InfoTrustedCall, forgedRaw)
	if err != nil {
		t.Fatal(err)
	}
	garbage := bytes.Repeat([]byte{7}, 1300)
	tooLarge := make([]byte, protocol.MaxCallCiphertext+1)
	notify(t, d, forgedCT, valid, garbage, flipped, tooLarge)
	_, _, dropped0 := enclave.Ahead(d.h.enc)
	notify(t, d, make([][]byte, protocol.MaxSubmitCalls+1)...)
	waitPrepared(t, d, 1)
	if _, _, dropped := enclave.Ahead(d.h.enc); dropped-dropped0 != protocol.MaxSubmitCalls+1 {
		t.Fatalf("dropped %d calls of a notice over the limit, want %d", dropped-dropped0, protocol.MaxSubmitCalls+1)
	}
	hits0, _, _ := enclave.Ahead(d.h.enc)
	wantResults(t, d.submit(forgedCT, valid, garbage, flipped, tooLarge),
		invalid(protocol.ReasonBadSignature), executed, invalid(protocol.ReasonUndecryptable),
		invalid(protocol.ReasonUndecryptable), invalid(protocol.ReasonTooLarge))
	if hits, _, _ := enclave.Ahead(d.h.enc); hits-hits0 != 1 {
		t.Fatalf("%d calls taken prepared, want 1 (the valid one)", hits-hits0)
	}

	// A call signed for another shard is valid under rules that name it,
	// and prepared ahead under them; the batch's rules do not, so the
	// batch refuses it (taken as prepared, it would be applied: its
	// measurement is the one serving).
	other := d.target()
	other.Shard[0] ^= 1
	otherCT, err := shielding.Encrypt(d.pub, shielding.InfoTrustedCall,
		trustedCall(t, d.aliceI, stf.Call{Transfer: &stf.Transfer{From: addr(d.aliceI), To: addr(d.bobI), Amount: 1}}, 2, other))
	if err != nil {
		t.Fatal(err)
	}
	enclave.PublishTargets(d.h.enc, []stf.Target{other})
	notify(t, d, otherCT)
	waitPrepared(t, d, 1)
	wantResults(t, d.submit(otherCT), invalid(protocol.ReasonBadSignature))
}

// TestPreparedAheadConcurrent: notices and the batches that bring the
// same calls race (run with -race); every call gets its outcome once,
// taken prepared or prepared with its batch.
func TestPreparedAheadConcurrent(t *testing.T) {
	d := newDirect(t, "prepared ahead concurrent")
	wantResults(t, d.submit(d.transfer(d.aliceI, d.bobI, 1, 0)), executed)
	nonce := uint64(1)
	for range 10 {
		calls := make([][]byte, 16)
		for i := range calls {
			calls[i] = d.transfer(d.aliceI, d.bobI, 1, nonce)
			nonce++
		}
		var wg sync.WaitGroup
		wg.Go(func() {
			for i := range calls {
				if err := d.h.c.Notify(&protocol.PrepareCalls{Calls: calls[i:]}); err != nil {
					t.Error(err)
				}
			}
		})
		rep, err := protocol.CallAs[*protocol.SubmitCallsReply](context.Background(), d.h.c, &protocol.SubmitCalls{Calls: calls, Timestamp: 1})
		wg.Wait()
		if err != nil {
			t.Fatal(err)
		}
		d.persist(rep)
		want := make([]protocol.CallResult, len(calls))
		for i := range want {
			want[i] = executed
		}
		wantResults(t, rep, want...)
	}
	hits, misses, dropped := enclave.Ahead(d.h.enc)
	t.Logf("taken prepared %d, prepared with their batch %d, dropped %d", hits, misses, dropped)
}
