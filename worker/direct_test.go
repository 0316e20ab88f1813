package worker_test

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"sync/atomic"
	"testing"
	"time"

	"github.com/integritee-go/integritee/chain/accounts"
	"github.com/integritee-go/integritee/chain/tx"
	"github.com/integritee-go/integritee/client"
	"github.com/integritee-go/integritee/client/trusted"
	"github.com/integritee-go/integritee/enclave"
	"github.com/integritee-go/integritee/enclave/protocol"
	"github.com/integritee-go/integritee/enclave/shielding"
	"github.com/integritee-go/integritee/enclave/stf"
	"github.com/integritee-go/integritee/tee/sim"
	"github.com/integritee-go/integritee/worker"
)

// lossy loses the reply of the lose-th SubmitCalls after the enclave
// executed it, as if the connection broke right then: the enclave's memory
// is ahead of anything the host persisted.
type lossy struct {
	worker.Enclave
	submits *atomic.Int64
	lose    int64
}

func (l lossy) Call(ctx context.Context, req protocol.Request) (protocol.Reply, error) {
	rep, err := l.Enclave.Call(ctx, req)
	if _, ok := req.(*protocol.SubmitCalls); ok && err == nil && l.submits.Add(1) == l.lose {
		l.Enclave.Close()
		return nil, fmt.Errorf("enclave connection lost: %w", io.ErrClosedPipe)
	}
	return rep, err
}

// lossyWorkerConfig configures a worker on the node at rpc, in a new data
// directory, whose enclaves run in-process on a simulated TEE (cfg, its
// Backend set here) behind lossy: the reply of the lose-th SubmitCalls of
// the run is lost. starts counts the enclaves started.
func lossyWorkerConfig(t *testing.T, rpc string, cfg enclave.Config, lose int64, submits, starts *atomic.Int64) worker.Config {
	factory := func(context.Context) (worker.Enclave, error) {
		starts.Add(1)
		b, err := sim.New(sim.Config{Measurement: &testShard})
		if err != nil {
			return nil, err
		}
		cfg.Backend = b
		e, err := enclave.New(cfg)
		if err != nil {
			return nil, err
		}
		return lossy{Enclave: worker.Pipe(e), submits: submits, lose: lose}, nil
	}
	return worker.Config{
		NodeRPC: rpc, DataDir: t.TempDir(), Enclave: factory, Shard: testShard, RPCListen: "127.0.0.1:0",
		Fund: worker.DevFunder(rpc, accounts.DevKey("Alice"), 10*accounts.Unit), Logger: testLogger(t), PollInterval: 20 * time.Millisecond,
	}
}

// TestDirectCalls runs the real enclave (in-process) behind the worker and
// sends direct calls through the worker's JSON-RPC while the worker keeps
// processing chain blocks (a block every 50 ms): every call is executed in
// a hash-chained shard block on top of the processed chain, including the
// one whose reply the host lost (not acknowledged, the enclave restored
// from the store, the same call then executed once); the balances are
// exact; and a restarted worker continues the shard's block chain.
func TestDirectCalls(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	rpc := startNode(t)
	c, err := client.New(ctx, rpc, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var submits, starts atomic.Int64
	cfg := lossyWorkerConfig(t, rpc, enclave.Config{}, 3, &submits, &starts)
	w, stop := startWorker(t, ctx, cfg)
	tc, err := trusted.Dial(ctx, w.RPCAddr(), c, trusted.Options{})
	if err != nil {
		t.Fatal(err)
	}
	from, to := accounts.DevKey("Alice//direct"), accounts.DevKey("Bob//direct")
	shield(t, ctx, c, w, tc, from, 1000)

	const calls = 30
	var (
		sent uint64
		last *trusted.Result
		lost int
	)
	for i := range calls {
		ct, err := tc.EncryptCall(from, stf.Call{Transfer: &stf.Transfer{From: addrOf(from), To: addrOf(to), Amount: uint64(i + 1)}}, uint64(i))
		if err != nil {
			t.Fatal(err)
		}
		r, err := tc.Submit(ctx, ct)
		if err != nil && submits.Load() == 3 && lost == 0 {
			// The lost reply: not acknowledged, so not applied either.
			lost++
			r, err = tc.Submit(ctx, ct)
		}
		if err != nil || !r.Success {
			t.Fatalf("transfer %d: %+v, %v", i, r, err)
		}
		if h, _ := w.Processed(); r.Block.ChainHeight > h {
			t.Errorf("transfer %d executed on chain height %d, worker at %d", i, r.Block.ChainHeight, h)
		}
		if last != nil && (r.Block.Number != last.Block.Number+1 || r.Block.ParentHash != last.HeaderHash) {
			t.Errorf("transfer %d in block %d after block %d: not chained", i, r.Block.Number, last.Block.Number)
		}
		sent += uint64(i + 1)
		last = r
	}
	if lost != 1 || starts.Load() != 2 {
		t.Errorf("%d lost replies and %d enclave starts, want 1 and 2", lost, starts.Load())
	}
	for _, tc2 := range []struct {
		key  ed25519.PrivateKey
		want uint64
	}{{from, 1000 - sent}, {to, sent}} {
		if got, err := tc.Balance(ctx, tc2.key); err != nil || got != tc2.want {
			t.Errorf("balance of %s: %d, %v; want %d", addrOf(tc2.key), got, err, tc2.want)
		}
	}
	if n, err := tc.Nonce(ctx, from); err != nil || n != calls {
		t.Errorf("nonce %d, %v; want %d", n, err, calls)
	}
	health, err := tc.Health(ctx)
	if err != nil || health.ShardBlock != last.Block.Number {
		t.Errorf("health %+v, %v; want shard block %d", health, err, last.Block.Number)
	}
	// Every block's vote reaches the chain, one at a time or in runs
	// (confirm_sidechain_blocks), whatever the submit rounds took.
	waitFor(t, ctx, "the chain to confirm the last shard block", func() (bool, error) {
		conf, _, err := c.SidechainLatest(ctx, testShard)
		if err != nil || conf == nil {
			return false, nil
		}
		if conf.Number == last.Block.Number && conf.HeaderHash != last.HeaderHash {
			return false, fmt.Errorf("chain confirmed %s as block %d, want %s", conf.HeaderHash, conf.Number, last.HeaderHash)
		}
		return conf.Number >= last.Block.Number, nil
	})

	// A restarted worker hands the enclave the shard block head.
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	w, _ = startWorker(t, ctx, cfg)
	if tc, err = trusted.Dial(ctx, w.RPCAddr(), c, trusted.Options{}); err != nil {
		t.Fatal(err)
	}
	if h, err := tc.Health(ctx); err != nil || h.ShardBlock != last.Block.Number {
		t.Errorf("health after the restart %+v, %v; want shard block %d", h, err, last.Block.Number)
	}
	ct, err := tc.EncryptCall(from, stf.Call{Transfer: &stf.Transfer{From: addrOf(from), To: addrOf(to), Amount: 1}}, calls)
	if err != nil {
		t.Fatal(err)
	}
	r, err := tc.Submit(ctx, ct)
	if err != nil || r.Block.Number != last.Block.Number+1 || r.Block.ParentHash != last.HeaderHash {
		t.Fatalf("call after the restart: %+v, %v; want block %d after %s", r, err, last.Block.Number+1, last.HeaderHash)
	}
	if _, err := tc.Submit(ctx, ct); !errors.Is(err, trusted.ErrInvalidCall) {
		t.Errorf("replay after the restart: %v", err)
	}
}

func addrOf(k ed25519.PrivateKey) tx.Address { return tx.AddressOf(k.Public().(ed25519.PublicKey)) }

// shield has Alice shield amount to k's account in the shard of w and
// waits until w processed it.
func shield(t *testing.T, ctx context.Context, c *client.Client, w *worker.Worker, tc *trusted.Client, k ed25519.PrivateKey, amount uint64) {
	t.Helper()
	recipient := addrOf(k)
	enc, err := shielding.Encrypt(tc.ShieldingKey(), shielding.InfoShieldRecipient, recipient[:])
	if err != nil {
		t.Fatal(err)
	}
	sub, err := c.ShieldFunds(ctx, accounts.DevKey("Alice"), testShard, amount, enc)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, ctx, "the shield to be processed", func() (bool, error) {
		h, _ := w.Processed()
		return h >= sub.Height, nil
	})
}

// startWorker runs a worker until it is ready; stop (also at the end of
// the test) stops it and returns Run's result.
func startWorker(t *testing.T, ctx context.Context, cfg worker.Config) (*worker.Worker, func() error) {
	t.Helper()
	w, err := worker.New(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- w.Run(wctx) }()
	var once atomic.Bool
	var result error
	stop := func() error {
		if once.CompareAndSwap(false, true) {
			cancel()
			result = <-done
		}
		return result
	}
	t.Cleanup(func() { stop() })
	select {
	case <-w.Ready():
	case err := <-done:
		t.Fatalf("worker stopped before it was ready: %v", err)
	case <-ctx.Done():
		t.Fatal(ctx.Err())
	}
	return w, stop
}
