// Package worker is the untrusted host of an integritee worker. It starts
// the enclave (a child process speaking enclave/protocol), keeps the
// enclave's sealed keys and the shard's encrypted state on disk (package
// worker/store), registers the enclave on chain, follows the chain block by
// block feeding the enclave what it needs to verify and process each block,
// serves direct calls, and submits the transactions the enclave signs.
//
// The host holds no secret: the enclave's keys reach it only sealed, the
// state only as encrypted entries under blinded keys, and everything the
// enclave is fed (headers, commits, validator sets, transactions, results)
// the enclave verifies itself. This package must not import the enclave's
// key, sealing, state or STF packages; only enclave/protocol (wire types)
// and enclave/shielding (public key use).
//
// # Parts
//
// The Worker wires parts that each own one concern and talk to the enclave
// only through the supervisor:
//
//	supervisor.go  the enclave: process lifecycle, restart from the store,
//	               Call (no state change) and Apply (call, check, commit:
//	               the only way the state changes)
//	enclave.go     the enclave process handle (Enclave, Process, Pipe)
//	chain.go       the node's blocks and registry, read for the enclave
//	sync.go        chain sync: one Apply per chain block
//	direct.go      direct calls (rpc.Backend): one Apply per batch, and the
//	               single-worker gate
//	submit.go      the outbox: sign and submit what the enclave emitted
//	renew.go       registration, its renewal, the count of the shard's
//	               enclaves
//	provision.go   key and state provisioning between the shard's workers
//	listen.go      the worker's own listeners: JSON-RPC (with the
//	               provisioning routes) and the provisioning listener
//
// # Restart safety
//
// Every state change is one supervisor.Apply: the enclave's reply (state
// changes, sealed checkpoint, outgoing calls, shard block) is committed to
// the store in one bbolt transaction before anything else sees it, and
// only then is anything submitted or acknowledged. A reply that was not
// committed did not happen: whenever the enclave may hold state the store
// does not (it died, failed internally, its reply was refused, the commit
// failed), the supervisor ends it, and the next request starts a fresh
// process with the sealed keys and checkpoint, streams the stored entries
// into it and continues from there. So a SIGKILL at any moment neither
// skips nor repeats a block or a batch. Outgoing calls stay in the outbox
// until they are on chain; a call submitted twice is refused by the chain
// (an unshield pays once per call hash, a confirmation must be above the
// enclave's last one).
//
// # Direct invocation
//
// With Config.RPCListen the worker serves the JSON-RPC API of package
// worker/rpc: clients send encrypted trusted calls straight to it, and it
// passes them to the enclave in batches, one shard block per batch, taking
// turns with block processing. A shard block is committed
// (store.CommitShardBlock) before any of its calls is reported executed,
// and its confirm_sidechain_block goes through the outbox like every
// outgoing call; the chain's confirmations reach the watchers as the
// worker processes the blocks that carry them (direct.go). Every worker of
// a shard takes direct calls: the shard's enclaves order them with the
// chain's blocks in one Raft log (replicate.go, docs/sidechain.md).
package worker
