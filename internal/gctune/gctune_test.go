package gctune

import (
	"context"
	"os"
	"runtime/debug"
	"runtime/metrics"
	"testing"
	"time"
)

func TestPercent(t *testing.T) {
	// The enclave's policy: the default until the live heap passes the
	// headroom, then less, never below 25.
	enclave := Policy{Headroom: 128 << 20, Min: 25, Max: 100}
	// The worker's: never below the default, up to 4 times the live heap
	// while it is small.
	worker := Policy{Headroom: 64 << 20, Min: 100, Max: 400}
	tests := []struct {
		p    Policy
		live uint64
		want int
	}{
		{enclave, 0, 100},
		{enclave, 64 << 20, 100},
		{enclave, 128 << 20, 100},
		{enclave, 256 << 20, 50},
		{enclave, 300 << 20, 42},
		{enclave, 512 << 20, 25},
		{enclave, 4 << 30, 25},
		{worker, 0, 400},
		{worker, 1 << 20, 400},
		{worker, 16 << 20, 400},
		{worker, 20 << 20, 320},
		{worker, 32 << 20, 200},
		{worker, 64 << 20, 100},
		{worker, 100 << 20, 100},
		{worker, 1 << 40, 100},
	}
	for _, tt := range tests {
		if got := tt.p.Percent(tt.live); got != tt.want {
			t.Errorf("%+v.Percent(%d MiB) = %d, want %d", tt.p, tt.live>>20, got, tt.want)
		}
	}
}

func gogc(t *testing.T) uint64 {
	t.Helper()
	s := []metrics.Sample{{Name: "/gc/gogc:percent"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

func TestRun(t *testing.T) {
	t.Setenv("GOGC", "")
	os.Unsetenv("GOGC") // restored after the test
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		Run(ctx, Policy{Headroom: 1 << 40, Min: 100, Max: 345}, time.Millisecond)
	}()
	giveUp := time.After(time.Minute)
	for gogc(t) != 345 {
		select {
		case <-giveUp:
			t.Fatalf("GOGC %d after a minute, want 345", gogc(t))
		case <-done:
			t.Fatal("Run returned")
		case <-time.After(time.Millisecond):
		}
	}
	cancel()
	<-done
}

// TestRunLeavesGOGC: with GOGC in the environment, Run returns at once
// and sets nothing.
func TestRunLeavesGOGC(t *testing.T) {
	t.Setenv("GOGC", "100")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan struct{})
	go func() {
		defer close(done)
		Run(ctx, Policy{Headroom: 1 << 40, Min: 345, Max: 345}, time.Millisecond)
	}()
	select {
	case <-done:
	case <-time.After(time.Minute):
		t.Fatal("Run did not return with GOGC set")
	}
	if got := gogc(t); got == 345 {
		t.Fatal("Run set the percentage with GOGC set")
	}
}
