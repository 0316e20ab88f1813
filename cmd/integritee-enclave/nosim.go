//go:build !dev && !testtee

package main

import (
	"errors"

	"github.com/integritee-go/integritee/enclave"
	"github.com/integritee-go/integritee/tee"
)

// The production build links no simulated TEE (see sim.go).

func newSim(string, []byte) (tee.Backend, error) {
	return nil, errors.New("no simulated TEE in this build")
}

func simPeers(tee.Backend) *enclave.PeerAttestation { return nil }
