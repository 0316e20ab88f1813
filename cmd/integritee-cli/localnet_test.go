package main

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/integritee-go/integritee/chain/node"
	"github.com/integritee-go/integritee/localnet"
)

// lockedBuffer is a bytes.Buffer written by the command while the test
// reads it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestLocalnetCommand runs `integritee-cli localnet` with one and with two
// workers: the demo passes, and every command it then suggests works when
// run as printed (direct calls watched until confirmed, to the first
// worker and, with two, to the second). Ports are free ones, so the
// suggestions carry --node and --worker.
func TestLocalnetCommand(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	enclave, err := localnet.BuildEnclave(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		workers int
		path    string
	}{{1, "--watch"}, {2, "--watch"}} {
		t.Run(fmt.Sprintf("workers=%d", tc.workers), func(t *testing.T) {
			var out lockedBuffer
			e := &env{stdout: &out, stderr: &bytes.Buffer{}, now: time.Now}
			sctx, stop := context.WithCancel(ctx)
			done := make(chan error, 1)
			go func() {
				done <- serveLocalnet(sctx, e, localnet.Config{Workers: tc.workers, EnclaveBinary: enclave, ConfirmHeartbeat: time.Minute}, true, false)
			}()
			waitRunning(ctx, t, &out, done, stop)
			text := out.String()
			if !strings.Contains(text, "demo passed") {
				t.Errorf("no demo in the output:\n%s", text)
			}
			var cmds [][]string
			for _, line := range strings.Split(text, "\n") {
				if rest, ok := strings.CutPrefix(strings.TrimSpace(line), cliCommand+" "); ok {
					cmds = append(cmds, strings.Fields(rest))
				}
			}
			if len(cmds) != 5+tc.workers || !strings.Contains(text, "trusted transfer "+tc.path) || !strings.Contains(text, "trusted unshield "+tc.path) {
				t.Errorf("suggested commands (want the %s path):\n%s", tc.path, text)
			}
			for _, args := range cmds {
				// The real clock: the trusted commands sign getters that
				// expire by the localnet's chain time.
				code, stdout, stderr := runCLIAt(t, time.Now, nil, args...)
				if code != 0 {
					t.Errorf("%s %s: exit %d: %s", cliCommand, strings.Join(args, " "), code, stderr)
				} else {
					t.Logf("%s %s:\n%s", cliCommand, strings.Join(args, " "), stdout)
				}
			}
			stop()
			if err := <-done; err != nil {
				t.Fatalf("localnet: %v", err)
			}
		})
	}
}

// waitRunning waits until serveLocalnet says the localnet is running, and
// fails the test if it stopped or ctx ended first.
func waitRunning(ctx context.Context, t *testing.T, out *lockedBuffer, done <-chan error, stop context.CancelFunc) {
	t.Helper()
	for !strings.Contains(out.String(), "localnet running") {
		select {
		case err := <-done:
			stop()
			t.Fatalf("localnet stopped: %v\n%s", err, out.String())
		case <-ctx.Done():
			stop()
			t.Fatalf("localnet not running:\n%s", out.String())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// TestLocalnetNoWorkers: `localnet --workers 0` (a node for workers started
// apart) comes up and trusts its chain although no worker waited for its
// first block (it read the latest commit before there was one, and
// crashed); a block time (--block-time) is its node's timeout_commit.
func TestLocalnetNoWorkers(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var out lockedBuffer
	e := &env{stdout: &out, stderr: &bytes.Buffer{}, now: time.Now, trustDir: t.TempDir()}
	sctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	dir := t.TempDir()
	go func() {
		done <- serveLocalnet(sctx, e, localnet.Config{NoWorkers: true, Dir: dir, BlockTime: 400 * time.Millisecond}, false, false)
	}()
	waitRunning(ctx, t, &out, done, stop)
	if !strings.Contains(out.String(), "now trusts this chain") {
		t.Errorf("the chain is not trusted:\n%s", out.String())
	}
	if c, err := node.LoadConfig(filepath.Join(dir, "node")); err != nil || time.Duration(c.TimeoutCommit) != 400*time.Millisecond {
		t.Errorf("node timeout_commit %v (%v), want 400ms", c.TimeoutCommit, err)
	}
	stop()
	if err := <-done; err != nil {
		t.Fatalf("localnet: %v", err)
	}
}

// TestLocalnetRPCLimitFlags: the workers' RPC limits refuse negative
// values before anything starts (that they reach the workers is
// localnet.TestWorkerRPCLimits).
func TestLocalnetRPCLimitFlags(t *testing.T) {
	cliFails(t, "--worker-rpc-rate: want a positive value", "localnet", "--worker-rpc-rate", "-1")
	cliFails(t, "--worker-rpc-burst: want a positive value", "localnet", "--worker-rpc-burst", "-5")
	cliFails(t, "--worker-rpc-max-conns-per-ip: want a positive value", "localnet", "--worker-rpc-max-conns-per-ip", "0")
	cliFails(t, "--worker-rpc-call-queue: want a positive value", "localnet", "--worker-rpc-call-queue", "0")
	cliFails(t, "--worker-rpc-calls-per-round 2000: want 1..1024", "localnet", "--worker-rpc-calls-per-round", "2000")
	cliFails(t, "--block-time 5ms: want 0, or 10ms or more", "localnet", "--block-time", "5ms")
	cliFails(t, "--block-time 10.5ms: want 0, or 10ms or more", "localnet", "--block-time", "10.5ms")
}
