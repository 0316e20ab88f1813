// Package bridge is the enclave bridge module (enclave_bridge): the public
// chain's side of the shards that enclaves run. It carries encrypted calls
// to the workers (invoke), moves public funds into a shard's vault
// (shield_funds) and out of it (unshield_funds, once per call hash, only
// as proved by a confirmed shard block), records the blocks enclaves confirm to have processed and
// flags disagreement, and says which enclave measurement serves each shard.
//
// State (values deterministic CBOR):
//
//	bridge/s/<shard>                  Shard (config, latest confirmation, divergences)
//	bridge/c/<shard><enclave>         Confirmation: the enclave's latest
//	bridge/u/<shard><call hash>       Unshielded
//	bridge/b/<shard><8-byte height>   Confirmation: the first for the height
//
// Queries: /bridge/shard/<hex shard> (absent until the shard's first
// confirmation or configuration change: read it as DefaultShard), with the
// vault balance at /accounts/<hex Shard.Vault>;
// /bridge/confirmation/<hex shard>/<hex enclave>;
// /bridge/unshielded/<hex shard>/<hex call hash>;
// /bridge/block/<hex shard>/<height>.
//
// Confirmations. confirm_processed_block must name the chain's own block:
// its block hash must be the one the chain recorded for that height
// (runtime.Context.BlockHash, the last runtime.BlockHashWindow blocks),
// else ErrUnknownBlock, so a worker fed a fake chain cannot confirm it.
// An enclave's confirmations need only rise (ErrStaleConfirmation), not be
// consecutive: enclaves confirm a block that changed their shard and, when
// idle, a heartbeat (enclave/commit.go), the same heights on every enclave
// of the shard, so that the first confirmation of a height is compared with
// the others (bridge.state_divergence). Nothing expires without
// confirmations, and unshields depend on the sidechain module's confirmed
// blocks, not on these.
//
// Membership. An enclave serves a shard at height h if teerex reports it
// Active (registered, not expired, still allowed) and its MRENCLAVE is the
// shard's measurement at h: by default the shard ID itself, changed by
// update_shard_config from an enactment height on, so that a shard moves to
// a new enclave release while keeping its ID, vault and state.
//
// Unshielding. An enclave's word is not enough: a host can roll an
// enclave's state back and have it sign the same funds out twice. An
// unshield_funds names a shard block that the sidechain module confirmed
// (the shard's one confirmed chain of state transitions) and carries a
// Merkle proof that the unshield is in that block's unshields root
// (ShardBlocks). A forked state's blocks are never confirmed, so its
// unshields never pay. Every worker of a shard submits the same
// unshield_funds; the first to execute pays, every later one fails with
// ErrAlreadyUnshielded and changes nothing. Being an error, a repeat that
// reaches CheckTx after the first committed is refused before it enters the
// mempool and costs no fee.
package bridge
