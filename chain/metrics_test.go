package chain_test

import (
	"context"
	"strconv"
	"testing"

	dbm "github.com/cometbft/cometbft-db"
	abci "github.com/cometbft/cometbft/abci/types"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/integritee-go/integritee/chain"
	"github.com/integritee-go/integritee/chain/accounts"
	"github.com/integritee-go/integritee/chain/store"
)

// The app counts a block's transactions by module and result code and
// CheckTx's verdicts; a transaction that decodes to no module is counted
// as "invalid" whatever it claims, so that no transaction adds a label
// value of its own.
func TestMetricsCountTransactions(t *testing.T) {
	st, err := store.Open(dbm.NewMemDB())
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	app, err := chain.New(chain.Options{ChainID: chainID, Store: st, Metrics: chain.NewMetrics(reg)})
	if err != nil {
		t.Fatal(err)
	}
	initChain(t, app)
	bob := accounts.DevAddress("Bob")
	ok := signedTransfer(t, "Alice", 0, bob, 1)
	badNonce := signedTransfer(t, "Alice", 7, bob, 1)
	garbage := []byte("not a transaction")
	if res, err := app.CheckTx(context.Background(), &abci.RequestCheckTx{Tx: ok}); err != nil || res.Code != 0 {
		t.Fatalf("CheckTx: %v %+v", err, res)
	}
	res := finalizeAndCommit(t, app, 1, ok, badNonce, garbage)
	code := func(i int) string { return strconv.FormatUint(uint64(res.TxResults[i].Code), 10) }
	if code(1) == "0" || code(2) == "0" {
		t.Fatalf("bad transactions succeeded: %+v", res.TxResults)
	}

	for _, c := range []struct {
		labels []string
		want   float64
	}{
		{[]string{"module", "accounts", "codespace", "", "code", "0"}, 1},
		{[]string{"module", "accounts", "codespace", res.TxResults[1].Codespace, "code", code(1)}, 1},
		{[]string{"module", "invalid", "codespace", res.TxResults[2].Codespace, "code", code(2)}, 1},
	} {
		if got := value(t, reg, "integritee_app_transactions_total", c.labels...); got != c.want {
			t.Errorf("transactions_total%v = %v, want %v", c.labels, got, c.want)
		}
	}
	if got := value(t, reg, "integritee_app_check_tx_total", "codespace", "", "code", "0"); got != 1 {
		t.Errorf("check_tx_total{code 0} = %v, want 1", got)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "integritee_app_transactions_total" && len(mf.GetMetric()) != 3 {
			t.Errorf("%d transactions_total series, want 3", len(mf.GetMetric()))
		}
	}
}

// value is the counter of family name whose labels are exactly labels
// (name, value pairs) in reg; the test fails if there is none.
func value(t *testing.T, reg *prometheus.Registry, name string, labels ...string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metric:
		for _, m := range mf.GetMetric() {
			if len(m.GetLabel()) != len(labels)/2 {
				continue
			}
			got := map[string]string{}
			for _, lp := range m.GetLabel() {
				got[lp.GetName()] = lp.GetValue()
			}
			for i := 0; i+1 < len(labels); i += 2 {
				if v, ok := got[labels[i]]; !ok || v != labels[i+1] {
					continue metric
				}
			}
			return m.GetCounter().GetValue()
		}
	}
	t.Fatalf("no series %s%v", name, labels)
	return 0
}
