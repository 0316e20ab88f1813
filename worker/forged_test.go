package worker_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/integritee-go/integritee/chain/accounts"
	"github.com/integritee-go/integritee/client"
	"github.com/integritee-go/integritee/enclave"
	"github.com/integritee-go/integritee/enclave/protocol"
	"github.com/integritee-go/integritee/tee/sim"
	"github.com/integritee-go/integritee/worker"
)

// forger corrupts one commit signature of the first ProcessBlock at or
// above height from, as a malicious node or host would, and records the
// enclave's answer to it.
type forger struct {
	worker.Enclave
	chainID string
	from    int64
	done    *atomic.Bool
	mu      *sync.Mutex
	answer  *error
	height  *int64
}

func (f forger) Call(ctx context.Context, req protocol.Request) (protocol.Reply, error) {
	pb, ok := req.(*protocol.ProcessBlock)
	if !ok || f.done.Load() {
		return f.Enclave.Call(ctx, req)
	}
	sh, err := protocol.DecodeSignedHeader(pb.Block.SignedHeader, f.chainID)
	if err != nil || sh.Height < f.from || len(sh.Commit.Signatures) == 0 {
		return f.Enclave.Call(ctx, req)
	}
	f.done.Store(true)
	sh.Commit.Signatures[0].Signature[0] ^= 1
	forged := *pb
	if forged.Block.SignedHeader, err = protocol.EncodeSignedHeader(sh); err != nil {
		return nil, err
	}
	rep, err := f.Enclave.Call(ctx, &forged)
	f.mu.Lock()
	*f.answer, *f.height = err, sh.Height
	f.mu.Unlock()
	return rep, err
}

// TestForgedCommit runs the real enclave (in-process over net.Pipe) behind
// the host and forges a block's commit once: the enclave refuses it, the
// host persists nothing for it and feeds the genuine block again, and the
// worker goes on.
func TestForgedCommit(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	rpc := startNode(t)
	c, err := client.New(ctx, rpc, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var (
		done   atomic.Bool
		mu     sync.Mutex
		answer error
		height int64
	)
	factory := func(context.Context) (worker.Enclave, error) {
		b, err := sim.New(sim.Config{Measurement: &testShard})
		if err != nil {
			return nil, err
		}
		e, err := enclave.New(enclave.Config{Backend: b})
		if err != nil {
			return nil, err
		}
		return forger{Enclave: worker.Pipe(e), chainID: c.ChainID(), from: 5, done: &done, mu: &mu, answer: &answer, height: &height}, nil
	}
	w, err := worker.New(ctx, worker.Config{
		NodeRPC: rpc, DataDir: t.TempDir(), Enclave: factory, Shard: testShard,
		Fund: worker.DevFunder(rpc, accounts.DevKey("Alice"), 10*accounts.Unit), Logger: testLogger(t), PollInterval: 20 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer runWorker(t, ctx, w)()
	waitFor(t, ctx, "the forged block to be refused and passed", func() (bool, error) {
		mu.Lock()
		defer mu.Unlock()
		h, _ := w.Processed()
		return done.Load() && answer != nil && h > height+2, nil
	})
	mu.Lock()
	defer mu.Unlock()
	if !errors.Is(answer, protocol.ErrVerification) {
		t.Errorf("forged commit answered %v, want a verification error", answer)
	}
	// The genuine block was processed after the refusal: confirmations
	// continue past it.
	waitFor(t, ctx, "confirmation past the forged height", func() (bool, error) {
		s, err := c.Shard(ctx, testShard)
		if err != nil || s.Shard.Latest == nil {
			return false, err
		}
		return int64(s.Shard.Latest.Height) > height, nil
	})
}

// runWorker runs w until the returned stop is called, which waits for it
// and fails the test if it ended with an error.
func runWorker(t *testing.T, ctx context.Context, w *worker.Worker) (stop func()) {
	t.Helper()
	wctx, cancel := context.WithCancel(ctx)
	stopped := make(chan error, 1)
	go func() { stopped <- w.Run(wctx) }()
	return func() {
		cancel()
		if err := <-stopped; err != nil {
			t.Errorf("worker: %v", err)
		}
	}
}
