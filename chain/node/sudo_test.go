package node_test

import (
	"context"
	"encoding/json"
	"testing"

	dbm "github.com/cometbft/cometbft-db"
	abci "github.com/cometbft/cometbft/abci/types"

	"github.com/integritee-go/integritee/chain"
	"github.com/integritee-go/integritee/chain/accounts"
	"github.com/integritee-go/integritee/chain/internal/moduletest"
	"github.com/integritee-go/integritee/chain/node"
	"github.com/integritee-go/integritee/chain/store"
	"github.com/integritee-go/integritee/chain/teerex"
	"github.com/integritee-go/integritee/chain/tx"
	"github.com/integritee-go/integritee/chain/types"
)

// TestProductionGenesisHasNoSudo is the attack of issue 9, finding 1, on a
// production genesis as init writes it: it names no sudo ("sudo": null,
// not a magic address), so once accounts are funded, including the
// all-zero address that used to stand for "nobody", every sudo call fails
// with the not-sudo error whoever signs it, and a forged signature for the
// all-zero address is refused outright.
func TestProductionGenesisHasNoSudo(t *testing.T) {
	home := t.TempDir()
	if err := node.Init(home, node.InitOptions{}); err != nil {
		t.Fatal(err)
	}
	gen, err := node.Genesis(home)
	if err != nil {
		t.Fatal(err)
	}
	st, err := node.AppState(gen)
	if err != nil {
		t.Fatal(err)
	}
	if st.Dev {
		t.Fatal("production genesis is dev")
	}
	var raw struct {
		Params map[string]json.RawMessage `json:"params"`
	}
	if err := json.Unmarshal(st.Modules[accounts.Name], &raw); err != nil {
		t.Fatal(err)
	}
	if s, ok := raw.Params["sudo"]; !ok || string(s) != "null" {
		t.Fatalf("accounts genesis does not say there is no sudo: %s", st.Modules[accounts.Name])
	}
	var ag accounts.GenesisState
	if err := json.Unmarshal(st.Modules[accounts.Name], &ag); err != nil {
		t.Fatal(err)
	}
	if ag.Params.Sudo != nil {
		t.Fatalf("production sudo %s", ag.Params.Sudo)
	}

	// Fund the senders as anyone could, by transfers after genesis.
	zero := tx.Address{}
	senders := []string{"Alice", "Bob"}
	for _, n := range senders {
		ag.Balances = append(ag.Balances, accounts.GenesisEntry{Address: accounts.DevAddress(n), Amount: accounts.Unit})
	}
	ag.Balances = append(ag.Balances, accounts.GenesisEntry{Address: zero, Amount: accounts.Unit})
	if st.Modules[accounts.Name], err = json.Marshal(ag); err != nil {
		t.Fatal(err)
	}
	stateBytes, err := json.Marshal(st)
	if err != nil {
		t.Fatal(err)
	}
	db, err := store.Open(dbm.NewMemDB())
	if err != nil {
		t.Fatal(err)
	}
	app, err := chain.New(chain.Options{ChainID: gen.ChainID, Store: db, Modules: node.Modules()})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	vals, _ := moduletest.Validators(gen.ChainID, 1)
	if _, err := app.InitChain(ctx, &abci.RequestInitChain{ChainId: gen.ChainID, InitialHeight: 1, AppStateBytes: stateBytes, Time: gen.GenesisTime, Validators: vals}); err != nil {
		t.Fatal(err)
	}

	bob := accounts.DevAddress("Bob")
	setBalance, err := accounts.SetBalanceCall(bob, 1<<60)
	if err != nil {
		t.Fatal(err)
	}
	allow, err := tx.NewCall(teerex.Name, teerex.MethodAllowMRENCLAVE, teerex.AllowMRENCLAVE{MRENCLAVE: types.Hash{1}})
	if err != nil {
		t.Fatal(err)
	}
	calls := []struct {
		call    tx.Call
		notSudo *types.Error
	}{{setBalance, accounts.ErrNotSudo}, {allow, teerex.ErrNotSudo}}

	// build returns the transactions and the codes they must get. CheckTx
	// admits nothing here, so each call is checked with nonce 0; in the
	// block a failed call consumes its nonce, so the senders count up.
	build := func(inBlock bool) (txs [][]byte, want []*types.Error) {
		for _, n := range senders {
			for i, c := range calls {
				body := tx.Body{ChainID: gen.ChainID, Sender: accounts.DevAddress(n), Fee: 10 * accounts.DevBaseFee, Call: c.call}
				if inBlock {
					body.Nonce = uint64(i)
				}
				stx, err := tx.Sign(body, accounts.DevKey(n))
				if err != nil {
					t.Fatal(err)
				}
				wire, err := stx.Encode()
				if err != nil {
					t.Fatal(err)
				}
				txs, want = append(txs, wire), append(want, c.notSudo)
			}
		}
		for _, c := range calls {
			txs, want = append(txs, moduletest.ForgedTx(t, gen.ChainID, zero, 0, c.call, 10*accounts.DevBaseFee)), append(want, types.ErrBadSignature)
		}
		return txs, want
	}

	txs, want := build(false)
	for i, wire := range txs {
		res, err := app.CheckTx(ctx, &abci.RequestCheckTx{Tx: wire})
		if err != nil {
			t.Fatal(err)
		}
		if res.Code != want[i].Code || res.Codespace != want[i].Codespace {
			t.Errorf("CheckTx of tx %d: %s/%d %q, want %s/%d", i, res.Codespace, res.Code, res.Log, want[i].Codespace, want[i].Code)
		}
	}
	txs, want = build(true)
	res, err := app.FinalizeBlock(ctx, &abci.RequestFinalizeBlock{Height: 1, Hash: moduletest.BlockHash(1), Txs: txs, Time: gen.GenesisTime.Add(1)})
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range res.TxResults {
		if r.Code != want[i].Code || r.Codespace != want[i].Codespace {
			t.Errorf("tx %d in the block: %s/%d %q, want %s/%d", i, r.Codespace, r.Code, r.Log, want[i].Codespace, want[i].Code)
		}
	}
}
