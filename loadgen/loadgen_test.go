package loadgen

import (
	"context"
	"errors"
	"math"
	"testing"
	"time"
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
