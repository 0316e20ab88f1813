package e2e_test

import (
	"testing"
	"time"

	"github.com/integritee-go/integritee/attestation"
	"github.com/integritee-go/integritee/chain/accounts"
	"github.com/integritee-go/integritee/chain/teerex"
	"github.com/integritee-go/integritee/chain/types"
	"github.com/integritee-go/integritee/tee/sim"
)

// forgedEnclave is e with evidence from a PKI the chain does not trust:
// it parses and claims the right report data, and fails verification.
func forgedEnclave(t testing.TB, e *simEnclave, m, genesis types.Hash) *simEnclave {
	t.Helper()
	pki, err := sim.NewPKI([]byte("an attacker's own PKI"))
	if err != nil {
		t.Fatal(err)
	}
	mr := [32]byte(m)
	b, err := sim.New(sim.Config{PKI: pki, Measurement: &mr})
	if err != nil {
		t.Fatal(err)
	}
	q, err := b.Quote(teerex.ReportData(e.addr, e.shieldingKey, genesis))
	if err != nil {
		t.Fatal(err)
	}
	f := *e
	f.evidence = teerex.Evidence{Kind: attestation.KindDCAP, Quote: q}
	return &f
}

// CheckTx, which charges nothing, does not verify attestations: it refuses
// a registration whose evidence claims the wrong binding at the cost of a
// parse, and admits one that claims the right things, which the block
// then verifies, refuses and charges. Before, CheckTx verified every
// registration (about 4 ms of DCAP verification): a replayed quote was
// refused only after verification (ErrUntrustedRoot first, here) and a
// forged one never paid.
func TestCheckTxDefersAttestationVerification(t *testing.T) {
	c := newAppChain(t, true, t0, devTeerexGenesis(t, t0))
	m := measurement("v1")
	dave := newSimEnclave(t, "Dave", m, c.Genesis)
	wantOK(t, c.BlockAt(t0.Add(time.Second), c.sign(dave.key, teerex.Name, teerex.MethodRegisterEnclave, dave.register(""))))

	// Eve replays Dave's genuine quote, and a forged one of Ferdie's.
	eve := newSimEnclave(t, "Eve", m, c.Genesis)
	ferdie := forgedEnclave(t, newSimEnclave(t, "Ferdie", m, c.Genesis), m, c.Genesis)
	for name, ev := range map[string]teerex.Evidence{"genuine": dave.evidence, "forged": ferdie.evidence} {
		res := c.CheckTx(c.sign(eve.key, teerex.Name, teerex.MethodRegisterEnclave,
			teerex.RegisterEnclave{Attestation: ev, ShieldingKey: eve.shieldingKey}))
		wantCode(t, res.Codespace, res.Code, res.Log, teerex.ErrSenderNotAttested)
		delete(c.Nonces, eve.addr)
		if name == "forged" && c.Account(eve.addr).Nonce != 0 {
			t.Fatal("refused registration consumed a nonce")
		}
	}

	// Ferdie's forged quote claims the right binding: admitted, then
	// refused in the block, where it pays.
	reg := c.sign(ferdie.key, teerex.Name, teerex.MethodRegisterEnclave, ferdie.register(""))
	if res := c.CheckTx(reg); res.Code != 0 {
		t.Fatalf("CheckTx verified the attestation: %s/%d %s", res.Codespace, res.Code, res.Log)
	}
	before := c.Account(ferdie.addr)
	results := c.BlockAt(t0.Add(2*time.Second), reg)
	wantCode(t, results[0].Codespace, results[0].Code, results[0].Log, teerex.ErrUntrustedRoot)
	after := c.Account(ferdie.addr)
	if after.Nonce != before.Nonce+1 || before.Balance-after.Balance != accounts.Unit/100 {
		t.Fatalf("Ferdie %+v, was %+v: want the fee charged and the nonce consumed", after, before)
	}
	var e teerex.Enclave
	if c.Query("/teerex/enclave/"+ferdie.addr.String(), &e) {
		t.Fatalf("forged registration stored: %+v", e)
	}
}

// BenchmarkCheckTxReplayedQuote is the node's cost of refusing a copy of
// a genuine quote sent by another account.
func BenchmarkCheckTxReplayedQuote(b *testing.B) {
	c := newAppChain(b, true, t0, devTeerexGenesis(b, t0))
	m := measurement("v1")
	dave := newSimEnclave(b, "Dave", m, c.Genesis)
	wantOK(b, c.BlockAt(t0.Add(time.Second), c.sign(dave.key, teerex.Name, teerex.MethodRegisterEnclave, dave.register(""))))
	eve := accounts.DevKey("Eve")
	replay := c.sign(eve, teerex.Name, teerex.MethodRegisterEnclave, teerex.RegisterEnclave{Attestation: dave.evidence, ShieldingKey: dave.shieldingKey})
	for b.Loop() {
		if res := c.CheckTx(replay); res.Code == 0 {
			b.Fatal("replay admitted")
		}
	}
}
