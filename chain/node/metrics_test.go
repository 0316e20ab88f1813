package node_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/integritee-go/integritee/chain/accounts"
	"github.com/integritee-go/integritee/chain/node"
	"github.com/integritee-go/integritee/chain/node/nodetest"
	"github.com/integritee-go/integritee/client"
)

func scrape(t *testing.T, ctx context.Context, base string) map[string]*dto.MetricFamily {
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
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return mfs
}

// value is the value of the metric of family name whose labels are
// exactly labels (name, value pairs); ok is false if there is none.
func value(mfs map[string]*dto.MetricFamily, name string, labels ...string) (float64, bool) {
	mf := mfs[name]
	if mf == nil {
		return 0, false
	}
	for _, m := range mf.GetMetric() {
		got := map[string]string{}
		for _, lp := range m.GetLabel() {
			got[lp.GetName()] = lp.GetValue()
		}
		match := len(got) == len(labels)/2
		for i := 0; match && i+1 < len(labels); i += 2 {
			match = got[labels[i]] == labels[i+1]
		}
		if !match {
			continue
		}
		switch {
		case m.Counter != nil:
			return m.GetCounter().GetValue(), true
		case m.Gauge != nil:
			return m.GetGauge().GetValue(), true
		}
	}
	return 0, false
}

// Two nodes in one process serve their metrics each from a registry of
// its own: the metrics address comes from node.json or from StartOptions,
// CometBFT's metrics carry each node's chain ID, and a transfer on one
// node counts there only.
func TestMetricsPerNode(t *testing.T) {
	ctx := ctxT(t)
	// Node a: metrics_listen in node.json.
	homeA := t.TempDir()
	c := nodetest.Config(t)
	c.MetricsListen = "127.0.0.1:0"
	if err := node.Init(homeA, node.InitOptions{Dev: true, ChainID: "metrics-a", Config: &c}); err != nil {
		t.Fatal(err)
	}
	a := nodetest.Start(t, homeA, 2)
	// Node b: the address given at start (the --metrics flag).
	homeB := t.TempDir()
	c = nodetest.Config(t)
	if err := node.Init(homeB, node.InitOptions{Dev: true, ChainID: "metrics-b", Config: &c}); err != nil {
		t.Fatal(err)
	}
	b, err := node.Start(homeB, node.StartOptions{Modules: node.Modules(), MetricsListen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Stop() })
	if a.MetricsAddress() == "" || b.MetricsAddress() == "" || a.MetricsAddress() == b.MetricsAddress() {
		t.Fatalf("metrics addresses %q and %q", a.MetricsAddress(), b.MetricsAddress())
	}

	ca, err := client.New(ctx, a.RPCAddress(), client.Options{PollInterval: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	params, err := ca.Params(ctx)
	if err != nil {
		t.Fatal(err)
	}
	call, err := accounts.TransferCall(accounts.DevAddress("Bob"), accounts.Unit)
	if err != nil {
		t.Fatal(err)
	}
	wire, err := ca.BuildMinFee(accounts.DevKey("Alice"), 0, params, call)
	if err != nil {
		t.Fatal(err)
	}
	h, err := ca.Broadcast(ctx, wire)
	if err != nil {
		t.Fatal(err)
	}
	sub, err := ca.WaitTx(ctx, h)
	if err != nil {
		t.Fatal(err)
	}
	// The node's metrics of a block are set by the time its successor is
	// committed.
	if _, err := ca.VerifiedHeader(ctx, sub.Height+1); err != nil {
		t.Fatal(err)
	}

	ma, mb := scrape(t, ctx, a.MetricsAddress()), scrape(t, ctx, b.MetricsAddress())
	if v, ok := value(ma, "integritee_app_transactions_total", "module", "accounts", "codespace", "", "code", "0"); v != 1 {
		t.Errorf("node a: %v transfers counted (present: %v), want 1", v, ok)
	}
	if v, ok := value(ma, "integritee_app_check_tx_total", "codespace", "", "code", "0"); v < 1 {
		t.Errorf("node a: %v transactions admitted to the mempool (present: %v), want at least 1", v, ok)
	}
	if _, ok := value(mb, "integritee_app_transactions_total", "module", "accounts", "codespace", "", "code", "0"); ok {
		t.Error("node b counts node a's transfer")
	}
	for name, m := range map[string]map[string]*dto.MetricFamily{"metrics-a": ma, "metrics-b": mb} {
		if v, ok := value(m, "cometbft_consensus_height", "chain_id", name); !ok || v < 2 {
			t.Errorf("%s: cometbft_consensus_height = %v (present: %v), want at least 2", name, v, ok)
		}
		if _, ok := value(m, "cometbft_consensus_height", "chain_id", map[string]string{"metrics-a": "metrics-b", "metrics-b": "metrics-a"}[name]); ok {
			t.Errorf("%s shows the other node's height", name)
		}
	}
}
