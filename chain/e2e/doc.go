// Package e2e holds the end-to-end tests of integritee-node: real
// in-process one-validator nodes driven through CometBFT's RPC and the
// client package, and the ABCI application driven block by block where a
// test needs explicit block times (real Intel vectors, expiry). It has no
// non-test code.
package e2e
