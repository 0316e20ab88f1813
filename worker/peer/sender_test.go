package peer_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/integritee-go/integritee/chain/tx"
	"github.com/integritee-go/integritee/worker/peer"
)

var errUnknown = errors.New("unknown signer")

// directory is a Directory that counts its look-ups.
type directory struct {
	mu      sync.Mutex
	urls    map[tx.Address]string
	lookups map[tx.Address]int
}

func newDirectory() *directory {
	return &directory{urls: map[tx.Address]string{}, lookups: map[tx.Address]int{}}
}

func (d *directory) set(a tx.Address, u string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.urls[a] = u
}

func (d *directory) looked(a tx.Address) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.lookups[a]
}

func (d *directory) WorkerURL(_ context.Context, a tx.Address) (string, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.lookups[a]++
	u, ok := d.urls[a]
	if !ok {
		return "", fmt.Errorf("%w: %s", errUnknown, a)
	}
	return u, nil
}

// newSender returns a sender with short pauses, closed when the test
// ends, which then checks that none of its goroutines is left.
func newSender(t *testing.T, d peer.Directory, opts peer.SenderOptions) *peer.Sender {
	t.Helper()
	if opts.RetryMin == 0 {
		opts.RetryMin, opts.RetryMax = 10*time.Millisecond, 50*time.Millisecond
	}
	s := peer.NewSender(d, opts)
	t.Cleanup(func() {
		s.Close()
		noSenderGoroutines(t)
	})
	return s
}

// noSenderGoroutines checks that no goroutine runs a recipient's queue
// (after Close: one that called its WaitGroup's Done may take a moment
// to be gone).
func noSenderGoroutines(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for {
		n := senderGoroutines()
		if n == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("%d sender goroutines left after Close", n)
			return
		}
		time.Sleep(time.Millisecond)
	}
}

// senderGoroutines counts the goroutines running a recipient's queue.
func senderGoroutines() int {
	buf := make([]byte, 4<<20)
	n := runtime.Stack(buf, true)
	return bytes.Count(buf[:n], []byte("peer.(*Sender).run("))
}

func env(i int) []byte { return []byte("env-" + strconv.Itoa(i)) }

func wantEnvelopes(t *testing.T, got [][]byte, want ...int) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d envelopes %q, want %v", len(got), got, want)
	}
	for i, w := range want {
		if !bytes.Equal(got[i], env(w)) {
			t.Fatalf("envelope %d is %q, want %q (got %q)", i, got[i], env(w), got)
		}
	}
}

// TestSenderDelivers: envelopes reach their recipients' workers, each
// recipient's in the order sent, over one reused connection per worker.
func TestSenderDelivers(t *testing.T) {
	d := newDirectory()
	in := newInbox()
	var mu sync.Mutex
	conns := 0
	servers := make([]*httptest.Server, 2)
	for i := range servers {
		ts := httptest.NewUnstartedServer(peer.NewServer(in.deliver, peer.ServerOptions{}))
		ts.Config.ConnState = func(_ net.Conn, st http.ConnState) {
			if st == http.StateNew {
				mu.Lock()
				conns++
				mu.Unlock()
			}
		}
		ts.Start()
		t.Cleanup(ts.Close)
		servers[i] = ts
	}
	// A registered ws:// URL is the worker's http:// one.
	d.set(addr(1), servers[0].URL)
	d.set(addr(2), "ws://"+servers[1].Listener.Addr().String()+"/")
	s := newSender(t, d, peer.SenderOptions{QueueSize: 1000})
	const n = 200
	for i := range n {
		s.Send(addr(1), env(i))
		s.Send(addr(2), env(i))
	}
	waitFor(t, "all envelopes", func() bool { return in.count() == 2*n && s.Stats().Sent == 2*n })
	want := make([]int, n)
	for i := range want {
		want[i] = i
	}
	wantEnvelopes(t, in.of(addr(1)), want...)
	wantEnvelopes(t, in.of(addr(2)), want...)
	if st := s.Stats(); st.Sent != 2*n || st.Dropped != 0 || st.Failed != 0 {
		t.Errorf("stats %+v", st)
	}
	if d.looked(addr(1)) != 1 || d.looked(addr(2)) != 1 {
		t.Errorf("look-ups %d and %d, want 1 each (cached)", d.looked(addr(1)), d.looked(addr(2)))
	}
	mu.Lock()
	defer mu.Unlock()
	// The transport may dial while a finished request's connection goes
	// back to its pool; without reuse it would be one per envelope.
	if conns > 10 {
		t.Errorf("%d connections for %d envelopes to 2 workers: not reused", conns, 2*n)
	}
}

// TestSenderDropsOldest: while a recipient's worker is slow, its queue
// keeps the newest QueueSize envelopes; Send never blocks.
func TestSenderDropsOldest(t *testing.T) {
	entered := make(chan struct{})
	release := make(chan struct{})
	in := newInbox()
	deliver := func(ctx context.Context, to tx.Address, data []byte) error {
		if bytes.Equal(data, env(0)) {
			close(entered)
			<-release
		}
		return in.deliver(ctx, to, data)
	}
	ts := serve(t, peer.NewServer(deliver, peer.ServerOptions{DeliverTimeout: time.Minute}))
	d := newDirectory()
	d.set(addr(1), ts.URL)
	s := newSender(t, d, peer.SenderOptions{QueueSize: 4, SendTimeout: time.Minute})
	s.Send(addr(1), env(0))
	<-entered
	start := time.Now()
	for i := 1; i <= 10; i++ {
		s.Send(addr(1), env(i))
	}
	if el := time.Since(start); el > time.Second {
		t.Errorf("Send blocked for %v", el)
	}
	if st := s.Stats(); st.Dropped != 6 {
		t.Errorf("dropped %d, want 6", st.Dropped)
	}
	close(release)
	waitFor(t, "the kept envelopes", func() bool { return in.count() == 5 })
	wantEnvelopes(t, in.of(addr(1)), 0, 7, 8, 9, 10)
}

// TestSenderUnknownSigner: envelopes for a signer the directory does not
// know fail (and are dropped) without holding up anyone else's.
func TestSenderUnknownSigner(t *testing.T) {
	in := newInbox()
	ts := serve(t, peer.NewServer(in.deliver, peer.ServerOptions{}))
	d := newDirectory()
	d.set(addr(1), ts.URL)
	s := newSender(t, d, peer.SenderOptions{})
	for i := range 3 {
		s.Send(addr(9), env(i))
		s.Send(addr(1), env(i))
	}
	waitFor(t, "the known recipient's envelopes", func() bool { return in.count() == 3 })
	waitFor(t, "the unknown recipient's failures", func() bool { return s.Stats().Failed == 3 })
	wantEnvelopes(t, in.of(addr(1)), 0, 1, 2)
	if n := d.looked(addr(9)); n != 3 {
		t.Errorf("unknown signer looked up %d times, want once per envelope", n)
	}
	// A directory that answers nonsense costs the same.
	d.set(addr(8), "ftp://example.org")
	s.Send(addr(8), env(0))
	waitFor(t, "the bad URL's failure", func() bool { return s.Stats().Failed == 4 })
}

// TestSenderPeerDown: envelopes for a worker that is down fail after a
// pause each, the worker is looked up again, and delivery resumes when
// it is back (here at another address); no goroutine is left after Close.
func TestSenderPeerDown(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	down := "http://" + ln.Addr().String()
	ln.Close()
	d := newDirectory()
	d.set(addr(1), down)
	s := newSender(t, d, peer.SenderOptions{})
	for i := range 5 {
		s.Send(addr(1), env(i))
	}
	waitFor(t, "failures", func() bool { return s.Stats().Failed >= 3 })
	if n := d.looked(addr(1)); n < 3 {
		t.Errorf("looked up %d times after %d failures, want again after each", n, s.Stats().Failed)
	}
	if n := senderGoroutines(); n != 1 {
		t.Errorf("%d goroutines for one recipient", n)
	}

	in := newInbox()
	ts := serve(t, peer.NewServer(in.deliver, peer.ServerOptions{}))
	d.set(addr(1), ts.URL)
	waitFor(t, "the queue to drain", func() bool {
		st := s.Stats()
		return st.Failed+st.Sent == 5
	})
	s.Send(addr(1), env(5))
	waitFor(t, "delivery once the worker is back", func() bool {
		return len(in.of(addr(1))) > 0 && bytes.Equal(in.of(addr(1))[len(in.of(addr(1)))-1], env(5))
	})
}

// TestSenderMoved: a worker that answers 421 (not its enclave any more)
// is looked up again before the next envelope.
func TestSenderMoved(t *testing.T) {
	var mu sync.Mutex
	moved := false
	inA, inB := newInbox(), newInbox()
	a := serve(t, peer.NewServer(func(ctx context.Context, to tx.Address, data []byte) error {
		mu.Lock()
		defer mu.Unlock()
		if moved {
			return peer.ErrNotHere
		}
		return inA.deliver(ctx, to, data)
	}, peer.ServerOptions{}))
	b := serve(t, peer.NewServer(inB.deliver, peer.ServerOptions{}))
	d := newDirectory()
	d.set(addr(1), a.URL)
	s := newSender(t, d, peer.SenderOptions{})
	s.Send(addr(1), env(0))
	waitFor(t, "delivery to A", func() bool { return inA.count() == 1 })
	mu.Lock()
	moved = true
	mu.Unlock()
	d.set(addr(1), b.URL)
	s.Send(addr(1), env(1))
	waitFor(t, "the 421", func() bool { return s.Stats().Failed == 1 })
	s.Send(addr(1), env(2))
	waitFor(t, "delivery to B", func() bool { return inB.count() == 1 })
	wantEnvelopes(t, inB.of(addr(1)), 2)
	if n := d.looked(addr(1)); n != 2 {
		t.Errorf("%d look-ups, want 2", n)
	}
}

// TestSenderClose: Close cancels a delivery under way and returns; Send
// after Close drops without blocking.
func TestSenderClose(t *testing.T) {
	entered := make(chan struct{}, 1)
	ts := serve(t, peer.NewServer(func(ctx context.Context, _ tx.Address, _ []byte) error {
		entered <- struct{}{}
		<-ctx.Done()
		return ctx.Err()
	}, peer.ServerOptions{DeliverTimeout: time.Minute}))
	d := newDirectory()
	d.set(addr(1), ts.URL)
	d.set(addr(2), ts.URL)
	s := peer.NewSender(d, peer.SenderOptions{SendTimeout: time.Minute})
	s.Send(addr(1), env(0))
	s.Send(addr(1), env(1))
	<-entered
	start := time.Now()
	s.Close()
	if el := time.Since(start); el > 5*time.Second {
		t.Errorf("Close took %v", el)
	}
	s.Send(addr(2), env(2))
	if st := s.Stats(); st.Sent != 0 || st.Dropped != 3 {
		t.Errorf("stats %+v, want 3 dropped (in flight, queued, after Close)", st)
	}
	noSenderGoroutines(t)
}

// TestSenderIdle: a recipient's goroutine ends after IdleTimeout without
// envelopes, and a later envelope starts another.
func TestSenderIdle(t *testing.T) {
	in := newInbox()
	ts := serve(t, peer.NewServer(in.deliver, peer.ServerOptions{}))
	d := newDirectory()
	d.set(addr(1), ts.URL)
	s := newSender(t, d, peer.SenderOptions{IdleTimeout: 50 * time.Millisecond})
	s.Send(addr(1), env(0))
	waitFor(t, "delivery", func() bool { return in.count() == 1 })
	waitFor(t, "the idle goroutine to end", func() bool { return senderGoroutines() == 0 })
	s.Send(addr(1), env(1))
	waitFor(t, "delivery after idling", func() bool { return in.count() == 2 })
	wantEnvelopes(t, in.of(addr(1)), 0, 1)
}
