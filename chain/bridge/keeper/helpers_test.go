package keeper_test

import (
	"crypto/sha256"
	"testing"

	abci "github.com/cometbft/cometbft/abci/types"
	"github.com/cometbft/cometbft/crypto/merkle"

	"github.com/integritee-go/integritee/chain/accounts"
	"github.com/integritee-go/integritee/chain/bridge"
	"github.com/integritee-go/integritee/chain/bridge/keeper"
	"github.com/integritee-go/integritee/chain/internal/moduletest"
	"github.com/integritee-go/integritee/chain/store"
	"github.com/integritee-go/integritee/chain/tx"
	"github.com/integritee-go/integritee/chain/types"
)

var (
	alice = accounts.DevAddress("Alice") // sudo
	bob   = accounts.DevAddress("Bob")
	// Enclave signers.
	dave = accounts.DevAddress("Dave")
	eve  = accounts.DevAddress("Eve")
	ferd = accounts.DevAddress("Ferdie")
)

// chain is the shared fixture with the bridge on a fake sidechain.
type chain struct {
	*moduletest.Chain
	bridge *keeper.Module
	blocks blocks
}

// newChain is a dev chain at height 10, whose earlier blocks the bridge
// can confirm.
func newChain(t testing.TB) *chain {
	t.Helper()
	mc := moduletest.NewChain(t, moduletest.DevGenesis(t))
	bl := blocks{}
	c := &chain{Chain: mc, bridge: keeper.New(mc.Teerex.Keeper, mc.Accounts.Keeper, mc.Accounts.Keeper, bl), blocks: bl}
	c.ToHeight(10)
	return c
}

// blockHash is the hash of the chain's block h.
func blockHash(h uint64) types.Hash { return types.Hash(moduletest.BlockHash(int64(h))) }

func (c *chain) call(sender tx.Address, method string, args any) moduletest.Result {
	c.T.Helper()
	return c.Exec(c.bridge, sender, method, args)
}

func (c *chain) shard(id types.Hash) bridge.Shard {
	c.T.Helper()
	s, err := c.bridge.Shard(c.KV, id)
	if err != nil {
		c.T.Fatal(err)
	}
	return s
}

// blocks is a fake sidechain: the unshields roots of the confirmed shard
// blocks.
type blocks map[blockID]types.Hash

type blockID struct {
	shard  types.Hash
	number uint64
}

func (b blocks) UnshieldsRoot(_ store.Reader, shard types.Hash, number uint64) (types.Hash, bool, error) {
	root, ok := b[blockID{shard, number}]
	return root, ok, nil
}

// unshield is an unshield a shard block made.
type unshield struct {
	beneficiary tx.Address
	amount      uint64
	callHash    types.Hash
}

// confirmBlock confirms shard block number with the given unshields and
// returns their unshield_funds arguments, each with its proof, as the
// sidechain's Merkle tree (CometBFT's RFC 6962) makes them.
func (c *chain) confirmBlock(shard types.Hash, number uint64, us ...unshield) []bridge.UnshieldFunds {
	leaves := make([][]byte, len(us))
	for i, u := range us {
		leaves[i] = bridge.UnshieldLeaf(u.beneficiary, u.amount, u.callHash)
	}
	root, proofs := merkle.ProofsFromByteSlices(leaves)
	c.blocks[blockID{shard, number}] = types.Hash(root)
	calls := make([]bridge.UnshieldFunds, len(us))
	for i, u := range us {
		calls[i] = bridge.UnshieldFunds{Shard: shard, Beneficiary: u.beneficiary, Amount: u.amount, CallHash: u.callHash, Block: number,
			Proof: bridge.UnshieldProof{Index: uint64(proofs[i].Index), Total: uint64(proofs[i].Total), Aunts: proofs[i].Aunts}}
	}
	return calls
}

func measurement(name string) types.Hash { return sha256.Sum256([]byte("enclave release " + name)) }

var (
	wantErr  = moduletest.WantErr
	rejected = moduletest.Rejected
)

func findEvent(r moduletest.Result, typ string) (map[string]abci.EventAttribute, bool) {
	for _, e := range r.Events {
		if e.Type == typ {
			m := make(map[string]abci.EventAttribute)
			for _, a := range e.Attributes {
				m[a.Key] = a
			}
			return m, true
		}
	}
	return nil, false
}
