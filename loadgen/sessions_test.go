package loadgen

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/integritee-go/integritee/client/trusted"
	"github.com/integritee-go/integritee/worker/rpc/api"
)

// simWorld is a simulated clock and worker for timedSessions: the
// dispatchers' sleeps move the clock, and only once every answer due
// by then has been handled, so a run goes the same way every time.
type simWorld struct {
	mu       sync.Mutex
	now      time.Time
	held     []heldAnswer // answers given at a later time
	inflight sync.WaitGroup
	// answer says how session i's n-th attempt is answered: after
	// delay (0: at once), with err; or not sent at all (sendErr).
	answer func(i, n int) (delay time.Duration, err, sendErr error)
	sent   map[int][]string // by session, the calls sent
	// sentAt are the times each call was sent, by session.
	sentAt map[int][]time.Time
}

type heldAnswer struct {
	at   time.Time
	err  error
	done func(*trusted.Submission, error)
}

type simSession struct {
	w *simWorld
	i int
}

func (s simSession) Send(ct []byte, done func(*trusted.Submission, error)) error {
	w := s.w
	w.mu.Lock()
	n := len(w.sent[s.i])
	delay, err, sendErr := w.answer(s.i, n)
	if sendErr != nil {
		w.mu.Unlock()
		return sendErr
	}
	w.sent[s.i] = append(w.sent[s.i], string(ct))
	w.sentAt[s.i] = append(w.sentAt[s.i], w.now)
	if delay > 0 {
		w.held = append(w.held, heldAnswer{at: w.now.Add(delay), err: err, done: done})
		w.mu.Unlock()
		return nil
	}
	w.mu.Unlock()
	w.deliver(done, err)
	return nil
}

// deliver hands an answer to done on a goroutine of its own, as a
// session's reader would.
func (w *simWorld) deliver(done func(*trusted.Submission, error), err error) {
	w.inflight.Add(1)
	go func() {
		defer w.inflight.Done()
		if err != nil {
			done(nil, err)
			return
		}
		done(&trusted.Submission{}, nil)
	}()
}

// sleep is the dispatchers' sleep: it handles every answer due by t, in
// order, then sets the clock to t.
func (w *simWorld) sleep(ctx context.Context, t time.Time) error {
	for {
		w.inflight.Wait()
		if ctx.Err() != nil {
			return ctx.Err()
		}
		w.mu.Lock()
		slices.SortStableFunc(w.held, func(a, b heldAnswer) int { return a.at.Compare(b.at) })
		if len(w.held) == 0 || w.held[0].at.After(t) {
			w.now = t
			w.mu.Unlock()
			return nil
		}
		h := w.held[0]
		w.held = w.held[1:]
		w.now = h.at
		w.mu.Unlock()
		w.deliver(h.done, h.err)
	}
}

func (w *simWorld) clock() time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.now
}

// simRun runs the timed phase of sessions sessions of per calls each,
// every interval, against w, with one dispatcher.
func simRun(ctx context.Context, w *simWorld, sessions, per int, interval time.Duration) (*timedSessions, []callRecord, *tally) {
	r, t := simPhase(ctx, w, sessions, per, interval)
	return r, r.run(), t
}

// simPhase sets up simRun's timed phase without running it.
func simPhase(ctx context.Context, w *simWorld, sessions, per int, interval time.Duration) (*timedSessions, *tally) {
	w.sent, w.sentAt = map[int][]string{}, map[int][]time.Time{}
	start := w.now
	sess := make([]asyncSession, sessions)
	calls := make([][][]byte, sessions)
	for i := range sessions {
		sess[i] = simSession{w: w, i: i}
		for j := range per {
			calls[i] = append(calls[i], fmt.Appendf(nil, "%d/%d", i, j))
		}
	}
	t := newTally()
	rep := &Report{Workers: make([]WorkerShare, 1)}
	r := newTimedSessions(ctx, start, interval, per, 1, sess, calls, t, &progress{total: sessions * per}, rep)
	r.dispatchers, r.now, r.dispatchSleep = 1, w.clock, w.sleep
	r.afterFunc = func(d time.Duration, f func()) {
		// A refused call is sent again at once (on its own goroutine: the
		// answer's handler holds the session).
		w.inflight.Add(1)
		go func() { defer w.inflight.Done(); f() }()
	}
	return r, t
}

// TestTimedSessions: each call is sent once, in order, at its due time,
// or right after the previous call's answer if that came later (counted
// behind); a refused call is sent again and recorded once; a failed send
// ends its session, the calls after it counted as not sent.
func TestTimedSessions(t *testing.T) {
	const interval = 100 * time.Millisecond
	t0 := time.Unix(1000, 0)
	sendFailed := errors.New("connection reset")
	w := &simWorld{now: t0, answer: func(i, n int) (time.Duration, error, error) {
		switch {
		case i == 0 && n == 0: // answered as call 1 comes due
			return interval, nil, nil
		case i == 0 && n == 1: // still out when the dispatcher gets to it
			return interval / 10, nil, nil
		case i == 1 && n == 0: // answered after two and a half intervals
			return 5 * interval / 2, nil, nil
		case i == 2 && n == 1: // refused once, then taken
			return 0, &api.Error{Code: api.CodeRateLimited}, nil
		case i == 3 && n == 2: // the connection is gone
			return 0, nil, sendFailed
		}
		return 0, nil, nil
	}}
	const sessions, per = 4, 5
	// A bound for a broken run, which would otherwise wait for a call
	// that is never sent; a run that works ends on simulated time.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	r, recs, tl := simRun(ctx, w, sessions, per, interval)

	due := func(i, j int) time.Time {
		return t0.Add(interval*time.Duration(i)/sessions + interval*time.Duration(j))
	}
	for i := range sessions {
		want := per
		if i == 3 {
			want = 2
		}
		var got []string
		for _, rec := range recs {
			if rec.sender == i {
				got = append(got, string(rec.ct))
				if !rec.due.Equal(due(i, len(got)-1)) {
					t.Errorf("session %d call %d: due %v, want %v", i, len(got)-1, rec.due, due(i, len(got)-1))
				}
			}
		}
		var wantCalls []string
		for j := range want {
			wantCalls = append(wantCalls, fmt.Sprintf("%d/%d", i, j))
		}
		if !slices.Equal(got, wantCalls) {
			t.Errorf("session %d recorded %q, want %q", i, got, wantCalls)
		}
	}
	// Session 1's calls 1 and 2 came due while call 0 was out: sent as
	// its answer came, at 2.5 intervals; call 3 at its own time.
	answeredAt := due(1, 0).Add(5 * interval / 2)
	if at := w.sentAt[1]; len(at) != per || !at[1].Equal(answeredAt) || !at[2].Equal(answeredAt) || !at[3].Equal(due(1, 3)) {
		t.Errorf("session 1 sent at %v; want calls 1 and 2 at %v", at, answeredAt)
	}
	for i := range sessions {
		for j, at := range w.sentAt[i] {
			if i != 1 && i != 2 && !at.Equal(due(i, j)) {
				t.Errorf("session %d attempt %d sent at %v, due %v", i, j, at, due(i, j))
			}
		}
	}
	// Session 0's call 1 came due as call 0's answer came: sent once,
	// by the answer (behind), not again by the dispatcher.
	if len(w.sent[0]) != per || len(w.sent[1]) != per {
		t.Errorf("sessions 0 and 1 sent %q and %q: a call twice", w.sent[0], w.sent[1])
	}
	if b := r.behind.Load(); b != 3 {
		t.Errorf("%d calls behind, want 3", b)
	}
	// Session 2's refused call was sent twice and recorded once.
	if n := len(w.sent[2]); n != per+1 || w.sent[2][1] != w.sent[2][2] {
		t.Errorf("session 2 sent %q", w.sent[2])
	}
	if tl.rateLimited != 1 || tl.retries != 1 {
		t.Errorf("rate limited %d, retries %d; want 1 and 1", tl.rateLimited, tl.retries)
	}
	// Session 3: call 2 failed, calls 3 and 4 never sent.
	if tl.failures["transport"] != 1 || tl.failures["not_sent"] != 2 || r.lost.Load() != 1 || r.rep.Workers[0].Failed != 1 {
		t.Errorf("failures %v, lost %d, worker failed %d", tl.failures, r.lost.Load(), r.rep.Workers[0].Failed)
	}
	if len(recs) != sessions*per-3 {
		t.Errorf("%d records, want %d", len(recs), sessions*per-3)
	}
}

// TestTimedSessionsGiveUp: when the run's context ends, a call still out
// fails and the calls not yet sent time out; every call is counted once.
func TestTimedSessionsGiveUp(t *testing.T) {
	const sessions, per, interval = 3, 4, 100 * time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	w := &simWorld{now: time.Unix(1000, 0)}
	w.answer = func(i, n int) (time.Duration, error, error) {
		if i == 0 && n == 1 {
			// Never answered; the run is given up at its send.
			cancel()
			return 1000 * interval, nil, nil
		}
		return 0, nil, nil
	}
	_, recs, tl := simRun(ctx, w, sessions, per, interval)
	failed := 0
	for _, n := range tl.failures {
		failed += n
	}
	if len(recs)+failed != sessions*per {
		t.Fatalf("%d recorded and %d failed (%v) of %d calls", len(recs), failed, tl.failures, sessions*per)
	}
	n := 0
	for _, rec := range recs {
		if rec.sender == 0 {
			n++
		}
	}
	if n != 1 || tl.failures["timeout"] < 1 || tl.failures["not_sent"] < per-2 {
		t.Errorf("session 0 recorded %d calls; failures %v", n, tl.failures)
	}
}

// TestTimedSessionsDueWhileOut: a call that a dispatcher found due while
// the call before it was out is sent once that call's answer is handled,
// also when the handler read the clock before the call came due (it was
// then left unsent until the run timed out: an attacker's review of the
// first version found the interleaving).
func TestTimedSessionsDueWhileOut(t *testing.T) {
	const interval = 100 * time.Millisecond
	t0 := time.Unix(1000, 0)
	w := &simWorld{now: t0, answer: func(int, int) (time.Duration, error, error) { return time.Hour, nil, nil }}
	r, _ := simPhase(context.Background(), w, 1, 3, interval)
	cs := r.sessions[0]
	r.wg.Add(1)
	cs.dueNow(0)
	early := w.clock() // the answer's handler reads the clock ...
	w.mu.Lock()
	w.now = t0.Add(interval) // ... a dispatcher wakes as call 1 comes due,
	w.mu.Unlock()
	cs.dueNow(1) // finds call 0 out and goes on,
	cs.mu.Lock()
	cs.finish(&trusted.Submission{}, nil, early) // and the handler records call 0.
	out, next := cs.out, cs.next
	cs.mu.Unlock()
	if !out || next != 1 || len(w.sent[0]) != 2 || r.behind.Load() != 1 {
		t.Fatalf("call 1 out %v (next %d), %d sent, %d behind; want it sent, behind", out, next, len(w.sent[0]), r.behind.Load())
	}
}
