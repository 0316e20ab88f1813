// Package cputime reads the CPU time this process used, for benchmarks:
// on a shared machine a steadier measure than the wall time.
package cputime

import (
	"syscall"
	"testing"
	"time"
)

// Used is the CPU time (user and system) this process used so far, or 0
// if it cannot be read.
func Used() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// ReportPerOp reports the CPU time used since since (a Used value) per
// operation of b, as the metric cpu-ms/op.
func ReportPerOp(b *testing.B, since time.Duration) {
	b.ReportMetric(float64((Used()-since).Microseconds())/1000/float64(b.N), "cpu-ms/op")
}
