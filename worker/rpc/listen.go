package rpc

import (
	"errors"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"
)

// HTTPServer returns an HTTP server for h with o's timeouts: a request's
// header (of at most 64 KiB) and then its whole body must arrive within
// ReadHeaderTimeout and ReadTimeout, and a keep-alive connection is
// closed after IdleTimeout without a request. Serve it on Listener(ln) for the connection caps and
// the write timeout.
//
// It sets no http.Server.WriteTimeout: that deadline runs from the
// request's arrival, so it would also cut a call waiting its turn in the
// enclave or a long provisioning snapshot stream. Listener's connections
// bound each write instead.
func (o Options) HTTPServer(h http.Handler) *http.Server {
	o.defaults()
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: o.ReadHeaderTimeout,
		ReadTimeout:       o.ReadTimeout,
		IdleTimeout:       o.IdleTimeout,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(o.Logger.Handler(), slog.LevelWarn),
	}
}

// Listener wraps ln: it keeps at most MaxConns connections open, at most
// MaxConnsPerIP of them from one client IP, and closes any connection
// beyond that at once, so that a flood of idle or slow connections
// neither exhausts the worker's descriptors and memory nor, from one
// address, locks out the others. A write to a kept
// connection fails, and the connection is closed, when the client reads
// nothing of it for WriteTimeout.
func (o Options) Listener(ln net.Listener) net.Listener {
	o.defaults()
	return &limitListener{Listener: ln, max: o.MaxConns, perIP: o.MaxConnsPerIP, stall: o.WriteTimeout, log: o.Logger, byIP: map[string]int{}}
}

type limitListener struct {
	net.Listener
	max, perIP int
	stall      time.Duration
	log        *slog.Logger

	mu    sync.Mutex
	total int
	byIP  map[string]int
}

func (l *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		ip := remoteIP(c.RemoteAddr())
		if l.acquire(ip) {
			return &limitedConn{Conn: c, l: l, ip: ip}, nil
		}
		// Closed unread: answering (an HTTP 503) would mean reading the
		// request first, which is what the cap is to spare.
		c.Close()
		l.log.Debug("connection refused: too many connections", "remote", ip)
	}
}

func (l *limitListener) acquire(ip string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.total >= l.max || l.byIP[ip] >= l.perIP {
		return false
	}
	l.total++
	l.byIP[ip]++
	return true
}

func (l *limitListener) release(ip string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.total--
	if l.byIP[ip]--; l.byIP[ip] <= 0 {
		delete(l.byIP, ip)
	}
}

func remoteIP(a net.Addr) string {
	if ta, ok := a.(*net.TCPAddr); ok {
		return ta.IP.String()
	}
	host, _, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	return host
}

// stallChunk is the most written under one write deadline: a client must
// take at least this much per WriteTimeout, whatever the response's size.
const stallChunk = 64 << 10

// limitedConn is a kept connection: it frees its slot when closed (by the
// HTTP server, or by the WebSocket library after a hijack) and bounds
// each write by the write timeout. It owns its write deadline: the
// servers here set none of their own (see HTTPServer).
type limitedConn struct {
	net.Conn
	l    *limitListener
	ip   string
	once sync.Once
}

func (c *limitedConn) Write(b []byte) (int, error) {
	n := 0
	for len(b) > 0 {
		chunk := b[:min(len(b), stallChunk)]
		if err := c.Conn.SetWriteDeadline(time.Now().Add(c.l.stall)); err != nil {
			return n, err
		}
		m, err := c.Conn.Write(chunk)
		n += m
		if err != nil {
			return n, err
		}
		b = b[m:]
	}
	return n, nil
}

func (c *limitedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { c.l.release(c.ip) })
	return err
}

// CloseWrite lets the HTTP server half-close the connection as it does a
// bare TCP connection's (after a refused request body).
func (c *limitedConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return errors.ErrUnsupported
}
