package peer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/integritee-go/integritee/chain/tx"
	"github.com/integritee-go/integritee/worker/internal/limit"
)

// Errors a Deliver callback returns to choose the answer (see the package
// doc); any other error answers 503.
var (
	// ErrNotHere means the recipient is not this worker's enclave: 421.
	ErrNotHere = errors.New("peer: recipient is not served here")
	// ErrRejected means the enclave refused the envelope (it does not
	// authenticate, say): 400.
	ErrRejected = errors.New("peer: envelope rejected")
)

// Deliver hands an envelope for the enclave to to it. data is the
// caller's to keep. It should return soon: the request waits for it, up
// to ServerOptions.DeliverTimeout (ctx's deadline).
type Deliver func(ctx context.Context, to tx.Address, data []byte) error

// Server defaults (ServerOptions' zero values). Raft's messages are at
// most 1 MiB of entries (enclave/replica's MaxSizePerMsg) plus framing,
// hence 2 MiB; a leader sends a follower a heartbeat per tick and up to
// 256 appends in flight, far below the rate limit, which only stops a
// flood.
const (
	DefaultMaxBodyBytes     = 2 << 20
	DefaultRateLimit        = 1000
	DefaultRateBurst        = 2000
	DefaultMaxInFlightPerIP = 8
	DefaultMaxInFlight      = 32
	DefaultReadTimeout      = 10 * time.Second
	DefaultDeliverTimeout   = 5 * time.Second
)

// ServerOptions configure a Server; zero values take the defaults.
type ServerOptions struct {
	// MaxBodyBytes bounds a request body; default 2 MiB.
	MaxBodyBytes int
	// RateLimit is the requests per second per client IP, RateBurst the
	// bucket size; defaults 1000 and 2000.
	RateLimit float64
	RateBurst int
	// MaxInFlightPerIP bounds the requests of one client IP being read or
	// delivered at once, MaxInFlight those of all; defaults 8 and 32.
	// With MaxBodyBytes they bound the memory bodies take.
	MaxInFlightPerIP int
	MaxInFlight      int
	// ReadTimeout bounds reading a request's body, DeliverTimeout the
	// Deliver callback; defaults 10s and 5s.
	ReadTimeout    time.Duration
	DeliverTimeout time.Duration
	Logger         *slog.Logger
	// Now is the rate limiter's clock; default time.Now.
	Now func() time.Time
}

func (o *ServerOptions) defaults() {
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
	def(&o.MaxBodyBytes, DefaultMaxBodyBytes)
	def(&o.RateBurst, DefaultRateBurst)
	def(&o.MaxInFlightPerIP, DefaultMaxInFlightPerIP)
	def(&o.MaxInFlight, DefaultMaxInFlight)
	if o.RateLimit <= 0 {
		o.RateLimit = DefaultRateLimit
	}
	defDur(&o.ReadTimeout, DefaultReadTimeout)
	defDur(&o.DeliverTimeout, DefaultDeliverTimeout)
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
}

// Server is the peer endpoint, an http.Handler for Path: it checks a
// request against its limits, reads and parses its frame and passes the
// envelope to its Deliver callback. It is safe for concurrent use and
// holds no goroutine of its own.
type Server struct {
	deliver Deliver
	opts    ServerOptions
	log     *slog.Logger
	lim     *limit.Limiter
	slots   chan struct{} // MaxInFlight
}

// NewServer returns an endpoint that hands envelopes to deliver.
func NewServer(deliver Deliver, opts ServerOptions) *Server {
	opts.defaults()
	return &Server{
		deliver: deliver, opts: opts, log: opts.Logger,
		lim:   limit.New(opts.RateLimit, opts.RateBurst, opts.Now),
		slots: make(chan struct{}, opts.MaxInFlight),
	}
}

func refuse(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	if status == http.StatusTooManyRequests || status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "1")
	}
	w.WriteHeader(status)
	io.WriteString(w, msg+"\n")
}

// ServeHTTP serves a POST of one frame to Path.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != Path {
		refuse(w, http.StatusNotFound, "peer: no such endpoint; POST envelopes to "+Path)
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		refuse(w, http.StatusMethodNotAllowed, "peer: POST a frame")
		return
	}
	ip := clientIP(r)
	if !s.lim.Allow(ip, 1) {
		s.log.Debug("peer envelope refused: rate limit", "remote", ip)
		refuse(w, http.StatusTooManyRequests, "peer: rate limit exceeded")
		return
	}
	if !s.lim.Acquire(ip, s.opts.MaxInFlightPerIP) {
		s.log.Debug("peer envelope refused: too many in flight", "remote", ip)
		refuse(w, http.StatusTooManyRequests, fmt.Sprintf("peer: more than %d requests in flight", s.opts.MaxInFlightPerIP))
		return
	}
	defer s.lim.Release(ip)
	select {
	case s.slots <- struct{}{}:
		defer func() { <-s.slots }()
	default:
		refuse(w, http.StatusServiceUnavailable, "peer: busy")
		return
	}
	if r.ContentLength > int64(s.opts.MaxBodyBytes) {
		refuse(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("peer: body of %d bytes, limit %d", r.ContentLength, s.opts.MaxBodyBytes))
		return
	}
	// A slow body holds a slot: bound it (not supported by every
	// ResponseWriter, such as a recorder in tests; the HTTP server's own
	// ReadTimeout bounds it then).
	_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(s.opts.ReadTimeout))
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, int64(s.opts.MaxBodyBytes)))
	if err != nil {
		if tooLarge := (*http.MaxBytesError)(nil); errors.As(err, &tooLarge) {
			refuse(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("peer: body larger than %d bytes", s.opts.MaxBodyBytes))
			return
		}
		s.log.Debug("peer envelope refused: reading body", "remote", ip, "err", err)
		refuse(w, http.StatusBadRequest, "peer: reading body: "+err.Error())
		return
	}
	to, data, err := parseFrame(body)
	if err != nil {
		s.log.Debug("peer envelope refused", "remote", ip, "err", err)
		refuse(w, http.StatusBadRequest, err.Error())
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.opts.DeliverTimeout)
	defer cancel()
	switch err := s.call(ctx, to, data); {
	case err == nil:
		w.WriteHeader(http.StatusNoContent)
	case errors.Is(err, ErrNotHere):
		refuse(w, http.StatusMisdirectedRequest, fmt.Sprintf("peer: %s is not served here", to))
	case errors.Is(err, ErrRejected):
		s.log.Debug("peer envelope rejected", "remote", ip, "to", to, "err", err)
		refuse(w, http.StatusBadRequest, "peer: envelope rejected")
	case errors.Is(err, errPanic):
		refuse(w, http.StatusInternalServerError, "peer: internal error")
	default:
		s.log.Debug("peer envelope not delivered", "remote", ip, "to", to, "err", err)
		refuse(w, http.StatusServiceUnavailable, "peer: enclave unavailable")
	}
}

var errPanic = errors.New("peer: deliver panicked")

// call runs the callback, turning a panic into an error: an envelope a
// peer sends must not take the worker down, whatever the callback does
// with it.
func (s *Server) call(ctx context.Context, to tx.Address, data []byte) (err error) {
	defer func() {
		if r := recover(); r != nil {
			s.log.Error("peer deliver panicked", "to", to, "panic", r)
			err = fmt.Errorf("%w: %v", errPanic, r)
		}
	}()
	return s.deliver(ctx, to, data)
}

func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}
