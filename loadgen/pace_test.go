package loadgen

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

// fakeClock records the times the pacer waits for and returns at once.
type fakeClock struct {
	waits []time.Time
	// cancelAt cancels after this many waits (0: never).
	cancelAt int
	cancel   context.CancelFunc
}

func (c *fakeClock) SleepUntil(ctx context.Context, t time.Time) error {
	c.waits = append(c.waits, t)
	if c.cancelAt > 0 && len(c.waits) == c.cancelAt {
		c.cancel()
	}
	return ctx.Err()
}

func TestSlot(t *testing.T) {
	for _, tc := range []struct {
		k    int
		rate float64
		want time.Duration
	}{
		{0, 500, 0},
		{1, 500, 2 * time.Millisecond},
		{499, 500, 998 * time.Millisecond},
		{500, 500, time.Second},
		{3, 3, time.Second},
		{1, 3, 333333333},
		{3000, 3, 1000 * time.Second}, // no drift from adding rounded intervals
		{7, 0.5, 14 * time.Second},
	} {
		if got := slot(tc.k, tc.rate); got != tc.want {
			t.Errorf("slot(%d, %g) = %s, want %s", tc.k, tc.rate, got, tc.want)
		}
	}
}

// TestPace: the schedule puts every call's due time into the slots at that
// time, without any sender taking one: the pacing does not depend on
// answers (no coordinated omission).
func TestPace(t *testing.T) {
	start := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	const n, rate = 1000, 500.0
	clk := &fakeClock{}
	slots := make(chan time.Time, n)
	if got := pace(context.Background(), clk, start, rate, n, slots); got != n {
		t.Fatalf("paced %d, want %d", got, n)
	}
	if len(clk.waits) != n {
		t.Fatalf("%d waits, want %d", len(clk.waits), n)
	}
	k := 0
	for due := range slots { // closed after the last
		want := start.Add(time.Duration(k) * 2 * time.Millisecond)
		if !due.Equal(want) || !clk.waits[k].Equal(want) {
			t.Fatalf("call %d due %s after waiting for %s, want %s", k, due.Sub(start), clk.waits[k].Sub(start), want.Sub(start))
		}
		k++
	}
	if k != n {
		t.Fatalf("%d slots, want %d", k, n)
	}
	if last := clk.waits[n-1].Sub(start); last != 1998*time.Millisecond {
		t.Errorf("last call due after %s, want 1.998s", last)
	}
}

// TestPaceStops: an ended context stops the schedule and closes the slots.
func TestPaceStops(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	clk := &fakeClock{cancelAt: 5, cancel: cancel}
	slots := make(chan time.Time, 100)
	if got := pace(ctx, clk, time.Now(), 10, 100, slots); got != 4 {
		t.Errorf("paced %d, want 4", got)
	}
	n := 0
	for range slots {
		n++
	}
	if n != 4 {
		t.Errorf("%d slots, want 4", n)
	}
}

// TestRealClock: SleepUntil of a past time returns at once, and an ended
// context ends a wait.
func TestRealClock(t *testing.T) {
	if err := (realClock{}).SleepUntil(context.Background(), time.Now().Add(-time.Hour)); err != nil {
		t.Error(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := (realClock{}).SleepUntil(ctx, time.Now().Add(time.Hour)); !errors.Is(err, context.Canceled) {
		t.Errorf("got %v", err)
	}
}

// TestWorkerOf: senders are bound to the workers round robin, evenly.
func TestWorkerOf(t *testing.T) {
	for _, tc := range []struct{ senders, workers int }{{64, 3}, {8, 1}, {2, 3}, {7, 2}} {
		per := make([]int, tc.workers)
		for i := range tc.senders {
			w := workerOf(i, tc.workers)
			if w != i%tc.workers {
				t.Errorf("sender %d of %d workers: worker %d", i, tc.workers, w)
			}
			per[w]++
		}
		for w, n := range per {
			if n != share(tc.senders, tc.workers, w) {
				t.Errorf("%d senders over %d workers: worker %d has %d", tc.senders, tc.workers, w, n)
			}
		}
	}
}

// TestWorkerURLs: one URL, several, and refusals.
func TestWorkerURLs(t *testing.T) {
	local := "http://127.0.0.1:1"
	c := Config{NodeURL: local, WorkerURL: "http://127.0.0.1:2000", N: 1}
	if err := c.normalize(true); err != nil || len(c.WorkerURLs) != 1 || c.WorkerURLs[0] != "http://127.0.0.1:2000" {
		t.Errorf("one URL: %v %q", err, c.WorkerURLs)
	}
	urls := []string{"http://127.0.0.1:2000", "http://127.0.0.1:2001", "http://localhost:2002"}
	c = Config{NodeURL: local, WorkerURLs: urls, N: 10, Rate: 500}
	if err := c.normalize(true); err != nil || len(c.WorkerURLs) != 3 {
		t.Errorf("three URLs: %v %q", err, c.WorkerURLs)
	}
	for name, c := range map[string]Config{
		"both":          {NodeURL: local, WorkerURL: local, WorkerURLs: []string{local}, N: 1},
		"negative rate": {NodeURL: local, WorkerURL: local, N: 1, Rate: -1},
		"huge rate":     {NodeURL: local, WorkerURL: local, N: 1, Rate: MaxRate + 1},
	} {
		if err := c.normalize(true); !errors.Is(err, ErrConfig) {
			t.Errorf("%s: %v, want ErrConfig", name, err)
		}
	}
	c = Config{NodeURL: local, WorkerURLs: []string{local, "http://10.0.0.1:2000"}, N: 1}
	if err := c.normalize(true); !errors.Is(err, ErrNotLoopback) {
		t.Errorf("a remote second worker: %v", err)
	}
	c = Config{NodeURL: local, N: 1, Rate: 10}
	if err := c.normalize(false); !errors.Is(err, ErrConfig) {
		t.Errorf("rate for transfers: %v", err)
	}
}

// TestLimits: a run with refusals says so first; an open loop that fell
// behind says so.
func TestLimits(t *testing.T) {
	r := &Report{Mode: "open", N: 100, Concurrency: 4, RateLimited: 3, Busy: 1, Late: 7}
	r.limits(Config{}, 3)
	if !r.Refused() || len(r.Limits) != 4 {
		t.Fatalf("limits %q", r.Limits)
	}
	for i, want := range []string{"RATE LIMITED", "BUSY", "open loop fell behind: 7 of 100", "3 workers"} {
		if !strings.Contains(r.Limits[i], want) {
			t.Errorf("limit %d %q lacks %q", i, r.Limits[i], want)
		}
	}
	r = &Report{Mode: "closed", N: 100, Concurrency: 4}
	r.limits(Config{}, 1)
	if r.Refused() || len(r.Limits) != 1 || !strings.Contains(r.Limits[0], "closed loop") {
		t.Errorf("closed loop limits %q", r.Limits)
	}
}
