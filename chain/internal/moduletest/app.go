package moduletest

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"testing"
	"time"

	dbm "github.com/cometbft/cometbft-db"
	abci "github.com/cometbft/cometbft/abci/types"

	"github.com/integritee-go/integritee/chain"
	"github.com/integritee-go/integritee/chain/accounts"
	"github.com/integritee-go/integritee/chain/codec"
	"github.com/integritee-go/integritee/chain/runtime"
	"github.com/integritee-go/integritee/chain/store"
	"github.com/integritee-go/integritee/chain/teerex"
	"github.com/integritee-go/integritee/chain/tx"
	"github.com/integritee-go/integritee/chain/types"
)

// AppGenesis is what an App starts from: the dev accounts genesis and
// Teerex, with one validator.
type AppGenesis struct {
	ChainID string
	Dev     bool
	Time    time.Time
	// Teerex is the teerex entry; nil: none.
	Teerex *teerex.GenesisState
	// Validators is the seed of the validator (Validators); "": ChainID.
	Validators string
	// Modules makes the runtime (e.g. node.Modules); nil: accounts only.
	// A function, so that Reopen gets a fresh one as a restarted node does.
	Modules func() []runtime.Module
}

// App is the ABCI application on an in-memory store, driven block by
// block without CometBFT.
type App struct {
	T    testing.TB
	ABCI *chain.App
	DB   dbm.DB
	// Genesis is the chain's genesis ID, which enclaves commit to.
	Genesis types.Hash
	Height  int64
	// Nonces are the next nonces of the senders of Sign.
	Nonces map[tx.Address]uint64
	// Events are the block events (not the transactions') of the last block.
	Events []abci.Event
	g      AppGenesis
}

// NewApp runs InitChain of g on a fresh in-memory store.
func NewApp(t testing.TB, g AppGenesis) *App {
	t.Helper()
	if g.Validators == "" {
		g.Validators = g.ChainID
	}
	a := &App{T: t, DB: dbm.NewMemDB(), Nonces: map[tx.Address]uint64{}, g: g}
	a.Reopen()
	mods := map[string]json.RawMessage{accounts.Name: mustJSON(t, accounts.DevGenesis())}
	if g.Teerex != nil {
		mods[teerex.Name] = mustJSON(t, g.Teerex)
	}
	state := mustJSON(t, chain.AppState{Dev: g.Dev, Modules: mods})
	vals, valsHash := Validators(g.Validators, 1)
	a.Genesis = teerex.GenesisID(g.ChainID, 1, valsHash)
	if _, err := a.ABCI.InitChain(context.Background(), &abci.RequestInitChain{
		ChainId: g.ChainID, Time: g.Time, InitialHeight: 1, AppStateBytes: state, Validators: vals,
	}); err != nil {
		t.Fatal(err)
	}
	return a
}

func mustJSON(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Reopen replaces the application by a new one on the committed state, as
// a restarted node has.
func (a *App) Reopen() {
	a.T.Helper()
	st, err := store.Open(a.DB)
	if err != nil {
		a.T.Fatal(err)
	}
	var mods []runtime.Module
	if a.g.Modules != nil {
		mods = a.g.Modules()
	}
	if a.ABCI, err = chain.New(chain.Options{ChainID: a.g.ChainID, Store: st, Modules: mods}); err != nil {
		a.T.Fatal(err)
	}
}

// Sign is a transaction of call by key with its next nonce and a fee well
// above the dev minimum.
func (a *App) Sign(key ed25519.PrivateKey, call tx.Call) []byte {
	a.T.Helper()
	sender := tx.AddressOf(key.Public().(ed25519.PublicKey))
	body := tx.Body{ChainID: a.g.ChainID, Sender: sender, Nonce: a.Nonces[sender], Fee: accounts.Unit / 100, Call: call}
	a.Nonces[sender]++
	s, err := tx.Sign(body, key)
	if err != nil {
		a.T.Fatal(err)
	}
	raw, err := s.Encode()
	if err != nil {
		a.T.Fatal(err)
	}
	return raw
}

// SignDev is Sign by dev account name.
func (a *App) SignDev(name string, call tx.Call) []byte {
	a.T.Helper()
	return a.Sign(accounts.DevKey(name), call)
}

// BlockAt finalizes and commits the next block at time at.
func (a *App) BlockAt(at time.Time, txs ...[]byte) []*abci.ExecTxResult {
	a.T.Helper()
	a.Height++
	ctx := context.Background()
	res, err := a.ABCI.FinalizeBlock(ctx, &abci.RequestFinalizeBlock{Height: a.Height, Hash: BlockHash(a.Height), Time: at, Txs: txs})
	if err != nil {
		a.T.Fatal(err)
	}
	if _, err := a.ABCI.Commit(ctx, &abci.RequestCommit{}); err != nil {
		a.T.Fatal(err)
	}
	a.Events = res.Events
	return res.TxResults
}

// Block is BlockAt one second per block after genesis.
func (a *App) Block(txs ...[]byte) []*abci.ExecTxResult {
	a.T.Helper()
	return a.BlockAt(a.g.Time.Add(time.Duration(a.Height+1)*time.Second), txs...)
}

// OKBlock is Block, failing on any failed transaction.
func (a *App) OKBlock(txs ...[]byte) []*abci.ExecTxResult {
	a.T.Helper()
	res := a.Block(txs...)
	WantOK(a.T, res)
	return res
}

// CheckTx runs CheckTx.
func (a *App) CheckTx(raw []byte) *abci.ResponseCheckTx {
	a.T.Helper()
	res, err := a.ABCI.CheckTx(context.Background(), &abci.RequestCheckTx{Tx: raw})
	if err != nil {
		a.T.Fatal(err)
	}
	return res
}

// Query reads a committed value into v and reports whether it exists.
func (a *App) Query(path string, v any) bool {
	a.T.Helper()
	return a.query(path, false, v)
}

// QueryProved is Query with a proof, which the application must be able
// to make.
func (a *App) QueryProved(path string, v any) bool {
	a.T.Helper()
	return a.query(path, true, v)
}

func (a *App) query(path string, prove bool, v any) bool {
	a.T.Helper()
	res, err := a.ABCI.Query(context.Background(), &abci.RequestQuery{Path: path, Prove: prove})
	if err != nil || res.Code != 0 {
		a.T.Fatalf("query %s: %v %s/%d %s", path, err, res.GetCodespace(), res.GetCode(), res.GetLog())
	}
	if len(res.Value) == 0 {
		return false
	}
	if err := codec.Unmarshal(res.Value, v); err != nil {
		a.T.Fatalf("query %s: %v", path, err)
	}
	return true
}

// Account is the committed account of addr (zero if none).
func (a *App) Account(addr tx.Address) accounts.Account {
	a.T.Helper()
	var acc accounts.Account
	a.Query("/accounts/"+addr.String(), &acc)
	return acc
}

// Balance is the committed balance of addr.
func (a *App) Balance(addr tx.Address) uint64 {
	a.T.Helper()
	return a.Account(addr).Balance
}

// WantOK fails on any failed transaction result.
func WantOK(t testing.TB, res []*abci.ExecTxResult) {
	t.Helper()
	for i, r := range res {
		if r.Code != 0 {
			t.Fatalf("tx %d: %s/%d %s", i, r.Codespace, r.Code, r.Log)
		}
	}
}

// WantCode checks that a result carries the error's codespace and code.
func WantCode(t testing.TB, space string, code uint32, log string, want *types.Error) {
	t.Helper()
	if space != want.Codespace || code != want.Code {
		t.Fatalf("got %s/%d %q, want %s/%d (%s)", space, code, log, want.Codespace, want.Code, want.Msg)
	}
}
