package keeper_test

import (
	"testing"

	abci "github.com/cometbft/cometbft/abci/types"

	"github.com/integritee-go/integritee/chain/bridge"
	"github.com/integritee-go/integritee/chain/internal/moduletest"
	"github.com/integritee-go/integritee/chain/node"
	"github.com/integritee-go/integritee/chain/sidechain"
	"github.com/integritee-go/integritee/chain/teerex"
	"github.com/integritee-go/integritee/chain/tx"
	"github.com/integritee-go/integritee/chain/types"
)

// TestAppWiring runs the bridge inside the real ABCI application with the
// node's runtime (node.Modules): a sim enclave registers through
// FinalizeBlock, funds are shielded, the sidechain confirms the shard block
// that unshields them, the unshield pays with its proof into that block,
// and the registration and vault are queried.
func TestAppWiring(t *testing.T) {
	g := moduletest.DevGenesis(t)
	a := moduletest.NewApp(t, moduletest.AppGenesis{ChainID: "wiring", Dev: true, Time: g.Time, Teerex: g.Teerex, Modules: node.Modules})

	shard := measurement("v1")
	reg, err := tx.NewCall(teerex.Name, teerex.MethodRegisterEnclave, moduletest.SimRegistration(t, dave, shard, a.Genesis, "wss://127.0.0.1:2000"))
	if err != nil {
		t.Fatal(err)
	}
	shield, err := tx.NewCall(bridge.Name, bridge.MethodShieldFunds, bridge.ShieldFunds{Shard: shard, Amount: 500, EncryptedRecipient: []byte("r")})
	if err != nil {
		t.Fatal(err)
	}
	a.OKBlock(a.SignDev("Dave", reg), a.SignDev("Bob", shield))
	u := sidechain.Unshield{Beneficiary: bob, Amount: 200, CallHash: types.Hash{1}}
	root, proofs := sidechain.UnshieldsRoot([]sidechain.Unshield{u})
	unshield, err := sidechain.UnshieldCall(shard, 1, u, proofs[0])
	if err != nil {
		t.Fatal(err)
	}
	// Before the sidechain confirms the block, nothing pays.
	res := a.CheckTx(a.SignDev("Dave", unshield))
	if res.Codespace != bridge.Name || res.Code != bridge.ErrBlockNotConfirmed.Code {
		t.Fatalf("CheckTx of an unshield of an unconfirmed block: %s/%d %s", res.Codespace, res.Code, res.Log)
	}
	a.Nonces[dave]-- // the refused transaction consumed no nonce
	conf, err := sidechain.ConfirmCall(sidechain.Header{Shard: shard, Number: 1, ChainHeight: 1, UnshieldsRoot: root})
	if err != nil {
		t.Fatal(err)
	}
	a.OKBlock(a.SignDev("Dave", conf))
	bobBefore := a.Balance(bob)
	results := a.OKBlock(a.SignDev("Dave", unshield))
	if !hasEvent(results[0].Events, bridge.EventUnshielded) {
		t.Fatalf("no unshield event in %v", results[0].Events)
	}
	if got := a.Balance(bob); got != bobBefore+200 {
		t.Fatalf("Bob got %d, want 200", got-bobBefore)
	}

	// A repeat is refused by CheckTx: it never reaches a block or pays.
	res = a.CheckTx(a.SignDev("Dave", unshield))
	if res.Codespace != bridge.Name || res.Code != bridge.ErrAlreadyUnshielded.Code {
		t.Fatalf("CheckTx of a repeated unshield: %s/%d %s", res.Codespace, res.Code, res.Log)
	}

	var e teerex.Enclave
	if !a.QueryProved("/teerex/enclave/"+dave.String(), &e) || e.MRENCLAVE != shard || e.WorkerURL != "wss://127.0.0.1:2000" {
		t.Fatalf("queried enclave %+v", e)
	}
	if vault := a.Balance(bridge.VaultAddress(shard)); vault != 300 {
		t.Fatalf("vault %d, want 300", vault)
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
