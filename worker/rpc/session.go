package rpc

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	"github.com/integritee-go/integritee/worker/rpc/api"
)

// session is one WebSocket connection.
type session struct {
	s      *Server
	conn   *websocket.Conn
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	wmu sync.Mutex // one writer at a time

	inflight chan struct{} // a slot per unanswered message
	// active is when the last message was read or written (UnixNano):
	// the session's idle clock.
	active atomic.Int64

	mu     sync.Mutex
	subs   map[string]*subscription
	closed bool // no more background writes (wg is being waited for)
	// pingT and idleT are the keepalive's timers (startKeepalive).
	pingT, idleT *time.Timer
}

// subscription is a watched call.
type subscription struct {
	id     string
	sess   *session
	result *api.CallResult // the executed result, once known
}

func (s *Server) serveWS(w http.ResponseWriter, r *http.Request, ip string) {
	if !s.lim.Acquire(ip, s.opts.MaxConnsPerIP) {
		writeError(w, http.StatusTooManyRequests, s.refused(errorf(api.CodeRateLimited, "too many connections")))
		return
	}
	conn, err := websocket.Accept(w, r, nil)
	if err != nil {
		s.lim.Release(ip)
		return // Accept answered the client
	}
	// Messages up to twice the limit are read and answered with an error;
	// beyond that the library closes this connection (status 1009).
	conn.SetReadLimit(2 * int64(s.opts.MaxRequestBytes))
	ctx, cancel := context.WithCancel(s.ctx)
	ss := &session{s: s, conn: conn, ctx: ctx, cancel: cancel, subs: map[string]*subscription{},
		inflight: make(chan struct{}, s.opts.MaxInFlight)}
	ss.touch()
	s.mu.Lock()
	if s.ctx.Err() != nil {
		s.mu.Unlock()
		cancel()
		conn.Close(websocket.StatusGoingAway, "server closing")
		s.lim.Release(ip)
		return
	}
	s.sessions[ss] = struct{}{}
	s.wg.Add(1)
	s.mu.Unlock()
	// The session runs in a goroutine of its own and the handler returns:
	// net/http's goroutine for the connection ends (the connection is
	// hijacked), and with it its stack and the upgrade request it held,
	// which with 10,000 sessions were the deepest stacks and much of the
	// heap the collector marks every cycle (docs/performance.md).
	go func() {
		defer s.wg.Done()
		defer s.lim.Release(ip)
		ss.run(ip)
	}()
}

// run serves the session until its client or the server ends it.
func (ss *session) run(ip string) {
	s, conn, cancel := ss.s, ss.conn, ss.cancel
	ss.startKeepalive()
	ss.readLoop(ip)
	cancel()
	ss.close()
	// The client sends nothing more (it closed, or half-closed its end).
	// The answers still being written get WriteTimeout in all to drain:
	// each write alone is bounded only by its progress, so a client that
	// half-closes and then reads slowly would hold the session (and its
	// goroutines and slot) for as long as it keeps reading.
	drain := time.AfterFunc(s.opts.WriteTimeout, func() { conn.CloseNow() })
	ss.wg.Wait()
	drain.Stop()
	s.mu.Lock()
	delete(s.sessions, ss)
	s.mu.Unlock()
	conn.Close(websocket.StatusNormalClosure, "")
}

func (ss *session) readLoop(ip string) {
	for {
		buf, err := ss.read()
		if err != nil {
			return
		}
		ok := ss.handle(ip, buf.Bytes())
		// The requests started: their methods copied what they keep
		// from their params, which were read in place (as for an HTTP
		// body), so the buffer is free again.
		ss.s.readBufs.Put(buf)
		if !ok {
			return
		}
	}
}

// handle starts the requests of message msg; false when the session ends.
func (ss *session) handle(ip string, msg []byte) bool {
	s := ss.s
	ss.touch()
	if !s.lim.Allow(ip, 1) {
		ss.send(errResponse(nil, s.refused(errorf(api.CodeRateLimited, "rate limit exceeded"))))
		return true
	}
	if len(msg) > s.opts.MaxRequestBytes {
		ss.send(errResponse(nil, s.refused(errorf(api.CodeInvalidRequest, "request larger than %d bytes", s.opts.MaxRequestBytes))))
		return true
	}
	raws, batch, e := s.splitMessage(msg)
	if e == nil {
		e = s.charge(ip, len(raws))
	}
	if e != nil {
		ss.send(errResponse(nil, s.refused(e)))
		return true
	}
	select {
	case ss.inflight <- struct{}{}:
	case <-ss.ctx.Done():
		return false
	}
	ps := s.startAll(ss.ctx, raws, batch, ss)
	ss.wg.Add(1)
	go func() {
		defer ss.wg.Done()
		defer func() { <-ss.inflight }()
		// The answer is encoded in a pooled buffer, free again once
		// written (the connection's Write does not keep it).
		buf := s.answerBufs.Get().(*answerBuf)
		if out := collect(buf.b[:0], ps, batch); out != nil {
			ss.write(out)
			s.putAnswerBuf(buf, out)
		}
	}()
	return true
}

// read reads the next message into a buffer of the server's pool, which
// the caller puts back once the message's requests have started (their
// methods copy what they keep): io.ReadAll (the library's Read) grows its buffer in
// steps and copies it once more, which was a tenth of the worker's CPU
// under many clients, and an exact-size copy of each message was a tenth
// of its allocations. A session keeps no buffer of its own between
// messages, so idle sessions hold no read memory.
//
// It waits without a context, which the library would register anew for
// every message (a fifth of the server's allocations per call): the
// session ends by its connection's closing, by the client, the idle or
// ping loop, or Server.Close.
func (ss *session) read() (*bytes.Buffer, error) {
	_, r, err := ss.conn.Reader(context.Background())
	if err != nil {
		return nil, err
	}
	buf := ss.s.readBufs.Get()
	if _, err := buf.ReadFrom(r); err != nil {
		ss.s.readBufs.Put(buf)
		return nil, err
	}
	return buf, nil
}

// touch restarts the session's idle clock.
func (ss *session) touch() { ss.active.Store(time.Now().UnixNano()) }

// busy reports whether the session waits for the server: a request in
// flight or a subscription open. Such a session is not idle, however
// quiet its client.
func (ss *session) busy() bool {
	if len(ss.inflight) > 0 {
		return true
	}
	ss.mu.Lock()
	defer ss.mu.Unlock()
	return len(ss.subs) > 0
}

// startKeepalive pings the client every WSPingInterval and closes the
// connection when no pong comes within the interval: a peer that is gone
// (a dead network path does not close TCP) no longer holds its
// connection slot and subscriptions. It also closes the session once it
// has been idle (no message either way, not busy) for WSIdleTimeout, so
// that open but unused connections do not hold the per-IP and global
// connection slots. Both are timers whose functions run only when due:
// with 10,000 sessions a goroutine each for them was 10,000 more stacks
// for the collector to mark on every cycle, whose marking slowed the
// batch pipeline (docs/performance.md). ss.mu must not be held.
func (ss *session) startKeepalive() {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	ss.pingT = time.AfterFunc(ss.s.opts.WSPingInterval, ss.ping)
	ss.idleT = time.AfterFunc(ss.s.opts.WSIdleTimeout, ss.checkIdle)
}

// close marks the session closed, so that no more background work starts
// (ss.wg is waited for next), and stops the keepalive's timers; a timer
// function already running is in ss.wg and re-arms nothing.
func (ss *session) close() {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	ss.closed = true
	ss.pingT.Stop()
	ss.idleT.Stop()
}

// enter counts a timer function in ss.wg unless the session is closing.
func (ss *session) enter() bool {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.closed {
		return false
	}
	ss.wg.Add(1)
	return true
}

// rearm resets t to d unless the session is closing. A timer function
// calls it after enter, which ordered it after startKeepalive set t.
func (ss *session) rearm(t *time.Timer, d time.Duration) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if !ss.closed {
		t.Reset(d)
	}
}

func (ss *session) ping() {
	if !ss.enter() {
		return
	}
	defer ss.wg.Done()
	every := ss.s.opts.WSPingInterval
	ctx, cancel := context.WithTimeout(ss.ctx, every)
	err := ss.conn.Ping(ctx)
	cancel()
	if err != nil {
		if ss.ctx.Err() == nil {
			ss.s.log.Debug("websocket ping failed; closing", "err", err)
		}
		ss.conn.CloseNow()
		return
	}
	ss.rearm(ss.pingT, every)
}

func (ss *session) checkIdle() {
	if !ss.enter() {
		return
	}
	defer ss.wg.Done()
	timeout := ss.s.opts.WSIdleTimeout
	d := time.Since(time.Unix(0, ss.active.Load()))
	switch {
	case d < timeout:
		ss.rearm(ss.idleT, timeout-d)
	case ss.busy():
		ss.rearm(ss.idleT, timeout)
	default:
		ss.conn.Close(websocket.StatusGoingAway, "idle timeout")
	}
}

// write sends one message. Its connection bounds each write by
// WriteTimeout (Listener), so a write waits no context of its own: a
// timer and a cancelable context per message were 2.5% of the worker's
// CPU under load. A write that fails (a client that reads nothing for
// WriteTimeout, or a closed connection) ends the session: a part of a
// frame may have been sent, and the client is not reading its answers.
func (ss *session) write(b []byte) error {
	ss.wmu.Lock()
	defer ss.wmu.Unlock()
	ss.touch()
	if err := ss.conn.Write(context.Background(), websocket.MessageText, b); err != nil {
		ss.conn.CloseNow()
		return err
	}
	return nil
}

func (ss *session) send(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return ss.write(b)
}

// statusNotification is an author_trustedCallStatus message.
type statusNotification struct {
	JSONRPC string           `json:"jsonrpc"`
	Method  string           `json:"method"`
	Params  api.StatusParams `json:"params"`
}

// notify sends a status of sub unless it was unwatched; final ends it.
func (ss *session) notify(sub *subscription, r *api.CallResult, final bool) {
	ss.mu.Lock()
	_, open := ss.subs[sub.id]
	if final {
		delete(ss.subs, sub.id)
	}
	ss.mu.Unlock()
	if open {
		ss.send(statusNotification{JSONRPC: api.Version, Method: api.NotificationTrustedCallStatus, Params: api.StatusParams{Subscription: sub.id, Result: r}})
	}
}

// subscribe opens a subscription, if the connection may have another.
func (ss *session) subscribe() (*subscription, *api.Error) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if len(ss.subs) >= ss.s.opts.MaxSubscriptions {
		return nil, errorf(api.CodeInvalidRequest, "more than %d subscriptions", ss.s.opts.MaxSubscriptions)
	}
	ss.s.mu.Lock()
	ss.s.nextSub++
	id := strconv.FormatUint(ss.s.nextSub, 10)
	ss.s.mu.Unlock()
	sub := &subscription{id: id, sess: ss}
	ss.subs[id] = sub
	return sub, nil
}

func (ss *session) unsubscribe(id string) bool {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	_, ok := ss.subs[id]
	delete(ss.subs, id)
	return ok
}

// goConfirm sends sub's confirmed status in the session's background.
func (ss *session) goConfirm(sub *subscription) {
	ss.mu.Lock()
	if ss.closed {
		ss.mu.Unlock()
		return
	}
	ss.wg.Add(1)
	ss.mu.Unlock()
	go func() {
		defer ss.wg.Done()
		r := *sub.result
		r.Status = api.StatusConfirmed
		ss.notify(sub, &r, true)
	}()
}
