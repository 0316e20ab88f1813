package worker_test

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	cmttypes "github.com/cometbft/cometbft/types"

	"github.com/integritee-go/integritee/chain/accounts"
	"github.com/integritee-go/integritee/chain/bridge"
	"github.com/integritee-go/integritee/chain/node"
	"github.com/integritee-go/integritee/chain/tx"
	"github.com/integritee-go/integritee/chain/types"
	"github.com/integritee-go/integritee/client"
	"github.com/integritee-go/integritee/enclave/protocol"
	"github.com/integritee-go/integritee/localnet"
	"github.com/integritee-go/integritee/worker"
	"github.com/integritee-go/integritee/worker/store"
)

var testShard = sha256.Sum256([]byte("worker test shard"))

func testLogger(t *testing.T) *slog.Logger {
	if os.Getenv("WORKER_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// startNode runs a dev node on free loopback ports until the test ends.
func startNode(t *testing.T) string {
	t.Helper()
	return startNodeAt(t, time.Time{})
}

// startNodeAt is startNode with the genesis (block 1) at genesisTime, zero
// for now.
func startNodeAt(t *testing.T, genesisTime time.Time) string {
	t.Helper()
	home := t.TempDir()
	rpc, err := localnet.FreeAddr()
	if err != nil {
		t.Fatal(err)
	}
	p2p, err := localnet.FreeAddr()
	if err != nil {
		t.Fatal(err)
	}
	c := node.DefaultConfig(true)
	c.RPCListen, c.P2PListen = rpc, p2p
	c.TimeoutCommit = node.Duration(50 * time.Millisecond)
	if err := node.Init(home, node.InitOptions{Dev: true, Config: &c, GenesisTime: genesisTime}); err != nil {
		t.Fatal(err)
	}
	n, err := node.Start(home, node.StartOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Stop() })
	return n.RPCAddress()
}

// flaky wraps an enclave and breaks its connection at the failAt-th
// ProcessBlock, as if the enclave process died.
type flaky struct {
	worker.Enclave
	calls  *atomic.Int64
	failAt int64
}

func (f flaky) Call(ctx context.Context, req protocol.Request) (protocol.Reply, error) {
	if _, ok := req.(*protocol.ProcessBlock); ok && f.calls.Add(1) == f.failAt {
		f.Enclave.Close()
		return nil, fmt.Errorf("enclave died: %w", io.ErrClosedPipe)
	}
	return f.Enclave.Call(ctx, req)
}

// panicky panics inside the enclave's handler at the failAt-th
// ProcessBlock, as a bug in trusted code would: the protocol server
// answers that a restart is required and stops serving.
type panicky struct {
	protocol.Handler
	calls  *atomic.Int64
	panics *atomic.Int64
	failAt int64
}

func (p panicky) Handle(ctx context.Context, req protocol.Request) (protocol.Reply, error) {
	if _, ok := req.(*protocol.ProcessBlock); ok && p.calls.Add(1) == p.failAt {
		p.panics.Add(1)
		panic("enclave bug half-way through a block")
	}
	return p.Handler.Handle(ctx, req)
}

type harness struct {
	t      *testing.T
	rpc    string
	dir    string
	starts atomic.Int64
	panics atomic.Int64
	fakes  []*fakeEnclave
	// failAt is the ProcessBlock at which each enclave fails: the odd
	// starts lose their connection, the even ones panic.
	failAt int64
}

func (h *harness) factory(context.Context) (worker.Enclave, error) {
	f, err := newFakeEnclave(testShard)
	if err != nil {
		return nil, err
	}
	h.fakes = append(h.fakes, f)
	var calls atomic.Int64
	if h.starts.Add(1)%2 == 0 {
		return worker.Pipe(panicky{Handler: f, calls: &calls, panics: &h.panics, failAt: h.failAt}), nil
	}
	return flaky{Enclave: worker.Pipe(f), calls: &calls, failAt: h.failAt}, nil
}

// run starts a worker and returns a stop function.
func (h *harness) run(ctx context.Context) (*worker.Worker, func() error) {
	h.t.Helper()
	w, err := worker.New(ctx, worker.Config{
		NodeRPC: h.rpc, DataDir: h.dir, Enclave: h.factory, Shard: testShard, RPCListen: "127.0.0.1:0",
		Fund:   worker.DevFunder(h.rpc, accounts.DevKey("Alice"), 10*accounts.Unit),
		Logger: testLogger(h.t), PollInterval: 20 * time.Millisecond,
	})
	if err != nil {
		h.t.Fatal(err)
	}
	wctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- w.Run(wctx) }()
	select {
	case <-w.Ready():
	case err := <-done:
		h.t.Fatalf("worker stopped: %v", err)
	case <-ctx.Done():
		h.t.Fatal(ctx.Err())
	}
	return w, sync.OnceValue(func() error { cancel(); return <-done })
}

func invoke(t *testing.T, ctx context.Context, c *client.Client, nonce uint64, shard types.Hash, payload string) [32]byte {
	t.Helper()
	params, err := c.Params(ctx)
	if err != nil {
		t.Fatal(err)
	}
	call, err := tx.NewCall(bridge.Name, bridge.MethodInvoke, bridge.Invoke{Shard: shard, Ciphertext: []byte(payload)})
	if err != nil {
		t.Fatal(err)
	}
	wire, err := c.BuildMinFee(accounts.DevKey("Bob"), nonce, params, call)
	if err != nil {
		t.Fatal(err)
	}
	h, err := c.Broadcast(ctx, wire)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// waitFor polls cond until it holds.
func waitFor(t *testing.T, ctx context.Context, what string, cond func() (bool, error)) {
	t.Helper()
	for {
		ok, err := cond()
		if ok {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("waiting for %s: %v (last error %v)", what, ctx.Err(), err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// TestWorkerHost runs the host against a real dev node with a fake
// enclave: registration (funded from Alice), sync with confirmations on
// chain, a dying or panicking enclave restarted from the store, and a
// stopped worker restarted on the same data directory, catching up
// exactly.
func TestWorkerHost(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	h := &harness{t: t, rpc: startNode(t), dir: t.TempDir(), failAt: 4}
	c, err := client.New(ctx, h.rpc, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	w, stop := h.run(ctx)

	signer := w.Signer()
	reg, _, err := c.Enclave(ctx, signer)
	if err != nil {
		t.Fatalf("registration: %v", err)
	}
	if reg.MRENCLAVE != types.Hash(testShard) || reg.WorkerURL != w.RPCAddr() {
		t.Errorf("registration %+v", reg)
	}
	if id, err := worker.ReadIdentity(h.dir); err != nil || id.Signer != signer.String() || id.RPC != w.RPCAddr() {
		t.Errorf("enclave.json: %+v, %v", id, err)
	}

	// Invokes for the shard, one for another shard.
	var nonce uint64
	var last [32]byte
	for i := range 5 {
		last = invoke(t, ctx, c, nonce, testShard, fmt.Sprintf("call %d", i))
		nonce++
	}
	invoke(t, ctx, c, nonce, types.Hash{9}, "other shard")
	nonce++
	res, err := c.WaitTx(ctx, last)
	if err != nil {
		t.Fatal(err)
	}
	confirmedPast := func(height int64) func() (bool, error) {
		return func() (bool, error) {
			s, err := c.Shard(ctx, testShard)
			if err != nil || s.Shard.Latest == nil {
				return false, err
			}
			return int64(s.Shard.Latest.Height) > height, nil
		}
	}
	waitFor(t, ctx, "confirmation past the invokes", confirmedPast(res.Height))
	// The first enclave lost its connection, the second panicked: each
	// was replaced by one restored from the store.
	waitFor(t, ctx, "a restart after the enclave panicked", func() (bool, error) {
		return h.panics.Load() >= 1 && h.starts.Load() >= 3, nil
	})
	_, root := w.Processed()
	s, err := c.Shard(ctx, testShard)
	if err != nil {
		t.Fatal(err)
	}
	if s.Shard.Latest.StateHash != types.Hash(root) {
		t.Errorf("confirmed state hash %x, worker's %x", s.Shard.Latest.StateHash, root)
	}
	if s.Shard.Latest.Enclave != signer {
		t.Errorf("confirmed by %s", s.Shard.Latest.Enclave)
	}
	if err := stop(); err != nil {
		t.Fatalf("stop: %v", err)
	}
	stoppedAt, _ := w.Processed()

	// While the worker is down the chain moves on; a restarted worker
	// restores the state and processes every block after its last.
	for i := 5; i < 10; i++ {
		last = invoke(t, ctx, c, nonce, testShard, fmt.Sprintf("call %d", i))
		nonce++
	}
	if res, err = c.WaitTx(ctx, last); err != nil {
		t.Fatal(err)
	}
	h.failAt = 0
	w2, stop2 := h.run(ctx)
	defer stop2()
	if w2.Signer() != signer {
		t.Fatalf("signer changed across restart: %s -> %s", signer, w2.Signer())
	}
	waitFor(t, ctx, "catch-up", confirmedPast(res.Height))
	fake := h.fakes[len(h.fakes)-1]
	fake.mu.Lock()
	entries := len(fake.entries)
	fake.mu.Unlock()
	if entries != 10 {
		t.Errorf("state has %d entries, want the 10 invokes of the shard", entries)
	}
	if h2, _ := w2.Processed(); h2 <= stoppedAt {
		t.Errorf("restarted worker at %d, stopped at %d", h2, stoppedAt)
	}
	if err := stop2(); err != nil {
		t.Fatal(err)
	}
}

// TestSealedKeysKept: a restarted worker hands the sealed keys back, so the
// enclave keeps its identity, and a data directory serves one shard only.
func TestSealedKeysKept(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	h := &harness{t: t, rpc: startNode(t), dir: t.TempDir()}
	w, stop := h.run(ctx)
	signer := w.Signer()
	stop()
	// A restart hands the sealed keys back: the enclave must not create
	// new ones.
	created := false
	h2 := &harness{t: t, rpc: h.rpc, dir: h.dir}
	wk, err := worker.New(ctx, worker.Config{
		NodeRPC: h.rpc, DataDir: h.dir, Shard: testShard, Logger: testLogger(t),
		Enclave: func(ctx context.Context) (worker.Enclave, error) {
			e, err := h2.factory(ctx)
			return keysSpy{Enclave: e, created: &created}, err
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	wctx, wcancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- wk.Run(wctx) }()
	select {
	case <-wk.Ready():
	case err := <-done:
		t.Fatal(err)
	}
	if created || wk.Signer() != signer {
		t.Errorf("restart created keys %v, signer %s want %s", created, wk.Signer(), signer)
	}
	wcancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	// The database is bound to its shard.
	_, err = worker.New(ctx, worker.Config{NodeRPC: h.rpc, DataDir: h.dir, Shard: [32]byte{1}, Enclave: h.factory})
	if err == nil || !errors.Is(err, store.ErrWrongShard) {
		t.Errorf("other shard on the same data dir: %v", err)
	}
	if _, err := os.Stat(filepath.Join(h.dir, "worker.db")); err != nil {
		t.Error(err)
	}
}

type keysSpy struct {
	worker.Enclave
	created *bool
}

func (k keysSpy) Call(ctx context.Context, req protocol.Request) (protocol.Reply, error) {
	rep, err := k.Enclave.Call(ctx, req)
	if r, ok := rep.(*protocol.InitReply); ok && r.Created {
		*k.created = true
	}
	return rep, err
}

// TestNodeRestart: the worker rides out its node being killed (SIGKILL)
// and restarted: it retries and goes on where it was.
func TestNodeRestart(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	bin, err := localnet.Build(ctx, t.TempDir(), "github.com/integritee-go/integritee/cmd/integritee-node", "integritee-node")
	if err != nil {
		t.Fatal(err)
	}
	rpc, err1 := localnet.FreeAddr()
	p2p, err2 := localnet.FreeAddr()
	if err := errors.Join(err1, err2); err != nil {
		t.Fatal(err)
	}
	home := t.TempDir()
	startNode := func() *exec.Cmd {
		cmd := exec.Command(bin, "--dev", "--home", home, "--rpc", rpc, "--p2p", p2p, "--log-level", "error")
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
		return cmd
	}
	nodeCmd := startNode()
	h := &harness{t: t, rpc: "http://" + rpc, dir: t.TempDir()}
	w, stop := h.run(ctx)
	defer stop()
	before, _ := w.Processed()
	nodeCmd.Process.Kill()
	nodeCmd.Wait()
	startNode()

	c, err := client.New(ctx, h.rpc, client.Options{})
	for err != nil && ctx.Err() == nil {
		time.Sleep(100 * time.Millisecond)
		c, err = client.New(ctx, h.rpc, client.Options{})
	}
	if err != nil {
		t.Fatal(err)
	}
	acc, err := c.Account(ctx, accounts.DevAddress("Bob"))
	if err != nil {
		t.Fatal(err)
	}
	res, err := c.WaitTx(ctx, invoke(t, ctx, c, acc.Nonce, testShard, "after restart"))
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, ctx, "confirmation after the node restart", func() (bool, error) {
		s, err := c.Shard(ctx, testShard)
		if err != nil || s.Shard.Latest == nil {
			return false, err
		}
		return int64(s.Shard.Latest.Height) >= res.Height, nil
	})
	if after, _ := w.Processed(); after <= before {
		t.Errorf("processed %d before the restart, %d after", before, after)
	}
	if err := stop(); err != nil {
		t.Errorf("stop: %v", err)
	}
}

// TestMonthsOldChain starts a fresh worker on a chain whose block 1 is
// three months old, then restarts it. Its node client used to verify from
// block 1 and never got past "old header has expired": the worker retried
// counting the shard's enclaves (proved queries) forever and was never
// ready.
func TestMonthsOldChain(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	rpc := startNodeAt(t, time.Now().Add(-90*24*time.Hour).UTC())
	dir := t.TempDir()
	cfg := worker.Config{
		NodeRPC: rpc, DataDir: dir, Shard: testShard, RPCListen: "127.0.0.1:0",
		Enclave: func(context.Context) (worker.Enclave, error) {
			f, err := newFakeEnclave(testShard)
			if err != nil {
				return nil, err
			}
			return worker.Pipe(f), nil
		},
		Fund:   worker.DevFunder(rpc, accounts.DevKey("Alice"), 10*accounts.Unit),
		Logger: testLogger(t), PollInterval: 20 * time.Millisecond,
	}
	record := filepath.Join(dir, "trust", node.DevChainID+".json")
	kept := func() int64 {
		t.Helper()
		var r struct{ Height int64 }
		b, err := os.ReadFile(record)
		if err == nil {
			err = json.Unmarshal(b, &r)
		}
		if err != nil {
			t.Fatalf("kept header: %v", err)
		}
		return r.Height
	}
	_, stop := startWorker(t, ctx, cfg)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	first := kept()
	// The restart verifies forward from the kept header and moves it on.
	_, stop = startWorker(t, ctx, cfg)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if second := kept(); second <= first {
		t.Fatalf("kept header at %d, then %d", first, second)
	}

	// A kept header that expired (here block 1) stops the start with the
	// client's error instead of retrying forever.
	c, err := client.New(ctx, rpc, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	h1 := int64(1)
	com, err := c.RPC().Commit(ctx, &h1)
	if err != nil {
		t.Fatal(err)
	}
	vals, err := c.RPC().Validators(ctx, &h1, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	old := &client.TrustedHeader{Header: &com.SignedHeader, Validators: cmttypes.NewValidatorSet(vals.Validators)}
	if err := (client.FileTrustStore{Dir: filepath.Join(dir, "trust")}).Save(node.DevChainID, old); err != nil {
		t.Fatal(err)
	}
	w, err := worker.New(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Run(ctx); !errors.Is(err, client.ErrTrustExpired) || !strings.Contains(err.Error(), record) {
		t.Fatalf("start with an expired kept header: %v", err)
	}
}
