package e2e_test

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
	"github.com/integritee-go/integritee/chain/internal/moduletest"
	"github.com/integritee-go/integritee/chain/node"
	"github.com/integritee-go/integritee/chain/sidechain"
	"github.com/integritee-go/integritee/chain/store"
	"github.com/integritee-go/integritee/chain/teerex"
	"github.com/integritee-go/integritee/chain/tx"
	"github.com/integritee-go/integritee/chain/types"
)

const appChainID = "e2e-app"

// appChain is the ABCI application on an in-memory store with the node's
// runtime, driven block by block with explicit times.
type appChain struct {
	t      testing.TB
	db     dbm.DB
	app    *chain.App
	height int64
	nonces map[tx.Address]uint64
	// genesis is the chain's genesis ID, which enclaves commit to.
	genesis types.Hash
	// events are the block events (not the transactions') of the last block.
	events []abci.Event
}

// newAppChain runs InitChain at genesisTime with the dev accounts genesis
// (Alice sudo, dev accounts funded) and the given teerex genesis.
func newAppChain(t testing.TB, dev bool, genesisTime time.Time, tg teerex.GenesisState) *appChain {
	t.Helper()
	c := &appChain{t: t, db: dbm.NewMemDB(), nonces: map[tx.Address]uint64{}}
	c.reopen()
	ag, err := json.Marshal(accounts.DevGenesis())
	if err != nil {
		t.Fatal(err)
	}
	tgj, err := json.Marshal(tg)
	if err != nil {
		t.Fatal(err)
	}
	state, err := json.Marshal(chain.AppState{Dev: dev, Modules: map[string]json.RawMessage{accounts.Name: ag, teerex.Name: tgj}})
	if err != nil {
		t.Fatal(err)
	}
	vals, valsHash := moduletest.Validators("e2e app", 1)
	c.genesis = teerex.GenesisID(appChainID, 1, valsHash)
	if _, err := c.app.InitChain(context.Background(), &abci.RequestInitChain{
		ChainId: appChainID, Time: genesisTime, InitialHeight: 1, AppStateBytes: state, Validators: vals,
	}); err != nil {
		t.Fatal(err)
	}
	return c
}

// reopen replaces the application by a new one on the committed state, as
// a restarted node has.
func (c *appChain) reopen() {
	c.t.Helper()
	st, err := store.Open(c.db)
	if err != nil {
		c.t.Fatal(err)
	}
	a, err := chain.New(chain.Options{ChainID: appChainID, Store: st, Modules: node.Modules()})
	if err != nil {
		c.t.Fatal(err)
	}
	c.app = a
}

// sign builds a transaction of key with its next nonce and a generous fee.
func (c *appChain) sign(key ed25519.PrivateKey, module, method string, args any) []byte {
	c.t.Helper()
	call, err := tx.NewCall(module, method, args)
	if err != nil {
		c.t.Fatal(err)
	}
	return c.signCall(key, call)
}

// signCall is sign of a built call.
func (c *appChain) signCall(key ed25519.PrivateKey, call tx.Call) []byte {
	c.t.Helper()
	sender := tx.AddressOf(key.Public().(ed25519.PublicKey))
	body := tx.Body{ChainID: appChainID, Sender: sender, Nonce: c.nonces[sender], Fee: accounts.Unit / 100, Call: call}
	c.nonces[sender]++
	s, err := tx.Sign(body, key)
	if err != nil {
		c.t.Fatal(err)
	}
	raw, err := s.Encode()
	if err != nil {
		c.t.Fatal(err)
	}
	return raw
}

// block finalizes and commits the next block at time at.
func (c *appChain) block(at time.Time, txs ...[]byte) []*abci.ExecTxResult {
	c.t.Helper()
	c.height++
	ctx := context.Background()
	res, err := c.app.FinalizeBlock(ctx, &abci.RequestFinalizeBlock{Height: c.height, Hash: moduletest.BlockHash(c.height), Time: at, Txs: txs})
	if err != nil {
		c.t.Fatal(err)
	}
	if _, err := c.app.Commit(ctx, &abci.RequestCommit{}); err != nil {
		c.t.Fatal(err)
	}
	c.events = res.Events
	return res.TxResults
}

// checkTx runs CheckTx.
func (c *appChain) checkTx(raw []byte) *abci.ResponseCheckTx {
	c.t.Helper()
	res, err := c.app.CheckTx(context.Background(), &abci.RequestCheckTx{Tx: raw})
	if err != nil {
		c.t.Fatal(err)
	}
	return res
}

// query reads a committed value into v and reports whether it exists.
func (c *appChain) query(path string, v any) bool {
	c.t.Helper()
	res, err := c.app.Query(context.Background(), &abci.RequestQuery{Path: path})
	if err != nil || res.Code != 0 {
		c.t.Fatalf("query %s: %v %s/%d %s", path, err, res.GetCodespace(), res.GetCode(), res.GetLog())
	}
	if len(res.Value) == 0 {
		return false
	}
	if err := codec.Unmarshal(res.Value, v); err != nil {
		c.t.Fatalf("query %s: %v", path, err)
	}
	return true
}

func (c *appChain) account(a tx.Address) accounts.Account {
	c.t.Helper()
	var acc accounts.Account
	c.query("/accounts/"+a.String(), &acc)
	return acc
}

// wantOK fails on any failed transaction result.
func wantOK(t testing.TB, res []*abci.ExecTxResult) {
	t.Helper()
	for i, r := range res {
		if r.Code != 0 {
			t.Fatalf("tx %d: %s/%d %s", i, r.Codespace, r.Code, r.Log)
		}
	}
}

// wantCode checks that a result carries the error's codespace and code.
func wantCode(t testing.TB, space string, code uint32, log string, want *types.Error) {
	t.Helper()
	if space != want.Codespace || code != want.Code {
		t.Fatalf("got %s/%d %q, want %s/%d (%s)", space, code, log, want.Codespace, want.Code, want.Msg)
	}
}

// shardBlock is a chain block of shard (number 1, no parent) that applied
// chain blocks up to chainHeight and made the given unshields: its
// confirm_sidechain_block call and each unshield's unshield_funds call.
func shardBlock(t testing.TB, shard types.Hash, chainHeight int64, us ...sidechain.Unshield) (confirm tx.Call, unshields []tx.Call) {
	t.Helper()
	root, proofs := sidechain.UnshieldsRoot(us)
	confirm, err := sidechain.ConfirmCall(sidechain.Header{Shard: shard, Number: 1, ChainHeight: chainHeight, UnshieldsRoot: root})
	if err != nil {
		t.Fatal(err)
	}
	for i, u := range us {
		call, err := sidechain.UnshieldCall(shard, 1, u, proofs[i])
		if err != nil {
			t.Fatal(err)
		}
		unshields = append(unshields, call)
	}
	return confirm, unshields
}
