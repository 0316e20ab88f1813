package localnet_test

import (
	"context"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/integritee-go/integritee/client"
	"github.com/integritee-go/integritee/client/trusted"
	"github.com/integritee-go/integritee/loadgen"
	"github.com/integritee-go/integritee/localnet"
	"github.com/integritee-go/integritee/worker/rpc"
)

// TestSidechainLoad measures direct calls on one worker and on three
// workers of one shard, the calls spread over the workers' URLs (one
// loadgen run per worker, all at once), with the workers' per-IP RPC
// limits lifted so that no rate limiter is measured. It prints the
// figures the README reports; it runs only with INTEGRITEE_LOAD=1 (it
// asserts only that every call succeeded: tests do not depend on timing).
func TestSidechainLoad(t *testing.T) {
	if os.Getenv("INTEGRITEE_LOAD") != "1" {
		t.Skip("a measurement: INTEGRITEE_LOAD=1 go test -run TestSidechainLoad -v ./localnet/")
	}
	lifted := rpc.Options{RateLimit: 1e6, RateBurst: 1 << 20, MaxConns: 1 << 14, MaxConnsPerIP: 1 << 14,
		QueueSize: 1 << 16, MaxInFlight: 1 << 14}
	for _, tc := range []struct {
		workers, senders, n int
	}{{1, 48, 3000}, {3, 48, 3000}, {3, 24, 3000}, {1, 8, 1500}, {3, 8, 1500}} {
		t.Run(fmt.Sprintf("workers=%d/senders=%d", tc.workers, tc.senders), func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
			defer cancel()
			n, err := localnet.Start(ctx, localnet.Config{Workers: tc.workers, EnclaveBinary: bins.enclave, Logger: testLogger(), WorkerRPC: lifted})
			if err != nil {
				t.Fatal(err)
			}
			defer n.Stop()
			c, err := client.New(ctx, n.NodeRPC(), client.Options{})
			if err != nil {
				t.Fatal(err)
			}
			for _, w := range n.Workers() {
				for {
					tcl, err := trusted.Dial(ctx, w.RPCAddr(), c, trusted.Options{})
					if err == nil {
						if h, err := tcl.Health(ctx); err == nil && h.Voters == tc.workers && h.Leader != "" {
							break
						}
					}
					time.Sleep(200 * time.Millisecond)
				}
			}
			var (
				mu      sync.Mutex
				reports []*loadgen.Report
				wg      sync.WaitGroup
			)
			for i, w := range n.Workers() {
				wg.Add(1)
				go func() {
					defer wg.Done()
					r, err := loadgen.Direct(ctx, loadgen.Config{NodeURL: n.NodeRPC(), WorkerURL: w.RPCAddr(),
						N: tc.n / tc.workers, Concurrency: tc.senders / tc.workers, Tag: fmt.Sprintf("w%d", i), Timeout: 5 * time.Minute,
						Funder: []string{"Alice", "Bob", "Charlie"}[i]})
					if err != nil {
						t.Errorf("worker %d: %v", i, err)
						return
					}
					mu.Lock()
					reports = append(reports, r)
					mu.Unlock()
				}()
			}
			wg.Wait()
			var committed, failed int
			var total float64
			for i, r := range reports {
				committed += r.Committed
				failed += r.Failed
				total = max(total, r.TotalSeconds)
				t.Logf("run %d: %d executed in %.2fs (%.0f/s), latency p50 %.1f p90 %.1f p99 %.1f max %.1f ms, %d shard blocks, failures %v",
					i, r.Committed, r.TotalSeconds, r.CommittedPerSec, r.Latency.P50, r.Latency.P90, r.Latency.P99, r.Latency.Max, r.Blocks, r.Failures)
			}
			t.Logf("workers=%d senders=%d: %d executed, %d failed, %.0f calls/s in all", tc.workers, tc.senders, committed, failed, float64(committed)/total)
			if failed != 0 {
				t.Errorf("%d calls failed", failed)
			}
		})
	}
}
