package chain

import (
	"strconv"
	"time"

	abci "github.com/cometbft/cometbft/abci/types"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/integritee-go/integritee/attestation"
	"github.com/integritee-go/integritee/chain/bridge"
	"github.com/integritee-go/integritee/chain/teerex"
	"github.com/integritee-go/integritee/chain/tx"
)

// Metrics are the application's Prometheus metrics. Every label takes its
// values from a fixed set (module names, result codes, event types of the
// modules), never from what a transaction claims, so that transactions
// cannot grow the exposition.
type Metrics struct {
	txs           *prometheus.CounterVec
	checkTxs      *prometheus.CounterVec
	events        *prometheus.CounterVec
	registrations *prometheus.CounterVec
	unshields     prometheus.Counter
	attestation   *prometheus.HistogramVec
}

// NewMetrics registers the application's metrics in reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		txs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "integritee", Subsystem: "app", Name: "transactions_total",
			Help: "Transactions in committed blocks by module and result (codespace and code; code 0 is success).",
		}, []string{"module", "codespace", "code"}),
		checkTxs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "integritee", Subsystem: "app", Name: "check_tx_total",
			Help: "Transactions checked for the mempool (CheckTx) by result; code 0 admitted them.",
		}, []string{"codespace", "code"}),
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "integritee", Subsystem: "app", Name: "events_total",
			Help: "Events of committed blocks (transactions and end of block) by type.",
		}, []string{"type"}),
		registrations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "integritee", Subsystem: "teerex", Name: "registrations_total",
			Help: "Enclave registrations committed: new (registered) or renewed.",
		}, []string{"type"}),
		unshields: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "integritee", Subsystem: "bridge", Name: "unshields_total",
			Help: "Unshields paid out by the enclave bridge.",
		}),
		attestation: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "integritee", Subsystem: "teerex", Name: "attestation_verification_seconds",
			Help: "Time to verify a registration's attestation evidence, by kind (dcap, ias) and result (ok, error); " +
				"a proposer verifies in PrepareProposal and again in FinalizeBlock.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
		}, []string{"kind", "result"}),
	}
	reg.MustRegister(m.txs, m.checkTxs, m.events, m.registrations, m.unshields, m.attestation)
	return m
}

// AttestationVerified implements runtime.Observer.
func (m *Metrics) AttestationVerified(kind string, took time.Duration, err error) {
	switch attestation.Kind(kind) {
	case attestation.KindDCAP, attestation.KindIAS:
	default:
		kind = "other"
	}
	result := "ok"
	if err != nil {
		result = "error"
	}
	m.attestation.WithLabelValues(kind, result).Observe(took.Seconds())
}

// checked counts a CheckTx result.
func (m *Metrics) checked(codespace string, code uint32) {
	m.checkTxs.WithLabelValues(codespace, strconv.FormatUint(uint64(code), 10)).Inc()
}

// finalized counts a committed block's transactions and events. module
// names the module of each transaction.
func (m *Metrics) finalized(txs [][]byte, results []*abci.ExecTxResult, endBlock []abci.Event, module func([]byte) string) {
	for i, res := range results {
		m.txs.WithLabelValues(module(txs[i]), res.Codespace, strconv.FormatUint(uint64(res.Code), 10)).Inc()
		m.countEvents(res.Events)
	}
	m.countEvents(endBlock)
}

func (m *Metrics) countEvents(evs []abci.Event) {
	for _, ev := range evs {
		m.events.WithLabelValues(ev.Type).Inc()
		switch ev.Type {
		case teerex.EventRegistered:
			m.registrations.WithLabelValues("registered").Inc()
		case teerex.EventRenewed:
			m.registrations.WithLabelValues("renewed").Inc()
		case bridge.EventUnshielded:
			m.unshields.Inc()
		}
	}
}

// txModule names the module a transaction calls: one of the app's, or
// "invalid" for one that does not decode or calls no module of the app.
func (a *App) txModule(raw []byte) string {
	stx, err := tx.Decode(raw)
	if err != nil {
		return "invalid"
	}
	if _, ok := a.modules[stx.Body.Call.Module]; !ok {
		return "invalid"
	}
	return stx.Body.Call.Module
}
