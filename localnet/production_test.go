package localnet_test

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/integritee-go/integritee/client"
	"github.com/integritee-go/integritee/localnet"
	"github.com/integritee-go/integritee/worker"
)

// TestProductionRules runs the production rules end to end without SGX:
// the testtee build of the enclave (no dev features, no debug peers, the
// test PKI instead of the dev one) on a chain that is not a dev chain
// (teerex trusts only the test PKI, refuses debug enclaves and admits only
// this measurement). The demo runs with one worker (direct calls), then a
// second worker is provisioned over RA-TLS under the production peer rules
// and the demo runs again.
func TestProductionRules(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the testtee enclave and runs a network")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	n, err := localnet.Start(ctx, localnet.Config{Workers: 1, ProductionRules: true, Logger: testLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Stop()
	if n.Shard == devShard(t) {
		t.Fatal("the testtee build has the dev build's measurement")
	}
	var out bytes.Buffer
	if err := n.Demo(ctx, &out); err != nil {
		t.Fatalf("demo with one worker: %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "ok   direct transfer") {
		t.Errorf("no direct transfer under production rules:\n%s", out.String())
	}
	if _, err := n.AddWorker(ctx); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	if err := n.Demo(ctx, &out); err != nil {
		t.Fatalf("demo with two workers: %v\n%s", err, out.String())
	}
	c, err := client.New(ctx, n.NodeRPC(), client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	p, _, err := c.Policy(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if p.AllowDebug || p.AllowAnyMRENCLAVE {
		t.Fatalf("the chain's policy is a dev policy: %+v", p)
	}
	for _, w := range n.Workers() {
		e, _, err := c.Enclave(ctx, w.Signer())
		if err != nil {
			t.Fatal(err)
		}
		if e.Debug || [32]byte(e.MRENCLAVE) != n.Shard {
			t.Fatalf("registration %+v", e)
		}
	}
}

// devShard is the dev build's measurement (the binary TestMain built).
func devShard(t *testing.T) [32]byte {
	t.Helper()
	m, err := worker.SimMRENCLAVE(bins.enclave)
	if err != nil {
		t.Fatal(err)
	}
	return m
}
