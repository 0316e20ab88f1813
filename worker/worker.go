package worker

import (
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/integritee-go/integritee/chain/tx"
	"github.com/integritee-go/integritee/client"
	"github.com/integritee-go/integritee/enclave/protocol"
	"github.com/integritee-go/integritee/internal/atomicfile"
	"github.com/integritee-go/integritee/worker/peer"
	"github.com/integritee-go/integritee/worker/rpc"
	"github.com/integritee-go/integritee/worker/store"
)

// Version is the worker's software version.
const Version = "0.1.0"

// Errors.
var (
	// ErrConfig means the configuration is unusable.
	ErrConfig = errors.New("worker: invalid config")
	// ErrKeysRegenerated means the enclave created new keys although
	// sealed ones were handed to it: the store and enclave disagree.
	ErrKeysRegenerated = errors.New("worker: enclave regenerated its keys")
	// ErrStateMismatch means the enclave restored a state other than the
	// one the store holds.
	ErrStateMismatch = errors.New("worker: restored state does not match the store")
	// ErrIdentityChanged means a restarted enclave has another signer or
	// shielding key than before.
	ErrIdentityChanged = errors.New("worker: enclave identity changed across a restart")
)

// Config configures a worker.
type Config struct {
	// NodeRPC is the node's CometBFT RPC address, http://host:port.
	NodeRPC string
	// DataDir holds the database (worker.db), enclave.json, and trust/,
	// the node client's newest verified header (client.FileTrustStore).
	DataDir string
	// Enclave starts the enclave (ProcessFactory for a child process).
	Enclave EnclaveFactory
	// Shard is the shard to serve; by default a shard is named by the
	// MRENCLAVE of the enclave release that serves it.
	Shard [32]byte
	// RPCListen is where the worker's JSON-RPC listens (host:port, port 0
	// for a free one); empty disables it.
	RPCListen string
	// RPC limits the JSON-RPC server: rate, batch size, getter and call
	// queues, connection caps, timeouts (zero fields take rpc.Options'
	// defaults). Its connection caps and timeouts also apply to the
	// provisioning listener. Version and Logger are the worker's.
	RPC rpc.Options
	// WorkerURL is the URL registered on chain; empty means the RPC's
	// http:// URL.
	WorkerURL string
	// Provision configures key provisioning between the shard's workers
	// (provision.go).
	Provision ProvisionConfig
	// ConfirmHeartbeat is how often, in chain block time, the enclave
	// confirms a processed block when the shard did not change (it always
	// confirms a block with calls of the shard or a new state hash); 0
	// confirms every block. Every worker of a shard should use the same
	// value, so that the chain compares their confirmations at the same
	// heights. Whole milliseconds; negative is refused.
	ConfirmHeartbeat time.Duration
	// Fund is called when the enclave's account cannot pay need; nil logs
	// the address to fund and waits until it is funded.
	Fund func(ctx context.Context, account tx.Address, need uint64) error
	// MetricsListen is where Prometheus metrics are served under
	// /metrics (host:port, port 0 for a free one); empty serves none.
	MetricsListen string
	// Logger receives the worker's logs; nil discards them.
	Logger *slog.Logger
	// PollInterval is how often the node is asked for new blocks; default
	// 100ms.
	PollInterval time.Duration
}

// Identity is the enclave's public identity, as written to enclave.json.
type Identity struct {
	Shard        string `json:"shard"`
	MRENCLAVE    string `json:"mrenclave"`
	Signer       string `json:"signer"`
	ShieldingKey string `json:"shielding_key"`
	RPC          string `json:"rpc,omitempty"`
	ChainID      string `json:"chain_id"`
}

// Worker is a running worker host: the parts of the package doc, wired
// together. Each part keeps its own state; what they share is the
// supervisor (the enclave and the store it keeps in step) and the node.
type Worker struct {
	cfg     Config
	log     *slog.Logger
	chainID string
	// retired is set once the shard moved to another release (upgrade.go).
	retired atomic.Bool

	store *store.Store
	sup   *supervisor // the enclave (supervisor.go)
	// node is the node client: proved queries and transactions.
	node *client.Client
	// chain reads the node's blocks for the enclave (chain.go, sync.go).
	chain *chainReader
	// gate lets direct calls through while one enclave serves the shard
	// (direct.go).
	enclaves shardCount

	// listener is the worker's own JSON-RPC listener and rpcServer the
	// server on it (listen.go); nil without Config.RPCListen.
	listener  net.Listener
	rpcServer *rpc.Server
	// provListener is the extra provisioning listener (listen.go).
	provListener net.Listener
	// metrics are the worker's own (metrics.go), served on
	// metricsListener (nil without Config.MetricsListen).
	metrics         *workerMetrics
	metricsListener net.Listener

	// account serialises the transactions of the enclave's account
	// (submission and registration), which take consecutive nonces.
	account sync.Mutex

	// repl is the host's side of the shard's replication (replicate.go),
	// peers the transport of its envelopes (nil: none yet).
	repl  *replicaHost
	peers EnvelopeSender

	// recovery is what the worker reports of machine loss (recover.go).
	recovery recovery

	ready    chan struct{}
	outbox   chan struct{} // the outbox has new calls (submit.go)
	renewNow chan struct{} // the chain refused a call for the registration (renew.go)
	syncNow  chan struct{} // the enclave waits for a chain block (sync.go)
}

// New opens the worker's store and connects to the node (retrying until
// ctx is done). Run starts it.
func New(ctx context.Context, cfg Config) (*Worker, error) {
	if cfg.NodeRPC == "" || cfg.DataDir == "" || cfg.Enclave == nil {
		return nil, fmt.Errorf("%w: node RPC, data dir and enclave are required", ErrConfig)
	}
	if cfg.ConfirmHeartbeat < 0 {
		return nil, fmt.Errorf("%w: confirmation heartbeat %v", ErrConfig, cfg.ConfirmHeartbeat)
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = 100 * time.Millisecond
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("worker data dir: %w", err)
	}
	w := &Worker{cfg: cfg, log: log, ready: make(chan struct{}), outbox: make(chan struct{}, 1), renewNow: make(chan struct{}, 1),
		syncNow: make(chan struct{}, 1), repl: newReplicaHost()}
	var err error
	err = retry(ctx, log, "connect to node", func() error {
		// The trust store spares a restart trusting the node anew: the
		// client verifies forward from the header of the last run.
		w.node, err = client.New(ctx, cfg.NodeRPC, client.Options{TrustStore: client.FileTrustStore{Dir: filepath.Join(cfg.DataDir, "trust")}})
		return err
	})
	if err != nil {
		return nil, err
	}
	w.chain = &chainReader{rpc: w.node.RPC()}
	var (
		genesisVals   []byte
		initialHeight int64
	)
	err = retry(ctx, log, "read genesis", func() error {
		genesisVals, w.chainID, initialHeight, err = w.chain.genesis(ctx)
		return err
	})
	if err != nil {
		return nil, err
	}
	// The chain's state (fees, registry) exists from its first block on.
	for {
		if h, err := w.chain.latest(ctx); err == nil && h >= initialHeight {
			break
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		sleep(ctx, cfg.PollInterval)
	}
	if w.store, err = store.Open(filepath.Join(cfg.DataDir, storeFile)); err != nil {
		return nil, err
	}
	if err := w.store.Bind(cfg.Shard, w.chainID); err != nil {
		w.store.Close()
		return nil, err
	}
	w.sup = newSupervisor(cfg.Enclave, w.store, protocol.Init{
		Shard: cfg.Shard, ChainID: w.chainID, GenesisValidators: genesisVals,
		InitialHeight: initialHeight, ConfirmHeartbeat: uint64(cfg.ConfirmHeartbeat.Milliseconds()),
	}, log.With("component", "enclave"))
	w.sup.onReplica = w.onReplica
	w.metrics = newMetrics(w)
	w.sup.metrics = w.metrics
	return w, nil
}

// Ready is closed once the enclave is registered and the worker syncs.
func (w *Worker) Ready() <-chan struct{} { return w.ready }

// Identity returns the enclave's public identity (after Ready).
func (w *Worker) Identity() Identity {
	id := Identity{Shard: hex.EncodeToString(w.cfg.Shard[:]), ChainID: w.chainID, RPC: w.RPCAddr()}
	if e := w.sup.Identity(); e != nil {
		id.MRENCLAVE = hex.EncodeToString(e.MRENCLAVE[:])
		id.Signer = hex.EncodeToString(e.SignerPublic)
		id.ShieldingKey = hex.EncodeToString(e.ShieldingPublic)
	}
	return id
}

// Signer is the enclave's chain account (after Ready).
func (w *Worker) Signer() tx.Address {
	return tx.AddressOf(ed25519.PublicKey(w.sup.Identity().SignerPublic))
}

// Processed returns the last processed height and the state root after it.
func (w *Worker) Processed() (int64, [32]byte) {
	p := w.sup.Progress()
	return p.Height, p.StateRoot
}

// StateInfo asks the enclave for its public progress.
func (w *Worker) StateInfo(ctx context.Context) (*protocol.StateInfoReply, error) {
	return callAs[*protocol.StateInfoReply](ctx, w.sup, &protocol.StateInfo{})
}

// Run starts the enclave, registers it, and syncs the chain until ctx is
// done, which is a clean stop (nil). It closes the store and the enclave
// before it returns.
func (w *Worker) Run(ctx context.Context) error {
	err := w.run(ctx)
	if ctx.Err() != nil && (errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)) {
		err = nil
	}
	w.log.Info("worker stopped", "err", err)
	return err
}

func (w *Worker) run(ctx context.Context) error {
	// Closures: recoverSealed may replace the store.
	defer func() { w.store.Close() }()
	defer w.sup.Stop()
	if err := w.recoverSealed(ctx); err != nil {
		return err
	}
	// Deferred after: the servers (and their batches) stop before the
	// enclave and the store close.
	stopRPC, err := w.serveRPC(ctx)
	if err != nil {
		return err
	}
	defer stopRPC()
	// After the RPC: its gauges read the RPC server.
	stopMetrics, err := w.serveMetrics(ctx)
	if err != nil {
		return err
	}
	defer stopMetrics()
	// Before provisioning: a provisioned enclave is kept running, and its
	// replica's first output goes to the peers.
	sender := peer.NewSender(peer.NewRegistry(w.node, nil), peer.SenderOptions{})
	defer sender.Close()
	w.peers = sender
	stopProvisioning, err := w.startProvisioning(ctx)
	if err != nil {
		return err
	}
	defer stopProvisioning()
	if err := w.sup.Start(ctx); err != nil {
		return err
	}
	if err := w.writeIdentity(); err != nil {
		return err
	}
	if err := w.ensureRegistered(ctx); err != nil {
		return err
	}
	// Before the RPC serves direct calls: the count includes this enclave
	// and, for a provisioned one, its provider.
	if err := retry(ctx, w.log, "count the shard's enclaves", func() error { return w.refreshShardEnclaves(ctx) }); err != nil {
		return err
	}
	p := w.sup.Progress()
	id := w.Identity()
	w.log.Info("worker ready", "shard", id.Shard, "signer", id.Signer, "mrenclave", id.MRENCLAVE,
		"height", p.Height, "state_root", hex.EncodeToString(p.StateRoot[:]), "rpc", id.RPC, "metrics", w.MetricsAddr())
	close(w.ready)

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go w.confirmedAtStart(ctx)
	loops := []func(context.Context) error{w.syncLoop, w.submitLoop, w.renewLoop, w.replicaLoop}
	errs := make(chan error, len(loops))
	for _, loop := range loops {
		go func() { errs <- loop(ctx) }()
	}
	// The first to stop stops the others; its error is the one that
	// counts, unless it merely saw the cancellation.
	err = <-errs
	cancel()
	for range len(loops) - 1 {
		if err2 := <-errs; err == nil || errors.Is(err, context.Canceled) {
			err = err2
		}
	}
	return err
}

// writeIdentity writes enclave.json: public, for tools and humans.
func (w *Worker) writeIdentity() error {
	b, err := json.MarshalIndent(w.Identity(), "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(filepath.Join(w.cfg.DataDir, identityFile), append(b, '\n'), 0o644)
}

// The files a worker keeps in its data directory: its store (with the
// store's state file beside it) and its public identity.
const (
	storeFile    = "worker.db"
	identityFile = "enclave.json"
)

// ReadIdentity reads the enclave.json a worker wrote into dataDir.
func ReadIdentity(dataDir string) (Identity, error) {
	return readIdentityFile(filepath.Join(dataDir, identityFile))
}

func readIdentityFile(path string) (Identity, error) {
	var id Identity
	b, err := os.ReadFile(path)
	if err != nil {
		return id, err
	}
	err = json.Unmarshal(b, &id)
	return id, err
}

// backoff grows the wait between retries of a failing operation.
type backoff struct{ d time.Duration }

func (b *backoff) wait(ctx context.Context, log *slog.Logger, what string, err error) {
	if b.d == 0 {
		b.d = 100 * time.Millisecond
	} else if b.d *= 2; b.d > 5*time.Second {
		b.d = 5 * time.Second
	}
	if ctx.Err() == nil {
		log.Warn(what+" failed; retrying", "err", err, "in", b.d)
	}
	sleep(ctx, b.d)
}

func (b *backoff) reset() { b.d = 0 }

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// retry runs f until it succeeds or ctx is done, or until the node client
// refuses its trusted header: waiting does not mend that, the operator
// must (remove the record the error names, in DataDir/trust, to trust the
// node anew).
func retry(ctx context.Context, log *slog.Logger, what string, f func() error) error {
	b := backoff{}
	for {
		err := f()
		if err == nil {
			return nil
		}
		if ctx.Err() != nil || errors.Is(err, client.ErrTrustExpired) || errors.Is(err, client.ErrChainMismatch) || errors.Is(err, client.ErrTrustRecord) {
			return fmt.Errorf("%s: %w", what, err)
		}
		b.wait(ctx, log, what, err)
	}
}
