package replica_test

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"slices"
	"testing"

	"github.com/integritee-go/integritee/chain/tx"
	"github.com/integritee-go/integritee/enclave/replica"
)

// gcmSealer stands in for the TEE's sealing (enclave/seal) in tests.
type gcmSealer struct{ aead cipher.AEAD }

func newSealer(t testing.TB, who tx.Address) gcmSealer {
	k := sha256.Sum256(append([]byte("test seal"), who[:]...))
	b, err := aes.NewCipher(k[:])
	if err != nil {
		t.Fatal(err)
	}
	a, err := cipher.NewGCM(b)
	if err != nil {
		t.Fatal(err)
	}
	return gcmSealer{a}
}

func (s gcmSealer) Seal(p []byte) ([]byte, error) {
	n := make([]byte, s.aead.NonceSize())
	rand.Read(n)
	return s.aead.Seal(n, n, p, nil), nil
}

func (s gcmSealer) Open(b []byte) ([]byte, error) {
	if len(b) < s.aead.NonceSize() {
		return nil, errors.New("short")
	}
	return s.aead.Open(nil, b[:s.aead.NonceSize()], b[s.aead.NonceSize():], nil)
}

var shardKey = bytes.Repeat([]byte{7}, 32)

func addr(i int) tx.Address { return tx.Address(sha256.Sum256([]byte{byte(i)})) }

// member is one enclave with its host's disk.
type member struct {
	id      tx.Address
	node    *replica.Node
	disk    [][]byte // the host's stored records
	all     [][]byte // every record, as a host that never dropped one has them
	applied []replica.Entry
	snap    *replica.Snapshot // the last snapshot received
	reads   map[string]uint64 // ReadIndex answers
	up      bool
}

type envelope struct {
	from, to tx.Address
	data     []byte
}

// cluster runs members over a network the test controls, like a set of
// hosts that carry bytes: it may drop, duplicate and reorder them.
type cluster struct {
	t       *testing.T
	members map[tx.Address]*member
	order   []tx.Address
	queue   []envelope
	rng     *mrand.Rand
	// cut reports whether the link from a to b is down.
	cut func(a, b tx.Address) bool
	// chaos duplicates and reorders deliveries.
	chaos bool
	// onError, if set, may accept a Receive error (returns true).
	onError func(to tx.Address, err error) bool
	// keep configures the members' compaction (Config.KeepEntries);
	// stateless their Config.StatelessSnapshots.
	keep      int
	stateless bool
}

func newCluster(t *testing.T, n int, bootstrap int) *cluster {
	c := &cluster{t: t, members: map[tx.Address]*member{}, rng: mrand.New(mrand.NewPCG(1, 2)), cut: func(a, b tx.Address) bool { return false }}
	var voters []tx.Address
	for i := range bootstrap {
		voters = append(voters, addr(i))
	}
	for i := range n {
		var vs []tx.Address
		if i < bootstrap {
			vs = voters
		}
		c.start(addr(i), vs)
	}
	return c
}

func (c *cluster) config(a tx.Address) replica.Config {
	return replica.Config{Self: a, ShardKey: shardKey, Sealer: newSealer(c.t, a), KeepEntries: c.keep, StatelessSnapshots: c.stateless}
}

// compact compacts a's log at index as its state machine would, and its
// host stores the record and drops the records the node no longer needs.
func (c *cluster) compact(a tx.Address, index uint64, data string) {
	c.t.Helper()
	m := c.members[a]
	rec, keep, err := m.node.Compact(index, []byte(data))
	if err != nil {
		c.t.Fatalf("%x compact at %d: %v", a[:4], index, err)
	}
	m.disk = append(m.disk, rec)
	m.all = append(m.all, rec)
	if keep < 1 || keep > len(m.disk) {
		c.t.Fatalf("%x: keep %d of %d records", a[:4], keep, len(m.disk))
	}
	m.disk = slices.Clone(m.disk[len(m.disk)-keep:])
}

func (c *cluster) start(a tx.Address, voters []tx.Address) *member {
	c.t.Helper()
	m := c.members[a]
	if m == nil {
		m = &member{id: a}
		c.members[a] = m
		c.order = append(c.order, a)
	}
	n, err := replica.Start(c.config(a), m.disk, voters)
	if err != nil {
		c.t.Fatalf("start %x: %v", a[:4], err)
	}
	// A restarted state machine starts from nothing in this test and
	// re-applies the committed log.
	m.node, m.applied, m.up = n, nil, true
	return m
}

func (c *cluster) crash(a tx.Address) { c.members[a].up, c.members[a].node = false, nil }

// step handles every member's Ready, delivers the network's envelopes and
// ticks everyone once.
func (c *cluster) step() {
	c.t.Helper()
	for _, a := range c.order {
		m := c.members[a]
		for m.up {
			out, ok, err := m.node.Ready()
			if err != nil {
				c.t.Fatalf("%x ready: %v", a[:4], err)
			}
			if !ok {
				break
			}
			m.disk = append(m.disk, out.Records...)
			m.all = append(m.all, out.Records...)
			if out.Snapshot != nil {
				m.snap = out.Snapshot
			}
			for _, r := range out.Reads {
				if m.reads == nil {
					m.reads = map[string]uint64{}
				}
				m.reads[string(r.ID)] = r.Index
			}
			for _, e := range out.Messages {
				c.queue = append(c.queue, envelope{from: a, to: e.To, data: e.Data})
			}
			for _, e := range out.Committed {
				if n := len(m.applied); n > 0 && e.Index <= m.applied[n-1].Index {
					c.t.Fatalf("%x: entry %d applied after %d", a[:4], e.Index, m.applied[n-1].Index)
				}
				m.applied = append(m.applied, e)
			}
			m.node.Advance()
		}
	}
	q := c.queue
	c.queue = nil
	if c.chaos {
		c.rng.Shuffle(len(q), func(i, j int) { q[i], q[j] = q[j], q[i] })
		for i := range len(q) / 4 {
			q = append(q, q[i])
		}
	}
	for _, e := range q {
		m := c.members[e.to]
		if m == nil || !m.up || !c.members[e.from].up || c.cut(e.from, e.to) {
			continue
		}
		if err := m.node.Receive(e.data); err != nil {
			if c.onError != nil && c.onError(e.to, err) {
				continue
			}
			c.t.Fatalf("%x receive: %v", e.to[:4], err)
		}
	}
	for _, a := range c.order {
		if m := c.members[a]; m.up {
			if err := m.node.Tick(); err != nil {
				c.t.Fatalf("%x tick: %v", a[:4], err)
			}
		}
	}
}

func (c *cluster) run(steps int) {
	for range steps {
		c.step()
	}
}

// leader runs until the up members agree on a leader, and returns it.
// otherThan returns the last member, in c.order, that is not l.
func (c *cluster) otherThan(l tx.Address) tx.Address {
	var o tx.Address
	for _, a := range c.order {
		if a != l {
			o = a
		}
	}
	return o
}

func (c *cluster) leader() tx.Address {
	c.t.Helper()
	for range 200 {
		c.step()
		var l tx.Address
		agree := true
		for _, a := range c.order {
			m := c.members[a]
			if !m.up {
				continue
			}
			s := m.node.Status()
			if s.Leader == (tx.Address{}) || (l != tx.Address{} && s.Leader != l) {
				agree = false
				break
			}
			l = s.Leader
		}
		if agree && l != (tx.Address{}) && c.members[l].up {
			return l
		}
	}
	c.t.Fatal("no leader after 200 steps")
	return tx.Address{}
}

func commands(m *member) []string {
	var out []string
	for _, e := range m.applied {
		out = append(out, string(e.Command))
	}
	return out
}

// sameOrder checks that every up member applied the same commands in the
// same order, each once, and that want are among them.
func (c *cluster) sameOrder(want ...string) {
	c.t.Helper()
	var ref []string
	var refID tx.Address
	for _, a := range c.order {
		m := c.members[a]
		if !m.up {
			continue
		}
		got := commands(m)
		if ref == nil {
			ref, refID = got, a
			continue
		}
		if !slices.Equal(got, ref) {
			c.t.Fatalf("%x applied %q, %x applied %q", a[:4], got, refID[:4], ref)
		}
	}
	seen := map[string]bool{}
	for _, s := range ref {
		// A host that duplicates a forwarded proposal gets it committed
		// twice: Raft proposals are at least once, and the state machine
		// discards what it applied (calls carry nonces).
		if seen[s] && !c.chaos {
			c.t.Fatalf("%q applied twice", s)
		}
		seen[s] = true
	}
	for _, w := range want {
		if !seen[w] {
			c.t.Fatalf("%q not applied; applied %q", w, ref)
		}
	}
}

func TestThreeReplicasOneOrder(t *testing.T) {
	c := newCluster(t, 3, 3)
	c.chaos = true
	c.leader()
	var want []string
	for i := range 30 {
		a := c.order[i%3]
		cmd := fmt.Sprintf("call %d via %x", i, a[:2])
		want = append(want, cmd)
		if err := c.members[a].node.Propose([]byte(cmd)); err != nil {
			t.Fatal(err)
		}
		if i%4 == 0 {
			c.step()
		}
	}
	c.run(30)
	c.sameOrder(want...)
}

func TestLeaderCrashAndRestart(t *testing.T) {
	c := newCluster(t, 3, 3)
	l := c.leader()
	c.members[l].node.Propose([]byte("before"))
	c.run(5)
	c.sameOrder("before")
	c.crash(l)
	steps := 0
	var next tx.Address
	for next = c.leader(); next == l; next = c.leader() {
	}
	for _, a := range c.order {
		if a != l && c.members[a].node.Status().Leader == next {
			steps++
		}
	}
	if steps != 2 {
		t.Fatalf("survivors do not agree on the new leader")
	}
	c.members[next].node.Propose([]byte("after"))
	c.run(5)
	c.sameOrder("before", "after")
	c.start(l, nil) // from its disk
	c.run(30)
	c.sameOrder("before", "after")
	if got := commands(c.members[l]); !slices.Equal(got, []string{"before", "after"}) {
		t.Fatalf("restarted leader applied %q", got)
	}
}

func TestMinorityCannotCommit(t *testing.T) {
	c := newCluster(t, 3, 3)
	l := c.leader()
	// Isolate the leader: it must stop leading (CheckQuorum) and commit
	// nothing; the other two elect a leader and go on.
	c.cut = func(a, b tx.Address) bool { return a == l || b == l }
	c.members[l].node.Propose([]byte("lost"))
	c.run(60)
	if c.members[l].node.Status().IsLeader {
		t.Fatal("an isolated leader still leads")
	}
	other := c.otherThan(l)
	c.members[other].node.Propose([]byte("majority"))
	c.run(20)
	for _, e := range c.members[l].applied {
		if string(e.Command) == "lost" || string(e.Command) == "majority" {
			t.Fatalf("isolated node applied %q", e.Command)
		}
	}
	c.cut = func(a, b tx.Address) bool { return false }
	c.run(40)
	c.sameOrder("majority")
	for _, s := range commands(c.members[other]) {
		if s == "lost" {
			t.Fatal("a proposal made without a quorum was committed later")
		}
	}
}

func TestGroupGrowsFromOne(t *testing.T) {
	c := newCluster(t, 1, 1)
	a := c.order[0]
	c.leader()
	c.members[a].node.Propose([]byte("alone"))
	c.run(3)
	for i := 1; i <= 2; i++ {
		// As the enclave does: a learner first, a voter once caught up.
		b := addr(i)
		c.start(b, nil)
		if err := c.members[a].node.AddLearner(b); err != nil {
			t.Fatal(err)
		}
		c.run(20)
		if st := c.members[a].node.Status(); !slices.Contains(st.CaughtUp, b) {
			t.Fatalf("learner %d not caught up: %+v", i, st)
		}
		if err := c.members[a].node.AddVoter(b); err != nil {
			t.Fatal(err)
		}
		c.run(20)
	}
	if v := c.members[a].node.Status().Voters; len(v) != 3 {
		t.Fatalf("voters %d, want 3", len(v))
	}
	c.members[addr(2)].node.Propose([]byte("three"))
	c.run(10)
	c.sameOrder("alone", "three")
	// With three voters one may fail.
	c.crash(c.leader())
	c.leader()
	for _, x := range c.order {
		if c.members[x].up {
			c.members[x].node.Propose([]byte("two left " + fmt.Sprint(x[:1])))
			break
		}
	}
	c.run(30)
	c.sameOrder("alone", "three")
}

func TestSnapshotToNewVoter(t *testing.T) {
	c := newCluster(t, 1, 1)
	a := c.order[0]
	c.leader()
	for i := range 5 {
		c.members[a].node.Propose([]byte(fmt.Sprint("old ", i)))
	}
	c.run(3)
	n := c.members[a].node
	c.compact(a, n.Applied(), "state before b")
	b := addr(1)
	c.start(b, nil)
	if err := n.AddVoter(b); err != nil {
		t.Fatal(err)
	}
	c.run(10)
	// The snapshot names only a, so b cannot restore it; a compacts again
	// after the membership change, as Output.MembershipChanged asks.
	if c.members[b].snap != nil {
		t.Fatal("b restored a snapshot that does not name it")
	}
	c.compact(a, n.Applied(), "state with b")
	c.run(20)
	snap := c.members[b].snap
	if snap == nil || string(snap.Data) != "state with b" || snap.Index != n.Applied() {
		t.Fatalf("new voter got snapshot %+v, want the state at %d", snap, n.Applied())
	}
	n.Propose([]byte("new"))
	c.run(5)
	if got := commands(c.members[b]); !slices.Equal(got, []string{"new"}) {
		t.Fatalf("b applied %q after the snapshot", got)
	}
}

// TestHostCannotForge: a host holds envelopes and records, never the keys.
// An altered envelope is refused; so is a record log altered, reordered,
// spliced from another node or with a record missing in the middle.
func TestHostCannotForge(t *testing.T) {
	c := newCluster(t, 3, 3)
	l := c.leader()
	c.members[l].node.Propose([]byte("x"))
	c.run(5)

	b := c.order[0]
	if b == l {
		b = c.order[1]
	}
	out, ok, err := c.members[l].node.Ready()
	for !ok && err == nil {
		c.members[l].node.Tick()
		out, ok, err = c.members[l].node.Ready()
	}
	if err != nil {
		t.Fatal(err)
	}
	c.members[l].node.Advance()
	if len(out.Messages) == 0 {
		t.Fatal("no message to tamper with")
	}
	env := out.Messages[0]
	recipient := c.members[env.To].node
	for i := range env.Data {
		bad := slices.Clone(env.Data)
		bad[i] ^= 1
		if err := recipient.Receive(bad); !errors.Is(err, replica.ErrEnvelope) {
			t.Fatalf("byte %d flipped: %v", i, err)
		}
	}
	if err := recipient.Receive(env.Data[:10]); !errors.Is(err, replica.ErrEnvelope) {
		t.Fatalf("truncated envelope: %v", err)
	}
	// For another recipient, it does not open.
	for _, a := range c.order {
		if a != env.To && a != l {
			if err := c.members[a].node.Receive(env.Data); !errors.Is(err, replica.ErrEnvelope) {
				t.Fatalf("envelope for %x opened at %x: %v", env.To[:4], a[:4], err)
			}
		}
	}
	// A message under another shard's key does not open either.
	other, err := replica.Start(replica.Config{Self: l, ShardKey: bytes.Repeat([]byte{8}, 32), Sealer: newSealer(t, l)}, nil, []tx.Address{l, env.To})
	if err != nil {
		t.Fatal(err)
	}
	other.Tick()
	for range 30 {
		other.Tick()
	}
	o, _, _ := other.Ready()
	for _, e := range o.Messages {
		if err := recipient.Receive(e.Data); !errors.Is(err, replica.ErrEnvelope) {
			t.Fatalf("other shard's envelope: %v", err)
		}
	}

	disk := c.members[b].disk
	if len(disk) < 3 {
		t.Fatalf("only %d records", len(disk))
	}
	cases := map[string][][]byte{
		"reordered":     append([][]byte{disk[1], disk[0]}, disk[2:]...),
		"gap":           append([][]byte{disk[0]}, disk[2:]...),
		"other node's":  c.members[l].disk,
		"altered":       append([][]byte{disk[0], append(slices.Clone(disk[1][:len(disk[1])-1]), disk[1][len(disk[1])-1]^1)}, disk[2:]...),
		"first missing": disk[1:],
	}
	for name, recs := range cases {
		if _, err := replica.Start(c.config(b), recs, nil); !errors.Is(err, replica.ErrRecords) {
			t.Errorf("%s records: %v", name, err)
		}
	}
	// A cut tail is a rollback: it opens (docs/sidechain.md says what
	// keeps it from doing harm).
	if _, err := replica.Start(c.config(b), disk[:len(disk)-1], nil); err != nil {
		t.Fatalf("prefix of the records: %v", err)
	}
}

// FuzzReceive: whatever a host hands a node, Receive returns an error or
// steps a message, and never panics.
func FuzzReceive(f *testing.F) {
	c := newCluster(&testing.T{}, 2, 2)
	for range 30 {
		c.step()
	}
	for _, a := range c.order {
		out, _, _ := c.members[a].node.Ready()
		for _, e := range out.Messages {
			f.Add(e.Data)
		}
		c.members[a].node.Advance()
	}
	f.Add([]byte{})
	f.Add(bytes.Repeat([]byte{1}, 100))
	n, err := replica.Start(replica.Config{Self: addr(1), ShardKey: shardKey, Sealer: newSealer(f, addr(1))}, nil, []tx.Address{addr(0), addr(1)})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		_ = n.Receive(data)
		for {
			_, ok, err := n.Ready()
			if err != nil || !ok {
				break
			}
			n.Advance()
		}
	})
}

// TestRolledBackNodeStops: a host that restores an older copy of its
// enclave's records makes the node forget entries it acknowledged. When
// the leader's messages show it, the node stops with ErrLogLost instead of
// crashing (Raft panics on a lost log) and stays stopped; the group goes
// on without it.
func TestRolledBackNodeStops(t *testing.T) {
	c := newCluster(t, 3, 3)
	l := c.leader()
	var victim tx.Address
	for _, a := range c.order {
		if a != l {
			victim = a
			break
		}
	}
	c.members[l].node.Propose([]byte("a"))
	c.run(5)
	old := slices.Clone(c.members[victim].disk[:2])
	for i := range 5 {
		c.members[l].node.Propose([]byte(fmt.Sprint("b", i)))
	}
	c.run(5)
	c.crash(victim)
	c.members[victim].disk = old
	c.start(victim, nil)
	var lost error
	c.onError = func(to tx.Address, err error) bool {
		if to == victim && errors.Is(err, replica.ErrLogLost) {
			lost = err
			c.members[victim].up = false
			return true
		}
		return false
	}
	c.run(20)
	if lost == nil {
		t.Fatal("a rolled-back node did not notice")
	}
	if err := c.members[victim].node.Tick(); !errors.Is(err, replica.ErrLogLost) {
		t.Fatalf("after ErrLogLost, Tick: %v", err)
	}
	if _, _, err := c.members[victim].node.Ready(); !errors.Is(err, replica.ErrLogLost) {
		t.Fatalf("after ErrLogLost, Ready: %v", err)
	}
	c.members[l].node.Propose([]byte("c"))
	c.run(10)
	c.sameOrder("a", "b4", "c")
}

// TestReadIndex: a follower's read index covers every entry committed
// before the request, so a read there after it applied that index sees a
// call another node proposed (read your writes across workers); without
// a quorum no answer comes.
func TestReadIndex(t *testing.T) {
	c := newCluster(t, 3, 3)
	l := c.leader()
	c.members[l].node.Propose([]byte("x"))
	c.run(5)
	idx := c.members[l].applied[len(c.members[l].applied)-1].Index
	f := c.otherThan(l)
	if err := c.members[f].node.ReadIndex([]byte("r1")); err != nil {
		t.Fatal(err)
	}
	c.run(5)
	got, ok := c.members[f].reads["r1"]
	if !ok || got < idx {
		t.Fatalf("read index %d (%v), want at least %d", got, ok, idx)
	}
	// Cut off, the follower gets no answer.
	c.cut = func(a, b tx.Address) bool { return a == f || b == f }
	c.members[f].node.ReadIndex([]byte("r2"))
	c.run(30)
	if _, ok := c.members[f].reads["r2"]; ok {
		t.Fatal("an isolated follower got a read index")
	}
}

// TestForceSolo: a group of two whose leader is lost for good. The
// survivor cannot commit (a quorum of two is both), takes the group over
// on its own, keeps every committed entry, goes on alone, keeps that
// configuration across a restart, and takes the old member back as a
// learner when it returns.
func TestForceSolo(t *testing.T) {
	c := newCluster(t, 2, 2)
	l := c.leader()
	c.members[l].node.Propose([]byte("a"))
	c.members[l].node.Propose([]byte("b"))
	c.run(5)
	c.sameOrder("a", "b")
	f := c.otherThan(l)
	c.crash(l)
	c.run(40)
	s := c.members[f]
	if st := s.node.Status(); st.Leader != (tx.Address{}) {
		t.Fatalf("the survivor of two sees leader %x", st.Leader[:4])
	}
	s.node.Propose([]byte("stuck"))
	c.run(5)
	if slices.Contains(commands(s), "stuck") {
		t.Fatal("one of two committed alone")
	}

	if err := s.node.ForceSolo(); err != nil {
		t.Fatal(err)
	}
	s.applied = nil // the committed log is handed out again, as on a restart
	c.run(3)
	st := s.node.Status()
	if !st.IsLeader || !slices.Equal(st.Voters, []tx.Address{f}) || len(st.Learners) != 0 {
		t.Fatalf("after ForceSolo: %+v", st)
	}
	if err := s.node.Propose([]byte("c")); err != nil {
		t.Fatal(err)
	}
	c.run(3)
	if got := commands(s); !slices.Contains(got, "c") || !slices.Contains(got, "a") || !slices.Contains(got, "b") {
		t.Fatalf("survivor applied %q", got)
	}

	// Its records are one unbroken chain with the change in it.
	c.start(f, nil)
	c.run(3)
	if st := c.members[f].node.Status(); !st.IsLeader || len(st.Voters) != 1 {
		t.Fatalf("restarted survivor: %+v", st)
	}
	if got := commands(c.members[f]); !slices.Contains(got, "c") {
		t.Fatalf("restarted survivor applied %q", got)
	}

	// The old member returns (alive after all): it cannot depose the
	// survivor, and joins again when the survivor adds it.
	c.start(l, nil)
	c.run(40)
	if st := c.members[f].node.Status(); !st.IsLeader {
		t.Fatalf("the returning member deposed the survivor: %+v", st)
	}
	if err := c.members[f].node.AddLearner(l); err != nil {
		t.Fatal(err)
	}
	c.run(30)
	if st := c.members[f].node.Status(); !slices.Contains(st.CaughtUp, l) {
		t.Fatalf("returning member not caught up: %+v", st)
	}
	if err := c.members[f].node.AddVoter(l); err != nil {
		t.Fatal(err)
	}
	c.run(30)
	c.members[l].node.Propose([]byte("d"))
	c.run(10)
	c.sameOrder("a", "b", "c", "d")
}

func TestForceSoloRefusedToLearner(t *testing.T) {
	c := newCluster(t, 1, 1)
	a := c.order[0]
	c.leader()
	b := addr(1)
	c.start(b, nil)
	if err := c.members[a].node.AddLearner(b); err != nil {
		t.Fatal(err)
	}
	c.run(20)
	if err := c.members[b].node.ForceSolo(); err == nil {
		t.Fatal("a learner took the group over")
	}
}

// TestForceSoloReturningLeaderTail: the lost leader had appended an entry
// the survivor never received, at the index where the survivor's take-over
// puts its own entries. When the old leader returns and is added again, it
// must drop that entry: the take-over's entries carry a term nobody used,
// so log matching cannot keep the stale one.
func TestForceSoloReturningLeaderTail(t *testing.T) {
	c := newCluster(t, 2, 2)
	l := c.leader()
	f := c.otherThan(l)
	c.members[l].node.Propose([]byte("a"))
	c.run(5)
	c.sameOrder("a")
	c.cut = func(a, b tx.Address) bool { return a == l && b == f }
	c.members[l].node.Propose([]byte("X"))
	c.run(2)
	c.crash(l)
	c.run(40)
	s := c.members[f]
	if err := s.node.ForceSolo(); err != nil {
		t.Fatal(err)
	}
	s.applied = nil
	c.run(3)
	s.node.Propose([]byte("c"))
	c.run(3)
	c.cut = func(a, b tx.Address) bool { return false }
	c.start(l, nil)
	c.run(10)
	if err := s.node.AddLearner(l); err != nil {
		t.Fatal(err)
	}
	c.run(30)
	if got := commands(c.members[l]); slices.Contains(got, "X") {
		t.Fatalf("the returning member applied its stale entry: %q (survivor %q)", got, commands(s))
	}
	c.sameOrder("a", "c")
}

// TestForceSoloRefusesPendingConfChange: a configuration change in the log
// that is not applied yet could remove the node itself: no take-over, and
// nothing changes.
func TestForceSoloRefusesPendingConfChange(t *testing.T) {
	c := newCluster(t, 2, 2)
	l := c.leader()
	f := c.otherThan(l)
	c.run(5) // the leader applied its election's entry: it takes changes
	// The leader proposes removing the follower; the follower receives
	// the entry but not its commit.
	if err := c.members[l].node.RemoveVoter(f); err != nil {
		t.Fatal(err)
	}
	c.step()
	c.cut = func(a, b tx.Address) bool { return a == l }
	c.step()
	c.crash(l)
	c.run(40)
	s := c.members[f]
	before := len(s.disk)
	err := s.node.ForceSolo()
	if !errors.Is(err, replica.ErrNoTakeOver) {
		t.Fatalf("ForceSolo with a pending change: %v (status %+v, disk %d)", err, s.node.Status(), before)
	}
	c.run(3)
	if len(s.disk) != before {
		t.Fatal("a refused take-over wrote records")
	}
}
