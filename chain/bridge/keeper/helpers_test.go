package keeper_test

import (
	"crypto/sha256"
	"encoding/json"
	"errors"
	"testing"
	"time"

	dbm "github.com/cometbft/cometbft-db"
	abci "github.com/cometbft/cometbft/abci/types"
	"github.com/cometbft/cometbft/crypto/merkle"

	"github.com/integritee-go/integritee/attestation"
	"github.com/integritee-go/integritee/chain/accounts"
	accountskeeper "github.com/integritee-go/integritee/chain/accounts/keeper"
	"github.com/integritee-go/integritee/chain/bridge"
	"github.com/integritee-go/integritee/chain/bridge/keeper"
	"github.com/integritee-go/integritee/chain/devnet"
	"github.com/integritee-go/integritee/chain/internal/moduletest"
	"github.com/integritee-go/integritee/chain/runtime"
	"github.com/integritee-go/integritee/chain/store"
	"github.com/integritee-go/integritee/chain/teerex"
	teerexkeeper "github.com/integritee-go/integritee/chain/teerex/keeper"
	"github.com/integritee-go/integritee/chain/tx"
	"github.com/integritee-go/integritee/chain/types"
	"github.com/integritee-go/integritee/tee/sim"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

var (
	alice = accounts.DevAddress("Alice") // sudo
	bob   = accounts.DevAddress("Bob")
	// Enclave signers.
	dave = accounts.DevAddress("Dave")
	eve  = accounts.DevAddress("Eve")
	ferd = accounts.DevAddress("Ferdie")
)

// chain runs accounts, teerex and bridge on a real store branch with a
// context whose block time and height the test sets.
type chain struct {
	t      testing.TB
	acc    *accountskeeper.Module
	teerex *teerexkeeper.Module
	bridge *keeper.Module
	blocks blocks
	kv     *store.Cache
	ctx    *runtime.Context
	// genesis is the chain's genesis ID (runtime.Context.Genesis).
	genesis types.Hash
}

func newChain(t testing.TB) *chain {
	t.Helper()
	st, err := store.Open(dbm.NewMemDB())
	if err != nil {
		t.Fatal(err)
	}
	kv := store.NewCache(st)
	ctx := &runtime.Context{Store: kv, ChainID: "test", Height: 1, Time: t0, Dev: true}
	acc := accountskeeper.New()
	tr := teerexkeeper.New(acc.Keeper, nil)
	for _, g := range []struct {
		m runtime.Genesis
		v any
	}{
		{acc, accounts.DevGenesis()},
		{tr, must(devnet.TeerexGenesis(t0))},
	} {
		raw, err := json.Marshal(g.v)
		if err != nil {
			t.Fatal(err)
		}
		if err := g.m.InitGenesis(ctx, raw); err != nil {
			t.Fatal(err)
		}
	}
	p, err := st.Prepare(1, kv.Changes())
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Commit(p); err != nil {
		t.Fatal(err)
	}
	bl := blocks{}
	_, valsHash := moduletest.Validators("test", 1)
	c := &chain{t: t, acc: acc, teerex: tr, bridge: keeper.New(tr.Keeper, acc.Keeper, acc.Keeper, bl), blocks: bl, kv: store.NewCache(st),
		genesis: teerex.GenesisID("test", 1, valsHash)}
	c.ctx = &runtime.Context{Store: c.kv, ChainID: "test", Height: 10, Time: t0.Add(time.Minute), Dev: true, Genesis: c.genesis}
	for h := int64(1); h < c.ctx.Height; h++ {
		c.recordBlock(h)
	}
	return c
}

// recordBlock writes the hash of block h as the application does when it
// finalizes the block.
func (c *chain) recordBlock(h int64) {
	c.kv.Set(runtime.BlockHashKey(h), moduletest.BlockHash(h))
}

// blockHash is the hash of the chain's block h.
func blockHash(h uint64) types.Hash { return types.Hash(moduletest.BlockHash(int64(h))) }

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// next moves to the next block, d later.
func (c *chain) next(d time.Duration) {
	c.recordBlock(c.ctx.Height)
	c.ctx.Height++
	c.ctx.Time = c.ctx.Time.Add(d)
}

// toHeight moves to height h (one second per block).
func (c *chain) toHeight(h int64) {
	for c.ctx.Height < h {
		c.next(time.Second)
	}
}

type result struct {
	err     error
	events  []abci.Event
	changes int
}

func (c *chain) exec(m runtime.Module, sender tx.Address, method string, args any) result {
	c.t.Helper()
	call, err := tx.NewCall(m.Name(), method, args)
	if err != nil {
		c.t.Fatal(err)
	}
	msg, err := m.DecodeCall(call)
	if err != nil {
		return result{err: err}
	}
	b := c.kv.Branch()
	ctx := c.ctx.WithStore(b)
	ctx.Sender = sender
	err = m.Execute(ctx, msg)
	r := result{err: err, events: ctx.Events(), changes: len(b.Changes())}
	if err == nil {
		b.Write()
	} else if re := (*types.Error)(nil); !errors.As(err, &re) {
		c.t.Fatalf("%s: error is no *types.Error (would halt the node): %v", method, err)
	}
	return r
}

func (c *chain) call(sender tx.Address, method string, args any) result {
	c.t.Helper()
	return c.exec(c.bridge, sender, method, args)
}

// register registers signer as an enclave with measurement m at the
// current block.
func (c *chain) register(signer tx.Address, m types.Hash) {
	c.t.Helper()
	mm := [32]byte(m)
	b, err := sim.New(sim.Config{Measurement: &mm})
	if err != nil {
		c.t.Fatal(err)
	}
	key := []byte("shielding key")
	q, err := b.Quote(teerex.ReportData(signer, key, c.genesis))
	if err != nil {
		c.t.Fatal(err)
	}
	r := c.exec(c.teerex, signer, teerex.MethodRegisterEnclave, teerex.RegisterEnclave{
		Attestation: teerex.Evidence{Kind: attestation.KindDCAP, Quote: q}, ShieldingKey: key,
	})
	if r.err != nil {
		c.t.Fatalf("register %s: %v", signer, r.err)
	}
}

func (c *chain) balance(a tx.Address) uint64 {
	c.t.Helper()
	acc, err := c.acc.Keeper.Account(c.kv, a)
	if err != nil {
		c.t.Fatal(err)
	}
	return acc.Balance
}

func (c *chain) shard(id types.Hash) bridge.Shard {
	c.t.Helper()
	s, err := c.bridge.Shard(c.kv, id)
	if err != nil {
		c.t.Fatal(err)
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

var wantErr = moduletest.WantErr

// rejected asserts a rejection without writes or events.
func rejected(t testing.TB, r result, want ...error) {
	t.Helper()
	moduletest.Rejected(t, r.err, r.changes, r.events, want...)
}

func findEvent(r result, typ string) (map[string]abci.EventAttribute, bool) {
	for _, e := range r.events {
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
