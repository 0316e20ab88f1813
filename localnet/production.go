package localnet

import (
	"fmt"
	"time"

	"github.com/integritee-go/integritee/chain/devnet"
	"github.com/integritee-go/integritee/chain/teerex"
	"github.com/integritee-go/integritee/chain/types"
	"github.com/integritee-go/integritee/tee/sim"
)

// TestTEEGenesis is the teerex genesis of a network with production rules
// on the test TEE (Config.ProductionRules): the production policy (no
// debug enclaves, only allowlisted measurements, TCB statuses UpToDate and
// SWHardeningNeeded) with the test PKI's root in place of Intel's SGX root
// and its collateral, made once for genesisTime, and allow as the only
// measurements. The dev PKI is not trusted: a dev build cannot register.
func TestTEEGenesis(genesisTime time.Time, allow ...types.Hash) (teerex.GenesisState, error) {
	pki, err := sim.NewPKI([]byte(sim.TestSeed))
	if err != nil {
		return teerex.GenesisState{}, fmt.Errorf("test TEE genesis: %w", err)
	}
	c, err := pki.CollateralWith(genesisTime, sim.CollateralOptions{ValidFor: devnet.CollateralValidity})
	if err != nil {
		return teerex.GenesisState{}, fmt.Errorf("test TEE genesis: %w", err)
	}
	p := teerex.ProductionPolicy()
	p.DCAPRoots = [][]byte{pki.Root().Raw}
	if err := p.AddCollateral(c); err != nil {
		return teerex.GenesisState{}, fmt.Errorf("test TEE genesis: %w", err)
	}
	return teerex.GenesisState{Policy: p, Allowlist: allow}, nil
}
