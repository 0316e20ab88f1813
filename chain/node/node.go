package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"time"

	dbm "github.com/cometbft/cometbft-db"
	cmtcfg "github.com/cometbft/cometbft/config"
	cmtjson "github.com/cometbft/cometbft/libs/json"
	cmtlog "github.com/cometbft/cometbft/libs/log"
	"github.com/cometbft/cometbft/libs/service"
	cmtnode "github.com/cometbft/cometbft/node"
	"github.com/cometbft/cometbft/p2p"
	"github.com/cometbft/cometbft/privval"
	"github.com/cometbft/cometbft/proxy"
	cmttypes "github.com/cometbft/cometbft/types"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/integritee-go/integritee/chain"
	"github.com/integritee-go/integritee/chain/runtime"
	"github.com/integritee-go/integritee/chain/store"
)

// StartOptions configure one run of a node.
type StartOptions struct {
	// Logger receives the node's logs; nil discards them.
	Logger *slog.Logger
	// RPCListen, P2PListen and MetricsListen override node.toml when set
	// (host:port).
	RPCListen, P2PListen, MetricsListen string
	// Modules are the runtime modules besides accounts. Nil means
	// Modules() (teerex, bridge and sidechain), the runtime of integritee-node; an
	// empty non-nil slice runs accounts alone. Every node of a chain must
	// run the same modules.
	Modules []runtime.Module
}

// Node is a running integritee-node.
type Node struct {
	home    string
	cfg     Config
	chainID string
	cmt     *cmtnode.Node
	metrics *metricsServer // nil without Config.MetricsListen
	db      dbm.DB
	dbs     *dbTracker
	log     *slog.Logger

	stopOnce sync.Once
	stopErr  error
}

// Start starts the node of an initialized home and returns once its RPC
// listens. CometBFT's handshake first replays any block that the application
// has not committed (e.g. after a crash).
func Start(home string, opts StartOptions) (*Node, error) {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	cfg, err := LoadConfig(home)
	if err != nil {
		return nil, err
	}
	if opts.RPCListen != "" {
		cfg.RPCListen = opts.RPCListen
	}
	if opts.P2PListen != "" {
		cfg.P2PListen = opts.P2PListen
	}
	if opts.MetricsListen != "" {
		cfg.MetricsListen = opts.MetricsListen
	}
	cc, err := cometConfigFor(home, cfg)
	if err != nil {
		return nil, err
	}
	gen, err := cmttypes.GenesisDocFromFile(cc.GenesisFile())
	if err != nil {
		return nil, fmt.Errorf("start: %w", err)
	}
	pv, err := loadPrivValidator(cc.PrivValidatorKeyFile(), cc.PrivValidatorStateFile())
	if err != nil {
		return nil, err
	}
	nodeKey, err := p2p.LoadNodeKey(cc.NodeKeyFile())
	if err != nil {
		return nil, fmt.Errorf("start: node key: %w", err)
	}
	db, err := dbm.NewDB("application", dbm.GoLevelDBBackend, cc.DBDir())
	if err != nil {
		return nil, fmt.Errorf("start: open application db: %w", err)
	}
	st, err := store.Open(db)
	if err != nil {
		db.Close()
		return nil, err
	}
	mods := opts.Modules
	if mods == nil {
		mods = Modules()
	}
	// One registry per node, not Prometheus' process-wide one: nodes
	// of a testnet share a process.
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	app, err := chain.New(chain.Options{ChainID: gen.ChainID, Store: st, Logger: log.With("module", "app"), Modules: mods,
		Metrics: chain.NewMetrics(reg)})
	if err != nil {
		db.Close()
		return nil, err
	}
	level, err := parseLevel(cfg.CometLogLevel)
	if err != nil {
		db.Close()
		return nil, err
	}
	// Listening first: a taken address fails the start before CometBFT
	// opens its databases.
	var ms *metricsServer
	if cfg.MetricsListen != "" {
		if ms, err = serveMetrics(cfg.MetricsListen, reg, log); err != nil {
			db.Close()
			return nil, err
		}
	}
	dbs := &dbTracker{}
	cmt, err := cmtnode.NewNode(cc, pv, nodeKey,
		proxy.NewLocalClientCreator(app),
		func() (*cmttypes.GenesisDoc, error) { return gen, nil },
		dbs.provide,
		cometMetrics(reg),
		cometLogger{l: log.With("module", "comet"), min: level},
	)
	if err != nil {
		ms.Close()
		dbs.closeUnclosed()
		db.Close()
		return nil, fmt.Errorf("start: %w", err)
	}
	// The handshake is done: the app is at the block store's height (or
	// ran InitChain). If it replayed nothing it knows no block time, which
	// CheckTx needs (attestations are verified at it): restore it from the
	// last committed header before anything can reach CheckTx.
	if h := st.Version(); h > 0 {
		if meta := cmt.BlockStore().LoadBlockMeta(h); meta != nil {
			app.RestoreLastBlockTime(meta.Header.Time)
		} else {
			log.Warn("no header for the committed height: CheckTx has no block time until the next block", "height", h)
		}
	}
	if err := cmt.Start(); err != nil {
		ms.Close()
		dbs.closeUnclosed()
		db.Close()
		return nil, fmt.Errorf("start: %w", err)
	}
	n := &Node{home: home, cfg: cfg, chainID: gen.ChainID, cmt: cmt, metrics: ms, db: db, dbs: dbs, log: log}
	log.Info("node started", "chain_id", gen.ChainID, "rpc", n.RPCAddress(), "p2p", cfg.P2PListen, "metrics", n.MetricsAddress(),
		"node_id", string(nodeKey.ID()), "height", st.Version(), "app_hash", fmt.Sprintf("%X", st.Root()))
	return n, nil
}

// RPCAddress is the CometBFT RPC endpoint, e.g. http://127.0.0.1:26657.
func (n *Node) RPCAddress() string { return "http://" + n.cfg.RPCListen }

// MetricsAddress is the base URL of the Prometheus metrics (served under
// /metrics), e.g. http://127.0.0.1:26660; empty without metrics.
func (n *Node) MetricsAddress() string { return n.metrics.URL() }

// ChainID returns the chain ID of the genesis.
func (n *Node) ChainID() string { return n.chainID }

// Height returns the last committed block height.
func (n *Node) Height() int64 { return n.cmt.BlockStore().Height() }

// Stop stops consensus, p2p and RPC and closes the databases. Committed
// state is already durable; stopping only ends the process cleanly. Further
// calls return the first call's result.
func (n *Node) Stop() error {
	n.stopOnce.Do(func() { n.stopErr = n.stop() })
	return n.stopErr
}

func (n *Node) stop() error {
	err := n.cmt.Stop()
	if errors.Is(err, service.ErrAlreadyStopped) {
		err = nil
	}
	n.cmt.Wait()
	n.metrics.Close()
	n.dbs.closeUnclosed()
	if cerr := n.db.Close(); err == nil {
		err = cerr
	}
	n.log.Info("node stopped")
	return err
}

// Run starts the node and stops it when ctx is done.
func Run(ctx context.Context, home string, opts StartOptions) error {
	n, err := Start(home, opts)
	if err != nil {
		return err
	}
	<-ctx.Done()
	return n.Stop()
}

func cometConfigFor(home string, c Config) (*cmtcfg.Config, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	cc := cometConfig(home)
	cc.Moniker = c.Moniker
	cc.RPC.ListenAddress = "tcp://" + c.RPCListen
	cc.P2P.ListenAddress = "tcp://" + c.P2PListen
	cc.P2P.PersistentPeers = strings.Join(c.PersistentPeers, ",")
	cc.P2P.PexReactor = c.PEX
	if isLoopback(c.P2PListen) {
		// Validators of a local testnet share one IP.
		cc.P2P.AddrBookStrict = false
		cc.P2P.AllowDuplicateIP = true
		// A stopped local validator is redialled within seconds, not after
		// CometBFT's unbounded exponential backoff.
		cc.P2P.PersistentPeersMaxDialPeriod = 2 * time.Second
	}
	cc.Consensus.TimeoutCommit = time.Duration(c.TimeoutCommit)
	if c.TimeoutPropose > 0 {
		cc.Consensus.TimeoutPropose = time.Duration(c.TimeoutPropose)
	}
	cc.Consensus.CreateEmptyBlocks = c.CreateEmptyBlocks
	cc.Instrumentation.Prometheus = false
	cc.TxIndex.Indexer = "kv"
	if err := cc.ValidateBasic(); err != nil {
		return nil, fmt.Errorf("comet config: %w", err)
	}
	return cc, nil
}

func isLoopback(hostport string) bool {
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		return false
	}
	ip := net.ParseIP(host)
	return host == "localhost" || (ip != nil && ip.IsLoopback())
}

// loadPrivValidator checks the key files first: CometBFT's loader exits the
// process on a missing or malformed file.
func loadPrivValidator(keyFile, stateFile string) (*privval.FilePV, error) {
	b, err := os.ReadFile(keyFile)
	if err != nil {
		return nil, fmt.Errorf("validator key: %w", err)
	}
	var k privval.FilePVKey
	if err := cmtjson.Unmarshal(b, &k); err != nil {
		return nil, fmt.Errorf("validator key %s: %w", keyFile, err)
	}
	b, err = os.ReadFile(stateFile)
	if err != nil {
		return nil, fmt.Errorf("validator state: %w", err)
	}
	var s privval.FilePVLastSignState
	if err := cmtjson.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("validator state %s: %w", stateFile, err)
	}
	return privval.LoadFilePV(keyFile, stateFile), nil
}

func parseLevel(s string) (slog.Level, error) {
	var l slog.Level
	if s == "" {
		return slog.LevelError, nil
	}
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return l, fmt.Errorf("comet_log_level %q: %w", s, err)
	}
	return l, nil
}

// cometLogger adapts slog to CometBFT's logger, with its own minimum level
// because CometBFT logs several lines per block at info.
type cometLogger struct {
	l   *slog.Logger
	min slog.Level
}

func (c cometLogger) log(level slog.Level, msg string, kv []any) {
	if level < c.min {
		return
	}
	c.l.Log(context.Background(), level, msg, kv...)
}

func (c cometLogger) Debug(msg string, kv ...any) { c.log(slog.LevelDebug, msg, kv) }
func (c cometLogger) Info(msg string, kv ...any)  { c.log(slog.LevelInfo, msg, kv) }
func (c cometLogger) Warn(msg string, kv ...any)  { c.log(slog.LevelWarn, msg, kv) }
func (c cometLogger) Error(msg string, kv ...any) { c.log(slog.LevelError, msg, kv) }
func (c cometLogger) With(kv ...any) cmtlog.Logger {
	return cometLogger{l: c.l.With(kv...), min: c.min}
}

// Genesis reads the genesis of a home.
func Genesis(home string) (*cmttypes.GenesisDoc, error) {
	return cmttypes.GenesisDocFromFile(cometConfig(home).GenesisFile())
}

// AppState decodes the app_state of a genesis.
func AppState(gen *cmttypes.GenesisDoc) (chain.AppState, error) {
	var s chain.AppState
	err := json.Unmarshal(gen.AppState, &s)
	return s, err
}

// dbTracker opens CometBFT's databases and closes the one that CometBFT's
// Node.OnStop leaves open (the tx/block index), so that the same home can be
// started again in the same process.
type dbTracker struct {
	mu     sync.Mutex
	opened []dbm.DB
}

func (d *dbTracker) provide(ctx *cmtcfg.DBContext) (dbm.DB, error) {
	db, err := cmtcfg.DefaultDBProvider(ctx)
	if err != nil {
		return nil, err
	}
	tolerant := &closeTolerantDB{DB: db}
	if ctx.ID == "tx_index" {
		d.mu.Lock()
		d.opened = append(d.opened, tolerant)
		d.mu.Unlock()
	}
	return tolerant, nil
}

// closeTolerantDB answers reads after Close as "absent" instead of with an
// error. CometBFT's Node.OnStop closes the block and state stores while a
// consensus gossip goroutine may still be asleep between its "am I running"
// check and a LoadCommit, and CometBFT panics on any read error: seen as
// "panic: leveldb: closed" when a validator of a testnet stops.
type closeTolerantDB struct {
	dbm.DB
	mu     sync.RWMutex
	closed bool
}

func (d *closeTolerantDB) Get(key []byte) ([]byte, error) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	if d.closed {
		return nil, nil
	}
	return d.DB.Get(key)
}

func (d *closeTolerantDB) Has(key []byte) (bool, error) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	if d.closed {
		return false, nil
	}
	return d.DB.Has(key)
}

func (d *closeTolerantDB) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return nil
	}
	d.closed = true
	return d.DB.Close()
}

func (d *dbTracker) closeUnclosed() {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, db := range d.opened {
		_ = db.Close() // may already be closed after a failed start
	}
	d.opened = nil
}
