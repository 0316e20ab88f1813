package chain_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	dbm "github.com/cometbft/cometbft-db"
	abci "github.com/cometbft/cometbft/abci/types"

	"github.com/integritee-go/integritee/chain"
	"github.com/integritee-go/integritee/chain/accounts"
	"github.com/integritee-go/integritee/chain/internal/moduletest"
	"github.com/integritee-go/integritee/chain/tx"
	"github.com/integritee-go/integritee/chain/types"
)

// TestForgedZeroAddressTxRefused is the attack of issue 9, finding 1, on
// the application: the all-zero address, funded by anyone, sends
// transactions signed without a key. CheckTx and FinalizeBlock refuse them
// with the bad-signature code and nothing changes.
func TestForgedZeroAddressTxRefused(t *testing.T) {
	zero := tx.Address{}
	g := accounts.DevGenesis()
	g.Balances = append(g.Balances, accounts.GenesisEntry{Address: zero, Amount: accounts.Unit})
	acc, err := json.Marshal(g)
	if err != nil {
		t.Fatal(err)
	}
	state, err := json.Marshal(chain.AppState{Dev: true, Modules: map[string]json.RawMessage{accounts.Name: acc}})
	if err != nil {
		t.Fatal(err)
	}
	app := newApp(t, dbm.NewMemDB())
	vals, _ := moduletest.Validators(chainID, 1)
	if _, err := app.InitChain(context.Background(), &abci.RequestInitChain{ChainId: chainID, InitialHeight: 1, AppStateBytes: state, Time: time.Unix(0, 0), Validators: vals}); err != nil {
		t.Fatal(err)
	}
	mallory := accounts.DevAddress("Mallory")
	transfer, err := accounts.TransferCall(mallory, accounts.Unit/2)
	if err != nil {
		t.Fatal(err)
	}
	setBalance, err := accounts.SetBalanceCall(mallory, 1<<60)
	if err != nil {
		t.Fatal(err)
	}
	txs := [][]byte{moduletest.ForgedTx(t, chainID, zero, 0, transfer, 10*accounts.DevBaseFee), moduletest.ForgedTx(t, chainID, zero, 0, setBalance, 10*accounts.DevBaseFee)}
	for i, wire := range txs {
		res, err := app.CheckTx(context.Background(), &abci.RequestCheckTx{Tx: wire})
		if err != nil {
			t.Fatal(err)
		}
		if res.Code != types.ErrBadSignature.Code || res.Codespace != types.ErrBadSignature.Codespace {
			t.Fatalf("CheckTx of forged tx %d: code %s/%d %q, want bad signature", i, res.Codespace, res.Code, res.Log)
		}
	}
	res := finalizeAndCommit(t, app, 1, txs...)
	for i, r := range res.TxResults {
		if r.Code != types.ErrBadSignature.Code || r.Codespace != types.ErrBadSignature.Codespace {
			t.Fatalf("forged tx %d in a block: code %s/%d %q, want bad signature", i, r.Codespace, r.Code, r.Log)
		}
	}
	if got := account(t, app, zero); got != (accounts.Account{Balance: accounts.Unit}) {
		t.Fatalf("zero address %+v after forged transactions", got)
	}
	if got := account(t, app, mallory); got != (accounts.Account{}) {
		t.Fatalf("Mallory %+v after forged transactions", got)
	}
}
