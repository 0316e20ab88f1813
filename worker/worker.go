// Package worker is the untrusted host of an integritee worker. It starts
// the enclave (a child process speaking enclave/protocol), keeps the
// enclave's sealed keys and the shard's encrypted state on disk (package
// worker/store), registers the enclave on chain, follows the chain block by
// block feeding the enclave what it needs to verify and process each block,
// and submits the transactions the enclave signs.
//
// The host holds no secret: the enclave's keys reach it only sealed, the
// state only as encrypted entries under blinded keys, and everything the
// enclave is fed (headers, commits, validator sets, transactions, results)
// the enclave verifies itself. This package must not import the enclave's
// key, sealing, state or STF packages; only enclave/protocol (wire types)
// and enclave/shielding (public key use).
//
// Restart safety. After each block the host commits the enclave's state
// changes, its sealed checkpoint (height, state root, light client) and the
// outgoing calls in one bbolt transaction, and only then submits anything.
// On restart it hands the sealed keys and checkpoint back to a fresh enclave
// process, streams the stored entries into it, and continues at the next
// height, so a SIGKILL at any moment neither skips nor repeats a block.
// Outgoing calls stay in the outbox until they are on chain; a call
// submitted twice is refused by the chain (an unshield pays once per call
// hash, a confirmation must be above the enclave's last one).
//
// Direct invocation. With Config.RPCListen the worker serves the JSON-RPC
// API of package worker/rpc: clients send encrypted trusted calls straight
// to it, and it passes them to the enclave in batches, one shard block per
// batch, under the same lock as block processing. A shard block is
// committed (store.CommitShardBlock) before any of its calls is reported
// executed, and its confirm_sidechain_block goes through the outbox like
// every outgoing call; the chain's confirmations reach the watchers as the
// worker processes the blocks that carry them (direct.go). Direct calls
// need a single worker per shard until the sidechain orders them among
// several: with more than one active enclave a worker refuses them
// (ErrSeveralWorkers, RPC error CodeSeveralWorkers).
package worker

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"

	rpchttp "github.com/cometbft/cometbft/rpc/client/http"

	"github.com/integritee-go/integritee/chain/tx"
	"github.com/integritee-go/integritee/client"
	"github.com/integritee-go/integritee/enclave/protocol"
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
	// ConfirmEvery is the number of blocks per confirm_processed_block (0:
	// every block). Every worker of a shard must use the same value.
	ConfirmEvery uint32
	// Fund is called when the enclave's account cannot pay need; nil logs
	// the address to fund and waits until it is funded.
	Fund func(ctx context.Context, account tx.Address, need uint64) error
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

// Worker is a running worker host.
type Worker struct {
	cfg   Config
	log   *slog.Logger
	store *store.Store
	node  *client.Client
	rpc   *rpchttp.HTTP
	chain chainReader
	rpcLn net.Listener
	srv   *rpc.Server // direct invocation; nil without RPCListen

	genesisVals   []byte
	chainID       string
	initialHeight int64

	provLn net.Listener // the provisioning listener (provision.go)

	// exec serialises the requests that change the enclave's state
	// (ProcessBlock, SubmitCalls), each with its commit to the store, and
	// the other enclave calls (callEnclave) with them. It is taken in
	// request order, so that a chain block waits only for what was queued
	// before it (a bounded number of getters, see rpc.Options.MaxGetters),
	// never for a stream of later requests.
	exec fifoMutex

	mu         sync.Mutex // guards the fields below
	encl       Enclave
	gen        uint64 // incremented per enclave start
	identity   *protocol.InitReply
	height     int64 // last processed and persisted height
	stateRoot  [32]byte
	shardBlock uint64 // last persisted shard block (direct calls)
	// shardEnclaves is the number of active enclaves the chain listed for
	// the shard at the last check; joinOpen counts the provisioning
	// sessions in progress (the last opened at joinOpened), peerJoined is
	// when one last completed. Direct calls need a single enclave
	// (direct.go).
	shardEnclaves int
	joinOpen      int
	joinOpened    time.Time
	peerJoined    time.Time

	ready  chan struct{}
	notify chan struct{} // outbox has new calls
}

// New opens the worker's store and connects to the node (retrying until
// ctx is done). Run starts it.
func New(ctx context.Context, cfg Config) (*Worker, error) {
	if cfg.NodeRPC == "" || cfg.DataDir == "" || cfg.Enclave == nil {
		return nil, fmt.Errorf("%w: node RPC, data dir and enclave are required", ErrConfig)
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
	w := &Worker{cfg: cfg, log: log, ready: make(chan struct{}), notify: make(chan struct{}, 1)}
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
	w.rpc = w.node.RPC()
	w.chain = chainReader{rpc: w.rpc}
	err = retry(ctx, log, "read genesis", func() error {
		w.genesisVals, w.chainID, w.initialHeight, err = w.chain.genesis(ctx)
		return err
	})
	if err != nil {
		return nil, err
	}
	// The chain's state (fees, registry) exists from its first block on.
	for {
		if h, err := w.chain.latest(ctx); err == nil && h >= w.initialHeight {
			break
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		sleep(ctx, cfg.PollInterval)
	}
	if w.store, err = store.Open(filepath.Join(cfg.DataDir, "worker.db")); err != nil {
		return nil, err
	}
	if err := w.store.Bind(cfg.Shard, w.chainID); err != nil {
		w.store.Close()
		return nil, err
	}
	return w, nil
}

// Ready is closed once the enclave is registered and the worker syncs.
func (w *Worker) Ready() <-chan struct{} { return w.ready }

// Identity returns the enclave's public identity (after Ready).
func (w *Worker) Identity() Identity {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.identityLocked()
}

func (w *Worker) identityLocked() Identity {
	id := Identity{Shard: hex.EncodeToString(w.cfg.Shard[:]), ChainID: w.chainID}
	if w.identity != nil {
		id.MRENCLAVE = hex.EncodeToString(w.identity.MRENCLAVE[:])
		id.Signer = hex.EncodeToString(w.identity.SignerPublic)
		id.ShieldingKey = hex.EncodeToString(w.identity.ShieldingPublic)
	}
	if w.rpcLn != nil {
		id.RPC = "http://" + w.rpcLn.Addr().String()
	}
	return id
}

// Signer is the enclave's chain account (after Ready).
func (w *Worker) Signer() tx.Address {
	w.mu.Lock()
	defer w.mu.Unlock()
	return tx.AddressOf(ed25519.PublicKey(w.identity.SignerPublic))
}

// Processed returns the last processed height and the state root after it.
func (w *Worker) Processed() (int64, [32]byte) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.height, w.stateRoot
}

// RPCAddr is the worker's RPC URL, empty without RPC.
func (w *Worker) RPCAddr() string {
	if w.rpcLn == nil {
		return ""
	}
	return "http://" + w.rpcLn.Addr().String()
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
	defer w.store.Close()
	defer w.closeEnclave()
	if w.cfg.RPCListen != "" {
		ln, err := net.Listen("tcp", w.cfg.RPCListen)
		if err != nil {
			return fmt.Errorf("worker rpc: %w", err)
		}
		w.rpcLn = ln
		w.srv = rpc.New(directBackend{w}, w.rpcOptions())
		sctx, stop := context.WithCancel(ctx)
		served := make(chan struct{})
		go func() {
			defer close(served)
			if err := w.serveRPC(sctx, ln); err != nil {
				w.log.Error("worker rpc stopped", "err", err)
			}
		}()
		// Stops the server (and its batches) before the enclave and the
		// store close.
		defer func() {
			stop()
			<-served
		}()
	}
	stopProvisioning, perr := w.startProvisioning(ctx)
	if perr != nil {
		return perr
	}
	defer stopProvisioning()
	if _, _, err := w.enclave(ctx); err != nil {
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
	h, root := w.Processed()
	id := w.Identity()
	w.log.Info("worker ready", "shard", id.Shard, "signer", id.Signer, "mrenclave", id.MRENCLAVE,
		"height", h, "state_root", hex.EncodeToString(root[:]), "rpc", id.RPC)
	close(w.ready)

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go w.confirmedAtStart(ctx)
	errs := make(chan error, 2)
	go func() { errs <- w.submitLoop(ctx) }()
	go func() { errs <- w.syncLoop(ctx) }()
	err := <-errs
	cancel()
	if err2 := <-errs; err == nil || errors.Is(err, context.Canceled) {
		err = err2
	}
	return err
}

// rpcOptions are the JSON-RPC server's options.
func (w *Worker) rpcOptions() rpc.Options {
	o := w.cfg.RPC
	o.Version, o.Logger = Version, w.log.With("component", "rpc")
	return o
}

// fifoMutex is a mutex that goes to its waiters in the order they came:
// sync.Mutex lets a goroutine that keeps coming back (a getter worker)
// take the lock ahead of one that has waited (block processing) until the
// wait exceeds a millisecond, and only then hands it over in order.
type fifoMutex struct {
	mu      sync.Mutex
	locked  bool
	waiters []chan struct{}
}

func (m *fifoMutex) Lock() {
	m.mu.Lock()
	if !m.locked {
		m.locked = true
		m.mu.Unlock()
		return
	}
	ch := make(chan struct{})
	m.waiters = append(m.waiters, ch)
	m.mu.Unlock()
	<-ch // Unlock handed the lock over
}

func (m *fifoMutex) Unlock() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.locked {
		panic("worker: unlock of unlocked fifoMutex")
	}
	if len(m.waiters) == 0 {
		m.locked = false
		return
	}
	ch := m.waiters[0]
	m.waiters[0] = nil
	m.waiters = m.waiters[1:]
	close(ch)
}

// writeIdentity writes enclave.json: public, for tools and humans.
func (w *Worker) writeIdentity() error {
	b, err := json.MarshalIndent(w.Identity(), "", "  ")
	if err != nil {
		return err
	}
	path := filepath.Join(w.cfg.DataDir, "enclave.json")
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return os.Rename(tmp, path)
}

// ReadIdentity reads the enclave.json a worker wrote into dataDir.
func ReadIdentity(dataDir string) (Identity, error) {
	var id Identity
	b, err := os.ReadFile(filepath.Join(dataDir, "enclave.json"))
	if err != nil {
		return id, err
	}
	err = json.Unmarshal(b, &id)
	return id, err
}

// enclave returns the running enclave, starting and initialising one if
// there is none (first call, or the last one died).
func (w *Worker) enclave(ctx context.Context) (Enclave, uint64, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.encl != nil {
		return w.encl, w.gen, nil
	}
	e, err := w.cfg.Enclave(ctx)
	if err != nil {
		return nil, 0, err
	}
	if err := w.initEnclave(ctx, e); err != nil {
		e.Close()
		return nil, 0, err
	}
	w.encl = e
	w.gen++
	return e, w.gen, nil
}

// dropEnclave closes e if it is still the current enclave, so that the
// next call starts a fresh one.
func (w *Worker) dropEnclave(e Enclave) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.encl == e {
		w.encl.Close()
		w.encl = nil
	}
}

func (w *Worker) closeEnclave() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.encl != nil {
		w.encl.Close()
		w.encl = nil
	}
}

// initEnclave runs the start sequence on a fresh enclave: Init with the
// persisted keys and checkpoint, then the stored entries and Resume.
// Called with w.mu held.
func (w *Worker) initEnclave(ctx context.Context, e Enclave) error {
	keys, err := w.store.SealedKeys()
	if err != nil {
		return err
	}
	cp, haveCP, err := w.store.Checkpoint()
	if err != nil {
		return err
	}
	req := &protocol.Init{
		Shard: w.cfg.Shard, ChainID: w.chainID, GenesisValidators: w.genesisVals,
		InitialHeight: w.initialHeight, SealedKeys: keys, ConfirmEvery: w.cfg.ConfirmEvery,
	}
	if haveCP {
		req.Checkpoint = cp.Sealed
	}
	rep, err := call[*protocol.InitReply](ctx, e, req)
	if err != nil {
		return err
	}
	switch {
	case keys == nil:
		// Persist before anything depends on the keys (registration).
		if err := w.store.SaveSealedKeys(rep.SealedKeys); err != nil {
			return err
		}
	case rep.Created:
		return ErrKeysRegenerated
	}
	if w.identity != nil && (string(w.identity.SignerPublic) != string(rep.SignerPublic) ||
		string(w.identity.ShieldingPublic) != string(rep.ShieldingPublic)) {
		return ErrIdentityChanged
	}
	height, root := rep.Height, rep.StateRoot
	if haveCP && !rep.AwaitingEntries {
		// A checkpoint of an empty state needs no entries: the enclave
		// resumed at Init (e.g. a worker provisioned before any shield).
		n, err := w.store.EntryCount()
		if err != nil {
			return err
		}
		if n != 0 || height != cp.Height || root != cp.StateRoot {
			return fmt.Errorf("%w: enclave does not wait for the state of height %d", ErrStateMismatch, cp.Height)
		}
	} else if haveCP {
		res, err := w.loadEntries(ctx, e)
		if err != nil {
			return err
		}
		height, root = res.Height, res.StateRoot
		if height != cp.Height || root != cp.StateRoot {
			return fmt.Errorf("%w: enclave at %d root %x, store at %d root %x", ErrStateMismatch, height, root, cp.Height, cp.StateRoot)
		}
		w.log.Info("enclave restored", "height", height, "entries", res.Entries)
	} else if rep.AwaitingEntries {
		return fmt.Errorf("%w: enclave waits for entries but the store has no checkpoint", ErrStateMismatch)
	}
	last, _, err := w.store.LastShardBlock()
	if err != nil {
		return err
	}
	w.identity, w.height, w.stateRoot, w.shardBlock = rep, height, root, last.Header.Number
	if rep.MRENCLAVE != w.cfg.Shard {
		w.log.Warn("enclave measurement differs from the shard ID: the shard must be configured for it on chain",
			"mrenclave", hex.EncodeToString(rep.MRENCLAVE[:]), "shard", hex.EncodeToString(w.cfg.Shard[:]))
	}
	return nil
}

// Bounds of one LoadEntries request, well within a protocol frame.
const (
	loadChunkEntries = 4096
	loadChunkBytes   = 4 << 20
)

func (w *Worker) loadEntries(ctx context.Context, e Enclave) (*protocol.ResumeReply, error) {
	var (
		chunk []protocol.Entry
		size  int
	)
	flush := func() error {
		if len(chunk) == 0 {
			return nil
		}
		if _, err := call[*protocol.LoadEntriesReply](ctx, e, &protocol.LoadEntries{Entries: chunk}); err != nil {
			return err
		}
		chunk, size = nil, 0
		return nil
	}
	err := w.store.Entries(func(en protocol.Entry) error {
		chunk = append(chunk, en)
		size += len(en.Value) + 48
		if len(chunk) >= loadChunkEntries || size >= loadChunkBytes {
			return flush()
		}
		return nil
	})
	if err == nil {
		err = flush()
	}
	if err != nil {
		return nil, fmt.Errorf("load state into enclave: %w", err)
	}
	return call[*protocol.ResumeReply](ctx, e, &protocol.Resume{})
}

// callEnclave calls the enclave, restarting it (and restoring its state
// from the store) when the process died. Error replies are returned as
// they are. It holds exec, like the requests that change the state: a
// restart then never reads the store in the middle of a commit, and a
// reading request never sees state that is not yet persisted.
func (w *Worker) callEnclave(ctx context.Context, req protocol.Request) (protocol.Reply, error) {
	w.exec.Lock()
	defer w.exec.Unlock()
	for attempt := 0; ; attempt++ {
		e, _, err := w.enclave(ctx)
		if err != nil {
			return nil, err
		}
		rep, err := e.Call(ctx, req)
		if err == nil || !needsRestart(err) || ctx.Err() != nil {
			return rep, err
		}
		w.log.Error("enclave failed; restarting it from the store", "request", req.Type(), "err", err)
		w.dropEnclave(e)
		if attempt >= 3 {
			return nil, fmt.Errorf("enclave %s: %w", req.Type(), err)
		}
	}
}

func callAs[R protocol.Reply](ctx context.Context, w *Worker, req protocol.Request) (R, error) {
	rep, err := w.callEnclave(ctx, req)
	r, err := protocol.ReplyAs[R](req, rep, err)
	if err != nil {
		return r, fmt.Errorf("enclave %s: %w", req.Type(), err)
	}
	return r, nil
}

// StateInfo asks the enclave for its public progress.
func (w *Worker) StateInfo(ctx context.Context) (*protocol.StateInfoReply, error) {
	return callAs[*protocol.StateInfoReply](ctx, w, &protocol.StateInfo{})
}

// syncLoop feeds the enclave every block from the last processed height
// on, persisting each result before the next.
func (w *Worker) syncLoop(ctx context.Context) error {
	b := backoff{}
	latest := int64(0)
	for ctx.Err() == nil {
		w.mu.Lock()
		next := w.height + 1
		w.mu.Unlock()
		if latest < next+1 {
			var err error
			if latest, err = w.chain.latest(ctx); err != nil {
				b.wait(ctx, w.log, "node status", err)
				continue
			}
			if latest < next+1 {
				sleep(ctx, w.cfg.PollInterval)
				continue
			}
		}
		if err := w.processBlock(ctx, next); err != nil {
			if isFatal(err) {
				return err
			}
			latest = 0
			b.wait(ctx, w.log, fmt.Sprintf("process block %d", next), err)
			continue
		}
		b.reset()
	}
	return ctx.Err()
}

func (w *Worker) processBlock(ctx context.Context, h int64) error {
	req, confirmed, err := w.chain.block(ctx, h)
	if err != nil {
		return err
	}
	w.exec.Lock()
	defer w.exec.Unlock()
	e, gen, err := w.enclave(ctx)
	if err != nil {
		return err
	}
	rep, err := call[*protocol.ProcessBlockReply](ctx, e, req)
	switch {
	case errors.Is(err, protocol.ErrVerification):
		// Never applied; the node may serve it right on a retry.
		w.chain.next = nil
		return err
	case err != nil && needsRestart(err) && ctx.Err() == nil:
		w.log.Error("enclave failed; restarting it from the store", "err", err)
		w.dropEnclave(e)
		return err
	case err != nil:
		return err
	}
	if rep.Height != h {
		return fmt.Errorf("%w: enclave processed height %d, fed %d", ErrStateMismatch, rep.Height, h)
	}
	err = w.store.Commit(store.Batch{
		Checkpoint: store.Checkpoint{Height: rep.Height, StateRoot: rep.StateRoot, Sealed: rep.Checkpoint},
		Changes:    rep.Changes,
		Outgoing:   rep.Outgoing,
		Block:      rep.Block,
	})
	w.mu.Lock()
	if err != nil || w.gen != gen {
		// The enclave and the store may disagree (the store did not take
		// the block, or an enclave restarted from the store while this
		// block was in flight): restart it from the store.
		if w.encl != nil {
			w.encl.Close()
			w.encl = nil
		}
	}
	if err == nil {
		w.height, w.stateRoot = rep.Height, rep.StateRoot
	}
	w.mu.Unlock()
	if err != nil {
		return fmt.Errorf("persist block %d: %w", h, err)
	}
	if s := rep.Stats; s.Invokes > 0 || s.Shields > 0 {
		w.log.Info("block processed", "height", h, "invokes", s.Invokes, "applied", s.Applied, "failed", s.Failed,
			"rejected", s.Rejected, "shields", s.Shields, "shields_rejected", s.ShieldsRejected,
			"changes", len(rep.Changes), "outgoing", len(rep.Outgoing))
	} else {
		w.log.Debug("block processed", "height", h, "outgoing", len(rep.Outgoing))
	}
	if len(rep.Outgoing) > 0 {
		w.wakeSubmitter()
	}
	w.confirmed(confirmed)
	return nil
}

// needsRestart tells the errors after which the enclave must be replaced
// by a fresh process restored from the store: the connection broke (the
// process died), or the enclave stopped after an internal failure
// (CodeInternal, "restart required").
func needsRestart(err error) bool {
	var pe *protocol.Error
	return !errors.As(err, &pe) || pe.Code == protocol.CodeInternal
}

// isFatal tells the errors that retrying cannot cure: the store and the
// enclave disagree, or the enclave refuses its sealed keys or state.
func isFatal(err error) bool {
	for _, f := range []error{store.ErrHeightGap, store.ErrCorrupt, ErrStateMismatch, ErrKeysRegenerated,
		ErrIdentityChanged, protocol.ErrSealing, protocol.ErrState} {
		if errors.Is(err, f) {
			return true
		}
	}
	return false
}

// shieldingKeyHash is what teerex records of a shielding key.
func shieldingKeyHash(pub []byte) [32]byte { return sha256.Sum256(pub) }

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
