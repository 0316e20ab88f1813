package protocol

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"runtime/debug"
)

// ErrHandlerPanic ends Serve after the handler panicked on a request.
var ErrHandlerPanic = errors.New("protocol: handler panicked: restart required")

// Handler answers requests. It is called for one request at a time, in
// arrival order. A panic stops the server (see Server.Serve).
type Handler interface {
	Handle(ctx context.Context, req Request) (Reply, error)
}

// HandlerFunc adapts a function to Handler.
type HandlerFunc func(ctx context.Context, req Request) (Reply, error)

// Handle calls f.
func (f HandlerFunc) Handle(ctx context.Context, req Request) (Reply, error) { return f(ctx, req) }

// Server serves the protocol on one connection.
type Server struct {
	Handler Handler
	// MaxFrameSize bounds request and reply frames; 0 means
	// DefaultMaxFrameSize.
	MaxFrameSize int
	// Logger, if set, logs refused frames and handler panics.
	Logger *slog.Logger
}

// Serve serves h on conn with the default limits until conn reaches EOF, a
// frame is refused or ctx is done.
func Serve(ctx context.Context, conn io.ReadWriter, h Handler) error {
	s := &Server{Handler: h}
	return s.Serve(ctx, conn)
}

func (s *Server) limit() int {
	if s.MaxFrameSize > 0 {
		return s.MaxFrameSize
	}
	return DefaultMaxFrameSize
}

// Serve reads requests from conn and writes one reply per request. It
// returns nil when conn reaches EOF between frames. When ctx is done it
// closes conn if conn is an io.Closer (to unblock the read) and returns
// ctx's error. An oversized frame is answered with CodeFrameTooLarge and
// ends Serve with an error wrapping ErrTooLarge.
//
// A panic in the handler is answered with CodeInternal ("restart
// required") and ends Serve with an error wrapping ErrHandlerPanic, after
// closing conn if it is an io.Closer: the handler may have been stopped
// half-way through a change of its state, and serving on could answer,
// sign or seal from that state. The process is to exit and the host to
// start a fresh one from what it persisted. The panic value and stack go
// to Logger.
func (s *Server) Serve(ctx context.Context, conn io.ReadWriter) error {
	if c, ok := conn.(io.Closer); ok {
		stop := context.AfterFunc(ctx, func() { c.Close() })
		defer stop()
	}
	max := s.limit()
	for {
		payload, err := ReadFrame(conn, max)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		switch {
		case errors.Is(err, io.EOF):
			return nil
		case errors.Is(err, ErrTooLarge):
			s.log("refused frame", "err", err)
			if werr := s.reply(conn, 0, nil, Errorf(CodeFrameTooLarge, "%v", err)); werr != nil {
				return errors.Join(err, werr)
			}
			return err
		case err != nil:
			return fmt.Errorf("read request: %w", err)
		}

		id, req, derr := DecodeRequest(payload)
		if derr != nil {
			s.log("malformed request", "id", id, "err", derr)
			if err := s.reply(conn, id, nil, AsError(derr)); err != nil {
				return err
			}
			continue
		}
		rep, herr := s.handle(ctx, req)
		if p, ok := errors.AsType[*panicError](herr); ok {
			s.logError("handler panicked: stopping", "request", req.Type(), "panic", p.value, "stack", string(p.stack))
			werr := s.reply(conn, id, nil, Errorf(CodeInternal, "restart required: handler panicked on %s", req.Type()))
			if c, ok := conn.(io.Closer); ok {
				c.Close()
			}
			return errors.Join(herr, werr)
		}
		var e *Error
		if herr != nil {
			e = AsError(herr)
		} else if rep == nil || rep.Type() != req.newReply().Type() {
			e = Errorf(CodeInternal, "handler returned no %s reply", req.Type())
		}
		if err := s.reply(conn, id, rep, e); err != nil {
			return err
		}
	}
}

// panicError is a panic of the handler, recovered by handle.
type panicError struct {
	req   string
	value any
	stack []byte
}

func (p *panicError) Error() string {
	return fmt.Sprintf("%v on %s: %v", ErrHandlerPanic, p.req, p.value)
}

func (p *panicError) Unwrap() error { return ErrHandlerPanic }

// handle runs the handler, returning a panic as a *panicError.
func (s *Server) handle(ctx context.Context, req Request) (rep Reply, err error) {
	defer func() {
		if r := recover(); r != nil {
			rep, err = nil, &panicError{req: req.Type(), value: r, stack: debug.Stack()}
		}
	}()
	return s.Handler.Handle(ctx, req)
}

func (s *Server) reply(w io.Writer, id uint64, rep Reply, e *Error) error {
	payload, err := encodeReply(id, rep, e)
	if err == nil && len(payload) > s.limit() {
		err = fmt.Errorf("%w: reply of %d bytes", ErrTooLarge, len(payload))
	}
	if err != nil {
		// The reply itself cannot be sent: report that instead.
		if payload, err = encodeReply(id, nil, Errorf(CodeInternal, "encode reply: %v", err)); err != nil {
			return fmt.Errorf("encode error reply: %w", err)
		}
	}
	if err := WriteFrame(w, payload, s.limit()); err != nil {
		return fmt.Errorf("write reply: %w", err)
	}
	return nil
}

func (s *Server) log(msg string, args ...any) {
	if s.Logger != nil {
		s.Logger.Warn(msg, args...)
	}
}

func (s *Server) logError(msg string, args ...any) {
	if s.Logger != nil {
		s.Logger.Error(msg, args...)
	}
}
