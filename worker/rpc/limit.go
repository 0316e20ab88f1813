package rpc

import (
	"sync"
	"time"
)

// limiter is a token bucket per client key (the remote IP): rate tokens
// per second up to burst. Idle buckets are dropped when they are full
// again, so the map stays as small as the set of active clients.
type limiter struct {
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

func newLimiter(rate float64, burst int, now func() time.Time) *limiter {
	return &limiter{rate: rate, burst: float64(burst), now: now, buckets: map[string]*bucket{}, conns: map[string]int{}}
}

// allow takes n tokens of key's bucket, or none if it holds fewer.
func (l *limiter) allow(key string, n int) bool {
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

// open counts a connection of key if it has fewer than max.
func (l *limiter) open(key string, max int) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.conns[key] >= max {
		return false
	}
	l.conns[key]++
	return true
}

func (l *limiter) close(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.conns[key]--; l.conns[key] <= 0 {
		delete(l.conns, key)
	}
}
