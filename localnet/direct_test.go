package localnet_test

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/integritee-go/integritee/chain/bridge"
	"github.com/integritee-go/integritee/chain/sidechain"
	"github.com/integritee-go/integritee/chain/tx"
	"github.com/integritee-go/integritee/chain/types"
	"github.com/integritee-go/integritee/client/trusted"
	"github.com/integritee-go/integritee/enclave/shielding"
	"github.com/integritee-go/integritee/enclave/stf"
	"github.com/integritee-go/integritee/localnet"
	"github.com/integritee-go/integritee/worker/rpc"
	"github.com/integritee-go/integritee/worker/rpc/api"
)

// shield moves amount of from's public funds to the incognito account to
// and waits until the worker has processed it.
func (s *shardClient) shield(ctx context.Context, from ed25519.PrivateKey, to tx.Address, amount uint64) {
	s.t.Helper()
	enc, err := shielding.Encrypt(s.pub, shielding.InfoShieldRecipient, to[:])
	if err != nil {
		s.t.Fatal(err)
	}
	sub, err := s.c.ShieldFunds(ctx, from, s.shard, amount, enc)
	if err != nil {
		s.t.Fatal(err)
	}
	s.processed(ctx, sub.Height)
}

// processed waits until the worker has processed height h.
func (s *shardClient) processed(ctx context.Context, h int64) {
	s.t.Helper()
	for {
		if got, _, err := s.health(ctx); err == nil && got >= h {
			return
		}
		select {
		case <-ctx.Done():
			s.t.Fatalf("worker did not process block %d: %v", h, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// confirmedOnChain waits until the chain's latest confirmation of the shard
// is at least block n and returns it.
func (s *shardClient) confirmedOnChain(ctx context.Context, n uint64) *sidechain.Confirmation {
	s.t.Helper()
	for {
		c, _, err := s.c.SidechainLatest(ctx, types.Hash(s.shard))
		if err == nil && c != nil && c.Number >= n {
			return c
		}
		select {
		case <-ctx.Done():
			s.t.Fatalf("shard block %d never confirmed on chain (latest %+v, %v)", n, c, err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func transferCall(from, to tx.Address, amount uint64) stf.Call {
	return stf.Call{Transfer: &stf.Transfer{From: from, To: to, Amount: amount}}
}

// TestDirectInvocation is the acceptance scenario of issue 5 on a localnet
// with one worker: Alice shields 1,000, then makes 50 direct transfers to
// Bob through the worker's JSON-RPC. Each comes back executed, proven by
// the enclave's signed shard block, before the chain has moved on; Bob's
// balance through the private getter is exact; every shard block is
// confirmed on chain with the header the client got, and the last one's
// state hash is the enclave's. A worker that hands out a shielding key its
// enclave did not register is refused by the client.
func TestDirectInvocation(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	// 400 ms blocks: a direct call takes milliseconds, so with this
	// margin "answered before the chain moved on" does not hinge on how
	// loaded the test machine is.
	net, err := localnet.Start(ctx, localnet.Config{EnclaveBinary: bins.enclave, Logger: testLogger(), BlockTime: 400 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer net.Stop()
	w := net.Workers()[0]
	s := newShardClient(t, ctx, net.NodeRPC(), w.RPCAddr(), net.Shard)
	const shielded, calls = 1000, 50
	s.shield(ctx, alice, addr(aliceInc), shielded)
	if got := s.balance(ctx, aliceInc); got != shielded {
		t.Fatalf("Alice incognito %d after the shield, want %d", got, shielded)
	}

	var (
		sent     uint64
		results  []*trusted.Result
		sameSpan int // calls executed before the chain's height moved
	)
	for i := range calls {
		amount := uint64(i%7 + 1)
		ct, err := s.tc.EncryptCall(aliceInc, transferCall(addr(aliceInc), addr(bobInc), amount), uint64(i))
		if err != nil {
			t.Fatal(err)
		}
		before := net.Node().Height()
		r, err := s.tc.Submit(ctx, ct)
		after := net.Node().Height()
		if err != nil {
			t.Fatalf("transfer %d: %v", i, err)
		}
		if !r.Success {
			t.Fatalf("transfer %d failed: %s", i, r.Error)
		}
		sent += amount
		if after == before {
			sameSpan++
		}
		// Executed on top of the chain as the worker had processed it:
		// never a block the node had not committed at submission.
		if r.Block.ChainHeight > before {
			t.Errorf("transfer %d executed on chain height %d, node at %d", i, r.Block.ChainHeight, before)
		}
		if n := len(results); n > 0 {
			prev := results[n-1]
			if r.Block.Number != prev.Block.Number+1 || r.Block.ParentHash != prev.HeaderHash {
				t.Errorf("transfer %d in block %d (parent %s) after block %d (%s)", i, r.Block.Number, r.Block.ParentHash, prev.Block.Number, prev.HeaderHash)
			}
		}
		results = append(results, r)
	}
	// Each call is answered well within a chain block: most of them before
	// the node's height moved at all (a block boundary falls inside a call
	// only as often as a call is long against a block).
	t.Logf("%d of %d direct calls executed within one chain block", sameSpan, calls)
	if sameSpan <= calls/2 {
		t.Errorf("only %d of %d direct calls executed before the chain's next block", sameSpan, calls)
	}
	if got := s.balance(ctx, bobInc); got != sent {
		t.Errorf("Bob incognito %d, want %d", got, sent)
	}
	if got := s.balance(ctx, aliceInc); got != shielded-sent {
		t.Errorf("Alice incognito %d, want %d", got, shielded-sent)
	}
	if got := s.nonce(ctx, aliceInc); got != calls {
		t.Errorf("Alice incognito nonce %d, want %d", got, calls)
	}

	// Every shard block is confirmed on chain with the header hash the
	// client verified, and the last one's state hash is the enclave's.
	last := results[len(results)-1]
	latest := s.confirmedOnChain(ctx, last.Block.Number)
	if latest.Number != last.Block.Number || latest.HeaderHash != last.HeaderHash || latest.Enclave != s.tc.Enclave().Signer {
		t.Errorf("latest confirmation %+v, want block %d %s by %s", latest, last.Block.Number, last.HeaderHash, s.tc.Enclave().Signer)
	}
	for _, r := range results {
		c, _, err := s.c.SidechainBlock(ctx, types.Hash(s.shard), r.Block.Number)
		if err != nil || c == nil || c.HeaderHash != r.HeaderHash {
			t.Errorf("confirmation of shard block %d: %+v, %v; want header %s", r.Block.Number, c, err, r.HeaderHash)
		}
	}
	// The same blocks proved together at one height, and a block not yet
	// sealed proved absent.
	_, at, err := s.c.SidechainLatest(ctx, types.Hash(s.shard))
	if err != nil {
		t.Fatal(err)
	}
	numbers := []uint64{last.Block.Number + 1000}
	for _, r := range results {
		numbers = append(numbers, r.Block.Number)
	}
	confs, err := s.c.SidechainBlocks(ctx, types.Hash(s.shard), numbers, at)
	if err != nil {
		t.Fatal(err)
	}
	if c, ok := confs[last.Block.Number+1000]; ok {
		t.Errorf("an unsealed block proved confirmed: %+v", c)
	}
	for _, r := range results {
		if c := confs[r.Block.Number]; c == nil || c.HeaderHash != r.HeaderHash {
			t.Errorf("batched confirmation of shard block %d: %+v; want header %s", r.Block.Number, c, r.HeaderHash)
		}
	}
	if _, err := s.c.SidechainBlocks(ctx, types.Hash(s.shard), numbers, 0); err == nil {
		t.Error("SidechainBlocks at height 0 (not a committed height) answered")
	}
	info, err := w.StateInfo(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if [32]byte(last.Block.StateHash) != info.StateRoot {
		t.Errorf("last shard block's state hash %s, enclave's state root %x", last.Block.StateHash, info.StateRoot)
	}

	// A watched call: submitted, executed with its block, then confirmed
	// once the chain holds that block.
	ct, err := s.tc.EncryptCall(aliceInc, transferCall(addr(aliceInc), addr(bobInc), 1), calls)
	if err != nil {
		t.Fatal(err)
	}
	watch, err := s.tc.Watch(ctx, ct)
	if err != nil {
		t.Fatal(err)
	}
	defer watch.Close()
	var statuses []string
	var executed *trusted.Result
	for {
		st, err := watch.Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		statuses = append(statuses, st.Status)
		switch st.Status {
		case api.StatusExecuted:
			executed = st.Result
		case api.StatusConfirmed:
			c, _, err := s.c.SidechainBlock(ctx, types.Hash(s.shard), executed.Block.Number)
			if err != nil || c == nil || c.HeaderHash != executed.HeaderHash {
				t.Errorf("confirmed status, but the chain holds %+v (%v) for block %d", c, err, executed.Block.Number)
			}
		}
		if st.Final() {
			break
		}
	}
	if got := strings.Join(statuses, ","); got != "submitted,executed,confirmed" {
		t.Errorf("statuses %s", got)
	}
	if executed == nil || executed.Block.Number != last.Block.Number+1 {
		t.Errorf("watched call executed in %+v, want block %d", executed, last.Block.Number+1)
	}

	// The same call again is a replay: refused, nothing changes.
	if _, err := s.tc.Submit(ctx, ct); !errors.Is(err, trusted.ErrInvalidCall) {
		t.Errorf("replayed call: %v, want %v", err, trusted.ErrInvalidCall)
	}
	if got := s.balance(ctx, bobInc); got != sent+1 {
		t.Errorf("Bob incognito %d after the replay, want %d", got, sent+1)
	}

	// A worker that presents another shielding key than its enclave
	// registered (here: the real worker's identity with a key of the
	// host's own) is refused before anything is encrypted to it.
	t.Run("shielding key mismatch", func(t *testing.T) {
		sk, err := shielding.KEM().GenerateKey()
		if err != nil {
			t.Fatal(err)
		}
		signer := s.tc.Enclave().Signer
		id := rpc.Identity{
			ShieldingKey: sk.PublicKey().Bytes(), Signer: signer[:],
			MRENCLAVE: s.tc.MRENCLAVE(), Shard: s.shard,
		}
		srv := rpc.New(lyingWorker{id: id}, rpc.Options{})
		ts := httptest.NewServer(srv)
		defer func() {
			srv.Close()
			ts.Close()
		}()
		_, err = trusted.Dial(ctx, ts.URL, s.c, trusted.Options{})
		if !errors.Is(err, trusted.ErrShieldingKeyMismatch) {
			t.Fatalf("dial a worker with an unregistered shielding key: %v, want %v", err, trusted.ErrShieldingKeyMismatch)
		}
	})
}

// lyingWorker presents a fixed identity and serves nothing else.
type lyingWorker struct{ id rpc.Identity }

func (l lyingWorker) ShieldingKey(context.Context) (*rpc.Identity, error) { return &l.id, nil }

func (lyingWorker) SubmitCalls(context.Context, [][]byte) ([]rpc.Outcome, error) {
	return nil, errors.New("not served")
}

func (lyingWorker) ExecuteGetter(context.Context, []byte) ([]byte, bool, error) {
	return nil, false, errors.New("not served")
}

func (lyingWorker) Health(context.Context) (*rpc.Health, error) { return &rpc.Health{}, nil }

// TestKillWorkerDirect kills the worker process with SIGKILL right after
// direct calls were acknowledged executed, while another call is in
// flight, and restarts it; twice: once killed at once (the call in flight
// may not have reached the enclave), once as soon as the worker reports
// the in-flight call's block persisted (it may not have been answered).
// After each restart every acknowledged call's effect is still there, the
// call in flight is applied at most once (exactly once if it was persisted
// or answered), replays are refused, and the shard's block chain continues
// from its last persisted block.
func TestKillWorkerDirect(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	net, err := localnet.Start(ctx, localnet.Config{EnclaveBinary: bins.enclave, NoWorkers: true, Logger: testLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer net.Stop()
	data := filepath.Join(t.TempDir(), "worker")
	rpcAddr, err := localnet.FreeAddr()
	if err != nil {
		t.Fatal(err)
	}
	p := startWorkerProcess(t, net.NodeRPC(), data, rpcAddr, 0)
	s := waitShardClient(t, ctx, p, net.NodeRPC(), "http://"+rpcAddr, net.Shard)
	const shielded, perRound = 1000, 5
	s.shield(ctx, charlie, addr(charlieInc), shielded)

	// Call i has nonce i and moves i+1.
	var cts [][]byte
	newCall := func() []byte {
		i := len(cts)
		ct, err := s.tc.EncryptCall(charlieInc, transferCall(addr(charlieInc), addr(daveInc), uint64(i+1)), uint64(i))
		if err != nil {
			t.Fatal(err)
		}
		cts = append(cts, ct)
		return ct
	}
	sum := func(n int) uint64 { return uint64(n * (n + 1) / 2) } // calls 0..n-1
	var head *trusted.Result                                     // the last block a client saw
	for round, waitPersisted := range []bool{false, true} {
		for range perRound {
			r, err := s.tc.Submit(ctx, newCall())
			if err != nil || !r.Success {
				t.Fatalf("round %d: transfer %d: %+v, %v", round, len(cts)-1, r, err)
			}
			head = r
		}
		type answer struct {
			r   *trusted.Result
			err error
		}
		inflight := make(chan answer, 1)
		ct := newCall()
		go func() {
			r, err := s.tc.Submit(ctx, ct)
			inflight <- answer{r, err}
		}()
		if waitPersisted {
			for {
				h, err := s.tc.Health(ctx)
				if err != nil {
					t.Fatal(err)
				}
				if h.ShardBlock > head.Block.Number {
					break
				}
				time.Sleep(10 * time.Millisecond) // within the RPC's rate limit
			}
		}
		p.kill9(t)
		ans := <-inflight

		p = startWorkerProcess(t, net.NodeRPC(), data, rpcAddr, round+1)
		s = waitShardClient(t, ctx, p, net.NodeRPC(), "http://"+rpcAddr, net.Shard)
		n := int(s.nonce(ctx, charlieInc))
		t.Logf("round %d: after the restart nonce %d of %d calls (in-flight answer: %v)", round, n, len(cts), ans.err)
		switch {
		case n != len(cts)-1 && n != len(cts):
			t.Fatalf("round %d: nonce %d after %d calls, %d acknowledged", round, n, len(cts), len(cts)-1)
		case n < len(cts) && waitPersisted:
			t.Fatalf("round %d: the in-flight call's block was persisted, but its call is gone", round)
		case n < len(cts) && ans.err == nil:
			t.Fatalf("round %d: the in-flight call was acknowledged, but it is gone", round)
		}
		if got := s.balance(ctx, daveInc); got != sum(n) {
			t.Errorf("round %d: Dave incognito %d after the restart, want %d", round, got, sum(n))
		}
		health, err := s.tc.Health(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if want := head.Block.Number + uint64(n+1-len(cts)); health.ShardBlock != want {
			t.Errorf("round %d: worker restored shard block %d, want %d", round, health.ShardBlock, want)
		}
		// Where the restored chain of shard blocks ends: the client's
		// last block, or the in-flight call's, as the chain confirmed it.
		parent := head.HeaderHash
		if n == len(cts) {
			c := s.confirmedOnChain(ctx, head.Block.Number+1)
			if c.Number != head.Block.Number+1 {
				t.Fatalf("round %d: chain confirmed block %d, want the in-flight call's %d", round, c.Number, head.Block.Number+1)
			}
			parent = c.HeaderHash
		}

		// Nothing applies twice: every call the enclave took is a replay
		// now; one it never took is executed now.
		var first *trusted.Result
		for i, ct := range cts {
			r, err := s.tc.Submit(ctx, ct)
			if i < n {
				var ie *trusted.InvalidCallError
				if !errors.As(err, &ie) || ie.Reason != "stale nonce" {
					t.Errorf("round %d: call %d again: %+v, %v; want a stale nonce", round, i, r, err)
				}
				continue
			}
			if err != nil || !r.Success {
				t.Fatalf("round %d: call %d, not executed before the kill: %+v, %v", round, i, r, err)
			}
			first = r
		}
		if first == nil {
			if first, err = s.tc.Submit(ctx, newCall()); err != nil || !first.Success {
				t.Fatalf("round %d: transfer after the restart: %+v, %v", round, first, err)
			}
		}
		if first.Block.Number != health.ShardBlock+1 || first.Block.ParentHash != parent {
			t.Errorf("round %d: first block after the restart %d with parent %s, want %d with parent %s",
				round, first.Block.Number, first.Block.ParentHash, health.ShardBlock+1, parent)
		}
		head = first
		if got := s.balance(ctx, daveInc); got != sum(len(cts)) {
			t.Errorf("round %d: Dave incognito %d after the replays, want %d", round, got, sum(len(cts)))
		}
		if got := s.balance(ctx, charlieInc); got != shielded-sum(len(cts)) {
			t.Errorf("round %d: Charlie incognito %d, want %d", round, got, shielded-sum(len(cts)))
		}
	}
	if c := s.confirmedOnChain(ctx, head.Block.Number); c.HeaderHash != head.HeaderHash {
		t.Errorf("chain confirmed %s for block %d, the enclave signed %s", c.HeaderHash, head.Block.Number, head.HeaderHash)
	}
	if got := s.public(ctx, bridge.VaultAddress(net.Shard)); got != shielded {
		t.Errorf("vault %d, want %d", got, shielded)
	}
	p.interrupt(t)
	for run := 1; run <= 2; run++ {
		b, err := os.ReadFile(fmt.Sprintf("%s-%d.log", data, run))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(b), "enclave restored") {
			t.Errorf("run %d did not restore the enclave from the store:\n%s", run, tail(b))
		}
	}
}
