package localnet_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/integritee-go/integritee/localnet"
	"github.com/integritee-go/integritee/worker/rpc"
	"github.com/integritee-go/integritee/worker/rpc/api"
)

// TestWorkerRPCLimits: Config.WorkerRPC reaches each worker's JSON-RPC
// server. With a burst of 4 (and no refill to speak of) a batch of 5 is
// too large (its arrival still takes a token), a batch of 3 takes the
// rest, and the next request is rate-limited. The old Config had no such
// field: every worker ran the fixed defaults (200/s, burst 400), which
// answer all three.
func TestWorkerRPCLimits(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	net, err := localnet.Start(ctx, localnet.Config{EnclaveBinary: bins.enclave, Logger: testLogger(),
		WorkerRPC: rpc.Options{RateLimit: 0.001, RateBurst: 4}})
	if err != nil {
		t.Fatal(err)
	}
	defer net.Stop()
	url := net.Workers()[0].RPCAddr()
	batch := func(n int) string {
		parts := make([]string, n)
		for i := range parts {
			parts[i] = `{"jsonrpc":"2.0","id":1,"method":"system_version"}`
		}
		return "[" + strings.Join(parts, ",") + "]"
	}
	post := func(body string) (int, string) {
		t.Helper()
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, string(b)
	}
	errCode := func(body string) int {
		var m struct{ Error *api.Error }
		json.Unmarshal([]byte(body), &m)
		if m.Error == nil {
			return 0
		}
		return m.Error.Code
	}
	if code, body := post(batch(5)); errCode(body) != api.CodeInvalidRequest {
		t.Fatalf("batch of 5 with a burst of 4: %d %s", code, body)
	}
	// The refused batch took its arrival's token: 3 are left.
	if code, body := post(batch(3)); code != http.StatusOK || strings.Contains(body, `"error"`) {
		t.Fatalf("batch of 3 within the burst: %d %s", code, body)
	}
	if code, body := post(batch(1)); code != http.StatusTooManyRequests || errCode(body) != api.CodeRateLimited {
		t.Fatalf("request beyond the burst: %d %s", code, body)
	}
}
