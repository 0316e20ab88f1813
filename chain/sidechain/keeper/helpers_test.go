package keeper_test

import (
	"crypto/sha256"
	"testing"

	"github.com/integritee-go/integritee/chain/accounts"
	bridgekeeper "github.com/integritee-go/integritee/chain/bridge/keeper"
	"github.com/integritee-go/integritee/chain/internal/moduletest"
	"github.com/integritee-go/integritee/chain/sidechain"
	"github.com/integritee-go/integritee/chain/sidechain/keeper"
	"github.com/integritee-go/integritee/chain/teerex"
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

// chain is the shared fixture with the bridge and the sidechain.
type chain struct {
	*moduletest.Chain
	bridge    *bridgekeeper.Module
	sidechain *keeper.Module
}

// newChain is a dev chain at height 10.
func newChain(t testing.TB) *chain {
	t.Helper()
	mc := moduletest.NewChain(t, moduletest.DevGenesis(t))
	// Wired as node.Modules: the sidechain reads shard records directly,
	// the bridge pays unshields on the sidechain's confirmed blocks.
	sc := keeper.New(mc.Teerex.Keeper, bridgekeeper.ShardStore{})
	br := bridgekeeper.New(mc.Teerex.Keeper, mc.Accounts.Keeper, mc.Accounts.Keeper, sc)
	c := &chain{Chain: mc, bridge: br, sidechain: sc}
	c.ToHeight(10)
	return c
}

func (c *chain) confirm(sender tx.Address, h sidechain.Header) moduletest.Result {
	c.T.Helper()
	return c.Exec(c.sidechain, sender, sidechain.MethodConfirmSidechainBlock, sidechain.ConfirmSidechainBlock{Header: h})
}

// latest returns the shard's latest confirmation (zero if none).
func (c *chain) latest(shard types.Hash) sidechain.Confirmation {
	c.T.Helper()
	l, _, err := c.sidechain.Latest(c.KV, shard)
	if err != nil {
		c.T.Fatal(err)
	}
	return l
}

// unregister removes signer's registration.
func (c *chain) unregister(signer tx.Address) {
	c.T.Helper()
	if r := c.Exec(c.Teerex, signer, teerex.MethodUnregisterEnclave, teerex.UnregisterEnclave{}); r.Err != nil {
		c.T.Fatalf("unregister %s: %v", signer, r.Err)
	}
}

// first is a chain block 1 of shard (no author, no parent) that applied
// chain blocks up to chainHeight; state tells blocks apart.
func first(shard types.Hash, chainHeight int64, state byte) sidechain.Header {
	return sidechain.Header{Shard: shard, Number: 1, ChainHeight: chainHeight, StateHash: types.Hash{0x5e, state}}
}

// child is the chain block after parent at chainHeight.
func child(t testing.TB, parent sidechain.Header, chainHeight int64, state byte) sidechain.Header {
	t.Helper()
	return sidechain.Header{Shard: parent.Shard, Number: parent.Number + 1, ParentHash: hashOf(t, parent),
		ChainHeight: chainHeight, StateHash: types.Hash{0x5e, state}}
}

// direct makes h a direct block of author.
func direct(h sidechain.Header, author tx.Address) sidechain.Header {
	h.Author = author
	return h
}

func hashOf(t testing.TB, h sidechain.Header) types.Hash {
	t.Helper()
	hash, err := h.Hash()
	if err != nil {
		t.Fatal(err)
	}
	return hash
}

func measurement(name string) types.Hash { return sha256.Sum256([]byte("enclave release " + name)) }

var (
	wantErr  = moduletest.WantErr
	rejected = moduletest.Rejected
)

func findEvent(r moduletest.Result, typ string) (map[string]string, bool) {
	for _, e := range r.Events {
		if e.Type == typ {
			m := make(map[string]string)
			for _, a := range e.Attributes {
				if !a.Index {
					return nil, false
				}
				m[a.Key] = a.Value
			}
			return m, true
		}
	}
	return nil, false
}
