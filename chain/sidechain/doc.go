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
//	sidechain/v/<shard><8-byte number>   Votes: pending votes of the next
//	                                     number or one of the VoteWindow
//	                                     after it (deleted once confirmed)
//
// Queries: /sidechain/shard/<hex shard> (absent until the shard's first
// confirmation), /sidechain/block/<hex shard>/<number>,
// /sidechain/votes/<hex shard>/<number> (absent when no vote is pending).
//
// Membership is the bridge's: the sender must be an Active teerex enclave
// (registered, unexpired, allowed) whose MRENCLAVE serves the shard at the
// current height (bridge.Shard.MRENCLAVEAt).
//
// One shard, one confirmed chain, decided by a quorum of its enclaves. A
// confirm_sidechain_block is its sender's vote for a header, and carries
// the whole header. A confirm_sidechain_blocks carries a run of up to
// MaxConfirmHeaders consecutive headers, each extending the one before,
// and is that many votes in order in one transaction (a busy shard seals
// blocks far faster than the chain should take one transaction each): it
// fails whole if one vote is refused, passing over headers already
// confirmed or already voted for by its sender. A vote for the next block counts at once: number
// latest+1 whose parent is the latest confirmed header, at a chain height
// not before the latest's and before the current block. A vote for one of
// the VoteWindow numbers after the next is recorded at once (its
// candidate keeps the header) after the checks that do not need its
// predecessor (sender, voting set, one vote per number, chain height), and
// counted when its predecessor is confirmed: in that same transaction the
// candidates of the following number that do not extend the block just
// confirmed (another parent, an earlier chain height) are dropped
// uncounted (EventVotesDropped; their voters may vote again, so an early
// vote for a header that turned out forked never holds back the right
// one), the candidate with a majority is confirmed (the Confirmation names
// the voter that completed it) and the cascade goes on. One round of
// votes, in any order, thus confirms a run of blocks, and a shard has at
// most VoteWindow+1 pending records. The deciding vote's result data
// (ConfirmedResult) names the last block the cascade confirmed, so that
// an enclave's light client sees every confirmation. A block's voting set is the enclaves of the
// shard's measurement that are active now and were first registered at or
// before the block's chain height: one registered later got its state from
// a peer afterwards and may never vote for the block, so it does not count
// (ErrRegisteredLater). A block from before the earliest active enclave
// registered (calls before the shard's first enclave) is voted on by the
// earliest ones. A header is confirmed by the vote that gives it
// more than half of the voting set (the Confirmation names that voter); a
// vote short of that is recorded (EventBlockVoted). Each enclave votes
// once per number: the same vote again is ErrAlreadyVoted, another header
// of the number ErrEquivocation. With one enclave its vote confirms at
// once (an early vote is only recorded, even with a majority, until its
// predecessor is confirmed). Every enclave of a shard derives the same blocks (Raft orders the
// direct calls among them, chain blocks have no author), so honest
// enclaves vote alike; a lone enclave whose host rolled its state back
// signs a fork that never reaches a majority, and a direct block taken by
// one enclave outside that order is not confirmed either.
//
// A block of a confirmed number with another header (a fork) is refused
// (ErrForkedBlock); the confirmed block again is ErrAlreadyConfirmed, which
// workers treat as done. A number beyond the window is ErrFutureBlock,
// which workers keep and send again soon.
//
// Unshields are paid by the bridge (bridge.unshield_funds) only with a
// Merkle proof into the UnshieldsRoot of a block confirmed here
// (UnshieldsRoot).
package sidechain
