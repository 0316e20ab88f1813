package main

import (
	"context"
	"os"
	"runtime/debug"
	"runtime/metrics"
	"time"
)

// gcHeadroom bounds the garbage the collector lets pile up above the live
// heap. Go's default (GOGC=100) lets the heap grow to twice the live heap
// before collecting; with a large state (a million accounts with nonces
// are ~300 MiB of live heap, docs/performance.md) that doubles the RSS.
// The state's tree is pointer-free, so collecting more often costs little.
const gcHeadroom = 128 << 20

// gcPercent is the GOGC for a live heap of live bytes: the default while
// the live heap is within gcHeadroom, then what keeps the garbage within
// it, but never below 25.
func gcPercent(live uint64) int {
	if live <= gcHeadroom {
		return 100
	}
	return max(25, int(100*gcHeadroom/live))
}

// tuneGC sets the GC percentage from the live heap every interval until
// ctx ends. A GOGC in the environment is left alone.
func tuneGC(ctx context.Context, every time.Duration) {
	if _, set := os.LookupEnv("GOGC"); set {
		return
	}
	sample := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
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
		if sample[0].Value.Kind() != metrics.KindUint64 {
			return
		}
		if p := gcPercent(sample[0].Value.Uint64()); p != cur {
			debug.SetGCPercent(p)
			cur = p
		}
	}
}
