package loadgen

import (
	"bytes"
	"context"
	"errors"
	"math"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/integritee-go/integritee/client/trusted"
)

func TestCheckLoopback(t *testing.T) {
	for _, tc := range []struct {
		addr string
		ok   bool
	}{
		{"http://127.0.0.1:26657", true},
		{"http://127.8.9.10:1", true},
		{"127.0.0.1:2000", true},
		{"http://localhost:2000", true},
		{"ws://LOCALHOST:2000/ws", true},
		{"http://[::1]:2000", true},
		{"tcp://127.0.0.1:26657", true},
		{"http://10.0.0.1:26657", false},
		{"http://128.0.0.1:26657", false},
		{"http://0.0.0.0:26657", false},
		{"http://[::]:2000", false},
		{"http://[::ffff:10.0.0.1]:2000", false},
		{"http://example.com:2000", false},
		{"http://localhost.example.com:2000", false},
		{"http://127.0.0.1.nip.io:2000", false},
		{"", false},
		{"http://%zz", false},
	} {
		err := CheckLoopback(tc.addr)
		if tc.ok && err != nil {
			t.Errorf("%q refused: %v", tc.addr, err)
		}
		if !tc.ok && !errors.Is(err, ErrNotLoopback) {
			t.Errorf("%q: got %v, want ErrNotLoopback", tc.addr, err)
		}
	}
}

// TestRefusals checks that a run refuses bad configurations before it
// connects anywhere.
func TestRefusals(t *testing.T) {
	local := "http://127.0.0.1:1"
	for _, tc := range []struct {
		name string
		cfg  Config
		want error
	}{
		{"remote node", Config{NodeURL: "http://192.168.1.1:26657", WorkerURL: local, N: 1}, ErrNotLoopback},
		{"remote worker", Config{NodeURL: local, WorkerURL: "http://8.8.8.8:2000", N: 1}, ErrNotLoopback},
		{"zero n", Config{NodeURL: local, WorkerURL: local}, ErrConfig},
		{"huge n", Config{NodeURL: local, WorkerURL: local, N: MaxN + 1}, ErrConfig},
		{"huge concurrency", Config{NodeURL: local, WorkerURL: local, N: 1, Concurrency: MaxConcurrency + 1}, ErrConfig},
		{"amount overflows", Config{NodeURL: local, WorkerURL: local, N: 4, Amount: 1 << 62}, ErrConfig},
		{"tag with slash", Config{NodeURL: local, WorkerURL: local, N: 1, Tag: "a/b"}, ErrConfig},
		{"NaN rate", Config{NodeURL: local, WorkerURL: local, N: 1, Rate: math.NaN()}, ErrConfig},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for name, run := range map[string]func(context.Context, Config) (*Report, error){"Direct": Direct, "Getters": Getters, "Indirect": Indirect} {
				if _, err := run(context.Background(), tc.cfg); !errors.Is(err, tc.want) {
					t.Errorf("%s: %v, want %v", name, err, tc.want)
				}
			}
			if tc.name == "remote worker" {
				return // Transfers and Register have no worker
			}
			for name, run := range map[string]func(context.Context, Config) (*Report, error){"Transfers": Transfers, "Register": Register} {
				if _, err := run(context.Background(), tc.cfg); !errors.Is(err, tc.want) {
					t.Errorf("%s: %v, want %v", name, err, tc.want)
				}
			}
		})
	}
}

func TestPercentiles(t *testing.T) {
	var ds []time.Duration
	for i := 100; i >= 1; i-- {
		ds = append(ds, time.Duration(i)*time.Millisecond)
	}
	got := percentiles(ds)
	if want := (Latency{P50: 50, P90: 90, P99: 99, Max: 100}); got != want {
		t.Errorf("percentiles of 1..100 ms: %+v, want %+v", got, want)
	}
	if got := percentiles([]time.Duration{7 * time.Millisecond}); got != (Latency{7, 7, 7, 7}) {
		t.Errorf("one value: %+v", got)
	}
	if got := percentiles(nil); got != (Latency{}) {
		t.Errorf("none: %+v", got)
	}
}

func TestShare(t *testing.T) {
	for _, tc := range []struct{ n, k int }{{50, 5}, {30, 7}, {1, 1}, {7, 3}} {
		sum := 0
		for i := range tc.k {
			s := share(tc.n, tc.k, i)
			if s < tc.n/tc.k || s > tc.n/tc.k+1 {
				t.Errorf("share(%d,%d,%d) = %d", tc.n, tc.k, i, s)
			}
			sum += s
		}
		if sum != tc.n {
			t.Errorf("shares of %d over %d sum to %d", tc.n, tc.k, sum)
		}
	}
}

// TestClientsRefusals checks that a Clients run refuses bad
// configurations before it connects anywhere.
func TestClientsRefusals(t *testing.T) {
	local := "http://127.0.0.1:1"
	for _, tc := range []struct {
		name string
		cfg  ClientsConfig
		want error
	}{
		{"no clients", ClientsConfig{Config: Config{NodeURL: local, WorkerURL: local}}, ErrConfig},
		{"too many clients", ClientsConfig{Config: Config{NodeURL: local, WorkerURL: local}, Clients: MaxClients + 1}, ErrConfig},
		{"remote worker", ClientsConfig{Config: Config{NodeURL: local, WorkerURL: "http://10.1.2.3:2000"}, Clients: 1}, ErrNotLoopback},
		{"remote node", ClientsConfig{Config: Config{NodeURL: "http://10.1.2.3:26657", WorkerURL: local}, Clients: 1}, ErrNotLoopback},
		{"n set", ClientsConfig{Config: Config{NodeURL: local, WorkerURL: local, N: 5}, Clients: 1}, ErrConfig},
		{"rate set", ClientsConfig{Config: Config{NodeURL: local, WorkerURL: local, Rate: 5}, Clients: 1}, ErrConfig},
		{"negative duration", ClientsConfig{Config: Config{NodeURL: local, WorkerURL: local}, Clients: 1, Duration: -time.Second}, ErrConfig},
		{"tiny interval", ClientsConfig{Config: Config{NodeURL: local, WorkerURL: local}, Clients: 1, Interval: time.Microsecond}, ErrConfig},
		{"too many calls", ClientsConfig{Config: Config{NodeURL: local, WorkerURL: local}, Clients: MaxN, Duration: 2 * time.Second}, ErrConfig},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := Clients(context.Background(), tc.cfg); !errors.Is(err, tc.want) {
				t.Errorf("%v, want %v", err, tc.want)
			}
		})
	}
}

// A run that would exceed the open files limit fails before it starts,
// saying so.
func TestClientsOpenFilesLimit(t *testing.T) {
	const clients = 900_000
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil || rl.Cur > clients {
		t.Skipf("open files limit %d (%v) admits %d sessions", rl.Cur, err, clients)
	}
	local := "http://127.0.0.1:1"
	_, err := Clients(context.Background(), ClientsConfig{Config: Config{NodeURL: local, WorkerURL: local}, Clients: clients, Duration: time.Second})
	if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), "open files") {
		t.Errorf("%v, want ErrConfig about open files", err)
	}
}

func TestSourceIP(t *testing.T) {
	for i, want := range map[int]string{0: "127.1.0.1", 1: "127.1.0.2", 254: "127.1.0.255", 255: "127.1.1.0", 9999: "127.1.39.16"} {
		if got := sourceIP(i).String(); got != want {
			t.Errorf("sourceIP(%d) = %s, want %s", i, got, want)
		}
	}
}

// TestSpread: the generated recipients of a run's calls are in range and
// hardly repeat when there are many more accounts than calls.
func TestSpread(t *testing.T) {
	const senders, calls, n = 192, 100, 1_000_000
	seen := map[uint32]bool{}
	for i := range senders {
		for j := range calls {
			r := spread(i, j, n)
			if r >= n {
				t.Fatalf("spread(%d, %d) = %d, out of range", i, j, r)
			}
			seen[r] = true
		}
	}
	if len(seen) < senders*calls*98/100 {
		t.Errorf("%d distinct recipients of %d calls", len(seen), senders*calls)
	}
	if r := spread(5, 7, 1); r != 0 {
		t.Errorf("spread over one account: %d", r)
	}
}

// fakeSession records the calls sent on it.
type fakeSession struct {
	id     int
	ended  bool
	closed bool
	sent   [][]byte
}

func (f *fakeSession) SubmitUnverified(_ context.Context, ct []byte) (*trusted.Submission, error) {
	if f.ended || f.closed {
		return nil, errors.New("session closed")
	}
	f.sent = append(f.sent, ct)
	return &trusted.Submission{}, nil
}
func (f *fakeSession) Ended() bool  { return f.ended }
func (f *fakeSession) Close() error { f.closed = true; return nil }

// TestSubmitReopening: a sender's call goes on its open session; on a
// session the worker ended it goes on a new one, the old closed, and if
// no new one opens the call is not sent and the old session is kept, so
// that the next call tries again. Every call is sent once or not at all.
func TestSubmitReopening(t *testing.T) {
	ctx := context.Background()
	first := &fakeSession{id: 1}
	s := first
	var opened []*fakeSession
	openErr := error(nil)
	open := func(context.Context) (*fakeSession, error) {
		if openErr != nil {
			return nil, openErr
		}
		n := &fakeSession{id: 2 + len(opened)}
		opened = append(opened, n)
		return n, nil
	}
	if _, err := submitReopening(ctx, &s, open, []byte("a")); err != nil || s != first || len(opened) != 0 {
		t.Fatalf("on an open session: err %v, session %d, %d opened", err, s.id, len(opened))
	}

	first.ended = true
	openErr = errors.New("connection refused")
	if _, err := submitReopening(ctx, &s, open, []byte("b")); !errors.Is(err, openErr) || s != first || first.closed {
		t.Fatalf("reopen failing: err %v, session %d, old closed %v", err, s.id, first.closed)
	}

	openErr = nil
	if _, err := submitReopening(ctx, &s, open, []byte("c")); err != nil || len(opened) != 1 || s != opened[0] || !first.closed {
		t.Fatalf("reopen: err %v, session %d, %d opened, old closed %v", err, s.id, len(opened), first.closed)
	}
	if _, err := submitReopening(ctx, &s, open, []byte("d")); err != nil || len(opened) != 1 {
		t.Fatalf("on the new session: err %v, %d opened", err, len(opened))
	}
	if got := string(bytes.Join(first.sent, nil)) + "|" + string(bytes.Join(opened[0].sent, nil)); got != "a|cd" {
		t.Fatalf("calls sent per session %q, want a|cd", got)
	}
}

// TestWarmUpFailures: a session whose first call does not execute is
// returned as failed and counts no executed call; the others count one;
// a session that never opened is not tried.
func TestWarmUpFailures(t *testing.T) {
	sess := []*trusted.Session{{}, nil, {}, {}, {}}
	var tried sync.Map
	first := func(i int, s *trusted.Session) bool {
		if s == nil {
			t.Errorf("first call tried on session %d, which never opened", i)
		}
		if _, again := tried.LoadOrStore(i, true); again {
			t.Errorf("session %d's first call tried twice", i)
		}
		return i != 2 && i != 4
	}
	executed := make([]uint64, len(sess))
	st := &SessionStats{}
	failed := warmUp(sess, first, executed, st)
	if !slices.Equal(failed, []int{2, 4}) {
		t.Fatalf("failed %v, want [2 4]", failed)
	}
	if !slices.Equal(executed, []uint64{1, 0, 0, 1, 0}) {
		t.Fatalf("executed %v, want [1 0 0 1 0]", executed)
	}
	if w := st.WarmUp; w == nil || w.Executed != 2 || w.Failed != 2 {
		t.Fatalf("warm-up stats %+v, want 2 executed, 2 failed", w)
	}
	n := 0
	tried.Range(func(any, any) bool { n++; return true })
	if n != 4 {
		t.Fatalf("%d first calls tried, want 4", n)
	}
}
