package rpc_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/integritee-go/integritee/worker/rpc"
	"github.com/integritee-go/integritee/worker/rpc/api"
)

// serve runs srv through Serve (so with its listener's connection caps and
// its HTTP timeouts) on a free loopback port and returns host:port; the
// test's cleanup stops it.
func serve(t testing.TB, srv *rpc.Server) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	return ln.Addr().String()
}

// dialer connects from the loopback address ip: all of 127.0.0.0/8 is
// this machine, so one test can play clients of several addresses.
func dialer(ip string) *net.Dialer {
	return &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 10 * time.Second}
}

func dialFrom(t testing.TB, ip, addr string) net.Conn {
	t.Helper()
	c, err := dialer(ip).Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// postFrom posts body from ip on a connection of its own and returns the
// status, 0 when the connection was refused or cut.
func postFrom(ip, addr, body string) (int, []byte) {
	tr := &http.Transport{DialContext: dialer(ip).DialContext, DisableKeepAlives: true}
	defer tr.CloseIdleConnections()
	cl := &http.Client{Timeout: 10 * time.Second, Transport: tr}
	resp, err := cl.Post("http://"+addr, "application/json", strings.NewReader(body))
	if err != nil {
		return 0, nil
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, nil
	}
	return resp.StatusCode, b
}

// writeRequest writes a POST of body on a raw connection.
func writeRequest(t testing.TB, c net.Conn, body string) {
	t.Helper()
	if _, err := fmt.Fprintf(c, "POST / HTTP/1.1\r\nHost: rpc\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", len(body), body); err != nil {
		t.Fatal(err)
	}
}

// waitFor polls cond until it holds; the deadline is generous, only a
// broken server exceeds it.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// closedByServer reports whether a read error means the server closed the
// connection (as opposed to the test's own read deadline passing).
func closedByServer(err error) bool {
	return err != nil && !errors.Is(err, os.ErrDeadlineExceeded)
}

func batchOf(n int) string {
	parts := make([]string, n)
	for i := range parts {
		parts[i] = req(i+1, "system_version", nil)
	}
	return "[" + strings.Join(parts, ",") + "]"
}

// TestRateLimitCountsBatchRequests: each request of a batch takes a token,
// over HTTP and WebSocket. On the old code a batch took one token however
// many requests it held: the batch of 3 below passed, and so did the
// single requests after it (up to 64 times the limit, in 64-request
// batches).
func TestRateLimitCountsBatchRequests(t *testing.T) {
	frozen := time.Unix(1_700_000_000, 0)
	opts := rpc.Options{RateLimit: 1, RateBurst: 10, Now: func() time.Time { return frozen }} // no refill

	t.Run("http", func(t *testing.T) {
		srv := rpc.New(newFake(), opts)
		t.Cleanup(func() { srv.Close() })
		post := func(body string) (int, []byte) {
			r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(body))
			r.RemoteAddr = "10.0.0.1:1234"
			w := httptest.NewRecorder()
			srv.ServeHTTP(w, r)
			return w.Code, w.Body.Bytes()
		}
		// 10 tokens: the batch of 8 takes 8; the batch of 3 finds 2 and
		// is refused whole (its arrival took one); one is left.
		code, body := post(batchOf(8))
		var answers []message
		if code != http.StatusOK || json.Unmarshal(body, &answers) != nil || len(answers) != 8 {
			t.Fatalf("batch of 8 within the burst: %d %s", code, body)
		}
		code, body = post(batchOf(3))
		if m := decode(t, body); code != http.StatusTooManyRequests || m.Error == nil || m.Error.Code != api.CodeRateLimited {
			t.Fatalf("batch of 3 with 2 tokens left: %d %s", code, body)
		}
		if codes := []int{first(post(req(1, "system_version", nil))), first(post(req(2, "system_version", nil)))}; !slices.Equal(codes, []int{200, 429}) {
			t.Fatalf("single requests with one token left: %v, want [200 429]", codes)
		}
	})

	t.Run("batch beyond the burst", func(t *testing.T) {
		// It could never pass: it is refused as too large, not
		// rate-limited forever.
		srv := rpc.New(newFake(), opts)
		t.Cleanup(func() { srv.Close() })
		r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(batchOf(11)))
		w := httptest.NewRecorder()
		srv.ServeHTTP(w, r)
		if m := decode(t, w.Body.Bytes()); m.Error == nil || m.Error.Code != api.CodeInvalidRequest || !strings.Contains(m.Error.Message, "1..10") {
			t.Fatalf("batch of 11 with a burst of 10: %+v", m)
		}
	})

	t.Run("websocket", func(t *testing.T) {
		_, _, ws := newServer(t, newFake(), opts)
		c := dialWS(t, ws)
		read := func() []byte {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			_, b, err := c.conn.Read(ctx)
			if err != nil {
				t.Fatal(err)
			}
			return b
		}
		c.send(batchOf(8))
		var answers []message
		if b := read(); json.Unmarshal(b, &answers) != nil || len(answers) != 8 {
			t.Fatalf("batch of 8 within the burst: %s", b)
		}
		c.send(batchOf(3))
		if m := decode(t, read()); m.Error == nil || m.Error.Code != api.CodeRateLimited {
			t.Fatalf("batch of 3 with 2 tokens left: %+v", m)
		}
		if m := c.call(1, "system_version", nil); m.Error != nil {
			t.Fatalf("last token: %+v", m.Error)
		}
		if m := c.call(2, "system_version", nil); m.Error == nil || m.Error.Code != api.CodeRateLimited {
			t.Fatalf("no token left: %+v", m)
		}
	})
}

func first(code int, _ []byte) int { return code }

// TestGettersBoundedAndQueued: getters reach the backend (the enclave) at
// most MaxGetters at a time, wait in a queue of GetterQueueSize in
// arrival order, are answered busy at once beyond that, and the queued
// ones are all answered once the backend frees up. On the old code all
// ten getters were in the backend at once (each waiting for the enclave
// lock) and none was refused.
func TestGettersBoundedAndQueued(t *testing.T) {
	f := newFake()
	f.getterGate = make(chan struct{})
	srv, _, ws := newServer(t, f, rpc.Options{MaxGetters: 2, GetterQueueSize: 3})
	c := dialWS(t, ws)
	getter := func(id int) string {
		return req(id, "state_executeGetter", map[string]string{"shard": shardHex, "request": hex.EncodeToString(fmt.Appendf(nil, "getter %d", id))})
	}
	c.send(getter(1))
	c.send(getter(2))
	waitFor(t, "two getters in the backend", func() bool { return f.getters.Load() == 2 })
	for id := 3; id <= 5; id++ {
		c.send(getter(id))
	}
	waitFor(t, "three getters queued", func() bool { return srv.QueuedGetters() == 3 })
	for id := 6; id <= 10; id++ {
		c.send(getter(id))
	}
	var busy []int
	for range 5 {
		m := c.next()
		if m.Error == nil || m.Error.Code != api.CodeBusy {
			t.Fatalf("getter beyond the queue: %+v", m)
		}
		var id int
		json.Unmarshal(m.ID, &id)
		busy = append(busy, id)
	}
	slices.Sort(busy)
	if !slices.Equal(busy, []int{6, 7, 8, 9, 10}) {
		t.Fatalf("busy answers for %v, want 6..10", busy)
	}
	close(f.getterGate)
	var answered []int
	for range 5 {
		m := c.next()
		if m.Error != nil {
			t.Fatalf("queued getter: %+v", m.Error)
		}
		var id int
		json.Unmarshal(m.ID, &id)
		answered = append(answered, id)
	}
	slices.Sort(answered)
	if !slices.Equal(answered, []int{1, 2, 3, 4, 5}) {
		t.Fatalf("answered %v, want 1..5", answered)
	}
	if n := f.maxGetters.Load(); n != 2 {
		t.Fatalf("%d getters in the backend at once, want at most MaxGetters = 2", n)
	}
}

// TestSlowBodyCutOff: a client that sends its body a byte at a time is cut
// off after ReadTimeout, and a well-behaved client is still answered. On
// the old code (a header timeout only) the server waited for the body as
// long as bytes kept coming: the read below hit the test's 20 s deadline.
func TestSlowBodyCutOff(t *testing.T) {
	addr := serve(t, rpc.New(newFake(), rpc.Options{ReadTimeout: 500 * time.Millisecond}))
	c := dialFrom(t, "127.0.0.1", addr)
	if _, err := fmt.Fprintf(c, "POST / HTTP/1.1\r\nHost: rpc\r\nContent-Type: application/json\r\nContent-Length: 10000\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	stop, sent := make(chan struct{}), make(chan int, 1)
	go func() {
		n := 0
		defer func() { sent <- n }()
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for n < 400 { // at most 20 s
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			if _, err := c.Write([]byte(" ")); err != nil {
				return
			}
			n++
		}
	}()
	c.SetReadDeadline(time.Now().Add(20 * time.Second))
	_, err := io.ReadAll(c) // an answer, if any, then the close
	close(stop)
	n := <-sent
	if errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("slow body of %d bytes so far not cut off", n)
	}
	if code, body := postFrom("127.0.0.1", addr, req(1, "system_version", nil)); code != http.StatusOK {
		t.Fatalf("well-behaved client: %d %s", code, body)
	}
}

// TestCallOutlivesTimeouts: ReadTimeout bounds reading the request and
// WriteTimeout each write, not the wait for the enclave: a call held in
// the backend well past both is still answered. The old code passed too (it
// had no such timeouts); the test guards the choice of a per-write
// deadline: with http.Server's WriteTimeout, which runs from the
// request's arrival, this answer was lost (the connection closed).
func TestCallOutlivesTimeouts(t *testing.T) {
	f := newFake()
	f.gate, f.entered = make(chan struct{}), make(chan int, 1)
	addr := serve(t, rpc.New(f, rpc.Options{ReadTimeout: 500 * time.Millisecond, WriteTimeout: 500 * time.Millisecond}))
	type answer struct {
		code int
		body []byte
	}
	res := make(chan answer, 1)
	go func() {
		code, body := postFrom("127.0.0.1", addr, req(1, "author_submitTrustedCall", callParams("slow call")))
		res <- answer{code, body}
	}()
	<-f.entered
	time.Sleep(1500 * time.Millisecond) // well past both timeouts
	close(f.gate)
	a := <-res
	if m := decode(t, a.body); a.code != http.StatusOK || m.Error != nil {
		t.Fatalf("call held past the timeouts: %d %s", a.code, a.body)
	}
}

// TestConnectionCaps opens 200 idle connections from one address and 20
// more from two others (a few hundred in all, not the 10,000 of the issue:
// the caps are options, so the test sets them low and the counting is the
// same). Beyond MaxConnsPerIP an address's connections are closed at once,
// beyond MaxConns everyone's are; the kept ones work, and a client from
// another address is answered as long as the global cap is not reached,
// and again as soon as connections close. On the old code every
// connection was kept: none of the 190 reads below ended before its
// deadline, and nothing capped them.
func TestConnectionCaps(t *testing.T) {
	const perIP, total, flood = 10, 30, 200
	addr := serve(t, rpc.New(newFake(), rpc.Options{
		MaxConnsPerIP: perIP, MaxConns: total, RateLimit: 1e6, RateBurst: 1e6,
		// Idle connections are held by the server as long as the test runs.
		ReadHeaderTimeout: time.Minute, ReadTimeout: time.Minute, IdleTimeout: time.Minute,
	}))
	// Each connection reports its first read: a close, or (for a kept one,
	// once the test sends it a request) an answer.
	type result struct {
		i      int
		status string
		err    error
	}
	results := make(chan result, flood)
	conns := make([]net.Conn, flood)
	for i := range conns {
		c := dialFrom(t, "127.0.0.1", addr)
		conns[i] = c
		go func() {
			c.SetReadDeadline(time.Now().Add(60 * time.Second))
			buf := make([]byte, len("HTTP/1.1 200"))
			_, err := io.ReadFull(c, buf)
			results <- result{i, string(buf), err}
		}()
	}
	kept := map[int]bool{}
	for i := range conns {
		kept[i] = true
	}
	for range flood - perIP {
		r := <-results
		if !closedByServer(r.err) {
			t.Fatalf("connection %d beyond the per-IP cap: read %q, %v; want closed", r.i, r.status, r.err)
		}
		delete(kept, r.i)
	}
	// The kept ones are served.
	for i := range kept {
		writeRequest(t, conns[i], req(1, "system_version", nil))
	}
	for range perIP {
		if r := <-results; r.err != nil || r.status != "HTTP/1.1 200" {
			t.Fatalf("kept connection %d: %q, %v", r.i, r.status, r.err)
		}
	}
	if code, _ := postFrom("127.0.0.1", addr, req(1, "system_version", nil)); code != 0 {
		t.Fatalf("a connection beyond the per-IP cap was answered %d", code)
	}
	if code, body := postFrom("127.0.0.2", addr, req(1, "system_version", nil)); code != http.StatusOK {
		t.Fatalf("another address while one is at its cap: %d %s", code, body)
	}

	// Fill the global cap from two more addresses. A connection is
	// retried while the server may still hold the one that was just
	// answered from 127.0.0.2 (it closes it right after the answer).
	keptConn := func(ip string) net.Conn {
		var c net.Conn
		waitFor(t, "a connection from "+ip+" within the caps", func() bool {
			c = dialFrom(t, ip, addr)
			writeRequest(t, c, req(1, "system_version", nil))
			c.SetReadDeadline(time.Now().Add(30 * time.Second))
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil || resp.StatusCode != http.StatusOK {
				c.Close()
				return false
			}
			return true
		})
		return c
	}
	var third []net.Conn
	for _, ip := range []string{"127.0.0.3", "127.0.0.4"} {
		for range perIP {
			c := keptConn(ip)
			if ip == "127.0.0.3" {
				third = append(third, c)
			}
		}
	}
	if code, _ := postFrom("127.0.0.2", addr, req(1, "system_version", nil)); code != 0 {
		t.Fatalf("a connection beyond the global cap was answered %d", code)
	}
	for _, c := range third {
		c.Close()
	}
	waitFor(t, "a free slot once connections closed", func() bool {
		code, _ := postFrom("127.0.0.2", addr, req(1, "system_version", nil))
		return code == http.StatusOK
	})
}

// TestIdleConnectionsClosed: a keep-alive connection is closed after
// IdleTimeout without a new request, and one that never sends a request
// after ReadHeaderTimeout. On the old code (no idle timeout) the
// keep-alive connection stayed open for good: its read hit the test's
// 20 s deadline.
func TestIdleConnectionsClosed(t *testing.T) {
	addr := serve(t, rpc.New(newFake(), rpc.Options{IdleTimeout: time.Second, ReadHeaderTimeout: time.Second}))
	c := dialFrom(t, "127.0.0.1", addr)
	br := bufio.NewReader(c)
	writeRequest(t, c, req(1, "system_version", nil))
	c.SetReadDeadline(time.Now().Add(20 * time.Second))
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != http.StatusOK || resp.Close {
		t.Fatalf("keep-alive request: %v %v", resp, err)
	}
	io.Copy(io.Discard, resp.Body)
	if _, err := br.ReadByte(); !closedByServer(err) {
		t.Fatalf("idle keep-alive connection: %v, want closed", err)
	}
	silent := dialFrom(t, "127.0.0.1", addr)
	silent.SetReadDeadline(time.Now().Add(20 * time.Second))
	if _, err := silent.Read(make([]byte, 1)); !closedByServer(err) {
		t.Fatalf("connection without a request: %v, want closed", err)
	}
}

// TestWebSocketIdleClosed: a WebSocket session with nothing to do is closed
// after WSIdleTimeout (status 1001), but not while a call it watches is
// pending. On the old code sessions had no idle timeout: the final read
// hit the test's 20 s deadline.
func TestWebSocketIdleClosed(t *testing.T) {
	f := newFake()
	f.gate, f.entered = make(chan struct{}), make(chan int, 1)
	_, _, ws := newServer(t, f, rpc.Options{WSIdleTimeout: time.Second})
	c := dialWS(t, ws)
	m := c.call(1, "author_submitAndWatchTrustedCall", callParams("watched"))
	var sub string
	if m.Error != nil || json.Unmarshal(m.Result, &sub) != nil {
		t.Fatalf("subscribe: %+v", m)
	}
	if m := c.next(); m.Params.Result.Status != api.StatusSubmitted {
		t.Fatalf("%+v", m)
	}
	<-f.entered
	time.Sleep(2500 * time.Millisecond) // over two idle timeouts, while the call is pending
	close(f.gate)
	if m := c.next(); m.Params.Result.Status != api.StatusExecuted {
		t.Fatalf("watched call after a quiet while: %+v", m)
	}
	// Waiting for the confirmation is busy too; unwatching ends that.
	if m := c.call(2, "author_unwatchTrustedCall", map[string]string{"subscription": sub}); string(m.Result) != "true" {
		t.Fatalf("unwatch: %+v", m)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_, b, err := c.conn.Read(ctx)
	if websocket.CloseStatus(err) != websocket.StatusGoingAway {
		t.Fatalf("idle session: read %q, %v; want closed with status 1001", b, err)
	}
}

// TestWebSocketPing: a peer that never answers the server's pings is
// disconnected, and a client that keeps reading (and so answers them)
// keeps its session across many ping intervals. On the old code the
// server never pinged: the raw client saw neither a ping nor a close
// until the test's 20 s deadline.
func TestWebSocketPing(t *testing.T) {
	_, _, ws := newServer(t, newFake(), rpc.Options{WSPingInterval: 200 * time.Millisecond})
	host := strings.TrimPrefix(ws, "ws://")

	// A raw peer: the handshake, then silence.
	c := dialFrom(t, "127.0.0.1", host)
	fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n", host)
	br := bufio.NewReader(c)
	c.SetReadDeadline(time.Now().Add(20 * time.Second))
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("handshake: %v %v", resp, err)
	}
	pings := 0
	for {
		var hdr [2]byte
		if _, err = io.ReadFull(br, hdr[:]); err != nil {
			break
		}
		// Server frames are unmasked; a ping's payload is short.
		if hdr[0]&0x0f == 0x9 {
			pings++
		}
		if _, err = io.CopyN(io.Discard, br, int64(hdr[1]&0x7f)); err != nil {
			break
		}
	}
	if !closedByServer(err) || pings == 0 {
		t.Fatalf("peer that never answers pings: %d pings, then %v; want pings and a close", pings, err)
	}

	// A client that reads answers the pings and stays connected (a
	// longer interval: a pong late by a scheduling stall is not the
	// point here).
	_, _, ws = newServer(t, newFake(), rpc.Options{WSPingInterval: 500 * time.Millisecond})
	wc := dialWS(t, ws)
	msgs := make(chan []byte)
	errc := make(chan error, 1)
	go func() {
		for {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			_, b, err := wc.conn.Read(ctx)
			cancel()
			if err != nil {
				errc <- err
				return
			}
			msgs <- b
		}
	}()
	time.Sleep(2500 * time.Millisecond) // five ping intervals
	wc.send(req(1, "system_version", nil))
	select {
	case b := <-msgs:
		if m := decode(t, b); m.Error != nil {
			t.Fatalf("%+v", m.Error)
		}
	case err := <-errc:
		t.Fatalf("a client answering pings was disconnected: %v", err)
	}
}

// TestCloseEndsIdleSessions: Server.Close ends a session that waits for
// its client's next message (its read waits without a context) and
// returns; the client sees its connection closed.
func TestCloseEndsIdleSessions(t *testing.T) {
	srv, _, wsURL := newServer(t, newFake(), rpc.Options{})
	c := dialWS(t, wsURL)
	if m := c.call(1, "system_version", nil); m.Error != nil {
		t.Fatalf("system_version: %+v", m.Error)
	}
	closed := make(chan struct{})
	go func() { srv.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(time.Minute): // a hang, not a timing bound
		t.Fatal("Close did not return with an idle session open")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, _, err := c.conn.Read(ctx); err == nil || errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("read after Close: %v, want the connection closed", err)
	}
}

// TestWSStalledClientClosed: a WebSocket client that sends requests and
// reads none of the answers loses its session once a write has made no
// progress for WriteTimeout, and its slot is freed. The ping and idle
// loops are set out of reach, so only the failed write can end it: with
// the write's error ignored the session stayed open, its answers queued
// behind a stuck writer.
func TestWSStalledClientClosed(t *testing.T) {
	srv := rpc.New(newFake(), rpc.Options{
		WriteTimeout: 200 * time.Millisecond, RateLimit: 1e6, RateBurst: 1e6,
		WSPingInterval: time.Hour, WSIdleTimeout: time.Hour,
	})
	addr := serve(t, srv)
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, "ws://"+addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	// A batch of 64 requests, answered by one message of tens of KiB; the
	// kernel's socket buffers fill after a few hundred unread answers.
	var batch []string
	for i := range 64 {
		batch = append(batch, req(i, "rpc_methods", nil))
	}
	msg := []byte("[" + strings.Join(batch, ",") + "]")
	sent := make(chan int, 1)
	go func() {
		n := 0
		for c.Write(ctx, websocket.MessageText, msg) == nil {
			n++
		}
		sent <- n
	}()
	// The client's writes end when the server closes the connection, or
	// at the test's deadline.
	n := <-sent
	if ctx.Err() != nil {
		t.Fatalf("session of a client that reads nothing still open after 30s (%d sessions)", srv.Sessions())
	}
	if n < 10 {
		t.Fatalf("the client's writes failed after %d messages", n)
	}
	for srv.Sessions() != 0 {
		if time.Since(start) > time.Minute {
			t.Fatalf("%d sessions still counted", srv.Sessions())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestWSHalfClosedSlowReaderClosed: a client that sends many requests,
// half-closes its connection and then reads the answers slowly (fast
// enough that no single write stalls for WriteTimeout) loses its session
// within WriteTimeout of its half-close. Before, the session lasted as
// long as the client kept reading: its ping and idle loops had ended with
// its reads, and each write was bounded only by its own progress.
func TestWSHalfClosedSlowReaderClosed(t *testing.T) {
	const writeTimeout = 5 * time.Second
	srv := rpc.New(newFake(), rpc.Options{
		WriteTimeout: writeTimeout, RateLimit: 1e6, RateBurst: 1e6,
		WSPingInterval: time.Hour, WSIdleTimeout: time.Hour, MaxInFlight: 512,
	})
	addr := serve(t, srv)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var tcp *net.TCPConn
	tr := &http.Transport{DialContext: func(ctx context.Context, network, a string) (net.Conn, error) {
		c, err := dialer("127.0.0.1").DialContext(ctx, network, a)
		if err == nil {
			tcp = c.(*net.TCPConn)
			tcp.SetReadBuffer(256 << 10) // the answers back up in the server
		}
		return c, err
	}}
	defer tr.CloseIdleConnections()
	c, _, err := websocket.Dial(ctx, "ws://"+addr, &websocket.DialOptions{HTTPClient: &http.Client{Transport: tr}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	c.SetReadLimit(1 << 24)
	var batch []string
	for i := range 64 {
		batch = append(batch, req(i, "system_health", nil))
	}
	msg := []byte("[" + strings.Join(batch, ",") + "]")
	// ~25 KB answers, 7 MB in all: more than the kernel's socket buffers
	// hold (4 MiB here). Below MaxInFlight, so the server reads them all.
	const msgs = 500
	for range msgs {
		if err := c.Write(ctx, websocket.MessageText, msg); err != nil {
			t.Fatal(err)
		}
	}
	if err := tcp.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	halfClosed := time.Now()
	// Read ~80 KB/s, well above the 64 KiB per WriteTimeout a write needs,
	// and too slow to drain the answers within the 5·WriteTimeout allowed.
	read := 0
	for srv.Sessions() != 0 {
		if time.Since(halfClosed) > 3*writeTimeout/2 {
			t.Fatalf("session still open %v after the half-close, %d answers read", time.Since(halfClosed), read)
		}
		_, r, err := c.Reader(ctx)
		if err != nil {
			break // closed by the server
		}
		for {
			if _, err := io.CopyN(io.Discard, r, 16<<10); err != nil {
				break
			}
			time.Sleep(20 * time.Millisecond)
			if srv.Sessions() == 0 {
				break
			}
		}
		read++
	}
	deadline := time.Now().Add(30 * time.Second)
	for srv.Sessions() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d sessions still counted", srv.Sessions())
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Logf("ended %v after the half-close, %d answers read", time.Since(halfClosed), read)
	if read >= msgs {
		t.Fatalf("the client read all %d answers: the test did not hold the session", read)
	}
}

// TestSessionGoroutines: an open WebSocket session waiting for its
// client's next message holds one goroutine on the server (its reader);
// its pings and idle check are timers, not goroutines, so that the
// collector has half as many stacks to mark with many clients.
func TestSessionGoroutines(t *testing.T) {
	_, _, ws := newServer(t, newFake(), rpc.Options{WSPingInterval: time.Hour, WSIdleTimeout: time.Hour})
	// A first session, so that the server's own goroutines are running.
	if m := dialWS(t, ws).call(1, "system_version", nil); m.Error != nil {
		t.Fatalf("%+v", m.Error)
	}
	settle := func() int {
		// Goroutines that finish (a call's, the dialer's) leave within
		// a moment; wait until the count holds still.
		n := runtime.NumGoroutine()
		for range 50 {
			time.Sleep(20 * time.Millisecond)
			m := runtime.NumGoroutine()
			if m == n {
				return n
			}
			n = m
		}
		return n
	}
	before := settle()
	const sessions = 40
	for i := range sessions {
		if m := dialWS(t, ws).call(i, "system_version", nil); m.Error != nil {
			t.Fatalf("%+v", m.Error)
		}
	}
	if grew := settle() - before; grew > sessions+sessions/4 {
		t.Fatalf("%d sessions added %d goroutines, want about one each", sessions, grew)
	}
	// ... and that one is the session's own: net/http's goroutine for the
	// hijacked connection, with its stack and the upgrade request, ended.
	var buf bytes.Buffer
	if err := pprof.Lookup("goroutine").WriteTo(&buf, 2); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(buf.String(), "net/http.(*conn).serve("); n > sessions/4 {
		t.Fatalf("%d goroutines still in net/http's connection handler for %d sessions", n, sessions)
	}
}
