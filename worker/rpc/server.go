package rpc

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/integritee-go/integritee/enclave/protocol"
)

// Options configure a Server; zero values take the defaults.
type Options struct {
	// Version is system_version's answer.
	Version string
	// MaxRequestBytes bounds a request (HTTP body or WebSocket message);
	// default 256 KiB.
	MaxRequestBytes int
	// MaxBatchRequests bounds a JSON-RPC batch array; default 64.
	MaxBatchRequests int
	// RateLimit is the requests per second per client IP, RateBurst the
	// bucket size; defaults 200 and 400.
	RateLimit float64
	RateBurst int
	// MaxConnsPerIP bounds WebSocket connections per client IP; default 64.
	MaxConnsPerIP int
	// MaxSubscriptions bounds open subscriptions per connection; default 1024.
	MaxSubscriptions int
	// MaxInFlight bounds unanswered requests per WebSocket connection
	// (further reads wait); default 256.
	MaxInFlight int
	// QueueSize bounds submissions waiting for the enclave; beyond it
	// submissions get CodeBusy. Default 8192.
	QueueSize int
	// MaxCallsPerRound bounds the calls passed to the backend at once;
	// default protocol.MaxSubmitCalls.
	MaxCallsPerRound int
	// WriteTimeout bounds a WebSocket write; default 10s.
	WriteTimeout time.Duration
	Logger       *slog.Logger
	// Now is the rate limiter's clock; default time.Now.
	Now func() time.Time
}

func (o *Options) defaults() {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&o.MaxRequestBytes, 256<<10)
	def(&o.MaxBatchRequests, 64)
	def(&o.RateBurst, 400)
	def(&o.MaxConnsPerIP, 64)
	def(&o.MaxSubscriptions, 1024)
	def(&o.MaxInFlight, 256)
	def(&o.QueueSize, 8192)
	def(&o.MaxCallsPerRound, protocol.MaxSubmitCalls)
	o.MaxCallsPerRound = min(o.MaxCallsPerRound, protocol.MaxSubmitCalls)
	if o.RateLimit <= 0 {
		o.RateLimit = 200
	}
	if o.WriteTimeout <= 0 {
		o.WriteTimeout = 10 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
}

// Server serves the JSON-RPC API on HTTP and WebSocket. It is an
// http.Handler; Serve runs it on a listener.
type Server struct {
	b    Backend
	opts Options
	log  *slog.Logger
	lim  *limiter

	ctx    context.Context
	cancel context.CancelFunc
	queue  chan *job
	done   chan struct{}
	wg     sync.WaitGroup // WebSocket sessions and their goroutines

	mu        sync.Mutex
	identity  *Identity
	confirmed uint64
	waiting   map[uint64][]*subscription
	sessions  map[*session]struct{}
	nextSub   uint64
}

// New returns a server on b and starts its batcher; Close stops it.
func New(b Backend, opts Options) *Server {
	opts.defaults()
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{
		b: b, opts: opts, log: opts.Logger, lim: newLimiter(opts.RateLimit, opts.RateBurst, opts.Now),
		ctx: ctx, cancel: cancel, queue: make(chan *job, opts.QueueSize), done: make(chan struct{}),
		waiting: map[uint64][]*subscription{}, sessions: map[*session]struct{}{},
	}
	go s.batchLoop()
	return s
}

// Close stops the batcher, closes every WebSocket connection and waits for
// their goroutines. Waiting requests get an error.
func (s *Server) Close() error {
	s.cancel()
	<-s.done
	s.mu.Lock()
	for ss := range s.sessions {
		ss.conn.CloseNow()
	}
	s.mu.Unlock()
	s.wg.Wait()
	return nil
}

// Serve serves on ln until ctx is done, then shuts the HTTP server down
// and closes s.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	hs := &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		s.Close()
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s.Close()
	hs.Shutdown(sctx)
	<-errc
	return nil
}

// Confirmed tells the server that shard block number (and so every block
// before it, which its header hash chains to) is confirmed on chain:
// subscribers of calls in those blocks get "confirmed".
func (s *Server) Confirmed(number uint64) {
	s.mu.Lock()
	s.confirmed = max(s.confirmed, number)
	var subs []*subscription
	for n, w := range s.waiting {
		if n <= number {
			subs = append(subs, w...)
			delete(s.waiting, n)
		}
	}
	s.mu.Unlock()
	for _, sub := range subs {
		sub.sess.goConfirm(sub)
	}
}

// Queued returns the number of submissions waiting for the enclave (not
// counting a batch in flight).
func (s *Server) Queued() int { return len(s.queue) }

// job is one queued submission.
type job struct {
	ct   []byte
	done chan jobResult
}

type jobResult struct {
	out Outcome
	err error
}

func (s *Server) enqueue(ct []byte) (*job, *Error) {
	j := &job{ct: ct, done: make(chan jobResult, 1)}
	select {
	case s.queue <- j:
		return j, nil
	default:
		return nil, errorf(CodeBusy, "submission queue full")
	}
}

// batchLoop passes queued submissions to the backend: whatever queued up
// while the previous batch was in the enclave goes in the next.
func (s *Server) batchLoop() {
	defer close(s.done)
	for {
		var first *job
		select {
		case <-s.ctx.Done():
			return
		case first = <-s.queue:
		}
		jobs := []*job{first}
	drain:
		for len(jobs) < s.opts.MaxCallsPerRound {
			select {
			case j := <-s.queue:
				jobs = append(jobs, j)
			default:
				break drain
			}
		}
		calls := make([][]byte, len(jobs))
		for i, j := range jobs {
			calls[i] = j.ct
		}
		outs, err := s.b.SubmitCalls(s.ctx, calls)
		if err == nil && len(outs) != len(jobs) {
			err = errors.New("backend returned a wrong number of outcomes")
		}
		if err != nil {
			// A refusal the backend words for the client (an *Error) is
			// the client's business, not an operator's warning.
			level := slog.LevelWarn
			if _, ok := errors.AsType[*Error](err); ok {
				level = slog.LevelInfo
			}
			s.log.Log(context.Background(), level, "submit calls", "calls", len(jobs), "err", err)
		}
		for i, j := range jobs {
			if err != nil {
				j.done <- jobResult{err: err}
			} else {
				j.done <- jobResult{out: outs[i]}
			}
		}
	}
}

// await waits for a job's outcome.
func (s *Server) await(ctx context.Context, j *job) (Outcome, *Error) {
	select {
	case r := <-j.done:
		if r.err != nil {
			return Outcome{}, backendError(r.err)
		}
		return r.out, nil
	case <-ctx.Done():
		return Outcome{}, errorf(CodeInternal, "request abandoned")
	case <-s.ctx.Done():
		return Outcome{}, errorf(CodeInternal, "server closing")
	}
}

// response is a JSON-RPC response object.
type response struct {
	JSONRPC string          `json:"jsonrpc"`
	ID      json.RawMessage `json:"id"`
	Result  any             `json:"result,omitempty"`
	Error   *Error          `json:"error,omitempty"`
}

var nullID = json.RawMessage("null")

func errResponse(id json.RawMessage, e *Error) *response {
	if id == nil {
		id = nullID
	}
	return &response{JSONRPC: "2.0", ID: id, Error: e}
}

// request is a parsed JSON-RPC request.
type request struct {
	JSONRPC string          `json:"jsonrpc"`
	ID      json.RawMessage `json:"id"`
	Method  string          `json:"method"`
	Params  json.RawMessage `json:"params"`
}

// notification is a request without an id: it gets no response.
func (r *request) notification() bool { return r.ID == nil }

func parseRequest(raw json.RawMessage) (*request, *Error) {
	var r request
	if err := json.Unmarshal(raw, &r); err != nil {
		if !json.Valid(raw) {
			return nil, errorf(CodeParseError, "parse error")
		}
		return nil, errorf(CodeInvalidRequest, "not a JSON-RPC request object")
	}
	if r.JSONRPC != "2.0" || r.Method == "" {
		return &r, errorf(CodeInvalidRequest, `not a JSON-RPC 2.0 request: want "jsonrpc": "2.0" and a method`)
	}
	if r.ID != nil {
		switch t := bytes.TrimSpace(r.ID); {
		case len(t) == 0, t[0] == '{', t[0] == '[', string(t) == "true", string(t) == "false":
			id := r.ID
			r.ID = nil
			return &r, &Error{Code: CodeInvalidRequest, Message: "id must be a string, number or null", Data: json.RawMessage(id)}
		}
	}
	return &r, nil
}

// pending completes a started request: it returns its response, nil for a
// notification or when it answered by itself (subscriptions).
type pending func() *response

func done(r *response) pending { return func() *response { return r } }

// handleMessage starts the requests of one HTTP body or WebSocket message
// and reports whether their responses form a batch array.
func (s *Server) handleMessage(ctx context.Context, msg []byte, sess *session) ([]pending, bool) {
	t := bytes.TrimSpace(msg)
	if len(t) > 0 && t[0] == '[' {
		var raws []json.RawMessage
		if err := json.Unmarshal(t, &raws); err != nil {
			return []pending{done(errResponse(nil, errorf(CodeParseError, "parse error")))}, false
		}
		if len(raws) == 0 || len(raws) > s.opts.MaxBatchRequests {
			return []pending{done(errResponse(nil, errorf(CodeInvalidRequest, "batch of %d requests, want 1..%d", len(raws), s.opts.MaxBatchRequests)))}, false
		}
		ps := make([]pending, len(raws))
		for i, raw := range raws {
			ps[i] = s.start(ctx, raw, sess, true)
		}
		return ps, true
	}
	return []pending{s.start(ctx, t, sess, false)}, false
}

// start parses and starts one request; submissions are queued here, in
// arrival order.
func (s *Server) start(ctx context.Context, raw json.RawMessage, sess *session, inBatch bool) pending {
	req, e := parseRequest(raw)
	if e != nil {
		var id json.RawMessage
		if req != nil {
			id = req.ID
		}
		return done(errResponse(id, e))
	}
	m, ok := methods[req.Method]
	if !ok {
		return s.reply(req, nil, errorf(CodeMethodNotFound, "method not found: %s", req.Method))
	}
	return m(s, ctx, req, sess, inBatch)
}

// reply makes the response of req (none for a notification).
func (s *Server) reply(req *request, result any, e *Error) pending {
	if req.notification() {
		return done(nil)
	}
	if e != nil {
		return done(errResponse(req.ID, e))
	}
	return done(&response{JSONRPC: "2.0", ID: req.ID, Result: result})
}

func respond(req *request, result any, e *Error) *response {
	if req.notification() {
		return nil
	}
	if e != nil {
		return errResponse(req.ID, e)
	}
	return &response{JSONRPC: "2.0", ID: req.ID, Result: result}
}

// collect runs the pendings in order and encodes what they answer: one
// object, an array for a batch, or nil.
func collect(ps []pending, batch bool) []byte {
	if len(ps) == 0 {
		return nil
	}
	var out []*response
	for _, p := range ps {
		if r := p(); r != nil {
			out = append(out, r)
		}
	}
	if len(out) == 0 {
		return nil
	}
	var v any = out
	if !batch {
		v = out[0]
	}
	b, err := json.Marshal(v)
	if err != nil {
		b, _ = json.Marshal(errResponse(nil, errorf(CodeInternal, "encode response: %v", err)))
	}
	return b
}

func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

func writeJSON(w http.ResponseWriter, status int, body []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(body)
}

func writeError(w http.ResponseWriter, status int, e *Error) {
	b, _ := json.Marshal(errResponse(nil, e))
	writeJSON(w, status, b)
}

// ServeHTTP serves a JSON-RPC request (POST) or a WebSocket upgrade (GET).
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ip := clientIP(r)
	if strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
		s.serveWS(w, r, ip)
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST")
		writeError(w, http.StatusMethodNotAllowed, errorf(CodeInvalidRequest, "POST a JSON-RPC request, or open a WebSocket"))
		return
	}
	if !s.lim.allow(ip) {
		writeError(w, http.StatusTooManyRequests, errorf(CodeRateLimited, "rate limit exceeded"))
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, int64(s.opts.MaxRequestBytes)))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			writeError(w, http.StatusRequestEntityTooLarge, errorf(CodeInvalidRequest, "request larger than %d bytes", s.opts.MaxRequestBytes))
			return
		}
		writeError(w, http.StatusBadRequest, errorf(CodeInvalidRequest, "read request: %v", err))
		return
	}
	out := collect(s.handleMessage(r.Context(), body, nil))
	if out == nil {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	writeJSON(w, http.StatusOK, out)
}
