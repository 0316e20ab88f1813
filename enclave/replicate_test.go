package enclave_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	abci "github.com/cometbft/cometbft/abci/types"

	"github.com/integritee-go/integritee/chain/accounts"
	"github.com/integritee-go/integritee/chain/sidechain"
	"github.com/integritee-go/integritee/chain/smt"
	"github.com/integritee-go/integritee/chain/teerex"
	"github.com/integritee-go/integritee/chain/tx"
	"github.com/integritee-go/integritee/chain/types"
	"github.com/integritee-go/integritee/enclave"
	"github.com/integritee-go/integritee/enclave/protocol"
	"github.com/integritee-go/integritee/enclave/shielding"
	"github.com/integritee-go/integritee/enclave/stf"
)

// replicated is the persisted replication state of a test host.
type replicated struct {
	records [][]byte
	inbox   [][]byte
	results map[[16]byte]protocol.ProposalResult
	lcH     int64 // the light client's height, as the last output said
	leader  bool
	voters  []tx.Address
	lastHdr types.Hash // the last shard block persisted
	dropped int        // records dropped after compactions
}

// replicaNet runs the hosts of a shard's enclaves with the chain and
// carries their envelopes, as the worker hosts and their peer transport
// do.
type replicaNet struct {
	t     *testing.T
	f     *provisionFixture
	hosts []*host
	state map[*host]*replicated
	down  map[*host]bool
	// failing, if set, is a host whose enclave is expected to refuse a
	// step: round records its error in failure and takes it down.
	failing *host
	failure error
}

// provisioned is a new host of shard with the keys and state of prov,
// persisted (provisioning over the relay, then the snapshot's entries).
func provisioned(t *testing.T, c *chainSim, shard [32]byte, prov *host) *host {
	t.Helper()
	return provisionedBuild(t, c, shard, prov, nil)
}

// provisionedBuild is provisioned with the enclave build changed by build.
func provisionedBuild(t *testing.T, c *chainSim, shard [32]byte, prov *host, build func(*enclave.Config)) *host {
	t.Helper()
	ctx := context.Background()
	h := newHost(t, shard)
	h.build = build
	startPeers(h, simPeers(h.backend))
	res, err := relay(t, c, h, prov, nil)
	if err != nil {
		t.Fatal(err)
	}
	snapshot := prov.allEntries()
	if err := h.load(snapshot, 50); err != nil {
		t.Fatal(err)
	}
	if _, err := protocol.CallAs[*protocol.ResumeReply](ctx, h.c, &protocol.Resume{}); err != nil {
		t.Fatal(err)
	}
	sk := res.SealedKeys
	h.sealed, h.checkpoint, h.height = &sk, res.Checkpoint, res.Height
	for _, e := range snapshot {
		h.entries[e.Key] = e.Value
	}
	return h
}

func (n *replicaNet) st(h *host) *replicated { return n.state[h] }

// persist does the host's duty with an output: records and applied
// transitions first, then the envelopes go out.
func (n *replicaNet) persist(h *host, out *protocol.ReplicaOutput) {
	if out == nil {
		return
	}
	r := n.st(h)
	r.records = append(r.records, out.Records...)
	if k := out.KeepRecords; k > 0 && k < uint64(len(r.records)) {
		r.dropped += len(r.records) - int(k)
		r.records = r.records[uint64(len(r.records))-k:]
	}
	for _, a := range out.Applied {
		for _, e := range a.Changes {
			if len(e.Value) == 0 {
				delete(h.entries, e.Key)
			} else {
				h.entries[e.Key] = e.Value
			}
		}
		h.checkpoint = a.Checkpoint
		if a.Chain {
			h.height = a.Height
		}
		h.outgoing = append(h.outgoing, a.Outgoing...)
		if a.Block != nil {
			hash, err := a.Block.Header.Hash()
			if err != nil {
				n.t.Fatal(err)
			}
			r.lastHdr = hash
		}
	}
	for _, res := range out.Results {
		r.results[res.ID] = res
	}
	r.lcH, r.leader, r.voters = out.Height, out.IsLeader, out.Voters
	for _, m := range out.Messages {
		for _, o := range n.hosts {
			if o.signer == m.To && !n.down[o] {
				n.st(o).inbox = append(n.st(o).inbox, m.Data)
			}
		}
	}
}

// registry proves the shard measurement's registrations at the state
// that h's light client trusts (query height one below its header).
func (n *replicaNet) registry(h *host) []protocol.ProvedValue {
	return n.registryAt(n.st(h).lcH - 1)
}

// registryAt proves the shard measurement's registrations at height.
func (n *replicaNet) registryAt(height int64) []protocol.ProvedValue {
	t, c := n.t, n.f.c
	m := types.Hash(n.f.shard)
	var out []protocol.ProvedValue
	prove := func(path string, key []byte) []byte {
		res, err := c.app.Query(context.Background(), &abci.RequestQuery{Path: path, Height: height, Prove: true})
		if err != nil || res.Code != 0 {
			t.Fatalf("query %s at %d: %v %+v", path, height, err, res)
		}
		p, err := smt.ProofFromOps(res.ProofOps, key)
		if err != nil {
			t.Fatal(err)
		}
		v := res.Value
		if len(v) == 0 {
			v = nil
		}
		out = append(out, protocol.ProvedValue{Key: key, Value: v, Proof: *p})
		return v
	}
	var count uint64
	if v := prove("/teerex/enclaves/"+m.String(), teerex.EnclavesOfCountKey(m)); v != nil {
		if err := protocol.Unmarshal(v, &count); err != nil {
			t.Fatal(err)
		}
	}
	for i := range count {
		v := prove(fmt.Sprintf("/teerex/enclaves/%s/%d", m, i), teerex.EnclavesOfSlotKey(m, i))
		var s tx.Address
		if err := protocol.Unmarshal(v, &s); err != nil {
			t.Fatal(err)
		}
		prove("/teerex/enclave/"+s.String(), teerex.EnclaveKey(s))
	}
	prove("/teerex/policy", teerex.PolicyKey())
	prove("/teerex/allowlist", teerex.AllowlistKey())
	prove("/sidechain/shard/"+m.String(), sidechain.ShardKey(m))
	return out
}

// start boots h's replica from its persisted records.
func (n *replicaNet) start(h *host) {
	n.t.Helper()
	rep, err := protocol.CallAs[*protocol.ReplicaStartReply](context.Background(), h.c, &protocol.ReplicaStart{Records: n.st(h).records})
	if err != nil {
		n.t.Fatalf("replica start: %v", err)
	}
	n.persist(h, rep.Replica)
}

// round gives every live host one tick, its inbox and the registry, and
// feeds it the next chain block its light client can take.
func (n *replicaNet) round() {
	n.t.Helper()
	ctx := context.Background()
	for _, h := range n.hosts {
		if n.down[h] {
			continue
		}
		r := n.st(h)
		if next := r.lcH + 1; next+1 <= n.f.c.tc.Height() {
			rep, err := protocol.CallAs[*protocol.ProcessBlockReply](ctx, h.c, request(n.t, n.f.c.tc, next))
			if err != nil && !errors.Is(err, protocol.ErrVerification) {
				if h == n.failing {
					n.failure, n.down[h] = err, true
					continue
				}
				n.t.Fatalf("process %d: %v", next, err)
			}
			if err == nil {
				n.persist(h, rep.Replica)
			}
		}
		in := r.inbox
		r.inbox = nil
		rep, err := protocol.CallAs[*protocol.ReplicaStepReply](ctx, h.c, &protocol.ReplicaStep{Ticks: 1, Envelopes: in, Registry: n.registry(h)})
		if err != nil && h == n.failing {
			n.failure, n.down[h] = err, true
			continue
		}
		if err != nil {
			n.t.Fatalf("step: %v", err)
		}
		n.persist(h, rep.Replica)
	}
}

// until runs rounds until cond holds (at most max).
func (n *replicaNet) until(what string, max int, cond func() bool) {
	n.t.Helper()
	for range max {
		if cond() {
			return
		}
		n.round()
	}
	n.t.Fatalf("%s: not after %d rounds", what, max)
}

func (n *replicaNet) live() []*host {
	var out []*host
	for _, h := range n.hosts {
		if !n.down[h] {
			out = append(out, h)
		}
	}
	return out
}

// agreed reports whether every live host is at chain height hgt with the
// same state root and last shard block.
func (n *replicaNet) agreed(hgt int64) bool {
	var root [32]byte
	var last types.Hash
	for i, h := range n.live() {
		si, err := protocol.CallAs[*protocol.StateInfoReply](context.Background(), h.c, &protocol.StateInfo{})
		if err != nil {
			n.t.Fatal(err)
		}
		if si.Height != hgt || si.StateRoot != h.root() {
			return false
		}
		if i == 0 {
			root, last = si.StateRoot, n.st(h).lastHdr
		} else if si.StateRoot != root || n.st(h).lastHdr != last {
			return false
		}
	}
	return true
}

// submit sends a direct call to h and runs rounds until its result.
func (n *replicaNet) submit(h *host, call []byte) protocol.ProposalResult {
	n.t.Helper()
	ct, err := shielding.Encrypt(n.f.shieldingPub, shielding.InfoTrustedCall, call)
	if err != nil {
		n.t.Fatal(err)
	}
	return n.submitBatch(h, [][]byte{ct})
}

// submitBatch sends a batch of call ciphertexts to h and runs rounds
// until its result.
func (n *replicaNet) submitBatch(h *host, cts [][]byte) protocol.ProposalResult {
	n.t.Helper()
	rep, err := protocol.CallAs[*protocol.SubmitCallsReply](context.Background(), h.c, &protocol.SubmitCalls{
		Calls: cts, Timestamp: time.Now().UnixMilli()})
	if err != nil {
		n.t.Fatalf("submit: %v", err)
	}
	n.persist(h, rep.Replica)
	return n.result(h, rep.Proposal)
}

// result runs rounds until h's proposal id has its result.
func (n *replicaNet) result(h *host, id [16]byte) protocol.ProposalResult {
	n.t.Helper()
	var res protocol.ProposalResult
	n.until("call result", 50, func() bool {
		var ok bool
		res, ok = n.st(h).results[id]
		return ok
	})
	return res
}

// registration has h's enclave sign its registration for url, sets
// h.signer, and returns the transactions that fund and register it.
func registration(t *testing.T, f *provisionFixture, h *host, url string) [][]byte {
	t.Helper()
	reg, err := protocol.CallAs[*protocol.SignedTxs](context.Background(), h.c, &protocol.SignRegistration{
		Params: protocol.TxParams{ChainID: chainID, BaseFee: accounts.DevBaseFee, PerByteFee: accounts.DevPerByteFee}, WorkerURL: url})
	if err != nil {
		t.Fatal(err)
	}
	stx, err := tx.Decode(reg.Txs[0])
	if err != nil {
		t.Fatal(err)
	}
	h.signer = stx.Body.Sender
	fund := f.c.tx(accounts.DevKey("Alice"), accounts.Name, accounts.MethodTransfer, accounts.Transfer{To: h.signer, Amount: accounts.Unit})
	return [][]byte{fund, reg.Txs[0]}
}

// threeVoters registers two provisioned enclaves beside the shard's
// first and runs rounds until the three are the group's voters and agree
// at chain height 6.
func threeVoters(t *testing.T) (*provisionFixture, *replicaNet, *host, *host) {
	f := newProvisionFixture(t)
	n, rs := voters(t, f, 2, nil)
	return f, n, rs[0], rs[1]
}

// voters registers k provisioned enclaves beside the shard's first (with
// extra transactions in the same block 5) and runs rounds until all are
// the group's voters and agree at chain height 6.
func voters(t *testing.T, f *provisionFixture, k int, extra [][]byte) (*replicaNet, []*host) {
	var rs []*host
	for range k {
		rs = append(rs, provisionedBuild(t, f.c, f.shard, f.prov, f.prov.build))
	}

	// Register the new enclaves (block 5).
	txs := extra
	for _, h := range rs {
		txs = append(txs, registration(t, f, h, "ws://127.0.0.1:2001")...)
	}
	for i, r := range f.c.block(txs...) {
		if r.Code != 0 {
			t.Fatalf("block 5 tx %d: %s/%d %s", i, r.Codespace, r.Code, r.Log)
		}
	}
	f.c.block()
	f.c.block() // 7: so that 6 can be processed

	n := &replicaNet{t: t, f: f, hosts: append([]*host{f.prov}, rs...), state: map[*host]*replicated{}, down: map[*host]bool{}}
	for _, h := range n.hosts {
		n.state[h] = &replicated{results: map[[16]byte]protocol.ProposalResult{}, lcH: h.height}
		n.start(h)
	}
	if !n.st(f.prov).leader {
		t.Fatal("the shard's first enclave did not found the group")
	}
	n.until("all voters at height 6", 200, func() bool {
		return len(n.st(f.prov).voters) == k+1 && n.agreed(6)
	})
	return n, rs
}

// TestReplicatedShard: three enclaves of a shard order chain blocks and
// direct calls sent to each of them in one log; all reach the same state
// and the same shard blocks; one crashes, the others go on, and it
// catches up from its records on restart.
func TestReplicatedShard(t *testing.T) {
	f, n, r1, r2 := threeVoters(t)

	// A direct call to each enclave, in nonce order: each is ordered by
	// the group and applied by all three.
	aliceI, bobI := f.aliceI, f.bobI
	for i, h := range n.hosts {
		call := trustedCall(t, aliceI, stf.Call{Transfer: &stf.Transfer{From: addr(aliceI), To: addr(bobI), Amount: 10}}, uint64(i+1), f.c.target(f.shard, f.shard))
		res := n.submit(h, call)
		if len(res.Results) != 1 || res.Results[0].Status != protocol.CallExecuted || res.Block == nil {
			t.Fatalf("call %d via host %d: %+v", i+1, i, res)
		}
	}
	n.until("same state after the direct calls", 50, func() bool { return n.agreed(6) })
	for i, h := range n.hosts {
		if a, b := privateBalance(t, f.c, h, f.shieldingPub, aliceI), privateBalance(t, f.c, h, f.shieldingPub, bobI); a != 720 || b != 280 {
			t.Fatalf("host %d: alice %d bob %d, want 720 280", i, a, b)
		}
	}

	// One crashes; the other two go on without it.
	n.down[r2] = true
	r2.stop()
	call := trustedCall(t, aliceI, stf.Call{Transfer: &stf.Transfer{From: addr(aliceI), To: addr(bobI), Amount: 20}}, 4, f.c.target(f.shard, f.shard))
	if res := n.submit(r1, call); res.Results[0].Status != protocol.CallExecuted {
		t.Fatalf("with one enclave down: %+v", res)
	}
	// It restarts from what its host persisted and catches up.
	r2.boot(f.c)
	n.down[r2] = false
	n.start(r2)
	n.until("the restarted enclave caught up", 100, func() bool { return n.agreed(6) })
	if a := privateBalance(t, f.c, r2, f.shieldingPub, aliceI); a != 700 {
		t.Fatalf("restarted enclave: alice %d, want 700", a)
	}
}

// TestReplicaAwaitsChainBlock: a follower whose log orders a chain block
// its light client has not verified yet says so (Awaiting), so that its
// host feeds that block at once rather than at its next poll, and applies
// the waiting entries in the reply to that block, without waiting for
// another message of the group.
func TestReplicaAwaitsChainBlock(t *testing.T) {
	ctx := context.Background()
	f, n, r1, _ := threeVoters(t)
	leader := f.prov
	f.c.block() // 8: so that 7 can be processed

	// Only the leader's host feeds block 7: the leader orders it.
	rep, err := protocol.CallAs[*protocol.ProcessBlockReply](ctx, leader.c, request(t, f.c.tc, 7))
	if err != nil {
		t.Fatal(err)
	}
	n.persist(leader, rep.Replica)
	// Envelopes only, no chain blocks, until the follower knows block 7
	// is committed and waits for it.
	var awaiting int64
	for range 20 {
		for _, h := range n.hosts {
			in := n.st(h).inbox
			n.st(h).inbox = nil
			rep, err := protocol.CallAs[*protocol.ReplicaStepReply](ctx, h.c, &protocol.ReplicaStep{Envelopes: in})
			if err != nil {
				t.Fatal(err)
			}
			n.persist(h, rep.Replica)
			if h == r1 {
				awaiting = rep.Replica.Awaiting
			}
		}
		if awaiting != 0 {
			break
		}
	}
	if awaiting != 7 {
		t.Fatalf("the follower awaits chain block %d, want 7", awaiting)
	}
	if h := n.st(r1).lcH; h != 6 {
		t.Fatalf("the follower applied up to chain height %d before it verified block 7", h)
	}
	// Its host feeds block 7: the reply applies it, nothing else needed.
	rep, err = protocol.CallAs[*protocol.ProcessBlockReply](ctx, r1.c, request(t, f.c.tc, 7))
	if err != nil {
		t.Fatal(err)
	}
	out := rep.Replica
	if len(out.Applied) != 1 || !out.Applied[0].Chain || out.Applied[0].Height != 7 || out.Awaiting != 0 || out.Height != 7 {
		t.Fatalf("the reply to block 7: applied %+v, awaiting %d, height %d; want block 7 applied", out.Applied, out.Awaiting, out.Height)
	}
	n.persist(r1, out)
	n.until("the same state at height 7", 50, func() bool { return n.agreed(7) })
}

// TestReplicaLateTicks: a host held up for an election timeout hands its
// enclave the ticks together with the envelopes that arrived meanwhile;
// the leader counts its followers' answers before the ticks, so it does
// not step down (CheckQuorum) although they answered.
func TestReplicaLateTicks(t *testing.T) {
	ctx := context.Background()
	f, n, _, _ := threeVoters(t)
	leader := f.prov
	step := func(h *host, ticks uint32) *protocol.ReplicaOutput {
		in := n.st(h).inbox
		n.st(h).inbox = nil
		rep, err := protocol.CallAs[*protocol.ReplicaStepReply](ctx, h.c, &protocol.ReplicaStep{Ticks: ticks, Envelopes: in})
		if err != nil {
			t.Fatal(err)
		}
		n.persist(h, rep.Replica)
		return rep.Replica
	}
	// What waits for the leader, then a held-up step without envelopes:
	// the leader checks its quorum (once per election timeout), which
	// forgets who was active, and sends heartbeats; the followers answer.
	step(leader, 0)
	if out := step(leader, 10); !out.IsLeader {
		t.Fatal("the leader stepped down with its followers active")
	}
	for _, h := range n.hosts[1:] {
		step(h, 0)
	}
	// Held up again: the answers come with the next election timeout's
	// ticks.
	if out := step(leader, 10); !out.IsLeader {
		t.Fatal("the leader stepped down although its followers' answers came with the ticks")
	}
}

// TestReplicaHostMessages: the worst a host can send with the replication
// requests. Altered records do not start the replica; forged envelopes
// change nothing; a registry listing whose proofs do not verify is
// refused; out-of-bounds requests are refused.
func TestReplicaHostMessages(t *testing.T) {
	ctx := context.Background()
	f := newProvisionFixture(t)
	n := &replicaNet{t: t, f: f, hosts: []*host{f.prov}, state: map[*host]*replicated{}, down: map[*host]bool{}}
	n.state[f.prov] = &replicated{results: map[[16]byte]protocol.ProposalResult{}, lcH: f.prov.height}
	n.start(f.prov)
	n.round()
	n.round()
	r := n.st(f.prov)
	if len(r.records) < 2 {
		t.Fatalf("%d records", len(r.records))
	}
	before, err := protocol.CallAs[*protocol.StateInfoReply](ctx, f.prov.c, &protocol.StateInfo{})
	if err != nil {
		t.Fatal(err)
	}

	// Forged envelopes and an altered registry change nothing.
	if _, err := protocol.CallAs[*protocol.ReplicaStepReply](ctx, f.prov.c, &protocol.ReplicaStep{Envelopes: [][]byte{{1, 2, 3}, make([]byte, 200)}}); err != nil {
		t.Fatalf("forged envelopes: %v", err)
	}
	reg := n.registry(f.prov)
	reg[0].Value = append([]byte(nil), reg[0].Value...)
	reg[0].Value[len(reg[0].Value)-1] ^= 1
	if _, err := protocol.CallAs[*protocol.ReplicaStepReply](ctx, f.prov.c, &protocol.ReplicaStep{Registry: reg}); !errors.Is(err, protocol.ErrVerification) {
		t.Fatalf("altered registry: %v", err)
	}
	for name, req := range map[string]*protocol.ReplicaStep{
		"ticks":   {Ticks: 1001},
		"read ID": {Reads: [][]byte{make([]byte, 64)}},
	} {
		if _, err := protocol.CallAs[*protocol.ReplicaStepReply](ctx, f.prov.c, req); !errors.Is(err, protocol.ErrInvalidInput) {
			t.Fatalf("%s: %v", name, err)
		}
	}
	after, err := protocol.CallAs[*protocol.StateInfoReply](ctx, f.prov.c, &protocol.StateInfo{})
	if err != nil || after.StateRoot != before.StateRoot || after.Height != before.Height {
		t.Fatalf("state moved: %+v -> %+v (%v)", before, after, err)
	}

	// Altered or reordered records do not start a restarted replica.
	for name, recs := range map[string][][]byte{
		"altered":   append([][]byte{append(append([]byte(nil), r.records[0][:len(r.records[0])-1]...), r.records[0][len(r.records[0])-1]^1)}, r.records[1:]...),
		"reordered": append([][]byte{r.records[1], r.records[0]}, r.records[2:]...),
	} {
		f.prov.boot(f.c)
		if _, err := protocol.CallAs[*protocol.ReplicaStartReply](ctx, f.prov.c, &protocol.ReplicaStart{Records: recs}); !errors.Is(err, protocol.ErrState) {
			t.Fatalf("%s records: %v", name, err)
		}
	}
	// The genuine ones do.
	f.prov.boot(f.c)
	n.start(f.prov)
}
