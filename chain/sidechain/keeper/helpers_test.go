package keeper_test

import (
	"crypto/sha256"
	"encoding/json"
	"errors"
	"testing"
	"time"

	dbm "github.com/cometbft/cometbft-db"
	abci "github.com/cometbft/cometbft/abci/types"

	"github.com/integritee-go/integritee/attestation"
	"github.com/integritee-go/integritee/chain/accounts"
	accountskeeper "github.com/integritee-go/integritee/chain/accounts/keeper"
	bridgekeeper "github.com/integritee-go/integritee/chain/bridge/keeper"
	"github.com/integritee-go/integritee/chain/devnet"
	"github.com/integritee-go/integritee/chain/internal/moduletest"
	"github.com/integritee-go/integritee/chain/runtime"
	"github.com/integritee-go/integritee/chain/sidechain"
	"github.com/integritee-go/integritee/chain/sidechain/keeper"
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

// chain runs accounts, teerex, bridge and sidechain on a real store branch
// with a context whose block time and height the test sets.
type chain struct {
	t         testing.TB
	teerex    *teerexkeeper.Module
	bridge    *bridgekeeper.Module
	sidechain *keeper.Module
	kv        *store.Cache
	ctx       *runtime.Context
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
	tg, err := devnet.TeerexGenesis(t0)
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range []struct {
		m runtime.Genesis
		v any
	}{
		{acc, accounts.DevGenesis()},
		{tr, tg},
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
	// Wired as node.Modules: the sidechain reads shard records directly,
	// the bridge pays unshields on the sidechain's confirmed blocks.
	sc := keeper.New(tr.Keeper, bridgekeeper.ShardStore{})
	br := bridgekeeper.New(tr.Keeper, acc.Keeper, acc.Keeper, sc)
	_, valsHash := moduletest.Validators("test", 1)
	c := &chain{t: t, teerex: tr, bridge: br, sidechain: sc, kv: store.NewCache(st), genesis: teerex.GenesisID("test", 1, valsHash)}
	c.ctx = &runtime.Context{Store: c.kv, ChainID: "test", Height: 10, Time: t0.Add(time.Minute), Dev: true, Genesis: c.genesis}
	return c
}

// next moves to the next block, d later.
func (c *chain) next(d time.Duration) {
	c.ctx.Height++
	c.ctx.Time = c.ctx.Time.Add(d)
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

func (c *chain) confirm(sender tx.Address, h sidechain.Header) result {
	c.t.Helper()
	return c.exec(c.sidechain, sender, sidechain.MethodConfirmSidechainBlock, sidechain.ConfirmSidechainBlock{Header: h})
}

// latest returns the shard's latest confirmation (zero if none).
func (c *chain) latest(shard types.Hash) sidechain.Confirmation {
	c.t.Helper()
	l, _, err := c.sidechain.Latest(c.kv, shard)
	if err != nil {
		c.t.Fatal(err)
	}
	return l
}

// unregister removes signer's registration.
func (c *chain) unregister(signer tx.Address) {
	c.t.Helper()
	if r := c.exec(c.teerex, signer, teerex.MethodUnregisterEnclave, teerex.UnregisterEnclave{}); r.err != nil {
		c.t.Fatalf("unregister %s: %v", signer, r.err)
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

func measurement(name string) types.Hash { return sha256.Sum256([]byte("enclave release " + name)) }

var wantErr = moduletest.WantErr

// rejected asserts a rejection without writes or events.
func rejected(t testing.TB, r result, want ...error) {
	t.Helper()
	moduletest.Rejected(t, r.err, r.changes, r.events, want...)
}

func findEvent(r result, typ string) (map[string]string, bool) {
	for _, e := range r.events {
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
