package worker

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/integritee-go/integritee/enclave/protocol"
)

func snapshotStream(t testing.TB, frames ...[]protocol.Entry) []byte {
	t.Helper()
	var b bytes.Buffer
	for _, f := range frames {
		if err := writeFrame(&b, f); err != nil {
			t.Fatal(err)
		}
	}
	b.Write([]byte{0, 0, 0, 0})
	return b.Bytes()
}

func TestReadSnapshot(t *testing.T) {
	e1 := protocol.Entry{Key: [32]byte{1}, Value: []byte("one")}
	e2 := protocol.Entry{Key: [32]byte{2}, Value: []byte("two")}
	valid := snapshotStream(t, []protocol.Entry{e1}, []protocol.Entry{e2})
	huge := binary.BigEndian.AppendUint32(nil, maxSnapshotFrame+1)
	emptyFrame := snapshotStream(t, []protocol.Entry{})
	garbage := append(binary.BigEndian.AppendUint32(nil, 3), 0xff, 0xff, 0xff)
	tests := []struct {
		name string
		in   []byte
		want int // entries; -1: error
	}{
		{"two frames", valid, 2},
		{"no entries", []byte{0, 0, 0, 0}, 0},
		{"truncated frame", valid[:len(valid)-8], -1},
		{"no terminator", valid[:len(valid)-4], -1},
		{"empty stream", nil, -1},
		{"frame too large", huge, -1},
		{"empty frame", emptyFrame, -1},
		{"not cbor", garbage, -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []protocol.Entry
			err := readSnapshot(bytes.NewReader(tt.in), func(c []protocol.Entry) error {
				got = append(got, c...)
				return nil
			})
			if tt.want < 0 {
				if !errors.Is(err, ErrProvisioning) {
					t.Fatalf("err = %v, want ErrProvisioning", err)
				}
				return
			}
			if err != nil || len(got) != tt.want {
				t.Fatalf("got %d entries, %v; want %d", len(got), err, tt.want)
			}
		})
	}
	// The callback's error stops the read.
	stop := errors.New("stop")
	if err := readSnapshot(bytes.NewReader(valid), func([]protocol.Entry) error { return stop }); !errors.Is(err, stop) {
		t.Fatalf("callback error: %v", err)
	}
}

func FuzzReadSnapshot(f *testing.F) {
	f.Add(snapshotStream(f, []protocol.Entry{{Key: [32]byte{1}, Value: []byte("v")}}))
	f.Add([]byte{0, 0, 0, 0})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, in []byte) {
		readSnapshot(bytes.NewReader(in), func(c []protocol.Entry) error {
			if len(c) == 0 {
				t.Fatal("empty frame passed on")
			}
			return nil
		})
	})
}

// TestProvisionHandlerRefusals covers the endpoint's answers that need no
// enclave: not ready, unknown sessions, wrong methods.
func TestProvisionHandlerRefusals(t *testing.T) {
	w := &Worker{log: slog.New(slog.DiscardHandler), ready: make(chan struct{})}
	srv := httptest.NewServer(w.ProvisionHandler())
	defer srv.Close()
	do := func(method, path string, body []byte) int {
		t.Helper()
		req, err := http.NewRequest(method, srv.URL+path, bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	if got := do(http.MethodPost, "/provision/session", []byte("hello")); got != http.StatusServiceUnavailable {
		t.Fatalf("before ready: %d", got)
	}
	close(w.ready)
	tests := []struct {
		method, path string
		want         int
	}{
		{http.MethodPost, "/provision/session/0123", http.StatusNotFound},
		{http.MethodGet, "/provision/snapshot/0123", http.StatusNotFound},
		{http.MethodGet, "/provision/session", http.StatusMethodNotAllowed},
		{http.MethodPost, "/provision/snapshot/0123", http.StatusMethodNotAllowed},
		{http.MethodPost, "/", http.StatusNotFound},
	}
	for _, tt := range tests {
		if got := do(tt.method, tt.path, []byte("x")); got != tt.want {
			t.Errorf("%s %s: %d, want %d", tt.method, tt.path, got, tt.want)
		}
	}
	if got := do(http.MethodPost, "/provision/session/0123", make([]byte, protocol.MaxProvisionRecord+1)); got != http.StatusRequestEntityTooLarge {
		t.Errorf("oversized step: %d", got)
	}
	// A first flight is a ClientHello; 8 MiB of it is not read (issue 9).
	if got := do(http.MethodPost, "/provision/session", make([]byte, maxFirstFlight+1)); got != http.StatusRequestEntityTooLarge {
		t.Errorf("oversized first flight: %d", got)
	}
}

// TestProvisionOpenRate: one client IP opens at most maxProvisionOpens
// sessions a minute (issue 9: the endpoint was outside every limiter);
// another IP is not affected, and the window moves on.
func TestProvisionOpenRate(t *testing.T) {
	now := time.Unix(1000, 0)
	ps := &provisionServer{now: func() time.Time { return now }}
	for i := range maxProvisionOpens {
		if !ps.allowOpen("10.0.0.1") {
			t.Fatalf("opening %d refused", i)
		}
	}
	if ps.allowOpen("10.0.0.1") {
		t.Fatal("one opening too many allowed")
	}
	if !ps.allowOpen("10.0.0.2") {
		t.Fatal("another address refused")
	}
	now = now.Add(provisionOpenWindow)
	if !ps.allowOpen("10.0.0.1") {
		t.Fatal("refused after the window")
	}
}

// TestProvisionSessionCounting: a session refuses direct calls only while
// it holds a snapshot, and stops doing so however it ends: completed,
// dropped, evicted by newer sessions or expired. Before (issue 9), an
// evicted or expired session was never uncounted, so one ClientHello
// every two minutes kept direct calls disabled.
func TestProvisionSessionCounting(t *testing.T) {
	open, completed := 0, 0
	ps := &provisionServer{sessions: map[string]*provisionSession{},
		opened: func() { open++ },
		ended: func(c bool) {
			open--
			if c {
				completed++
			}
		}}
	add := func(counted bool) (string, *provisionSession) {
		t.Helper()
		s := &provisionSession{created: time.Now()}
		tok, err := ps.add(s)
		if err != nil {
			t.Fatal(err)
		}
		if counted {
			ps.count(s)
		}
		return tok, s
	}
	// A session that never got a snapshot (a handshake only) counts nothing.
	add(false)
	if open != 0 {
		t.Fatalf("a handshake alone counts %d", open)
	}
	tok, s := add(true)
	ps.count(s) // counting twice is once
	if open != 1 {
		t.Fatalf("open %d after a snapshot, want 1", open)
	}
	ps.complete(s)
	ps.drop(tok)
	if open != 0 || completed != 1 {
		t.Fatalf("after completion: open %d, completed %d", open, completed)
	}
	tok, _ = add(true)
	ps.drop(tok)
	if open != 0 || completed != 1 {
		t.Fatalf("after a drop: open %d, completed %d", open, completed)
	}
	// Evicted by newer sessions.
	_, s = add(true)
	s.created = time.Now().Add(-time.Minute)
	for range maxProvisionSessions {
		add(false)
	}
	if open != 0 {
		t.Fatalf("after eviction: open %d", open)
	}
	// Expired.
	tok, s = add(true)
	s.created = time.Now().Add(-2 * provisionSessionTTL)
	if ps.get(tok) != nil || open != 0 {
		t.Fatalf("after expiry: open %d", open)
	}
}

func TestHTTPURL(t *testing.T) {
	for in, want := range map[string]string{
		"ws://127.0.0.1:2000":   "http://127.0.0.1:2000",
		"wss://w.example:443/":  "https://w.example:443",
		"http://127.0.0.1:2000": "http://127.0.0.1:2000",
	} {
		if got := httpURL(in); got != want {
			t.Errorf("httpURL(%q) = %q, want %q", in, got, want)
		}
	}
}
