package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		args []string
		err  string
	}{
		{nil, ""},
		{[]string{"--tee", "sgx"}, "want sim or gramine"},
		{[]string{"--confirm-every", "0"}, "want 1..65536"},
		{[]string{"extra"}, "unexpected arguments"},
		{[]string{"--nope"}, "flag provided but not defined"},
	} {
		_, err := parse(tc.args, io.Discard)
		if tc.err == "" && err != nil || tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("parse(%q) = %v, want %q", tc.args, err, tc.err)
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
