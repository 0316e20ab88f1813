// Package localnet runs a whole integritee network on one machine for
// development and end-to-end tests: one dev node (CometBFT in-process, dev
// genesis: funded dev accounts, Alice is sudo, the sim attestation root
// trusted) and one or more workers whose enclaves run as sim child
// processes, all on loopback. Each worker's enclave account is funded from
// Alice and registered before Start returns. Net.Demo shows a running
// network at work and checks every result (`integritee-cli localnet`
// runs it after startup).
package localnet

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/integritee-go/integritee/chain/accounts"
	"github.com/integritee-go/integritee/chain/devnet"
	"github.com/integritee-go/integritee/chain/node"
	"github.com/integritee-go/integritee/chain/teerex"
	"github.com/integritee-go/integritee/chain/types"
	"github.com/integritee-go/integritee/internal/freeport"
	"github.com/integritee-go/integritee/worker"
	"github.com/integritee-go/integritee/worker/rpc"
)

// WorkerFunding is what each worker's enclave account receives from Alice.
const WorkerFunding = 100 * accounts.Unit

// EnclavePackage is the import path of the enclave command.
const EnclavePackage = "github.com/integritee-go/integritee/cmd/integritee-enclave"

// Config configures a local network.
type Config struct {
	// Dir holds the node home and worker data; empty means a temporary
	// directory that Stop removes. An existing Dir is reused (restart).
	Dir string
	// Workers is the number of workers (default 1; 0 with NoWorkers).
	Workers   int
	NoWorkers bool
	// EnclaveBinary is the integritee-enclave executable; empty builds it
	// from source with `go build` into Dir/bin (needs the Go toolchain and
	// the module's source, as with `go run`).
	EnclaveBinary string
	// NodeRPC and NodeP2P are host:port listen addresses; empty picks free
	// loopback ports.
	NodeRPC, NodeP2P string
	// WorkerRPCBasePort, when not 0, gives worker i the RPC port base+i;
	// otherwise free ports are used.
	WorkerRPCBasePort int
	// ConfirmHeartbeat is the workers' confirmation heartbeat while the
	// shard is idle (worker.Config.ConfirmHeartbeat; 0: every block).
	ConfirmHeartbeat time.Duration
	// NodeMetrics is where the node serves its Prometheus metrics
	// (host:port); empty picks a free loopback port.
	// WorkerMetricsBasePort, when not 0, gives worker i the metrics port
	// base+i; otherwise free ports are used.
	NodeMetrics           string
	WorkerMetricsBasePort int
	// WorkerRPC limits each worker's JSON-RPC server (rate, connections,
	// queues, timeouts); zero fields take rpc.Options' defaults. A load
	// benchmark on loopback can lift them here.
	WorkerRPC rpc.Options
	// BlockTime is the validator's timeout_commit for a new home; zero
	// keeps the dev default (150 ms).
	BlockTime time.Duration
	// Liveness is the chain's teerex liveness period for a new home: an
	// enclave that sends no keep_alive for that long leaves its shard's
	// membership (a lost worker's shard goes on without it). Zero: the
	// localnet default, DefaultLiveness; negative: none.
	Liveness time.Duration
	// ProductionRules runs the production rules end to end without SGX:
	// the enclave is the testtee build (no dev features, no debug peers;
	// a simulated TEE under the test PKI, not the dev one) and the chain is
	// not a dev chain: teerex trusts only the test PKI, refuses debug
	// enclaves and admits only the enclave's measurement (TestTEEGenesis).
	// The dev accounts are funded all the same, to pay for the demo.
	ProductionRules bool
	// Logger receives the node's and workers' logs; nil discards them.
	Logger *slog.Logger
}

// DefaultLiveness is a localnet's teerex liveness period: short, so that
// a shard that lost a worker is seen to go on within a minute.
const DefaultLiveness = 30 * time.Second

func (c *Config) liveness() time.Duration {
	switch {
	case c.Liveness < 0:
		return 0
	case c.Liveness == 0:
		return DefaultLiveness
	}
	return c.Liveness
}

// Net is a running local network.
type Net struct {
	Dir           string
	ChainID       string
	EnclaveBinary string
	Shard         [32]byte
	node          *node.Node
	workers       []*Worker
	tmp           bool
	log           *slog.Logger

	cfg Config

	stopOnce sync.Once
	stopErr  error
}

// Worker is one in-process worker host of the network.
type Worker struct {
	DataDir string
	*worker.Worker
	cfg    worker.Config
	cancel context.CancelFunc
	done   chan error
}

// Start starts the node and the workers and returns once every worker is
// registered and syncing (or ctx is done).
func Start(ctx context.Context, cfg Config) (_ *Net, err error) {
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	n := &Net{Dir: cfg.Dir, log: log}
	if n.Dir == "" {
		if n.Dir, err = os.MkdirTemp("", "integritee-localnet-"); err != nil {
			return nil, err
		}
		n.tmp = true
	}
	defer func() {
		if err != nil {
			n.Stop()
		}
	}()
	if n.EnclaveBinary = cfg.EnclaveBinary; n.EnclaveBinary == "" {
		build := BuildEnclave
		if cfg.ProductionRules {
			build = BuildTestTEEEnclave
		}
		if n.EnclaveBinary, err = build(ctx, filepath.Join(n.Dir, "bin")); err != nil {
			return nil, err
		}
	}
	if n.Shard, err = worker.SimMRENCLAVE(n.EnclaveBinary); err != nil {
		return nil, err
	}
	if err := n.startNode(cfg); err != nil {
		return nil, err
	}
	count := cfg.Workers
	if count == 0 && !cfg.NoWorkers {
		count = 1
	}
	n.cfg = cfg
	for i := range count {
		if _, err := n.AddWorker(ctx); err != nil {
			return nil, fmt.Errorf("worker %d: %w", i, err)
		}
	}
	return n, nil
}

func (n *Net) startNode(cfg Config) error {
	home := filepath.Join(n.Dir, "node")
	rpc, p2p, metrics := cfg.NodeRPC, cfg.NodeP2P, cfg.NodeMetrics
	var err error
	for _, a := range []*string{&rpc, &p2p, &metrics} {
		if *a == "" {
			if *a, err = FreeAddr(); err != nil {
				return err
			}
		}
	}
	if _, err := os.Stat(filepath.Join(home, "config", "genesis.json")); errors.Is(err, os.ErrNotExist) {
		c := node.DefaultConfig(true)
		c.RPCListen, c.P2PListen = rpc, p2p
		if cfg.BlockTime > 0 {
			c.TimeoutCommit = node.Duration(cfg.BlockTime)
		}
		now := time.Now()
		g, err := devnet.TeerexGenesis(now)
		if err != nil {
			return err
		}
		opts := node.InitOptions{Dev: true, Config: &c, GenesisTime: now}
		if cfg.ProductionRules {
			acc := accounts.DevGenesis()
			if g, err = TestTEEGenesis(now, types.Hash(n.Shard)); err != nil {
				return err
			}
			opts = node.InitOptions{Config: &c, Accounts: &acc, GenesisTime: now}
		}
		g.Policy.LivenessSecs = 0
		if l := cfg.liveness(); l > 0 {
			g.Policy.LivenessSecs = uint64(l / time.Second)
		}
		raw, err := json.Marshal(g)
		if err != nil {
			return err
		}
		opts.Modules = map[string]json.RawMessage{teerex.Name: raw}
		if err := node.Init(home, opts); err != nil {
			return err
		}
	} else if err != nil {
		return err
	}
	nd, err := node.Start(home, node.StartOptions{Logger: n.log.With("process", "node"), RPCListen: rpc, P2PListen: p2p, MetricsListen: metrics})
	if err != nil {
		return err
	}
	n.node, n.ChainID = nd, nd.ChainID()
	return nil
}

// StartWorker starts a worker host with cfg in this process and waits until
// it is registered and syncing. Stop stops it with the network.
func (n *Net) StartWorker(ctx context.Context, cfg worker.Config) (*Worker, error) {
	w, err := worker.New(ctx, cfg)
	if err != nil {
		return nil, err
	}
	wctx, cancel := context.WithCancel(context.Background())
	h := &Worker{DataDir: cfg.DataDir, Worker: w, cfg: cfg, cancel: cancel, done: make(chan error, 1)}
	go func() { h.done <- w.Run(wctx) }()
	select {
	case <-w.Ready():
		return h, nil
	case err := <-h.done:
		cancel()
		return nil, fmt.Errorf("worker stopped before it was ready: %w", err)
	case <-ctx.Done():
		cancel()
		<-h.done
		return nil, ctx.Err()
	}
}

// Stop stops the worker and waits for it.
func (w *Worker) Stop() error {
	w.cancel()
	err := <-w.done
	w.done <- err // later calls see the same result
	return err
}

// RestartWorker starts worker i again, after Stop, from its data
// directory and on the same RPC address (its registered URL), and waits
// until it is registered and syncing.
func (n *Net) RestartWorker(ctx context.Context, i int) (*Worker, error) {
	old := n.workers[i]
	cfg := old.cfg
	if a := old.RPCAddr(); a != "" {
		cfg.RPCListen = strings.TrimPrefix(a, "http://")
	}
	if a := old.MetricsAddr(); a != "" {
		cfg.MetricsListen = strings.TrimPrefix(a, "http://")
	}
	w, err := n.StartWorker(ctx, cfg)
	if err != nil {
		return nil, err
	}
	n.workers[i] = w
	return w, nil
}

// RestartWorkerSealing starts worker i again, after Stop, like
// RestartWorker but with its simulated TEE's sealing secret set to secret:
// what moving the worker to another machine (or a new mainboard) does to
// it. Its sealed files no longer open; it re-provisions from the shard's
// other workers (worker/recover.go).
func (n *Net) RestartWorkerSealing(ctx context.Context, i int, secret []byte) (*Worker, error) {
	return n.RestartWorkerWith(ctx, i, func(cfg *worker.Config) {
		cfg.Enclave = worker.ProcessFactory(worker.ProcessConfig{
			Path: n.EnclaveBinary, Args: []string{"--tee", "sim", "--sim-sealing-secret", hex.EncodeToString(secret)},
			Logger: n.log.With("worker", i, "process", "enclave"),
		})
	})
}

// RestartWorkerWith starts worker i again, after Stop, like RestartWorker
// but with its configuration changed by edit.
func (n *Net) RestartWorkerWith(ctx context.Context, i int, edit func(*worker.Config)) (*Worker, error) {
	old := n.workers[i]
	cfg := old.cfg
	if a := old.RPCAddr(); a != "" {
		cfg.RPCListen = strings.TrimPrefix(a, "http://")
	}
	edit(&cfg)
	w, err := n.StartWorker(ctx, cfg)
	if err != nil {
		return nil, err
	}
	n.workers[i] = w
	return w, nil
}

// NodeRPC is the node's CometBFT RPC URL.
func (n *Net) NodeRPC() string { return n.node.RPCAddress() }

// NodeMetrics is the base URL of the node's Prometheus metrics (served
// under /metrics); each Worker's is its MetricsAddr.
func (n *Net) NodeMetrics() string { return n.node.MetricsAddress() }

// Node is the running node.
func (n *Net) Node() *node.Node { return n.node }

// Workers are the running workers.
func (n *Net) Workers() []*Worker { return n.workers }

// Describe writes the endpoints for a human.
func (n *Net) Describe(w io.Writer) {
	fmt.Fprintf(w, "localnet in %s\n", n.Dir)
	fmt.Fprintf(w, "  node     %s  (chain %s)  metrics %s/metrics\n", n.NodeRPC(), n.ChainID, n.NodeMetrics())
	fmt.Fprintf(w, "  shard    %x  (MRENCLAVE of %s)\n", n.Shard, n.EnclaveBinary)
	for i, wk := range n.workers {
		id := wk.Identity()
		fmt.Fprintf(w, "  worker %d rpc %s  metrics %s/metrics  enclave account %s  data %s\n", i, id.RPC, wk.MetricsAddr(), id.Signer, wk.DataDir)
	}
	fmt.Fprintf(w, "  dev accounts: %v (Alice is sudo; key seed sha256(\"//Name\"))\n", accounts.DevNames)
}

// Stop stops the workers, then the node, and removes a temporary
// directory. Further calls return the first call's result.
func (n *Net) Stop() error {
	n.stopOnce.Do(func() {
		var errs []error
		for _, w := range n.workers {
			if err := w.Stop(); err != nil {
				errs = append(errs, err)
			}
		}
		if n.node != nil {
			errs = append(errs, n.node.Stop())
		}
		if n.tmp {
			errs = append(errs, os.RemoveAll(n.Dir))
		}
		n.stopErr = errors.Join(errs...)
	})
	return n.stopErr
}

// BuildEnclave builds the dev build of integritee-enclave (-tags dev: the
// simulated TEE under the dev PKI and the dev features) into dir with the
// Go toolchain and returns its path. It must run inside the module's
// source tree.
func BuildEnclave(ctx context.Context, dir string) (string, error) {
	return Build(ctx, dir, EnclavePackage, "integritee-enclave", "dev")
}

// BuildTestTEEEnclave builds the testtee build of integritee-enclave:
// production rules on a simulated TEE under the test PKI
// (Config.ProductionRules).
func BuildTestTEEEnclave(ctx context.Context, dir string) (string, error) {
	return Build(ctx, dir, EnclavePackage, "integritee-enclave", "testtee")
}

// Build builds a command package of this module into dir/name, with the
// given build tags.
func Build(ctx context.Context, dir, pkg, name string, tags ...string) (string, error) {
	return buildLD(ctx, dir, pkg, name, "", tags...)
}

// buildLD is Build with linker flags (-ldflags) if not empty.
func buildLD(ctx context.Context, dir, pkg, name, ldflags string, tags ...string) (string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	out := filepath.Join(dir, name)
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	args := []string{"build", "-o", out}
	if ldflags != "" {
		args = append(args, "-ldflags", ldflags)
	}
	if len(tags) > 0 {
		args = append(args, "-tags", strings.Join(tags, ","))
	}
	cmd := exec.CommandContext(ctx, "go", append(args, pkg)...)
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build %s: %w\n%s", pkg, err, b)
	}
	return out, nil
}

// FreeAddr returns a loopback host:port that was free a moment ago, below
// the kernel's ephemeral range (freeport).
func FreeAddr() (string, error) { return freeport.Addr() }
