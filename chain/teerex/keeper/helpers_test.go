package keeper_test

import (
	"bytes"
	"crypto/sha256"
	"crypto/x509"
	"encoding/json"
	"errors"
	"slices"
	"testing"
	"time"

	dbm "github.com/cometbft/cometbft-db"
	abci "github.com/cometbft/cometbft/abci/types"

	"github.com/integritee-go/integritee/attestation"
	"github.com/integritee-go/integritee/attestation/pcs"
	"github.com/integritee-go/integritee/chain/accounts"
	accountskeeper "github.com/integritee-go/integritee/chain/accounts/keeper"
	"github.com/integritee-go/integritee/chain/devnet"
	"github.com/integritee-go/integritee/chain/internal/moduletest"
	"github.com/integritee-go/integritee/chain/runtime"
	"github.com/integritee-go/integritee/chain/store"
	"github.com/integritee-go/integritee/chain/teerex"
	"github.com/integritee-go/integritee/chain/teerex/keeper"
	"github.com/integritee-go/integritee/chain/tx"
	"github.com/integritee-go/integritee/chain/types"
	"github.com/integritee-go/integritee/internal/testvectors"
	"github.com/integritee-go/integritee/tee/sim"
)

// t0 is the genesis time of the sim-based tests; the dev collateral is
// issued for it.
var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// genesis is the genesis ID of the test chain, which its contexts carry.
var genesis = teerex.GenesisID("test", 1, validatorsHash("test validators"))

// validatorsHash stands in for the hash of a named validator set.
func validatorsHash(name string) []byte {
	h := sha256.Sum256([]byte(name))
	return h[:]
}

var (
	alice = accounts.DevAddress("Alice") // sudo
	bob   = accounts.DevAddress("Bob")
	carol = accounts.DevAddress("Charlie")
)

// chain is a module on a real store branch with a context whose block
// time and height the test sets.
type chain struct {
	t   testing.TB
	mod *keeper.Module
	kv  *store.Cache
	ctx *runtime.Context
}

// newChain runs the accounts (dev) and teerex genesis on a fresh committed
// store at time at; g nil means no teerex entry.
func newChain(t testing.TB, dev bool, at time.Time, g *teerex.GenesisState) *chain {
	t.Helper()
	st, err := store.Open(dbm.NewMemDB())
	if err != nil {
		t.Fatal(err)
	}
	kv := store.NewCache(st)
	ctx := &runtime.Context{Store: kv, ChainID: "test", Height: 1, Time: at, Dev: dev, Genesis: genesis}
	acc := accountskeeper.New()
	ag, err := json.Marshal(accounts.DevGenesis())
	if err != nil {
		t.Fatal(err)
	}
	if err := acc.InitGenesis(ctx, ag); err != nil {
		t.Fatal(err)
	}
	mod := keeper.New(acc.Keeper, devnet.TeerexRules())
	var raw []byte
	if g != nil {
		if raw, err = json.Marshal(g); err != nil {
			t.Fatal(err)
		}
	}
	if err := mod.InitGenesis(ctx, raw); err != nil {
		t.Fatalf("teerex genesis: %v", err)
	}
	// Commit genesis so that every test starts from committed state.
	p, err := st.Prepare(1, kv.Changes())
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Commit(p); err != nil {
		t.Fatal(err)
	}
	c := &chain{t: t, mod: mod, kv: store.NewCache(st)}
	c.ctx = &runtime.Context{Store: c.kv, ChainID: "test", Height: 2, Time: at, Dev: dev, Genesis: genesis}
	return c
}

// at moves the chain to block time t and the next height.
func (c *chain) at(t time.Time) *chain {
	c.ctx.Time = t
	c.ctx.Height++
	return c
}

// result of one call.
type result struct {
	err     error
	events  []abci.Event
	changes int
}

// call encodes, decodes and executes a call from sender on a branch, as the
// application does, and keeps its writes only on success.
func (c *chain) call(sender tx.Address, method string, args any) result {
	c.t.Helper()
	call, err := tx.NewCall(teerex.Name, method, args)
	if err != nil {
		c.t.Fatal(err)
	}
	msg, err := c.mod.DecodeCall(call)
	if err != nil {
		return result{err: err}
	}
	// CheckTx's precheck must never refuse what execution accepts.
	pctx := c.ctx.WithStore(c.kv.Branch())
	pctx.Sender = sender
	deferred, perr := c.mod.Precheck(pctx, msg)
	if deferred != (method == teerex.MethodRegisterEnclave) {
		c.t.Fatalf("%s: deferred to the block: %v", method, deferred)
	}
	b := c.kv.Branch()
	ctx := c.ctx.WithStore(b)
	ctx.Sender = sender
	err = c.mod.Execute(ctx, msg)
	if perr != nil && err == nil {
		c.t.Fatalf("%s: precheck refused a call that succeeds: %v", method, perr)
	}
	if perr != nil && !errors.As(perr, new(*types.Error)) {
		c.t.Fatalf("%s: precheck error is no *types.Error: %v", method, perr)
	}
	r := result{err: err, events: ctx.Events(), changes: len(b.Changes())}
	if err == nil {
		b.Write()
	} else {
		var re *types.Error
		if !errors.As(err, &re) {
			c.t.Fatalf("%s: error is no *types.Error (would halt the node): %v", method, err)
		}
	}
	return r
}

func (c *chain) register(sender tx.Address, ev teerex.Evidence, shieldingKey []byte) result {
	c.t.Helper()
	return c.call(sender, teerex.MethodRegisterEnclave, teerex.RegisterEnclave{Attestation: ev, ShieldingKey: shieldingKey, WorkerURL: "wss://worker.example:2000"})
}

var wantErr = moduletest.WantErr

// rejected asserts a rejection that wrote nothing and emitted nothing.
func rejected(t testing.TB, r result, want ...error) {
	t.Helper()
	moduletest.Rejected(t, r.err, r.changes, r.events, want...)
}

func hasEvent(r result, typ string) bool {
	for _, e := range r.events {
		if e.Type == typ {
			return true
		}
	}
	return false
}

// enclave is a sim enclave with a measurement.
type enclave struct {
	backend *sim.Backend
	m       types.Hash
}

func newEnclave(t testing.TB, name string, debug bool, pki *sim.PKI) enclave {
	t.Helper()
	m := sha256.Sum256([]byte("enclave binary " + name))
	b, err := sim.New(sim.Config{PKI: pki, Measurement: &m, Debug: debug, MRSIGNER: sha256.Sum256([]byte("signer"))})
	if err != nil {
		t.Fatal(err)
	}
	return enclave{backend: b, m: m}
}

// evidence is a DCAP quote of e binding sender and shieldingKey on the
// test chain.
func (e enclave) evidence(t testing.TB, sender tx.Address, shieldingKey []byte) teerex.Evidence {
	t.Helper()
	return e.evidenceOn(t, sender, shieldingKey, genesis)
}

// evidenceOn is evidence for the chain with genesis ID g.
func (e enclave) evidenceOn(t testing.TB, sender tx.Address, shieldingKey []byte, g types.Hash) teerex.Evidence {
	t.Helper()
	q, err := e.backend.Quote(teerex.ReportData(sender, shieldingKey, g))
	if err != nil {
		t.Fatal(err)
	}
	return teerex.Evidence{Kind: attestation.KindDCAP, Quote: q}
}

func devPKI(t testing.TB) *sim.PKI {
	t.Helper()
	p, err := sim.NewPKI([]byte(sim.DefaultSeed))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func devGenesis(t testing.TB) *teerex.GenesisState {
	t.Helper()
	g, err := devnet.TeerexGenesis(t0)
	if err != nil {
		t.Fatal(err)
	}
	return &g
}

// strictSimGenesis has production rules (no debug, allowlist only, UpToDate
// and SWHardeningNeeded) but trusts the dev root, with collateral made by
// opts, so that the rules can be exercised with sim quotes.
func strictSimGenesis(t testing.TB, opts sim.CollateralOptions, allow ...types.Hash) *teerex.GenesisState {
	t.Helper()
	pki := devPKI(t)
	c, err := pki.CollateralWith(t0, opts)
	if err != nil {
		t.Fatal(err)
	}
	g := teerex.ProductionGenesis(allow...)
	g.Policy.DCAPRoots = [][]byte{pki.Root().Raw}
	if err := g.Policy.AddCollateral(c); err != nil {
		t.Fatal(err)
	}
	return &g
}

func collateralDocs(t testing.TB, c *pcs.Collateral) teerex.SetCollateral {
	t.Helper()
	var p teerex.Policy
	if err := p.AddCollateral(c); err != nil {
		t.Fatal(err)
	}
	return teerex.SetCollateral{TCBInfos: p.TCBInfos, QEIdentity: p.QEIdentity, PCKCRLs: p.PCKCRLs, RootCRL: p.RootCRL}
}

func derChain(chain []*x509.Certificate) [][]byte {
	out := make([][]byte, len(chain))
	for i, c := range chain {
		out[i] = c.Raw
	}
	return out
}

func readVector(t testing.TB, rel string) []byte { t.Helper(); return testvectors.Read(t, rel) }

func newBareContext(t testing.TB, dev bool) *runtime.Context {
	t.Helper()
	st, err := store.Open(dbm.NewMemDB())
	if err != nil {
		t.Fatal(err)
	}
	return &runtime.Context{Store: store.NewCache(st), ChainID: "test", Height: 1, Time: t0, Dev: dev, Genesis: genesis}
}

func jsonMarshal(v any) ([]byte, error) { return json.Marshal(v) }

// listed returns the signers of all registrations (m nil) or of those
// with measurement m, sorted, checking that the list's count, slots and
// the registrations agree.
func listed(t testing.TB, c *chain, m *types.Hash) []tx.Address {
	t.Helper()
	var (
		n   uint64
		err error
		out []tx.Address
	)
	each := func(s tx.Address) (bool, error) { out = append(out, s); return true, nil }
	if m == nil {
		n, err = c.mod.Keeper.Count(c.kv)
		if err == nil {
			err = c.mod.Keeper.EachEnclave(c.kv, each)
		}
	} else {
		n, err = c.mod.Keeper.CountOf(c.kv, *m)
		if err == nil {
			err = c.mod.Keeper.EachEnclaveOf(c.kv, *m, each)
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	if uint64(len(out)) != n {
		t.Fatalf("count %d, %d listed", n, len(out))
	}
	for _, s := range out {
		e, err := c.mod.Keeper.Enclave(c.kv, s)
		if err != nil || m != nil && e.MRENCLAVE != *m {
			t.Fatalf("listed %s: %+v %v", s, e, err)
		}
	}
	slices.SortFunc(out, func(a, b tx.Address) int { return bytes.Compare(a[:], b[:]) })
	if len(slices.Compact(slices.Clone(out))) != len(out) {
		t.Fatalf("listed twice: %v", out)
	}
	return out
}
