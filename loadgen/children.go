package loadgen

import (
	"os"
	"strings"
	"sync"
	"time"
)

// childWatch samples the child processes of this process whose command
// name starts with prefix (the enclaves of a worker running in it), which
// come and go: a process's CPU time and peak RSS can only be read while
// it runs, so the last sample before it exits is what is reported (the
// peak is VmHWM, so only growth in the last interval can be missed).
type childWatch struct {
	fs     procFS
	prefix string
	self   int

	// skip are processes not to watch (another worker's enclaves, when
	// it runs in this process too).
	skip map[int]bool

	mu   sync.Mutex
	seen map[int]*Proc
	// order is the pids in the order first seen.
	order []int
}

func newChildWatch(fs procFS, prefix string, skip []*Proc) *childWatch {
	c := &childWatch{fs: fs, prefix: prefix, self: os.Getpid(), skip: map[int]bool{}, seen: map[int]*Proc{}}
	for _, p := range skip {
		c.skip[p.PID] = true
	}
	return c
}

// sample reads every matching child once.
func (c *childWatch) sample() {
	for _, pid := range c.fs.pids() {
		comm, ppid, ticks, err := c.fs.stat(pid)
		if err != nil || ppid != c.self || c.skip[pid] || !strings.HasPrefix(comm, c.prefix) {
			continue
		}
		kb, err := c.fs.peakRSS(pid)
		c.mu.Lock()
		p := c.seen[pid]
		if p == nil {
			p = &Proc{Role: "new worker's enclave", PID: pid, Comm: comm}
			c.seen[pid] = p
			c.order = append(c.order, pid)
		}
		p.CPUSeconds = float64(ticks) / userHZ
		if err == nil {
			p.PeakRSSMiB = max(p.PeakRSSMiB, float64(kb)/1024)
		}
		c.mu.Unlock()
	}
}

// run samples every interval until the returned stop is called, which
// takes a last sample.
func (c *childWatch) run(interval time.Duration) (stop func()) {
	quit, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			c.sample()
			select {
			case <-quit:
				c.sample()
				return
			case <-t.C:
			}
		}
	}()
	var once sync.Once
	return func() {
		once.Do(func() {
			close(quit)
			<-done
		})
	}
}

// procs returns the processes seen, first seen first, numbered by start.
func (c *childWatch) procs() []*Proc {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]*Proc, 0, len(c.order))
	for _, pid := range c.order {
		out = append(out, c.seen[pid])
	}
	return out
}
