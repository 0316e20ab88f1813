package enclave_test

import (
	"context"
	"errors"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/integritee-go/integritee/enclave"
	"github.com/integritee-go/integritee/enclave/protocol"
	"github.com/integritee-go/integritee/enclave/shielding"
	"github.com/integritee-go/integritee/enclave/stf"
)

// keepLog is a build whose replica keeps only keep entries of its log.
func keepLog(keep int) func(*enclave.Config) {
	return func(c *enclave.Config) { c.ReplicaKeepEntries = keep }
}

// compactedShard is a group of three voters, restarted as a keepLog
// build, that ordered enough direct calls for every replica to compact
// its log several times; nonce is the next nonce of aliceI. (The group
// forms first: its first members are provisioned before the group has a
// log, so they need the log from its start.)
func compactedShard(t *testing.T, keep, calls int) (f *provisionFixture, n *replicaNet, rs []*host, nonce uint64) {
	t.Helper()
	f = newProvisionFixture(t)
	n, rs = voters(t, f, 2, nil)
	for _, h := range n.hosts {
		h.stop()
		h.build = keepLog(keep)
		h.boot(f.c)
		n.start(h)
	}
	n.until("the restarted group leads at height 6", 100, func() bool {
		return n.agreed(6) && slices.ContainsFunc(n.hosts, func(h *host) bool { return n.st(h).leader })
	})
	nonce = 1
	nonce = transfers(t, f, n, nil, nonce, calls)
	for i, h := range n.hosts {
		if n.st(h).dropped == 0 {
			t.Fatalf("host %d dropped no records after %d calls", i, calls)
		}
	}
	return f, n, rs, nonce
}

// transfers has the hosts, in turn, order k direct calls of 1 from alice
// to bob, and returns the next nonce. Without hosts, the group's live
// leader takes them (a follower would forward them, and a proposal
// forwarded to a leader just stopped is lost: a worker sends it again
// after a timeout, which the test does not wait for).
func transfers(t *testing.T, f *provisionFixture, n *replicaNet, via []*host, nonce uint64, k int) uint64 {
	t.Helper()
	if via == nil {
		n.until("a live leader", 100, func() bool {
			via = nil
			for _, h := range n.live() {
				if n.st(h).leader {
					via = append(via, h)
				}
			}
			return len(via) == 1
		})
	}
	for i := range k {
		call := trustedCall(t, f.aliceI, stf.Call{Transfer: &stf.Transfer{From: addr(f.aliceI), To: addr(f.bobI), Amount: 1}}, nonce, f.c.target(f.shard, f.shard))
		ct, err := shielding.Encrypt(f.shieldingPub, shielding.InfoTrustedCall, call)
		if err != nil {
			t.Fatal(err)
		}
		h := via[i%len(via)]
		var rep *protocol.SubmitCallsReply
		// A follower that knows no leader yet (after a restart) refuses
		// the batch, as a worker would: send it again.
		n.until("a proposal taken", 50, func() bool {
			rep, err = protocol.CallAs[*protocol.SubmitCallsReply](context.Background(), h.c, &protocol.SubmitCalls{Calls: [][]byte{ct}, Timestamp: time.Now().UnixMilli()})
			var pe *protocol.Error
			if errors.As(err, &pe) && pe.Code == protocol.CodeNoQuorum {
				return false
			}
			if err != nil {
				t.Fatalf("submit: %v", err)
			}
			return true
		})
		n.persist(h, rep.Replica)
		if res := n.result(h, rep.Proposal); len(res.Results) != 1 || res.Results[0].Status != protocol.CallExecuted {
			t.Fatalf("call with nonce %d: %+v", nonce, res)
		}
		nonce++
	}
	return nonce
}

// TestReplicaLogCompacted: the enclaves of a shard compact their logs, so
// their hosts keep a few records however many calls were ordered; one
// restarted from those records and its stored state catches up.
func TestReplicaLogCompacted(t *testing.T) {
	f, n, rs, nonce := compactedShard(t, 2, 12)
	most := 0
	for _, h := range n.hosts {
		most = max(most, len(n.st(h).records))
	}
	// 12 calls and the chain blocks and membership changes before them
	// are some 30 records per enclave without compaction.
	if most > 16 {
		t.Fatalf("a host keeps %d records", most)
	}
	r := rs[1]
	n.down[r] = true
	r.stop()
	nonce = transfers(t, f, n, nil, nonce, 2)
	r.boot(f.c)
	n.down[r] = false
	n.start(r)
	n.until("the restarted enclave caught up", 100, func() bool { return n.agreed(6) })
	want := 1000 - 250 - int(nonce-1)
	for i, h := range n.hosts {
		if a := privateBalance(t, f.c, h, f.shieldingPub, f.aliceI); a != uint64(want) {
			t.Fatalf("host %d: alice %d, want %d", i, a, want)
		}
	}
}

// TestReplicaStateOlderThanLog: a host that keeps its enclave's records
// but restores an older copy of its state (or lost the newer one) is
// refused at the replica start: the log entries between the two are gone,
// and applying the log's rest to the old state would fork the shard.
func TestReplicaStateOlderThanLog(t *testing.T) {
	f, n, rs, nonce := compactedShard(t, 2, 12)
	r := rs[0]
	old := struct {
		checkpoint []byte
		entries    map[[32]byte][]byte
		height     int64
	}{r.checkpoint, maps.Clone(r.entries), r.height}
	transfers(t, f, n, nil, nonce, 8)
	n.down[r] = true
	r.stop()
	r.checkpoint, r.entries, r.height = old.checkpoint, old.entries, old.height
	r.boot(f.c)
	_, err := protocol.CallAs[*protocol.ReplicaStartReply](context.Background(), r.c, &protocol.ReplicaStart{Records: n.st(r).records})
	var pe *protocol.Error
	if !errors.As(err, &pe) || pe.Code != protocol.CodeState {
		t.Fatalf("replica start on an older state: %v, want a state error", err)
	}
}

// TestReplicaBehindCompactedLog: an enclave down while the others ordered
// more than their logs keep restarts and hears from the leader that its
// log starts after this enclave's state: it stops and says to provision it
// again, rather than skip the entries between.
func TestReplicaBehindCompactedLog(t *testing.T) {
	f, n, rs, nonce := compactedShard(t, 2, 12)
	r := rs[1]
	n.down[r] = true
	r.stop()
	transfers(t, f, n, nil, nonce, 10)
	r.boot(f.c)
	n.down[r] = false
	n.start(r)
	n.failing = r
	n.until("the enclave behind the leader's log stops", 50, func() bool { return n.failure != nil })
	var pe *protocol.Error
	if !errors.As(n.failure, &pe) || pe.Code != protocol.CodeState || !strings.Contains(pe.Message, "provision this worker again") {
		t.Fatalf("behind the leader's log: %v, want a state error", n.failure)
	}
	// The others go on.
	transfers(t, f, n, nil, nonce+10, 1)
}

// TestProvisionedJoinsCompactedShard: a worker provisioned from a member
// of a shard whose logs were compacted joins the group: its replica starts
// its log at the provisioned state's position, and the leader sends the
// entries after it (a snapshot from the leader could not name it as a
// member, nor bring it the state between).
func TestProvisionedJoinsCompactedShard(t *testing.T) {
	f, n, _, nonce := compactedShard(t, 32, 100)
	h := provisionedBuild(t, f.c, f.shard, f.prov, keepLog(32))
	for i, r := range f.c.block(registration(t, f, h, "ws://127.0.0.1:2009")...) {
		if r.Code != 0 {
			t.Fatalf("registration tx %d: %s/%d %s", i, r.Codespace, r.Code, r.Log)
		}
	}
	f.c.block()
	f.c.block() // 10: so that 9 can be processed
	n.hosts = append(n.hosts, h)
	n.state[h] = &replicated{results: map[[16]byte]protocol.ProposalResult{}, lcH: h.height}
	n.start(h)
	n.until("four voters at height 9", 300, func() bool {
		return len(n.st(f.prov).voters) == 4 && slices.Contains(n.st(f.prov).voters, h.signer) && sameState(t, n, 9)
	})
	nonce = transfers(t, f, n, []*host{h}, nonce, 3)
	n.until("all at the same state", 50, func() bool { return n.agreed(9) })
	want := uint64(1000 - 250 - int(nonce-1))
	if a := privateBalance(t, f.c, h, f.shieldingPub, f.aliceI); a != want {
		t.Fatalf("the joined enclave: alice %d, want %d", a, want)
	}
}

// sameState reports whether every live host is at chain height hgt with
// the same state root (agreed without the last shard block, which a new
// member has not seen yet).
func sameState(t *testing.T, n *replicaNet, hgt int64) bool {
	var roots [][32]byte
	for _, h := range n.live() {
		si, err := protocol.CallAs[*protocol.StateInfoReply](context.Background(), h.c, &protocol.StateInfo{})
		if err != nil {
			t.Fatal(err)
		}
		if si.Height != hgt || si.StateRoot != h.root() {
			return false
		}
		roots = append(roots, si.StateRoot)
	}
	return len(slices.Compact(roots)) == 1
}

// TestReplicaRecordsCutBehindState: a host that keeps its enclave's state
// but hands back an older copy of its records, or none at all (whereupon a
// provisioned enclave would join again and the shard's first would found
// a new group, both forgetting their votes), is refused at the replica
// start: the checkpoint names the records' head it was stored with.
func TestReplicaRecordsCutBehindState(t *testing.T) {
	f, n, rs, nonce := compactedShard(t, 2, 6)
	older := map[*host][][]byte{}
	for _, h := range n.hosts {
		older[h] = slices.Clone(n.st(h).records)
	}
	transfers(t, f, n, nil, nonce, 3)
	for _, r := range []*host{f.prov, rs[0]} {
		n.down[r] = true
		r.stop()
		for name, recs := range map[string][][]byte{"no records": nil, "an older copy of the records": older[r]} {
			r.boot(f.c)
			_, err := protocol.CallAs[*protocol.ReplicaStartReply](context.Background(), r.c, &protocol.ReplicaStart{Records: recs})
			var pe *protocol.Error
			if !errors.As(err, &pe) || pe.Code != protocol.CodeState {
				t.Fatalf("replica start with %s: %v, want a state error", name, err)
			}
			r.stop()
		}
	}
}

// TestNothingAppliedOutsideTheLog: a host that restores a replicated
// enclave's state and never starts its replica cannot have it apply calls
// or chain blocks outside the shard's log (which would also seal a
// checkpoint without the records' head, and let the host start it later
// on no records at all).
func TestNothingAppliedOutsideTheLog(t *testing.T) {
	f, n, _, nonce := compactedShard(t, 2, 6)
	ctx := context.Background()
	for _, r := range n.hosts {
		n.down[r] = true
		r.stop()
		r.boot(f.c)
		call := trustedCall(t, f.aliceI, stf.Call{Transfer: &stf.Transfer{From: addr(f.aliceI), To: addr(f.bobI), Amount: 1}}, nonce, f.c.target(f.shard, f.shard))
		ct, err := shielding.Encrypt(f.shieldingPub, shielding.InfoTrustedCall, call)
		if err != nil {
			t.Fatal(err)
		}
		_, err = protocol.CallAs[*protocol.SubmitCallsReply](ctx, r.c, &protocol.SubmitCalls{Calls: [][]byte{ct}, Timestamp: time.Now().UnixMilli()})
		var pe *protocol.Error
		if !errors.As(err, &pe) || pe.Code != protocol.CodeNotInitialized {
			t.Fatalf("direct calls without the replica: %v, want not initialized", err)
		}
		f.c.block()
		_, err = protocol.CallAs[*protocol.ProcessBlockReply](ctx, r.c, request(t, f.c.tc, r.height+1))
		if !errors.As(err, &pe) || pe.Code != protocol.CodeNotInitialized {
			t.Fatalf("a chain block without the replica: %v, want not initialized", err)
		}
		r.stop()
	}
}
