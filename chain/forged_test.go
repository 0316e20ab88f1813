package chain_test

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
	"github.com/integritee-go/integritee/chain/internal/moduletest"
	"github.com/integritee-go/integritee/chain/runtime"
	"github.com/integritee-go/integritee/chain/tx"
	"github.com/integritee-go/integritee/internal/ed25519x/ed25519xtest"
)

// forgedTx returns a transaction of sender signed without its private key
// (see ed25519xtest.Forge), after checking that crypto/ed25519 accepts the
// signature: the attacker varies the fee until the digest is forgeable.
func forgedTx(t *testing.T, sender tx.Address, nonce uint64, call tx.Call) []byte {
	t.Helper()
	body := tx.Body{ChainID: chainID, Sender: sender, Nonce: nonce, Call: call}
	for body.Fee = 10 * accounts.DevBaseFee; body.Fee < 10*accounts.DevBaseFee+64; body.Fee++ {
		digest, err := body.SignBytes()
		if err != nil {
			t.Fatal(err)
		}
		sig := ed25519xtest.Forge(sender[:], digest)
		if sig == nil {
			continue
		}
		if !ed25519.Verify(sender[:], digest, sig) {
			t.Fatal("crypto/ed25519 refuses the forgery: the test proves nothing")
		}
		wire, err := (&tx.SignedTx{Body: body, Signature: sig}).Encode()
		if err != nil {
			t.Fatal(err)
		}
		return wire
	}
	t.Fatalf("no forgeable fee for %s", sender)
	return nil
}

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
	txs := [][]byte{forgedTx(t, zero, 0, transfer), forgedTx(t, zero, 0, setBalance)}
	for i, wire := range txs {
		res, err := app.CheckTx(context.Background(), &abci.RequestCheckTx{Tx: wire})
		if err != nil {
			t.Fatal(err)
		}
		if res.Code != runtime.ErrBadSignature.Code || res.Codespace != runtime.ErrBadSignature.Codespace {
			t.Fatalf("CheckTx of forged tx %d: code %s/%d %q, want bad signature", i, res.Codespace, res.Code, res.Log)
		}
	}
	res := finalizeAndCommit(t, app, 1, txs...)
	for i, r := range res.TxResults {
		if r.Code != runtime.ErrBadSignature.Code || r.Codespace != runtime.ErrBadSignature.Codespace {
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
