package sidechain_test

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
	"github.com/integritee-go/integritee/chain/internal/moduletest"
	"github.com/integritee-go/integritee/chain/runtime"
	"github.com/integritee-go/integritee/chain/sidechain"
	"github.com/integritee-go/integritee/chain/store"
	"github.com/integritee-go/integritee/chain/teerex"
	"github.com/integritee-go/integritee/chain/tx"
	"github.com/integritee-go/integritee/tee/sim"
)

// TestAppWiring runs the module inside the real ABCI application, wired as
// the node should: sidechain.New(teerex.Keeper, bridge module).
func TestAppWiring(t *testing.T) {
	st, err := store.Open(dbm.NewMemDB())
	if err != nil {
		t.Fatal(err)
	}
	tr := teerex.New(accounts.Keeper{})
	br := bridge.New(tr.Keeper, accounts.Keeper{}, accounts.Keeper{})
	a, err := app.New(app.Options{ChainID: "wiring", Store: st, Modules: []runtime.Module{tr, br, sidechain.New(tr.Keeper, br)}})
	if err != nil {
		t.Fatal(err)
	}
	ag, _ := json.Marshal(accounts.DevGenesis())
	tg, err := teerex.DevGenesis(t0)
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
	if _, err := a.InitChain(ctx, &abci.RequestInitChain{ChainId: "wiring", Time: t0, InitialHeight: 1, AppStateBytes: state, Validators: vals}); err != nil {
		t.Fatal(err)
	}
	nonce := uint64(0)
	signed := func(call tx.Call) []byte {
		s, err := tx.Sign(tx.Body{ChainID: "wiring", Sender: dave, Nonce: nonce, Fee: accounts.Unit / 100, Call: call}, accounts.DevKey("Dave"))
		if err != nil {
			t.Fatal(err)
		}
		nonce++
		raw, err := s.Encode()
		if err != nil {
			t.Fatal(err)
		}
		return raw
	}
	height := int64(0)
	block := func(txs ...[]byte) {
		height++
		res, err := a.FinalizeBlock(ctx, &abci.RequestFinalizeBlock{Height: height, Hash: moduletest.BlockHash(height), Time: t0.Add(time.Duration(height) * time.Second), Txs: txs})
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
	reg, err := teerex.RegisterEnclaveCall(teerex.Evidence{Kind: attestation.KindDCAP, Quote: q}, key, "ws://127.0.0.1:2000")
	if err != nil {
		t.Fatal(err)
	}
	block(signed(reg))
	conf, err := sidechain.ConfirmCall(shard, 1, teerex.Hash{0xaa})
	if err != nil {
		t.Fatal(err)
	}
	block(signed(conf))

	res, err := a.CheckTx(ctx, &abci.RequestCheckTx{Tx: signed(conf)})
	if err != nil {
		t.Fatal(err)
	}
	if res.Codespace != sidechain.Name || res.Code != sidechain.ErrStaleNumber.Code {
		t.Fatalf("CheckTx of a repeated confirmation: %s/%d %s", res.Codespace, res.Code, res.Log)
	}
	qr, err := a.Query(ctx, &abci.RequestQuery{Path: "/sidechain/shard/" + shard.String(), Prove: true})
	if err != nil || qr.Code != 0 {
		t.Fatalf("query: %v %+v", err, qr)
	}
	var c sidechain.Confirmation
	if err := codec.Unmarshal(qr.Value, &c); err != nil || c.Number != 1 || c.HeaderHash != (teerex.Hash{0xaa}) || c.Enclave != dave || c.ConfirmedHeight != 2 {
		t.Fatalf("queried %+v %v", c, err)
	}
}
