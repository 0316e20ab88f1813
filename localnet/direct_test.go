package localnet_test

import (
	"context"
	"crypto/ed25519"
	"errors"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/integritee-go/integritee/chain/bridge"
	"github.com/integritee-go/integritee/chain/sidechain"
	"github.com/integritee-go/integritee/chain/teerex"
	"github.com/integritee-go/integritee/chain/tx"
	"github.com/integritee-go/integritee/client/trusted"
	"github.com/integritee-go/integritee/enclave/shielding"
	"github.com/integritee-go/integritee/enclave/stf"
	"github.com/integritee-go/integritee/localnet"
	"github.com/integritee-go/integritee/worker/rpc"
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
		c, _, err := s.c.SidechainLatest(ctx, teerex.Hash(s.shard))
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
	net, err := localnet.Start(ctx, localnet.Config{EnclaveBinary: bins.enclave, Logger: testLogger()})
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
		c, _, err := s.c.SidechainBlock(ctx, teerex.Hash(s.shard), r.Block.Number)
		if err != nil || c == nil || c.HeaderHash != r.HeaderHash {
			t.Errorf("confirmation of shard block %d: %+v, %v; want header %s", r.Block.Number, c, err, r.HeaderHash)
		}
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
		case rpc.StatusExecuted:
			executed = st.Result
		case rpc.StatusConfirmed:
			c, _, err := s.c.SidechainBlock(ctx, teerex.Hash(s.shard), executed.Block.Number)
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

func (lyingWorker) ExecuteGetter(context.Context, []byte) ([]byte, error) {
	return nil, errors.New("not served")
}

func (lyingWorker) Health(context.Context) (*rpc.Health, error) { return &rpc.Health{}, nil }

// TestKillWorkerDirect kills the worker process with SIGKILL right after
// direct calls were acknowledged executed, while another is in flight, and
// restarts it: every acknowledged call's effect is still there, the call
// in flight is applied at most once, replays are refused, and the shard's
// block chain continues from its last persisted block.
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
	const shielded, acked = 1000, 10
	s.shield(ctx, charlie, addr(charlieInc), shielded)

	cts := make([][]byte, acked+1)
	for i := range cts {
		if cts[i], err = s.tc.EncryptCall(charlieInc, transferCall(addr(charlieInc), addr(daveInc), uint64(i+1)), uint64(i)); err != nil {
			t.Fatal(err)
		}
	}
	var sent uint64
	var lastAcked *trusted.Result
	for i, ct := range cts[:acked] {
		r, err := s.tc.Submit(ctx, ct)
		if err != nil || !r.Success {
			t.Fatalf("transfer %d: %+v, %v", i, r, err)
		}
		sent += uint64(i + 1)
		lastAcked = r
	}
	// The last call races the kill: it may or may not have been persisted,
	// but never half.
	inflight := make(chan error, 1)
	go func() {
		_, err := s.tc.Submit(ctx, cts[acked])
		inflight <- err
	}()
	p.kill9(t)
	inflightErr := <-inflight

	p = startWorkerProcess(t, net.NodeRPC(), data, rpcAddr, 1)
	s = waitShardClient(t, ctx, p, net.NodeRPC(), "http://"+rpcAddr, net.Shard)
	nonce := s.nonce(ctx, charlieInc)
	switch {
	case nonce == acked+1:
		sent += acked + 1
	case nonce == acked && inflightErr != nil:
	default:
		t.Fatalf("Charlie incognito nonce %d after the restart, in-flight call: %v; want %d (+1 if it was executed)", nonce, inflightErr, acked)
	}
	if got := s.balance(ctx, daveInc); got != sent {
		t.Errorf("Dave incognito %d after the restart, want %d", got, sent)
	}
	if got := s.balance(ctx, charlieInc); got != shielded-sent {
		t.Errorf("Charlie incognito %d after the restart, want %d", got, shielded-sent)
	}
	// Nothing applies twice: every call the enclave took is a replay now;
	// one it never took is executed now.
	var firstAfter *trusted.Result
	for i, ct := range cts {
		r, err := s.tc.Submit(ctx, ct)
		if uint64(i) < nonce {
			var ie *trusted.InvalidCallError
			if !errors.As(err, &ie) || ie.Reason != "stale nonce" {
				t.Errorf("call %d again: %+v, %v; want a stale nonce", i, r, err)
			}
			continue
		}
		if err != nil || !r.Success {
			t.Fatalf("call %d, never executed before the kill: %+v, %v", i, r, err)
		}
		sent += uint64(i + 1)
		firstAfter = r
	}
	if got := s.balance(ctx, daveInc); got != sent {
		t.Errorf("Dave incognito %d after the replays, want %d", got, sent)
	}
	// The shard block chain continues where the store left it.
	ct, err := s.tc.EncryptCall(charlieInc, transferCall(addr(charlieInc), addr(daveInc), 1), acked+1)
	if err != nil {
		t.Fatal(err)
	}
	r, err := s.tc.Submit(ctx, ct)
	if err != nil || !r.Success {
		t.Fatalf("transfer after the restart: %+v, %v", r, err)
	}
	if c := s.confirmedOnChain(ctx, r.Block.Number); c.HeaderHash != r.HeaderHash {
		t.Errorf("chain confirmed %s for block %d, the enclave signed %s", c.HeaderHash, r.Block.Number, r.HeaderHash)
	}
	// The restarted enclave's first block follows the last persisted one:
	// the last acknowledged block, or the in-flight call's block, which
	// its confirmation on chain shows.
	if firstAfter == nil {
		firstAfter = r
	}
	parent := lastAcked.HeaderHash
	if nonce == acked+1 {
		c, _, err := s.c.SidechainBlock(ctx, teerex.Hash(s.shard), lastAcked.Block.Number+1)
		if err != nil || c == nil {
			t.Fatalf("confirmation of the in-flight call's block %d: %+v, %v", lastAcked.Block.Number+1, c, err)
		}
		parent = c.HeaderHash
	}
	if want := lastAcked.Block.Number + 1 + nonce - acked; firstAfter.Block.Number != want || firstAfter.Block.ParentHash != parent {
		t.Errorf("first block after the restart: %d with parent %s, want %d with parent %s", firstAfter.Block.Number, firstAfter.Block.ParentHash, want, parent)
	}
	if got := s.public(ctx, bridge.VaultAddress(net.Shard)); got != shielded {
		t.Errorf("vault %d, want %d", got, shielded)
	}
	p.interrupt(t)
	b, err := os.ReadFile(data + "-1.log")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), "enclave restored") {
		t.Errorf("the restart did not restore the enclave from the store:\n%s", tail(b))
	}
}
