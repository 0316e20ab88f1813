package loadgen

import (
	"context"
	"errors"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/integritee-go/integritee/client/trusted"
	"github.com/integritee-go/integritee/worker/rpc/api"
)

// asyncSession sends a call and hands its answer to done on its reader
// (trusted.Session.Send).
type asyncSession interface {
	Send(ct []byte, done func(*trusted.Submission, error)) error
}

// dispatchTick is the least a dispatcher sleeps: calls that come due
// within it are sent together when it wakes, up to a tick after their due
// time (counted in their latency and lag). A sleep per call was a timer
// and a wake-up per call.
const dispatchTick = time.Millisecond

// timedSessions is the timed phase of a Clients run: each session's calls,
// one every interval from its offset, one out at a time. A few
// dispatchers send each call when it comes due; a call that comes due
// while the session's previous one is out is sent by the session's reader
// once that answer comes (behind). Each answer is recorded where it is
// read, so no goroutine waits per call: the generator's own scheduling
// was a fifth of its CPU under 10,000 sessions with a goroutine per
// session that slept, sent, and waited for its reader.
type timedSessions struct {
	ctx      context.Context
	start    time.Time
	interval time.Duration
	per      int // calls per session
	t        *tally
	prog     *progress
	rep      *Report

	failMu       sync.Mutex // rep.Workers' counts
	lost, behind atomic.Int64
	wg           sync.WaitGroup // sessions still sending
	sessions     []*timedSession
	dispatchers  int
	// closeAll closes the sessions (when the run's context ends).
	closeAll func()
	// The clock: time.Now, time.AfterFunc and sleepUntil, or a test's.
	now           func() time.Time
	afterFunc     func(time.Duration, func())
	dispatchSleep func(context.Context, time.Time) error
}

// timedSession is one session's calls.
type timedSession struct {
	r      *timedSessions
	i, w   int
	s      asyncSession
	calls  [][]byte
	offset time.Duration

	mu      sync.Mutex
	next    int  // the call to send next, or the one out
	out     bool // call next is out
	stopped bool // every call answered, failed or given up
	// reached is the latest call a dispatcher found due: one it found
	// due while the call before was out is sent when that is answered.
	reached     int
	due, sentAt time.Time
	refused     refusals
	recs        []callRecord
}

// newTimedSessions sets up the timed phase for sess (nil: not open) with
// calls[i] session i's calls, sent every interval from start, session i
// offset by i/len(sess) of an interval.
func newTimedSessions(ctx context.Context, start time.Time, interval time.Duration, per int, workers int,
	sess []asyncSession, calls [][][]byte, t *tally, prog *progress, rep *Report) *timedSessions {
	r := &timedSessions{ctx: ctx, start: start, interval: interval, per: per, t: t, prog: prog, rep: rep,
		dispatchers: min(runtime.GOMAXPROCS(0), 4),
		now:         time.Now, afterFunc: func(d time.Duration, f func()) { time.AfterFunc(d, f) }, dispatchSleep: sleepUntil}
	for i, s := range sess {
		if s == nil {
			continue
		}
		r.sessions = append(r.sessions, &timedSession{r: r, i: i, w: workerOf(i, workers), s: s, calls: calls[i],
			offset: time.Duration(int64(interval) * int64(i) / int64(len(sess))), recs: make([]callRecord, 0, per)})
	}
	return r
}

// sleepUntil sleeps until t, at least dispatchTick, or until ctx ends.
func sleepUntil(ctx context.Context, t time.Time) error {
	if least := time.Now().Add(dispatchTick); t.Before(least) {
		t = least
	}
	return realClock{}.SleepUntil(ctx, t)
}

// run sends every session's calls and returns once each session has
// sent and had answered all of them, failed, or the context ended; the
// records of the answered calls, by session.
func (r *timedSessions) run() []callRecord {
	r.wg.Add(len(r.sessions))
	// The dispatchers stop with the run: sessions that ended early leave
	// them nothing to send.
	dctx, stop := context.WithCancel(r.ctx)
	defer stop()
	for g := range r.dispatchers {
		go r.dispatch(dctx, g)
	}
	finished := make(chan struct{})
	go func() {
		r.wg.Wait()
		close(finished)
	}()
	select {
	case <-finished:
	case <-r.ctx.Done():
		// A write that waits (Send has no deadline) holds its session:
		// closing the sessions ends it first.
		if r.closeAll != nil {
			r.closeAll()
		}
		for _, cs := range r.sessions {
			cs.giveUp()
		}
		<-finished
	}
	var recs []callRecord
	for _, cs := range r.sessions {
		cs.mu.Lock()
		recs = append(recs, cs.recs...)
		cs.mu.Unlock()
	}
	return recs
}

// dispatch sends the calls of sessions g, g+dispatchers, ... as they come
// due: round by round, each round in the sessions' order, which is the
// order of their due times (offsets are below an interval).
func (r *timedSessions) dispatch(ctx context.Context, g int) {
	for j := range r.per {
		for k := g; k < len(r.sessions); k += r.dispatchers {
			cs := r.sessions[k]
			if due := cs.dueOf(j); r.now().Before(due) {
				if r.dispatchSleep(ctx, due) != nil {
					return
				}
			}
			cs.dueNow(j)
		}
	}
}

func (cs *timedSession) dueOf(j int) time.Time {
	return cs.r.start.Add(cs.offset + time.Duration(j)*cs.r.interval)
}

// dueNow is a dispatcher's: call j is due. It is sent unless the call
// before it is still out; its answer sends it then.
func (cs *timedSession) dueNow(j int) {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	cs.reached = max(cs.reached, j)
	if !cs.stopped && !cs.out && cs.next == j {
		cs.send(cs.r.now())
	}
}

// send sends call next, first attempt; cs.mu is held.
func (cs *timedSession) send(now time.Time) {
	cs.out, cs.due, cs.sentAt = true, cs.dueOf(cs.next), now
	cs.attempt()
}

// attempt sends call next (again, after a refusal); cs.mu is held.
func (cs *timedSession) attempt() {
	if err := cs.s.Send(cs.calls[cs.next], cs.answered); err != nil {
		cs.finish(nil, err, cs.r.now())
	}
}

// answered is the session reader's: the answer to the call out.
func (cs *timedSession) answered(sub *trusted.Submission, err error) {
	now := cs.r.now()
	cs.mu.Lock()
	defer cs.mu.Unlock()
	if cs.stopped || !cs.out {
		return
	}
	var re *api.Error
	if errors.As(err, &re) && (re.Code == api.CodeRateLimited || re.Code == api.CodeBusy) && cs.r.ctx.Err() == nil {
		if re.Code == api.CodeRateLimited {
			cs.refused.rateLimited++
		} else {
			cs.refused.busy++
		}
		cs.r.afterFunc(refusalPause, cs.retry)
		return
	}
	cs.finish(sub, err, now)
}

// retry sends the refused call out again.
func (cs *timedSession) retry() {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	if !cs.stopped && cs.out {
		cs.attempt()
	}
}

// finish records call next's outcome and sends the call after it if that
// is due already; cs.mu is held.
func (cs *timedSession) finish(sub *trusted.Submission, err error, now time.Time) {
	r, j := cs.r, cs.next
	r.t.sent(r.prog, cs.refused, true, cs.due, cs.sentAt, now, err)
	cs.out, cs.refused = false, refusals{}
	if err != nil {
		cs.fail(j, err)
		return
	}
	r.prog.done.Add(1)
	cs.recs = append(cs.recs, callRecord{sender: cs.i, worker: cs.w, ct: cs.calls[j], sub: sub, due: cs.due, done: now})
	cs.next++
	switch {
	case cs.next == r.per:
		cs.stop()
	case cs.reached >= cs.next || !r.now().Before(cs.dueOf(cs.next)):
		// Due already: a dispatcher found it due while this call was
		// out (and went on), or it is by the clock now. The clock is
		// read again here, under the lock: now was read before it, and
		// a dispatcher may have passed the call in between.
		r.behind.Add(1)
		cs.send(r.now())
	}
}

// fail counts call j as failed with err and the calls after it as not
// sent (its nonce may or may not be used); cs.mu is held.
func (cs *timedSession) fail(j int, err error) {
	r := cs.r
	code := directFailCode(r.ctx, err)
	r.t.failErr(code, err)
	r.t.fail("not_sent", r.per-j-1)
	r.prog.failed.Add(int64(r.per - j))
	if code == "transport" {
		r.lost.Add(1)
	}
	r.failMu.Lock()
	r.rep.Workers[cs.w].Failed++
	r.failMu.Unlock()
	cs.stop()
}

// giveUp ends the session's part when the run's context ended: a call out
// fails as its wait would have, the calls not yet sent time out.
func (cs *timedSession) giveUp() {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	switch {
	case cs.stopped:
	case cs.out:
		cs.finish(nil, cs.r.ctx.Err(), cs.r.now())
	default:
		cs.r.t.fail("timeout", cs.r.per-cs.next)
		cs.r.prog.failed.Add(int64(cs.r.per - cs.next))
		cs.stop()
	}
}

// stop marks the session done; cs.mu is held.
func (cs *timedSession) stop() {
	cs.stopped = true
	cs.r.wg.Done()
}
