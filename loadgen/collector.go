package loadgen

import (
	"bufio"
	"bytes"
	"math"
	"os"
	"runtime/debug"
	"runtime/metrics"
	"strconv"
)

// The load generator keeps every answer to verify after the timed phase,
// so its heap grows through the phase. With the default GOGC its
// collector ran every 7-10 s under 10,000 clients, 0.1-0.2 s each with
// most of its work in assists that stalled the sessions' goroutines, which
// then timestamped answers late: the tool measured its own collector
// (docs/performance.md). During a timed phase the collector is held (GOGC
// off) under a memory limit of what the runtime holds at the start plus a
// budget, so it runs only if the heap reaches that limit, and the report
// says how many collections ran.

// CollectorStats is the load generator's garbage collector during the
// timed phase.
type CollectorStats struct {
	// BudgetMiB is what the heap may grow by before the collector runs.
	BudgetMiB float64 `json:"budget_mib"`
	// Collections ran during the phase (the budget was reached).
	Collections uint64 `json:"collections"`
}

// collectorHold is a held collector, to release.
type collectorHold struct {
	percent int
	limit   int64
	cycles  uint64
	budget  uint64
}

// maxCollectorBudget bounds the budget however much memory is free.
const maxCollectorBudget = 8 << 30

// holdCollector turns the collector off under a memory limit of the
// runtime's memory now plus budget (or the limit already set, if lower).
func holdCollector(budget uint64) *collectorHold {
	h := &collectorHold{budget: budget, cycles: readUint64Metric("/gc/cycles/total:gc-cycles")}
	prev := debug.SetMemoryLimit(-1)
	// The runtime holds its limit against what it has mapped less what
	// it returned to the system (runtime/debug.SetMemoryLimit): memory
	// freed after the preparation is not part of the budget.
	limit := heldMemory() + budget
	debug.SetMemoryLimit(min(prev, int64(min(limit, math.MaxInt64))))
	h.limit = prev
	h.percent = debug.SetGCPercent(-1)
	return h
}

// release restores the collector's settings and returns what it did
// while held.
func (h *collectorHold) release() *CollectorStats {
	debug.SetGCPercent(h.percent)
	debug.SetMemoryLimit(h.limit)
	return &CollectorStats{BudgetMiB: float64(h.budget) / (1 << 20), Collections: readUint64Metric("/gc/cycles/total:gc-cycles") - h.cycles}
}

// heldMemory is the memory the runtime counts against its limit.
func heldMemory() uint64 {
	total, released := readUint64Metric("/memory/classes/total:bytes"), readUint64Metric("/memory/classes/heap/released:bytes")
	if released > total {
		return 0
	}
	return total - released
}

func readUint64Metric(name string) uint64 {
	s := []metrics.Sample{{Name: name}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return s[0].Value.Uint64()
}

// collectorBudget is a quarter of the machine's available memory
// (/proc/meminfo), at most maxCollectorBudget; 1 GiB if it cannot be read.
func collectorBudget(meminfo string) uint64 {
	b, err := os.ReadFile(meminfo)
	if err != nil {
		return 1 << 30
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := bytes.Fields(sc.Bytes())
		if len(f) == 3 && string(f[0]) == "MemAvailable:" && string(f[2]) == "kB" {
			kb, err := strconv.ParseUint(string(f[1]), 10, 64)
			if err != nil || kb > math.MaxUint64/1024 {
				break
			}
			return min(kb*1024/4, maxCollectorBudget)
		}
	}
	return 1 << 30
}
