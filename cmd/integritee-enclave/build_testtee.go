//go:build testtee && !dev

package main

import "github.com/integritee-go/integritee/tee/sim"

// build is a production build for tests (`go build -tags testtee`): the
// production rules (no dev features, no debug peers) on a simulated TEE
// whose PKI is the test PKI, not the dev chain's. It lets the production
// code paths run end to end on machines without SGX; a chain trusts it
// only if its policy names the test root.
var build = buildConfig{
	name:       "production rules, test TEE",
	defaultTEE: "sim",
	tunable:    true,
	simSeed:    sim.TestSeed,
}
