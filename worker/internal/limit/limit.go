// Package limit holds the per-client limits the worker's HTTP endpoints
// share (worker/rpc, worker/peer): a token bucket and a count of
// concurrent uses per client key, the remote IP.
package limit

import (
	"sync"
	"time"
)

// Limiter is a token bucket per client key: rate tokens per second up to
// burst, and a count of concurrent uses per key. Idle buckets are dropped
// when they are full again, so the map stays as small as the set of
// active clients. It is safe for concurrent use.
type Limiter struct {
	rate  float64
	burst float64
	now   func() time.Time

	mu      sync.Mutex
	buckets map[string]*bucket
	conns   map[string]int
	sweep   time.Time
}

type bucket struct {
	tokens float64
	last   time.Time
}

// New returns a limiter of rate tokens per second up to burst per key,
// on the clock now.
func New(rate float64, burst int, now func() time.Time) *Limiter {
	return &Limiter{rate: rate, burst: float64(burst), now: now, buckets: map[string]*bucket{}, conns: map[string]int{}}
}

// Allow takes n tokens of key's bucket, or none if it holds fewer.
func (l *Limiter) Allow(key string, n int) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	b, ok := l.buckets[key]
	if !ok {
		b = &bucket{tokens: l.burst, last: now}
		l.buckets[key] = b
	}
	if d := now.Sub(b.last).Seconds(); d > 0 {
		b.tokens = min(l.burst, b.tokens+d*l.rate)
		b.last = now
	}
	if now.Sub(l.sweep) > time.Minute {
		l.sweep = now
		for k, x := range l.buckets {
			if x != b && x.tokens+now.Sub(x.last).Seconds()*l.rate >= l.burst {
				delete(l.buckets, k)
			}
		}
	}
	if b.tokens < float64(n) {
		return false
	}
	b.tokens -= float64(n)
	return true
}

// Acquire counts a concurrent use of key if it has fewer than max.
func (l *Limiter) Acquire(key string, max int) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.conns[key] >= max {
		return false
	}
	l.conns[key]++
	return true
}

// Release ends a use Acquire counted.
func (l *Limiter) Release(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.conns[key]--; l.conns[key] <= 0 {
		delete(l.conns, key)
	}
}
