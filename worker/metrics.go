package worker

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/integritee-go/integritee/enclave/protocol"
	"github.com/integritee-go/integritee/worker/rpc"
)

// Metrics: each worker has a Prometheus registry of its own (workers of a
// test share a process), served under /metrics on Config.MetricsListen, a
// listener apart from the JSON-RPC: the RPC's address is public (it is
// registered on chain) and rate-limited per client, metrics are for the
// operator's scraper. Gauges of state the worker keeps anyway (heights,
// replica status, outbox, sessions) are read at scrape time.

// workerMetrics are a worker's metrics.
type workerMetrics struct {
	reg *prometheus.Registry

	chainHead    atomic.Int64 // the node's latest height, as last read
	blocks       prometheus.Counter
	directCalls  *prometheus.CounterVec
	batchCalls   prometheus.Histogram
	enclave      *prometheus.HistogramVec
	commit       prometheus.Histogram
	rpcRequests  *prometheus.CounterVec
	regExpiry    prometheus.Gauge
	settledCalls *prometheus.CounterVec
	getters      *prometheus.CounterVec
}

// newMetrics registers the worker's metrics in a new registry.
func newMetrics(w *Worker) *workerMetrics {
	opts := func(sub, name, help string) prometheus.Opts {
		return prometheus.Opts{Namespace: "integritee_worker", Subsystem: sub, Name: name, Help: help}
	}
	gauge := func(sub, name, help string, f func() float64) prometheus.GaugeFunc {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts(opts(sub, name, help)), f)
	}
	m := &workerMetrics{
		reg: prometheus.NewRegistry(),
		blocks: prometheus.NewCounter(prometheus.CounterOpts(opts("chain", "blocks_processed_total",
			"Chain blocks the enclave processed and the worker persisted."))),
		directCalls: prometheus.NewCounterVec(prometheus.CounterOpts(opts("direct", "calls_total",
			"Direct calls passed to the enclave, by outcome: executed, failed (executed, the call failed), invalid, "+
				"error (the batch failed: not ready, no quorum, outcome unknown).")), []string{"outcome"}),
		batchCalls: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: "integritee_worker", Subsystem: "direct",
			Name: "batch_calls", Help: "Direct calls per batch passed to the enclave.",
			Buckets: prometheus.ExponentialBuckets(1, 2, 11)}),
		enclave: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: "integritee_worker", Subsystem: "enclave",
			Name: "request_seconds", Help: "Round trip of a request to the enclave, by request type.",
			Buckets: prometheus.ExponentialBuckets(0.0002, 2.5, 14)}, []string{"request"}),
		commit: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: "integritee_worker", Subsystem: "store",
			Name: "commit_seconds", Help: "Time to persist what one enclave reply changed (one store transaction with its fsync).",
			Buckets: prometheus.ExponentialBuckets(0.0002, 2.5, 14)}),
		rpcRequests: prometheus.NewCounterVec(prometheus.CounterOpts(opts("rpc", "requests_total",
			"JSON-RPC requests answered, by method and error code (0: a result; method \"none\": refused before a method was read).")),
			[]string{"method", "code"}),
		regExpiry: prometheus.NewGauge(prometheus.GaugeOpts(opts("registration", "expiry_timestamp_seconds",
			"When the enclave's registration on chain expires (Unix time), as last checked; 0 before the first check."))),
		settledCalls: prometheus.NewCounterVec(prometheus.CounterOpts(opts("outbox", "settled_total",
			"Outgoing chain calls (confirmations, votes, unshields) settled and taken from the outbox, by result: "+
				"included (executed in a block), failed (in a block), already_on_chain, dropped (refused for good).")),
			[]string{"result"}),
		getters: prometheus.NewCounterVec(prometheus.CounterOpts(opts("rpc", "getters_total",
			"Private getters passed to the enclave, by read: fresh (after the shard's read barrier), stale (the barrier failed: "+
				"answered from this worker's state, marked stale).")), []string{"read"}),
	}
	processed := func() float64 { return float64(w.sup.Progress().Height) }
	m.reg.MustRegister(
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.blocks, m.directCalls, m.batchCalls, m.enclave, m.commit, m.rpcRequests, m.regExpiry, m.settledCalls, m.getters,
		gauge("chain", "processed_height", "Last chain block processed and persisted.", processed),
		gauge("chain", "head_height", "The node's latest block height, as last read.", func() float64 { return float64(m.chainHead.Load()) }),
		gauge("chain", "lag_blocks", "Blocks of the node's chain not yet processed (head_height - processed_height).", func() float64 {
			return max(0, float64(m.chainHead.Load())-processed())
		}),
		gauge("sidechain", "block_number", "Number of the last persisted shard block.", func() float64 {
			return float64(w.sup.Progress().ShardBlock)
		}),
		gauge("sidechain", "voters", "Voters of the shard's replication group (this worker's enclave included), as its replica last reported.",
			func() float64 { _, _, n := w.repl.Status(); return float64(n) }),
		gauge("sidechain", "leader", "1 while this worker's enclave leads the shard's group (and so produces its blocks), else 0.",
			func() float64 {
				if _, leader, _ := w.repl.Status(); leader {
					return 1
				}
				return 0
			}),
		gauge("store", "unfolded_changes", "Committed state changes not yet folded into the state file: up to 262,144 in steady operation, "+
			"more for a while after a large batch (a provisioned state).", func() float64 { return float64(w.store.Unfolded()) }),
		gauge("outbox", "calls", "Outgoing chain calls waiting in the outbox; -1 if the store cannot be read.", func() float64 {
			n, err := w.store.OutboxLen()
			if err != nil {
				return -1
			}
			return float64(n)
		}),
		gauge("rpc", "websocket_clients", "Open WebSocket sessions of the JSON-RPC.", func() float64 {
			if w.rpcServer == nil {
				return 0
			}
			return float64(w.rpcServer.Sessions())
		}),
	)
	return m
}

// Request implements rpc.Observer.
func (m *workerMetrics) Request(method string, code int) {
	m.rpcRequests.WithLabelValues(method, strconv.Itoa(code)).Inc()
}

var _ rpc.Observer = (*workerMetrics)(nil)

// directBatch counts a batch of n direct calls and what became of them.
func (m *workerMetrics) directBatch(n int, outs []rpc.Outcome, err error) {
	if m == nil {
		return
	}
	m.batchCalls.Observe(float64(n))
	if err != nil {
		m.directCalls.WithLabelValues("error").Add(float64(n))
		return
	}
	for _, o := range outs {
		outcome := "error"
		switch o.Status {
		case protocol.CallExecuted, protocol.CallFailed, protocol.CallInvalid:
			outcome = o.Status.String()
		}
		m.directCalls.WithLabelValues(outcome).Inc()
	}
}

// headSeen records the node's latest height.
func (m *workerMetrics) headSeen(h int64) {
	if m != nil {
		m.chainHead.Store(h)
	}
}

// registrationExpires records when the registration expires.
func (m *workerMetrics) registrationExpires(t time.Time) {
	if m != nil {
		m.regExpiry.Set(float64(t.Unix()))
	}
}

// settled counts n outgoing calls settled.
func (m *workerMetrics) settled(result string, n int) {
	if m != nil {
		m.settledCalls.WithLabelValues(result).Add(float64(n))
	}
}

// enclaveRequest times an enclave round trip.
func (m *workerMetrics) enclaveRequest(req protocol.Request, start time.Time) {
	if m != nil {
		m.enclave.WithLabelValues(req.Type()).Observe(time.Since(start).Seconds())
	}
}

// committed counts a persisted transition: its commit time and the chain
// blocks it processed.
func (m *workerMetrics) committed(took time.Duration, blocks int64) {
	if m == nil {
		return
	}
	if took > 0 {
		m.commit.Observe(took.Seconds())
	}
	if blocks > 0 {
		m.blocks.Add(float64(blocks))
	}
}

// serveMetrics serves the metrics on Config.MetricsListen, if set, until
// stop.
func (w *Worker) serveMetrics(ctx context.Context) (stop func(), err error) {
	if w.cfg.MetricsListen == "" {
		return func() {}, nil
	}
	ln, err := net.Listen("tcp", w.cfg.MetricsListen)
	if err != nil {
		return nil, fmt.Errorf("worker metrics: %w", err)
	}
	w.metricsListener = ln
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(w.metrics.reg, promhttp.HandlerOpts{MaxRequestsInFlight: 10, Timeout: 10 * time.Second}))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 10 * time.Second,
		WriteTimeout: 30 * time.Second, IdleTimeout: time.Minute, BaseContext: func(net.Listener) context.Context { return ctx }}
	return background(func() {
		if err := srv.Serve(ln); err != http.ErrServerClosed {
			w.log.Error("worker metrics stopped", "err", err)
		}
	}, func() { srv.Close() }), nil
}

// MetricsAddr is the base URL of the worker's metrics (served under
// /metrics), empty without Config.MetricsListen.
func (w *Worker) MetricsAddr() string {
	if w.metricsListener == nil {
		return ""
	}
	return "http://" + w.metricsListener.Addr().String()
}

// Metrics is the worker's metrics registry (served on MetricsAddr).
func (w *Worker) Metrics() prometheus.Gatherer { return w.metrics.reg }

// getter counts a getter passed to the enclave, fresh or stale.
func (m *workerMetrics) getter(stale bool) {
	if m == nil {
		return
	}
	read := "fresh"
	if stale {
		read = "stale"
	}
	m.getters.WithLabelValues(read).Inc()
}
