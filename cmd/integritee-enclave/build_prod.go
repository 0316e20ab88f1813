//go:build !dev && !testtee

package main

// build is the production build (no build tags): real SGX through Gramine
// only, no simulated TEE, no dev features, no debug peers.
var build = buildConfig{
	name:       "production",
	defaultTEE: "gramine",
}
