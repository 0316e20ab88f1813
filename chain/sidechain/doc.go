// Package sidechain is the chain's record of the blocks that a shard's
// enclaves produce from direct invocations (calls sent straight to a
// worker rather than through the chain). An enclave executes a batch of
// direct calls, seals the result into a numbered, hash-chained shard block
// (Header) and confirms the block's header hash here with
// confirm_sidechain_block; clients and other workers then hold the
// enclave to that block.
//
// State (values deterministic CBOR):
//
//	sidechain/s/<shard>                  Confirmation: the shard's latest
//	sidechain/b/<shard><8-byte number>   Confirmation of block number
//
// Queries: /sidechain/shard/<hex shard> (absent until the shard's first
// confirmation), /sidechain/block/<hex shard>/<number>.
//
// Membership is the bridge's: the sender must be an Active teerex enclave
// (registered, unexpired, allowed) whose MRENCLAVE serves the shard at the
// current height (bridge.Shard.MRENCLAVEAt).
//
// One shard, one confirmed chain. A confirmation carries the whole header,
// and the chain accepts only the next block: number latest+1 whose parent
// is the latest confirmed header, at a chain height not before the
// latest's. A second block of a confirmed number (a fork, for example of
// an enclave whose host rolled its disk back) is refused
// (ErrForkedBlock); the same block again is ErrAlreadyConfirmed, which
// workers treat as done, since every enclave of a shard derives the same
// chain blocks (Header.Direct false). A direct block is confirmed only from
// its author, and only while no other active enclave of the measurement
// was registered by the chain height the block sits at: direct calls are
// not ordered among several workers, so such an enclave's chain blocks
// could spend what the direct block spends (ErrSeveralEnclaves). An
// enclave registered later joined from a later state and does not hold
// the block back, so a registration racing an unconfirmed direct block
// cannot freeze the shard.
//
// Unshields are paid by the bridge (bridge.unshield_funds) only with a
// Merkle proof into the UnshieldsRoot of a block confirmed here
// (UnshieldsRoot).
package sidechain
