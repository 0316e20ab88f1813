package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/integritee-go/integritee/internal/cli"
)

// initConfig runs 'integritee-worker init' with args.
func initConfig(t *testing.T, args ...string) string {
	t.Helper()
	var out bytes.Buffer
	if err := cli.Run(context.Background(), commands(&out, io.Discard, nil), append([]string{"init"}, args...), &out); err != nil {
		t.Fatalf("init %q: %v", args, err)
	}
	return out.String()
}

// TestInitConfigStartsUnchanged: the file init writes, with the defaults
// or with flags, starts the worker with the options the same flags give
// without a file; a flag given at start overrides the file.
func TestInitConfigStartsUnchanged(t *testing.T) {
	for _, flags := range [][]string{
		nil,
		{"--node", "http://10.0.0.1:26657", "--dev", "--confirm-heartbeat", "90s", "--rpc-rate", "12.5", "--rpc-ws-ping", "7s",
			"--provision-from", "http://a:1", "--provision-from", "http://b:2", "--enclave-arg", "--x", "--log-format", "json"},
	} {
		data := t.TempDir()
		args := append([]string{"--data", data}, flags...)
		want, err := parse(args, io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		out := initConfig(t, args...)
		path := filepath.Join(data, ConfigFile)
		if !strings.Contains(out, path) {
			t.Fatalf("init says %q", out)
		}
		if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("%s: %v %v", path, fi, err)
		}
		// Found in the data directory.
		got, err := parse([]string{"--data", data}, io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("from the file:\n%+v\nwant\n%+v", got, want)
		}
		// Named with --config, from anywhere.
		got, err = parse([]string{"--config", path}, io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		want.Config = path
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("with --config:\n%+v\nwant\n%+v", got, want)
		}
		// A flag overrides the file; the rest stays.
		got, err = parse([]string{"--data", data, "--rpc-rate", "99", "--provision-from", "http://c:3"}, io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		if got.RPCLimits.RateLimit != 99 || !reflect.DeepEqual(got.ProvisionFrom, []string{"http://c:3"}) || got.Node != want.Node || got.Dev != want.Dev {
			t.Fatalf("override: %+v", got)
		}
	}
}

func TestInitConfigRefused(t *testing.T) {
	data := t.TempDir()
	initConfig(t, "--data", data)
	path := filepath.Join(data, ConfigFile)
	// init neither overwrites nor writes a value start would refuse.
	err := cli.Run(context.Background(), commands(io.Discard, io.Discard, nil), []string{"init", "--data", data}, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "exists (--force replaces it)") {
		t.Fatalf("second init: %v", err)
	}
	err = cli.Run(context.Background(), commands(io.Discard, io.Discard, nil), []string{"init", "--data", t.TempDir(), "--tee", "sgx"}, io.Discard)
	if ue := (*cli.UsageError)(nil); !errors.As(err, &ue) {
		t.Fatalf("init --tee sgx: %v", err)
	}
	initConfig(t, "--data", data, "--force", "--rpc", "127.0.0.1:2001")
	if o, err := parse([]string{"--data", data}, io.Discard); err != nil || o.RPC != "127.0.0.1:2001" {
		t.Fatalf("after --force: %+v %v", o, err)
	}

	orig, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ add, want string }{
		{"rpc_rate = 5\n", `unknown setting "rpc_rate"`},
		{"config = 'other.toml'\n", `unknown setting "config"`},
		{"[limits]\nrate = 5\n", `unknown setting "limits"`},
		{"rpc = 5\n", "is already defined"},
	} {
		if err := os.WriteFile(path, append(orig, tc.add...), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := parse([]string{"--data", data}, io.Discard); err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), path) {
			t.Errorf("%q: err = %v, want %q naming the file", tc.add, err, tc.want)
		}
	}
	// A value start refuses is refused from the file as from a flag.
	for _, tc := range []struct{ value, want string }{
		{"confirm-heartbeat = '-1s'", "want 0 or more"},
		{"confirm-heartbeat = 2", `want a duration as a string like "10s", got the number 2`},
		{"confirm-heartbeat = '1.5ms'", "in whole milliseconds"},
	} {
		if err := os.WriteFile(path, bytes.Replace(orig, []byte("confirm-heartbeat = '5m0s'"), []byte(tc.value), 1), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := parse([]string{"--data", data}, io.Discard); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.value, err, tc.want)
		}
	}
	if _, err := parse([]string{"--config", filepath.Join(data, "none.toml")}, io.Discard); err == nil || !strings.Contains(err.Error(), "no such file") {
		t.Errorf("missing --config file: %v", err)
	}
}
