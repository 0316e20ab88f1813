package main

import (
	"bytes"
	"context"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/integritee-go/integritee/chain/accounts"
	"github.com/integritee-go/integritee/chain/node"
	"github.com/integritee-go/integritee/client"
	"github.com/integritee-go/integritee/internal/cli"
)

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// syncBuffer collects a child's output for failure messages.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestRunCommands(t *testing.T) {
	var out, errb bytes.Buffer
	if err := run(context.Background(), []string{"version"}, &out, &errb); err != nil || !strings.Contains(out.String(), "integritee-node") {
		t.Fatalf("version: %q %v", out.String(), err)
	}
	home := t.TempDir()
	if err := run(context.Background(), []string{"init", "--home", home, "--dev"}, &out, &errb); err != nil {
		t.Fatal(err)
	}
	if err := run(context.Background(), []string{"init", "--home", home, "--dev"}, &out, &errb); err == nil {
		t.Fatal("second init of the same home succeeded")
	}
	dir := t.TempDir()
	out.Reset()
	if err := run(context.Background(), []string{"testnet", "--n", "3", "--out", dir}, &out, &errb); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if _, err := os.Stat(filepath.Join(dir, "node"+strconv.Itoa(i), "config", "genesis.json")); err != nil {
			t.Fatal(err)
		}
	}
	for _, bad := range [][]string{{}, {"nope"}, {"start"}, {"init"}, {"--home", home}} {
		if err := run(context.Background(), bad, &out, &errb); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// TestCommandFlags: each command takes its own flags only. init used to
// share one flag set with testnet and accepted --n, --out and --base-port.
func TestCommandFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		code int
		err  string
	}{
		{[]string{"init", "--home", t.TempDir(), "--base-port", "3"}, 2, "init: flag provided but not defined: -base-port"},
		{[]string{"init", "--home", t.TempDir(), "--n", "3"}, 2, "-n"},
		{[]string{"init", "--home", t.TempDir(), "--log-level", "debug"}, 2, "-log-level"},
		{[]string{"testnet", "--out", t.TempDir(), "--dev"}, 2, "testnet: flag provided but not defined: -dev"},
		{[]string{"testnet", "--out", t.TempDir(), "--home", "x"}, 2, "-home"},
		{[]string{"start", "--home", t.TempDir(), "--out", "x"}, 2, "-out"},
		{[]string{"version", "--home", "x"}, 2, "-home"},
		{[]string{"--dev", "--out", "x"}, 2, "-out"},
		{[]string{"--home", "x"}, 2, "no command given"},
		{[]string{"init"}, 2, "init: --home is required"},
		{[]string{"nope"}, 2, `unknown command "nope"`},
		{[]string{"version"}, 0, ""},
	} {
		var out, errb bytes.Buffer
		code := cli.Execute(context.Background(), commands(&out, &errb), tc.args, &out, &errb)
		if code != tc.code || !strings.Contains(errb.String(), tc.err) {
			t.Errorf("%q: exit %d, stderr %q; want %d, %q", tc.args, code, errb.String(), tc.code, tc.err)
		}
	}
}

// TestHelp: -h and help list the commands; a command's help lists its
// flags and no other command's.
func TestHelp(t *testing.T) {
	for _, args := range [][]string{{"-h"}, {"help"}, {"--help"}} {
		var out, errb bytes.Buffer
		if code := cli.Execute(context.Background(), commands(&out, &errb), args, &out, &errb); code != 0 || errb.Len() != 0 {
			t.Fatalf("%q: exit %d, stderr %q", args, code, errb.String())
		}
		for _, c := range []string{"init", "start", "testnet", "version", "-dev"} {
			if !strings.Contains(out.String(), c) {
				t.Errorf("%q: help does not list %s:\n%s", args, c, out.String())
			}
		}
	}
	var out bytes.Buffer
	if code := cli.Execute(context.Background(), commands(&out, io.Discard), []string{"help", "init"}, &out, io.Discard); code != 0 {
		t.Fatalf("help init: exit %d", code)
	}
	if h := out.String(); !strings.Contains(h, "usage: integritee-node init --home DIR") || !strings.Contains(h, "-chain-id") || strings.Contains(h, "-base-port") {
		t.Errorf("init help:\n%s", h)
	}
}

// TestSIGKILLLosesNoCommittedTx builds the binary, runs a dev node in a
// child process, commits transfers, kills it with SIGKILL and restarts it on
// the same home: every transaction that was reported committed must still
// be there, with the balances they produced.
func TestSIGKILLLosesNoCommittedTx(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := filepath.Join(t.TempDir(), "integritee-node")
	build := exec.Command("go", "build", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	// The process's exit status of help (issue 14: "flag: help
	// requested", status 1).
	for _, args := range [][]string{{"--help"}, {"-h"}, {"help"}, {"help", "start"}, {"start", "--help"}} {
		var stdout, stderr bytes.Buffer
		cmd := exec.Command(bin, args...)
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil || stderr.Len() != 0 || !strings.Contains(stdout.String(), "usage: integritee-node") {
			t.Fatalf("integritee-node %q: %v, stderr %q, stdout %q", args, err, stderr.String(), stdout.String())
		}
	}
	home := t.TempDir()
	rpc, p2p := freeAddr(t), freeAddr(t)
	start := func() (*exec.Cmd, *syncBuffer) {
		var logs syncBuffer
		cmd := exec.Command(bin, "--dev", "--home", home, "--rpc", rpc, "--p2p", p2p)
		cmd.Stdout, cmd.Stderr = &logs, &logs
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		})
		return cmd, &logs
	}
	connect := func(logs *syncBuffer) *client.Client {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		for {
			c, err := client.New(ctx, "http://"+rpc, client.Options{PollInterval: 20 * time.Millisecond})
			if err == nil {
				return c
			}
			select {
			case <-ctx.Done():
				t.Fatalf("node did not come up: %v\n%s", err, logs.String())
			case <-time.After(100 * time.Millisecond):
			}
		}
	}

	cmd, logs := start()
	c := connect(logs)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	if _, err := c.VerifiedHeader(ctx, 2); err != nil {
		t.Fatal(err)
	}
	params, err := c.Params(ctx)
	if err != nil {
		t.Fatal(err)
	}
	alice, ferdie := accounts.DevKey("Alice"), accounts.DevAddress("Ferdie")
	const n = 20
	var (
		hashes  [][32]byte
		feesSum uint64
	)
	for i := range n {
		call, err := accounts.TransferCall(ferdie, uint64(i+1))
		if err != nil {
			t.Fatal(err)
		}
		wire, err := c.BuildMinFee(alice, uint64(i), params, call)
		if err != nil {
			t.Fatal(err)
		}
		h, err := c.Broadcast(ctx, wire)
		if err != nil {
			t.Fatal(err)
		}
		hashes = append(hashes, h)
		feesSum += params.MinFee(len(wire))
	}
	var committed int64
	for _, h := range hashes {
		s, err := c.WaitTx(ctx, h)
		if err != nil {
			t.Fatal(err)
		}
		committed = max(committed, s.Height)
	}
	// Kill without any chance to clean up.
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()

	_, logs = start()
	c = connect(logs)
	st, err := c.RPC().Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.SyncInfo.LatestBlockHeight < committed {
		t.Fatalf("restarted at height %d, transactions were committed up to %d", st.SyncInfo.LatestBlockHeight, committed)
	}
	for i, h := range hashes {
		if _, err := c.WaitTx(ctx, h); err != nil {
			t.Fatalf("tx %d lost: %v", i, err)
		}
	}
	var sent uint64 = n * (n + 1) / 2
	aliceAcc, err := c.Account(ctx, accounts.DevAddress("Alice"))
	if err != nil {
		t.Fatal(err)
	}
	if aliceAcc.Nonce != n || aliceAcc.Balance != accounts.DevBalance-sent-feesSum {
		t.Fatalf("Alice after restart: %+v, want nonce %d balance %d", aliceAcc, n, accounts.DevBalance-sent-feesSum)
	}
	ferdieAcc, err := c.Account(ctx, ferdie)
	if err != nil || ferdieAcc.Balance != accounts.DevBalance+sent {
		t.Fatalf("Ferdie after restart: %+v %v", ferdieAcc, err)
	}
	// And the chain still accepts transactions.
	if _, err := c.Transfer(ctx, alice, ferdie, 1); err != nil {
		t.Fatalf("after restart: %v\n%s", err, logs.String())
	}
}

// init --metrics writes metrics_listen into node.json; start --metrics
// overrides it, and an address that cannot listen stops the start.
func TestMetricsFlag(t *testing.T) {
	home := t.TempDir()
	var out, errb bytes.Buffer
	if err := run(context.Background(), []string{"init", "--home", home, "--dev", "--metrics", "127.0.0.1:0"}, &out, &errb); err != nil {
		t.Fatal(err)
	}
	c, err := node.LoadConfig(home)
	if err != nil {
		t.Fatal(err)
	}
	if c.MetricsListen != "127.0.0.1:0" {
		t.Fatalf("node.json metrics_listen %q, want 127.0.0.1:0", c.MetricsListen)
	}
	err = run(context.Background(), []string{"start", "--home", home, "--metrics", "127.0.0.1:not-a-port"}, &out, &errb)
	if err == nil || !strings.Contains(err.Error(), "metrics listener") {
		t.Fatalf("start with a bad --metrics: %v", err)
	}
}
