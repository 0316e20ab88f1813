//go:build dev

package main

import (
	"crypto/ed25519"
	"crypto/sha256"

	"github.com/integritee-go/integritee/chain/tx"
	"github.com/integritee-go/integritee/tee/sim"
)

// build is a development build (`go build -tags dev`): the simulated TEE
// under the public dev PKI, and the dev features (set_balance by the dev
// chain's sudo Alice, plaintext state access, debug peers). Being compiled
// in, the choice is part of the binary and so of its measurement.
var build = buildConfig{
	name:       "dev",
	dev:        true,
	devSudo:    devAlice(),
	defaultTEE: "sim",
	tunable:    true,
	simSeed:    sim.DefaultSeed,
}

// devAlice is the address of the dev chain's sudo account Alice (seed
// sha256("//Alice"), as chain/accounts.DevKey), written out so that the
// enclave does not link the chain's accounts keeper.
func devAlice() tx.Address {
	seed := sha256.Sum256([]byte("//Alice"))
	return tx.AddressOf(ed25519.NewKeyFromSeed(seed[:]).Public().(ed25519.PublicKey))
}
