// Package gctune sets a process's garbage-collection percentage (GOGC)
// from its live heap, so that the garbage it lets pile up between
// collections is bounded in bytes rather than as a share of the live heap.
//
// Go's default (GOGC=100) collects when the heap has doubled since the
// last collection. A process with a small live heap and a high allocation
// rate (the worker host under load: tens of MiB live, a few KiB per call)
// then collects many times a second, and its collector took a ninth of its
// CPU; a process with a large live heap (an enclave holding a million
// accounts) doubles its RSS. A Policy lets the garbage reach Headroom bytes,
// within bounds on the percentage.
package gctune

import (
	"context"
	"os"
	"runtime/debug"
	"runtime/metrics"
	"time"
)

// Policy is a GC percentage as a function of what the collector scans.
type Policy struct {
	// Headroom is the garbage allowed above the live heap, in bytes.
	Headroom uint64
	// Min and Max bound the percentage.
	Min, Max int
}

// Percent is the GOGC for scan bytes of live heap, goroutine stacks and
// globals: what lets the heap grow by Headroom before the next collection,
// within [Min, Max]. The runtime's heap goal is the live heap plus
// scan·GOGC/100, so stacks count: thousands of sessions' goroutines with a
// small live heap would otherwise multiply the garbage allowed.
func (p Policy) Percent(scan uint64) int {
	if scan == 0 {
		return p.Max
	}
	return int(max(uint64(p.Min), min(uint64(p.Max), 100*p.Headroom/scan)))
}

// Run sets the percentage from the live heap, stacks and globals as of
// the last collection every interval until ctx ends. A GOGC in the
// environment is the operator's choice and is left alone.
//
// Between two samples the live heap may grow; the heap then reaches at
// most (1+Max/100) times the live heap before the next sample corrects
// the percentage, so the interval should be short where Max is large.
func Run(ctx context.Context, p Policy, every time.Duration) {
	if _, set := os.LookupEnv("GOGC"); set {
		return
	}
	sample := []metrics.Sample{{Name: "/gc/heap/live:bytes"}, {Name: "/gc/scan/stack:bytes"}, {Name: "/gc/scan/globals:bytes"}}
	t := time.NewTicker(every)
	defer t.Stop()
	cur := 100
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		metrics.Read(sample)
		var scan uint64
		for _, v := range sample {
			if v.Value.Kind() != metrics.KindUint64 {
				return
			}
			scan += v.Value.Uint64()
		}
		if pct := p.Percent(scan); pct != cur {
			debug.SetGCPercent(pct)
			cur = pct
		}
	}
}
