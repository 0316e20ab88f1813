package localnet_test

import (
	"context"
	"fmt"
	"runtime/debug"
	"testing"
	"time"

	"github.com/integritee-go/integritee/chain/accounts"
	"github.com/integritee-go/integritee/client"
	"github.com/integritee-go/integritee/client/trusted"
	"github.com/integritee-go/integritee/loadgen"
	"github.com/integritee-go/integritee/localnet"
	"github.com/integritee-go/integritee/worker/rpc"
)

// TestClientsScenario runs the many-clients scenario small: 50 WebSocket
// sessions, 4 calls each. The worker admits at most 8 connections per
// client IP, so the 50 sessions are all admitted only if the worker sees
// them come from distinct addresses; every call must be executed once (the
// report's read-back of the sessions' nonces and the recipient's balance)
// and the report's counts must add up.
func TestClientsScenario(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	opts := rpc.Options{RateLimit: 1e6, RateBurst: 1 << 20, MaxConns: 1 << 12, MaxConnsPerIP: 8}
	n, err := localnet.Start(ctx, localnet.Config{EnclaveBinary: bins.enclave, Logger: testLogger(), WorkerRPC: opts})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Stop()
	const clients, amount = 50, 3
	cfg := loadgen.ClientsConfig{
		Config:   loadgen.Config{NodeURL: n.NodeRPC(), WorkerURL: n.Workers()[0].RPCAddr(), Amount: amount, Tag: "clients-test", Concurrency: 2, Timeout: 2 * time.Minute},
		Clients:  clients,
		Interval: 250 * time.Millisecond,
		Duration: time.Second,
		// Each session's first call, which opens its shielded channel,
		// goes before the timed phase; the timed calls go on the open
		// channels.
		WarmUp: true,
	}
	rep, err := loadgen.Clients(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	const calls = clients * 4
	st := rep.Sessions
	if st == nil || st.Wanted != clients || st.Opened != clients || st.Sources != clients || len(st.OpenErrors) != 0 || st.Lost != 0 {
		t.Fatalf("sessions: %+v", st)
	}
	if st.CallsPerSession != 4 || rep.N != calls {
		t.Errorf("%d calls per session, %d calls; want 4 and %d", st.CallsPerSession, rep.N, calls)
	}
	if !rep.OK() || rep.Submitted != calls || rep.Committed != calls || rep.Failed != 0 {
		t.Fatalf("submitted %d, executed %d, failed %d %v; want %d each, none failed", rep.Submitted, rep.Committed, rep.Failed, rep.Failures, calls)
	}
	if w := st.WarmUp; w == nil || w.Executed != clients || w.Failed != 0 {
		t.Errorf("warm-up %+v, want %d executed", w, clients)
	}
	// The load generator's collector was held through the timed phase,
	// and the tiny run stayed within its budget.
	if c := rep.Collector; c == nil || c.BudgetMiB <= 0 || c.Collections != 0 {
		t.Errorf("collector %+v, want held with no collection", c)
	}
	// ... and given back after it.
	if p := debug.SetGCPercent(-1); p < 0 {
		t.Errorf("the collector is still off after the run (GOGC %d)", p)
	} else {
		debug.SetGCPercent(p)
	}
	if st.NoncesChecked != clients || st.RecipientBalance != (calls+clients)*amount {
		t.Errorf("read back %d nonces and a balance of %d; want %d and %d", st.NoncesChecked, st.RecipientBalance, clients, (calls+clients)*amount)
	}
	if rep.OfferedPerSec != clients*4 || rep.Latency.P50 <= 0 || rep.Latency.Max < rep.Latency.P99 || rep.Blocks == 0 {
		t.Errorf("offered %.1f/s, latency %+v, %d blocks", rep.OfferedPerSec, rep.Latency, rep.Blocks)
	}
	if w := rep.Workers[0]; w.Senders != clients || w.Executed != calls || w.Limits == nil || w.Limits.MaxConnsPerIP != 8 {
		t.Errorf("worker share %+v", w)
	}
	if rep.RateLimited != 0 || rep.Busy != 0 {
		t.Errorf("refusals: %d rate limited, %d busy", rep.RateLimited, rep.Busy)
	}
	// The shard's state, read here and not taken from the report: each
	// session's account made its 4 calls and the warm-up's, the
	// recipient got all of them.
	c, err := client.New(ctx, n.NodeRPC(), client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	tc, err := trusted.Dial(ctx, n.Workers()[0].RPCAddr(), c, trusted.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if b, err := tc.Balance(ctx, accounts.DevKey(st.Accounts+"/recipient")); err != nil || b != (calls+clients)*amount {
		t.Errorf("recipient holds %d (%v), want %d", b, err, (calls+clients)*amount)
	}
	for i := range clients {
		if nonce, err := tc.Nonce(ctx, accounts.DevKey(fmt.Sprintf("%s/%d", st.Accounts, i))); err != nil || nonce != 5 {
			t.Errorf("session %d's account nonce %d (%v), want 5", i, nonce, err)
		}
	}
}
