package sidechain

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strconv"

	"github.com/integritee-go/integritee/chain/tx"
	"github.com/integritee-go/integritee/chain/types"
)

// Name is the module name: call namespace, key prefix and query path.
const Name = "sidechain"

// MethodConfirmSidechainBlock is its sender's vote for one header.
const MethodConfirmSidechainBlock = "confirm_sidechain_block"

// MethodConfirmSidechainBlocks is its sender's votes for a run of
// consecutive headers of one shard, in one transaction (AppVersion 4): a
// busy shard seals a block every few milliseconds, and one transaction per
// block and enclave would cost the chain more than the shard's calls do.
const MethodConfirmSidechainBlocks = "confirm_sidechain_blocks"

// EventBlockConfirmed is emitted when a block is confirmed (by the vote
// that gave its header a majority, or, for a block after it confirmed in
// the same transaction from votes recorded early, by the recorded vote
// that completed its majority); attributes shard, number, header_hash,
// enclave (the deciding voter), all indexed.
const EventBlockConfirmed = "sidechain.block_confirmed"

// EventBlockVoted is emitted for a vote that does not (yet) confirm its
// block; attributes shard, number, header_hash, enclave (the voter), votes
// (the header's votes that count now) and needed (the majority of the
// block's voting set), all indexed. A vote for a number after the next is
// only recorded, even with votes >= needed: it counts once its
// predecessor is confirmed.
const EventBlockVoted = "sidechain.block_voted"

// EventVotesDropped is emitted when a block is confirmed for each
// candidate header of the next number that does not extend it: its votes
// were recorded early and are dropped without counting (its voters may
// vote again); attributes shard, number, header_hash, voters (how many),
// all indexed.
const EventVotesDropped = "sidechain.votes_dropped"

// Errors of this module's calls (codespace "sidechain"). Never renumber.
var (
	ErrNotActive       = types.NewError(Name, 1, "sender is not an active registered enclave")
	ErrNotShardEnclave = types.NewError(Name, 2, "enclave does not serve this shard")
	// ErrForkedBlock: a block of a number the shard has confirmed with
	// another header, or one that does not extend the confirmed chain.
	ErrForkedBlock        = types.NewError(Name, 3, "block does not extend the shard's confirmed chain")
	ErrCorruptShardRecord = types.NewError(Name, 4, "sidechain record does not belong to the shard")
	// ErrAlreadyConfirmed: this very block is confirmed already (another
	// enclave of the shard, or a resubmission, was first).
	ErrAlreadyConfirmed = types.NewError(Name, 5, "block already confirmed")
	// ErrNotAuthor and ErrSeveralEnclaves are no longer returned: the
	// quorum of votes replaced the single-author rule for direct blocks.
	// Kept so that their codes are never reused.
	ErrNotAuthor       = types.NewError(Name, 6, "a direct block is confirmed only by its author")
	ErrSeveralEnclaves = types.NewError(Name, 7, "direct blocks are confirmed only while the shard has one active enclave")
	ErrChainHeight     = types.NewError(Name, 8, "block's chain height is not between its parent's and the current block")
	// ErrAlreadyVoted: the sender's vote for this header is recorded and
	// the header has no majority yet; a resubmission, refused by CheckTx.
	ErrAlreadyVoted = types.NewError(Name, 9, "enclave already voted for this block")
	// ErrEquivocation: the sender voted for another header of the same
	// number (an enclave that forgot its block, e.g. rolled back); the
	// first vote stands.
	ErrEquivocation = types.NewError(Name, 10, "enclave voted for another header of this block number")
	// ErrRegisteredLater: the sender was first registered after the
	// block's chain height (and after the shard's earliest active
	// enclave), so it got its state from a peer afterwards and is not in
	// the block's voting set; the peers that are decide.
	ErrRegisteredLater = types.NewError(Name, 11, "enclave was registered after the block's chain height and does not vote on it")
	// ErrFutureBlock: a number beyond the next plus VoteWindow (its
	// predecessors' votes are still coming); a worker keeps it and votes
	// again later.
	ErrFutureBlock = types.NewError(Name, 12, "block's predecessor is not confirmed yet")
)

// ConfirmSidechainBlock is the argument of confirm_sidechain_block, the
// sender's vote for a header: the block's whole header, so the chain can
// check what it extends and record it once a majority voted for it.
type ConfirmSidechainBlock struct {
	Header Header `cbor:"header"`
}

// MaxConfirmHeaders bounds a confirm_sidechain_blocks: VoteWindow, so that
// a run starting at the shard's next block lies within the window.
const MaxConfirmHeaders = VoteWindow

// ConfirmSidechainBlocks is the argument of confirm_sidechain_blocks: the
// sender's votes for consecutive headers of one shard, each extending the
// one before it. The chain takes them as that many confirm_sidechain_block
// votes in order, in one transaction that fails whole if one of them is
// refused, except that a header already confirmed, or one the sender's
// vote is recorded for, is passed over (a run sent again after a restart
// counts its new votes); a run with nothing new is refused with the first
// such header's error. Its result data is ConfirmedResult(0, last,
// lastHash) for the last block it confirmed, if any.
type ConfirmSidechainBlocks struct {
	Headers []Header `cbor:"headers"`
}

// Check checks what needs no state: 1..MaxConfirmHeaders headers of one
// shard with consecutive numbers from 1 on, each one's parent the header
// before it. It returns the headers' hashes.
func (m *ConfirmSidechainBlocks) Check() ([]types.Hash, error) {
	if len(m.Headers) == 0 || len(m.Headers) > MaxConfirmHeaders {
		return nil, fmt.Errorf("%d headers, want 1..%d", len(m.Headers), MaxConfirmHeaders)
	}
	hashes := make([]types.Hash, len(m.Headers))
	for i := range m.Headers {
		h := &m.Headers[i]
		if h.Number == 0 {
			// Also a number after math.MaxUint64.
			return nil, errors.New("block numbers start at 1")
		}
		if i > 0 {
			prev := &m.Headers[i-1]
			switch {
			case h.Shard != prev.Shard:
				return nil, fmt.Errorf("header %d is of shard %s, header 0 of %s", i, h.Shard, m.Headers[0].Shard)
			case h.Number != prev.Number+1:
				return nil, fmt.Errorf("header %d is block %d after block %d", i, h.Number, prev.Number)
			case h.ParentHash != hashes[i-1]:
				return nil, fmt.Errorf("header %d (block %d) does not extend header %d", i, h.Number, i-1)
			}
		}
		hash, err := h.Hash()
		if err != nil {
			return nil, err
		}
		hashes[i] = hash
	}
	return hashes, nil
}

// ConfirmBlocksCall returns the confirm_sidechain_blocks call of a run of
// headers.
func ConfirmBlocksCall(hs []Header) (tx.Call, error) {
	return tx.NewCall(Name, MethodConfirmSidechainBlocks, ConfirmSidechainBlocks{Headers: hs})
}

// ResultConfirmed is the result data (ExecTxResult.Data) of the
// confirm_sidechain_block vote that confirmed its block; other votes have
// none. The results hash of the next header covers it, events it does not:
// an enclave's light client tells a confirmation from a mere vote by it.
// When that vote also confirmed later blocks from votes recorded early
// (the cascade), the data is ResultConfirmed followed by the last such
// block's number (8 bytes big-endian) and header hash (ConfirmedResult).
var ResultConfirmed = []byte("confirmed")

// VoteWindow is how far beyond a shard's next block number votes are
// taken: a vote for a number in (next, next+VoteWindow] is recorded at
// once and counted when its predecessor is confirmed; one beyond is
// ErrFutureBlock. It bounds a shard's pending vote records.
const VoteWindow = 64

// ConfirmedResult returns the result data of a vote that confirmed its
// block (number voted) and, in the same transaction, the blocks after it
// through number last, whose header hash is lastHash.
func ConfirmedResult(voted, last uint64, lastHash types.Hash) []byte {
	if last <= voted {
		return slices.Clone(ResultConfirmed)
	}
	return slices.Concat(ResultConfirmed, binary.BigEndian.AppendUint64(nil, last), lastHash[:])
}

// ParseConfirmedResult reads a confirm_sidechain_block's result data: ok
// is false for a vote that confirmed nothing (or malformed data); through
// is true with the last block the cascade confirmed and its header hash,
// false when the vote confirmed its own block only.
func ParseConfirmedResult(data []byte) (last uint64, lastHash types.Hash, through, ok bool) {
	rest, found := bytes.CutPrefix(data, ResultConfirmed)
	switch {
	case !found:
		return 0, types.Hash{}, false, false
	case len(rest) == 0:
		return 0, types.Hash{}, false, true
	case len(rest) != 8+len(lastHash):
		return 0, types.Hash{}, false, false
	}
	return binary.BigEndian.Uint64(rest), types.Hash(rest[8:]), true, true
}

// ConfirmCall returns the confirm_sidechain_block call of a header.
func ConfirmCall(h Header) (tx.Call, error) {
	return tx.NewCall(Name, MethodConfirmSidechainBlock, ConfirmSidechainBlock{Header: h})
}

// Confirmation is a confirmed shard block.
type Confirmation struct {
	Shard      types.Hash `cbor:"shard" json:"shard"`
	Number     uint64     `cbor:"number" json:"number"`
	HeaderHash types.Hash `cbor:"header_hash" json:"header_hash"`
	// ChainHeight, StateHash and UnshieldsRoot are the header's.
	ChainHeight   int64      `cbor:"chain_height" json:"chain_height"`
	StateHash     types.Hash `cbor:"state_hash" json:"state_hash"`
	UnshieldsRoot types.Hash `cbor:"unshields_root" json:"unshields_root"`
	// Author is the header's (zero for a chain block); Enclave cast the
	// deciding vote.
	Author  tx.Address `cbor:"author" json:"author"`
	Enclave tx.Address `cbor:"enclave" json:"enclave"`
	// ConfirmedHeight is the height of the chain block that carried it.
	ConfirmedHeight uint64 `cbor:"confirmed_height" json:"confirmed_height"`
}

// Votes is the pending vote record of a shard's block number (the next,
// or one within VoteWindow after it): each candidate header with the
// enclaves that voted for it. An enclave appears at most once in a record
// (a second, different vote is ErrEquivocation), so it holds no more
// voters than the registry has enclaves. It is deleted when the number is
// confirmed; when its predecessor is confirmed, the candidates that do not
// extend it are dropped (their voters may vote again).
type Votes struct {
	Shard      types.Hash  `cbor:"shard" json:"shard"`
	Number     uint64      `cbor:"number" json:"number"`
	Candidates []Candidate `cbor:"candidates" json:"candidates"`
}

// Candidate is a header hash and its voters, in the order they voted.
// Voters that have since left the voting set stay listed but do not count.
type Candidate struct {
	HeaderHash types.Hash   `cbor:"header_hash" json:"header_hash"`
	Voters     []tx.Address `cbor:"voters" json:"voters"`
	// Header is the voted header (hashing to HeaderHash): what the
	// cascade checks against the confirmed predecessor and confirms.
	Header *Header `cbor:"header,omitempty" json:"header,omitempty"`
}

// State keys.
var (
	keyShardPrefix = []byte(Name + "/s/")
	keyBlockPrefix = []byte(Name + "/b/")
	keyVotesPrefix = []byte(Name + "/v/")
)

// ShardKey is the state key of a shard's latest confirmation.
func ShardKey(shard types.Hash) []byte { return slices.Concat(keyShardPrefix, shard[:]) }

// BlockKey is the state key of the confirmation of a shard's block number.
func BlockKey(shard types.Hash, number uint64) []byte {
	return binary.BigEndian.AppendUint64(slices.Concat(keyBlockPrefix, shard[:]), number)
}

// VotesKey is the state key of the pending votes of a shard's block
// number.
func VotesKey(shard types.Hash, number uint64) []byte {
	return binary.BigEndian.AppendUint64(slices.Concat(keyVotesPrefix, shard[:]), number)
}

// Confirmed is a confirmation read from a block's events.
type Confirmed struct {
	Shard      types.Hash
	Number     uint64
	HeaderHash types.Hash
	Enclave    tx.Address
}

// ParseEvent reads an EventBlockConfirmed (type and attributes as ABCI
// events carry them); ok is false for any other or a malformed event.
// Workers use it to tell their clients which blocks are confirmed.
func ParseEvent(typ string, attrs map[string]string) (Confirmed, bool) {
	var c Confirmed
	if typ != EventBlockConfirmed {
		return c, false
	}
	var err error
	if c.Shard, err = types.ParseHash(attrs["shard"]); err != nil {
		return c, false
	}
	if c.Number, err = strconv.ParseUint(attrs["number"], 10, 64); err != nil {
		return c, false
	}
	if c.HeaderHash, err = types.ParseHash(attrs["header_hash"]); err != nil {
		return c, false
	}
	if c.Enclave, err = tx.ParseAddress(attrs["enclave"]); err != nil {
		return c, false
	}
	return c, true
}
