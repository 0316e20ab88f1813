package loadgen

import (
	"context"
	"time"
)

// clock is what the open loop's pacer waits on; tests replace it.
type clock interface {
	// SleepUntil returns at t or later, or with ctx's error.
	SleepUntil(ctx context.Context, t time.Time) error
}

type realClock struct{}

func (realClock) SleepUntil(ctx context.Context, t time.Time) error {
	d := time.Until(t)
	if d <= 0 {
		return ctx.Err()
	}
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-tm.C:
		return nil
	}
}

// slot is when call k of an open loop at rate calls/s is due, after the
// start: k/rate, computed from k (not by adding intervals) so rounding
// does not accumulate.
func slot(k int, rate float64) time.Duration {
	return time.Duration(float64(k) * float64(time.Second) / rate)
}

// pace is the open loop's schedule: it puts call k's due time into slots
// at start+slot(k, rate), for k in 0..n-1, whatever happens to the calls
// (slots has room for all n, so a put never waits for a sender), then
// closes slots. It returns how many it put, fewer than n if ctx ended.
func pace(ctx context.Context, clk clock, start time.Time, rate float64, n int, slots chan<- time.Time) int {
	defer close(slots)
	for k := range n {
		due := start.Add(slot(k, rate))
		if err := clk.SleepUntil(ctx, due); err != nil {
			return k
		}
		slots <- due
	}
	return n
}
