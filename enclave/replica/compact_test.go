package replica_test

import (
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/integritee-go/integritee/chain/tx"
	"github.com/integritee-go/integritee/enclave/replica"
)

// replayed starts a second node from a's stored records, as a restart
// would, and checks that its log is the live node's; and the same from
// every record a has written, as a host that never dropped one has them.
func (c *cluster) replayed(a tx.Address) {
	c.t.Helper()
	m := c.members[a]
	for _, recs := range [][][]byte{m.disk, m.all} {
		n, err := replica.Start(c.config(a), recs, nil)
		if err != nil {
			c.t.Fatalf("%x replay of %d records: %v", a[:4], len(recs), err)
		}
		if got, want := replica.LogState(n), replica.LogState(m.node); got != want {
			c.t.Fatalf("%x replayed from %d records:\n%s\nlive:\n%s", a[:4], len(recs), got, want)
		}
	}
}

// TestCompactedRecordsReplayExactly: members compact at random points
// while partitions make leaders come and go and overwrite uncommitted
// entries of cut-off ones; after every compaction the host keeps only the
// records the node asks for, and a node replayed from them has exactly
// the live node's log (snapshot, hard state, every entry after it).
// Restarts replay those records too, and the group still commits.
func TestCompactedRecordsReplayExactly(t *testing.T) {
	for seed := range uint64(8) {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			c := newCluster(t, 3, 3)
			c.rng = mrand.New(mrand.NewPCG(seed, 7))
			// A proposal forwarded to a leader that stepped down is dropped:
			// Raft proposals are at most once, the proposer proposes again.
			c.onError = func(_ tx.Address, err error) bool { return strings.Contains(err.Error(), "proposal dropped") }
			rng := mrand.New(mrand.NewPCG(seed, 11))
			c.leader()
			isolated := -1
			c.cut = func(a, b tx.Address) bool {
				return isolated >= 0 && (a == c.order[isolated]) != (b == c.order[isolated])
			}
			compactions := 0
			for round := range 400 {
				switch r := rng.IntN(100); {
				case r < 8:
					isolated = rng.IntN(3) // a leader cut off keeps appending alone
				case r < 16:
					isolated = -1
				case r < 20:
					a := c.order[rng.IntN(3)]
					if c.members[a].up {
						c.crash(a)
						c.start(a, nil)
					}
				}
				for range rng.IntN(4) {
					m := c.members[c.order[rng.IntN(3)]]
					_ = m.node.Propose([]byte(fmt.Sprint("call ", round)))
				}
				c.step()
				if rng.IntN(10) == 0 {
					a := c.order[rng.IntN(3)]
					n := c.members[a].node
					if snap, applied := n.SnapshotIndex(), n.Applied(); applied > snap {
						c.compact(a, snap+1+rng.Uint64N(applied-snap), "")
						c.replayed(a)
						compactions++
					}
				}
			}
			if compactions < 20 {
				t.Fatalf("only %d compactions", compactions)
			}
			isolated = -1
			l := c.leader()
			c.members[l].node.Propose([]byte("last"))
			c.run(30)
			for _, a := range c.order {
				if got := commands(c.members[a]); !slices.Contains(got, "last") {
					t.Fatalf("%x did not apply the last call after healing", a[:4])
				}
				c.replayed(a)
			}
		})
	}
}

// TestCompactionBoundsRecords: a node that compacts where
// CompactionPoint says keeps its records and log bounded however long it
// runs, restarts from them, and a restart hands out only the entries
// after the snapshot.
func TestCompactionBoundsRecords(t *testing.T) {
	c := newCluster(t, 1, 1)
	c.keep = 8
	a := c.order[0]
	c.start(a, []tx.Address{a})
	c.leader()
	m := c.members[a]
	most := 0
	for i := range 300 {
		m.node.Propose([]byte(fmt.Sprint("call ", i)))
		c.step()
		if at, ok := m.node.CompactionPoint(m.node.Applied(), false); ok {
			c.compact(a, at, "")
		}
		most = max(most, len(m.disk))
	}
	// Two records per entry at most (its append, its commit), between
	// 2×keep and 4×keep entries since the last compaction, plus the base.
	if most > 4*c.keep*2+2 {
		t.Fatalf("up to %d records stored", most)
	}
	if snap := m.node.SnapshotIndex(); snap < 250 {
		t.Fatalf("snapshot at %d after 300 entries", snap)
	}
	c.replayed(a)
	snap := m.node.SnapshotIndex()
	c.crash(a)
	c.start(a, nil)
	c.run(3)
	got := c.members[a].applied
	if len(got) == 0 || got[0].Index <= snap || len(got) > 2*c.keep+1 {
		t.Fatalf("restart handed out %d entries from %d, snapshot at %d", len(got), got[0].Index, snap)
	}
	m = c.members[a]
	m.node.Propose([]byte("after"))
	c.run(3)
	if cmds := commands(m); cmds[len(cmds)-1] != "after" {
		t.Fatalf("after the restart, applied %q", cmds)
	}
}

// TestCompactedRecordsCannotBeCut: a host that keeps fewer records than
// the compaction named, or hands over records from the middle of the
// chain without the record that compacted them, is refused; records from
// before the compaction are only an older copy (a rollback, which Raft
// and the chain deal with: TestRolledBackNodeStops).
func TestCompactedRecordsCannotBeCut(t *testing.T) {
	c := newCluster(t, 1, 1)
	a := c.order[0]
	c.leader()
	m := c.members[a]
	for i := range 10 {
		m.node.Propose([]byte(fmt.Sprint("call ", i)))
		c.step()
	}
	before := slices.Clone(m.disk)
	// Keep a tail of entries, so the compaction needs records before it.
	c.compact(a, m.node.Applied()-3, "")
	kept := slices.Clone(m.disk)
	if len(kept) < 2 {
		t.Fatalf("kept %d records", len(kept))
	}
	cfg := c.config(a)
	for name, recs := range map[string][][]byte{
		"one record fewer":              kept[1:],
		"the base alone":                kept[len(kept)-1:],
		"the middle without the base":   before[len(before)-3:],
		"kept records without the last": kept[:len(kept)-1],
	} {
		_, err := replica.Start(cfg, recs, nil)
		if name == "kept records without the last" {
			// A tail cut leaves records that start after the first
			// without a base naming them.
			if !errors.Is(err, replica.ErrRecords) {
				t.Errorf("%s: %v, want ErrRecords", name, err)
			}
			continue
		}
		if !errors.Is(err, replica.ErrRecords) {
			t.Errorf("%s: %v, want ErrRecords", name, err)
		}
	}
	if _, err := replica.Start(cfg, before, nil); err != nil {
		t.Errorf("the records before the compaction: %v", err)
	}
	if _, err := replica.Start(cfg, kept, nil); err != nil {
		t.Errorf("the kept records: %v", err)
	}
}

// TestJoinAtPosition: a node provisioned with a state at a position of
// the log starts its log there and catches up from the leader's log,
// though the leader compacted past the log's start (no snapshot needed,
// whose configuration could not name the new node).
func TestJoinAtPosition(t *testing.T) {
	c := newCluster(t, 1, 1)
	a, pos := soloWithLog(t, c, 2)
	n := c.members[a].node
	if !slices.Equal(pos.Voters, []tx.Address{a}) || pos.Term == 0 {
		t.Fatalf("position %+v", pos)
	}
	c.compact(a, pos.Index-1, "")
	n.Propose([]byte("new 0"))
	c.run(2)

	b := addr(1)
	c.join(b, pos)
	if err := n.AddLearner(b); err != nil {
		t.Fatal(err)
	}
	c.run(10)
	if c.members[b].snap != nil {
		t.Fatalf("the new node needed a snapshot: %+v", c.members[b].snap)
	}
	if err := n.AddVoter(b); err != nil {
		t.Fatal(err)
	}
	c.run(10)
	n.Propose([]byte("new 1"))
	c.run(5)
	if got := commands(c.members[b]); !slices.Equal(got, []string{"old 4", "old 5", "new 0", "new 1"}) {
		t.Fatalf("the joined node applied %q", got)
	}
	c.replayed(b)
	// Restarted from its records, it starts from the position again.
	c.crash(b)
	c.start(b, nil)
	c.run(5)
	if st := c.members[b].node.Status(); !slices.Contains(st.Voters, b) {
		t.Fatalf("restarted joined node: %+v", st)
	}
}

// TestLaggingFollowerGetsSnapshot: a follower cut off while the leader
// compacted past its log gets the leader's snapshot, which says where its
// state machine must be to go on (Output.Snapshot).
func TestLaggingFollowerGetsSnapshot(t *testing.T) {
	c := newCluster(t, 3, 3)
	l := c.leader()
	f := c.otherThan(l)
	c.cut = func(a, b tx.Address) bool { return a == f || b == f }
	n := c.members[l].node
	for i := range 5 {
		n.Propose([]byte(fmt.Sprint("call ", i)))
	}
	c.run(5)
	c.compact(l, n.Applied(), "state")
	c.cut = func(a, b tx.Address) bool { return false }
	c.run(20)
	s := c.members[f].snap
	if s == nil || s.Index != c.members[l].node.SnapshotIndex() {
		t.Fatalf("lagging follower got snapshot %+v, leader's at %d", s, n.SnapshotIndex())
	}
	c.replayed(f)
}

// TestCompactionAfterOverwrite: a leader cut off appends entries nobody
// else has; the new leader's log overwrites them, ending exactly where
// the node then compacts. The stale entries are in the node's records
// before the overwrite, and a replay, even from every record ever
// written, must not bring them back after the snapshot.
func TestCompactionAfterOverwrite(t *testing.T) {
	c := newCluster(t, 3, 3)
	a := c.leader()
	c.members[a].node.Propose([]byte("committed"))
	c.run(5)
	c.cut = func(x, y tx.Address) bool { return x == a || y == a }
	for i := range 3 {
		c.members[a].node.Propose([]byte(fmt.Sprint("stale ", i)))
	}
	c.run(3)
	b := c.otherThan(a)
	for i := 0; ; i++ {
		if st := c.members[b].node.Status(); st.Leader != (tx.Address{}) && st.Leader != a {
			break
		}
		if i > 200 {
			t.Fatal("no new leader")
		}
		c.step()
	}
	c.cut = func(x, y tx.Address) bool { return false }
	c.run(10)
	m := c.members[a]
	if st := m.node.Status(); st.IsLeader {
		t.Fatal("the cut-off leader still leads")
	}
	if got := commands(m); slices.ContainsFunc(got, func(s string) bool { return strings.HasPrefix(s, "stale") }) {
		t.Fatalf("stale entries applied: %q", got)
	}
	c.compact(a, m.node.Applied(), "")
	c.replayed(a)
}

// TestLeaderKeepsLogForLaggingMember: a leader compacting where
// CompactionPoint says keeps the entries a cut-off member has not
// acknowledged, so it catches up from the log when it returns, until the
// log is four times what it keeps; a member away longer gets the snapshot.
func TestLeaderKeepsLogForLaggingMember(t *testing.T) {
	c := newCluster(t, 3, 3)
	c.leader()
	c.keep = 4
	for _, a := range c.order {
		c.crash(a)
		c.start(a, nil)
	}
	l := c.leader()
	f := c.otherThan(l)
	n := c.members[l].node
	away := func(calls int) {
		c.cut = func(a, b tx.Address) bool { return a == f || b == f }
		for i := range calls {
			n.Propose([]byte(fmt.Sprint("call ", i)))
			c.step()
			if at, ok := n.CompactionPoint(n.Applied(), false); ok {
				c.compact(l, at, "")
			}
		}
		c.cut = func(a, b tx.Address) bool { return false }
		c.run(20)
	}
	away(3 * c.keep)
	if c.members[f].snap != nil {
		t.Fatalf("a member away for %d entries got a snapshot", 3*c.keep)
	}
	away(6 * c.keep)
	if c.members[f].snap == nil {
		t.Fatalf("a member away for %d entries got no snapshot: the leader's log was never bounded", 6*c.keep)
	}
}

// TestJoinBehindCompactedLog: a node joins at a position the leader
// compacted past before it added the node, so the leader's snapshot does
// not name it and Raft would drop it, leaving the node waiting for good.
// With stateless snapshots the node says at once that it is behind.
func TestJoinBehindCompactedLog(t *testing.T) {
	c := newCluster(t, 1, 1)
	c.stateless = true
	a, pos := soloWithLog(t, c, 3)
	n := c.members[a].node
	c.compact(a, n.Applied(), "")
	b := addr(1)
	c.join(b, pos)
	var behind error
	c.onError = func(to tx.Address, err error) bool {
		if to == b && errors.Is(err, replica.ErrBehindLog) {
			behind = err
			c.members[b].up = false
			return true
		}
		return false
	}
	if err := n.AddLearner(b); err != nil {
		t.Fatal(err)
	}
	c.run(20)
	if behind == nil {
		t.Fatal("a node joining behind the leader's snapshot was not told")
	}
}

// TestRecordsCutBehindState: a node told where its records stood when its
// state was stored (Config.After) refuses records that end before that,
// none at all included (which would otherwise found a new group or join
// again), and records of another history.
func TestRecordsCutBehindState(t *testing.T) {
	c := newCluster(t, 1, 1)
	a := c.order[0]
	c.leader()
	m := c.members[a]
	for i := range 4 {
		m.node.Propose([]byte(fmt.Sprint("call ", i)))
		c.step()
	}
	head := m.node.Head()
	cfg := c.config(a)
	cfg.After = &head
	if _, err := replica.Start(cfg, m.disk, nil); err != nil {
		t.Fatalf("the records as stored: %v", err)
	}
	for name, recs := range map[string][][]byte{
		"the last record cut": m.disk[:len(m.disk)-1],
		"no records":          nil,
	} {
		if _, err := replica.Start(cfg, recs, []tx.Address{a}); !errors.Is(err, replica.ErrRecords) {
			t.Errorf("%s: %v, want ErrRecords", name, err)
		}
	}
	other := head
	other.Last[0] ^= 1
	cfg.After = &other
	if _, err := replica.Start(cfg, m.disk, nil); !errors.Is(err, replica.ErrRecords) {
		t.Errorf("records of another history: %v, want ErrRecords", err)
	}
	// Records written after the state are fine.
	m.node.Propose([]byte("later"))
	c.step()
	cfg.After = &head
	if _, err := replica.Start(cfg, m.disk, nil); err != nil {
		t.Errorf("records written after the state: %v", err)
	}
	// A tail cut forks the chain: records that go on past the state's
	// head on the other fork are refused.
	c.crash(a)
	m.disk = m.disk[:len(m.disk)-4]
	c.start(a, nil)
	for i := range 4 {
		c.members[a].node.Propose([]byte(fmt.Sprint("fork ", i)))
		c.step()
	}
	if h := c.members[a].node.Head(); h.Next <= head.Next {
		t.Fatalf("the fork ends at %d, not past %d", h.Next, head.Next)
	}
	if _, err := replica.Start(cfg, c.members[a].disk, nil); !errors.Is(err, replica.ErrRecords) {
		t.Errorf("records of another fork past the state's head: %v, want ErrRecords", err)
	}
}

// soloWithLog is a group of one that applied six commands "old 0".."old 5";
// it returns the member and the position `back` entries before its last.
func soloWithLog(t *testing.T, c *cluster, back uint64) (tx.Address, replica.Position) {
	t.Helper()
	a := c.order[0]
	c.leader()
	n := c.members[a].node
	for i := range 6 {
		n.Propose([]byte(fmt.Sprint("old ", i)))
	}
	c.run(3)
	pos, err := n.PositionAt(n.Applied() - back)
	if err != nil {
		t.Fatal(err)
	}
	return a, pos
}

// join starts b as a new node of c at pos, as a provisioned enclave does.
func (c *cluster) join(b tx.Address, pos replica.Position) {
	c.t.Helper()
	cfg := c.config(b)
	cfg.Join = &pos
	n, err := replica.Start(cfg, nil, nil)
	if err != nil {
		c.t.Fatal(err)
	}
	c.members[b] = &member{id: b, node: n, up: true}
	c.order = append(c.order, b)
}

// TestSnapshotWithinFollowersLog: a follower whose acknowledgements were
// lost holds entries past the leader's snapshot without knowing they are
// committed; the leader, its record of the follower stale, sends the
// snapshot. Raft takes it as news of the commit index, and so does a
// node with stateless snapshots: it is not behind, and must not stop.
func TestSnapshotWithinFollowersLog(t *testing.T) {
	c := newCluster(t, 3, 3)
	c.leader()
	c.stateless = true
	for _, a := range c.order {
		c.crash(a)
		c.start(a, nil)
	}
	l := c.leader()
	f := c.otherThan(l)
	var behind error
	c.onError = func(to tx.Address, err error) bool {
		if to == f && errors.Is(err, replica.ErrBehindLog) {
			behind = err
			return true
		}
		return false
	}
	n := c.members[l].node
	// The leader replicates to f optimistically, then f's acks are lost.
	n.Propose([]byte("warm"))
	c.run(3)
	c.cut = func(a, b tx.Address) bool { return a == f && b == l }
	for i := range 6 {
		n.Propose([]byte(fmt.Sprint("a ", i)))
		c.step()
	}
	c.step()
	fn := c.members[f].node
	c.cut = func(a, b tx.Address) bool { return a == f || b == f }
	for i := range 3 {
		n.Propose([]byte(fmt.Sprint("b ", i)))
		c.step()
	}
	// In f's log, past what it knows committed.
	at := min(replica.LastIndex(fn), n.Applied())
	if at <= fn.Applied() {
		t.Fatalf("f holds entries to %d, applied %d: nothing unknown to be committed", replica.LastIndex(fn), fn.Applied())
	}
	c.compact(l, at, "")
	c.cut = func(a, b tx.Address) bool { return false }
	c.run(30)
	if behind != nil {
		t.Fatalf("a follower holding the snapshot's entry stopped: %v", behind)
	}
	if fn.Applied() < n.Applied() {
		t.Fatalf("follower applied %d, leader %d", fn.Applied(), n.Applied())
	}
}

// TestCompactionHold: while the state machine holds the log for a member
// about to join, CompactionPoint waits until the log is four times what
// it keeps, then compacts as always.
func TestCompactionHold(t *testing.T) {
	c := newCluster(t, 1, 1)
	c.keep = 4
	a := c.order[0]
	c.start(a, []tx.Address{a})
	c.leader()
	n := c.members[a].node
	held := 0
	for i := range 40 {
		n.Propose([]byte(fmt.Sprint("call ", i)))
		c.step()
		if _, ok := n.CompactionPoint(n.Applied(), false); ok {
			held++
		}
		if at, ok := n.CompactionPoint(n.Applied(), true); ok {
			if long := n.Applied() - n.SnapshotIndex(); long <= 4*uint64(c.keep) {
				t.Fatalf("compacted at %d while holding, with %d entries after the snapshot", at, long)
			}
			c.compact(a, at, "")
		}
	}
	if held == 0 || n.SnapshotIndex() == 0 {
		t.Fatalf("never due (%d) or never compacted (snapshot %d)", held, n.SnapshotIndex())
	}
}
