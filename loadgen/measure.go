package loadgen

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"
)

// probe measures the processes of the system under load.
type probe struct {
	fs      procFS
	procs   []*Proc
	missing []string
	gc      *collectorHold
}

// newProbe finds the node's, workers' and enclaves' processes, and this
// one's (the load generator) unless it is one of them (an in-process
// network in a test).
func newProbe(node string, workers []string) *probe {
	p := &probe{fs: procFS{root: "/proc"}}
	p.procs, p.missing = p.fs.findProcs(node, workers)
	self := os.Getpid()
	for _, pr := range p.procs {
		if pr.PID == self {
			pr.Role += "+loadgen"
			return p
		}
	}
	if comm, _, _, err := p.fs.stat(self); err == nil {
		p.procs = append(p.procs, &Proc{Role: "loadgen", PID: self, Comm: comm})
	}
	return p
}

// start begins the timed phase: the processes' counters are read and the
// load generator's collector is held (collector.go) until finish. The
// caller defers release, so that a panic in between does not leave the
// process without a collector.
func (p *probe) start() {
	p.gc = holdCollector(collectorBudget(filepath.Join(p.fs.root, "meminfo")))
	p.fs.start(p.procs)
}

// release gives the collector back, if finish or an earlier release did
// not, and returns what it did while held (nil if it was not held).
func (p *probe) release() *CollectorStats {
	if p.gc == nil {
		return nil
	}
	st := p.gc.release()
	p.gc = nil
	return st
}

// finish fills the report's process figures; the system's CPU is every
// process's but the load generator's own.
func (p *probe) finish(r *Report) {
	p.fs.finish(p.procs)
	if r.Collector = p.release(); r.Collector != nil && r.Collector.Collections > 0 {
		r.Limits = append(r.Limits, fmt.Sprintf("the load generator's heap outgrew its budget (%.0f MiB): its collector ran %d times during the timed phase, which may show in the latencies", r.Collector.BudgetMiB, r.Collector.Collections))
	}
	r.Procs = p.procs
	var sys float64
	for _, pr := range p.procs {
		if pr.Role != "loadgen" {
			sys += pr.CPUSeconds
		}
	}
	r.SystemCPUSeconds = sys
	if len(p.missing) > 0 {
		r.Limits = append(r.Limits, fmt.Sprintf("processes not found (not listening on this machine, or another user's): %s; CPU per call leaves them out", strings.Join(p.missing, ", ")))
	}
	for _, pr := range p.procs {
		if strings.Contains(pr.Role, "loadgen") && strings.Contains(pr.Role, "+") {
			r.Limits = append(r.Limits, "the load generator runs in the measured process: its CPU is in the system's")
		}
	}
}

// progress counts a run's calls for the progress bar.
type progress struct {
	total               int
	done, failed, retry atomic.Int64
}

// show draws a bar on w every interval until ctx ends, then a last one
// and a newline. Carriage returns redraw it in place: meant for a
// terminal.
func (p *progress) show(ctx context.Context, w io.Writer, start time.Time) {
	const width = 30
	draw := func() {
		d, f := p.done.Load(), p.failed.Load()
		n := min(int(d+f)*width/max(p.total, 1), width)
		el := time.Since(start).Seconds()
		rate := 0.0
		if el > 0 {
			rate = float64(d) / el
		}
		fmt.Fprintf(w, "\r[%s%s] %d/%d done %.0f/s  failed %d  resent %d  %.0fs ", strings.Repeat("#", n), strings.Repeat(" ", width-n), d, p.total, rate, f, p.retry.Load(), el)
	}
	t := time.NewTicker(250 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			draw()
			fmt.Fprintln(w)
			return
		case <-t.C:
			draw()
		}
	}
}

// startProgress runs the bar on w (nil: none) until the returned stop.
func startProgress(w io.Writer, p *progress, start time.Time) (stop func()) {
	if w == nil {
		return func() {}
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { p.show(ctx, w, start); close(done) }()
	return func() { cancel(); <-done }
}

// cpuPerCall sets CPUPerCallMs once Committed is known.
func (r *Report) cpuPerCall() {
	if r.Committed > 0 {
		r.CPUPerCallMs = r.SystemCPUSeconds * 1000 / float64(r.Committed)
	}
}
