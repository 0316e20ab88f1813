package trusted

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strconv"
	"sync"

	"github.com/coder/websocket"

	"github.com/integritee-go/integritee/worker/rpc/api"
)

// ErrSessionRefused is a WebSocket upgrade the worker answered with an
// HTTP status instead of switching protocols (429: its per-IP session
// cap); the error is a *SessionRefusedError.
var ErrSessionRefused = errors.New("trusted: websocket session refused")

// SessionRefusedError is an upgrade answered with Status.
type SessionRefusedError struct {
	URL    string
	Status int
}

func (e *SessionRefusedError) Error() string {
	return fmt.Sprintf("trusted: websocket session refused: HTTP %d from %s", e.Status, e.URL)
}

// Is makes a *SessionRefusedError an ErrSessionRefused.
func (e *SessionRefusedError) Is(target error) bool { return target == ErrSessionRefused }

// Session is one long-lived WebSocket connection to the worker in use,
// over which calls are sent one at a time with author_submitTrustedCall:
// what a client that stays connected does, as opposed to Watch's
// connection per call. It is for a load generator (it has no failover:
// the answers are unverified, as SubmitUnverified's). A Session is not
// safe for concurrent use; Close may be called from any goroutine.
type Session struct {
	c    *Client
	w    *worker
	conn *websocket.Conn
	id   int64
	req  []byte // the last request's encoding, its buffer reused
	// in carries every message read; the reader goroutine keeps reading
	// between calls so the connection answers the worker's pings.
	in   chan []byte
	done chan struct{} // closed when the reader stops
	err  error         // why it stopped, readable after done
	quit chan struct{} // closed by Close
	// local is the connection's source address.
	local string
	// spaceMu guards space: the memory Reserve set aside for answers,
	// its length the part in use.
	spaceMu sync.Mutex
	space   []byte
	largest int // the longest message read so far

	closeOnce sync.Once

	// mu guards the call out by Send: its callback, request ID and
	// number (call), and whether the reader has stopped (no callback is
	// taken after).
	mu      sync.Mutex
	pending func(*Submission, error)
	want    string
	call    uint64
	ended   bool
	// sendMu is held by Send while it builds and writes its request in
	// req: a callback that sends the next call waits for the write of
	// the one it answers (an answer without an ID may come before it).
	sendMu sync.Mutex
	// async is set while the session's calls are sent by Send: a message
	// that answers none (there are none without subscriptions) is
	// dropped, not left for a SubmitUnverified that never comes.
	async bool
}

// ErrCallOut is a call sent on a session that has one out already: a
// session has one call out at a time.
var ErrCallOut = errors.New("trusted: the session has a call out")

// SessionOptions configures OpenSession.
type SessionOptions struct {
	// LocalIP, if set, is the source address of the connection (a
	// loopback client spreads its sessions over 127.0.0.0/8 so that the
	// worker sees distinct clients).
	LocalIP net.IP
}

// OpenSession opens a WebSocket session to the worker in use.
func (c *Client) OpenSession(ctx context.Context, opts SessionOptions) (*Session, error) {
	w, _, err := c.current(ctx)
	if err != nil {
		return nil, err
	}
	d := &net.Dialer{}
	if opts.LocalIP != nil {
		d.LocalAddr = &net.TCPAddr{IP: opts.LocalIP}
	}
	// A transport per session: an upgraded connection is never pooled,
	// and no connection dialled from another source address is reused.
	var local string
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		nc, err := d.DialContext(ctx, network, addr)
		if err == nil {
			local = nc.LocalAddr().String()
		}
		return nc, err
	}
	hc := &http.Client{Transport: &http.Transport{DialContext: dial, DisableKeepAlives: true}}
	conn, resp, err := websocket.Dial(ctx, w.wsURL, &websocket.DialOptions{HTTPClient: hc})
	if err != nil {
		if resp != nil && resp.StatusCode != http.StatusSwitchingProtocols {
			return nil, &SessionRefusedError{URL: w.wsURL, Status: resp.StatusCode}
		}
		return nil, &transportError{method: api.MethodSubmitTrustedCall, err: fmt.Errorf("websocket %s: %w", w.wsURL, err)}
	}
	conn.SetReadLimit(8 << 20)
	s := &Session{c: c, w: w, conn: conn, in: make(chan []byte, 1), done: make(chan struct{}),
		quit: make(chan struct{}), local: local}
	go s.read()
	return s, nil
}

// maxKeptReadBuffer bounds the read buffer a session keeps between
// messages: a rare large message does not stay allocated.
const maxKeptReadBuffer = 64 << 10

// read reads every message into the session's buffer and passes on an
// exact-size copy (keep): the library's Read (io.ReadAll) grows a fresh
// slice in steps for every message, and clearing those was a fifth of a
// load generator's CPU under 10,000 sessions.
func (s *Session) read() {
	defer s.end()
	var buf bytes.Buffer
	for {
		_, r, err := s.conn.Reader(context.Background())
		if err == nil {
			buf.Reset()
			_, err = buf.ReadFrom(r)
		}
		if err != nil {
			s.err = err
			return
		}
		b := s.keep(buf.Bytes())
		if buf.Cap() > maxKeptReadBuffer {
			buf = bytes.Buffer{}
		}
		if s.deliver(b) {
			continue
		}
		select {
		case s.in <- b:
		case <-s.quit:
			s.err = net.ErrClosed
			return
		}
	}
}

// end marks the reader stopped, gives a call out by Send the connection's
// end, and closes done.
func (s *Session) end() {
	s.mu.Lock()
	s.ended = true
	done := s.pending
	s.pending = nil
	s.mu.Unlock()
	close(s.done)
	if done != nil {
		done(nil, &transportError{method: api.MethodSubmitTrustedCall, err: s.err, sent: true})
	}
}

// deliver gives message b to the call out by Send; false if the session
// is not sending by Send (SubmitUnverified waits for b). A message that
// answers no call out is dropped.
func (s *Session) deliver(b []byte) bool {
	s.mu.Lock()
	done, want, call, async := s.pending, s.want, s.call, s.async
	s.mu.Unlock()
	if done == nil {
		return async
	}
	sub, matched, err := s.answerTo(b, want)
	if !matched || !s.take(call) {
		return true
	}
	done(sub, err)
	return true
}

// take clears call number call if it is still out and reports whether it
// was: the reader and a Send whose write failed race for it, and the one
// that takes it answers for it. A later call is never taken for it.
func (s *Session) take(call uint64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.pending == nil || s.call != call {
		return false
	}
	s.pending = nil
	return true
}

// keep copies message m out of the read buffer: into the reserved space
// while it lasts, else into fresh memory. The copy's capacity is its
// length, so that appending to it never reaches the next answer.
func (s *Session) keep(m []byte) []byte {
	s.spaceMu.Lock()
	defer s.spaceMu.Unlock()
	s.largest = max(s.largest, len(m))
	n := len(s.space)
	if cap(s.space)-n < len(m) {
		return bytes.Clone(m)
	}
	s.space = append(s.space, m...)
	return s.space[n:len(s.space):len(s.space)]
}

// Reserve sets aside n bytes, touched now, for the answers to come, which
// are kept there until it is used up (a Submission holds its answer). A
// load generator that keeps every answer for verification after its timed
// phase reserves before it: copying answers into fresh memory in the timed
// phase costs a page fault every few answers, and with the generator's
// collector held that was an eighth of its CPU under 10,000 sessions. The
// space replaces any reserved before; answers already kept stay valid.
// n ≤ 0 releases the space.
func (s *Session) Reserve(n int) {
	space := make([]byte, max(n, 0))
	// One write per page maps it now, not at the first answer.
	for i := 0; i < n; i += 4096 {
		space[i] = 1
	}
	s.spaceMu.Lock()
	s.space = space[:0]
	s.spaceMu.Unlock()
}

// AnswerSize is the length of the longest message the session has read,
// to size a Reserve.
func (s *Session) AnswerSize() int {
	s.spaceMu.Lock()
	defer s.spaceMu.Unlock()
	return s.largest
}

// SubmitUnverified sends ct over the session and returns the worker's
// answer, unverified (Client.VerifySubmission checks it), like
// Client.SubmitUnverified. A refused call gives an *InvalidCallError, the
// worker's other errors an *api.Error (an error the worker answers
// without an ID, such as a rate-limit refusal, is this call's: the session
// has one request out at a time), a lost connection a transport error.
func (s *Session) SubmitUnverified(ctx context.Context, ct []byte) (*Submission, error) {
	s.mu.Lock()
	if s.pending != nil {
		s.mu.Unlock()
		return nil, ErrCallOut
	}
	s.id++
	id := s.id
	s.async = false
	s.mu.Unlock()
	// The request is built in the session's buffer: Write copies it out
	// before it returns, and a Session has one call at a time.
	s.sendMu.Lock()
	s.req = appendCallRequest(s.req[:0], id, s.c.shard[:], ct)
	err := s.conn.Write(ctx, websocket.MessageText, s.req)
	s.sendMu.Unlock()
	if err != nil {
		return nil, &transportError{method: api.MethodSubmitTrustedCall, err: err, sent: true}
	}
	want := strconv.FormatInt(id, 10)
	for {
		var b []byte
		select {
		case b = <-s.in:
		case <-s.done:
			return nil, &transportError{method: api.MethodSubmitTrustedCall, err: s.err, sent: true}
		case <-ctx.Done():
			return nil, &transportError{method: api.MethodSubmitTrustedCall, err: ctx.Err(), sent: true}
		}
		if sub, matched, err := s.answerTo(b, want); matched {
			return sub, err
		}
	}
}

// Send sends ct over the session and returns once it is written, without
// waiting for the answer: done gets what SubmitUnverified would return,
// on the session's reader goroutine, which reads nothing more until done
// returns. So done must not block; it may Send the session's next call.
// This is for a load generator that keeps many sessions busy: the answer
// is handled where it is read, not handed to a waiting goroutine.
//
// A session has one call out at a time: Send while one is out returns
// ErrCallOut. If Send returns an error, done is not called; otherwise it
// is called once, with the transport error if the connection ends first.
// The write waits without a deadline: Close ends it.
func (s *Session) Send(ct []byte, done func(*Submission, error)) error {
	s.sendMu.Lock()
	defer s.sendMu.Unlock()
	s.mu.Lock()
	switch {
	case s.pending != nil:
		s.mu.Unlock()
		return ErrCallOut
	case s.ended:
		s.mu.Unlock()
		return &transportError{method: api.MethodSubmitTrustedCall, err: s.err}
	}
	s.id++
	s.call++
	call := s.call
	s.async = true
	s.want = strconv.FormatInt(s.id, 10)
	s.req = appendCallRequest(s.req[:0], s.id, s.c.shard[:], ct)
	s.pending = done
	s.mu.Unlock()
	if err := s.conn.Write(context.Background(), websocket.MessageText, s.req); err != nil && s.take(call) {
		return &transportError{method: api.MethodSubmitTrustedCall, err: err, sent: true}
	}
	return nil
}

// answerTo reads message b as the answer to the request with ID want;
// matched is false for a notification or an earlier request's late
// answer.
func (s *Session) answerTo(b []byte, want string) (sub *Submission, matched bool, err error) {
	// The result is decoded whole by VerifySubmission: only the envelope
	// is read here.
	r, ok := envelopeAnswer(b)
	if !ok {
		if r, err = decodeAnswer(b); err != nil {
			return nil, true, fmt.Errorf("trusted: session answer: %w", err)
		}
	}
	if r.Method != "" {
		return nil, false, nil // a notification
	}
	if id := string(r.ID); id != want && id != "null" && id != "" {
		return nil, false, nil // an earlier request's late answer
	}
	if r.Error != nil {
		if r.Error.Code == api.CodeInvalidCall {
			// The refusal's data is the call result with the reason.
			var cr api.CallResult
			if b, err := json.Marshal(r.Error.Data); err == nil && json.Unmarshal(b, &cr) == nil && cr.Status == api.StatusInvalid {
				return nil, true, &InvalidCallError{Hash: cr.Hash, Reason: cr.Reason}
			}
			return nil, true, &InvalidCallError{Reason: r.Error.Message}
		}
		return nil, true, r.Error
	}
	if len(r.Result) == 0 {
		return nil, true, errors.New("trusted: session answer without a result")
	}
	return &Submission{w: s.w, answer: r.Result}, true, nil
}

// appendCallRequest appends the author_submitTrustedCall request of ct
// with id to dst: the bytes json.Marshal makes of it (the hex is JSON-safe
// as it is), without its reflection, which was a fifth of a load
// generator's time per call.
func appendCallRequest(dst []byte, id int64, shard, ct []byte) []byte {
	dst = slices.Grow(dst, 160+2*(len(shard)+len(ct)))
	dst = append(dst, `{"jsonrpc":"`+api.Version+`","id":`...)
	dst = strconv.AppendInt(dst, id, 10)
	dst = append(dst, `,"method":"`+api.MethodSubmitTrustedCall+`","params":{"shard":"`...)
	dst = hex.AppendEncode(dst, shard)
	dst = append(dst, `","call":"`...)
	dst = hex.AppendEncode(dst, ct)
	return append(dst, `"}}`...)
}

// Ended reports whether the session's connection has ended (the worker
// closed it, or Close was called): a call sent on it would fail.
func (s *Session) Ended() bool {
	select {
	case <-s.done:
		return true
	default:
		return false
	}
}

// LocalAddr is the session's source address (host:port) as its socket
// has it.
func (s *Session) LocalAddr() string { return s.local }

// Close ends the session.
func (s *Session) Close() error {
	var err error
	s.closeOnce.Do(func() {
		close(s.quit)
		err = s.conn.Close(websocket.StatusNormalClosure, "")
		<-s.done
	})
	return err
}
