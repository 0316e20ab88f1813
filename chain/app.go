// Package chain is the ABCI++ application of integritee-node: it decodes and
// validates transactions, runs them through the runtime modules on a
// Merkle-ized store, and answers queries with proofs.
//
// Fee policy. A transaction that fails validation (size, encoding,
// signature, chain ID, nonce, fee, unknown or malformed call; the codes in
// chain/types/errors.go) is rejected by CheckTx, dropped by PrepareProposal
// and, should a faulty proposer include it anyway, recorded in the block with
// its error code without any state change: it pays nothing. A transaction that
// passes validation has its fee charged and its nonce consumed before its call
// runs; if the call then fails (e.g. a transfer beyond the balance that was
// left after an earlier transaction of the same block), all of the call's
// writes are dropped, the fee stays charged, and the result carries the
// module's error code. CheckTx runs the call too, so that a call bound to
// fail is refused for free, except where the module defers an expensive
// call (runtime.Prechecker): then CheckTx checks it cheaply and the block
// runs it, charging the fee whatever the outcome.
//
// Panics. A panic while handling a transaction (a bug in a parser or a
// module) is recovered, logged, and the transaction is dropped whole with
// ErrPanic, a validation code: nothing it wrote stays, no fee, and the
// block goes on. A panic in a module's EndBlock drops that module's writes
// of the block.
//
// State of the application itself, besides the modules' (values raw):
//
//	app/dev                  0x01 on a dev chain
//	app/genesis              the genesis ID (teerex.GenesisID), from InitChain
//	app/block/<8-byte h>     hash of block h, for the last runtime.BlockHashWindow blocks
//
// Query /app/genesis proves the genesis ID.
package chain

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	abci "github.com/cometbft/cometbft/abci/types"
	"github.com/cometbft/cometbft/crypto/tmhash"
	cmtcrypto "github.com/cometbft/cometbft/proto/tendermint/crypto"
	cmttypes "github.com/cometbft/cometbft/types"

	accountskeeper "github.com/integritee-go/integritee/chain/accounts/keeper"
	"github.com/integritee-go/integritee/chain/runtime"
	"github.com/integritee-go/integritee/chain/store"
	"github.com/integritee-go/integritee/chain/teerex"
	"github.com/integritee-go/integritee/chain/tx"
	"github.com/integritee-go/integritee/chain/types"
)

// Version is the application's software version.
const Version = "0.1.0"

// AppVersion is the version of the state machine rules; it changes only
// with a consensus-breaking change. 2: the genesis ID and block hashes in
// state, one confirmed chain of shard blocks with proved unshields, one
// key per registry entry and per enclave confirmation (no migration from
// 1: start a new genesis). 3: ed25519 signatures checked by the cofactored
// equation (internal/ed25519x), which takes signatures with a small-order
// component that 2 refused, so a block may be valid under 3 and not 2 (no
// migration from 2: start a new genesis). 4: sidechain
// confirm_sidechain_blocks, an enclave's votes for a run of shard blocks
// in one transaction, which 3 refuses (no migration from 3: start a new
// genesis).
const AppVersion uint64 = 4

var keyDev = []byte("app/dev")

// AppState is the app_state of genesis.json: the dev flag and one entry per
// module, keyed by module name.
type AppState struct {
	Dev     bool                       `json:"dev"`
	Modules map[string]json.RawMessage `json:"-"`
}

// MarshalJSON flattens the module entries next to "dev".
func (s AppState) MarshalJSON() ([]byte, error) {
	m := make(map[string]any, len(s.Modules)+1)
	for k, v := range s.Modules {
		m[k] = v
	}
	m["dev"] = s.Dev
	return json.Marshal(m)
}

// UnmarshalJSON reads "dev" and keeps the other keys as module entries.
func (s *AppState) UnmarshalJSON(b []byte) error {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		return err
	}
	s.Dev = false
	if raw, ok := m["dev"]; ok {
		if err := json.Unmarshal(raw, &s.Dev); err != nil {
			return fmt.Errorf("app_state.dev: %w", err)
		}
		delete(m, "dev")
	}
	s.Modules = m
	return nil
}

// Options configure an App.
type Options struct {
	// ChainID must equal the genesis chain ID.
	ChainID string
	// Store is the state; open it with store.Open on the node's database.
	Store *store.Store
	// Logger receives the app's logs; nil discards them.
	Logger *slog.Logger
	// Modules are the runtime modules besides accounts, which is always
	// present because it admits transactions (nonces and fees).
	Modules []runtime.Module
	// Metrics, if set, count the app's transactions, events and
	// attestation verifications (NewMetrics).
	Metrics *Metrics
}

// App is the ABCI++ application. CometBFT calls it through a local client;
// its own mutex makes it safe for any caller.
type App struct {
	abci.BaseApplication

	mu        sync.Mutex
	log       *slog.Logger
	chainID   string
	store     *store.Store
	accounts  *accountskeeper.Module
	modules   map[string]runtime.Module
	ordered   []runtime.Module
	dev       bool
	genesisID [32]byte  // teerex.GenesisID of this chain, from InitChain or the state
	lastTime  time.Time // time of the last block (genesis time before it): CheckTx's clock
	metrics   *Metrics  // nil: none
	verified  *verifiedTxs

	genesis    *store.Cache   // InitChain's writes, carried into the first block
	pending    *store.Pending // FinalizeBlock's result, written by Commit
	checkState *store.Cache   // CheckTx's view: committed state + admitted txs
}

var _ abci.Application = (*App)(nil)

// New returns the application on opts.Store.
func New(opts Options) (*App, error) {
	if opts.ChainID == "" {
		return nil, errors.New("chain: empty chain id")
	}
	if opts.Store == nil {
		return nil, errors.New("chain: nil store")
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	acc := accountskeeper.New()
	a := &App{
		log:      log,
		verified: newVerifiedTxs(verifiedCap),
		chainID:  opts.ChainID,
		store:    opts.Store,
		accounts: acc,
		modules:  map[string]runtime.Module{acc.Name(): acc},
		ordered:  []runtime.Module{acc},
		metrics:  opts.Metrics,
	}
	for _, m := range opts.Modules {
		if _, dup := a.modules[m.Name()]; dup || m.Name() == "dev" || m.Name() == "app" {
			return nil, fmt.Errorf("chain: module name %q taken", m.Name())
		}
		a.modules[m.Name()] = m
		a.ordered = append(a.ordered, m)
	}
	dev, err := opts.Store.Get(keyDev)
	if err != nil {
		return nil, err
	}
	a.dev = len(dev) == 1 && dev[0] == 1
	gid, err := opts.Store.Get(runtime.GenesisKey())
	if err != nil {
		return nil, fmt.Errorf("chain: read genesis ID: %w", err)
	}
	switch {
	case len(gid) == len(a.genesisID):
		a.genesisID = [32]byte(gid)
	case gid != nil || opts.Store.Version() > 0:
		// Modules would check registrations against a zero ID.
		return nil, fmt.Errorf("chain: state at height %d has no 32-byte genesis ID (found %d bytes)", opts.Store.Version(), len(gid))
	}
	a.checkState = store.NewCache(a.store)
	return a, nil
}

// Info reports the last committed height and app hash so that CometBFT's
// handshake replays only the blocks the app has not committed.
func (a *App) Info(context.Context, *abci.RequestInfo) (*abci.ResponseInfo, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	res := &abci.ResponseInfo{
		Data:            "integritee-node",
		Version:         Version,
		AppVersion:      AppVersion,
		LastBlockHeight: a.store.Version(),
	}
	if res.LastBlockHeight > 0 {
		res.LastBlockAppHash = a.store.Root()
	}
	return res, nil
}

// InitChain applies the genesis app_state. Its writes are committed with the
// first block, so a crash before that block simply runs InitChain again.
func (a *App) InitChain(_ context.Context, req *abci.RequestInitChain) (*abci.ResponseInitChain, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if req.ChainId != a.chainID {
		return nil, fmt.Errorf("init chain: genesis chain id %q, app configured for %q", req.ChainId, a.chainID)
	}
	if a.store.Version() != 0 {
		return nil, fmt.Errorf("init chain: state already at height %d", a.store.Version())
	}
	var st AppState
	if err := json.Unmarshal(req.AppStateBytes, &st); err != nil {
		return nil, fmt.Errorf("init chain: app_state: %w", err)
	}
	gid, err := genesisID(req)
	if err != nil {
		return nil, fmt.Errorf("init chain: %w", err)
	}
	for name := range st.Modules {
		if _, ok := a.modules[name]; !ok {
			return nil, fmt.Errorf("init chain: app_state has unknown module %q", name)
		}
	}
	g := store.NewCache(a.store)
	if st.Dev {
		g.Set(keyDev, []byte{1})
	}
	g.Set(runtime.GenesisKey(), gid[:])
	ctx := &runtime.Context{Store: g, ChainID: a.chainID, Height: req.InitialHeight, Time: req.Time, Dev: st.Dev, Genesis: gid, Logger: a.log}
	for _, m := range a.ordered {
		gm, ok := m.(runtime.Genesis)
		if !ok {
			continue
		}
		var raw []byte
		if r, ok := st.Modules[m.Name()]; ok {
			raw = r
		}
		if err := gm.InitGenesis(ctx, raw); err != nil {
			return nil, fmt.Errorf("init chain: %w", err)
		}
	}
	p, err := a.store.Prepare(max(req.InitialHeight, 1), g.Changes())
	if err != nil {
		return nil, fmt.Errorf("init chain: %w", err)
	}
	a.genesis, a.dev, a.genesisID = g, st.Dev, gid
	// Until the first block, CheckTx verifies at the genesis time.
	a.lastTime = req.Time
	a.checkState = store.NewCache(g)
	a.log.Info("genesis applied", "chain_id", a.chainID, "dev", st.Dev, "genesis_id", fmt.Sprintf("%X", gid), "app_hash", fmt.Sprintf("%X", p.Root()))
	return &abci.ResponseInitChain{AppHash: p.Root()}, nil
}

// genesisID computes teerex.GenesisID of the chain that req starts: the
// hash of its genesis validator set is what CometBFT puts in the header at
// the initial height (the app returns no validators of its own, so
// req.Validators are the chain's).
func genesisID(req *abci.RequestInitChain) ([32]byte, error) {
	if len(req.Validators) == 0 {
		return [32]byte{}, errors.New("genesis has no validators: the chain would have no genesis ID for enclaves to follow")
	}
	vals, err := cmttypes.PB2TM.ValidatorUpdates(req.Validators)
	if err != nil {
		return [32]byte{}, fmt.Errorf("genesis validators: %w", err)
	}
	// NewValidatorSet panics on an invalid set; an update of an empty
	// set reports the same problems (duplicates, bad power) as an error.
	set := cmttypes.NewValidatorSet(nil)
	if err := set.UpdateWithChangeSet(vals); err != nil {
		return [32]byte{}, fmt.Errorf("genesis validators: %w", err)
	}
	return [32]byte(teerex.GenesisID(req.ChainId, req.InitialHeight, set.Hash())), nil
}

// RestoreLastBlockTime sets the time that CheckTx runs at (the last block's
// time) after a restart, when no block has been finalized since the app
// was created: the node calls it after CometBFT's handshake with the header
// time of the last committed block. Without it, time-dependent checks such
// as attestation verification would see the zero time until the next
// block. A time the app already has from InitChain or FinalizeBlock wins.
func (a *App) RestoreLastBlockTime(t time.Time) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.lastTime.IsZero() {
		a.lastTime = t
	}
}

// base returns the state that the next block starts from.
func (a *App) base() *store.Cache {
	if a.genesis != nil {
		return a.genesis
	}
	return store.NewCache(a.store)
}

// CheckTx admits a transaction to the mempool only if it would pass
// validation and its call would succeed on the committed state plus the
// transactions already admitted. Calls that a module's Precheck defers
// (expensive ones, such as a registration's attestation) are only checked
// cheaply here: they pay their fee in the block even if they fail there.
func (a *App) CheckTx(_ context.Context, req *abci.RequestCheckTx) (*abci.ResponseCheckTx, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	branch := a.checkState.Branch()
	ctx := a.context(branch, a.store.Version()+1, a.lastTime)
	res, err := a.deliver(ctx, req.Tx, modeCheck)
	if err != nil {
		// The node, not the transaction, failed (e.g. its store is being
		// closed at shutdown). CometBFT panics on an error from a mempool
		// recheck, so answer with the internal code: the transaction is
		// refused and nothing changes.
		a.log.Error("check tx", "err", err)
		if a.metrics != nil {
			a.metrics.checked(types.ErrInternal.Codespace, types.ErrInternal.Code)
		}
		return &abci.ResponseCheckTx{Code: types.ErrInternal.Code, Codespace: types.ErrInternal.Codespace, Log: types.ErrInternal.Msg}, nil
	}
	if a.metrics != nil {
		a.metrics.checked(res.Codespace, res.Code)
	}
	if res.Code != abci.CodeTypeOK {
		return &abci.ResponseCheckTx{Code: res.Code, Codespace: res.Codespace, Log: res.Log}, nil
	}
	branch.Write()
	return &abci.ResponseCheckTx{Code: abci.CodeTypeOK, GasWanted: 1}, nil
}

// PrepareProposal drops the transactions that would fail validation at this
// height (e.g. a nonce gap after a mempool eviction), so that blocks carry
// only transactions that pay their fee.
func (a *App) PrepareProposal(_ context.Context, req *abci.RequestPrepareProposal) (*abci.ResponsePrepareProposal, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	ctx := a.context(a.base().Branch(), req.Height, req.Time)
	var (
		out   [][]byte
		total int64
	)
	for _, raw := range req.Txs {
		if total+int64(len(raw)) > req.MaxTxBytes {
			break
		}
		res, err := a.deliver(ctx, raw, modeBlock)
		if err != nil {
			return nil, err
		}
		if res.Code != abci.CodeTypeOK && res.Codespace == types.CodespaceApp {
			continue
		}
		out = append(out, raw)
		total += int64(len(raw))
	}
	return &abci.ResponsePrepareProposal{Txs: out}, nil
}

// ProcessProposal rejects a proposal carrying a transaction that can never be
// valid (oversized, malformed, badly signed, for another chain, unknown or
// malformed call). Stateful failures are left to FinalizeBlock, which records
// them without state change.
func (a *App) ProcessProposal(_ context.Context, req *abci.RequestProcessProposal) (*abci.ResponseProcessProposal, error) {
	for i, raw := range req.Txs {
		if err := a.decodeGuarded(raw); err != nil {
			a.log.Warn("rejecting proposal", "height", req.Height, "tx", i, "err", err)
			return &abci.ResponseProcessProposal{Status: abci.ResponseProcessProposal_REJECT}, nil
		}
	}
	return &abci.ResponseProcessProposal{Status: abci.ResponseProcessProposal_ACCEPT}, nil
}

// FinalizeBlock executes the block's transactions, records the block's
// hash (runtime.Context.BlockHash) and computes the app hash; Commit then
// writes it.
func (a *App) FinalizeBlock(_ context.Context, req *abci.RequestFinalizeBlock) (*abci.ResponseFinalizeBlock, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(req.Hash) != tmhash.Size {
		return nil, fmt.Errorf("finalize block %d: block hash of %d bytes, want %d", req.Height, len(req.Hash), tmhash.Size)
	}
	block := a.base()
	ctx := a.context(block, req.Height, req.Time)
	results := make([]*abci.ExecTxResult, len(req.Txs))
	for i, raw := range req.Txs {
		res, err := a.deliver(ctx, raw, modeBlock)
		if err != nil {
			return nil, fmt.Errorf("finalize block %d tx %d: %w", req.Height, i, err)
		}
		results[i] = res
	}
	events, err := a.endBlock(ctx)
	if err != nil {
		return nil, fmt.Errorf("finalize block %d: %w", req.Height, err)
	}
	// Written after the transactions, so that none of them sees its own
	// block's hash: CheckTx and PrepareProposal could not.
	block.Set(runtime.BlockHashKey(req.Height), req.Hash)
	if old := req.Height - runtime.BlockHashWindow; old > 0 {
		block.Delete(runtime.BlockHashKey(old))
	}
	p, err := a.store.Prepare(req.Height, block.Changes())
	if err != nil {
		return nil, fmt.Errorf("finalize block %d: %w", req.Height, err)
	}
	a.pending, a.lastTime = p, req.Time
	if a.metrics != nil {
		a.metrics.finalized(req.Txs, results, events, a.txModule)
	}
	return &abci.ResponseFinalizeBlock{TxResults: results, Events: events, AppHash: p.Root()}, nil
}

// Commit writes the finalized block's state durably.
func (a *App) Commit(context.Context, *abci.RequestCommit) (*abci.ResponseCommit, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.pending == nil {
		return nil, errors.New("commit: no finalized block")
	}
	if err := a.store.Commit(a.pending); err != nil {
		return nil, err
	}
	lvl := slog.LevelDebug
	if n := a.pending.Version(); n%100 == 0 {
		lvl = slog.LevelInfo
	}
	a.log.Log(context.Background(), lvl, "committed", "height", a.pending.Version(), "app_hash", fmt.Sprintf("%X", a.pending.Root()))
	a.pending, a.genesis = nil, nil
	a.checkState = store.NewCache(a.store)
	return &abci.ResponseCommit{}, nil
}

// Query answers /<module>/<path...> with the value of the module's key at
// the requested height (0: latest) and, if asked, its Merkle proof against
// the app hash of that height (found in the header of the next block).
// /app/genesis is the application's own: the chain's genesis ID.
func (a *App) Query(_ context.Context, req *abci.RequestQuery) (*abci.ResponseQuery, error) {
	fail := func(err error) (*abci.ResponseQuery, error) {
		space, code, log := types.ABCIInfo(err)
		return &abci.ResponseQuery{Code: code, Codespace: space, Log: log, Height: req.Height}, nil
	}
	key, err := a.queryKey(req.Path)
	if err != nil {
		return fail(err)
	}
	got, err := a.store.GetWithProof(key, req.Height)
	if errors.Is(err, store.ErrVersionNotFound) {
		return fail(fmt.Errorf("%w: %w", types.ErrHeightUnavailable, err))
	}
	if err != nil {
		return fail(err)
	}
	res := &abci.ResponseQuery{Key: key, Value: got.Value, Height: got.Version}
	if req.Prove {
		op, err := got.Proof.ProofOp(key)
		if err != nil {
			return fail(err)
		}
		res.ProofOps = &cmtcrypto.ProofOps{Ops: []cmtcrypto.ProofOp{op}}
	}
	return res, nil
}

// queryKey maps a query path to the state key that answers it.
func (a *App) queryKey(path string) ([]byte, error) {
	segs := strings.Split(strings.Trim(path, "/"), "/")
	if segs[0] == "app" {
		if len(segs) == 2 && segs[1] == "genesis" {
			return runtime.GenesisKey(), nil
		}
		return nil, fmt.Errorf("%w: path %q: want /app/genesis", types.ErrBadQuery, path)
	}
	m, ok := a.modules[segs[0]]
	if !ok {
		return nil, fmt.Errorf("%w: no module for path %q", types.ErrBadQuery, path)
	}
	key, err := m.QueryKey(segs[1:])
	if err != nil {
		return nil, fmt.Errorf("%w: %w", types.ErrBadQuery, err)
	}
	return key, nil
}

func (a *App) context(kv *store.Cache, height int64, t time.Time) *runtime.Context {
	ctx := &runtime.Context{Store: kv, ChainID: a.chainID, Height: height, Time: t, Dev: a.dev, Genesis: a.genesisID, Logger: a.log}
	if a.metrics != nil {
		ctx.Observer = a.metrics
	}
	return ctx
}

// decode runs the stateless checks.
func (a *App) decode(raw []byte) (*tx.SignedTx, runtime.Module, runtime.Msg, error) {
	stx, err := tx.Decode(raw)
	switch {
	case errors.Is(err, tx.ErrTooLarge):
		return nil, nil, nil, types.Wrap(types.ErrTxTooLarge, err)
	case err != nil:
		return nil, nil, nil, types.Wrap(types.ErrTxMalformed, err)
	}
	if stx.Body.ChainID != a.chainID {
		return nil, nil, nil, fmt.Errorf("%w: %q, this chain is %q", types.ErrWrongChainID, stx.Body.ChainID, a.chainID)
	}
	// Checked once per node, not at every step of the transaction's way
	// into a block (verifiedTxs).
	if h := tx.Hash(raw); !a.verified.has(h) {
		if err := stx.Verify(); err != nil {
			return nil, nil, nil, types.Wrap(types.ErrBadSignature, err)
		}
		a.verified.add(h)
	}
	m, ok := a.modules[stx.Body.Call.Module]
	if !ok {
		return nil, nil, nil, fmt.Errorf("%w: no module %q", types.ErrUnknownCall, stx.Body.Call.Module)
	}
	msg, err := m.DecodeCall(stx.Body.Call)
	if err != nil {
		var re *types.Error
		if !errors.As(err, &re) {
			err = fmt.Errorf("%w: %w", types.ErrMalformedCall, err)
		}
		return nil, nil, nil, err
	}
	return stx, m, msg, nil
}

// mode tells deliver who runs it.
type mode int

const (
	// modeBlock executes every call: FinalizeBlock, and PrepareProposal
	// predicting it.
	modeBlock mode = iota
	// modeCheck is CheckTx's: calls that a module's Precheck defers are
	// checked cheaply, not executed.
	modeCheck
)

// deliver validates and executes one transaction on ctx.Store. A validation
// failure changes nothing; a call failure keeps the fee and nonce change. A
// panic anywhere in the transaction's handling is a bug of the node, not a
// verdict on the transaction: it is logged and the transaction dropped
// whole with ErrPanic, the same on every validator, instead of halting
// consensus. Only internal failures (which must halt the node) are
// returned as error.
func (a *App) deliver(ctx *runtime.Context, raw []byte, m mode) (res *abci.ExecTxResult, err error) {
	kv, ok := ctx.Store.(*store.Cache)
	if !ok {
		return nil, errors.New("deliver: state is not a cache")
	}
	// Everything the transaction writes, fee included, goes through one
	// branch, so that a panic leaves nothing behind.
	txw := kv.Branch()
	defer func() {
		if p := recover(); p != nil {
			a.log.Error("transaction panicked", "height", ctx.Height, "tx", fmt.Sprintf("%X", tmhash.Sum(raw)),
				"panic", p, "stack", string(debug.Stack()))
			res, err = result(fmt.Errorf("%w: %v", types.ErrPanic, p))
		}
	}()
	res, err = a.execute(ctx.WithStore(txw), raw, m)
	if err == nil {
		txw.Write()
	}
	return res, err
}

// execute is deliver without the panic guard, on a branch of its own.
func (a *App) execute(ctx *runtime.Context, raw []byte, m mode) (*abci.ExecTxResult, error) {
	kv := ctx.Store.(*store.Cache)
	stx, mod, msg, err := a.decode(raw)
	if err != nil {
		return result(err)
	}
	ante := kv.Branch()
	actx := ctx.WithStore(ante)
	actx.Sender = stx.Body.Sender
	if err := a.accounts.Keeper.Ante(actx, &stx.Body, len(raw)); err != nil {
		return result(err)
	}
	ante.Write()
	call := kv.Branch()
	cctx := ctx.WithStore(call)
	cctx.Sender = stx.Body.Sender
	if pc, ok := mod.(runtime.Prechecker); ok && m == modeCheck {
		deferred, err := pc.Precheck(cctx, msg)
		if err != nil {
			return result(err)
		}
		if deferred {
			// Admitted on its fee: the block runs the call, and a
			// failure there still pays.
			return &abci.ExecTxResult{Code: abci.CodeTypeOK, Events: actx.Events()}, nil
		}
	}
	if err := mod.Execute(cctx, msg); err != nil {
		res, ierr := result(err)
		if ierr != nil {
			return nil, ierr
		}
		res.Events = actx.Events()
		return res, nil
	}
	call.Write()
	return &abci.ExecTxResult{Code: abci.CodeTypeOK, Data: cctx.Data(), Events: append(actx.Events(), cctx.Events()...)}, nil
}

// decodeGuarded is decode for ProcessProposal: a panic while decoding
// (a bug) makes the transaction invalid, as CheckTx found it.
func (a *App) decodeGuarded(raw []byte) (err error) {
	defer func() {
		if p := recover(); p != nil {
			a.log.Error("transaction decoding panicked", "tx", fmt.Sprintf("%X", tmhash.Sum(raw)),
				"panic", p, "stack", string(debug.Stack()))
			err = fmt.Errorf("%w: %v", types.ErrPanic, p)
		}
	}()
	_, _, _, err = a.decode(raw)
	return err
}

// endBlock runs the modules' EndBlock hooks, in module order, each on a
// branch of the block's state. A panic in one drops that module's writes
// and is logged; the block goes on, the same on every validator.
func (a *App) endBlock(ctx *runtime.Context) ([]abci.Event, error) {
	kv, ok := ctx.Store.(*store.Cache)
	if !ok {
		return nil, errors.New("end block: state is not a cache")
	}
	var events []abci.Event
	for _, m := range a.ordered {
		eb, ok := m.(runtime.EndBlocker)
		if !ok {
			continue
		}
		b := kv.Branch()
		mctx := ctx.WithStore(b)
		panicked, err := func() (panicked bool, err error) {
			defer func() {
				if p := recover(); p != nil {
					a.log.Error("end block panicked", "module", m.Name(), "height", ctx.Height,
						"panic", p, "stack", string(debug.Stack()))
					panicked = true
				}
			}()
			return false, eb.EndBlock(mctx)
		}()
		if err != nil {
			return nil, fmt.Errorf("end block of %s: %w", m.Name(), err)
		}
		if !panicked {
			b.Write()
			events = append(events, mctx.Events()...)
		}
	}
	return events, nil
}

// result turns a rejection into a result; an error that is no
// *types.Error is an internal failure and returned as such.
func result(err error) (*abci.ExecTxResult, error) {
	var re *types.Error
	if !errors.As(err, &re) {
		return nil, err
	}
	space, code, log := types.ABCIInfo(err)
	return &abci.ExecTxResult{Code: code, Codespace: space, Log: log}, nil
}
