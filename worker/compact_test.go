package worker_test

import (
	"context"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/integritee-go/integritee/chain/accounts"
	"github.com/integritee-go/integritee/client"
	"github.com/integritee-go/integritee/client/trusted"
	"github.com/integritee-go/integritee/enclave"
	"github.com/integritee-go/integritee/enclave/stf"
	"github.com/integritee-go/integritee/worker/store"
)

// TestDirectCallsLogCompacted runs a worker whose enclave compacts its
// replica's log after a few entries (and loses one reply, as in
// TestDirectCalls): the worker's store keeps only the records the
// enclave still needs, however many calls and chain blocks went through,
// and a restarted worker starts from them and goes on.
func TestDirectCallsLogCompacted(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	rpc := startNode(t)
	c, err := client.New(ctx, rpc, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var submits, starts atomic.Int64
	cfg := lossyWorkerConfig(t, rpc, enclave.Config{ReplicaKeepEntries: 2}, 5, &submits, &starts)
	dir := cfg.DataDir
	w, stop := startWorker(t, ctx, cfg)
	tc, err := trusted.Dial(ctx, w.RPCAddr(), c, trusted.Options{})
	if err != nil {
		t.Fatal(err)
	}
	from, to := accounts.DevKey("Alice//compact"), accounts.DevKey("Bob//compact")
	shield(t, ctx, c, w, tc, from, 1000)
	const calls = 40
	var last *trusted.Result
	for i := range calls {
		ct, err := tc.EncryptCall(from, stf.Call{Transfer: &stf.Transfer{From: addrOf(from), To: addrOf(to), Amount: 1}}, uint64(i))
		if err != nil {
			t.Fatal(err)
		}
		r, err := tc.Submit(ctx, ct)
		if err != nil && submits.Load() == 5 {
			r, err = tc.Submit(ctx, ct) // the lost reply
		}
		if err != nil || !r.Success {
			t.Fatalf("transfer %d: %+v, %v", i, r, err)
		}
		last = r
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(filepath.Join(dir, "worker.db"))
	if err != nil {
		t.Fatal(err)
	}
	first, next, err := st.RecordRange(testShard)
	st.Close()
	if err != nil {
		t.Fatal(err)
	}
	// 40 calls and the chain blocks beside them wrote some hundreds of
	// records; the enclave needs a few dozen at most.
	if kept := next - first; first == 0 || kept > 64 {
		t.Fatalf("the store keeps records [%d, %d)", first, next)
	}

	w, _ = startWorker(t, ctx, cfg)
	if tc, err = trusted.Dial(ctx, w.RPCAddr(), c, trusted.Options{}); err != nil {
		t.Fatal(err)
	}
	ct, err := tc.EncryptCall(from, stf.Call{Transfer: &stf.Transfer{From: addrOf(from), To: addrOf(to), Amount: 1}}, calls)
	if err != nil {
		t.Fatal(err)
	}
	r, err := tc.Submit(ctx, ct)
	if err != nil || r.Block.Number != last.Block.Number+1 || r.Block.ParentHash != last.HeaderHash {
		t.Fatalf("call after the restart: %+v, %v; want block %d after %s", r, err, last.Block.Number+1, last.HeaderHash)
	}
	if got, err := tc.Balance(ctx, to); err != nil || got != calls+1 {
		t.Fatalf("balance %d, %v; want %d", got, err, calls+1)
	}
}
