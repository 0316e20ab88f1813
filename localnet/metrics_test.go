package localnet_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/integritee-go/integritee/enclave/protocol"
	"github.com/integritee-go/integritee/localnet"
	"github.com/integritee-go/integritee/worker/rpc/api"
)

// metrics is one scrape of a /metrics endpoint.
type metrics map[string]*dto.MetricFamily

func scrape(t *testing.T, ctx context.Context, base string) metrics {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/metrics", nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("GET %s/metrics: %s", base, res.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(res.Body)
	if err != nil {
		t.Fatalf("parse %s/metrics: %v", base, err)
	}
	return mfs
}

// get sums the metrics of family name whose labels include labels (given
// as name, value pairs): counter, gauge or untyped values, a histogram's
// sample count. ok is false if none matched.
func (m metrics) get(name string, labels ...string) (v float64, ok bool) {
	mf := m[name]
	if mf == nil {
		return 0, false
	}
metric:
	for _, x := range mf.GetMetric() {
		for i := 0; i+1 < len(labels); i += 2 {
			found := false
			for _, lp := range x.GetLabel() {
				if lp.GetName() == labels[i] && lp.GetValue() == labels[i+1] {
					found = true
				}
			}
			if !found {
				continue metric
			}
		}
		ok = true
		switch {
		case x.Counter != nil:
			v += x.GetCounter().GetValue()
		case x.Gauge != nil:
			v += x.GetGauge().GetValue()
		case x.Histogram != nil:
			v += float64(x.GetHistogram().GetSampleCount())
		case x.Untyped != nil:
			v += x.GetUntyped().GetValue()
		}
	}
	return v, ok
}

// grew checks that a metric is present in after and larger than in before.
func grew(t *testing.T, who string, before, after metrics, name string, labels ...string) {
	t.Helper()
	b, _ := before.get(name, labels...)
	a, ok := after.get(name, labels...)
	if !ok || a <= b {
		t.Errorf("%s: %s%v went from %v to %v (present: %v); want it to grow", who, name, labels, b, a, ok)
	}
}

// atLeast checks a metric's value.
func atLeast(t *testing.T, who string, m metrics, min float64, name string, labels ...string) {
	t.Helper()
	if v, ok := m.get(name, labels...); !ok || v < min {
		t.Errorf("%s: %s%v = %v (present: %v); want at least %v", who, name, labels, v, ok, min)
	}
}

// waitFor scrapes base until cond holds (or ctx ends).
func waitFor(t *testing.T, ctx context.Context, base, what string, cond func(metrics) bool) {
	t.Helper()
	for !cond(scrape(t, ctx, base)) {
		select {
		case <-ctx.Done():
			t.Fatalf("%s: %s never held", base, what)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// TestMetricsMoveWithCalls is the acceptance test of the metrics (issue
// 14): a two-worker localnet serves /metrics on the node and on each
// worker; after the demo's calls (a shield, direct transfers on both
// workers, an unshield), a WebSocket client and a request for an unknown
// method, the metrics that count them have grown.
func TestMetricsMoveWithCalls(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	n, err := localnet.Start(ctx, localnet.Config{Workers: 2, EnclaveBinary: bins.enclave, Logger: testLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Stop()
	ws := n.Workers()
	if n.NodeMetrics() == "" || ws[0].MetricsAddr() == "" || ws[1].MetricsAddr() == "" {
		t.Fatalf("metrics addresses: node %q, workers %q %q", n.NodeMetrics(), ws[0].MetricsAddr(), ws[1].MetricsAddr())
	}
	var desc bytes.Buffer
	n.Describe(&desc)
	for _, a := range []string{n.NodeMetrics(), ws[0].MetricsAddr(), ws[1].MetricsAddr()} {
		if !strings.Contains(desc.String(), a+"/metrics") {
			t.Errorf("localnet's description lacks %s/metrics:\n%s", a, desc.String())
		}
	}

	nodeBefore := scrape(t, ctx, n.NodeMetrics())
	// Both workers registered before Start returned: verified and
	// counted by the app.
	atLeast(t, "node", nodeBefore, 2, "integritee_teerex_registrations_total", "type", "registered")
	atLeast(t, "node", nodeBefore, 2, "integritee_teerex_attestation_verification_seconds", "result", "ok")
	atLeast(t, "node", nodeBefore, 2, "integritee_app_transactions_total", "module", "teerex", "code", "0")
	atLeast(t, "node", nodeBefore, 1, "cometbft_consensus_height")
	before := []metrics{scrape(t, ctx, ws[0].MetricsAddr()), scrape(t, ctx, ws[1].MetricsAddr())}
	for i, m := range before {
		who := fmt.Sprintf("worker %d", i)
		if v, _ := m.get("integritee_worker_registration_expiry_timestamp_seconds"); v < float64(time.Now().Unix()) {
			t.Errorf("%s: registration expiry %v is not in the future", who, v)
		}
		atLeast(t, who, m, 1, "integritee_worker_chain_processed_height")
	}

	// A WebSocket client is counted while connected.
	conn, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(ws[0].RPCAddr(), "http"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.CloseNow()
	waitFor(t, ctx, ws[0].MetricsAddr(), "one WebSocket client", func(m metrics) bool {
		v, _ := m.get("integritee_worker_rpc_websocket_clients")
		return v == 1
	})
	// An unknown method is counted with its error code.
	res, err := http.Post(ws[0].RPCAddr(), "application/json", strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"no_such_method"}`))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()

	var out bytes.Buffer
	if err := n.Demo(ctx, &out); err != nil {
		t.Fatalf("demo: %v\n%s", err, out.String())
	}

	nodeAfter := scrape(t, ctx, n.NodeMetrics())
	grew(t, "node", nodeBefore, nodeAfter, "cometbft_consensus_height")
	// The mempool size is a gauge (often 0 between blocks); the
	// consensus total of transactions only grows.
	grew(t, "node", nodeBefore, nodeAfter, "cometbft_consensus_total_txs")
	grew(t, "node", nodeBefore, nodeAfter, "integritee_app_transactions_total", "module", "bridge", "code", "0")
	grew(t, "node", nodeBefore, nodeAfter, "integritee_app_check_tx_total", "code", "0")
	grew(t, "node", nodeBefore, nodeAfter, "integritee_bridge_unshields_total")
	grew(t, "node", nodeBefore, nodeAfter, "integritee_app_events_total", "type", "bridge.unshielded")

	after := []metrics{scrape(t, ctx, ws[0].MetricsAddr()), scrape(t, ctx, ws[1].MetricsAddr())}
	leaders := 0.0
	for i := range ws {
		who, b, a := fmt.Sprintf("worker %d", i), before[i], after[i]
		// The demo sends a direct transfer to each worker.
		grew(t, who, b, a, "integritee_worker_direct_calls_total", "outcome", "executed")
		grew(t, who, b, a, "integritee_worker_direct_batch_calls")
		submits := func(m metrics) float64 {
			x, _ := m.get("integritee_worker_rpc_requests_total", "method", api.MethodSubmitTrustedCall, "code", "0")
			y, _ := m.get("integritee_worker_rpc_requests_total", "method", api.MethodSubmitAndWatchTrustedCall, "code", "0")
			return x + y
		}
		if submits(a) <= submits(b) {
			t.Errorf("%s: submissions counted went from %v to %v; want them to grow", who, submits(b), submits(a))
		}
		grew(t, who, b, a, "integritee_worker_rpc_requests_total", "method", api.MethodExecuteGetter, "code", "0")
		grew(t, who, b, a, "integritee_worker_enclave_request_seconds", "request", protocol.TypeSubmitCalls)
		grew(t, who, b, a, "integritee_worker_enclave_request_seconds", "request", protocol.TypeProcessBlock)
		grew(t, who, b, a, "integritee_worker_store_commit_seconds")
		grew(t, who, b, a, "integritee_worker_chain_blocks_processed_total")
		grew(t, who, b, a, "integritee_worker_chain_processed_height")
		grew(t, who, b, a, "integritee_worker_sidechain_block_number")
		grew(t, who, b, a, "integritee_worker_outbox_settled_total", "result", "included")
		atLeast(t, who, a, 1, "integritee_worker_chain_head_height")
		atLeast(t, who, a, 0, "integritee_worker_chain_lag_blocks")
		atLeast(t, who, a, 0, "integritee_worker_outbox_calls")
		atLeast(t, who, a, 2, "integritee_worker_sidechain_voters")
		v, _ := a.get("integritee_worker_sidechain_leader")
		leaders += v
	}
	if leaders != 1 {
		t.Errorf("%v workers report leading the shard's group, want 1", leaders)
	}
	if v, _ := after[0].get("integritee_worker_rpc_requests_total", "method", "unknown", "code", fmt.Sprint(api.CodeMethodNotFound)); v != 1 {
		t.Errorf("worker 0 counted %v requests for unknown methods, want 1", v)
	}

	conn.Close(websocket.StatusNormalClosure, "")
	waitFor(t, ctx, ws[0].MetricsAddr(), "no WebSocket client", func(m metrics) bool {
		v, _ := m.get("integritee_worker_rpc_websocket_clients")
		return v == 0
	})
}
