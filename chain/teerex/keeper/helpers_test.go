package keeper_test

import (
	"bytes"
	"crypto/sha256"
	"crypto/x509"
	"encoding/json"
	"slices"
	"testing"
	"time"

	dbm "github.com/cometbft/cometbft-db"

	"github.com/integritee-go/integritee/attestation"
	"github.com/integritee-go/integritee/attestation/pcs"
	"github.com/integritee-go/integritee/chain/accounts"
	"github.com/integritee-go/integritee/chain/devnet"
	"github.com/integritee-go/integritee/chain/internal/moduletest"
	"github.com/integritee-go/integritee/chain/runtime"
	"github.com/integritee-go/integritee/chain/store"
	"github.com/integritee-go/integritee/chain/teerex"
	"github.com/integritee-go/integritee/chain/tx"
	"github.com/integritee-go/integritee/chain/types"
	"github.com/integritee-go/integritee/internal/testvectors"
	"github.com/integritee-go/integritee/tee/sim"
)

// t0 is the genesis time of the sim-based tests; the dev collateral is
// issued for it.
var t0 = moduletest.T0

// genesis is the genesis ID of the test chain, which its contexts carry.
var genesis = moduletest.GenesisID

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

// chain is the shared fixture with teerex as the module under test.
type chain struct{ *moduletest.Chain }

// newChain runs the accounts (dev) and teerex genesis on a fresh committed
// store at time at; g nil means no teerex entry.
func newChain(t testing.TB, dev bool, at time.Time, g *teerex.GenesisState) *chain {
	t.Helper()
	return &chain{moduletest.NewChain(t, moduletest.Genesis{Dev: dev, Time: at, Teerex: g})}
}

// at moves the chain to block time t and the next height.
func (c *chain) at(t time.Time) *chain {
	c.Next(t.Sub(c.Ctx.Time))
	return c
}

// call executes a teerex call; only a registration defers to the block in
// CheckTx.
func (c *chain) call(sender tx.Address, method string, args any) moduletest.Result {
	c.T.Helper()
	r := c.Exec(c.Teerex, sender, method, args)
	if r.Prechecked && r.Deferred != (method == teerex.MethodRegisterEnclave) {
		c.T.Fatalf("%s: deferred to the block: %v", method, r.Deferred)
	}
	return r
}

func (c *chain) register(sender tx.Address, ev teerex.Evidence, shieldingKey []byte) moduletest.Result {
	c.T.Helper()
	return c.call(sender, teerex.MethodRegisterEnclave, teerex.RegisterEnclave{Attestation: ev, ShieldingKey: shieldingKey, WorkerURL: "wss://worker.example:2000"})
}

var (
	wantErr  = moduletest.WantErr
	rejected = moduletest.Rejected
)

func hasEvent(r moduletest.Result, typ string) bool {
	for _, e := range r.Events {
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
		n, err = c.Teerex.Keeper.Count(c.KV)
		if err == nil {
			err = c.Teerex.Keeper.EachEnclave(c.KV, each)
		}
	} else {
		n, err = c.Teerex.Keeper.CountOf(c.KV, *m)
		if err == nil {
			err = c.Teerex.Keeper.EachEnclaveOf(c.KV, *m, each)
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	if uint64(len(out)) != n {
		t.Fatalf("count %d, %d listed", n, len(out))
	}
	for _, s := range out {
		e, err := c.Teerex.Keeper.Enclave(c.KV, s)
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

// testValidatorsHash is the hash of the test chain's validator set.
func testValidatorsHash() []byte {
	_, h := moduletest.Validators(moduletest.ChainID, 1)
	return h
}
