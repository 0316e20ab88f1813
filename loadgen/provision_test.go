package loadgen

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestProvisionRefusals checks that a provisioning run refuses bad
// configurations before it connects anywhere or starts a worker.
func TestProvisionRefusals(t *testing.T) {
	local := "http://127.0.0.1:1"
	bin := filepath.Join(t.TempDir(), "integritee-enclave")
	if err := os.WriteFile(bin, []byte("not an enclave"), 0o755); err != nil {
		t.Fatal(err)
	}
	used := t.TempDir()
	if err := os.WriteFile(filepath.Join(used, "worker.db"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		cfg  ProvisionConfig
		want error
	}{
		{"no accounts", ProvisionConfig{NodeURL: local, WorkerURL: local, EnclaveBinary: bin}, ErrConfig},
		{"too many accounts", ProvisionConfig{NodeURL: local, WorkerURL: local, EnclaveBinary: bin, Accounts: MaxProvisionAccounts + 1}, ErrConfig},
		{"remote node", ProvisionConfig{NodeURL: "http://10.1.2.3:26657", WorkerURL: local, EnclaveBinary: bin, Accounts: 1}, ErrNotLoopback},
		{"remote worker", ProvisionConfig{NodeURL: local, WorkerURL: "http://example.com:2000", EnclaveBinary: bin, Accounts: 1}, ErrNotLoopback},
		{"no enclave", ProvisionConfig{NodeURL: local, WorkerURL: local, Accounts: 1}, ErrConfig},
		{"used data dir", ProvisionConfig{NodeURL: local, WorkerURL: local, EnclaveBinary: bin, Accounts: 1, DataDir: used}, ErrConfig},
		{"tag with slash", ProvisionConfig{NodeURL: local, WorkerURL: local, EnclaveBinary: bin, Accounts: 1, Tag: "a/b"}, ErrConfig},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := Provision(context.Background(), tc.cfg); !errors.Is(err, tc.want) {
				t.Errorf("%v, want %v", err, tc.want)
			}
		})
	}
}

// TestPhases checks that the phases are read from the worker's log
// records, whatever handler chain they pass through, and that every
// record still reaches the inner handler at its level.
func TestPhases(t *testing.T) {
	ph := &phases{start: time.Now()}
	var got []string
	inner := recordFunc(func(r slog.Record) { got = append(got, r.Message) })
	log := slog.New(&phaseHandler{inner: inner, ph: ph}).With("worker", "new").WithGroup("g")
	log.Info("unrelated", "entries", 7)
	log.Debug(msgProvisioned, "entries", 1_000_009, "height", int64(107))
	log.Info(msgEnclaveStarted, "start", 1)
	first := ph.started
	time.Sleep(time.Millisecond)
	log.Info(msgEnclaveStarted, "start", 2)
	if ph.entries != 1_000_009 || ph.height != 107 || ph.provisioned <= 0 || ph.started < ph.provisioned {
		t.Errorf("phases %+v", ph)
	}
	if want := []string{"unrelated", msgEnclaveStarted, msgEnclaveStarted}; len(got) != len(want) {
		t.Errorf("inner handler got %q, want %q (debug filtered)", got, want)
	}
	if ph.started != first {
		t.Errorf("a later start moved the first")
	}
}

// recordFunc is an slog.Handler at level info that calls f.
type recordFunc func(slog.Record)

func (f recordFunc) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelInfo }
func (f recordFunc) Handle(_ context.Context, r slog.Record) error {
	f(r)
	return nil
}
func (f recordFunc) WithAttrs([]slog.Attr) slog.Handler { return f }
func (f recordFunc) WithGroup(string) slog.Handler      { return f }

// TestChildWatch checks that the enclaves are this process's children by
// command name, minus those to skip, with their CPU and peak RSS.
func TestChildWatch(t *testing.T) {
	fs := fakeProc(t)
	c := newChildWatch(fs, "integritee-encl", []*Proc{{PID: 102}})
	c.self = 100
	c.sample()
	ps := c.procs()
	if len(ps) != 1 || ps[0].PID != 101 || ps[0].CPUSeconds != 0.5 || ps[0].PeakRSSMiB != 2*101 {
		t.Fatalf("procs %+v", ps)
	}
}
