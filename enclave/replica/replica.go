// Package replica puts a shard's commands in one order among the shard's
// enclaves with Raft (go.etcd.io/raft/v3), the replication engine of etcd,
// which is a pure state machine: it does no I/O, so it runs inside the
// enclave while the host only carries its bytes. A Node turns ticks,
// proposals and peer messages into an Output: records the host must store
// before it sends anything, envelopes for peers, and committed entries to
// apply.
//
// What crosses the host is protected: an envelope is sealed with AES-GCM
// under a key that only the shard's enclaves hold (derived from the shard's
// state key), its sender and recipient bound as associated data, so a host
// can drop, delay, duplicate, reorder or replay envelopes (Raft tolerates
// all of them) but not forge or alter one. A record is sealed to the
// enclave (Sealer) and hash-chained to the one before it, so a host cannot
// alter, reorder or splice the stored log; it can only cut its tail (roll
// its disk back), which Raft does not tolerate: docs/sidechain.md says what
// then holds and what the chain decides.
package replica

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"

	"go.etcd.io/raft/v3"
	pb "go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/integritee-go/integritee/chain/codec"
	"github.com/integritee-go/integritee/chain/tx"
)

// Errors.
var (
	// ErrEnvelope means an envelope does not open under the shard's key
	// for this recipient: forged, altered, or for another node.
	ErrEnvelope = errors.New("replica: envelope does not authenticate")
	// ErrRecords means the stored records are not this node's unbroken
	// chain: altered, reordered, spliced or from another node.
	ErrRecords = errors.New("replica: stored records are broken")
	// ErrUnknownPeer means a message names a node this one cannot address.
	ErrUnknownPeer = errors.New("replica: unknown peer")
	// ErrLogLost means Raft found this node's log shorter than what it
	// acknowledged before (its host rolled the stored records back, or
	// lost them): the node stops for good and the enclave must rejoin the
	// group as a new member with a state from its peers.
	ErrLogLost = errors.New("replica: this node lost log entries it had acknowledged; it must rejoin")
	// ErrNoTakeOver means ForceSolo refused: the log cannot be taken over
	// safely as it is. Nothing changed.
	ErrNoTakeOver = errors.New("replica: cannot take the group over")
	// ErrBehindLog means the leader sent a snapshot beyond what this node
	// applied: it compacted the entries between, and a snapshot carries no
	// state (the state machine keeps its own), so the state machine can
	// only go on from a newer state.
	ErrBehindLog = errors.New("replica: the leader's log starts after this node's state")
)

// Sealer seals records to this enclave (enclave/seal under the TEE's
// sealing key in the enclave; any AEAD in tests).
type Sealer interface {
	Seal(plaintext []byte) ([]byte, error)
	Open(blob []byte) ([]byte, error)
}

// Config configures a Node.
type Config struct {
	// Self is this enclave's signer: its identity among the replicas.
	Self tx.Address
	// ShardKey is the shard's state key, which every enclave of the
	// shard holds; envelopes are sealed under a key derived from it.
	ShardKey []byte
	// Sealer seals the node's records.
	Sealer Sealer
	// ElectionTicks and HeartbeatTicks are Raft's timeouts in ticks
	// (defaults 10 and 1); the host ticks at a fixed rate.
	ElectionTicks, HeartbeatTicks int
	// KeepEntries and KeepBytes are the log kept behind the state
	// machine's stored state when CompactionPoint compacts (defaults
	// DefaultKeepEntries, DefaultKeepBytes): a follower that lags less
	// catches up from the log, and a new member provisioned from a state
	// within it joins from its position (Join). The log is compacted once
	// it holds twice as much.
	KeepEntries, KeepBytes int
	// Join, for a new node without records, is the position of the state
	// the state machine starts from (provisioned from a peer): the node's
	// log starts there, and the leader sends the entries after it.
	Join *Position
	// StatelessSnapshots says the state machine puts no state in its
	// snapshots (it keeps its own, Compact's data is empty): a node that
	// is sent one beyond what it applied cannot go on from it, and Receive
	// says so (ErrBehindLog) rather than let Raft restore it or, if its
	// configuration does not name this node, drop it while the node waits.
	StatelessSnapshots bool
	// After, if set, is the head of the node's records when the state
	// machine stored its state (Head): records that end before it were
	// cut, and are refused.
	After *Head
}

// Head is where a node's record chain stood: the sequence number the
// next record gets and the hash of the last one.
type Head struct {
	Next uint64   `cbor:"next"`
	Last [32]byte `cbor:"last"`
}

// Compaction defaults: what a restart replays and the enclave holds is
// about 1–2 times this; 16 MiB is some 10–20 s of calls at full load and
// hours of chain blocks when idle (docs/sidechain.md).
const (
	DefaultKeepEntries = 4096
	DefaultKeepBytes   = 16 << 20
)

// Position is a point of the log: an entry's index and term, and the
// group's configuration once it is applied. A checkpoint of the state
// machine records it, so a node provisioned with that state starts its
// log there.
type Position struct {
	Index    uint64       `cbor:"index"`
	Term     uint64       `cbor:"term"`
	Voters   []tx.Address `cbor:"voters"`
	Learners []tx.Address `cbor:"learners,omitempty"`
}

// ID is the Raft node ID of an enclave signer.
func ID(a tx.Address) uint64 {
	h := sha256.Sum256(append([]byte("integritee-replica-id-v1"), a[:]...))
	return binary.BigEndian.Uint64(h[:8]) | 1 // never 0, which Raft reserves
}

// Envelope is a message for a peer.
type Envelope struct {
	To   tx.Address
	Data []byte
}

// Entry is a committed command.
type Entry struct {
	Index, Term uint64
	Command     []byte
}

// Output is the work a Ready hands the host and the state machine. The
// host must store Records durably, in order, before it sends Messages.
type Output struct {
	Records   [][]byte
	Messages  []Envelope
	Committed []Entry
	// Snapshot, if not nil, is a state received from the leader that
	// replaces the state machine's (its data as given to Compact).
	Snapshot *Snapshot
	// Reads answer ReadIndex: the commit index the group's leader
	// confirmed with a quorum after the request, by request ID.
	Reads []Read
	// MembershipChanged reports a committed change of the voters. A
	// snapshot names the voters it was taken under and a voter restores
	// only one that names it, so the state machine should Compact soon
	// after, so that a new voter behind the compacted log can catch up.
	MembershipChanged bool
}

// Read is the answer to a ReadIndex: once the state machine applied Index,
// a read sees every entry committed before the request.
type Read struct {
	ID    []byte
	Index uint64
}

// Snapshot is a state machine state at a log index.
type Snapshot struct {
	Index, Term uint64
	Data        []byte
}

// Status is what a node knows of the group.
type Status struct {
	Leader   tx.Address // zero if none is known
	IsLeader bool
	Term     uint64
	Commit   uint64
	Voters   []tx.Address
	Learners []tx.Address
	// CaughtUp are the learners whose log reaches the commit index (known
	// to the leader only).
	CaughtUp []tx.Address
}

// record is one stored step: what a Ready asked to persist.
type record struct {
	Seq       uint64     `cbor:"seq"`
	Prev      [32]byte   `cbor:"prev"`
	Self      tx.Address `cbor:"self"`
	HardState []byte     `cbor:"hard_state,omitempty"`
	Entries   [][]byte   `cbor:"entries,omitempty"`
	Snapshot  []byte     `cbor:"snapshot,omitempty"`
	// Peers maps node IDs this node learned to their signers, so a
	// restarted node can address them.
	Peers []tx.Address `cbor:"peers,omitempty"`
	// Base marks a record written by Compact: its Snapshot, HardState
	// and Peers restate the node's Raft state but for the entries after
	// the snapshot, which the records from From on hold. A replay starts
	// there; the host may drop the records before it.
	Base *base `cbor:"base,omitempty"`
}

// base names the first record a replay needs, by its sequence number and
// the hash it chains from.
type base struct {
	From     uint64   `cbor:"from"`
	FromPrev [32]byte `cbor:"from_prev"`
}

// recordInfo is what Compact needs to know of a stored record: after a
// record that sets the log's end (an append, or a received snapshot), the
// log ends at last.
type recordInfo struct {
	seq    uint64
	prev   [32]byte
	last   uint64
	setEnd bool
}

// Node is one replica. It is not safe for concurrent use.
type Node struct {
	cfg     Config
	rn      *raft.RawNode
	storage *raft.MemoryStorage
	aead    cipher.AEAD
	peers   map[uint64]tx.Address
	newPeer []tx.Address // learned since the last record
	seq     uint64
	prev    [32]byte
	rd      *raft.Ready
	applied uint64   // the last committed index handed out
	solo    bool     // founded alone and not yet leading
	pending [][]byte // records made outside a Ready (ForceSolo, Join)
	broken  error    // set once Raft panicked: the node is unusable
	// infos describe the stored records from the first a replay needs.
	infos []recordInfo
	// confs are the configurations after each applied configuration
	// change since the snapshot (whose own is the one before them).
	confs []confAt
	// logBytes is the size of the commands handed out since the snapshot.
	logBytes int
}

// confAt is the group's configuration from a log index on.
type confAt struct {
	index uint64
	cs    *pb.ConfState
}

// guard turns a Raft panic (Raft panics when it finds its log lost, e.g.
// a commit index beyond its last entry) into ErrLogLost and disables the
// node, so that no message a host replays can crash the enclave.
func (n *Node) guard(err *error) {
	if n.broken != nil {
		*err = n.broken
		return
	}
	if r := recover(); r != nil {
		n.broken = fmt.Errorf("%w: %v", ErrLogLost, r)
		*err = n.broken
	}
}

// Start starts a node from its stored records (nil for a new node). A new
// node with voters bootstraps a group of them (the shard's first enclave
// passes itself); a new node without voters waits to be added by a
// leader, which then sends it the log or a snapshot.
func Start(cfg Config, records [][]byte, voters []tx.Address) (*Node, error) {
	if cfg.ElectionTicks == 0 {
		cfg.ElectionTicks = 10
	}
	if cfg.HeartbeatTicks == 0 {
		cfg.HeartbeatTicks = 1
	}
	k, err := hkdf.Key(sha256.New, cfg.ShardKey, nil, "integritee-replica-envelope-v1", 32)
	if err != nil {
		return nil, fmt.Errorf("replica: derive key: %w", err)
	}
	blk, err := aes.NewCipher(k)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(blk)
	if err != nil {
		return nil, err
	}
	if cfg.KeepEntries <= 0 {
		cfg.KeepEntries = DefaultKeepEntries
	}
	if cfg.KeepBytes <= 0 {
		cfg.KeepBytes = DefaultKeepBytes
	}
	n := &Node{cfg: cfg, storage: raft.NewMemoryStorage(), aead: aead, peers: map[uint64]tx.Address{ID(cfg.Self): cfg.Self}}
	if err := n.replay(records, cfg.After); err != nil {
		return nil, err
	}
	if len(records) == 0 && cfg.Join != nil {
		if err := n.join(*cfg.Join); err != nil {
			return nil, err
		}
	}
	if err := n.restart(); err != nil {
		return nil, err
	}
	rn := n.rn
	if len(records) == 0 && len(voters) > 0 && cfg.Join == nil {
		ps := make([]raft.Peer, len(voters))
		for i, v := range voters {
			n.learn(v)
			ps[i] = raft.Peer{ID: ID(v), Context: v[:]}
		}
		if err := rn.Bootstrap(ps); err != nil {
			return nil, fmt.Errorf("replica: bootstrap: %w", err)
		}

	}
	return n, nil
}

// restart starts Raft on the node's storage, which hands out the whole
// committed log again (the state machine skips what it applied).
func (n *Node) restart() error {
	applied := uint64(0)
	if s, err := n.storage.Snapshot(); err == nil {
		applied = s.GetMetadata().GetIndex()
	}
	rn, err := raft.NewRawNode(&raft.Config{
		ID:              ID(n.cfg.Self),
		ElectionTick:    n.cfg.ElectionTicks,
		HeartbeatTick:   n.cfg.HeartbeatTicks,
		Storage:         n.storage,
		Applied:         applied,
		MaxSizePerMsg:   1 << 20,
		MaxInflightMsgs: 256,
		// CheckQuorum makes a leader that cannot hear a quorum step down,
		// so a partitioned minority stops accepting proposals; PreVote
		// keeps a rejoining node from disrupting a working leader.
		CheckQuorum: true,
		PreVote:     true,
		Logger:      discard{},
	})
	if err != nil {
		return fmt.Errorf("replica: %w", err)
	}
	// Raft hands the committed entries after the snapshot out again, and
	// with them the configuration changes and sizes counted below.
	n.rn, n.applied, n.confs, n.logBytes = rn, applied, nil, 0
	// A group of this node alone has nobody to wait for: it leads at once
	// (once its configuration is applied, see Advance) rather than after
	// an election timeout, on founding and on every restart.
	n.solo = true
	return nil
}

// ForceSolo makes this node its group's only voter on its own authority,
// for a group whose other members can never again form a quorum to remove
// themselves: the caller established that they are gone (the chain no
// longer lists them as active, docs/sidechain.md), so that no other node
// of the group can commit anything again. Every entry of this node's log
// is taken as committed: an entry the group committed had a quorum that
// included this node, so it is here; the others were never acknowledged
// to a client and each command is checked when applied. A change that
// removes every other member is appended and committed, and Raft restarts
// on the storage: the committed log is handed out again and the node leads
// at once. The record of the change comes with the next Ready.
func (n *Node) ForceSolo() (err error) {
	defer n.guard(&err)
	if n.broken != nil {
		return n.broken
	}
	if n.rd != nil {
		return errors.New("replica: ForceSolo between Ready and Advance")
	}
	st := n.rn.Status()
	self := ID(n.cfg.Self)
	if _, ok := st.Config.Voters.IDs()[self]; !ok {
		return fmt.Errorf("%w: only a voter can", ErrNoTakeOver)
	}
	var others []uint64
	for id := range st.Config.Voters.IDs() {
		if id != self {
			others = append(others, id)
		}
	}
	for id := range st.Config.Learners {
		others = append(others, id)
	}
	slices.Sort(others)
	last, err := n.storage.LastIndex()
	if err != nil {
		return err
	}
	hs, _, err := n.storage.InitialState()
	if err != nil {
		return err
	}
	// A configuration change in the tail not applied yet would be applied
	// before the removals, and could remove this node itself: Raft would
	// panic on a group without voters. Such a log is not taken over.
	if n.applied < last {
		tail, err := n.storage.Entries(n.applied+1, last+1, 1<<62)
		if err != nil {
			return err
		}
		for _, e := range tail {
			if e.GetType() != pb.EntryType_EntryNormal {
				return fmt.Errorf("%w: a configuration change at index %d is not applied yet", ErrNoTakeOver, e.GetIndex())
			}
		}
	}
	if len(st.Config.Voters[1]) > 0 || st.Config.AutoLeave {
		return fmt.Errorf("%w: the group is in a joint configuration", ErrNoTakeOver)
	}
	// The removals take a term nobody used yet: a removed member that comes
	// back may hold entries of the current term at these indexes (a lost
	// leader's, never committed), and log matching would keep them there.
	term := hs.GetTerm() + 1
	var ents []*pb.Entry
	r := record{Seq: n.seq, Prev: n.prev, Self: n.cfg.Self, Peers: n.newPeer}
	for i, id := range others {
		cc := &pb.ConfChange{Type: pb.ConfChangeType_ConfChangeRemoveNode.Enum(), NodeId: proto.Uint64(id)}
		if a, ok := n.peers[id]; ok {
			cc.Context = slices.Clone(a[:])
		}
		data, err := proto.Marshal(cc)
		if err != nil {
			return err
		}
		e := &pb.Entry{Term: proto.Uint64(term), Index: proto.Uint64(last + uint64(i) + 1), Type: pb.EntryType_EntryConfChange.Enum(), Data: data}
		b, err := proto.Marshal(e)
		if err != nil {
			return err
		}
		ents, r.Entries = append(ents, e), append(r.Entries, b)
	}
	nhs := &pb.HardState{Term: proto.Uint64(term), Vote: proto.Uint64(0), Commit: proto.Uint64(last + uint64(len(ents)))}
	b, err := proto.Marshal(nhs)
	if err != nil {
		return err
	}
	r.HardState = b
	blob, err := n.sealRecord(r, recordEnd(ents, nil))
	if err != nil {
		return err
	}
	if err := n.storage.Append(ents); err != nil {
		return fmt.Errorf("replica: append: %w", err)
	}
	if err := n.storage.SetHardState(nhs); err != nil {
		return err
	}
	n.pending = append(n.pending, blob)
	return n.restart()
}

// sealRecord seals r as the node's next record; info is what it does to
// the log's end (recordEnd).
func (n *Node) sealRecord(r record, info recordInfo) ([]byte, error) {
	plain, err := codec.Marshal(r)
	if err != nil {
		return nil, err
	}
	blob, err := n.cfg.Sealer.Seal(plain)
	if err != nil {
		return nil, err
	}
	info.seq, info.prev = r.Seq, r.Prev
	n.infos = append(n.infos, info)
	n.seq++
	n.prev = sha256.Sum256(plain)
	n.newPeer = nil
	return blob, nil
}

// recordEnd is where the log ends after a record whose entries are ents
// and whose received snapshot (not a compaction's) is snap: appended
// entries cut the log after the last, a received snapshot replaces it.
func recordEnd(ents []*pb.Entry, snap *pb.Snapshot) recordInfo {
	switch {
	case len(ents) > 0:
		return recordInfo{last: ents[len(ents)-1].GetIndex(), setEnd: true}
	case snap != nil:
		return recordInfo{last: snap.GetMetadata().GetIndex(), setEnd: true}
	}
	return recordInfo{}
}

// openedRecord is a stored record, opened and decoded.
type openedRecord struct {
	r    record
	hash [32]byte
	snap *pb.Snapshot
	ents []*pb.Entry
	hs   *pb.HardState
}

// replay rebuilds the storage from the records, checking their chain.
// The records start at the node's first (sequence 0) or, after a
// compaction, at or before the first one the last Base record names; the
// replay applies that record's snapshot, then the records from the one it
// names on, as the node applied them: every entry after the snapshot is
// as it was when Compact ran (Compact says why).
func (n *Node) replay(records [][]byte, after *Head) (err error) {
	defer func() {
		// MemoryStorage panics on a hole in the log: only a record this
		// node sealed can get here, but never let it crash the enclave.
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: %v", ErrRecords, r)
		}
	}()
	recs := make([]openedRecord, len(records))
	last := -1 // the last Base record
	for i, blob := range records {
		o, err := n.open(i, blob)
		if err != nil {
			return err
		}
		if i > 0 && (o.r.Seq != recs[i-1].r.Seq+1 || o.r.Prev != recs[i-1].hash) {
			return fmt.Errorf("%w: record %d is not the next of this node's chain", ErrRecords, i)
		}
		if o.r.Base != nil {
			if o.snap == nil {
				return fmt.Errorf("%w: record %d: base without a snapshot", ErrRecords, i)
			}
			last = i
		}
		recs[i] = o
	}
	if len(recs) == 0 {
		return checkAfter(nil, after)
	}
	from := 0
	if last < 0 {
		if recs[0].r.Seq != 0 || recs[0].r.Prev != ([32]byte{}) {
			return fmt.Errorf("%w: the records start at %d, after this node's first, without a compaction", ErrRecords, recs[0].r.Seq)
		}
	} else {
		b := recs[last].r.Base
		if recs[0].r.Seq > b.From || b.From > recs[last].r.Seq {
			return fmt.Errorf("%w: the records start at %d, the compaction needs them from %d", ErrRecords, recs[0].r.Seq, b.From)
		}
		from = int(b.From - recs[0].r.Seq)
		if recs[from].r.Prev != b.FromPrev {
			return fmt.Errorf("%w: record %d is not the one the compaction names", ErrRecords, from)
		}
		if err := n.storage.ApplySnapshot(recs[last].snap); err != nil {
			return fmt.Errorf("%w: record %d: %w", ErrRecords, last, err)
		}
	}
	for i, o := range recs {
		for _, p := range o.r.Peers {
			n.peers[ID(p)] = p
		}
		if i < from {
			continue // before the last compaction's snapshot
		}
		received := o.snap // a compaction's snapshot is applied above, or older
		if o.r.Base != nil {
			received = nil
		}
		if received != nil {
			if err := n.storage.ApplySnapshot(received); err != nil && !errors.Is(err, raft.ErrSnapOutOfDate) {
				return fmt.Errorf("%w: record %d: %w", ErrRecords, i, err)
			}
		}
		if err := n.storage.Append(o.ents); err != nil {
			return fmt.Errorf("%w: record %d: %w", ErrRecords, i, err)
		}
		if o.hs != nil {
			if err := n.storage.SetHardState(o.hs); err != nil {
				return fmt.Errorf("%w: record %d: %w", ErrRecords, i, err)
			}
		}
		info := recordEnd(o.ents, received)
		info.seq, info.prev = o.r.Seq, o.r.Prev
		n.infos = append(n.infos, info)
	}
	n.seq = recs[len(recs)-1].r.Seq + 1
	n.prev = recs[len(recs)-1].hash
	return checkAfter(recs, after)
}

// checkAfter refuses records that end before after, or that do not pass
// through its last record (another history, after a tail cut forked it).
func checkAfter(recs []openedRecord, after *Head) error {
	if after == nil {
		return nil
	}
	var next uint64
	if len(recs) > 0 {
		next = recs[len(recs)-1].r.Seq + 1
	}
	if next < after.Next {
		return fmt.Errorf("%w: they end at record %d, the stored state was written after record %d", ErrRecords, next, after.Next)
	}
	for _, o := range recs {
		if o.r.Seq+1 == after.Next && o.hash != after.Last {
			return fmt.Errorf("%w: record %d is not the one the stored state was written after", ErrRecords, o.r.Seq)
		}
	}
	return nil
}

// open opens and decodes stored record i.
func (n *Node) open(i int, blob []byte) (openedRecord, error) {
	var o openedRecord
	plain, err := n.cfg.Sealer.Open(blob)
	if err != nil {
		return o, fmt.Errorf("%w: record %d: %w", ErrRecords, i, err)
	}
	if err := codec.Unmarshal(plain, &o.r); err != nil {
		return o, fmt.Errorf("%w: record %d: %w", ErrRecords, i, err)
	}
	if o.r.Self != n.cfg.Self {
		return o, fmt.Errorf("%w: record %d is another node's", ErrRecords, i)
	}
	o.hash = sha256.Sum256(plain)
	if o.r.Snapshot != nil {
		o.snap = new(pb.Snapshot)
		if err := proto.Unmarshal(o.r.Snapshot, o.snap); err != nil {
			return o, fmt.Errorf("%w: record %d: snapshot: %w", ErrRecords, i, err)
		}
	}
	o.ents = make([]*pb.Entry, len(o.r.Entries))
	for j, b := range o.r.Entries {
		o.ents[j] = new(pb.Entry)
		if err := proto.Unmarshal(b, o.ents[j]); err != nil {
			return o, fmt.Errorf("%w: record %d: entry: %w", ErrRecords, i, err)
		}
	}
	if o.r.HardState != nil {
		o.hs = new(pb.HardState)
		if err := proto.Unmarshal(o.r.HardState, o.hs); err != nil {
			return o, fmt.Errorf("%w: record %d: hard state: %w", ErrRecords, i, err)
		}
	}
	return o, nil
}

// join starts a new node's log at p: a snapshot of p with the state the
// state machine was provisioned with, recorded like a received one.
func (n *Node) join(p Position) error {
	cs := &pb.ConfState{}
	for _, v := range p.Voters {
		n.learn(v)
		cs.Voters = append(cs.Voters, ID(v))
	}
	for _, l := range p.Learners {
		n.learn(l)
		cs.Learners = append(cs.Learners, ID(l))
	}
	if p.Index == 0 || len(cs.Voters) == 0 {
		return fmt.Errorf("replica: join at index %d with %d voters", p.Index, len(cs.Voters))
	}
	snap := &pb.Snapshot{Metadata: &pb.SnapshotMetadata{Index: proto.Uint64(p.Index), Term: proto.Uint64(p.Term), ConfState: cs}}
	if err := n.storage.ApplySnapshot(snap); err != nil {
		return fmt.Errorf("replica: join: %w", err)
	}
	b, err := proto.Marshal(snap)
	if err != nil {
		return err
	}
	r := record{Seq: n.seq, Prev: n.prev, Self: n.cfg.Self, Snapshot: b, Peers: n.newPeer}
	blob, err := n.sealRecord(r, recordEnd(nil, snap))
	if err != nil {
		return err
	}
	n.pending = append(n.pending, blob)
	return nil
}

func (n *Node) learn(a tx.Address) {
	if _, ok := n.peers[ID(a)]; !ok {
		n.peers[ID(a)] = a
		n.newPeer = append(n.newPeer, a)
	}
}

// Tick advances Raft's clock by one tick.
func (n *Node) Tick() (err error) {
	defer n.guard(&err)
	if n.broken == nil {
		n.rn.Tick()
	}
	return nil
}

// Propose proposes a command. A follower forwards it to the leader; it is
// applied once it appears in Output.Committed, and is lost (never
// committed) if leadership changes first: the proposer then proposes
// again, and the state machine discards a command it already applied.
func (n *Node) Propose(cmd []byte) (err error) {
	defer n.guard(&err)
	if n.broken != nil {
		return nil
	}
	if err := n.rn.Propose(cmd); err != nil {
		return fmt.Errorf("replica: propose: %w", err)
	}
	return nil
}

// ReadIndex asks the leader for the group's commit index, confirmed by a
// quorum after this call (Raft's read-index, linearizable reads without a
// log entry); the answer comes in Output.Reads with id. Without a leader
// the request is dropped: the caller times out.
func (n *Node) ReadIndex(id []byte) (err error) {
	defer n.guard(&err)
	if n.broken == nil {
		n.rn.ReadIndex(id)
	}
	return nil
}

// AddVoter proposes to make a the group's voter (the leader does this for
// an enclave the registry lists for the shard, once it caught up as a
// learner).
func (n *Node) AddVoter(a tx.Address) error {
	n.learn(a)
	return n.confChange(pb.ConfChangeType_ConfChangeAddNode, a)
}

// AddLearner proposes to add a as a learner: it receives the log but does
// not count for a quorum until it is made a voter, so that a new member
// that is slow to catch up (or down) does not stall the group.
func (n *Node) AddLearner(a tx.Address) error {
	n.learn(a)
	return n.confChange(pb.ConfChangeType_ConfChangeAddLearnerNode, a)
}

// RemoveVoter proposes to remove a from the group.
func (n *Node) RemoveVoter(a tx.Address) error {
	return n.confChange(pb.ConfChangeType_ConfChangeRemoveNode, a)
}

func (n *Node) confChange(t pb.ConfChangeType, a tx.Address) (err error) {
	defer n.guard(&err)
	if n.broken != nil {
		return nil
	}
	cc := &pb.ConfChangeV2{
		Changes: []*pb.ConfChangeSingle{{Type: t.Enum(), NodeId: proto.Uint64(ID(a))}},
		Context: slices.Clone(a[:]),
	}
	if err := n.rn.ProposeConfChange(cc); err != nil {
		return fmt.Errorf("replica: change membership: %w", err)
	}
	return nil
}

// Receive opens an envelope from a peer and steps its message.
func (n *Node) Receive(data []byte) (err error) {
	defer n.guard(&err)
	if n.broken != nil {
		return nil
	}
	ns := n.aead.NonceSize()
	if len(data) < 2*len(tx.Address{})+ns {
		return ErrEnvelope
	}
	var from tx.Address
	copy(from[:], data)
	aad := slices.Concat(data[:len(from)], n.cfg.Self[:])
	nonce := data[len(from) : len(from)+ns]
	plain, err := n.aead.Open(nil, nonce, data[len(from)+ns:], aad)
	if err != nil {
		return ErrEnvelope
	}
	m := new(pb.Message)
	if err := proto.Unmarshal(plain, m); err != nil {
		return fmt.Errorf("%w: %w", ErrEnvelope, err)
	}
	if m.GetFrom() != ID(from) || m.GetTo() != ID(n.cfg.Self) {
		return fmt.Errorf("%w: message ids do not match the envelope", ErrEnvelope)
	}
	if st := n.rn.BasicStatus(); n.cfg.StatelessSnapshots && m.GetType() == pb.MessageType_MsgSnap && m.GetTerm() >= st.HardState.GetTerm() {
		// Raft would drop a snapshot whose configuration does not name
		// this node (one that joined after it was taken), and the node
		// would wait for entries the leader no longer has: say so now.
		// Not for one Raft takes without restoring it: of an older term
		// (the old leader's), at or below the commit index, or at an
		// entry this log holds (Raft moves its commit there: the leader
		// had lost track of this node's acknowledgements).
		md := m.GetSnapshot().GetMetadata()
		idx := md.GetIndex()
		if idx > n.applied && idx > st.HardState.GetCommit() {
			if t, err := n.storage.Term(idx); err != nil || t != md.GetTerm() {
				return fmt.Errorf("%w: snapshot at %d, applied %d", ErrBehindLog, idx, n.applied)
			}
		}
	}
	n.learn(from)
	if err := n.rn.Step(m); err != nil && !errors.Is(err, raft.ErrStepPeerNotFound) {
		return fmt.Errorf("replica: step: %w", err)
	}
	return nil
}

func (n *Node) seal(m *pb.Message) (Envelope, error) {
	to, ok := n.peers[m.GetTo()]
	if !ok {
		return Envelope{}, fmt.Errorf("%w: %x", ErrUnknownPeer, m.GetTo())
	}
	plain, err := proto.Marshal(m)
	if err != nil {
		return Envelope{}, err
	}
	nonce := make([]byte, n.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return Envelope{}, err
	}
	out := slices.Concat(n.cfg.Self[:], nonce)
	out = n.aead.Seal(out, nonce, plain, slices.Concat(n.cfg.Self[:], to[:]))
	return Envelope{To: to, Data: out}, nil
}

// Ready returns the pending work, or false if there is none. Handle it
// (store Records, send Messages, apply Committed), then call Advance.
func (n *Node) Ready() (out Output, ok bool, err error) {
	defer n.guard(&err)
	if n.broken != nil {
		return out, false, nil
	}
	if n.rd != nil {
		return Output{}, false, errors.New("replica: Ready before Advance")
	}
	if !n.rn.HasReady() && len(n.newPeer) == 0 && len(n.pending) == 0 {
		return Output{}, false, nil
	}
	rd := n.rn.Ready()
	n.rd = &rd
	// Apply the step to the in-enclave storage first, as etcd's examples
	// do: the record the host stores is the same step.
	r := record{Seq: n.seq, Prev: n.prev, Self: n.cfg.Self, Peers: n.newPeer}
	var snap *pb.Snapshot
	if !raft.IsEmptySnap(rd.Snapshot) {
		snap = rd.Snapshot
		n.confs, n.logBytes = nil, 0
		if err := n.storage.ApplySnapshot(rd.Snapshot); err != nil {
			return out, false, fmt.Errorf("replica: apply snapshot: %w", err)
		}
		b, err := proto.Marshal(rd.Snapshot)
		if err != nil {
			return out, false, err
		}
		r.Snapshot = b
		out.Snapshot = &Snapshot{Index: rd.Snapshot.GetMetadata().GetIndex(), Term: rd.Snapshot.GetMetadata().GetTerm(), Data: rd.Snapshot.GetData()}
	}
	if err := n.storage.Append(rd.Entries); err != nil {
		return out, false, fmt.Errorf("replica: append: %w", err)
	}
	for _, e := range rd.Entries {
		b, err := proto.Marshal(e)
		if err != nil {
			return out, false, err
		}
		r.Entries = append(r.Entries, b)
	}
	if !raft.IsEmptyHardState(rd.HardState) {
		if err := n.storage.SetHardState(rd.HardState); err != nil {
			return out, false, err
		}
		b, err := proto.Marshal(rd.HardState)
		if err != nil {
			return out, false, err
		}
		r.HardState = b
	}
	out.Records, n.pending = n.pending, nil
	if r.Snapshot != nil || r.Entries != nil || r.HardState != nil || r.Peers != nil {
		blob, err := n.sealRecord(r, recordEnd(rd.Entries, snap))
		if err != nil {
			return out, false, err
		}
		out.Records = append(out.Records, blob)
	}
	for _, e := range rd.CommittedEntries {
		n.applied = e.GetIndex()
		n.logBytes += len(e.GetData())
		switch e.GetType() {
		case pb.EntryType_EntryNormal:
			if len(e.GetData()) > 0 { // empty entries are a new leader's marker
				out.Committed = append(out.Committed, Entry{Index: e.GetIndex(), Term: e.GetTerm(), Command: e.GetData()})
			}
		case pb.EntryType_EntryConfChangeV2:
			cc := new(pb.ConfChangeV2)
			if err := proto.Unmarshal(e.GetData(), cc); err != nil {
				return out, false, fmt.Errorf("replica: conf change: %w", err)
			}
			if len(cc.GetContext()) == len(tx.Address{}) {
				n.learn(tx.Address(cc.GetContext()))
			}
			n.confs = append(n.confs, confAt{e.GetIndex(), n.rn.ApplyConfChange(cc)})
			out.MembershipChanged = true
		case pb.EntryType_EntryConfChange:
			cc := new(pb.ConfChange)
			if err := proto.Unmarshal(e.GetData(), cc); err != nil {
				return out, false, fmt.Errorf("replica: conf change: %w", err)
			}
			if len(cc.GetContext()) == len(tx.Address{}) {
				n.learn(tx.Address(cc.GetContext()))
			}
			n.confs = append(n.confs, confAt{e.GetIndex(), n.rn.ApplyConfChange(cc)})
			out.MembershipChanged = true
		}
	}
	if out.Snapshot != nil {
		n.applied = max(n.applied, out.Snapshot.Index)
	}
	for _, rs := range rd.ReadStates {
		out.Reads = append(out.Reads, Read{ID: rs.RequestCtx, Index: rs.Index})
	}
	for _, m := range rd.Messages {
		env, err := n.seal(m)
		if errors.Is(err, ErrUnknownPeer) {
			continue // a peer nobody introduced: Raft retries
		}
		if err != nil {
			return out, false, err
		}
		out.Messages = append(out.Messages, env)
		if m.GetType() == pb.MessageType_MsgSnap {
			// The host's delivery is never confirmed: report the snapshot
			// sent at once, so that a lost or refused one is probed for
			// and sent again rather than waited on.
			n.rn.ReportSnapshot(m.GetTo(), raft.SnapshotFinish)
		}
	}
	return out, true, nil
}

// Advance tells the node the last Ready's work is done.
func (n *Node) Advance() (err error) {
	defer n.guard(&err)
	if n.rd != nil && n.broken == nil {
		n.rn.Advance(*n.rd)
		n.rd = nil
		// Raft refuses to campaign before its configuration is applied,
		// which it is once the committed entries were handed out.
		if st := n.rn.Status(); n.solo && st.Applied >= st.HardState.GetCommit() {
			n.solo = false
			ids := st.Config.Voters.IDs()
			if _, self := ids[ID(n.cfg.Self)]; self && len(ids) == 1 && st.RaftState != raft.StateLeader {
				if err := n.rn.Campaign(); err != nil {
					return fmt.Errorf("replica: campaign: %w", err)
				}
			}
		}
	}
	return nil
}

// Head is where the node's record chain stands, once the records handed
// out so far are stored.
func (n *Node) Head() Head { return Head{Next: n.seq, Last: n.prev} }

// Applied is the index of the last committed entry Ready handed out (or
// of the last snapshot): once the state machine applied it, its state is
// the state at Applied.
func (n *Node) Applied() uint64 { return n.applied }

// SnapshotIndex is the index of the node's snapshot (0 without one): the
// log before it is gone, so a state machine whose state is older cannot
// catch up from it.
func (n *Node) SnapshotIndex() uint64 {
	// The storage's first entry is the snapshot's (index 0 without one);
	// Snapshot would clone the whole snapshot, on every batch.
	first, _ := n.storage.FirstIndex()
	return first - 1
}

// confStateAt is the group's configuration once index is applied; index
// must not be before the snapshot nor after Applied.
func (n *Node) confStateAt(index uint64) (*pb.ConfState, error) {
	for i := len(n.confs) - 1; i >= 0; i-- {
		if n.confs[i].index <= index {
			return n.confs[i].cs, nil
		}
	}
	s, err := n.storage.Snapshot()
	if err != nil {
		return nil, err
	}
	return s.GetMetadata().GetConfState(), nil
}

// PositionAt is the position of applied entry index, for the state
// machine's checkpoint of its state there.
func (n *Node) PositionAt(index uint64) (p Position, err error) {
	defer n.guard(&err)
	if index == 0 || index > n.applied || index < n.SnapshotIndex() {
		return p, fmt.Errorf("replica: no position at %d (snapshot %d, applied %d)", index, n.SnapshotIndex(), n.applied)
	}
	term, err := n.storage.Term(index)
	if err != nil {
		return p, fmt.Errorf("replica: term of %d: %w", index, err)
	}
	cs, err := n.confStateAt(index)
	if err != nil {
		return p, err
	}
	p = Position{Index: index, Term: term}
	if p.Voters, err = n.signers(cs.GetVoters()); err != nil {
		return Position{}, fmt.Errorf("replica: configuration at %d: %w", index, err)
	}
	if p.Learners, err = n.signers(cs.GetLearners()); err != nil {
		return Position{}, fmt.Errorf("replica: configuration at %d: %w", index, err)
	}
	return p, nil
}

// signers are the enclave signers of node IDs.
func (n *Node) signers(ids []uint64) ([]tx.Address, error) {
	var out []tx.Address
	for _, id := range ids {
		a, ok := n.peers[id]
		if !ok {
			return nil, fmt.Errorf("member %x has no known signer", id)
		}
		out = append(out, a)
	}
	return out, nil
}

// CompactionPoint says where to compact now that the state machine's
// state at stored is durable, if the log after the snapshot is long (more
// than twice KeepEntries entries or KeepBytes bytes): the index that keeps
// KeepEntries entries or KeepBytes bytes, whichever is less, up to stored.
// A leader also keeps what a member has not acknowledged yet (one that
// was down, or a new one joining at its position) until the log is four
// times as long; past that, such a member gets the snapshot. So does any
// node while hold is set: the state machine knows of a member about to
// join, from a position the leader cannot know yet.
func (n *Node) CompactionPoint(stored uint64, hold bool) (uint64, bool) {
	snap := n.SnapshotIndex()
	stored = min(stored, n.applied)
	long := func(k uint64) bool {
		return stored-snap > k*uint64(n.cfg.KeepEntries) || n.logBytes > int(k)*n.cfg.KeepBytes
	}
	if stored <= snap || !long(2) {
		return 0, false
	}
	if !long(4) {
		if hold {
			return 0, false
		}
		if st := n.rn.Status(); st.RaftState == raft.StateLeader {
			for id, pr := range st.Progress {
				if id != ID(n.cfg.Self) {
					stored = min(stored, pr.Match)
				}
			}
			if stored <= snap {
				return 0, false
			}
		}
	}
	ents, err := n.storage.Entries(snap+1, stored+1, math.MaxUint64)
	if err != nil {
		return 0, false
	}
	i, size := len(ents), 0
	for i > 0 && len(ents)-i < n.cfg.KeepEntries && size < n.cfg.KeepBytes {
		i--
		size += len(ents[i].GetData())
	}
	if i == 0 {
		return 0, false
	}
	return ents[i-1].GetIndex(), true
}

// Compact records that the state machine's state at index is data (kept
// by the state machine; an empty data is fine) and drops the log up to
// it: a follower further behind gets the snapshot instead. It returns a
// record for the host to store after every record handed out so far, and
// how many of the latest stored records, that one included, a replay
// needs: the host may drop the others, in the same write. index must not
// exceed Applied, and Compact must not run between Ready and Advance.
//
// The record restates the snapshot, hard state and peers, and names the
// first record that holds an entry after the snapshot still in the log:
// the one after the last record that cut the log at or before index (an
// append ending there, or a received snapshot). Every later record ends
// the log after index, so replaying them on the snapshot rebuilds the
// log after index exactly as it is now (a record's entries from index+1
// on replace what followed; Append drops those before).
func (n *Node) Compact(index uint64, data []byte) (rec []byte, keep int, err error) {
	defer n.guard(&err)
	if n.broken != nil {
		return nil, 0, n.broken
	}
	if n.rd != nil || len(n.pending) > 0 {
		return nil, 0, errors.New("replica: Compact with records not handed out")
	}
	if index > n.applied {
		return nil, 0, fmt.Errorf("replica: compact at %d, applied %d", index, n.applied)
	}
	cs, err := n.confStateAt(index)
	if err != nil {
		return nil, 0, err
	}
	snap, err := n.storage.CreateSnapshot(index, cs, data)
	if err != nil {
		return nil, 0, fmt.Errorf("replica: snapshot: %w", err)
	}
	if err := n.storage.Compact(index); err != nil {
		return nil, 0, fmt.Errorf("replica: compact: %w", err)
	}
	for i := len(n.confs) - 1; i >= 0; i-- {
		if n.confs[i].index <= index {
			n.confs = n.confs[i+1:]
			break
		}
	}
	n.logBytes = 0
	if n.applied > index {
		ents, err := n.storage.Entries(index+1, n.applied+1, math.MaxUint64)
		if err != nil {
			return nil, 0, err
		}
		for _, e := range ents {
			n.logBytes += len(e.GetData())
		}
	}
	// The first record a replay needs.
	from := base{From: n.seq, FromPrev: n.prev}
	cut := -1
	for i := len(n.infos) - 1; i >= 0; i-- {
		if n.infos[i].setEnd && n.infos[i].last <= index {
			cut = i
			break
		}
	}
	if cut+1 < len(n.infos) {
		from = base{From: n.infos[cut+1].seq, FromPrev: n.infos[cut+1].prev}
	}
	n.infos = n.infos[cut+1:]
	hs, _, err := n.storage.InitialState()
	if err != nil {
		return nil, 0, err
	}
	r := record{Seq: n.seq, Prev: n.prev, Self: n.cfg.Self, Base: &from}
	if r.Snapshot, err = proto.Marshal(snap); err != nil {
		return nil, 0, err
	}
	if r.HardState, err = proto.Marshal(hs); err != nil {
		return nil, 0, err
	}
	for _, p := range n.peers {
		r.Peers = append(r.Peers, p)
	}
	slices.SortFunc(r.Peers, func(a, b tx.Address) int { return bytes.Compare(a[:], b[:]) })
	if rec, err = n.sealRecord(r, recordInfo{}); err != nil {
		return nil, 0, err
	}
	return rec, int(r.Seq-from.From) + 1, nil
}

// Status reports the node's view of the group.
func (n *Node) Status() Status {
	st := n.rn.Status()
	s := Status{Term: st.HardState.GetTerm(), Commit: st.HardState.GetCommit(), IsLeader: st.RaftState == raft.StateLeader, Leader: n.peers[st.Lead]}
	for id := range st.Config.Voters.IDs() {
		s.Voters = append(s.Voters, n.peers[id])
	}
	for id := range st.Config.Learners {
		s.Learners = append(s.Learners, n.peers[id])
		if pr, ok := st.Progress[id]; ok && s.IsLeader && pr.Match >= s.Commit {
			s.CaughtUp = append(s.CaughtUp, n.peers[id])
		}
	}
	for _, l := range [][]tx.Address{s.Voters, s.Learners, s.CaughtUp} {
		slices.SortFunc(l, func(a, b tx.Address) int { return bytes.Compare(a[:], b[:]) })
	}
	return s
}

// discard drops Raft's logs: the enclave has no log of its own, and what
// Raft logs (elections, rejections) the host learns from Status.
type discard struct{}

func (discard) Debug(...any)            {}
func (discard) Debugf(string, ...any)   {}
func (discard) Error(...any)            {}
func (discard) Errorf(string, ...any)   {}
func (discard) Info(...any)             {}
func (discard) Infof(string, ...any)    {}
func (discard) Warning(...any)          {}
func (discard) Warningf(string, ...any) {}
func (discard) Fatal(v ...any)          { panic(fmt.Sprint(v...)) }
func (discard) Fatalf(f string, v ...any) {
	panic(fmt.Sprintf(f, v...))
}
func (discard) Panic(v ...any)            { panic(fmt.Sprint(v...)) }
func (discard) Panicf(f string, v ...any) { panic(fmt.Sprintf(f, v...)) }
