package peer_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/integritee-go/integritee/chain/tx"
	"github.com/integritee-go/integritee/worker/peer"
)

func addr(b byte) tx.Address { return tx.Address{b} }

func frame(to tx.Address, data []byte) []byte {
	return append(append([]byte{peer.FrameVersion}, to[:]...), data...)
}

// inbox collects delivered envelopes.
type inbox struct {
	mu   sync.Mutex
	got  map[tx.Address][][]byte
	more chan struct{}
}

func newInbox() *inbox { return &inbox{got: map[tx.Address][][]byte{}, more: make(chan struct{}, 1)} }

func (in *inbox) deliver(_ context.Context, to tx.Address, data []byte) error {
	in.mu.Lock()
	in.got[to] = append(in.got[to], data)
	in.mu.Unlock()
	select {
	case in.more <- struct{}{}:
	default:
	}
	return nil
}

func (in *inbox) of(to tx.Address) [][]byte {
	in.mu.Lock()
	defer in.mu.Unlock()
	return append([][]byte(nil), in.got[to]...)
}

func (in *inbox) count() int {
	in.mu.Lock()
	defer in.mu.Unlock()
	n := 0
	for _, v := range in.got {
		n += len(v)
	}
	return n
}

// waitFor polls cond for up to 10s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// serve runs srv on a free loopback port until the test ends.
func serve(t *testing.T, h http.Handler) *httptest.Server {
	t.Helper()
	ts := httptest.NewServer(h)
	t.Cleanup(ts.Close)
	return ts
}

func post(t *testing.T, url string, body []byte) (int, string) {
	t.Helper()
	resp, err := http.Post(url, "application/octet-stream", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestServerRefuses: anything but a well-formed frame POSTed to Path is
// refused with a 4xx saying why, and never reaches the callback; the
// callback's errors choose the answer.
func TestServerRefuses(t *testing.T) {
	var calls int
	var mu sync.Mutex
	deliver := func(_ context.Context, to tx.Address, data []byte) error {
		mu.Lock()
		calls++
		mu.Unlock()
		switch string(data) {
		case "not-here":
			return fmt.Errorf("enclave: %w", peer.ErrNotHere)
		case "forged":
			return fmt.Errorf("enclave: %w", peer.ErrRejected)
		case "busy":
			return errors.New("enclave restarting")
		case "panic":
			panic("callback bug")
		}
		return nil
	}
	ts := serve(t, peer.NewServer(deliver, peer.ServerOptions{MaxBodyBytes: 1 << 10}))
	u := ts.URL + peer.Path

	for _, tc := range []struct {
		name   string
		body   []byte
		status int
		says   string
	}{
		{"empty body", nil, 400, "malformed frame"},
		{"version only", []byte{peer.FrameVersion}, 400, "malformed frame"},
		{"header without envelope", frame(addr(1), nil), 400, "malformed frame"},
		{"wrong version", append([]byte{2}, frame(addr(1), []byte("x"))[1:]...), 400, "version 2"},
		{"oversized", frame(addr(1), make([]byte, 1<<10)), 413, "limit 1024"},
		{"not here", frame(addr(1), []byte("not-here")), 421, "not served here"},
		{"rejected", frame(addr(1), []byte("forged")), 400, "rejected"},
		{"unavailable", frame(addr(1), []byte("busy")), 503, "unavailable"},
		{"callback panic", frame(addr(1), []byte("panic")), 500, "internal error"},
		{"good", frame(addr(1), []byte("ok")), 204, ""},
	} {
		status, msg := post(t, u, tc.body)
		if status != tc.status || !strings.Contains(msg, tc.says) {
			t.Errorf("%s: %d %q, want %d saying %q", tc.name, status, msg, tc.status, tc.says)
		}
	}
	mu.Lock()
	n := calls
	mu.Unlock()
	if n != 5 {
		t.Errorf("callback ran %d times, want 5 (only for well-formed frames)", n)
	}

	// A body over the limit without a Content-Length (chunked).
	resp, err := http.Post(u, "application/octet-stream", io.MultiReader(bytes.NewReader(frame(addr(1), nil)), strings.NewReader(strings.Repeat("x", 2<<10))))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 413 {
		t.Errorf("chunked oversized body: %d, want 413", resp.StatusCode)
	}
	// Other methods and paths.
	resp, err = http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 405 || resp.Header.Get("Allow") != "POST" {
		t.Errorf("GET: %d Allow %q", resp.StatusCode, resp.Header.Get("Allow"))
	}
	if status, _ := post(t, ts.URL+"/peer/v1/other", frame(addr(1), []byte("ok"))); status != 404 {
		t.Errorf("other path: %d, want 404", status)
	}

	// Random garbage: always a 4xx, never the callback with a frame
	// that is not one.
	rng := rand.New(rand.NewPCG(3, 4))
	mu.Lock()
	before := calls
	mu.Unlock()
	for range 200 {
		b := make([]byte, rng.IntN(80))
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		if len(b) > 0 && b[0] == peer.FrameVersion {
			b[0] = 0xff
		}
		if status, _ := post(t, u, b); status != 400 {
			t.Fatalf("garbage %x: %d, want 400", b, status)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if calls != before {
		t.Errorf("garbage reached the callback")
	}
}

// TestServerSlowBody: a body that does not arrive within ReadTimeout is
// cut off with a 400 and frees its slot.
func TestServerSlowBody(t *testing.T) {
	ts := serve(t, peer.NewServer(newInbox().deliver, peer.ServerOptions{ReadTimeout: 200 * time.Millisecond, MaxInFlight: 1}))
	c, err := net.Dial("tcp", ts.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "POST %s HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n%s", peer.Path, frame(addr(1), []byte("part")))
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 400 {
		t.Fatalf("slow body: %d, want 400", resp.StatusCode)
	}
	if status, _ := post(t, ts.URL+peer.Path, frame(addr(1), []byte("ok"))); status != 204 {
		t.Fatalf("after a slow body: %d, want 204", status)
	}
}

// TestServerRateLimit: a client IP gets RateBurst requests at once and
// RateLimit a second after that, each beyond answered 429.
func TestServerRateLimit(t *testing.T) {
	var mu sync.Mutex
	now := time.Unix(1000, 0)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	in := newInbox()
	ts := serve(t, peer.NewServer(in.deliver, peer.ServerOptions{RateLimit: 2, RateBurst: 3, Now: clock}))
	u := ts.URL + peer.Path
	for i := range 3 {
		if status, _ := post(t, u, frame(addr(1), []byte{byte(i)})); status != 204 {
			t.Fatalf("request %d: %d", i, status)
		}
	}
	resp, err := http.Post(u, "application/octet-stream", bytes.NewReader(frame(addr(1), []byte{9})))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 429 || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("beyond the burst: %d, Retry-After %q", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	mu.Lock()
	now = now.Add(time.Second)
	mu.Unlock()
	for i := range 2 {
		if status, _ := post(t, u, frame(addr(1), []byte{byte(10 + i)})); status != 204 {
			t.Fatalf("a second later, request %d: %d", i, status)
		}
	}
	if status, _ := post(t, u, frame(addr(1), []byte{20})); status != 429 {
		t.Fatalf("beyond the rate: %d, want 429", status)
	}
	if n := in.count(); n != 5 {
		t.Fatalf("%d delivered, want 5", n)
	}
}

// TestServerInFlight: a client IP has at most MaxInFlightPerIP requests
// in the callback at once.
func TestServerInFlight(t *testing.T) {
	entered := make(chan struct{}, 10)
	release := make(chan struct{})
	deliver := func(ctx context.Context, _ tx.Address, _ []byte) error {
		entered <- struct{}{}
		select {
		case <-release:
		case <-ctx.Done():
		}
		return nil
	}
	ts := serve(t, peer.NewServer(deliver, peer.ServerOptions{MaxInFlightPerIP: 2}))
	u := ts.URL + peer.Path
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() {
			if status, _ := post(t, u, frame(addr(1), []byte("x"))); status != 204 {
				t.Errorf("held request: %d", status)
			}
		})
	}
	<-entered
	<-entered
	if status, msg := post(t, u, frame(addr(1), []byte("x"))); status != 429 || !strings.Contains(msg, "in flight") {
		t.Errorf("third request: %d %q, want 429", status, msg)
	}
	close(release)
	wg.Wait()
	if status, _ := post(t, u, frame(addr(1), []byte("x"))); status != 204 {
		t.Errorf("after release: %d", status)
	}
}

// FuzzServer: no body makes the server panic or answer outside its set.
func FuzzServer(f *testing.F) {
	f.Add([]byte{})
	f.Add(frame(addr(1), []byte("env")))
	f.Add([]byte{peer.FrameVersion, 1, 2, 3})
	f.Add(frame(addr(2), make([]byte, 600)))
	srv := peer.NewServer(func(context.Context, tx.Address, []byte) error { return nil }, peer.ServerOptions{MaxBodyBytes: 512, RateLimit: 1e9, RateBurst: 1 << 30})
	f.Fuzz(func(t *testing.T, body []byte) {
		w := httptest.NewRecorder()
		srv.ServeHTTP(w, httptest.NewRequest(http.MethodPost, peer.Path, bytes.NewReader(body)))
		switch w.Code {
		case 204, 400, 413:
		default:
			t.Fatalf("body %x: status %d", body, w.Code)
		}
	})
}
