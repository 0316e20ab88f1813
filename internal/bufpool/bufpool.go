// Package bufpool is a pool of byte buffers that keeps only small ones: a
// rare large message does not pin its buffer.
package bufpool

import (
	"bytes"
	"sync"
)

// Pool keeps buffers of at most Max bytes' capacity. Its zero value is
// not usable; make one with New.
type Pool struct {
	max int
	p   sync.Pool
}

// New returns a pool that keeps buffers of at most max bytes.
func New(max int) *Pool {
	return &Pool{max: max, p: sync.Pool{New: func() any { return new(bytes.Buffer) }}}
}

// Get returns an empty buffer.
func (p *Pool) Get() *bytes.Buffer {
	b := p.p.Get().(*bytes.Buffer)
	b.Reset()
	return b
}

// Put gives b back, unless it grew past the pool's bound. b must not be
// used after.
func (p *Pool) Put(b *bytes.Buffer) {
	if b.Cap() <= p.max {
		p.p.Put(b)
	}
}
