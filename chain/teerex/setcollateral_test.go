package teerex_test

import (
	"bytes"
	"testing"
	"time"

	"github.com/integritee-go/integritee/attestation/pcs"
	"github.com/integritee-go/integritee/chain/teerex"
	"github.com/integritee-go/integritee/tee/sim"
)

// TestNewSetCollateral: the call carries exactly the pieces given, as
// Policy.AddCollateral would store them; no collateral is an error.
func TestNewSetCollateral(t *testing.T) {
	pki, err := sim.NewPKI([]byte(sim.DefaultSeed))
	if err != nil {
		t.Fatal(err)
	}
	col, err := pki.Collateral(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	full, err := teerex.NewSetCollateral(col)
	if err != nil {
		t.Fatal(err)
	}
	var p teerex.Policy
	if err := p.AddCollateral(col); err != nil {
		t.Fatal(err)
	}
	if len(full.TCBInfos) != 1 || !bytes.Equal(full.TCBInfos[0].Envelope, p.TCBInfos[0].Envelope) || !bytes.Equal(full.TCBInfos[0].Chain, p.TCBInfos[0].Chain) ||
		full.QEIdentity == nil || !bytes.Equal(full.QEIdentity.Envelope, p.QEIdentity.Envelope) ||
		len(full.PCKCRLs) != 1 || !bytes.Equal(full.PCKCRLs[0].CRL, p.PCKCRLs[0].CRL) ||
		full.RootCRL == nil || !bytes.Equal(full.RootCRL.CRL, p.RootCRL.CRL) {
		t.Errorf("call %+v differs from what AddCollateral stores", full)
	}
	crlOnly, err := teerex.NewSetCollateral(&pcs.Collateral{RootCRL: col.RootCRL})
	if err != nil || crlOnly.RootCRL == nil || len(crlOnly.TCBInfos) != 0 || crlOnly.QEIdentity != nil || len(crlOnly.PCKCRLs) != 0 {
		t.Errorf("root CRL only: %+v, %v", crlOnly, err)
	}
	for _, c := range []*pcs.Collateral{nil, {}} {
		if _, err := teerex.NewSetCollateral(c); err == nil {
			t.Errorf("NewSetCollateral(%v): no error", c)
		}
	}
}
