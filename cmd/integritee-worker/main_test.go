package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/integritee-go/integritee/internal/cli"
	"github.com/integritee-go/integritee/worker/rpc"
)

// parse runs the command line as the worker would, up to starting it, and
// returns the options it would start with.
func parse(args []string, stderr io.Writer) (*options, error) {
	var got *options
	err := cli.Run(context.Background(), commands(io.Discard, stderr, func(_ context.Context, o *options, _ io.Writer) error {
		got = o
		return nil
	}), args, io.Discard)
	return got, err
}

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		args []string
		err  string
	}{
		{nil, ""},
		{[]string{"--tee", "sgx"}, "want sim or gramine"},
		{[]string{"--confirm-heartbeat", "-1s"}, "want 0 or more"},
		{[]string{"--confirm-heartbeat", "1500us"}, "in whole milliseconds"},
		{[]string{"--confirm-heartbeat", "0"}, ""},
		{[]string{"extra"}, `unknown command "extra"`},
		{[]string{"--dev", "extra"}, `unexpected argument "extra"`},
		{[]string{"version", "--dev"}, "version: flag provided but not defined: -dev"},
		{[]string{"--nope"}, "flag provided but not defined"},
		{[]string{"--rpc-rate", "0"}, "--rpc-rate: want a positive value"},
		{[]string{"--rpc-getters", "-1"}, "--rpc-getters: want a positive value"},
		{[]string{"--rpc-ws-idle-timeout", "0s"}, "--rpc-ws-idle-timeout: want a positive value"},
		{[]string{"--rpc-rate", "NaN"}, "--rpc-rate: want a positive value"},
		{[]string{"--rpc-max-in-flight", "0"}, "--rpc-max-in-flight: want a positive value"},
		{[]string{"--rpc-calls-per-round", "1025"}, "--rpc-calls-per-round 1025: want 1..1024"},
	} {
		_, err := parse(tc.args, io.Discard)
		if tc.err == "" && err != nil || tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("parse(%q) = %v, want %q", tc.args, err, tc.err)
		}
		var ue *cli.UsageError
		if tc.err != "" && !errors.As(err, &ue) {
			t.Errorf("parse(%q) = %v, not a usage error (exit 2)", tc.args, err)
		}
	}
}

func TestShardAndEnclavePath(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "integritee-enclave")
	if err := os.WriteFile(bin, []byte("enclave"), 0o755); err != nil {
		t.Fatal(err)
	}
	got, err := shard("", "sim", bin)
	if err != nil || got != sha256.Sum256([]byte("enclave")) {
		t.Errorf("sim default shard = %x, %v", got, err)
	}
	want := strings.Repeat("ab", 32)
	if got, err := shard(want, "gramine", bin); err != nil || got[0] != 0xab {
		t.Errorf("--shard: %x, %v", got, err)
	}
	for _, bad := range []string{"ab", strings.Repeat("zz", 32)} {
		if _, err := shard(bad, "sim", bin); err == nil {
			t.Errorf("--shard %q accepted", bad)
		}
	}
	if _, err := shard("", "gramine", bin); err == nil {
		t.Error("gramine without --shard accepted")
	}
	if p, err := enclavePath(bin); err != nil || p != bin {
		t.Errorf("enclavePath(%q) = %q, %v", bin, p, err)
	}
	t.Setenv("PATH", t.TempDir())
	if _, err := enclavePath(""); err == nil || !strings.Contains(err.Error(), "--enclave") {
		t.Errorf("missing enclave: %v", err)
	}
}

func TestVersionAndHelp(t *testing.T) {
	var out bytes.Buffer
	if err := run(context.Background(), []string{"version"}, &out, io.Discard); err != nil || !strings.HasPrefix(out.String(), "integritee-worker ") {
		t.Errorf("version: %q, %v", out.String(), err)
	}
	out.Reset()
	if err := run(context.Background(), []string{"-h"}, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"usage: integritee-worker", "version", "-rpc-ws-idle-timeout", "-provision-from"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("help does not contain %q:\n%s", want, out.String())
		}
	}
}

// TestStopsWhileWaitingForNode: Ctrl-C ends a worker that is still
// waiting for its node, without error.
func TestStopsWhileWaitingForNode(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "integritee-enclave")
	if err := os.WriteFile(bin, []byte("enclave"), 0o755); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	err := run(ctx, []string{"--node", "http://127.0.0.1:1", "--enclave", bin, "--data", t.TempDir(), "--log-level", "error"}, io.Discard, io.Discard)
	if err != nil {
		t.Errorf("run stopped by its context: %v", err)
	}
}

// TestRPCLimitFlags: the JSON-RPC limits are flags with rpc.Options'
// defaults, and what an operator sets reaches the worker's config. The old
// command had no such flags (the limits were fixed: "flag provided but
// not defined").
func TestRPCLimitFlags(t *testing.T) {
	o, err := parse(nil, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	d := rpc.Options{}.WithDefaults()
	got := o.RPCLimits
	if got.RateLimit != d.RateLimit || got.RateBurst != d.RateBurst || got.MaxConns != d.MaxConns || got.MaxConnsPerIP != d.MaxConnsPerIP ||
		got.MaxGetters != d.MaxGetters || got.GetterQueueSize != d.GetterQueueSize || got.QueueSize != d.QueueSize ||
		got.ReadTimeout != d.ReadTimeout || got.WriteTimeout != d.WriteTimeout || got.IdleTimeout != d.IdleTimeout ||
		got.WSPingInterval != d.WSPingInterval || got.WSIdleTimeout != d.WSIdleTimeout || got.MaxBatchRequests != d.MaxBatchRequests ||
		got.MaxRequestBytes != d.MaxRequestBytes || got.MaxInFlight != d.MaxInFlight || got.MaxSubscriptions != d.MaxSubscriptions ||
		got.MaxCallsPerRound != d.MaxCallsPerRound {
		t.Fatalf("flag defaults %+v, want rpc.Options' %+v", got, d)
	}

	bin := filepath.Join(t.TempDir(), "integritee-enclave")
	if err := os.WriteFile(bin, []byte("enclave"), 0o755); err != nil {
		t.Fatal(err)
	}
	o, err = parse([]string{"--enclave", bin, "--rpc-rate", "5000", "--rpc-burst", "10000", "--rpc-max-conns", "7", "--rpc-max-conns-per-ip", "3",
		"--rpc-getters", "2", "--rpc-getter-queue", "9", "--rpc-call-queue", "11", "--rpc-read-timeout", "3s", "--rpc-write-timeout", "4s",
		"--rpc-idle-timeout", "5s", "--rpc-ws-ping", "6s", "--rpc-ws-idle-timeout", "7m",
		"--rpc-max-batch", "12", "--rpc-max-request-bytes", "13", "--rpc-max-in-flight", "14", "--rpc-max-subscriptions", "15", "--rpc-calls-per-round", "16"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config(o, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	want := rpc.Options{RateLimit: 5000, RateBurst: 10000, MaxConns: 7, MaxConnsPerIP: 3, MaxGetters: 2, GetterQueueSize: 9, QueueSize: 11,
		ReadTimeout: 3 * time.Second, WriteTimeout: 4 * time.Second, IdleTimeout: 5 * time.Second, WSPingInterval: 6 * time.Second, WSIdleTimeout: 7 * time.Minute,
		MaxBatchRequests: 12, MaxRequestBytes: 13, MaxInFlight: 14, MaxSubscriptions: 15, MaxCallsPerRound: 16}
	if !reflect.DeepEqual(cfg.RPC, want) {
		t.Fatalf("worker config RPC %+v, want %+v", cfg.RPC, want)
	}
}

// --metrics-addr reaches the worker's configuration; without it the
// worker serves no metrics.
func TestMetricsAddrFlag(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "integritee-enclave")
	if err := os.WriteFile(bin, []byte("enclave"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--enclave", bin}, ""},
		{[]string{"--enclave", bin, "--metrics-addr", "127.0.0.1:2090"}, "127.0.0.1:2090"},
	} {
		o, err := parse(tc.args, io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		cfg, err := config(o, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		if cfg.MetricsListen != tc.want {
			t.Errorf("%q: MetricsListen %q, want %q", tc.args, cfg.MetricsListen, tc.want)
		}
	}
}
