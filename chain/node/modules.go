package node

import (
	"encoding/json"
	"fmt"
	"time"

	accountskeeper "github.com/integritee-go/integritee/chain/accounts/keeper"
	bridgekeeper "github.com/integritee-go/integritee/chain/bridge/keeper"
	"github.com/integritee-go/integritee/chain/devnet"
	"github.com/integritee-go/integritee/chain/runtime"
	sidechainkeeper "github.com/integritee-go/integritee/chain/sidechain/keeper"
	"github.com/integritee-go/integritee/chain/teerex"
	teerexkeeper "github.com/integritee-go/integritee/chain/teerex/keeper"
)

// Modules returns the runtime of integritee-node besides accounts, which
// the application always has: teerex, the enclave registry; the enclave
// bridge, which asks teerex which enclaves are active, moves funds and
// checks sudo through the accounts keeper and pays unshields only as the
// sidechain's confirmed blocks prove; and sidechain, which confirms each
// shard's one chain of blocks, taking membership from teerex and the
// shard's measurement from the bridge's shard records. Every validator of a
// chain must run the same modules; Start uses these unless told otherwise.
func Modules() []runtime.Module {
	tr := teerexkeeper.New(accountskeeper.Keeper{}, devnet.TeerexRules())
	sc := sidechainkeeper.New(tr.Keeper, bridgekeeper.ShardStore{})
	return []runtime.Module{tr, bridgekeeper.New(tr.Keeper, accountskeeper.Keeper{}, accountskeeper.Keeper{}, sc), sc}
}

// teerexGenesis is the teerex entry of a new genesis: the dev policy with
// dev collateral made once for genesisTime on a dev chain (so every home of
// a testnet holds the same signed bytes), Intel's roots and rules without
// collateral or allowlisted measurements otherwise (sudo adds them).
func teerexGenesis(dev bool, genesisTime time.Time) (json.RawMessage, error) {
	g := teerex.ProductionGenesis()
	if dev {
		var err error
		if g, err = devnet.TeerexGenesis(genesisTime); err != nil {
			return nil, fmt.Errorf("genesis: %w", err)
		}
	}
	b, err := json.Marshal(g)
	if err != nil {
		return nil, fmt.Errorf("genesis: teerex: %w", err)
	}
	return b, nil
}
