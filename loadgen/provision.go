package loadgen

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/integritee-go/integritee/chain/accounts"
	"github.com/integritee-go/integritee/client"
	"github.com/integritee-go/integritee/client/trusted"
	"github.com/integritee-go/integritee/worker"
)

// Bounds and defaults of a Provision run.
const (
	// MaxProvisionAccounts bounds ProvisionConfig.Accounts.
	MaxProvisionAccounts = 4_000_000
	// DefaultProvisionTimeout bounds a Provision run, setup included.
	DefaultProvisionTimeout = 15 * time.Minute
	// DevAccountAmount is what each generated account gets.
	DevAccountAmount = 1000
	// provisionSamples is the number of keyed accounts whose balances the
	// new worker must answer.
	provisionSamples = 8
	// newWorkerFunding is what the new worker's enclave account gets from
	// the funder (as a localnet's workers).
	newWorkerFunding = 100 * accounts.Unit
)

// ProvisionConfig configures a Provision run.
type ProvisionConfig struct {
	// NodeURL is the node's CometBFT RPC; WorkerURL a running worker of
	// the shard (a dev build), which takes the setup's calls.
	NodeURL, WorkerURL string
	// Accounts is the number of generated accounts the shard holds before
	// the new worker starts (stf.DevAccount(0..Accounts-1)).
	Accounts int
	// EnclaveBinary is the integritee-enclave executable the new worker
	// runs: the same build as the shard's workers (its sim measurement
	// must be the shard's MRENCLAVE).
	EnclaveBinary string
	// DataDir is the new worker's data directory; empty: a temporary one,
	// removed at the end. It must not hold a store already.
	DataDir string
	// Sudo names the dev key that signs the setup's dev calls, Funder the
	// dev account that funds the new worker's enclave account; default
	// "Alice" for both (a localnet's dev sudo and funder).
	Sudo, Funder string
	// Tag names the sampled accounts ("Alice//load/TAG/provision/K").
	Tag string
	// Timeout bounds the whole run; default DefaultProvisionTimeout.
	Timeout time.Duration
	// Logger receives progress and the new worker's logs; nil discards
	// them.
	Logger *slog.Logger
	// Progress, when set, receives the setup's and the phases' progress
	// lines (a terminal).
	Progress io.Writer
}

func (c *ProvisionConfig) normalize() error {
	if c.Accounts <= 0 || c.Accounts > MaxProvisionAccounts {
		return fmt.Errorf("%w: accounts %d not in 1..%d", ErrConfig, c.Accounts, MaxProvisionAccounts)
	}
	if err := CheckLoopback(c.NodeURL); err != nil {
		return fmt.Errorf("node: %w", err)
	}
	if err := CheckLoopback(c.WorkerURL); err != nil {
		return fmt.Errorf("worker: %w", err)
	}
	if c.EnclaveBinary == "" {
		return fmt.Errorf("%w: no enclave binary", ErrConfig)
	}
	if c.DataDir != "" {
		if _, err := os.Stat(filepath.Join(c.DataDir, "worker.db")); err == nil {
			return fmt.Errorf("%w: %s holds a worker store already: a provisioning run needs a fresh one", ErrConfig, c.DataDir)
		}
	}
	if c.Sudo == "" {
		c.Sudo = "Alice"
	}
	if c.Funder == "" {
		c.Funder = "Alice"
	}
	if c.Tag == "" {
		c.Tag = "default"
	}
	if strings.Contains(c.Tag, "/") {
		return fmt.Errorf("%w: tag %q contains '/'", ErrConfig, c.Tag)
	}
	if c.Timeout <= 0 {
		c.Timeout = DefaultProvisionTimeout
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return nil
}

// ProvisionReport is the result of a Provision run. The phases are
// seconds from the new worker's start (before it connects to the node).
type ProvisionReport struct {
	Kind     string `json:"kind"` // "provision"
	Accounts int    `json:"accounts"`
	// SetupSeconds is the untimed setup: creating the accounts and the
	// samples; SetupCalls the dev calls it took.
	SetupSeconds float64 `json:"setup_seconds"`
	SetupCalls   int     `json:"setup_calls"`
	// Entries is the number of state entries the new worker received and
	// checked against the provider's checkpoint (at least Accounts plus
	// the samples); Height the chain height of that checkpoint.
	Entries int64 `json:"entries"`
	Height  int64 `json:"height"`
	// ProvisionedSeconds: keys and state received, checked against the
	// checkpoint and persisted. StartedSeconds: the enclave that serves
	// (restored from the new store) is up. RegisteredSeconds: registered
	// on chain and syncing (the worker is ready). ServingSeconds: every
	// sampled account's balance answered right, not marked stale, by a
	// private getter to the new worker.
	ProvisionedSeconds float64 `json:"provisioned_seconds"`
	StartedSeconds     float64 `json:"started_seconds"`
	RegisteredSeconds  float64 `json:"registered_seconds"`
	ServingSeconds     float64 `json:"serving_seconds"`
	// EnclaveStarts is the number of enclave processes the new worker
	// started until it served.
	EnclaveStarts int `json:"enclave_starts"`
	// Samples are the keyed accounts checked: Amount is the balance set,
	// Sent 1 once the new worker answered it. StateRoot is the state root
	// both workers report at the end (they must agree).
	Samples   []Sender `json:"samples"`
	StateRoot string   `json:"state_root"`
	// NewWorker is the URL of the worker started; DataDir its data.
	NewWorker string `json:"new_worker"`
	DataDir   string `json:"data_dir,omitempty"`
	// Procs are the provider's processes (found by its RPC port) and the
	// new worker's: its host (this process, which also runs the load
	// tool) and its enclave processes, with their CPU from the new
	// worker's start until it served, and peak RSS.
	Procs []*Proc `json:"processes,omitempty"`
	// Limits say what the figures include besides the provisioning.
	Limits []string `json:"limits,omitempty"`
}

// Provision measures how long a new worker of a shard of cfg.Accounts
// accounts takes to provision (get the keys and state from a running
// worker), register and serve. Setup, not timed: the accounts are created
// with the dev sudo's dev_accounts calls through cfg.WorkerURL, and
// provisionSamples keyed accounts get known balances with set_balance.
// Then one fresh worker starts in this process, with the enclave binary
// as a child process and a fresh data directory, RPC on a free loopback
// port, its enclave account funded by cfg.Funder: as a localnet adds a
// worker. The run ends when the new worker answers every sample's balance
// right through a private getter; its state root must then be the
// provider's. The new worker is stopped before Provision returns.
//
// The new worker stays registered on chain after it stopped: it joined the
// shard's group, and leaves it when the chain's liveness period passes
// without its keep-alive (localnet: 30 s). Until then a one-worker shard
// orders no direct calls (its group has two voters, one lost), so a second
// run must wait that long.
func Provision(ctx context.Context, cfg ProvisionConfig) (_ *ProvisionReport, err error) {
	if err := cfg.normalize(); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	c, err := client.New(ctx, cfg.NodeURL, client.Options{})
	if err != nil {
		return nil, err
	}
	tc, err := trusted.Dial(ctx, cfg.WorkerURL, c, trusted.Options{})
	if err != nil {
		return nil, fmt.Errorf("worker %s: %w", cfg.WorkerURL, err)
	}
	m, err := worker.SimMRENCLAVE(cfg.EnclaveBinary)
	if err != nil {
		return nil, err
	}
	if m != tc.MRENCLAVE() {
		return nil, fmt.Errorf("%w: enclave binary %s measures %x, the shard's workers run %x: use their build", ErrConfig, cfg.EnclaveBinary, m, tc.MRENCLAVE())
	}
	rep := &ProvisionReport{Kind: "provision", Accounts: cfg.Accounts}
	say := func(format string, args ...any) {
		if cfg.Progress != nil {
			fmt.Fprintf(cfg.Progress, format, args...)
		}
	}

	// Setup.
	setup := time.Now()
	sudo := accounts.DevKey(cfg.Sudo)
	calls := 0
	if err := CreateDevAccounts(ctx, tc, sudo, 0, uint32(cfg.Accounts), DevAccountAmount, func(n int) {
		calls++
		say("\rsetup: %d/%d accounts (%.0fs) ", n, cfg.Accounts, time.Since(setup).Seconds())
	}); err != nil {
		return nil, err
	}
	samples := make([]account, provisionSamples)
	for k := range samples {
		samples[k] = devAccount(fmt.Sprintf("Alice//load/%s/provision/%d", cfg.Tag, k))
		if err := SetDevBalance(ctx, tc, sudo, samples[k].addr, sampleBalance(k)); err != nil {
			return nil, err
		}
		calls++
		rep.Samples = append(rep.Samples, Sender{Name: samples[k].name, Address: samples[k].addr.String(), Amount: sampleBalance(k)})
	}
	// The provider answers the samples: the state the new worker must get.
	for k, s := range samples {
		if err := readBalance(ctx, tc, s.key, sampleBalance(k)); err != nil {
			return nil, fmt.Errorf("provider %s: %s: %w", cfg.WorkerURL, s.name, err)
		}
	}
	rep.SetupSeconds, rep.SetupCalls = time.Since(setup).Seconds(), calls
	say("\rsetup: %d accounts and %d samples in %.1fs\n", cfg.Accounts, len(samples), rep.SetupSeconds)

	// The new worker.
	rep.DataDir = cfg.DataDir // empty for a temporary one
	if cfg.DataDir == "" {
		dir, err := os.MkdirTemp("", "integritee-load-provision-")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(dir)
		cfg.DataDir = dir
	}
	prov := newProbe(cfg.NodeURL, []string{cfg.WorkerURL})
	for _, p := range prov.procs {
		if p.Role == "loadgen" {
			p.Role = "new worker host+loadgen"
		} else {
			p.Role = "provider " + p.Role
		}
	}
	ph := &phases{}
	log := slog.New(&phaseHandler{inner: cfg.Logger.Handler(), ph: ph})
	kids := newChildWatch(prov.fs, "integritee-encl", prov.procs)
	prov.start()
	defer prov.release()
	start := time.Now()
	ph.start = start
	stopKids := kids.run(50 * time.Millisecond)
	defer stopKids()
	w, err := worker.New(ctx, worker.Config{
		NodeRPC: cfg.NodeURL, DataDir: cfg.DataDir, Shard: tc.Shard(), RPCListen: "127.0.0.1:0",
		Fund:   worker.DevFunder(cfg.NodeURL, accounts.DevKey(cfg.Funder), newWorkerFunding),
		Logger: log.With("worker", "new"),
		Enclave: worker.ProcessFactory(worker.ProcessConfig{
			Path: cfg.EnclaveBinary, Args: []string{"--tee", "sim"}, Logger: log.With("worker", "new", "process", "enclave"),
		}),
	})
	if err != nil {
		return nil, fmt.Errorf("new worker: %w", err)
	}
	wctx, stopWorker := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(wctx) }()
	defer func() {
		stopWorker()
		if serr := <-done; serr != nil && err == nil {
			err = fmt.Errorf("new worker: %w", serr)
		}
	}()
	ticker := time.NewTicker(250 * time.Millisecond)
	defer ticker.Stop()
wait:
	for {
		select {
		case <-w.Ready():
			break wait
		case err := <-done:
			done <- err
			return nil, fmt.Errorf("new worker stopped before it was ready: %w", err)
		case <-ctx.Done():
			return nil, fmt.Errorf("new worker not ready: %w", ctx.Err())
		case <-ticker.C:
			say("\rnew worker: %s ", ph.line())
		}
	}
	registered := time.Since(start)
	rep.NewWorker = w.RPCAddr()
	ntc, err := trusted.Dial(ctx, rep.NewWorker, c, trusted.Options{})
	if err != nil {
		return nil, fmt.Errorf("new worker %s: %w", rep.NewWorker, err)
	}
	if ntc.Shard() != tc.Shard() {
		return nil, fmt.Errorf("new worker serves shard %x, not %x", ntc.Shard(), tc.Shard())
	}
	for k, s := range samples {
		for {
			err := readBalance(ctx, ntc, s.key, sampleBalance(k))
			if err == nil {
				break
			}
			select {
			case <-ctx.Done():
				return nil, fmt.Errorf("new worker: %s: %w", s.name, err)
			case <-time.After(20 * time.Millisecond):
			}
		}
		rep.Samples[k].Sent = 1
	}
	serving := time.Since(start)
	stopKids()
	prov.fs.finish(prov.procs)
	prov.release() // the timed phase is over
	say("\rnew worker: %s, serving %.2fs\n", ph.line(), serving.Seconds())

	ph.mu.Lock()
	rep.Entries, rep.Height = ph.entries, ph.height
	rep.ProvisionedSeconds = seconds(ph.provisioned)
	// A kept provisioning enclave logs its start just before the worker
	// logs the provisioning done: it serves from then on.
	rep.StartedSeconds = seconds(max(ph.started, ph.provisioned))
	ph.mu.Unlock()
	rep.EnclaveStarts = len(kids.procs())
	rep.RegisteredSeconds, rep.ServingSeconds = registered.Seconds(), serving.Seconds()
	if rep.ProvisionedSeconds == 0 {
		return nil, errors.New("the new worker did not provision: no other enclave of the shard answered (it made keys of its own)")
	}
	if want := int64(cfg.Accounts + len(samples)); rep.Entries < want {
		return nil, fmt.Errorf("the new worker received %d entries, want at least %d (accounts and samples)", rep.Entries, want)
	}
	// Both workers hold the same state: nothing changed it since the
	// setup.
	hp, err := tc.Health(ctx)
	if err != nil {
		return nil, fmt.Errorf("provider health: %w", err)
	}
	hn, err := ntc.Health(ctx)
	if err != nil {
		return nil, fmt.Errorf("new worker health: %w", err)
	}
	if hp.StateRoot != hn.StateRoot {
		return nil, fmt.Errorf("state roots differ: provider %s, new worker %s", hp.StateRoot, hn.StateRoot)
	}
	rep.StateRoot = hn.StateRoot
	rep.Procs = append(prov.procs, kids.procs()...)
	rep.Limits = append(rep.Limits, "the new worker runs in the load tool's process: that process's CPU and RSS include the tool's (its getters and setup state)")
	if len(prov.missing) > 0 {
		rep.Limits = append(rep.Limits, fmt.Sprintf("processes not found: %s", strings.Join(prov.missing, ", ")))
	}
	return rep, nil
}

// sampleBalance is sample k's balance: distinct per sample.
func sampleBalance(k int) uint64 { return 1_000_000 + uint64(k) }

// readBalance reads key's balance through tc and checks it is want and not
// marked stale.
func readBalance(ctx context.Context, tc *trusted.Client, key ed25519.PrivateKey, want uint64) error {
	b, stale, err := tc.BalanceRead(ctx, key)
	switch {
	case err != nil:
		return err
	case stale:
		return errors.New("answer marked stale")
	case b != want:
		return fmt.Errorf("balance %d, want %d", b, want)
	}
	return nil
}

func seconds(d time.Duration) float64 { return d.Seconds() }

// phases records when the new worker reached its phases, from its log
// records (worker/provision.go, worker/supervisor.go): the worker reports
// them nowhere else.
type phases struct {
	mu                   sync.Mutex
	start                time.Time
	provisioned, started time.Duration
	entries, height      int64
}

func (p *phases) line() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := fmt.Sprintf("%.1fs", time.Since(p.start).Seconds())
	if p.provisioned > 0 {
		s += fmt.Sprintf(", provisioned %d entries at %.2fs", p.entries, p.provisioned.Seconds())
	}
	if p.started > 0 {
		s += fmt.Sprintf(", enclave started at %.2fs", p.started.Seconds())
	}
	return s
}

// Log messages of the worker that mark the phases.
const (
	msgProvisioned    = "provisioned the shard's keys and state"
	msgEnclaveStarted = "enclave started"
)

func (p *phases) see(r slog.Record) {
	switch r.Message {
	case msgProvisioned, msgEnclaveStarted:
	default:
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	at := r.Time.Sub(p.start)
	if r.Message == msgEnclaveStarted {
		if p.started == 0 {
			p.started = at
		}
		return
	}
	p.provisioned = at
	r.Attrs(func(a slog.Attr) bool {
		switch a.Key {
		case "entries":
			p.entries = attrInt(a.Value)
		case "height":
			p.height = attrInt(a.Value)
		}
		return true
	})
}

func attrInt(v slog.Value) int64 {
	switch v.Kind() {
	case slog.KindInt64:
		return v.Int64()
	case slog.KindUint64:
		return int64(v.Uint64())
	}
	return 0
}

// phaseHandler passes records on to inner and shows them to ph.
type phaseHandler struct {
	inner slog.Handler
	ph    *phases
}

func (h *phaseHandler) Enabled(context.Context, slog.Level) bool { return true }

func (h *phaseHandler) Handle(ctx context.Context, r slog.Record) error {
	h.ph.see(r)
	if h.inner.Enabled(ctx, r.Level) {
		return h.inner.Handle(ctx, r)
	}
	return nil
}

func (h *phaseHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return &phaseHandler{inner: h.inner.WithAttrs(as), ph: h.ph}
}

func (h *phaseHandler) WithGroup(name string) slog.Handler {
	return &phaseHandler{inner: h.inner.WithGroup(name), ph: h.ph}
}
