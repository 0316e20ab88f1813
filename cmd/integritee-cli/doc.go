// Command integritee-cli is the command-line client of integritee-go.
//
// Commands are grouped ("integritee-cli GROUP COMMAND [flags] [args]"); a
// few stand alone ("integritee-cli balance NAME"). Each group, or command
// standing alone, lives in the file named after it, and main.go lists them
// in the order of the help:
//
//	attestation.go  attestation verify, vectors, sim-quote; the real Intel
//	                vectors' table is in attestation_vectors.go
//	account.go      account new, list, show, encrypt; the keystore and the
//	                resolution of account names are in keys.go
//	balance.go      balance
//	transfer.go     transfer
//	enclaves.go     enclaves list, show
//	shard.go        shard show
//	policy.go       policy show
//	sudo.go         sudo allow-mrenclave, disallow-mrenclave, remove-enclave;
//	                set-collateral is in sudo_collateral.go
//	trusted.go      trusted shield, transfer, unshield, balance; the direct
//	                path and trusted nonce are in trusted_direct.go
//	status.go       status: node, enclaves, shards, workers in one screen
//	localnet.go     localnet
//	load.go         load transfers, direct
//
// chain.go holds what the public-chain commands share: node flags and
// amounts.
//
// Keystore keys are passphrase-encrypted files (package client/keystore);
// the passphrase comes from INTEGRITEE_KEYSTORE_PASSPHRASE or is asked on
// the terminal without echo, only when a key signs. Dev names need no
// keystore.
//
// The command tree is built on package internal/cli: each command parses
// its own flags (flags may follow positional arguments), -h prints its
// help, and Ctrl-C cancels the command's context. Commands that print
// results take --json for machine-readable output. On failure a command
// prints one line "integritee-cli: ..." to stderr and exits with status
// 1, or 2 for a usage error.
//
// # Trusted calls
//
// The trusted group talks to a shard: confidential balances held by the
// shard's enclaves. Incognito accounts are ed25519 keys like public ones;
// "NAME//SUFFIX" of a dev account NAME is the well-known dev key with seed
// sha256("//NAME//SUFFIX") (e.g. Alice//incognito), and keystore names and
// dev names work too.
//
// Trusted calls go straight to the worker's JSON-RPC by default (direct
// invocation, trusted_direct.go) and come back executed, or refused, at
// once on the enclave's signature; with --indirect they travel encrypted
// inside a public bridge invoke paid by a public account. Either way the
// worker's enclave is first verified against its registration on chain
// (package client/trusted): a worker handing out a shielding key other
// than the one its attested enclave registered is refused before anything
// is encrypted to it. Calls and getters are signed for the chain the
// node's light client verified, the enclave and the shard. Getters are
// private: the worker reads neither the request nor the answer; each is
// signed for its one-time reply key and to expire two minutes after the
// CLI's clock (judged by the enclave against the chain's time), so a
// captured getter cannot be answered to anyone else or later.
//
// # Load
//
// The load group measures a local network (package loadgen): public
// transfers through the node, or direct trusted calls through a worker.
// It refuses any address that is not loopback: it must never load another
// machine. Senders are dev-derived accounts funded from Alice, so the
// target must run a dev genesis (localnet, integritee-node --dev).
package main
