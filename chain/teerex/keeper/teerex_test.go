package keeper_test

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/integritee-go/integritee/attestation"
	"github.com/integritee-go/integritee/attestation/dcap"
	"github.com/integritee-go/integritee/attestation/pcs"
	"github.com/integritee-go/integritee/chain/codec"
	"github.com/integritee-go/integritee/chain/devnet"
	"github.com/integritee-go/integritee/chain/teerex"
	"github.com/integritee-go/integritee/chain/teerex/keeper"
	"github.com/integritee-go/integritee/chain/tx"
	"github.com/integritee-go/integritee/chain/types"
	"github.com/integritee-go/integritee/tee/sim"
)

var shieldingKey = []byte("hpke ml-kem-768+x25519 public key of the shard")

func TestRegisterSimQuote(t *testing.T) {
	pki := devPKI(t)
	prod := newEnclave(t, "release", false, pki)
	debug := newEnclave(t, "debug build", true, pki)
	other := newEnclave(t, "not allowlisted", false, pki)

	tests := []struct {
		name    string
		dev     bool
		genesis func(t testing.TB) *teerex.GenesisState
		enclave enclave
		want    []error
	}{
		{name: "dev policy", dev: true, genesis: devGenesis, enclave: prod},
		{name: "dev policy debug enclave", dev: true, genesis: devGenesis, enclave: debug},
		{name: "dev chain without teerex genesis has no collateral", dev: true,
			genesis: func(testing.TB) *teerex.GenesisState { return nil }, enclave: prod, want: []error{teerex.ErrNoCollateral, dcap.ErrNoCollateral}},
		{name: "production policy untrusted root",
			genesis: func(testing.TB) *teerex.GenesisState { g := teerex.ProductionGenesis(prod.m); return &g },
			enclave: prod, want: []error{teerex.ErrUntrustedRoot, attestation.ErrUntrustedRoot}},
		{name: "production without teerex genesis untrusted root",
			genesis: func(testing.TB) *teerex.GenesisState { return nil }, enclave: prod, want: []error{teerex.ErrUntrustedRoot}},
		{name: "strict rules allowlisted",
			genesis: func(t testing.TB) *teerex.GenesisState { return strictSimGenesis(t, sim.CollateralOptions{}, prod.m) },
			enclave: prod},
		{name: "strict rules debug",
			genesis: func(t testing.TB) *teerex.GenesisState {
				return strictSimGenesis(t, sim.CollateralOptions{}, prod.m, debug.m)
			},
			enclave: debug, want: []error{teerex.ErrDebugEnclave, attestation.ErrDebugEnclave}},
		{name: "strict rules not allowlisted",
			genesis: func(t testing.TB) *teerex.GenesisState { return strictSimGenesis(t, sim.CollateralOptions{}, prod.m) },
			enclave: other, want: []error{teerex.ErrMRENCLAVENotAllowed}},
		{name: "strict rules empty allowlist allows nothing",
			genesis: func(t testing.TB) *teerex.GenesisState { return strictSimGenesis(t, sim.CollateralOptions{}) },
			enclave: prod, want: []error{teerex.ErrMRENCLAVENotAllowed}},
		{name: "strict rules out-of-date platform",
			genesis: func(t testing.TB) *teerex.GenesisState {
				return strictSimGenesis(t, sim.CollateralOptions{TCBStatus: attestation.StatusOutOfDate}, prod.m)
			},
			enclave: prod, want: []error{teerex.ErrTCBStatus, attestation.ErrTCBStatus}},
		{name: "SWHardeningNeeded accepted by default",
			genesis: func(t testing.TB) *teerex.GenesisState {
				return strictSimGenesis(t, sim.CollateralOptions{TCBStatus: attestation.StatusSWHardeningNeeded}, prod.m)
			},
			enclave: prod},
		{name: "revoked PCK", dev: true,
			genesis: func(t testing.TB) *teerex.GenesisState {
				return strictSimGenesis(t, sim.CollateralOptions{RevokePCK: true}, prod.m)
			},
			enclave: prod, want: []error{teerex.ErrRevoked, pcs.ErrRevoked}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := newChain(t, tc.dev, t0, tc.genesis(t))
			c.at(t0.Add(time.Minute))
			r := c.register(bob, tc.enclave.evidence(t, bob, shieldingKey), shieldingKey)
			if len(tc.want) > 0 {
				rejected(t, r, tc.want...)
				if _, err := c.Teerex.Keeper.Enclave(c.KV, bob); !errors.Is(err, teerex.ErrNotRegistered) {
					t.Fatalf("rejected registration is stored: %v", err)
				}
				return
			}
			wantErr(t, r.Err)
			if !hasEvent(r, teerex.EventRegistered) {
				t.Fatalf("no %s event: %v", teerex.EventRegistered, r.Events)
			}
			e, err := c.Teerex.Keeper.Active(c.KV, bob, c.Ctx.Time)
			wantErr(t, err)
			want := teerex.Enclave{
				Signer: bob, Kind: attestation.KindDCAP, MRENCLAVE: tc.enclave.m, MRSIGNER: sha256.Sum256([]byte("signer")),
				TCBStatus: e.TCBStatus, AdvisoryIDs: e.AdvisoryIDs, Debug: tc.enclave.backend == debug.backend,
				ShieldingKeyHash: sha256.Sum256(shieldingKey), WorkerURL: "wss://worker.example:2000",
				AttestedAt: c.Ctx.Time.UnixNano(), RegisteredHeight: c.Ctx.Height, AttestedHeight: c.Ctx.Height,
			}
			if !equalEnclave(e, want) {
				t.Fatalf("registration\n got %+v\nwant %+v", e, want)
			}
			if e.TCBStatus != attestation.StatusUpToDate && e.TCBStatus != attestation.StatusSWHardeningNeeded {
				t.Fatalf("status %s", e.TCBStatus)
			}
		})
	}
}

func equalEnclave(a, b teerex.Enclave) bool {
	x, err1 := codec.Marshal(a)
	y, err2 := codec.Marshal(b)
	return err1 == nil && err2 == nil && bytes.Equal(x, y)
}

func TestRegisterRejectsBadEvidence(t *testing.T) {
	pki := devPKI(t)
	e := newEnclave(t, "release", false, pki)
	forgedPKI, err := sim.NewPKI([]byte("an attacker's own pki seed, not the dev one"))
	if err != nil {
		t.Fatal(err)
	}
	forged := newEnclave(t, "release", false, forgedPKI)
	good := e.evidence(t, bob, shieldingKey)
	flip := func(off int) teerex.Evidence {
		q := bytes.Clone(good.Quote)
		q[off] ^= 0x01
		return teerex.Evidence{Kind: attestation.KindDCAP, Quote: q}
	}

	tests := []struct {
		name   string
		sender tx.Address
		ev     teerex.Evidence
		key    []byte
		at     time.Time
		want   []error
	}{
		{name: "other sender", sender: carol, ev: good, key: shieldingKey, want: []error{teerex.ErrSenderNotAttested}},
		{name: "other shielding key", sender: bob, ev: good, key: []byte("another key"), want: []error{teerex.ErrSenderNotAttested}},
		{name: "no shielding key", sender: bob, ev: good, want: []error{teerex.ErrSenderNotAttested}},
		// Attack 2 of issue 8: a host runs the same binary on a chain of
		// its own validators under the real chain ID; the genuine quote
		// commits to that chain's genesis.
		{name: "same chain ID, other validators", sender: bob, ev: e.evidenceOn(t, bob, shieldingKey, teerex.GenesisID("test", 1, validatorsHash("a host's own validators"))),
			key: shieldingKey, want: []error{teerex.ErrWrongChain}},
		{name: "other initial height", sender: bob, ev: e.evidenceOn(t, bob, shieldingKey, teerex.GenesisID("test", 2, testValidatorsHash())),
			key: shieldingKey, want: []error{teerex.ErrWrongChain}},
		{name: "no genesis (zero second half)", sender: bob, ev: e.evidenceOn(t, bob, shieldingKey, types.Hash{}), key: shieldingKey,
			want: []error{teerex.ErrWrongChain}},
		{name: "other sender and other chain", sender: carol, ev: e.evidenceOn(t, bob, shieldingKey, types.Hash{1}), key: shieldingKey,
			want: []error{teerex.ErrSenderNotAttested}},
		{name: "forged root", sender: bob, ev: forged.evidence(t, bob, shieldingKey), key: shieldingKey,
			want: []error{teerex.ErrUntrustedRoot, attestation.ErrUntrustedRoot}},
		// Offsets: report body (MRENCLAVE at 48+64), report data (48+320),
		// the quote signature (436+4), the QE report (436+4+128).
		{name: "tampered MRENCLAVE", sender: bob, ev: flip(48 + 64), key: shieldingKey, want: []error{teerex.ErrInvalidSignature, dcap.ErrQuoteSignature}},
		{name: "tampered report data", sender: bob, ev: flip(48 + 320), key: shieldingKey, want: []error{teerex.ErrInvalidSignature}},
		{name: "tampered signature", sender: bob, ev: flip(440), key: shieldingKey, want: []error{teerex.ErrInvalidSignature}},
		{name: "tampered QE report", sender: bob, ev: flip(440 + 128 + 20), key: shieldingKey, want: []error{teerex.ErrInvalidSignature}},
		{name: "truncated", sender: bob, ev: teerex.Evidence{Kind: attestation.KindDCAP, Quote: good.Quote[:1000]}, key: shieldingKey,
			want: []error{teerex.ErrMalformedEvidence, dcap.ErrMalformed}},
		{name: "trailing bytes", sender: bob, ev: teerex.Evidence{Kind: attestation.KindDCAP, Quote: append(bytes.Clone(good.Quote), 0)}, key: shieldingKey,
			want: []error{teerex.ErrMalformedEvidence, dcap.ErrTrailingBytes}},
		{name: "collateral expired", sender: bob, ev: good, key: shieldingKey, at: t0.Add(devnet.CollateralValidity + time.Second),
			want: []error{teerex.ErrInvalidCollateral, pcs.ErrExpired}},
		{name: "collateral not yet valid", sender: bob, ev: good, key: shieldingKey, at: t0.Add(-2 * time.Hour),
			want: []error{teerex.ErrInvalidCollateral, pcs.ErrNotYetValid}},
		{name: "ias kind with quote", sender: bob, ev: teerex.Evidence{Kind: attestation.KindIAS, Quote: good.Quote}, key: shieldingKey,
			want: []error{types.ErrMalformedCall}},
		{name: "unknown kind", sender: bob, ev: teerex.Evidence{Kind: "sev", Quote: good.Quote}, key: shieldingKey,
			want: []error{types.ErrMalformedCall}},
		{name: "ias garbage certificate", sender: bob, key: shieldingKey,
			ev:   teerex.Evidence{Kind: attestation.KindIAS, Report: []byte("{}"), Signature: []byte{1}, Certs: [][]byte{{0x30, 0x00}}},
			want: []error{teerex.ErrMalformedEvidence}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := newChain(t, true, t0, devGenesis(t))
			at := tc.at
			if at.IsZero() {
				at = t0.Add(time.Minute)
			}
			c.at(at)
			rejected(t, c.register(tc.sender, tc.ev, tc.key), tc.want...)
			if s := listed(t, c, nil); len(s) != 0 {
				t.Fatalf("enclaves after rejection: %v", s)
			}
		})
	}
}

func TestRenewalAndExpiry(t *testing.T) {
	pki := devPKI(t)
	e1 := newEnclave(t, "v1", false, pki)
	e2 := newEnclave(t, "v2", false, pki)
	c := newChain(t, true, t0, devGenesis(t))
	c.at(t0.Add(time.Minute))
	first := c.Ctx.Height
	wantErr(t, c.register(bob, e1.evidence(t, bob, shieldingKey), shieldingKey).Err)
	start := c.Ctx.Time

	tests := []struct {
		at   time.Duration
		want error
	}{
		{0, nil},
		{24 * time.Hour, nil},
		{24*time.Hour + time.Nanosecond, teerex.ErrExpired},
	}
	for _, tc := range tests {
		_, err := c.Teerex.Keeper.Active(c.KV, bob, start.Add(tc.at))
		if tc.want == nil {
			wantErr(t, err)
		} else {
			wantErr(t, err, tc.want)
		}
	}
	if _, err := c.Teerex.Keeper.Enclave(c.KV, bob); err != nil {
		t.Fatalf("expired registration must stay readable: %v", err)
	}

	// Renewal with another release moves the signer between the indexes.
	c.at(start.Add(23 * time.Hour))
	r := c.register(bob, e2.evidence(t, bob, shieldingKey), shieldingKey)
	wantErr(t, r.Err)
	if !hasEvent(r, teerex.EventRenewed) {
		t.Fatalf("no renewal event: %v", r.Events)
	}
	got, err := c.Teerex.Keeper.Active(c.KV, bob, start.Add(24*time.Hour+time.Second))
	wantErr(t, err)
	if got.MRENCLAVE != e2.m || got.RegisteredHeight != first || got.AttestedHeight != c.Ctx.Height || got.Attested() != c.Ctx.Time {
		t.Fatalf("renewed registration %+v", got)
	}
	if s := listed(t, c, &e1.m); len(s) != 0 {
		t.Fatalf("old measurement still lists %v", s)
	}
	if s := listed(t, c, &e2.m); !slices.Equal(s, []tx.Address{bob}) {
		t.Fatalf("new measurement lists %v", s)
	}
	_, err = c.Teerex.Keeper.Active(c.KV, bob, start.Add(47*time.Hour+time.Second))
	wantErr(t, err, teerex.ErrExpired)
}

func TestUnregisterAndIndexes(t *testing.T) {
	pki := devPKI(t)
	e := newEnclave(t, "v1", false, pki)
	c := newChain(t, true, t0, devGenesis(t))
	c.at(t0.Add(time.Minute))
	for _, s := range []tx.Address{bob, carol} {
		wantErr(t, c.register(s, e.evidence(t, s, shieldingKey), shieldingKey).Err)
	}
	want := []tx.Address{bob, carol}
	slices.SortFunc(want, func(a, b tx.Address) int { return bytes.Compare(a[:], b[:]) })
	for name, m := range map[string]*types.Hash{"all": nil, "of": &e.m} {
		if s := listed(t, c, m); !slices.Equal(s, want) {
			t.Fatalf("%s: %v, want %v", name, s, want)
		}
	}

	rejected(t, c.call(alice, teerex.MethodUnregisterEnclave, teerex.UnregisterEnclave{}), teerex.ErrNotRegistered)
	r := c.call(bob, teerex.MethodUnregisterEnclave, teerex.UnregisterEnclave{})
	wantErr(t, r.Err)
	if !hasEvent(r, teerex.EventUnregistered) {
		t.Fatal("no unregister event")
	}
	_, err := c.Teerex.Keeper.Active(c.KV, bob, c.Ctx.Time)
	wantErr(t, err, teerex.ErrNotRegistered)
	if s := listed(t, c, &e.m); !slices.Equal(s, []tx.Address{carol}) {
		t.Fatalf("index after unregister: %v", s)
	}
	if s := listed(t, c, nil); !slices.Equal(s, []tx.Address{carol}) {
		t.Fatalf("all after unregister: %v", s)
	}
}

func TestSudoCalls(t *testing.T) {
	pki := devPKI(t)
	e := newEnclave(t, "release", false, pki)
	fresh, err := pki.Collateral(t0)
	if err != nil {
		t.Fatal(err)
	}
	strict := strictSimGenesis(t, sim.CollateralOptions{})
	calls := []struct {
		method string
		args   any
	}{
		{teerex.MethodAllowMRENCLAVE, teerex.AllowMRENCLAVE{MRENCLAVE: e.m}},
		{teerex.MethodDisallowMRENCLAVE, teerex.DisallowMRENCLAVE{MRENCLAVE: e.m}},
		{teerex.MethodSetAttestationPolicy, teerex.SetAttestationPolicy{Policy: strict.Policy}},
		{teerex.MethodSetCollateral, collateralDocs(t, fresh)},
	}
	for _, tc := range calls {
		t.Run(tc.method, func(t *testing.T) {
			c := newChain(t, false, t0, strict)
			rejected(t, c.call(bob, tc.method, tc.args), teerex.ErrNotSudo)
			wantErr(t, c.call(alice, tc.method, tc.args).Err)
		})
	}
}

func TestAllowlistGovernance(t *testing.T) {
	pki := devPKI(t)
	e := newEnclave(t, "release", false, pki)
	c := newChain(t, false, t0, strictSimGenesis(t, sim.CollateralOptions{}))
	c.at(t0.Add(time.Minute))
	rejected(t, c.register(bob, e.evidence(t, bob, shieldingKey), shieldingKey), teerex.ErrMRENCLAVENotAllowed)

	r := c.call(alice, teerex.MethodAllowMRENCLAVE, teerex.AllowMRENCLAVE{MRENCLAVE: e.m})
	wantErr(t, r.Err)
	if !hasEvent(r, teerex.EventAllowed) {
		t.Fatal("no allow event")
	}
	if r := c.call(alice, teerex.MethodAllowMRENCLAVE, teerex.AllowMRENCLAVE{MRENCLAVE: e.m}); r.Err != nil || r.Changes != 0 || len(r.Events) != 0 {
		t.Fatalf("allowing twice: %+v", r)
	}
	wantErr(t, c.register(bob, e.evidence(t, bob, shieldingKey), shieldingKey).Err)
	_, err := c.Teerex.Keeper.Active(c.KV, bob, c.Ctx.Time)
	wantErr(t, err)

	// Disallowing deactivates registered enclaves at once.
	r = c.call(alice, teerex.MethodDisallowMRENCLAVE, teerex.DisallowMRENCLAVE{MRENCLAVE: e.m})
	wantErr(t, r.Err)
	if !hasEvent(r, teerex.EventDisallowed) {
		t.Fatal("no disallow event")
	}
	_, err = c.Teerex.Keeper.Active(c.KV, bob, c.Ctx.Time)
	wantErr(t, err, teerex.ErrMRENCLAVENotAllowed)
	if l, err := c.Teerex.Keeper.Allowlist(c.KV); err != nil || len(l) != 0 {
		t.Fatalf("allowlist %v %v", l, err)
	}
}

func TestSetAttestationPolicy(t *testing.T) {
	pki := devPKI(t)
	expired, err := pki.Collateral(t0.Add(-60 * 24 * time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	base := strictSimGenesis(t, sim.CollateralOptions{}).Policy
	mod := func(f func(p *teerex.Policy)) teerex.Policy {
		p := base
		p.AcceptedStatuses = slices.Clone(p.AcceptedStatuses)
		p.TCBInfos = slices.Clone(p.TCBInfos)
		p.PCKCRLs = slices.Clone(p.PCKCRLs)
		f(&p)
		return p
	}
	tests := []struct {
		name string
		dev  bool
		p    teerex.Policy
		want []error
	}{
		{name: "valid", p: base},
		{name: "debug on production", p: mod(func(p *teerex.Policy) { p.AllowDebug = true }), want: []error{teerex.ErrDevOnly}},
		{name: "any mrenclave on production", p: mod(func(p *teerex.Policy) { p.AllowAnyMRENCLAVE = true }), want: []error{teerex.ErrDevOnly}},
		{name: "debug on dev", dev: true, p: mod(func(p *teerex.Policy) { p.AllowDebug = true })},
		{name: "garbage root", p: mod(func(p *teerex.Policy) { p.DCAPRoots = [][]byte{{1, 2, 3}} }), want: []error{teerex.ErrInvalidPolicy}},
		{name: "collateral under another root", p: mod(func(p *teerex.Policy) { p.DCAPRoots = teerex.ProductionPolicy().DCAPRoots }),
			want: []error{teerex.ErrInvalidPolicy, attestation.ErrUntrustedRoot}},
		{name: "expired collateral", p: mod(func(p *teerex.Policy) {
			p.TCBInfos = nil
			if err := p.AddCollateral(expired); err != nil {
				t.Fatal(err)
			}
		}), want: []error{teerex.ErrInvalidPolicy, pcs.ErrExpired}},
		{name: "unknown status", p: mod(func(p *teerex.Policy) { p.AcceptedStatuses = append(p.AcceptedStatuses, "Fine") }), want: []error{teerex.ErrInvalidPolicy}},
		{name: "zero renewal period", p: mod(func(p *teerex.Policy) { p.RenewalPeriodSecs = 0 }), want: []error{teerex.ErrInvalidPolicy}},
		{name: "repeated FMSPC", p: mod(func(p *teerex.Policy) { p.TCBInfos = append(slices.Clone(p.TCBInfos), p.TCBInfos[0]) }),
			want: []error{teerex.ErrInvalidPolicy}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := newChain(t, tc.dev, t0, strictSimGenesis(t, sim.CollateralOptions{}))
			c.at(t0.Add(time.Minute))
			r := c.call(alice, teerex.MethodSetAttestationPolicy, teerex.SetAttestationPolicy{Policy: tc.p})
			if len(tc.want) > 0 {
				rejected(t, r, tc.want...)
				return
			}
			wantErr(t, r.Err)
			if !hasEvent(r, teerex.EventPolicySet) {
				t.Fatal("no policy event")
			}
			got, err := c.Teerex.Keeper.Policy(c.KV)
			wantErr(t, err)
			a, _ := codec.Marshal(got)
			b, _ := codec.Marshal(tc.p)
			if !bytes.Equal(a, b) {
				t.Fatal("stored policy differs")
			}
		})
	}
}

// A dev chain outlives its genesis collateral; sudo refreshes it.
func TestSetCollateralRefresh(t *testing.T) {
	pki := devPKI(t)
	e := newEnclave(t, "release", false, pki)
	c := newChain(t, true, t0, devGenesis(t))
	later := t0.Add(devnet.CollateralValidity + 24*time.Hour)
	c.at(later)
	rejected(t, c.register(bob, e.evidence(t, bob, shieldingKey), shieldingKey), teerex.ErrInvalidCollateral, pcs.ErrExpired)
	// Refreshing only the TCB info is not enough; Validate rejects the
	// policy with the stale QE identity.
	fresh, err := pki.Collateral(later)
	if err != nil {
		t.Fatal(err)
	}
	docs := collateralDocs(t, fresh)
	rejected(t, c.call(alice, teerex.MethodSetCollateral, teerex.SetCollateral{TCBInfos: docs.TCBInfos}), teerex.ErrInvalidPolicy, pcs.ErrExpired)
	r := c.call(alice, teerex.MethodSetCollateral, docs)
	wantErr(t, r.Err)
	if !hasEvent(r, teerex.EventCollateral) {
		t.Fatal("no collateral event")
	}
	p, err := c.Teerex.Keeper.Policy(c.KV)
	wantErr(t, err)
	if len(p.TCBInfos) != 1 || len(p.PCKCRLs) != 1 {
		t.Fatalf("refresh must replace by FMSPC and issuer: %d TCB infos, %d PCK CRLs", len(p.TCBInfos), len(p.PCKCRLs))
	}
	wantErr(t, c.register(bob, e.evidence(t, bob, shieldingKey), shieldingKey).Err)
}

func TestQueryKey(t *testing.T) {
	m := keeper.New(nil, nil)
	h := types.Hash{0xab}
	tests := []struct {
		path string
		want []byte
	}{
		{"policy", teerex.PolicyKey()},
		{"allowlist", teerex.AllowlistKey()},
		{"enclaves", teerex.EnclavesCountKey()},
		{"enclaves/0", teerex.EnclavesSlotKey(0)},
		{"enclaves/12345", teerex.EnclavesSlotKey(12345)},
		{"enclaves/" + h.String(), teerex.EnclavesOfCountKey(h)},
		{"enclaves/" + h.String() + "/7", teerex.EnclavesOfSlotKey(h, 7)},
		{"enclaves/-1", nil},
		{"enclaves/" + h.String() + "/x", nil},
		{"enclaves/" + h.String() + "/1/2", nil},
		{"enclave/" + bob.String(), teerex.EnclaveKey(bob)},
		{"enclave/xyz", nil},
		{"enclaves/00", nil},
		{"nothing", nil},
		{"enclave/" + bob.String() + "/more", nil},
	}
	for _, tc := range tests {
		got, err := m.QueryKey(splitPath(tc.path))
		if tc.want == nil {
			if err == nil {
				t.Errorf("%s: want error, got key %q", tc.path, got)
			}
			continue
		}
		if err != nil || !bytes.Equal(got, tc.want) {
			t.Errorf("%s: %q %v, want %q", tc.path, got, err, tc.want)
		}
	}
	// The keys are the ones the state is written under.
	pki := devPKI(t)
	e := newEnclave(t, "release", false, pki)
	c := newChain(t, true, t0, devGenesis(t))
	c.at(t0.Add(time.Minute))
	wantErr(t, c.register(bob, e.evidence(t, bob, shieldingKey), shieldingKey).Err)
	for _, k := range [][]byte{teerex.EnclaveKey(bob), teerex.EnclavesCountKey(), teerex.EnclavesSlotKey(0),
		teerex.EnclavesOfCountKey(e.m), teerex.EnclavesOfSlotKey(e.m, 0), teerex.PolicyKey()} {
		if v, err := c.KV.Get(k); err != nil || v == nil {
			t.Errorf("key %q not written: %v", k, err)
		}
	}
}

func splitPath(p string) []string {
	var out []string
	for s := range bytes.SplitSeq([]byte(p), []byte("/")) {
		out = append(out, string(s))
	}
	return out
}

func TestGenesis(t *testing.T) {
	dup := teerex.ProductionGenesis(types.Hash{1}, types.Hash{1})
	debugProd := teerex.ProductionGenesis()
	debugProd.Policy.AllowDebug = true
	for name, tc := range map[string]struct {
		dev bool
		g   *teerex.GenesisState
	}{
		"duplicate allowlist": {g: &dup},
		"debug in production": {g: &debugProd},
		"dev genesis too late": {dev: true, g: func() *teerex.GenesisState {
			g, _ := devnet.TeerexGenesis(t0.Add(-devnet.CollateralValidity - time.Hour))
			return &g
		}()},
	} {
		t.Run(name, func(t *testing.T) {
			st := newBareContext(t, tc.dev)
			raw, err := jsonMarshal(tc.g)
			if err != nil {
				t.Fatal(err)
			}
			if err := keeper.New(nil, nil).InitGenesis(st, raw); err == nil {
				t.Fatal("genesis accepted")
			}
		})
	}
}

// endBlock runs the module's EndBlock on a branch, as the application does
// after a block's transactions, and returns the signers it pruned.
func (c *chain) endBlock() []string {
	c.T.Helper()
	b := c.KV.Branch()
	ctx := c.Ctx.WithStore(b)
	if err := c.Teerex.EndBlock(ctx); err != nil {
		c.T.Fatal(err)
	}
	b.Write()
	var out []string
	for _, ev := range ctx.Events() {
		if ev.Type == teerex.EventPruned {
			out = append(out, ev.Attributes[0].Value)
		}
	}
	return out
}

// An expired registration stays readable (ErrExpired) for
// ExpiredRetention, then the end of a block removes it from the state and
// the listings; a renewal puts it back at the end of the line. Before
// pruning, expired registrations stayed in the state for ever.
func TestPruning(t *testing.T) {
	e := newEnclave(t, "v1", false, devPKI(t))
	c := newChain(t, true, t0, devGenesis(t))
	start := t0.Add(time.Minute)
	c.at(start)
	wantErr(t, c.register(bob, e.evidence(t, bob, shieldingKey), shieldingKey).Err)
	c.at(start.Add(time.Hour))
	wantErr(t, c.register(carol, e.evidence(t, carol, shieldingKey), shieldingKey).Err)
	p, err := c.Teerex.Keeper.Policy(c.KV)
	wantErr(t, err)
	kept := p.RenewalPeriod() + keeper.ExpiredRetention

	c.at(start.Add(kept))
	if got := c.endBlock(); len(got) != 0 {
		t.Fatalf("pruned %v at the end of the retention", got)
	}
	if _, err := c.Teerex.Keeper.Active(c.KV, bob, c.Ctx.Time); !errors.Is(err, teerex.ErrExpired) {
		t.Fatalf("Bob within retention: %v, want ErrExpired", err)
	}
	// Carol renews before her turn comes.
	c.at(start.Add(kept + time.Nanosecond))
	wantErr(t, c.register(carol, e.evidence(t, carol, shieldingKey), shieldingKey).Err)
	if got := c.endBlock(); !slices.Equal(got, []string{bob.String()}) {
		t.Fatalf("pruned %v, want Bob", got)
	}
	if _, err := c.Teerex.Keeper.Enclave(c.KV, bob); !errors.Is(err, teerex.ErrNotRegistered) {
		t.Fatalf("pruned registration: %v", err)
	}
	if s := listed(t, c, &e.m); !slices.Equal(s, []tx.Address{carol}) {
		t.Fatalf("listed after pruning: %v", s)
	}
	c.at(start.Add(time.Hour + kept + time.Second))
	if got := c.endBlock(); len(got) != 0 {
		t.Fatalf("pruned %v: Carol's renewal moved her expiry", got)
	}
	c.at(c.Ctx.Time.Add(kept))
	if got := c.endBlock(); !slices.Equal(got, []string{carol.String()}) {
		t.Fatalf("pruned %v, want Carol", got)
	}
	if s := listed(t, c, nil); len(s) != 0 {
		t.Fatalf("listed after pruning everything: %v", s)
	}
}

// Precheck (CheckTx) refuses, without verifying anything, a registration
// whose evidence does not parse or claims the wrong binding or a
// measurement that is not allowed, and defers everything else, a forgery
// that claims the right things included, to the block. Before, CheckTx ran
// the whole registration, verification first.
func TestPrecheck(t *testing.T) {
	pki := devPKI(t)
	e := newEnclave(t, "release", false, pki)
	forgedPKI, err := sim.NewPKI([]byte("an attacker's own pki seed"))
	if err != nil {
		t.Fatal(err)
	}
	forged := newEnclave(t, "release", false, forgedPKI)
	other := teerex.GenesisID("another chain", 1, validatorsHash("its validators"))
	for _, tc := range []struct {
		name   string
		strict bool
		ev     teerex.Evidence
		want   []error
	}{
		{name: "genuine", ev: e.evidence(t, bob, shieldingKey)},
		{name: "forged, claiming the right binding", ev: forged.evidence(t, bob, shieldingKey)},
		{name: "replayed from another sender", ev: e.evidence(t, carol, shieldingKey), want: []error{teerex.ErrSenderNotAttested}},
		{name: "forged for another sender", ev: forged.evidence(t, carol, shieldingKey), want: []error{teerex.ErrSenderNotAttested}},
		{name: "another chain", ev: e.evidenceOn(t, bob, shieldingKey, other), want: []error{teerex.ErrWrongChain}},
		{name: "not a quote", ev: teerex.Evidence{Kind: attestation.KindDCAP, Quote: []byte("not a quote")},
			want: []error{teerex.ErrMalformedEvidence, dcap.ErrMalformed}},
		{name: "not allowlisted", strict: true, ev: e.evidence(t, bob, shieldingKey), want: []error{teerex.ErrMRENCLAVENotAllowed}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := devGenesis(t)
			if tc.strict {
				g = strictSimGenesis(t, sim.CollateralOptions{})
			}
			c := newChain(t, !tc.strict, t0, g)
			c.at(t0.Add(time.Minute))
			call, err := tx.NewCall(teerex.Name, teerex.MethodRegisterEnclave, teerex.RegisterEnclave{Attestation: tc.ev, ShieldingKey: shieldingKey})
			if err != nil {
				t.Fatal(err)
			}
			msg, err := c.Teerex.DecodeCall(call)
			if err != nil {
				t.Fatal(err)
			}
			ctx := c.Ctx.WithStore(c.KV.Branch())
			ctx.Sender = bob
			deferred, err := c.Teerex.Precheck(ctx, msg)
			if !deferred {
				t.Fatal("registration not deferred to the block")
			}
			wantErr(t, err, tc.want...)
		})
	}
}
