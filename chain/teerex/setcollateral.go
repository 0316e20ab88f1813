package teerex

import (
	"errors"
	"fmt"

	"github.com/integritee-go/integritee/attestation/pcs"
)

// NewSetCollateral returns the set_collateral argument that installs the
// pieces of c it has: the documents as Intel signed them, with their issuer
// chains (as Policy.AddCollateral stores them).
func NewSetCollateral(c *pcs.Collateral) (SetCollateral, error) {
	var s SetCollateral
	if c == nil {
		return s, errors.New("set_collateral: no collateral")
	}
	if c.TCBInfo != nil {
		env, err := c.TCBInfo.MarshalEnvelope()
		if err != nil {
			return s, fmt.Errorf("set_collateral: TCB info: %w", err)
		}
		s.TCBInfos = []SignedDoc{{Envelope: env, Chain: chainPEM(c.TCBInfo.Chain)}}
	}
	if c.QEIdentity != nil {
		env, err := c.QEIdentity.MarshalEnvelope()
		if err != nil {
			return s, fmt.Errorf("set_collateral: QE identity: %w", err)
		}
		s.QEIdentity = &SignedDoc{Envelope: env, Chain: chainPEM(c.QEIdentity.Chain)}
	}
	if c.PCKCRL != nil {
		s.PCKCRLs = []CRLDoc{{CRL: c.PCKCRL.List.Raw, Chain: chainPEM(c.PCKCRL.Chain)}}
	}
	if c.RootCRL != nil {
		// As in AddCollateral: the policy's root is the list's issuer.
		s.RootCRL = &CRLDoc{CRL: c.RootCRL.List.Raw}
	}
	if len(s.TCBInfos) == 0 && s.QEIdentity == nil && len(s.PCKCRLs) == 0 && s.RootCRL == nil {
		return s, errors.New("set_collateral: no collateral")
	}
	return s, nil
}
