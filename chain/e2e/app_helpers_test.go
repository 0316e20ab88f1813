package e2e_test

import (
	"crypto/ed25519"
	"testing"
	"time"

	"github.com/integritee-go/integritee/chain/internal/moduletest"
	"github.com/integritee-go/integritee/chain/node"
	"github.com/integritee-go/integritee/chain/sidechain"
	"github.com/integritee-go/integritee/chain/teerex"
	"github.com/integritee-go/integritee/chain/tx"
	"github.com/integritee-go/integritee/chain/types"
)

const appChainID = "e2e-app"

// appChain is the ABCI application on an in-memory store with the node's
// runtime, driven block by block with explicit times.
type appChain struct{ *moduletest.App }

// newAppChain runs InitChain at genesisTime with the dev accounts genesis
// (Alice sudo, dev accounts funded) and the given teerex genesis.
func newAppChain(t testing.TB, dev bool, genesisTime time.Time, tg teerex.GenesisState) *appChain {
	t.Helper()
	return &appChain{moduletest.NewApp(t, moduletest.AppGenesis{
		ChainID: appChainID, Dev: dev, Time: genesisTime, Teerex: &tg, Validators: "e2e app", Modules: node.Modules,
	})}
}

// sign builds a transaction of key with its next nonce and a generous fee.
func (c *appChain) sign(key ed25519.PrivateKey, module, method string, args any) []byte {
	c.T.Helper()
	call, err := tx.NewCall(module, method, args)
	if err != nil {
		c.T.Fatal(err)
	}
	return c.Sign(key, call)
}

var (
	wantOK   = moduletest.WantOK
	wantCode = moduletest.WantCode
)

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
