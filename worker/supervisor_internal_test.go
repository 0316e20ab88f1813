package worker

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/cometbft/cometbft/crypto/merkle"

	"github.com/integritee-go/integritee/chain/sidechain"
	"github.com/integritee-go/integritee/chain/types"
	"github.com/integritee-go/integritee/enclave/protocol"
	"github.com/integritee-go/integritee/worker/store"
)

// ledger is a toy enclave for the supervisor's tests: its state counts how
// often each call was applied (key sha256(call), value a uint64), and
// its state root commits to the entries and the shard block number, so
// that equal roots mean the same calls, each as often, and the same
// shard chain. Chain blocks (ProcessBlock; the block header is the height,
// 8 bytes) and direct batches (SubmitCalls) both apply calls; either makes
// a shard block when it has any.
type ledger struct {
	mu       sync.Mutex
	inited   bool
	failed   bool // stopped after an internal failure
	entries  map[[32]byte][]byte
	height   int64
	shard    uint64
	awaiting *ledgerCheckpoint
	// failNext makes the next state change fail internally after the
	// enclave applied it (CodeInternal, restart required).
	failNext bool
}

type ledgerCheckpoint struct {
	Height int64    `cbor:"height"`
	Shard  uint64   `cbor:"shard"`
	Root   [32]byte `cbor:"root"`
}

func (l *ledger) root() [32]byte {
	keys := slices.Collect(maps.Keys(l.entries))
	slices.SortFunc(keys, func(a, b [32]byte) int { return bytes.Compare(a[:], b[:]) })
	h := sha256.New()
	binary.Write(h, binary.BigEndian, l.shard)
	for _, k := range keys {
		h.Write(k[:])
		h.Write(l.entries[k])
	}
	return [32]byte(h.Sum(nil))
}

// apply applies calls and returns the changed entries.
func (l *ledger) apply(calls [][]byte) []protocol.Entry {
	var changes []protocol.Entry
	for _, c := range calls {
		k := sha256.Sum256(c)
		n := uint64(0)
		if v, ok := l.entries[k]; ok {
			n = binary.BigEndian.Uint64(v)
		}
		v := binary.BigEndian.AppendUint64(nil, n+1)
		l.entries[k] = v
		changes = append(changes, protocol.Entry{Key: k, Value: v})
	}
	return changes
}

// shardBlock makes the next shard block of calls on the current height.
func (l *ledger) shardBlock(calls [][]byte) (*sidechain.SignedHeader, [][]byte) {
	l.shard++
	leaves := make([][]byte, len(calls))
	for i, c := range calls {
		leaves[i] = sidechain.CallLeaf(sha256.Sum256(c), sidechain.LeafExecuted)
	}
	h := sidechain.Header{Number: l.shard, ChainHeight: l.height, CallsRoot: types.Hash(merkle.HashFromByteSlices(leaves))}
	return &sidechain.SignedHeader{Header: h}, leaves
}

func (l *ledger) checkpoint() []byte {
	b, err := protocol.Marshal(ledgerCheckpoint{Height: l.height, Shard: l.shard, Root: l.root()})
	if err != nil {
		panic(err)
	}
	return b
}

// changed ends a state change: the reply, or an internal failure after
// the state moved on.
func (l *ledger) changed(rep protocol.Reply) (protocol.Reply, error) {
	if l.failNext {
		l.failNext, l.failed = false, true
		return nil, protocol.Errorf(protocol.CodeInternal, "restart required: injected")
	}
	return rep, nil
}

func (l *ledger) Handle(_ context.Context, req protocol.Request) (protocol.Reply, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.failed {
		return nil, protocol.Errorf(protocol.CodeInternal, "restart required after an internal failure")
	}
	if _, ok := req.(*protocol.Init); !ok && !l.inited {
		return nil, protocol.ErrNotInitialized
	}
	switch r := req.(type) {
	case *protocol.Init:
		rep := &protocol.InitReply{MRENCLAVE: r.Shard, SignerPublic: make([]byte, 32), ShieldingPublic: []byte("shielding key"),
			SealedKeys: protocol.SealedKeys{Signer: []byte("s"), Shielding: []byte("k"), State: []byte("x")}, Height: r.InitialHeight - 1}
		rep.Created = r.SealedKeys == nil
		l.inited, l.entries, l.height = true, map[[32]byte][]byte{}, rep.Height
		if r.Checkpoint != nil {
			var cp ledgerCheckpoint
			if err := protocol.Unmarshal(r.Checkpoint, &cp); err != nil {
				return nil, protocol.Errorf(protocol.CodeSealing, "checkpoint: %v", err)
			}
			l.awaiting, rep.AwaitingEntries, rep.Height, rep.StateRoot = &cp, true, cp.Height, cp.Root
		}
		return rep, nil
	case *protocol.LoadEntries:
		es, err := r.Unpack()
		if err != nil {
			return nil, protocol.Errorf(protocol.CodeInvalidInput, "%v", err)
		}
		for _, e := range es {
			l.entries[e.Key] = bytes.Clone(e.Value)
		}
		return &protocol.LoadEntriesReply{Loaded: uint64(len(l.entries))}, nil
	case *protocol.Resume:
		if l.awaiting == nil {
			return nil, protocol.Errorf(protocol.CodeInvalidInput, "not loading")
		}
		l.height, l.shard = l.awaiting.Height, l.awaiting.Shard
		if l.root() != l.awaiting.Root {
			l.failed = true
			return nil, protocol.Errorf(protocol.CodeState, "entries do not match the checkpoint")
		}
		l.awaiting = nil
		return &protocol.ResumeReply{Height: l.height, StateRoot: l.root(), Entries: uint64(len(l.entries))}, nil
	case *protocol.StateInfo:
		return &protocol.StateInfoReply{Height: l.height, StateRoot: l.root(), Entries: uint64(len(l.entries))}, nil
	case *protocol.ReplicaStart:
		// The ledger applies what it gets: a replica that orders nothing.
		return &protocol.ReplicaStartReply{Replica: &protocol.ReplicaOutput{Height: l.height}}, nil
	}
	if l.awaiting != nil {
		return nil, protocol.ErrNotInitialized
	}
	switch r := req.(type) {
	case *protocol.ProcessBlock:
		h := int64(binary.BigEndian.Uint64(r.Block.SignedHeader))
		if h != l.height+1 {
			return nil, protocol.Errorf(protocol.CodeVerification, "block %d, want %d", h, l.height+1)
		}
		l.height = h
		rep := &protocol.ProcessBlockReply{Height: h, Changes: l.apply(r.Txs)}
		if len(r.Txs) > 0 {
			rep.Block, _ = l.shardBlock(r.Txs)
		}
		rep.StateRoot, rep.Checkpoint = l.root(), l.checkpoint()
		return l.changed(rep)
	case *protocol.SubmitCalls:
		if l.height < 1 {
			return nil, protocol.Errorf(protocol.CodeNotInitialized, "no chain block processed yet")
		}
		rep := &protocol.SubmitCallsReply{Changes: l.apply(r.Calls), Results: make([]protocol.CallResult, len(r.Calls))}
		for i := range r.Calls {
			rep.Results[i] = protocol.CallResult{Status: protocol.CallExecuted, Index: uint32(i)}
		}
		rep.Block, rep.Leaves = l.shardBlock(r.Calls)
		rep.StateRoot, rep.Checkpoint = l.root(), l.checkpoint()
		return l.changed(rep)
	}
	return nil, protocol.Errorf(protocol.CodeForbidden, "%s not supported", req.Type())
}

// A fault is injected at a request of one type.
type fault int

const (
	dieBefore     fault = iota + 1 // the process dies before the request reaches it
	dieAfter                       // the process dies after applying it: the reply is lost
	failInternal                   // the enclave fails internally after applying it
	storeFails                     // the store's commit of the reply fails
	dieAfterStore                  // the process dies right after the commit
)

func (f fault) String() string {
	return [...]string{"", "dies before", "dies after", "fails internally", "store commit fails", "dies after the commit"}[f]
}

// faults injects one fault at the next request of each planned type.
type faults struct {
	mu   sync.Mutex
	plan map[string]fault
}

func (fs *faults) take(req protocol.Request) fault {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	f := fs.plan[req.Type()]
	delete(fs.plan, req.Type())
	return f
}

func (fs *faults) set(typ string, f fault) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	fs.plan[typ] = f
}

// faulty is an enclave process (a ledger behind a pipe) with faults.
type faulty struct {
	Enclave
	l  *ledger
	fs *faults
}

var errDied = fmt.Errorf("enclave process died: %w", io.ErrClosedPipe)

func (e *faulty) Call(ctx context.Context, req protocol.Request) (protocol.Reply, error) {
	switch e.fs.take(req) {
	case dieBefore:
		e.Enclave.Close()
		return nil, errDied
	case dieAfter:
		e.Enclave.Call(ctx, req)
		e.Enclave.Close()
		return nil, errDied
	case failInternal:
		e.l.mu.Lock()
		e.l.failNext = true
		e.l.mu.Unlock()
	}
	return e.Enclave.Call(ctx, req)
}

// supervised is a worker around a supervisor of ledger enclaves, on a
// store of its own, with faults to inject.
type supervised struct {
	t      *testing.T
	w      *Worker
	st     *store.Store
	fs     *faults
	starts int
	// storeFault is the fault planned for the next commit.
	storeFault fault
	running    *faulty
}

func newSupervised(t *testing.T) *supervised {
	st, err := store.Open(filepath.Join(t.TempDir(), "worker.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	shard := [32]byte{1}
	if err := st.Bind(shard, "test-chain"); err != nil {
		t.Fatal(err)
	}
	s := &supervised{t: t, st: st, fs: &faults{plan: map[string]fault{}}}
	log := slog.New(slog.DiscardHandler)
	sup := newSupervisor(func(context.Context) (Enclave, error) {
		s.starts++
		l := &ledger{}
		s.running = &faulty{Enclave: Pipe(l), l: l, fs: s.fs}
		return s.running, nil
	}, st, protocol.Init{Shard: shard, ChainID: "test-chain", InitialHeight: 1}, log)
	sup.commit = func(tr transition) error {
		f := s.storeFault
		s.storeFault = 0
		if f == storeFails {
			return errors.New("injected store failure")
		}
		if err := sup.persist(tr); err != nil {
			return err
		}
		if f == dieAfterStore {
			s.running.Enclave.Close()
		}
		return nil
	}
	t.Cleanup(sup.Stop)
	ready := make(chan struct{})
	close(ready)
	s.w = &Worker{cfg: Config{Shard: shard}, log: log, sup: sup, store: st, ready: ready, outbox: make(chan struct{}, 1)}
	if err := sup.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	return s
}

func (s *supervised) block(ctx context.Context, h int64, calls ...string) error {
	req := &protocol.ProcessBlock{Block: protocol.Header{SignedHeader: binary.BigEndian.AppendUint64(nil, uint64(h))}}
	for _, c := range calls {
		req.Txs = append(req.Txs, []byte(c))
	}
	return s.w.applyBlock(ctx, req, nil)
}

func (s *supervised) batch(ctx context.Context, calls ...string) error {
	raw := make([][]byte, len(calls))
	for i, c := range calls {
		raw[i] = []byte(c)
	}
	outs, err := directBackend{s.w}.SubmitCalls(ctx, raw)
	if err == nil && len(outs) != len(calls) {
		err = fmt.Errorf("%d outcomes for %d calls", len(outs), len(calls))
	}
	return err
}

// agree checks that the store and the enclave (restarted if it must be)
// agree, and that every call of want was applied exactly once.
func (s *supervised) agree(ctx context.Context, want []string, height int64, shardBlocks uint64) {
	s.t.Helper()
	info, err := callAs[*protocol.StateInfoReply](ctx, s.w.sup, &protocol.StateInfo{})
	if err != nil {
		s.t.Fatalf("state info: %v", err)
	}
	cp, ok, err := s.st.Checkpoint()
	if err != nil || !ok {
		s.t.Fatalf("checkpoint: %v %v", ok, err)
	}
	last, _, err := s.st.LastShardBlock()
	if err != nil {
		s.t.Fatal(err)
	}
	p := s.w.sup.Progress()
	if info.Height != cp.Height || info.StateRoot != cp.StateRoot || p != (Progress{cp.Height, cp.StateRoot, last.Header.Number}) {
		s.t.Fatalf("enclave at %d root %x, store at %d root %x shard block %d, supervisor %+v",
			info.Height, info.StateRoot, cp.Height, cp.StateRoot, last.Header.Number, p)
	}
	if cp.Height != height || last.Header.Number != shardBlocks {
		s.t.Fatalf("store at height %d shard block %d, want %d and %d", cp.Height, last.Header.Number, height, shardBlocks)
	}
	applied := map[[32]byte]uint64{}
	if err := s.st.Entries(func(e protocol.Entry) error {
		applied[e.Key] = binary.BigEndian.Uint64(e.Value)
		return nil
	}); err != nil {
		s.t.Fatal(err)
	}
	for _, c := range want {
		if n := applied[sha256.Sum256([]byte(c))]; n != 1 {
			s.t.Errorf("call %q applied %d times", c, n)
		}
	}
	if len(applied) != len(want) {
		s.t.Errorf("%d calls applied, want %d", len(applied), len(want))
	}
}

// TestSupervisorFaults injects enclave crashes (the process dies before
// or after applying the request, or fails internally after applying it)
// and store failures (the commit fails, or the process dies right after
// it) at each step of both paths, a chain block and a direct batch, and
// at each step of the restart that follows (the fresh process dies at
// Init, while the entries load, or at Resume). The host retries as it
// does in production: the sync loop feeds the block again, a client
// resubmits a batch it got no answer for. After each, the store and the
// enclave must agree (height, state root, shard block), and every call
// must be applied exactly once: none twice, none dropped.
func TestSupervisorFaults(t *testing.T) {
	paths := []struct {
		name string
		typ  string
	}{{"chain block", protocol.TypeProcessBlock}, {"direct batch", protocol.TypeSubmitCalls}}
	for _, path := range paths {
		for _, f := range []fault{dieBefore, dieAfter, failInternal, storeFails, dieAfterStore} {
			for _, restart := range []string{"", protocol.TypeInit, protocol.TypeLoadEntries, protocol.TypeResume} {
				name := fmt.Sprintf("%s/%s", path.name, f)
				if restart != "" {
					name += "/restart dies at " + restart
				}
				t.Run(name, func(t *testing.T) {
					ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
					defer cancel()
					s := newSupervised(t)
					// A state to restore: a chain block and a batch.
					if err := s.block(ctx, 1, "a"); err != nil {
						t.Fatal(err)
					}
					if err := s.batch(ctx, "b"); err != nil {
						t.Fatal(err)
					}
					s.agree(ctx, []string{"a", "b"}, 1, 2)

					want := []string{"a", "b"}
					op := func() error { return s.batch(ctx, "c1", "c2") }
					height := int64(1)
					if path.typ == protocol.TypeProcessBlock {
						op = func() error { return s.block(ctx, 2, "c1", "c2") }
						height = 2
					}
					want = append(want, "c1", "c2")
					if f == storeFails || f == dieAfterStore {
						s.storeFault = f
					} else {
						s.fs.set(path.typ, f)
					}
					if restart != "" {
						s.fs.set(restart, dieBefore)
					}
					starts := s.starts
					// Retried as the sync loop or a client would: a
					// request that failed was not acknowledged, and a
					// restart that dies fails one more attempt.
					retried := func(what string, op func() error) {
						t.Helper()
						for attempt := 0; ; attempt++ {
							err := op()
							if err == nil {
								return
							}
							if attempt == 3 {
								t.Fatalf("%s still fails: %v", what, err)
							}
						}
					}
					err := op()
					switch {
					case f == dieAfterStore && err != nil:
						// Committed, then the process died: the next
						// request restarts it.
						t.Fatalf("op with the process dying after the commit: %v", err)
					case f != dieAfterStore && err == nil:
						t.Fatalf("op with %s: no error", f)
					case err != nil:
						retried("op", op)
					}
					// Both paths go on from the restored enclave.
					retried("batch", func() error { return s.batch(ctx, "d") })
					retried("block", func() error { return s.block(ctx, height+1, "e") })
					want = append(want, "d", "e")
					s.agree(ctx, want, height+1, 5)
					if s.starts == starts {
						t.Fatal("the enclave was never restarted")
					}
					if left := len(s.fs.plan); left != 0 {
						t.Fatalf("%d faults never injected: %v", left, s.fs.plan)
					}
				})
			}
		}
	}
}
