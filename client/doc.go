// Package client is the Go SDK of integritee-node: it builds, signs and
// submits transactions over CometBFT's RPC and queries state with Merkle
// proofs checked against light-client-verified headers.
//
// What is verified. Proved queries (the Verified* methods, GenesisID,
// Enclave, Policy, Shard, ...) check the Merkle proof of the value against
// the app hash of the header that commits to that state (the header one
// block later), and that header is verified with CometBFT's light-client
// rules (more than 2/3 of the validators signed it; validator changes are
// followed by skipping verification, lower heights by hash links) from a
// trusted root. The root is, in this order: the block at
// Options.TrustHeight with Options.TrustHash; the header the
// Options.TrustStore kept from an earlier run (the newest verified then);
// the node's newest block, trusted on first use (TOFU: the client then
// checks that the node is consistent with itself, not that its chain is
// the real one). A root older than the trusting period is refused
// (ErrTrustExpired), a node whose chain does not follow from it too
// (ErrChainMismatch). Plain methods (Account, Params) trust the node.
//
// # Calls
//
// The call helpers (Transfer, RegisterEnclave, ShieldFunds, ...) build one
// module call each and Submit it: signed by key with the account's next
// committed nonce and the minimum fee, waited for until its block. A rejection by CheckTx or a failure in the block is
// a *TxError that matches the module's error under errors.Is.
//
// # Proved queries
//
// The typed queries (VerifiedParams, Enclave, Shard, Policy, ...) are
// proved: the value (or its absence) is checked against a verified header,
// as VerifiedAccount does, and each returns the height it was read at. Queries that read several keys read them all at
// one height.
package client
