package localnet_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/integritee-go/integritee/chain/accounts"
	"github.com/integritee-go/integritee/client"
	"github.com/integritee-go/integritee/client/trusted"
	"github.com/integritee-go/integritee/localnet"
	"github.com/integritee-go/integritee/worker"
	"github.com/integritee-go/integritee/worker/rpc/api"
)

// TestDemoTwoWorkers is `integritee-cli localnet`: two workers (the second
// provisioned by the first at start) and the demo the command runs, which
// checks every step itself; here its output is checked too.
func TestDemoTwoWorkers(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	n, err := localnet.Start(ctx, localnet.Config{Workers: 2, EnclaveBinary: bins.enclave, Logger: testLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Stop()
	var out bytes.Buffer
	if err := n.Demo(ctx, &out); err != nil {
		t.Fatalf("demo: %v\n%s", err, out.String())
	}
	t.Logf("demo output:\n%s", out.String())
	for _, want := range []string{
		"ok   registered       2 enclaves of MRENCLAVE",
		"ok   direct refused",
		"worker 0: 700 / 200; worker 1: 700 / 200",
		"vault 900 = 0 + 1,000 - 100",
		"; 0 divergences on chain",
		"demo passed",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("demo output lacks %q", want)
		}
	}
	if strings.Contains(out.String(), "FAIL") || strings.Contains(out.String(), "ok   direct transfer") {
		t.Errorf("unexpected demo output")
	}
}

// TestDirectRefusedOnceShared starts with one worker, where the demo
// makes a direct transfer, then adds a second worker (provisioned by the
// first, with the direct calls' state). From the moment the first worker
// hands out the shard's keys, both refuse direct calls with
// worker.CodeSeveralWorkers and nothing changes, while getters and the
// indirect path go on: the demo passes again on the grown network (it
// checks changes, not totals) with equal state hashes and no divergence.
func TestDirectRefusedOnceShared(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	n, err := localnet.Start(ctx, localnet.Config{Workers: 1, EnclaveBinary: bins.enclave, Logger: testLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Stop()
	var out bytes.Buffer
	if err := n.Demo(ctx, &out); err != nil {
		t.Fatalf("demo with one worker: %v\n%s", err, out.String())
	}
	t.Logf("demo output, one worker:\n%s", out.String())
	if !strings.Contains(out.String(), "ok   direct transfer") || !strings.Contains(out.String(), "balances now 650 / 250") {
		t.Errorf("the one-worker demo made no direct transfer")
	}

	if _, err := n.AddWorker(ctx); err != nil {
		t.Fatal(err)
	}
	c, err := client.New(ctx, n.NodeRPC(), client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	aliceI, bobI := accounts.DevKey("Alice//incognito"), accounts.DevKey("Bob//incognito")
	var tcs []*trusted.Client
	for _, w := range n.Workers() {
		tc, err := trusted.Dial(ctx, w.RPCAddr(), c, trusted.Options{})
		if err != nil {
			t.Fatal(err)
		}
		tcs = append(tcs, tc)
	}
	for i, tc := range tcs {
		before, err := tc.Health(ctx)
		if err != nil {
			t.Fatal(err)
		}
		_, err = tc.Transfer(ctx, aliceI, addr(bobI), 1)
		var re *api.Error
		if !errors.As(err, &re) || re.Code != worker.CodeSeveralWorkers || !strings.Contains(re.Message, "use --indirect") {
			t.Fatalf("worker %d: direct transfer with two workers: %v, want error %d", i, err, worker.CodeSeveralWorkers)
		}
		after, err := tc.Health(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if after.ShardBlock != before.ShardBlock {
			t.Errorf("worker %d: shard block %d -> %d after a refused call", i, before.ShardBlock, after.ShardBlock)
		}
		// Getters stay allowed; nothing moved.
		a, err1 := tc.Balance(ctx, aliceI)
		b, err2 := tc.Balance(ctx, bobI)
		nonce, err3 := tc.Nonce(ctx, aliceI)
		if err := errors.Join(err1, err2, err3); err != nil || a != 650 || b != 250 || nonce != 2 {
			t.Fatalf("worker %d after the refused call: Alice//incognito %d nonce %d, Bob//incognito %d (%v); want 650, 2, 250", i, a, nonce, b, err)
		}
	}

	out.Reset()
	if err := n.Demo(ctx, &out); err != nil {
		t.Fatalf("demo with two workers: %v\n%s", err, out.String())
	}
	t.Logf("demo output, two workers:\n%s", out.String())
	if !strings.Contains(out.String(), "worker 0: 1,350 / 450; worker 1: 1,350 / 450") {
		t.Errorf("two-worker demo on the grown network: unexpected balances")
	}
}
