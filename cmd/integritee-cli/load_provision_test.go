package main

import (
	"context"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/integritee-go/integritee/loadgen"
	"github.com/integritee-go/integritee/localnet"
)

// TestLoadProvision creates accounts with trusted dev-accounts, then runs
// load provision against a one-worker localnet: the new worker must
// receive exactly the shard's entries, pass its phases in order, answer
// the samples and agree on the state root; it is stopped at the end. Not
// timing: the phases' order and the figures' presence only.
func TestLoadProvision(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a localnet and a second worker")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	enclave, err := localnet.BuildEnclave(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	// No liveness period: whatever the test's duration, the shard's
	// enclaves stay active (the new worker leaves the group only by it).
	net, err := localnet.Start(ctx, localnet.Config{EnclaveBinary: enclave, Liveness: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer net.Stop()
	node, worker := net.NodeRPC(), net.Workers()[0].RPCAddr()
	now := time.Now

	// Only the enclave's dev sudo may create accounts; a refused call
	// creates none (the entry count below).
	cliFailsAt(t, now, "dev call failed", "trusted", "dev-accounts", "--n", "10", "--sudo", "Bob", "--node", node, "--worker", worker)
	var dev devAccountsResult
	cliJSONAt(t, now, &dev, "trusted", "dev-accounts", "--n", "600", "--first", "5000", "--node", node, "--worker", worker)
	if dev.Count != 600 || dev.First != 5000 || dev.Calls != 1 || dev.Amount != loadgen.DevAccountAmount {
		t.Fatalf("dev-accounts %+v", dev)
	}

	const n = 1000
	var rep loadgen.ProvisionReport
	cliJSONAt(t, now, &rep, "load", "provision", "--accounts", "1000", "--node", node, "--worker", worker, "--enclave", enclave, "--tag", "lp", "--timeout", "3m")
	// The state: accounts 0..999 and 5000..5599, the samples, the dev
	// sudo's nonce (Bob's refused call is in the shard too: his nonce),
	// and the state version.
	if want := int64(n + 600 + 8 + 2 + 1); rep.Kind != "provision" || rep.Accounts != n || rep.Entries != want || rep.Height <= 0 {
		t.Errorf("report %+v, want %d entries", rep, want)
	}
	if p := rep; !(0 < p.ProvisionedSeconds && p.ProvisionedSeconds <= p.StartedSeconds && p.StartedSeconds <= p.RegisteredSeconds && p.RegisteredSeconds <= p.ServingSeconds) {
		t.Errorf("phases out of order: provisioned %.3f, started %.3f, registered %.3f, serving %.3f", p.ProvisionedSeconds, p.StartedSeconds, p.RegisteredSeconds, p.ServingSeconds)
	}
	if rep.SetupCalls != 1+8 || rep.StateRoot == "" || len(rep.Samples) != 8 || rep.EnclaveStarts < 1 {
		t.Errorf("report %+v", rep)
	}
	for _, s := range rep.Samples {
		if s.Sent != 1 || s.Amount == 0 {
			t.Errorf("sample %+v not checked", s)
		}
	}
	// What the new worker received is the provider's whole state.
	if info, err := net.Workers()[0].StateInfo(ctx); err != nil || int64(info.Entries) != rep.Entries {
		t.Errorf("provider's state: %+v, %v; the new worker received %d entries", info, err, rep.Entries)
	}
	enclaves := 0
	for _, p := range rep.Procs {
		if p.Role == "new worker's enclave" {
			enclaves++
			if p.PID == os.Getpid() || p.PeakRSSMiB <= 0 || p.CPUSeconds < 0 {
				t.Errorf("process %+v", p)
			}
		}
	}
	if enclaves != rep.EnclaveStarts {
		t.Errorf("%d enclave processes reported, %d starts: %+v", enclaves, rep.EnclaveStarts, rep.Procs)
	}
	// The new worker is stopped.
	if resp, err := http.Get(rep.NewWorker); err == nil {
		resp.Body.Close()
		t.Errorf("new worker %s still answers", rep.NewWorker)
	}
}
