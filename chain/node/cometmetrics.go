package node

import (
	"fmt"
	"reflect"
	"regexp"
	"strconv"
	"strings"

	"github.com/cometbft/cometbft/blocksync"
	cs "github.com/cometbft/cometbft/consensus"
	mempl "github.com/cometbft/cometbft/mempool"
	cmtnode "github.com/cometbft/cometbft/node"
	"github.com/cometbft/cometbft/p2p"
	"github.com/cometbft/cometbft/proxy"
	sm "github.com/cometbft/cometbft/state"
	"github.com/cometbft/cometbft/statesync"
	"github.com/go-kit/kit/metrics"
	kitprom "github.com/go-kit/kit/metrics/prometheus"
	"github.com/prometheus/client_golang/prometheus"
)

// CometNamespace is the namespace of CometBFT's metrics (CometBFT's own
// default), e.g. cometbft_consensus_height.
const CometNamespace = "cometbft"

// cometMetrics is a CometBFT MetricsProvider that registers CometBFT's
// metrics in reg instead of the process-wide default registry, which
// CometBFT's generated constructors (PrometheusMetrics) use: with those,
// two nodes in one process (a testnet, the tests) would collide. It builds
// the same metrics as the constructors from the struct tags they are
// generated from (names, labels, buckets; scripts/metricsgen), with the
// help texts of cometHelp; TestCometMetricsMatchUpstream holds both to
// CometBFT's constructors.
func cometMetrics(reg prometheus.Registerer) cmtnode.MetricsProvider {
	return func(chainID string) (*cs.Metrics, *p2p.Metrics, *mempl.Metrics, *sm.Metrics, *proxy.Metrics, *blocksync.Metrics, *statesync.Metrics) {
		b := cometBuilder{reg: reg, chainID: chainID}
		csm, p2pm, mpm := cs.NopMetrics(), p2p.NopMetrics(), mempl.NopMetrics()
		smm, pm, bsm, ssm := sm.NopMetrics(), proxy.NopMetrics(), blocksync.NopMetrics(), statesync.NopMetrics()
		b.fill(cs.MetricsSubsystem, csm)
		b.fill(p2p.MetricsSubsystem, p2pm)
		b.fill(mempl.MetricsSubsystem, mpm)
		b.fill(sm.MetricsSubsystem, smm)
		b.fill(proxy.MetricsSubsystem, pm)
		b.fill(blocksync.MetricsSubsystem, bsm)
		b.fill(statesync.MetricsSubsystem, ssm)
		return csm, p2pm, mpm, smm, pm, bsm, ssm
	}
}

type cometBuilder struct {
	reg     prometheus.Registerer
	chainID string
}

var (
	counterType   = reflect.TypeFor[metrics.Counter]()
	gaugeType     = reflect.TypeFor[metrics.Gauge]()
	histogramType = reflect.TypeFor[metrics.Histogram]()
	capitalChange = regexp.MustCompile("([a-z0-9])([A-Z])")
)

// fill replaces every exported metric field of the struct m points to
// with a Prometheus metric registered in b.reg, labelled with the chain ID.
func (b cometBuilder) fill(subsystem string, m any) {
	v := reflect.ValueOf(m).Elem()
	t := v.Type()
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name := f.Tag.Get("metrics_name")
		if name == "" {
			name = strings.ToLower(capitalChange.ReplaceAllString(f.Name, "${1}_${2}"))
		}
		labels := []string{"chain_id"}
		if l := f.Tag.Get("metrics_labels"); l != "" {
			for s := range strings.SplitSeq(l, ",") {
				labels = append(labels, strings.TrimSpace(s))
			}
		}
		help := cometHelp[subsystem+"_"+name]
		if help == "" {
			help = "CometBFT " + subsystem + " metric " + f.Name + "."
		}
		var metric any
		switch f.Type {
		case counterType:
			vec := prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: CometNamespace, Subsystem: subsystem, Name: name, Help: help}, labels)
			b.reg.MustRegister(vec)
			metric = kitprom.NewCounter(vec).With("chain_id", b.chainID)
		case gaugeType:
			vec := prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: CometNamespace, Subsystem: subsystem, Name: name, Help: help}, labels)
			b.reg.MustRegister(vec)
			metric = kitprom.NewGauge(vec).With("chain_id", b.chainID)
		case histogramType:
			vec := prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: CometNamespace, Subsystem: subsystem, Name: name, Help: help,
				Buckets: cometBuckets(f.Tag)}, labels)
			b.reg.MustRegister(vec)
			metric = kitprom.NewHistogram(vec).With("chain_id", b.chainID)
		default:
			continue
		}
		v.Field(i).Set(reflect.ValueOf(metric))
	}
}

// cometBuckets are a histogram's buckets as metricsgen makes them: from
// a bucket type and its three arguments, or listed; Prometheus' default
// buckets without either.
func cometBuckets(tag reflect.StructTag) []float64 {
	sizes := tag.Get("metrics_bucketsizes")
	if sizes == "" {
		return nil
	}
	var a []float64
	for s := range strings.SplitSeq(sizes, ",") {
		f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
		if err != nil {
			panic(fmt.Sprintf("cometbft metric bucket sizes %q: %v", sizes, err))
		}
		a = append(a, f)
	}
	typ := tag.Get("metrics_buckettype")
	if typ == "" {
		return a
	}
	if len(a) != 3 {
		panic(fmt.Sprintf("cometbft metric bucket sizes %q: want 3 numbers", sizes))
	}
	switch typ {
	case "exprange":
		return prometheus.ExponentialBucketsRange(a[0], a[1], int(a[2]))
	case "exp":
		return prometheus.ExponentialBuckets(a[0], a[1], int(a[2]))
	case "lin":
		return prometheus.LinearBuckets(a[0], a[1], int(a[2]))
	}
	panic(fmt.Sprintf("cometbft metric bucket type %q", typ))
}
