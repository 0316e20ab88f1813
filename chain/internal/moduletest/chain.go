package moduletest

import (
	"encoding/json"
	"errors"
	"testing"
	"time"

	dbm "github.com/cometbft/cometbft-db"
	abci "github.com/cometbft/cometbft/abci/types"

	"github.com/integritee-go/integritee/attestation"
	"github.com/integritee-go/integritee/chain/accounts"
	accountskeeper "github.com/integritee-go/integritee/chain/accounts/keeper"
	"github.com/integritee-go/integritee/chain/devnet"
	"github.com/integritee-go/integritee/chain/runtime"
	"github.com/integritee-go/integritee/chain/store"
	"github.com/integritee-go/integritee/chain/teerex"
	teerexkeeper "github.com/integritee-go/integritee/chain/teerex/keeper"
	"github.com/integritee-go/integritee/chain/tx"
	"github.com/integritee-go/integritee/chain/types"
	"github.com/integritee-go/integritee/tee/sim"
)

// ChainID is the chain ID of a Chain.
const ChainID = "test"

// T0 is the default genesis time; the dev collateral is issued for it.
var T0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// GenesisID is the genesis ID of a Chain (initial height 1, the validators
// Validators(ChainID, 1)), which its contexts carry and its enclaves
// commit to.
var GenesisID = func() types.Hash {
	_, valsHash := Validators(ChainID, 1)
	return teerex.GenesisID(ChainID, 1, valsHash)
}()

// Genesis is what a Chain starts from: the dev accounts (Alice sudo, the
// dev accounts funded) and Teerex.
type Genesis struct {
	// Dev makes a dev chain (runtime.Context.Dev).
	Dev bool
	// Time is the genesis time, at which the chain stays until moved.
	Time time.Time
	// Teerex is the teerex entry; nil: none (the module's default).
	Teerex *teerex.GenesisState
}

// DevGenesis is a dev chain at T0 with the dev teerex genesis, under which
// sim enclaves register.
func DevGenesis(t testing.TB) Genesis {
	t.Helper()
	g, err := devnet.TeerexGenesis(T0)
	if err != nil {
		t.Fatal(err)
	}
	return Genesis{Dev: true, Time: T0, Teerex: &g}
}

// Chain runs the accounts and teerex modules, and the modules a test adds
// on them, on a real store branch with a context whose block height and
// time the test moves; there are no ABCI application and no transactions.
type Chain struct {
	T        testing.TB
	KV       *store.Cache
	Ctx      *runtime.Context
	Accounts *accountskeeper.Module
	// Teerex has the dev rules (devnet.TeerexRules), as node.Modules.
	Teerex *teerexkeeper.Module
}

// NewChain runs genesis g on a fresh store and commits it, so that every
// test starts from committed state, and returns the chain at height 2 (the
// hash of block 1 recorded) at g.Time.
func NewChain(t testing.TB, g Genesis) *Chain {
	t.Helper()
	st, err := store.Open(dbm.NewMemDB())
	if err != nil {
		t.Fatal(err)
	}
	kv := store.NewCache(st)
	ctx := &runtime.Context{Store: kv, ChainID: ChainID, Height: 1, Time: g.Time, Dev: g.Dev, Genesis: GenesisID}
	acc := accountskeeper.New()
	tr := teerexkeeper.New(acc.Keeper, devnet.TeerexRules())
	ag, err := json.Marshal(accounts.DevGenesis())
	if err != nil {
		t.Fatal(err)
	}
	if err := acc.InitGenesis(ctx, ag); err != nil {
		t.Fatalf("accounts genesis: %v", err)
	}
	var tg []byte // nil: no entry
	if g.Teerex != nil {
		if tg, err = json.Marshal(g.Teerex); err != nil {
			t.Fatal(err)
		}
	}
	if err := tr.InitGenesis(ctx, tg); err != nil {
		t.Fatalf("teerex genesis: %v", err)
	}
	p, err := st.Prepare(1, kv.Changes())
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Commit(p); err != nil {
		t.Fatal(err)
	}
	c := &Chain{T: t, KV: store.NewCache(st), Accounts: acc, Teerex: tr}
	c.Ctx = &runtime.Context{Store: c.KV, ChainID: ChainID, Height: 1, Time: g.Time, Dev: g.Dev, Genesis: GenesisID}
	c.Next(0)
	return c
}

// RecordBlock writes the hash of block h (BlockHash) as the application
// does when it finalizes the block.
func (c *Chain) RecordBlock(h int64) {
	c.KV.Set(runtime.BlockHashKey(h), BlockHash(h))
}

// Next finalizes the current block and moves to the next one, d later.
func (c *Chain) Next(d time.Duration) {
	c.RecordBlock(c.Ctx.Height)
	c.Ctx.Height++
	c.Ctx.Time = c.Ctx.Time.Add(d)
}

// ToHeight moves to height h, one second per block.
func (c *Chain) ToHeight(h int64) {
	for c.Ctx.Height < h {
		c.Next(time.Second)
	}
}

// Result is what a call did.
type Result struct {
	Err     error
	Events  []abci.Event
	Data    []byte // result data (ExecTxResult.Data)
	Changes int    // writes
	// Prechecked: the module's Precheck ran (it has one, the call decoded),
	// and reported Deferred.
	Prechecked, Deferred bool
}

// Exec encodes, decodes and executes a call of m from sender on a branch,
// as the application does, and keeps its writes only on success. It fails
// the test on an error that is no *types.Error (the application halts the
// node on one) and where the module's Precheck (CheckTx) refuses a call
// that executes.
func (c *Chain) Exec(m runtime.Module, sender tx.Address, method string, args any) Result {
	c.T.Helper()
	call, err := tx.NewCall(m.Name(), method, args)
	if err != nil {
		c.T.Fatal(err)
	}
	msg, err := m.DecodeCall(call)
	if err != nil {
		return Result{Err: err}
	}
	var r Result
	var perr error
	if p, ok := m.(runtime.Prechecker); ok {
		pctx := c.Ctx.WithStore(c.KV.Branch())
		pctx.Sender = sender
		r.Prechecked = true
		r.Deferred, perr = p.Precheck(pctx, msg)
		if perr != nil && !errors.As(perr, new(*types.Error)) {
			c.T.Fatalf("%s: precheck error is no *types.Error: %v", method, perr)
		}
	}
	b := c.KV.Branch()
	ctx := c.Ctx.WithStore(b)
	ctx.Sender = sender
	r.Err = m.Execute(ctx, msg)
	if perr != nil && r.Err == nil {
		c.T.Fatalf("%s: precheck refused a call that succeeds: %v", method, perr)
	}
	r.Events, r.Data, r.Changes = ctx.Events(), ctx.Data(), len(b.Changes())
	if r.Err == nil {
		b.Write()
	} else if !errors.As(r.Err, new(*types.Error)) {
		c.T.Fatalf("%s: error is no *types.Error (would halt the node): %v", method, r.Err)
	}
	return r
}

// Register registers signer as a sim enclave of measurement m at the
// current block, failing the test if it cannot.
func (c *Chain) Register(signer tx.Address, m types.Hash) {
	c.T.Helper()
	r := c.Exec(c.Teerex, signer, teerex.MethodRegisterEnclave, SimRegistration(c.T, signer, m, c.Ctx.Genesis, ""))
	if r.Err != nil {
		c.T.Fatalf("register %s: %v", signer, r.Err)
	}
}

// SimRegistration is the registration of signer as a sim enclave of
// measurement m, with a DCAP quote that binds it on the chain of genesis
// ID g.
func SimRegistration(t testing.TB, signer tx.Address, m, g types.Hash, workerURL string) teerex.RegisterEnclave {
	t.Helper()
	mm := [32]byte(m)
	b, err := sim.New(sim.Config{Measurement: &mm})
	if err != nil {
		t.Fatal(err)
	}
	key := []byte("shielding key")
	q, err := b.Quote(teerex.ReportData(signer, key, g))
	if err != nil {
		t.Fatal(err)
	}
	return teerex.RegisterEnclave{Attestation: teerex.Evidence{Kind: attestation.KindDCAP, Quote: q}, ShieldingKey: key, WorkerURL: workerURL}
}

// Balance is a's balance.
func (c *Chain) Balance(a tx.Address) uint64 {
	c.T.Helper()
	acc, err := c.Accounts.Keeper.Account(c.KV, a)
	if err != nil {
		c.T.Fatal(err)
	}
	return acc.Balance
}
