package localnet_test

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/integritee-go/integritee/localnet"
)

// TestDemoTwoWorkers is `integritee-cli localnet`: two workers (the second
// provisioned by the first at start) and the demo the command runs, which
// checks every step itself; here its output is checked too. The workers
// confirm idle blocks only every minute, as the command's do: the demo's
// confirmations step must not wait for a heartbeat.
func TestDemoTwoWorkers(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	n, err := localnet.Start(ctx, localnet.Config{Workers: 2, EnclaveBinary: bins.enclave, Logger: testLogger(), ConfirmHeartbeat: time.Minute})
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
		"worker 0: 700 / 200; worker 1: 700 / 200",
		"to worker 0: executed", "to worker 1: executed",
		"vault 900 = 0 + 1,000 - 100",
		"; 0 divergences on chain",
		"demo passed",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("demo output lacks %q", want)
		}
	}
	if strings.Contains(out.String(), "FAIL") {
		t.Errorf("unexpected demo output")
	}
}

// TestDirectOnEveryWorkerOnceShared starts with one worker, where the
// demo makes a direct transfer, then adds a second worker (provisioned by
// the first, with the direct calls' state). The new worker joins the
// shard's group, and the demo passes again on the grown network (it
// checks changes, not totals): a direct transfer to each worker is
// executed, shown by both and confirmed on chain, and the state hashes
// agree.
func TestDirectOnEveryWorkerOnceShared(t *testing.T) {
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
	if !strings.Contains(out.String(), "ok   direct transfers") || !strings.Contains(out.String(), "balances now 650 / 250") {
		t.Errorf("the one-worker demo made no direct transfer")
	}
	if _, err := n.AddWorker(ctx); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	if err := n.Demo(ctx, &out); err != nil {
		t.Fatalf("demo with two workers: %v\n%s", err, out.String())
	}
	t.Logf("demo output, two workers:\n%s", out.String())
	if !strings.Contains(out.String(), "worker 0: 1,350 / 450; worker 1: 1,350 / 450") ||
		!strings.Contains(out.String(), "to worker 0: executed") || !strings.Contains(out.String(), "to worker 1: executed") {
		t.Errorf("two-worker demo on the grown network: unexpected output")
	}
}
