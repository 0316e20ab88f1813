// Package testchain builds CometBFT blocks for tests of the enclave: real
// headers, validator sets and commits signed with ed25519 validator keys,
// with the data hash of the block's transactions and the results hash of
// the previous block's results, exactly as a CometBFT node produces them.
package testchain

import (
	"crypto/sha256"
	"fmt"
	"time"

	abci "github.com/cometbft/cometbft/abci/types"
	"github.com/cometbft/cometbft/crypto"
	"github.com/cometbft/cometbft/crypto/ed25519"
	cmtproto "github.com/cometbft/cometbft/proto/tendermint/types"
	cmtversion "github.com/cometbft/cometbft/proto/tendermint/version"
	cmttypes "github.com/cometbft/cometbft/types"
	"github.com/cometbft/cometbft/version"
)

// Block is one built block.
type Block struct {
	Header     *cmttypes.SignedHeader
	Validators *cmttypes.ValidatorSet
	Txs        [][]byte
	Results    []*abci.ExecTxResult
}

// Chain builds consecutive blocks.
type Chain struct {
	ChainID string
	Keys    []crypto.PrivKey
	Vals    *cmttypes.ValidatorSet
	Blocks  []*Block
	Start   time.Time
	// AppHashes, if the chain runs a real application, are its app hashes:
	// [0] after genesis, [h] after block h. The header of height h carries
	// AppHashes[h-1], as in CometBFT.
	AppHashes [][]byte
}

// New returns a chain with n validators of equal power whose keys derive
// from seed.
func New(chainID string, n int, seed string) *Chain {
	// The chain runs about at the wall clock, as a live chain does: an
	// enclave judges peers' attestation certificates, which the test's
	// clock issues, at its latest block's time.
	c := &Chain{ChainID: chainID, Start: time.Now().UTC().Truncate(time.Second).Add(-30 * time.Second)}
	var vals []*cmttypes.Validator
	for i := range n {
		k := ed25519.GenPrivKeyFromSecret(fmt.Appendf(nil, "%s/%d", seed, i))
		c.Keys = append(c.Keys, k)
		vals = append(vals, cmttypes.NewValidator(k.PubKey(), 10))
	}
	c.Vals = cmttypes.NewValidatorSet(vals)
	return c
}

// appHash is the app hash the header at height h carries: the state after
// block h-1 as the application computed it (AppHashes), else a made-up
// one.
func (c *Chain) appHash(h int64) []byte {
	if h-1 < int64(len(c.AppHashes)) {
		return c.AppHashes[h-1]
	}
	return hash(fmt.Sprint("app ", h))
}

// Height is the height of the last block.
func (c *Chain) Height() int64 { return int64(len(c.Blocks)) }

func hash(s string) []byte { h := sha256.Sum256([]byte(s)); return h[:] }

// Add appends a block with txs and their results (Code 0 when results is
// nil).
func (c *Chain) Add(txs [][]byte, results []*abci.ExecTxResult) *Block {
	if results == nil {
		for range txs {
			results = append(results, &abci.ExecTxResult{Code: abci.CodeTypeOK})
		}
	}
	h := c.Height() + 1
	hdr := &cmttypes.Header{
		Version:            cmtversion.Consensus{Block: version.BlockProtocol},
		ChainID:            c.ChainID,
		Height:             h,
		Time:               c.Start.Add(time.Duration(h) * time.Second),
		DataHash:           txsHash(txs),
		ValidatorsHash:     c.Vals.Hash(),
		NextValidatorsHash: c.Vals.Hash(),
		ConsensusHash:      hash("consensus params"),
		AppHash:            c.appHash(h),
		LastResultsHash:    cmttypes.NewResults(nil).Hash(),
		EvidenceHash:       cmttypes.EvidenceList{}.Hash(),
		ProposerAddress:    c.Vals.Validators[0].Address,
	}
	if h > 1 {
		prev := c.Blocks[h-2]
		hdr.LastBlockID = prev.Header.Commit.BlockID
		hdr.LastCommitHash = prev.Header.Commit.Hash()
		hdr.LastResultsHash = cmttypes.NewResults(prev.Results).Hash()
	}
	b := &Block{
		Header:     &cmttypes.SignedHeader{Header: hdr, Commit: c.Sign(hdr, c.Keys)},
		Validators: c.Vals,
		Txs:        txs,
		Results:    results,
	}
	c.Blocks = append(c.Blocks, b)
	return b
}

// Block returns the block at height h.
func (c *Chain) Block(h int64) *Block { return c.Blocks[h-1] }

func txsHash(txs [][]byte) []byte {
	t := make(cmttypes.Txs, len(txs))
	for i, x := range txs {
		t[i] = x
	}
	return t.Hash()
}

// Sign returns a commit of hdr with a precommit of each key (keys must be
// validators of the chain, in any subset).
func (c *Chain) Sign(hdr *cmttypes.Header, keys []crypto.PrivKey) *cmttypes.Commit {
	bh := hdr.Hash()
	psh := sha256.Sum256(bh)
	id := cmttypes.BlockID{Hash: bh, PartSetHeader: cmttypes.PartSetHeader{Total: 1, Hash: psh[:]}}
	commit := &cmttypes.Commit{Height: hdr.Height, BlockID: id, Signatures: make([]cmttypes.CommitSig, len(c.Vals.Validators))}
	for i := range commit.Signatures {
		commit.Signatures[i] = cmttypes.NewCommitSigAbsent()
	}
	for _, k := range keys {
		idx, _ := c.Vals.GetByAddress(k.PubKey().Address())
		if idx < 0 {
			idx = 0
		}
		ts := hdr.Time.Add(500 * time.Millisecond)
		v := &cmttypes.Vote{
			Type: cmtproto.PrecommitType, Height: hdr.Height, BlockID: id, Timestamp: ts,
			ValidatorAddress: k.PubKey().Address(), ValidatorIndex: idx,
		}
		sig, err := k.Sign(cmttypes.VoteSignBytes(c.ChainID, v.ToProto()))
		if err != nil {
			panic(err) // test helper: ed25519 signing does not fail
		}
		commit.Signatures[idx] = cmttypes.CommitSig{
			BlockIDFlag: cmttypes.BlockIDFlagCommit, ValidatorAddress: k.PubKey().Address(), Timestamp: ts, Signature: sig,
		}
	}
	return commit
}
