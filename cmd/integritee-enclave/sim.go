//go:build dev || testtee

package main

import (
	"crypto/x509"
	"fmt"
	"os"
	"time"

	"github.com/integritee-go/integritee/attestation/pcs"
	"github.com/integritee-go/integritee/enclave"
	"github.com/integritee-go/integritee/tee"
	"github.com/integritee-go/integritee/tee/sim"
)

// newSim is the simulated TEE under the PKI of seed, with the machine's
// sealing secret (nil: derived from the PKI). Only dev and test builds
// link it: a production enclave cannot be switched to it.
func newSim(seed string, sealingSecret []byte) (tee.Backend, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("locate own executable: %w", err)
	}
	pki, err := sim.NewPKI([]byte(seed))
	if err != nil {
		return nil, err
	}
	return sim.New(sim.Config{EnclaveBinary: exe, PKI: pki, SealingSecret: sealingSecret})
}

// simPeers is the peer trust of a sim enclave: its own build's PKI
// (compiled in through its seed), whose collateral it makes itself; nil
// for other backends.
func simPeers(b tee.Backend) *enclave.PeerAttestation {
	s, ok := b.(*sim.Backend)
	if !ok {
		return nil
	}
	p := s.PKI()
	return &enclave.PeerAttestation{
		Roots:      []*x509.Certificate{p.Root()},
		Collateral: func([6]byte) (*pcs.Collateral, error) { return p.Collateral(time.Now()) },
	}
}
