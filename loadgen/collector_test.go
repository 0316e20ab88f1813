package loadgen

import (
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"testing"
)

// TestHoldCollector: a held collector is off under a memory limit of the
// runtime's memory plus the budget (or a lower limit already set), the
// collections that still run are counted, and release restores both
// settings.
func TestHoldCollector(t *testing.T) {
	percent := debug.SetGCPercent(100)
	limit := debug.SetMemoryLimit(-1)
	t.Cleanup(func() {
		debug.SetGCPercent(percent)
		debug.SetMemoryLimit(limit)
	})
	debug.SetGCPercent(73)
	debug.SetMemoryLimit(1 << 50)

	const budget = 256 << 20
	runtime.GC() // no cycle in progress to count
	h := holdCollector(budget)
	if got := debug.SetGCPercent(-1); got != -1 {
		t.Fatalf("GOGC %d while held, want off", got)
	}
	got := debug.SetMemoryLimit(-1)
	held := heldMemory()
	if got < budget || uint64(got) > held+budget {
		t.Fatalf("memory limit %d while held, want about %d (runtime) + %d", got, held, budget)
	}
	// Allocating less than the budget starts no collection; forced ones
	// are counted.
	var keep [][]byte
	for range 64 {
		keep = append(keep, make([]byte, 1<<20))
	}
	runtime.KeepAlive(keep)
	runtime.GC()
	runtime.GC()
	st := h.release()
	if st.Collections != 2 || st.BudgetMiB != 256 {
		t.Fatalf("stats %+v, want 2 collections and a 256 MiB budget", st)
	}
	if got := debug.SetGCPercent(-1); got != 73 {
		t.Fatalf("GOGC %d after release, want 73", got)
	}
	debug.SetGCPercent(73)
	if got := debug.SetMemoryLimit(-1); got != 1<<50 {
		t.Fatalf("memory limit %d after release, want %d", got, int64(1<<50))
	}

	// A lower limit already set stays.
	debug.SetMemoryLimit(64 << 20)
	h = holdCollector(1 << 40)
	if got := debug.SetMemoryLimit(-1); got != 64<<20 {
		t.Fatalf("memory limit %d while held, want the operator's %d", got, 64<<20)
	}
	h.release()
}

// TestHoldCollectorReleasedMemory: memory the runtime gave back to the
// system (a preparation that allocated and freed much) is not budget.
func TestHoldCollectorReleasedMemory(t *testing.T) {
	limit := debug.SetMemoryLimit(-1)
	percent := debug.SetGCPercent(-1)
	debug.SetGCPercent(percent)
	t.Cleanup(func() { debug.SetMemoryLimit(limit); debug.SetGCPercent(percent) })
	big := make([][]byte, 64)
	for i := range big {
		big[i] = make([]byte, 4<<20)
	}
	runtime.KeepAlive(big)
	big = nil
	debug.FreeOSMemory()
	const budget = 64 << 20
	h := holdCollector(budget)
	got := debug.SetMemoryLimit(-1)
	h.release()
	if total := readUint64Metric("/memory/classes/total:bytes"); uint64(got) >= total+budget/2 && readUint64Metric("/memory/classes/heap/released:bytes") > budget {
		t.Fatalf("memory limit %d MiB counts the released memory (runtime total %d MiB): the budget is larger than %d MiB", got>>20, total>>20, budget>>20)
	}
	if uint64(got) < budget {
		t.Fatalf("memory limit %d below the budget %d", got, budget)
	}
}

// TestCollectorBudget reads a quarter of MemAvailable, bounded, and falls
// back to 1 GiB on a file it cannot read.
func TestCollectorBudget(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		name, text string
		want       uint64
	}{
		{"small", "MemTotal:       2000000 kB\nMemAvailable:    1048576 kB\n", 256 << 20},
		{"large", "MemAvailable:   134217728 kB\n", maxCollectorBudget},
		{"no field", "MemTotal: 1 kB\n", 1 << 30},
		{"garbage", "MemAvailable: x kB\n", 1 << 30},
		{"overflow", "MemAvailable: 99999999999999999999 kB\n", 1 << 30},
	} {
		p := filepath.Join(dir, c.name)
		if err := os.WriteFile(p, []byte(c.text), 0o600); err != nil {
			t.Fatal(err)
		}
		if got := collectorBudget(p); got != c.want {
			t.Errorf("%s: budget %d, want %d", c.name, got, c.want)
		}
	}
	if got := collectorBudget(filepath.Join(dir, "missing")); got != 1<<30 {
		t.Errorf("missing file: budget %d, want 1 GiB", got)
	}
}
