package worker

import (
	"bytes"
	"context"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"

	"github.com/integritee-go/integritee/chain/tx"
	"github.com/integritee-go/integritee/enclave/protocol"
	"github.com/integritee-go/integritee/worker/store"
)

// barrierEnclave is the ledger with a replica the test steers: a group of
// two voters, whether the group answers read indexes (a reachable leader),
// the group's commit index that a read gets, and this enclave's applied
// index and the chain block it waits for.
type barrierEnclave struct {
	*ledger
	mu       sync.Mutex
	leader   bool
	dropNext bool // drop the next read, as Raft does without a known leader
	commit   uint64
	applied  uint64
	awaiting int64
	asked    int // reads asked for
}

func (b *barrierEnclave) set(f func(b *barrierEnclave)) {
	b.mu.Lock()
	defer b.mu.Unlock()
	f(b)
}

func (b *barrierEnclave) output(reads [][]byte) *protocol.ReplicaOutput {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := &protocol.ReplicaOutput{Voters: []tx.Address{{1}, {2}}, AppliedIndex: b.applied, Awaiting: b.awaiting}
	for _, id := range reads {
		b.asked++
		if b.dropNext {
			b.dropNext = false
			continue
		}
		if b.leader {
			out.Reads = append(out.Reads, protocol.ReadIndex{ID: id, Index: b.commit})
		}
	}
	return out
}

func (b *barrierEnclave) Handle(ctx context.Context, req protocol.Request) (protocol.Reply, error) {
	switch r := req.(type) {
	case *protocol.ReplicaStart:
		return &protocol.ReplicaStartReply{Replica: b.output(nil)}, nil
	case *protocol.ReplicaStep:
		return &protocol.ReplicaStepReply{Replica: b.output(r.Reads)}, nil
	case *protocol.PrivateGetter:
		return &protocol.PrivateGetterReply{Response: append([]byte("answer:"), r.Request...)}, nil
	}
	return b.ledger.Handle(ctx, req)
}

// newBarrierWorker is a worker of a two-worker shard (as far as its host
// sees) on a barrierEnclave.
func newBarrierWorker(t *testing.T) (*Worker, *barrierEnclave) {
	t.Helper()
	st, err := store.Open(filepath.Join(t.TempDir(), "worker.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	shard := [32]byte{1}
	if err := st.Bind(shard, "test-chain"); err != nil {
		t.Fatal(err)
	}
	b := &barrierEnclave{ledger: &ledger{}, leader: true}
	log := slog.New(slog.DiscardHandler)
	sup := newSupervisor(func(context.Context) (Enclave, error) { return Pipe(b), nil },
		st, protocol.Init{Shard: shard, ChainID: "test-chain", InitialHeight: 1}, log)
	ready := make(chan struct{})
	close(ready)
	w := &Worker{cfg: Config{Shard: shard}, log: log, sup: sup, store: st, ready: ready, outbox: make(chan struct{}, 1),
		repl: newReplicaHost(), syncNow: make(chan struct{}, 1)}
	sup.onReplica = w.onReplica
	t.Cleanup(sup.Stop)
	if err := sup.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, _, voters := w.repl.Status(); voters != 2 {
		t.Fatalf("voters %d after the replica's start", voters)
	}
	return w, b
}

// getter runs a getter through the worker's RPC backend.
func getter(t *testing.T, w *Worker) (stale bool) {
	t.Helper()
	resp, stale, err := directBackend{w}.ExecuteGetter(context.Background(), []byte("q"))
	if err != nil || !bytes.Equal(resp, []byte("answer:q")) {
		t.Fatalf("getter: %q %v", resp, err)
	}
	return stale
}

// TestGetterReadBarrier: a getter answer is fresh when the read barrier
// holds (the group answers a read index and this enclave applied up to it,
// at once or after a moment), also when the first read was dropped; it is
// marked stale, still answered, when no leader answers (a minority) or
// this enclave does not move up to the index (it lags).
func TestGetterReadBarrier(t *testing.T) {
	t.Run("applied", func(t *testing.T) {
		w, b := newBarrierWorker(t)
		b.set(func(b *barrierEnclave) { b.commit, b.applied = 5, 5 })
		if getter(t, w) {
			t.Fatal("answer marked stale, the barrier held")
		}
	})
	t.Run("first read dropped", func(t *testing.T) {
		w, b := newBarrierWorker(t)
		b.set(func(b *barrierEnclave) { b.commit, b.applied, b.dropNext = 5, 5, true })
		if getter(t, w) {
			t.Fatal("answer marked stale: the read was not asked again")
		}
		if b.asked != 2 {
			t.Fatalf("%d reads asked, want 2", b.asked)
		}
	})
	t.Run("catches up", func(t *testing.T) {
		// The enclave waits for chain block 3 before index 7: the sync
		// is woken, and once it applied the getter answers fresh.
		w, b := newBarrierWorker(t)
		b.set(func(b *barrierEnclave) { b.commit, b.applied, b.awaiting = 7, 5, 3 })
		go func() {
			<-w.syncNow
			b.set(func(b *barrierEnclave) { b.applied, b.awaiting = 7, 0 })
			if err := w.replicaStep(context.Background(), 0); err != nil {
				t.Error(err)
			}
		}()
		if getter(t, w) {
			t.Fatal("answer marked stale, the enclave caught up")
		}
	})
	t.Run("no leader", func(t *testing.T) {
		w, b := newBarrierWorker(t)
		b.set(func(b *barrierEnclave) { b.leader, b.applied = false, 5 })
		if !getter(t, w) {
			t.Fatal("answer not marked stale without a leader")
		}
	})
	t.Run("lagging", func(t *testing.T) {
		w, b := newBarrierWorker(t)
		b.set(func(b *barrierEnclave) { b.commit, b.applied = 9, 5 })
		if !getter(t, w) {
			t.Fatal("answer not marked stale, the enclave never applied the read index")
		}
	})
	t.Run("alone", func(t *testing.T) {
		// One voter: nothing to wait for, never stale.
		w, _ := newBarrierWorker(t)
		w.onReplica(&protocol.ReplicaOutput{Voters: []tx.Address{{1}}})
		if getter(t, w) {
			t.Fatal("a lone worker's answer marked stale")
		}
	})
}

// TestReadAnswersNeverBlock: two answers for reads that share one
// barrier's channel (it asked again) do not block the output's hand-on,
// which runs in the enclave's turn.
func TestReadAnswersNeverBlock(t *testing.T) {
	w := &Worker{repl: newReplicaHost(), syncNow: make(chan struct{}, 1), log: slog.New(slog.DiscardHandler)}
	ch := make(chan uint64, 1)
	w.repl.reads["a"], w.repl.reads["b"] = ch, ch
	w.onReplica(&protocol.ReplicaOutput{Reads: []protocol.ReadIndex{{ID: []byte("a"), Index: 4}, {ID: []byte("b"), Index: 5}}})
	if got := <-ch; got != 4 {
		t.Fatalf("read index %d, want the first answer, 4", got)
	}
	if len(w.repl.reads) != 0 {
		t.Fatalf("answered reads still waiting: %v", w.repl.reads)
	}
}
