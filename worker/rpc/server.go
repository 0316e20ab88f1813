package rpc

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/integritee-go/integritee/enclave/protocol"
	"github.com/integritee-go/integritee/internal/bufpool"
	"github.com/integritee-go/integritee/worker/internal/limit"
	"github.com/integritee-go/integritee/worker/rpc/api"
)

// Default limits (Options' zero values).
const (
	DefaultRateLimit         = 200
	DefaultRateBurst         = 400
	DefaultMaxBatchRequests  = 64
	DefaultMaxConns          = 1024
	DefaultMaxConnsPerIP     = 64
	DefaultQueueSize         = 8192
	DefaultMaxGetters        = 4
	DefaultGetterQueueSize   = 256
	DefaultReadHeaderTimeout = 10 * time.Second
	DefaultReadTimeout       = 30 * time.Second
	DefaultWriteTimeout      = 10 * time.Second
	DefaultIdleTimeout       = 60 * time.Second
	DefaultWSPingInterval    = 30 * time.Second
	DefaultWSIdleTimeout     = 2 * time.Minute
)

// Options configure a Server; zero values take the defaults.
type Options struct {
	// Version is system_version's answer.
	Version string
	// MaxRequestBytes bounds a request (HTTP body or WebSocket message);
	// default 256 KiB.
	MaxRequestBytes int
	// MaxBatchRequests bounds a JSON-RPC batch array; default 64, and
	// never more than RateBurst (a larger batch could never pass the rate
	// limit).
	MaxBatchRequests int
	// RateLimit is the requests per second per client IP, RateBurst the
	// bucket size; defaults 200 and 400. Every request of a batch counts.
	RateLimit float64
	RateBurst int
	// MaxConns bounds the TCP connections a listener wrapped by Listener
	// (Serve, ServeWith) keeps open, MaxConnsPerIP those of one client IP
	// there and the WebSocket sessions of one client IP everywhere;
	// defaults 1024 and 64. Connections beyond them are closed at once.
	MaxConns      int
	MaxConnsPerIP int
	// MaxSubscriptions bounds open subscriptions per connection; default 1024.
	MaxSubscriptions int
	// MaxInFlight bounds unanswered requests per WebSocket connection
	// (further reads wait); default 256.
	MaxInFlight int
	// QueueSize bounds submissions waiting for the enclave; beyond it
	// submissions get api.CodeBusy. Default 8192.
	QueueSize int
	// MaxCallsPerRound bounds the calls passed to the backend at once;
	// default protocol.MaxSubmitCalls.
	MaxCallsPerRound int
	// BatchLinger is how long a batch waits for more calls after its
	// first arrived, unless it is full sooner; 0 (the default) sends what
	// is queued at once. Each batch is a shard block, whose fixed cost
	// (seal, signature, fsync, a confirmation on chain) a moderate rate
	// pays for a few calls only: a linger of a millisecond or two trades
	// that much latency for fewer, larger blocks. Under a heavy load the
	// calls have waited longer than this behind the previous batch, and
	// nothing is added.
	BatchLinger time.Duration
	// MaxGetters bounds the getters passed to the backend at once (each
	// takes the enclave in turn with block processing, so this bounds how
	// many can be ahead of a chain block); default 4. GetterQueueSize
	// bounds the getters waiting for them, in arrival order; beyond it
	// getters get api.CodeBusy. Default 256.
	MaxGetters      int
	GetterQueueSize int
	// ReadHeaderTimeout bounds reading a request's header, ReadTimeout
	// the whole request with its body (a slow body is cut off);
	// defaults 10s (at most ReadTimeout) and 30s.
	ReadHeaderTimeout time.Duration
	ReadTimeout       time.Duration
	// WriteTimeout bounds, on a listener wrapped by Listener (as Serve
	// wraps its own), any write to a connection that makes no progress: a
	// client that reads nothing of it for WriteTimeout. A WebSocket
	// session whose write fails is closed. Default 10s.
	WriteTimeout time.Duration
	// IdleTimeout closes an HTTP keep-alive connection idle this long;
	// default 60s.
	IdleTimeout time.Duration
	// WSPingInterval is how often a WebSocket client is pinged; a session
	// whose pong does not come within the interval is closed. Default 30s.
	WSPingInterval time.Duration
	// WSIdleTimeout closes a WebSocket session that has had no message
	// either way, no request in flight and no open subscription for this
	// long; default 2m.
	WSIdleTimeout time.Duration
	Logger        *slog.Logger
	// Observer, if set, is told of every request answered (metrics).
	Observer Observer
	// Now is the rate limiter's clock; default time.Now.
	Now func() time.Time
}

// WithDefaults returns o with every zero (or negative) limit set to its
// default.
func (o Options) WithDefaults() Options {
	o.defaults()
	return o
}

func (o *Options) defaults() {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	defDur := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&o.MaxRequestBytes, 256<<10)
	def(&o.MaxBatchRequests, DefaultMaxBatchRequests)
	def(&o.RateBurst, DefaultRateBurst)
	o.MaxBatchRequests = min(o.MaxBatchRequests, o.RateBurst)
	def(&o.MaxConns, DefaultMaxConns)
	def(&o.MaxConnsPerIP, DefaultMaxConnsPerIP)
	def(&o.MaxSubscriptions, 1024)
	def(&o.MaxInFlight, 256)
	def(&o.QueueSize, DefaultQueueSize)
	def(&o.MaxCallsPerRound, protocol.MaxSubmitCalls)
	o.MaxCallsPerRound = min(o.MaxCallsPerRound, protocol.MaxSubmitCalls)
	def(&o.MaxGetters, DefaultMaxGetters)
	def(&o.GetterQueueSize, DefaultGetterQueueSize)
	if o.RateLimit <= 0 {
		o.RateLimit = DefaultRateLimit
	}
	defDur(&o.ReadTimeout, DefaultReadTimeout)
	defDur(&o.ReadHeaderTimeout, min(DefaultReadHeaderTimeout, o.ReadTimeout))
	defDur(&o.WriteTimeout, DefaultWriteTimeout)
	defDur(&o.IdleTimeout, DefaultIdleTimeout)
	defDur(&o.WSPingInterval, DefaultWSPingInterval)
	defDur(&o.WSIdleTimeout, DefaultWSIdleTimeout)
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
}

// Observer receives the server's answers, for metrics.
type Observer interface {
	// Request reports one request answered: its method (a served
	// method's name, MethodUnknown or MethodNone) and the code of its
	// error, 0 for a result. A notification, which gets no answer, and a
	// subscription count with code 0 once started.
	Request(method string, code int)
}

// Method labels of requests that name no served method.
const (
	// MethodUnknown is a request for a method the server does not serve.
	MethodUnknown = "unknown"
	// MethodNone is a message refused before any method was read from it
	// (malformed, too large, rate limited, a bad batch).
	MethodNone = "none"
)

// observe reports an answer to the Observer, if any.
func (s *Server) observe(method string, e *api.Error) {
	if s.opts.Observer == nil {
		return
	}
	code := 0
	if e != nil {
		code = e.Code
	}
	s.opts.Observer.Request(method, code)
}

// refused reports a message refused before its requests were read and
// returns e.
func (s *Server) refused(e *api.Error) *api.Error {
	s.observe(MethodNone, e)
	return e
}

// Sessions returns the number of open WebSocket sessions.
func (s *Server) Sessions() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.sessions)
}

// Server serves the JSON-RPC API on HTTP and WebSocket. It is an
// http.Handler; Serve runs it on a listener.
type Server struct {
	b    Backend
	opts Options
	log  *slog.Logger
	lim  *limit.Limiter

	ctx     context.Context
	cancel  context.CancelFunc
	queue   chan *job
	getters chan *getterJob
	bg      sync.WaitGroup // the batcher and the getter workers
	wg      sync.WaitGroup // WebSocket sessions and their goroutines
	// readBufs are the buffers WebSocket messages and HTTP bodies are
	// read into (*bytes.Buffer).
	readBufs *bufpool.Pool
	// answerBufs are the buffers WebSocket answers are encoded into
	// (*answerBuf): the executed answers were an eighth of the worker's
	// allocations under many clients.
	answerBufs sync.Pool

	mu        sync.Mutex
	identity  *Identity
	confirmed uint64
	waiting   map[uint64][]*subscription
	sessions  map[*session]struct{}
	nextSub   uint64
}

// New returns a server on b and starts its batcher and getter workers;
// Close stops them.
func New(b Backend, opts Options) *Server {
	opts.defaults()
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{
		b: b, opts: opts, log: opts.Logger, lim: limit.New(opts.RateLimit, opts.RateBurst, opts.Now),
		ctx: ctx, cancel: cancel, queue: make(chan *job, opts.QueueSize), getters: make(chan *getterJob, opts.GetterQueueSize),
		waiting: map[uint64][]*subscription{}, sessions: map[*session]struct{}{},
		readBufs:   bufpool.New(maxPooledRead),
		answerBufs: sync.Pool{New: func() any { return new(answerBuf) }},
	}
	s.bg.Add(1 + opts.MaxGetters)
	go s.batchLoop()
	for range opts.MaxGetters {
		go s.getterLoop()
	}
	return s
}

// Close stops the batcher and the getter workers, closes every WebSocket
// connection and waits for their goroutines. Waiting requests get an
// error.
func (s *Server) Close() error {
	s.cancel()
	s.bg.Wait()
	s.mu.Lock()
	for ss := range s.sessions {
		ss.conn.CloseNow()
	}
	s.mu.Unlock()
	s.wg.Wait()
	return nil
}

// Serve serves s on ln until ctx is done, then shuts the HTTP server down
// and closes s. See ServeWith.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	return s.ServeWith(ctx, ln, s)
}

// ServeWith serves h, which routes to s (and may serve more routes), on
// ln with the options' HTTP timeouts and connection caps (HTTPServer,
// Listener) until ctx is done; then it shuts the HTTP server down and
// closes s.
func (s *Server) ServeWith(ctx context.Context, ln net.Listener, h http.Handler) error {
	hs := s.opts.HTTPServer(h)
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(s.opts.Listener(ln)) }()
	select {
	case err := <-errc:
		s.Close()
		return fmt.Errorf("rpc: serve: %w", err)
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
	at   time.Time // when it was queued
	done chan jobResult
}

type jobResult struct {
	out Outcome
	err error
}

func (s *Server) enqueue(ct []byte) (*job, *api.Error) {
	j := &job{ct: ct, done: make(chan jobResult, 1)}
	if s.opts.BatchLinger > 0 {
		j.at = time.Now()
	}
	select {
	case s.queue <- j:
		return j, nil
	default:
		return nil, errorf(api.CodeBusy, "submission queue full")
	}
}

// batchLoop passes queued submissions to the backend: whatever queued up
// while the previous batch was in the enclave goes in the next, and what
// comes within Options.BatchLinger of its first call.
func (s *Server) batchLoop() {
	defer s.bg.Done()
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
		if wait := s.opts.BatchLinger - time.Since(first.at); s.opts.BatchLinger > 0 && wait > 0 && len(jobs) < s.opts.MaxCallsPerRound {
			jobs = s.linger(jobs, wait)
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
			if _, ok := errors.AsType[*api.Error](err); ok {
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

// linger adds to jobs what is queued within wait, until the batch is full.
func (s *Server) linger(jobs []*job, wait time.Duration) []*job {
	t := time.NewTimer(wait)
	defer t.Stop()
	for len(jobs) < s.opts.MaxCallsPerRound {
		select {
		case j := <-s.queue:
			jobs = append(jobs, j)
		case <-t.C:
			return jobs
		case <-s.ctx.Done():
			return jobs
		}
	}
	return jobs
}

// await waits for a job's outcome.
func (s *Server) await(ctx context.Context, j *job) (Outcome, *api.Error) {
	select {
	case r := <-j.done:
		if r.err != nil {
			return Outcome{}, backendError(r.err)
		}
		return r.out, nil
	case <-ctx.Done():
		return Outcome{}, errorf(api.CodeInternal, "request abandoned")
	case <-s.ctx.Done():
		return Outcome{}, errorf(api.CodeInternal, "server closing")
	}
}

// getterJob is one queued getter.
type getterJob struct {
	ctx  context.Context
	ct   []byte
	done chan getterResult
}

type getterResult struct {
	resp  []byte
	stale bool
	err   error
}

// QueuedGetters returns the number of getters waiting for a getter worker.
func (s *Server) QueuedGetters() int { return len(s.getters) }

func (s *Server) enqueueGetter(ctx context.Context, ct []byte) (*getterJob, *api.Error) {
	j := &getterJob{ctx: ctx, ct: ct, done: make(chan getterResult, 1)}
	select {
	case s.getters <- j:
		return j, nil
	default:
		return nil, errorf(api.CodeBusy, "getter queue full")
	}
}

// getterLoop is one getter worker. Getters reach the backend only through
// MaxGetters of these, in arrival order: each takes the enclave, which
// the host serialises with chain blocks and call batches, so however many
// clients send getters, at most MaxGetters of them wait there ahead of a
// block.
func (s *Server) getterLoop() {
	defer s.bg.Done()
	for {
		var j *getterJob
		select {
		case <-s.ctx.Done():
			return
		case j = <-s.getters:
		}
		if err := j.ctx.Err(); err != nil {
			// The client went away while the getter waited.
			j.done <- getterResult{err: err}
			continue
		}
		resp, stale, err := s.b.ExecuteGetter(j.ctx, j.ct)
		j.done <- getterResult{resp: resp, stale: stale, err: err}
	}
}

// awaitGetter waits for a getter's answer.
func (s *Server) awaitGetter(ctx context.Context, j *getterJob) getterResult {
	select {
	case r := <-j.done:
		return r
	case <-ctx.Done():
		return getterResult{err: ctx.Err()}
	case <-s.ctx.Done():
		return getterResult{err: errorf(api.CodeInternal, "server closing")}
	}
}

// response is a JSON-RPC response object.
type response struct {
	JSONRPC string          `json:"jsonrpc"`
	ID      json.RawMessage `json:"id"`
	Result  any             `json:"result,omitempty"`
	Error   *api.Error      `json:"error,omitempty"`
}

var nullID = json.RawMessage("null")

func errResponse(id json.RawMessage, e *api.Error) *response {
	if id == nil {
		id = nullID
	}
	return &response{JSONRPC: api.Version, ID: id, Error: e}
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

func parseRequest(raw json.RawMessage) (*request, *api.Error) {
	r, ok := fastRequest(raw)
	if !ok {
		if err := json.Unmarshal(raw, &r); err != nil {
			if !json.Valid(raw) {
				return nil, errorf(api.CodeParseError, "parse error")
			}
			return nil, errorf(api.CodeInvalidRequest, "not a JSON-RPC request object")
		}
	}
	if r.JSONRPC != api.Version || r.Method == "" {
		return &r, errorf(api.CodeInvalidRequest, `not a JSON-RPC 2.0 request: want "jsonrpc": "2.0" and a method`)
	}
	if r.ID != nil {
		switch t := bytes.TrimSpace(r.ID); {
		case len(t) == 0, t[0] == '{', t[0] == '[', string(t) == "true", string(t) == "false":
			id := r.ID
			r.ID = nil
			return &r, &api.Error{Code: api.CodeInvalidRequest, Message: "id must be a string, number or null", Data: json.RawMessage(id)}
		}
	}
	return &r, nil
}

// pending completes a started request: it returns its response, nil for a
// notification or when it answered by itself (subscriptions).
type pending func() *response

func done(r *response) pending { return func() *response { return r } }

// splitMessage splits one HTTP body or WebSocket message into its
// requests and reports whether their responses form a batch array. A
// message that is no usable batch gets the error to answer instead.
func (s *Server) splitMessage(msg []byte) ([]json.RawMessage, bool, *api.Error) {
	t := bytes.TrimSpace(msg)
	if len(t) == 0 || t[0] != '[' {
		return []json.RawMessage{t}, false, nil
	}
	var raws []json.RawMessage
	if err := json.Unmarshal(t, &raws); err != nil {
		return nil, false, errorf(api.CodeParseError, "parse error")
	}
	if len(raws) == 0 || len(raws) > s.opts.MaxBatchRequests {
		return nil, false, errorf(api.CodeInvalidRequest, "batch of %d requests, want 1..%d", len(raws), s.opts.MaxBatchRequests)
	}
	return raws, true, nil
}

// charge takes the rate limit's tokens for a message of n requests
// beyond the one its arrival took: each request of a batch costs the
// enclave as much as a request alone.
func (s *Server) charge(ip string, n int) *api.Error {
	if n > 1 && !s.lim.Allow(ip, n-1) {
		return errorf(api.CodeRateLimited, "rate limit exceeded: a batch of %d requests needs %d tokens", n, n)
	}
	return nil
}

// startAll starts the requests of one message.
func (s *Server) startAll(ctx context.Context, raws []json.RawMessage, batch bool, sess *session) []pending {
	ps := make([]pending, len(raws))
	for i, raw := range raws {
		ps[i] = s.start(ctx, raw, sess, batch)
	}
	return ps
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
		s.observe(MethodNone, e)
		return done(errResponse(id, e))
	}
	m, ok := methods[req.Method]
	if !ok {
		e := errorf(api.CodeMethodNotFound, "method not found: %s", req.Method)
		s.observe(MethodUnknown, e)
		return s.reply(req, nil, e)
	}
	p := m(s, ctx, req, sess, inBatch)
	// The params may be the message's buffer (fastRequest), which is
	// reused once the requests started: nothing reads them later.
	req.Params = nil
	if s.opts.Observer == nil {
		return p
	}
	return func() *response {
		r := p()
		var e *api.Error
		if r != nil {
			e = r.Error
		}
		s.observe(req.Method, e)
		return r
	}
}

// reply makes the response of req (none for a notification).
func (s *Server) reply(req *request, result any, e *api.Error) pending {
	if req.notification() {
		return done(nil)
	}
	if e != nil {
		return done(errResponse(req.ID, e))
	}
	return done(&response{JSONRPC: api.Version, ID: req.ID, Result: result})
}

func respond(req *request, result any, e *api.Error) *response {
	if req.notification() {
		return nil
	}
	if e != nil {
		return errResponse(req.ID, e)
	}
	return &response{JSONRPC: api.Version, ID: req.ID, Result: result}
}

// collect runs the pendings in order and encodes what they answer: one
// object, an array for a batch, or nil. A single executed answer is
// appended to dst.
func collect(dst []byte, ps []pending, batch bool) []byte {
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
		if b, ok := spliced(dst, out[0]); ok {
			return b
		}
		v = out[0]
	}
	b, err := json.Marshal(v)
	if err != nil {
		b, _ = json.Marshal(errResponse(nil, errorf(api.CodeInternal, "encode response: %v", err)))
	}
	return b
}

// spliced appends to dst the encoding of r that json.Marshal would make
// when its result is an executedAnswer: the envelope is marshalled
// without the result, and the answer appended in place of its closing
// brace. json.Marshal would re-validate and compact the answer's encoding
// byte by byte, which cost as much as making it.
func spliced(dst []byte, r *response) ([]byte, bool) {
	a, ok := r.Result.(*executedAnswer)
	if !ok || r.Error != nil {
		return nil, false
	}
	env, err := json.Marshal(&response{JSONRPC: r.JSONRPC, ID: r.ID})
	if err != nil || len(env) == 0 || env[len(env)-1] != '}' {
		return nil, false
	}
	b, err := a.appendJSON(append(append(dst, env[:len(env)-1]...), `,"result":`...))
	if err != nil {
		return nil, false
	}
	return append(b, '}'), true
}

// answerBuf is a buffer of the answer pool.
type answerBuf struct{ b []byte }

// maxPooledAnswer bounds the buffers the answer pool keeps.
const maxPooledAnswer = 64 << 10

// putAnswerBuf gives buf back to the pool with out, what was encoded in
// it and written, as its storage; a large one is dropped.
func (s *Server) putAnswerBuf(buf *answerBuf, out []byte) {
	if cap(out) > maxPooledAnswer {
		return
	}
	buf.b = out[:0]
	s.answerBufs.Put(buf)
}

// maxPooledRead bounds the buffers the read pool keeps: a buffer a rare
// large message grew is dropped.
const maxPooledRead = 64 << 10

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

func writeError(w http.ResponseWriter, status int, e *api.Error) {
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
		writeError(w, http.StatusMethodNotAllowed, errorf(api.CodeInvalidRequest, "POST a JSON-RPC request, or open a WebSocket"))
		return
	}
	// One token before the body is read, the rest once the batch is
	// counted (charge).
	if !s.lim.Allow(ip, 1) {
		writeError(w, http.StatusTooManyRequests, s.refused(errorf(api.CodeRateLimited, "rate limit exceeded")))
		return
	}
	// The body is read into a pooled buffer (see session.read), which
	// is free again once the answer is written: the methods copy what
	// they keep from their params while they start.
	buf := s.readBufs.Get()
	defer s.readBufs.Put(buf)
	_, err := buf.ReadFrom(http.MaxBytesReader(w, r.Body, int64(s.opts.MaxRequestBytes)))
	body := buf.Bytes()
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			writeError(w, http.StatusRequestEntityTooLarge, s.refused(errorf(api.CodeInvalidRequest, "request larger than %d bytes", s.opts.MaxRequestBytes)))
			return
		}
		writeError(w, http.StatusBadRequest, s.refused(errorf(api.CodeInvalidRequest, "read request: %v", err)))
		return
	}
	raws, batch, e := s.splitMessage(body)
	if e != nil {
		writeError(w, http.StatusOK, s.refused(e))
		return
	}
	if e := s.charge(ip, len(raws)); e != nil {
		writeError(w, http.StatusTooManyRequests, s.refused(e))
		return
	}
	out := collect(nil, s.startAll(r.Context(), raws, batch, nil), batch)
	if out == nil {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	writeJSON(w, http.StatusOK, out)
}
