package limit_test

import (
	"testing"
	"time"

	"github.com/integritee-go/integritee/worker/internal/limit"
)

func TestAllow(t *testing.T) {
	now := time.Unix(0, 0)
	l := limit.New(2, 4, func() time.Time { return now })
	if !l.Allow("a", 3) || !l.Allow("a", 1) {
		t.Fatal("burst refused")
	}
	if l.Allow("a", 1) {
		t.Fatal("empty bucket allowed")
	}
	if !l.Allow("b", 4) {
		t.Fatal("another key shares the bucket")
	}
	now = now.Add(time.Second)
	if !l.Allow("a", 2) || l.Allow("a", 1) {
		t.Fatal("refill is not rate tokens per second")
	}
	now = now.Add(time.Hour)
	if l.Allow("a", 5) || !l.Allow("a", 4) {
		t.Fatal("refill is not capped at burst")
	}
}

func TestAcquire(t *testing.T) {
	l := limit.New(1, 1, time.Now)
	for i, want := range []bool{true, true, false} {
		if got := l.Acquire("a", 2); got != want {
			t.Fatalf("use %d: %v, want %v", i+1, got, want)
		}
	}
	if !l.Acquire("b", 2) {
		t.Fatal("another key shares the count")
	}
	l.Release("a")
	if !l.Acquire("a", 2) {
		t.Fatal("release did not free a use")
	}
}
