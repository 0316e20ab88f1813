package worker

import (
	"bytes"
	"log/slog"
	"testing"

	"github.com/integritee-go/integritee/enclave/protocol"
)

// TestReplicaInbox: whatever peers send, the waiting envelopes stay
// within their bounds (oldest dropped first), and each step takes what
// fits one request, in order, leaving the rest for the next.
func TestReplicaInbox(t *testing.T) {
	r := newReplicaHost()
	for i := range maxInbox + 10 {
		r.Deliver([]byte{byte(i), byte(i >> 8)})
	}
	if len(r.inbox) != maxInbox || r.inBytes != 2*maxInbox {
		t.Fatalf("inbox %d envelopes, %d bytes", len(r.inbox), r.inBytes)
	}
	first := r.take()
	if len(first) != protocol.MaxReplicaEnvelopes || !bytes.Equal(first[0], []byte{10, 0}) {
		t.Fatalf("first step took %d, starting with %v", len(first), first[0])
	}
	total := len(first)
	for len(r.inbox) > 0 {
		total += len(r.take())
	}
	if total != maxInbox || r.inBytes != 0 {
		t.Fatalf("took %d in all, %d bytes left", total, r.inBytes)
	}

	big := make([]byte, protocol.MaxEnvelopeBytes)
	for range maxInboxBytes/len(big) + 3 {
		r.Deliver(big)
	}
	if r.inBytes > maxInboxBytes {
		t.Fatalf("inbox holds %d bytes, bound %d", r.inBytes, maxInboxBytes)
	}
	if got := r.take(); len(got)*len(big) > maxStepBytes {
		t.Fatalf("one step took %d bytes", len(got)*len(big))
	}
	r.Deliver(make([]byte, protocol.MaxEnvelopeBytes+1))
	for len(r.inbox) > 0 {
		for _, e := range r.take() {
			if len(e) > protocol.MaxEnvelopeBytes {
				t.Fatal("an oversized envelope went to the enclave")
			}
		}
	}
}

// TestReplicaAwaitingWakesSync: an output saying the enclave waits for a
// chain block wakes the chain sync at once, once per awaited height (not
// per output, which would poll the node for every step while it lags).
func TestReplicaAwaitingWakesSync(t *testing.T) {
	w := &Worker{repl: newReplicaHost(), syncNow: make(chan struct{}, 1), log: slog.New(slog.DiscardHandler)}
	woken := func() bool {
		select {
		case <-w.syncNow:
			return true
		default:
			return false
		}
	}
	for i, c := range []struct {
		awaiting int64
		wake     bool
	}{
		{0, false}, // nothing awaited
		{7, true},  // block 7 awaited: feed it now
		{7, false}, // still 7: the sync loop knows
		{0, false}, // applied
		{9, true},  // a later block
		{8, false}, // an older one: not new
	} {
		w.onReplica(&protocol.ReplicaOutput{Awaiting: c.awaiting})
		if got := woken(); got != c.wake {
			t.Errorf("output %d (awaiting %d): woken %v, want %v", i, c.awaiting, got, c.wake)
		}
	}
}

// TestDropStaleRegistry: registry proofs made at one height are sent only
// while the enclave's newest header still commits to that height's state;
// otherwise the enclave would fail the whole step (its ticks and
// envelopes too) on a root mismatch.
func TestDropStaleRegistry(t *testing.T) {
	for _, c := range []struct {
		name              string
		proofs, ahead     bool
		regHeight, header int64
		dropped           bool
	}{
		{"current", true, false, 9, 10, false},
		{"a block applied meanwhile", true, false, 9, 11, true},
		{"header behind the proofs", true, false, 9, 9, true},
		{"no proofs", false, false, 9, 11, false},
		{"ahead of the light client", true, true, 19, 10, false},
		{"ahead by one", true, true, 10, 10, false},
		{"light client reached the ahead header", true, true, 19, 20, true},
	} {
		req := &protocol.ReplicaStep{}
		if c.proofs {
			req.Registry = []protocol.ProvedValue{{Key: []byte("k")}}
		}
		if c.ahead {
			req.Ahead = &protocol.Ahead{}
		}
		got := dropStaleRegistry(req, c.regHeight, c.header)
		if c.dropped && req.Ahead != nil {
			t.Errorf("%s: ahead header kept without its proofs", c.name)
		}
		if got != c.dropped || (req.Registry == nil) != (c.dropped || !c.proofs) {
			t.Errorf("%s: dropped %v (registry %v), want %v", c.name, got, req.Registry != nil, c.dropped)
		}
	}
}
