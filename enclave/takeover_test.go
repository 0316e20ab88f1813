package enclave_test

import (
	"context"
	"errors"
	"testing"

	abci "github.com/cometbft/cometbft/abci/types"
	cmttypes "github.com/cometbft/cometbft/types"

	"github.com/integritee-go/integritee/chain/accounts"
	"github.com/integritee-go/integritee/chain/teerex"
	"github.com/integritee-go/integritee/enclave/protocol"
	"github.com/integritee-go/integritee/enclave/stf"
)

// livenessPolicyTx is the sudo transaction that gives the chain's
// attestation policy a liveness period of secs.
func livenessPolicyTx(t *testing.T, f *provisionFixture, secs uint64) []byte {
	t.Helper()
	q, err := f.c.app.Query(context.Background(), &abci.RequestQuery{Path: "/teerex/policy"})
	if err != nil || q.Code != 0 {
		t.Fatalf("query policy: %v %+v", err, q)
	}
	var p teerex.Policy
	if err := protocol.Unmarshal(q.Value, &p); err != nil {
		t.Fatal(err)
	}
	p.LivenessSecs = secs
	return f.c.tx(accounts.DevKey("Alice"), teerex.Name, teerex.MethodSetAttestationPolicy, teerex.SetAttestationPolicy{Policy: p})
}

// ahead is the host's ReplicaStep for an enclave whose group knows no
// leader: the chain's latest header and the registry proved against it.
func (n *replicaNet) ahead(h *host) *protocol.ReplicaStep {
	return n.aheadAt(h, n.f.c.tc.Height())
}

// aheadAt is ahead with the header of height top.
func (n *replicaNet) aheadAt(h *host, top int64) *protocol.ReplicaStep {
	tc := n.f.c.tc
	next, err := protocol.EncodeValidatorSet(tc.Block(n.st(h).lcH + 1).Validators)
	if err != nil {
		n.t.Fatal(err)
	}
	return &protocol.ReplicaStep{Registry: n.registryAt(top - 1), Ahead: &protocol.Ahead{Header: header(n.t, tc.Block(top)), NextValidators: next}}
}

// TestTwoVotersOneLost: a group of two whose first enclave is lost for
// good. The survivor cannot order anything (two of two), and must not take
// the group over while the chain still counts the lost one as active; once
// the lost one fell silent (no keep_alive for the policy's liveness
// period), the survivor, shown the chain's present by its host, takes the
// group over, catches its light client up through the log and serves
// direct calls alone, with every balance as before. A host that forges
// the later header, or proves the registry against another one, changes
// nothing.
func TestTwoVotersOneLost(t *testing.T) {
	ctx := context.Background()
	f := newProvisionFixture(t)
	// The provider registered at block 1 (1 s), the survivor registers at
	// block 5 (5 s): with a 10 s liveness period and no keep_alive, the
	// provider is silent from 12 s on, the survivor still active until 15 s.
	n, rs := voters(t, f, 1, [][]byte{livenessPolicyTx(t, f, 10)})
	s := rs[0]
	call := func(nonce uint64) []byte {
		return trustedCall(t, f.aliceI, stf.Call{Transfer: &stf.Transfer{From: addr(f.aliceI), To: addr(f.bobI), Amount: 10}}, nonce, f.c.target(f.shard, f.shard))
	}
	if res := n.submit(s, call(1)); res.Results[0].Status != protocol.CallExecuted {
		t.Fatalf("with both: %+v", res)
	}

	n.down[f.prov] = true
	f.prov.stop()
	n.until("the survivor knows no leader", 40, func() bool {
		_, err := protocol.CallAs[*protocol.SubmitCallsReply](ctx, s.c, &protocol.SubmitCalls{Calls: [][]byte{{1}}})
		return errors.Is(err, protocol.ErrNoQuorum)
	})

	// The chain still counts the lost one (block 7, 7 s): no take-over.
	step := func(req *protocol.ReplicaStep) (*protocol.ReplicaStepReply, error) {
		req.Ticks = 1
		rep, err := protocol.CallAs[*protocol.ReplicaStepReply](ctx, s.c, req)
		if err == nil {
			n.persist(s, rep.Replica)
		}
		return rep, err
	}
	for range 5 {
		if rep, err := step(n.ahead(s)); err != nil || rep.Replica.IsLeader {
			t.Fatalf("while the lost one is active: err %v, leader %v", err, err == nil && rep.Replica.IsLeader)
		}
	}

	for f.c.tc.Height() < 13 {
		f.c.block()
	}
	// A forged later header, and proofs against another header than
	// Ahead, are refused and change nothing.
	forged := n.ahead(s)
	sh := f.c.tc.Block(f.c.tc.Height()).Header
	hd := *sh.Header
	hd.AppHash = make([]byte, 32)
	forgedHdr := cmttypes.SignedHeader{Header: &hd, Commit: f.c.tc.Sign(&hd, newImpostors())}
	forged.Ahead.Header.SignedHeader, _ = protocol.EncodeSignedHeader(&forgedHdr)
	wrongProofs := n.ahead(s)
	wrongProofs.Registry = n.registryAt(n.st(s).lcH - 1)
	for name, req := range map[string]*protocol.ReplicaStep{"forged header": forged, "proofs of another header": wrongProofs} {
		if _, err := step(req); !errors.Is(err, protocol.ErrVerification) {
			t.Fatalf("%s: %v", name, err)
		}
	}
	// Without the proof of the shard's latest confirmation it does not
	// know whether its log holds the confirmed chain: no take-over.
	noConf := n.ahead(s)
	noConf.Registry = noConf.Registry[:len(noConf.Registry)-1]
	for range 3 {
		if _, err := step(noConf); err != nil {
			t.Fatal(err)
		}
	}
	if n.st(s).leader {
		t.Fatal("took the group over on forged or missing evidence")
	}
	// Shown height 13, it is not taken back to 12.
	if _, err := step(n.aheadAt(s, 12)); !errors.Is(err, protocol.ErrInvalidInput) {
		t.Fatalf("an older ahead header: %v", err)
	}

	// At 13 s the lost one is silent: the survivor takes over.
	rep, err := step(n.ahead(s))
	if err != nil {
		t.Fatal(err)
	}
	n.until("the survivor leads alone", 20, func() bool {
		return n.st(s).leader && len(n.st(s).voters) == 1
	})
	_ = rep
	n.until("the survivor applied the chain up to 12", 50, func() bool { return n.st(s).lcH >= 12 })
	if res := n.submit(s, call(2)); res.Results[0].Status != protocol.CallExecuted {
		t.Fatalf("alone: %+v", res)
	}
	if a, b := privateBalance(t, f.c, s, f.shieldingPub, f.aliceI), privateBalance(t, f.c, s, f.shieldingPub, f.bobI); a != 730 || b != 270 {
		t.Fatalf("alice %d bob %d, want 730 270", a, b)
	}
}
