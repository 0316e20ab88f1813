package main

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/integritee-go/integritee/attestation"
	"github.com/integritee-go/integritee/tee/sim"
)

// TestSetCollateral installs fresh collateral of the dev PKI on a dev node
// with `sudo set-collateral`, as an operator installs Intel's PCS documents:
// the policy then holds exactly those documents (the TCB info of the same
// FMSPC replaced); a CRL-only refresh works; files that do not parse, no
// collateral and a sender that is not sudo are refused.
func TestSetCollateral(t *testing.T) {
	node, c := startDevNode(t)
	pki, err := sim.NewPKI([]byte(sim.DefaultSeed))
	if err != nil {
		t.Fatal(err)
	}
	col, err := pki.CollateralWith(time.Now(), sim.CollateralOptions{TCBStatus: attestation.StatusSWHardeningNeeded})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	chainPEM := func(certs []*x509.Certificate) []byte {
		var out []byte
		for _, c := range certs {
			out = append(out, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
		}
		return out
	}
	tcb, err := col.TCBInfo.MarshalEnvelope()
	if err != nil {
		t.Fatal(err)
	}
	qe, err := col.QEIdentity.MarshalEnvelope()
	if err != nil {
		t.Fatal(err)
	}
	files := []string{
		"--tcb-info", write("tcb.json", tcb), "--tcb-info-chain", write("tcb-chain.pem", chainPEM(col.TCBInfo.Chain)),
		"--qe-identity", write("qe.json", qe),
		"--pck-crl", write("pck.crl", col.PCKCRL.List.Raw), "--pck-crl-chain", write("pck-chain.pem", chainPEM(col.PCKCRL.Chain)),
		"--root-crl", write("root.crl", col.RootCRL.List.Raw),
	}
	var out struct {
		Height     int64  `json:"height"`
		TCBInfos   int    `json:"tcb_infos"`
		FMSPC      string `json:"fmspc"`
		QEIdentity bool   `json:"qe_identity"`
		PCKCRLs    int    `json:"pck_crls"`
		RootCRL    bool   `json:"root_crl"`
	}
	cliJSON(t, &out, append([]string{"sudo", "set-collateral", "--node", node, "--keystore", t.TempDir()}, files...)...)
	if out.Height == 0 || out.TCBInfos != 1 || out.FMSPC == "" || !out.QEIdentity || out.PCKCRLs != 1 || !out.RootCRL {
		t.Errorf("set-collateral output %+v", out)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	p, _, err := c.Policy(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.TCBInfos) != 1 || !bytes.Equal(p.TCBInfos[0].Envelope, tcb) {
		t.Errorf("policy TCB infos %d, want only the one installed", len(p.TCBInfos))
	}
	if p.QEIdentity == nil || !bytes.Equal(p.QEIdentity.Envelope, qe) {
		t.Error("policy QE identity is not the one installed")
	}
	if len(p.PCKCRLs) != 1 || !bytes.Equal(p.PCKCRLs[0].CRL, col.PCKCRL.List.Raw) || p.RootCRL == nil || !bytes.Equal(p.RootCRL.CRL, col.RootCRL.List.Raw) {
		t.Error("policy CRLs are not the ones installed")
	}

	// A refresh of the lists alone: issued half an hour after the first
	// (Collateral issues at at-1h), still before the chain's block time,
	// which may trail the clock.
	later, err := pki.Collateral(time.Now().Add(30 * time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	cliJSON(t, &out, "sudo", "set-collateral", "--node", node, "--keystore", t.TempDir(), "--root-crl", write("root2.crl", later.RootCRL.List.Raw))
	if out.TCBInfos != 0 || out.QEIdentity || out.PCKCRLs != 0 || !out.RootCRL {
		t.Errorf("CRL-only output %+v", out)
	}
	if p, _, err = c.Policy(ctx); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(p.RootCRL.CRL, later.RootCRL.List.Raw) || !bytes.Equal(p.TCBInfos[0].Envelope, tcb) {
		t.Error("CRL refresh did not replace the root CRL alone")
	}

	cliFails(t, "no collateral", "sudo", "set-collateral", "--node", node)
	cliFails(t, "TCB info", append([]string{"sudo", "set-collateral", "--node", node, "--tcb-info", write("bad.json", []byte(`{"tcbInfo":{}}`))}, files[2:]...)...)
	cliFails(t, "not the sudo key", append([]string{"sudo", "set-collateral", "--node", node, "--from", "bob", "--keystore", t.TempDir()}, files...)...)
}
