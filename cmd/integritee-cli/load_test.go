package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/integritee-go/integritee/chain/accounts"
	"github.com/integritee-go/integritee/chain/tx"
	"github.com/integritee-go/integritee/chain/types"
	"github.com/integritee-go/integritee/client"
	"github.com/integritee-go/integritee/client/trusted"
	"github.com/integritee-go/integritee/internal/cli"
	"github.com/integritee-go/integritee/loadgen"
	"github.com/integritee-go/integritee/localnet"
	"github.com/integritee-go/integritee/worker/rpc"
)

// TestLoadCommands runs both load commands at small N against a localnet
// with one sim worker and checks the report's counts against the
// balances: the recipient got exactly what the report says was sent, and
// each sender lost exactly its transfers and fees (public) or its
// transfers out of what was shielded (incognito).
func TestLoadCommands(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	enclave, err := localnet.BuildEnclave(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	net, err := localnet.Start(ctx, localnet.Config{EnclaveBinary: enclave})
	if err != nil {
		t.Fatal(err)
	}
	defer net.Stop()
	node, worker := net.NodeRPC(), net.Workers()[0].RPCAddr()
	c, err := client.New(ctx, node, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	balance := func(name string) uint64 {
		t.Helper()
		acc, err := c.Account(ctx, devAddr(name))
		if err != nil {
			t.Fatal(err)
		}
		return acc.Balance
	}

	t.Run("transfers", func(t *testing.T) {
		const n, conc, amount = 50, 5, 7
		recipient := "Alice//load/lt/tx-recipient"
		before := map[string]uint64{recipient: balance(recipient)}
		for i := range conc {
			name := fmt.Sprintf("Alice//load/lt/tx/%d", i)
			before[name] = balance(name)
		}
		var rep loadgen.Report
		cliJSON(t, &rep, "load", "transfers", "--n", fmt.Sprint(n), "--concurrency", fmt.Sprint(conc), "--amount", fmt.Sprint(amount),
			"--tag", "lt", "--node", node, "--timeout", "90s")
		if rep.Kind != "transfers" || rep.N != n || rep.Submitted != n || rep.Committed != n || rep.Failed != 0 || len(rep.Senders) != conc {
			t.Fatalf("report %+v", rep)
		}
		if rep.Blocks == 0 || rep.Latency.P50 <= 0 || rep.Latency.P50 > rep.Latency.P99 || rep.CommittedPerSec <= 0 {
			t.Errorf("measurements %+v", rep)
		}
		if rep.PrepareSeconds <= 0 || len(rep.Series) == 0 {
			t.Errorf("prepare %.3fs, series %v", rep.PrepareSeconds, rep.Series)
		}
		checkProcs(t, &rep, "node+loadgen", 0)
		if got := balance(recipient) - before[recipient]; got != n*amount {
			t.Errorf("recipient received %d, want %d", got, n*amount)
		}
		sent := 0
		for _, s := range rep.Senders {
			sent += s.Sent
			if s.Amount != uint64(s.Sent)*amount || s.Fees == 0 {
				t.Errorf("sender %+v", s)
			}
			if got, want := balance(s.Name), before[s.Name]+s.Funded-s.Amount-s.Fees; got != want {
				t.Errorf("%s holds %d, want %d (funded %d, sent %d, fees %d)", s.Name, got, want, s.Funded, s.Amount, s.Fees)
			}
		}
		if sent != n {
			t.Errorf("senders sent %d, want %d", sent, n)
		}
	})

	t.Run("direct", func(t *testing.T) {
		const n, conc, amount = 30, 3, 5
		tc, err := trusted.Dial(ctx, worker, c, trusted.Options{})
		if err != nil {
			t.Fatal(err)
		}
		inc := func(name string) uint64 {
			t.Helper()
			b, err := tc.Balance(ctx, accounts.DevKey(name))
			if err != nil {
				t.Fatal(err)
			}
			return b
		}
		recipient := "Alice//load/lt/direct-recipient"
		before := map[string]uint64{recipient: inc(recipient)}
		for i := range conc {
			name := fmt.Sprintf("Alice//load/lt/direct/%d", i)
			before[name] = inc(name)
		}
		var rep loadgen.Report
		plot := filepath.Join(t.TempDir(), "direct.svg")
		cliJSON(t, &rep, "load", "direct", "--n", fmt.Sprint(n), "--concurrency", fmt.Sprint(conc), "--amount", fmt.Sprint(amount),
			"--tag", "lt", "--node", node, "--worker", worker, "--timeout", "90s", "--plot", plot)
		if rep.Kind != "direct" || rep.N != n || rep.Submitted != n || rep.Committed != n || rep.Failed != 0 || len(rep.Senders) != conc ||
			rep.Shielding != loadgen.ShieldingChannel || rep.Transport != loadgen.TransportHTTP {
			t.Fatalf("report %+v", rep)
		}
		if rep.Blocks == 0 || rep.Blocks > n || rep.Latency.P50 <= 0 || rep.Latency.P50 > rep.Latency.P99 {
			t.Errorf("measurements %+v", rep)
		}
		// Every call's block was confirmed on chain, after its execution.
		if l := rep.LatencyConfirmed; rep.Confirmed != n || l == nil || l.P50 < rep.Latency.P50 || l.Max < rep.Latency.Max {
			t.Errorf("confirmed %d, latency %+v (to executed %+v)", rep.Confirmed, l, rep.Latency)
		}
		if rep.PrepareSeconds <= 0 || rep.VerifySeconds <= 0 || len(rep.Series) == 0 {
			t.Errorf("prepare %.3fs, verify %.3fs, series %v", rep.PrepareSeconds, rep.VerifySeconds, rep.Series)
		}
		checkProcs(t, &rep, "node+worker+loadgen", 1)
		// The worker's limits (localnet's defaults) are stated.
		if l := rep.Workers[0].Limits; l == nil || l.RateLimit != rpc.DefaultRateLimit || l.CallQueue != rpc.DefaultQueueSize {
			t.Errorf("worker limits %+v", l)
		} else if !slices.ContainsFunc(rep.Limits, func(s string) bool { return strings.Contains(s, "--rpc-rate 200 --rpc-burst 400") }) {
			t.Errorf("limits %q do not state the worker's", rep.Limits)
		}
		if b, err := os.ReadFile(plot); err != nil || !bytes.HasPrefix(b, []byte("<svg")) || !bytes.Contains(b, []byte("load direct: "+fmt.Sprint(n)+" calls")) {
			t.Errorf("--plot: %v\n%.200s", err, b)
		}
		if got := inc(recipient) - before[recipient]; got != n*amount {
			t.Errorf("incognito recipient received %d, want %d", got, n*amount)
		}
		for _, s := range rep.Senders {
			if s.Amount != uint64(s.Sent)*amount || s.Shielded != s.Amount {
				t.Errorf("sender %+v", s)
			}
			if got, want := inc(s.Name), before[s.Name]+s.Shielded-s.Amount; got != want {
				t.Errorf("%s holds %d in the shard, want %d", s.Name, got, want)
			}
		}
	})

	// Calls spread over generated accounts, sent over WebSocket sessions:
	// every one executed, and the senders paid for them.
	t.Run("direct recipients", func(t *testing.T) {
		const n, conc, amount = 12, 2, 3
		tc, err := trusted.Dial(ctx, worker, c, trusted.Options{})
		if err != nil {
			t.Fatal(err)
		}
		var rep loadgen.Report
		cliJSON(t, &rep, "load", "direct", "--n", fmt.Sprint(n), "--concurrency", fmt.Sprint(conc), "--amount", fmt.Sprint(amount),
			"--recipients", "1000", "--tag", "ltr", "--node", node, "--worker", worker, "--timeout", "90s", "--transport", "ws")
		if rep.Committed != n || rep.Failed != 0 || !strings.HasPrefix(rep.Recipient, "one of 1000 generated accounts") || rep.Transport != loadgen.TransportWS ||
			rep.TransportSources != conc {
			t.Fatalf("report %+v", rep)
		}
		for _, s := range rep.Senders {
			b, err := tc.Balance(ctx, accounts.DevKey(s.Name))
			if err != nil {
				t.Fatal(err)
			}
			if s.Amount != uint64(s.Sent)*amount || b != s.Shielded-s.Amount {
				t.Errorf("%s holds %d in the shard, sent %+v", s.Name, b, s)
			}
		}
	})

	// Many clients: every session from its own address, every call
	// executed once, as the shard's state says.
	t.Run("clients", func(t *testing.T) {
		const clients, calls, amount = 20, 3, 4
		var rep loadgen.Report
		plot := filepath.Join(t.TempDir(), "clients.svg")
		cliJSON(t, &rep, "load", "clients", "--clients", fmt.Sprint(clients), "--interval", "200ms", "--duration", "600ms",
			"--amount", fmt.Sprint(amount), "--concurrency", "2", "--tag", "lt", "--node", node, "--worker", worker, "--timeout", "90s", "--plot", plot,
			"--one-shot")
		// The timed calls; the warm-up's (one per session, by default)
		// come on top.
		st := rep.Sessions
		if rep.Kind != "clients" || rep.N != clients*calls || rep.Committed != clients*calls || rep.Failed != 0 || st == nil || rep.Shielding != loadgen.ShieldingOneShot ||
			st.Opened != clients || st.Sources != clients || st.CallsPerSession != calls || rep.OfferedPerSec != clients*5 ||
			st.WarmUp == nil || st.WarmUp.Executed != clients || st.WarmUp.Failed != 0 {
			t.Fatalf("report %+v, sessions %+v", rep, st)
		}
		tc, err := trusted.Dial(ctx, worker, c, trusted.Options{})
		if err != nil {
			t.Fatal(err)
		}
		if b, err := tc.Balance(ctx, accounts.DevKey(st.Accounts+"/recipient")); err != nil || b != clients*(calls+1)*amount {
			t.Errorf("recipient holds %d (%v), want %d", b, err, clients*(calls+1)*amount)
		}
		for _, i := range []int{0, clients - 1} {
			if n, err := tc.Nonce(ctx, accounts.DevKey(fmt.Sprintf("%s/%d", st.Accounts, i))); err != nil || n != calls+1 {
				t.Errorf("session %d's account nonce %d (%v), want %d", i, n, err, calls+1)
			}
		}
		checkProcs(t, &rep, "node+worker+loadgen", 1)
		if b, err := os.ReadFile(plot); err != nil || !bytes.Contains(b, []byte("load clients: ")) {
			t.Errorf("--plot: %v\n%.200s", err, b)
		}
	})

	// Enclave registrations: every enclave is registered with the run's
	// measurement.
	t.Run("register", func(t *testing.T) {
		const n, conc = 6, 2
		var rep loadgen.Report
		cliJSON(t, &rep, "load", "register", "--n", fmt.Sprint(n), "--concurrency", fmt.Sprint(conc), "--tag", "lt", "--node", node, "--timeout", "90s")
		if rep.Kind != "register" || rep.N != n || rep.Submitted != n || rep.Committed != n || rep.Failed != 0 || rep.Latency.P50 <= 0 {
			t.Fatalf("report %+v", rep)
		}
		for e := range n {
			enc, _, err := c.Enclave(ctx, devAddr(fmt.Sprintf("Alice//load/lt/enclave/%d", e)))
			if err != nil || enc == nil || enc.MRENCLAVE != types.Hash(loadgen.RegisterMeasurement("lt")) {
				t.Errorf("enclave %d: %+v %v", e, enc, err)
			}
		}
		checkProcs(t, &rep, "node+loadgen", 0)
	})

	// Private getters: every answer decrypts to the balance read before.
	t.Run("getters", func(t *testing.T) {
		const n, conc = 40, 4
		var rep loadgen.Report
		cliJSON(t, &rep, "load", "getters", "--n", fmt.Sprint(n), "--concurrency", fmt.Sprint(conc),
			"--tag", "lt", "--node", node, "--worker", worker, "--timeout", "90s")
		if rep.Kind != "getters" || rep.N != n || rep.Submitted != n || rep.Committed != n || rep.Failed != 0 || len(rep.Senders) != conc {
			t.Fatalf("report %+v", rep)
		}
		if rep.Latency.P50 <= 0 || rep.Latency.P50 > rep.Latency.P99 || rep.PrepareSeconds <= 0 || len(rep.Series) == 0 {
			t.Errorf("measurements %+v", rep)
		}
		checkProcs(t, &rep, "node+worker+loadgen", 1)
	})

	// Indirect calls: each sender's trusted nonce moved by its calls, the
	// recipient got them all.
	t.Run("indirect", func(t *testing.T) {
		const n, conc, amount = 12, 3, 5
		tc, err := trusted.Dial(ctx, worker, c, trusted.Options{})
		if err != nil {
			t.Fatal(err)
		}
		inc := func(name string) uint64 {
			t.Helper()
			b, err := tc.Balance(ctx, accounts.DevKey(name))
			if err != nil {
				t.Fatal(err)
			}
			return b
		}
		recipient := "Alice//load/lt/indirect-recipient"
		before := inc(recipient)
		var rep loadgen.Report
		cliJSON(t, &rep, "load", "indirect", "--n", fmt.Sprint(n), "--concurrency", fmt.Sprint(conc), "--amount", fmt.Sprint(amount),
			"--tag", "lt", "--node", node, "--worker", worker, "--timeout", "90s")
		if rep.Kind != "indirect" || rep.N != n || rep.Submitted != n || rep.Committed != n || rep.Failed != 0 || len(rep.Senders) != conc {
			t.Fatalf("report %+v", rep)
		}
		if b := rep.BlocksToExecuted; b == nil || b.P50 < 1 || b.P50 > b.Max || rep.Latency.P50 <= 0 {
			t.Errorf("latency %+v, blocks %+v", rep.Latency, b)
		}
		if got := inc(recipient) - before; got != n*amount {
			t.Errorf("incognito recipient received %d, want %d", got, n*amount)
		}
		checkProcs(t, &rep, "node+worker+loadgen", 1)
	})

	// The open loop, with the worker's URL given twice: the senders are
	// spread over both entries, round robin.
	t.Run("direct open loop over two URLs", func(t *testing.T) {
		const n, conc = 20, 3
		var rep loadgen.Report
		cliJSON(t, &rep, "load", "direct", "--n", fmt.Sprint(n), "--concurrency", fmt.Sprint(conc), "--rate", "40",
			"--tag", "lto", "--node", node, "--worker", worker+","+worker, "--timeout", "90s")
		if rep.Mode != "open" || rep.OfferedPerSec != 40 || rep.N != n || rep.Committed != n || rep.Failed != 0 || rep.SendLag == nil {
			t.Fatalf("report %+v", rep)
		}
		// 20 calls at 40/s take half a second at least.
		if rep.TotalSeconds < 0.45 || rep.CommittedPerSec > 45 {
			t.Errorf("not paced: %d in %.2fs", rep.Committed, rep.TotalSeconds)
		}
		if len(rep.Workers) != 2 || rep.Workers[0].Senders != 2 || rep.Workers[1].Senders != 1 ||
			rep.Workers[0].Executed+rep.Workers[1].Executed != n {
			t.Errorf("workers %+v", rep.Workers)
		}
		sent := 0
		for _, s := range rep.Senders {
			sent += s.Sent
			if s.Worker != worker {
				t.Errorf("sender %+v", s)
			}
		}
		if sent != n {
			t.Errorf("senders sent %d, want %d", sent, n)
		}
	})

	t.Run("refuses remote addresses", func(t *testing.T) {
		cliFails(t, "not loopback", "load", "transfers", "--n", "1", "--node", "http://10.1.2.3:26657")
		cliFails(t, "not loopback", "load", "direct", "--n", "1", "--node", node, "--worker", "http://example.com:2000")
		cliFails(t, "not loopback", "load", "direct", "--n", "1", "--node", node, "--worker", worker+",http://10.0.0.1:2000")
		cliFails(t, "not loopback", "load", "direct", "--n", "1", "--node", "http://[2001:db8::1]:26657", "--worker", worker)
		cliFails(t, `transport "quic"`, "load", "direct", "--n", "1", "--node", node, "--worker", worker, "--transport", "quic")
	})
}

// TestLoadWorkersAndRate: --worker takes a comma-separated list and
// --rate the open loop's rate.
func TestLoadWorkersAndRate(t *testing.T) {
	var out lockedBuffer
	e := &env{stdout: &out, stderr: &out, now: time.Now}
	var got loadgen.Config
	cmd := e.loadCommand("x", "", 1, true, func(_ context.Context, cfg loadgen.Config) (*loadgen.Report, error) {
		got = cfg
		return &loadgen.Report{N: 1, Committed: 1}, nil
	})
	if err := cli.Run(context.Background(), cmd, []string{"--worker", "http://127.0.0.1:2000, http://127.0.0.1:2001,,http://127.0.0.1:2002", "--rate", "500"}, &out); err != nil {
		t.Fatal(err)
	}
	if want := []string{"http://127.0.0.1:2000", "http://127.0.0.1:2001", "http://127.0.0.1:2002"}; !slices.Equal(got.WorkerURLs, want) || got.Rate != 500 {
		t.Errorf("config %+v", got)
	}
}

// checkProcs checks that a run against the in-process localnet found
// this process (node, worker and load generator) and the worker's
// enclave child, with their peak RSS.
func checkProcs(t *testing.T, rep *loadgen.Report, self string, wantEnclaves int) {
	t.Helper()
	enclaves := 0
	for _, p := range rep.Procs {
		switch {
		case p.Role == self && p.PID == os.Getpid():
		case p.Role == "enclave" && p.PID != os.Getpid() && strings.HasPrefix(p.Comm, "integritee-encl"):
			enclaves++
		default:
			t.Errorf("process %+v", p)
		}
		if p.PeakRSSMiB <= 0 {
			t.Errorf("process %+v: no peak RSS", p)
		}
	}
	if enclaves != wantEnclaves {
		t.Errorf("%d enclaves found, want %d: %+v", enclaves, wantEnclaves, rep.Procs)
	}
}

func devAddr(name string) tx.Address {
	return tx.AddressOf(accounts.DevKey(name).Public().(ed25519.PublicKey))
}

// TestLoadReportExit checks the summary and that a run with failed calls
// exits non-zero after printing its report.
func TestLoadReportExit(t *testing.T) {
	ok := &loadgen.Report{Kind: "direct", N: 4, Concurrency: 2, Submitted: 4, Committed: 4, Blocks: 2,
		SubmitSeconds: 1, TotalSeconds: 2, SubmittedPerSec: 4, CommittedPerSec: 2, Latency: loadgen.Latency{P50: 1, P90: 2, P99: 3, Max: 3}}
	limited := &loadgen.Report{Kind: "direct", Mode: "open", OfferedPerSec: 500, N: 4, Concurrency: 2, Submitted: 4, Committed: 4,
		Retries: 5, RateLimited: 5, SendLag: &loadgen.Latency{P99: 12}, Late: 1, Limits: []string{"RATE LIMITED: x"},
		Workers: []loadgen.WorkerShare{{URL: "u0", Senders: 1, Executed: 2}, {URL: "u1", Senders: 1, Executed: 2}}}
	failed := &loadgen.Report{Kind: "transfers", N: 4, Concurrency: 1, Submitted: 2, Committed: 1, Failed: 3,
		Failures: map[string]int{"integritee/5": 1, "not_sent": 2}}
	for _, tc := range []struct {
		name     string
		rep      *loadgen.Report
		args     []string
		wantErr  string
		wantOuts []string
	}{
		{"ok", ok, nil, "", []string{"executed   4 in 2.00s (2.0/s)", "shard blocks 2 (2.0 calls per block)", "p99 3.0 ms", "failed 0"}},
		{"ok json", ok, []string{"--json"}, "", []string{`"committed": 4`, `"blocks": 2`}},
		{"limited", limited, nil, "", []string{"!! LIMITED by the per-client rate limit", "open loop", "offered at 500.0/s", "over 2 workers",
			"worker u1: 1 senders, 2 executed", "achieved of 500.0/s offered; LIMITED, not capacity", "rate limited 1030: 5", "late by more", "limit: RATE LIMITED"}},
		{"failed", failed, nil, "some calls failed: 3 of 4 (integritee/5: 1, not_sent: 2)", []string{"failed 3: integritee/5: 1, not_sent: 2"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out, errb lockedBuffer
			e := &env{stdout: &out, stderr: &errb, now: time.Now}
			var got loadgen.Config
			cmd := e.loadCommand("x", "", 1, true,
				func(_ context.Context, cfg loadgen.Config) (*loadgen.Report, error) { got = cfg; return tc.rep, nil })
			err := cli.Run(context.Background(), cmd, append([]string{"--n", "4", "--concurrency", "2"}, tc.args...), &out)
			if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || err.Error() != tc.wantErr) {
				t.Errorf("error %v, want %q", err, tc.wantErr)
			}
			if got.N != 4 || got.Concurrency != 2 || got.Timeout != loadgen.DefaultTimeout || len(got.WorkerURLs) != 1 || got.WorkerURLs[0] != "http://127.0.0.1:2000" {
				t.Errorf("config %+v", got)
			}
			for _, w := range tc.wantOuts {
				if !strings.Contains(out.String(), w) {
					t.Errorf("output lacks %q:\n%s", w, out.String())
				}
			}
		})
	}
}
