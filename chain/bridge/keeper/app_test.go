package keeper_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	dbm "github.com/cometbft/cometbft-db"
	abci "github.com/cometbft/cometbft/abci/types"

	"github.com/integritee-go/integritee/attestation"
	app "github.com/integritee-go/integritee/chain"
	"github.com/integritee-go/integritee/chain/accounts"
	"github.com/integritee-go/integritee/chain/bridge"
	"github.com/integritee-go/integritee/chain/codec"
	"github.com/integritee-go/integritee/chain/devnet"
	"github.com/integritee-go/integritee/chain/internal/moduletest"
	"github.com/integritee-go/integritee/chain/node"
	"github.com/integritee-go/integritee/chain/sidechain"
	"github.com/integritee-go/integritee/chain/store"
	"github.com/integritee-go/integritee/chain/teerex"
	"github.com/integritee-go/integritee/chain/tx"
	"github.com/integritee-go/integritee/chain/types"
	"github.com/integritee-go/integritee/tee/sim"
)

// TestAppWiring runs the bridge inside the real ABCI application with the
// node's runtime (node.Modules): a sim enclave registers through
// FinalizeBlock, funds are shielded, the sidechain confirms the shard block
// that unshields them, the unshield pays with its proof into that block,
// and the registration and vault are queried.
func TestAppWiring(t *testing.T) {
	st, err := store.Open(dbm.NewMemDB())
	if err != nil {
		t.Fatal(err)
	}
	a, err := app.New(app.Options{ChainID: "wiring", Store: st, Modules: node.Modules()})
	if err != nil {
		t.Fatal(err)
	}
	ag, _ := json.Marshal(accounts.DevGenesis())
	tg, err := devnet.TeerexGenesis(moduletest.T0)
	if err != nil {
		t.Fatal(err)
	}
	tgj, _ := json.Marshal(tg)
	state, err := json.Marshal(app.AppState{Dev: true, Modules: map[string]json.RawMessage{accounts.Name: ag, teerex.Name: tgj}})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	vals, valsHash := moduletest.Validators("wiring", 1)
	if _, err := a.InitChain(ctx, &abci.RequestInitChain{ChainId: "wiring", Time: moduletest.T0, InitialHeight: 1, AppStateBytes: state, Validators: vals}); err != nil {
		t.Fatal(err)
	}

	nonces := map[string]uint64{}
	signed := func(name string, call tx.Call) []byte {
		key := accounts.DevKey(name)
		body := tx.Body{ChainID: "wiring", Sender: accounts.DevAddress(name), Nonce: nonces[name], Fee: accounts.Unit / 100, Call: call}
		nonces[name]++
		s, err := tx.Sign(body, key)
		if err != nil {
			t.Fatal(err)
		}
		raw, err := s.Encode()
		if err != nil {
			t.Fatal(err)
		}
		return raw
	}
	height := int64(0)
	block := func(txs ...[]byte) []*abci.ExecTxResult {
		height++
		res, err := a.FinalizeBlock(ctx, &abci.RequestFinalizeBlock{Height: height, Hash: moduletest.BlockHash(height), Time: moduletest.T0.Add(time.Duration(height) * time.Second), Txs: txs})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := a.Commit(ctx, &abci.RequestCommit{}); err != nil {
			t.Fatal(err)
		}
		for i, r := range res.TxResults {
			if r.Code != 0 {
				t.Fatalf("block %d tx %d: %s/%d %s", height, i, r.Codespace, r.Code, r.Log)
			}
		}
		return res.TxResults
	}
	balance := func(addr tx.Address) uint64 {
		q, err := a.Query(ctx, &abci.RequestQuery{Path: "/accounts/" + addr.String()})
		if err != nil || q.Code != 0 {
			t.Fatalf("account query: %v %+v", err, q)
		}
		var acc accounts.Account
		if len(q.Value) > 0 {
			if err := codec.Unmarshal(q.Value, &acc); err != nil {
				t.Fatal(err)
			}
		}
		return acc.Balance
	}

	shard := measurement("v1")
	m := [32]byte(shard)
	enc, err := sim.New(sim.Config{Measurement: &m})
	if err != nil {
		t.Fatal(err)
	}
	key := []byte("shielding key")
	q, err := enc.Quote(teerex.ReportData(dave, key, teerex.GenesisID("wiring", 1, valsHash)))
	if err != nil {
		t.Fatal(err)
	}
	reg, err := teerex.RegisterEnclaveCall(teerex.Evidence{Kind: attestation.KindDCAP, Quote: q}, key, "wss://127.0.0.1:2000")
	if err != nil {
		t.Fatal(err)
	}
	shield, err := tx.NewCall(bridge.Name, bridge.MethodShieldFunds, bridge.ShieldFunds{Shard: shard, Amount: 500, EncryptedRecipient: []byte("r")})
	if err != nil {
		t.Fatal(err)
	}
	block(signed("Dave", reg), signed("Bob", shield))
	u := sidechain.Unshield{Beneficiary: bob, Amount: 200, CallHash: types.Hash{1}}
	root, proofs := sidechain.UnshieldsRoot([]sidechain.Unshield{u})
	unshield, err := sidechain.UnshieldCall(shard, 1, u, proofs[0])
	if err != nil {
		t.Fatal(err)
	}
	// Before the sidechain confirms the block, nothing pays.
	res, err := a.CheckTx(ctx, &abci.RequestCheckTx{Tx: signed("Dave", unshield)})
	if err != nil {
		t.Fatal(err)
	}
	if res.Codespace != bridge.Name || res.Code != bridge.ErrBlockNotConfirmed.Code {
		t.Fatalf("CheckTx of an unshield of an unconfirmed block: %s/%d %s", res.Codespace, res.Code, res.Log)
	}
	nonces["Dave"]-- // the refused transaction consumed no nonce
	conf, err := sidechain.ConfirmCall(sidechain.Header{Shard: shard, Number: 1, ChainHeight: 1, UnshieldsRoot: root})
	if err != nil {
		t.Fatal(err)
	}
	block(signed("Dave", conf))
	bobBefore := balance(bob)
	results := block(signed("Dave", unshield))
	if !hasEvent(results[0].Events, bridge.EventUnshielded) {
		t.Fatalf("no unshield event in %v", results[0].Events)
	}
	if got := balance(bob); got != bobBefore+200 {
		t.Fatalf("Bob got %d, want 200", got-bobBefore)
	}

	// A repeat is refused by CheckTx: it never reaches a block or pays.
	res, err = a.CheckTx(ctx, &abci.RequestCheckTx{Tx: signed("Dave", unshield)})
	if err != nil {
		t.Fatal(err)
	}
	if res.Codespace != bridge.Name || res.Code != bridge.ErrAlreadyUnshielded.Code {
		t.Fatalf("CheckTx of a repeated unshield: %s/%d %s", res.Codespace, res.Code, res.Log)
	}

	q2, err := a.Query(ctx, &abci.RequestQuery{Path: "/teerex/enclave/" + dave.String(), Prove: true})
	if err != nil || q2.Code != 0 {
		t.Fatalf("query: %v %+v", err, q2)
	}
	var e teerex.Enclave
	if err := codec.Unmarshal(q2.Value, &e); err != nil || e.MRENCLAVE != shard || e.WorkerURL != "wss://127.0.0.1:2000" {
		t.Fatalf("queried enclave %+v %v", e, err)
	}
	q3, err := a.Query(ctx, &abci.RequestQuery{Path: "/accounts/" + bridge.VaultAddress(shard).String()})
	if err != nil || q3.Code != 0 {
		t.Fatalf("vault query: %v %+v", err, q3)
	}
	var vault accounts.Account
	if err := codec.Unmarshal(q3.Value, &vault); err != nil || vault.Balance != 300 {
		t.Fatalf("vault %+v %v", vault, err)
	}
}

func hasEvent(events []abci.Event, typ string) bool {
	for _, e := range events {
		if e.Type == typ {
			return true
		}
	}
	return false
}
