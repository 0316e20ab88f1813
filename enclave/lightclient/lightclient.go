// Package lightclient is the enclave's view of the chain: it follows the
// chain block by block from the genesis validator set with CometBFT's light
// client verification (adjacent headers, +2/3 of the validators the
// previous header named, cmttypes.ValidatorSet.VerifyCommitLight), and proves each block's transactions and their
// results before the enclave acts on them.
//
// Block H is verified with the header of H+1: the header of H (signed by
// +2/3 of its validators, which H-1's header named) proves the transactions
// through its DataHash; the header of H+1 (verified the same way, and
// naming H as its last block) proves their results through its
// LastResultsHash. So the host feeds block H once H+1 is committed.
//
// The enclave has no trusted clock. Each header is checked against the time
// of the next one: the trusting period bounds the gap between consecutive
// blocks, not the age of the chain. An enclave whose trusted header is old
// can be shown a fork signed by validators that have since unbonded; a
// trusted time source (or a recent trusted checkpoint) would close that gap.
package lightclient

import (
	"bytes"
	"errors"
	"fmt"
	"time"

	abci "github.com/cometbft/cometbft/abci/types"
	cmtmath "github.com/cometbft/cometbft/libs/math"
	cmttypes "github.com/cometbft/cometbft/types"
)

// DefaultTrustingPeriod bounds the time between consecutive block headers.
const DefaultTrustingPeriod = 14 * 24 * time.Hour

// Rejection classes.
var (
	// ErrHeight means the block is not the next one.
	ErrHeight = errors.New("lightclient: block out of order")
	// ErrHeader means a header or commit failed light-client verification.
	ErrHeader = errors.New("lightclient: header verification failed")
	// ErrDataHash means the transactions do not match the header's data hash.
	ErrDataHash = errors.New("lightclient: transactions do not match the header's data hash")
	// ErrResultsHash means the results do not match the next header's
	// last results hash.
	ErrResultsHash = errors.New("lightclient: results do not match the next header's results hash")
	// ErrConfig means an unusable configuration or checkpoint.
	ErrConfig = errors.New("lightclient: invalid configuration")
)

// Config is the root of trust.
type Config struct {
	ChainID       string
	InitialHeight int64
	// Genesis is the genesis validator set; it signs InitialHeight.
	Genesis        *cmttypes.ValidatorSet
	TrustingPeriod time.Duration
}

// Client verifies blocks in order. It is not safe for concurrent use.
type Client struct {
	cfg     Config
	trusted *cmttypes.SignedHeader // last accepted block; nil before the first
	// next is the header after trusted, verified as Next of the last
	// block, so that it need not be verified twice.
	next *cmttypes.SignedHeader
}

// New returns a client that expects Config.InitialHeight next. trusted, if
// not nil, is the header of the last accepted block (from a checkpoint),
// and the client expects the block after it.
func New(cfg Config, trusted *cmttypes.SignedHeader) (*Client, error) {
	if cfg.ChainID == "" {
		return nil, fmt.Errorf("%w: empty chain ID", ErrConfig)
	}
	if cfg.InitialHeight < 1 {
		cfg.InitialHeight = 1
	}
	if cfg.TrustingPeriod <= 0 {
		cfg.TrustingPeriod = DefaultTrustingPeriod
	}
	if trusted == nil {
		if cfg.Genesis == nil || cfg.Genesis.IsNilOrEmpty() {
			return nil, fmt.Errorf("%w: no genesis validators", ErrConfig)
		}
		if err := cfg.Genesis.ValidateBasic(); err != nil {
			return nil, fmt.Errorf("%w: genesis validators: %w", ErrConfig, err)
		}
	} else {
		if err := trusted.ValidateBasic(cfg.ChainID); err != nil {
			return nil, fmt.Errorf("%w: trusted header: %w", ErrConfig, err)
		}
		if trusted.Height < cfg.InitialHeight {
			return nil, fmt.Errorf("%w: trusted header %d below initial height %d", ErrConfig, trusted.Height, cfg.InitialHeight)
		}
	}
	return &Client{cfg: cfg, trusted: trusted}, nil
}

// Height is the last accepted block's height (InitialHeight-1 if none).
func (c *Client) Height() int64 {
	if c.trusted == nil {
		return c.cfg.InitialHeight - 1
	}
	return c.trusted.Height
}

// Trusted returns the last accepted header (nil if none).
func (c *Client) Trusted() *cmttypes.SignedHeader { return c.trusted }

// Block is what the host feeds for one height.
type Block struct {
	Header     *cmttypes.SignedHeader
	Validators *cmttypes.ValidatorSet
	Txs        [][]byte
	Results    []*abci.ExecTxResult
	// Next is the following header and its validators.
	Next           *cmttypes.SignedHeader
	NextValidators *cmttypes.ValidatorSet
}

// Verify checks that b is the next block, signed as the light client rules
// require, and that its transactions and results are the ones the headers
// commit to. It does not change the client; Accept does.
func (c *Client) Verify(b *Block) error {
	if b == nil || b.Header == nil || b.Header.Header == nil || b.Next == nil || b.Next.Header == nil || b.Validators == nil || b.NextValidators == nil {
		return fmt.Errorf("%w: incomplete block", ErrHeader)
	}
	want := c.Height() + 1
	if b.Header.Height != want {
		return fmt.Errorf("%w: got height %d, want %d", ErrHeight, b.Header.Height, want)
	}
	if err := c.verifyHeader(b.Header, b.Validators); err != nil {
		return fmt.Errorf("%w: height %d: %w", ErrHeader, want, err)
	}
	if err := Adjacent(b.Header, b.Next, b.NextValidators, c.cfg.TrustingPeriod); err != nil {
		return fmt.Errorf("%w: next height %d: %w", ErrHeader, want+1, err)
	}
	if !bytes.Equal(b.Next.LastBlockID.Hash, b.Header.Hash()) {
		return fmt.Errorf("%w: next header does not follow block %d", ErrHeader, want)
	}
	txs := make(cmttypes.Txs, len(b.Txs))
	for i, t := range b.Txs {
		txs[i] = t
	}
	if !bytes.Equal(txs.Hash(), b.Header.DataHash) {
		return fmt.Errorf("%w: height %d", ErrDataHash, want)
	}
	if len(b.Results) != len(b.Txs) {
		return fmt.Errorf("%w: %d results for %d transactions", ErrResultsHash, len(b.Results), len(b.Txs))
	}
	for _, r := range b.Results {
		if r == nil {
			return fmt.Errorf("%w: nil result", ErrResultsHash)
		}
	}
	if !bytes.Equal(cmttypes.NewResults(b.Results).Hash(), b.Next.LastResultsHash) {
		return fmt.Errorf("%w: height %d", ErrResultsHash, want)
	}
	return nil
}

// verifyHeader verifies the header at Height()+1.
func (c *Client) verifyHeader(h *cmttypes.SignedHeader, vals *cmttypes.ValidatorSet) error {
	if !bytes.Equal(h.ValidatorsHash, vals.Hash()) {
		return fmt.Errorf("validators hash %X, header names %X", vals.Hash(), h.ValidatorsHash)
	}
	if c.next != nil && bytes.Equal(c.next.Hash(), h.Hash()) && bytes.Equal(c.next.Commit.Hash(), h.Commit.Hash()) {
		return nil
	}
	if c.trusted != nil {
		return Adjacent(c.trusted, h, vals, c.cfg.TrustingPeriod)
	}
	// The first block: signed by the genesis validators.
	if err := h.ValidateBasic(c.cfg.ChainID); err != nil {
		return err
	}
	if !bytes.Equal(h.ValidatorsHash, c.cfg.Genesis.Hash()) {
		return fmt.Errorf("validators hash %X is not the genesis validators' %X", h.ValidatorsHash, c.cfg.Genesis.Hash())
	}
	return c.cfg.Genesis.VerifyCommitLight(c.cfg.ChainID, h.Commit.BlockID, h.Height, h.Commit)
}

// Adjacent verifies header h, at trusted.Height+1, with its validators:
// the checks of CometBFT's light.VerifyAdjacent, in its order, with h's own
// time standing in for the current time (see the package comment). It is
// written out here, on the types package alone, because the light package
// links CometBFT's RPC client into the binary, which has no place in an
// enclave; a test checks that both agree.
func Adjacent(trusted, h *cmttypes.SignedHeader, vals *cmttypes.ValidatorSet, trustingPeriod time.Duration) error {
	if h == nil || h.Header == nil || vals == nil {
		return errors.New("no header or validators")
	}
	if h.Height != trusted.Height+1 {
		return errors.New("headers must be adjacent in height")
	}
	now := h.Time
	// a) the trusted header has not expired.
	if !trusted.Time.Add(trustingPeriod).After(now) {
		return fmt.Errorf("old header has expired at %v (now: %v)", trusted.Time.Add(trustingPeriod), now)
	}
	// b) the new header is valid for the trusted chain.
	if err := h.ValidateBasic(trusted.ChainID); err != nil {
		return fmt.Errorf("untrustedHeader.ValidateBasic failed: %w", err)
	}
	if !h.Time.After(trusted.Time) {
		return fmt.Errorf("expected new header time %v to be after old header time %v", h.Time, trusted.Time)
	}
	if !bytes.Equal(h.ValidatorsHash, vals.Hash()) {
		return fmt.Errorf("expected new header validators (%X) to match those that were supplied (%X) at height %d",
			h.ValidatorsHash, vals.Hash(), h.Height)
	}
	// c) the validators are the ones the trusted header named.
	if !bytes.Equal(h.ValidatorsHash, trusted.NextValidatorsHash) {
		return fmt.Errorf("expected old header next validators (%X) to match those from new header (%X)",
			trusted.NextValidatorsHash, h.ValidatorsHash)
	}
	// d) +2/3 of them signed the new header.
	if err := vals.VerifyCommitLight(trusted.ChainID, h.Commit.BlockID, h.Height, h.Commit); err != nil {
		return err
	}
	return nil
}

// NonAdjacent verifies header h, above trusted.Height+1, with its
// validators, given the validators trustedVals of trusted's height or the
// next: the checks of CometBFT's light.VerifyNonAdjacent (skipping
// verification) in its order, with h's own time standing in for the
// current time as in Adjacent: more than a third of trustedVals' power and
// two thirds of vals' signed h. It rests on the light client model's
// assumption that less than a third of a trusted validator set is
// faulty within the trusting period.
func NonAdjacent(trusted *cmttypes.SignedHeader, trustedVals *cmttypes.ValidatorSet, h *cmttypes.SignedHeader, vals *cmttypes.ValidatorSet, trustingPeriod time.Duration) error {
	if h == nil || h.Header == nil || h.Commit == nil || vals == nil || trustedVals == nil {
		return errors.New("no header or validators")
	}
	if h.Height == trusted.Height+1 {
		return errors.New("headers must be non adjacent in height")
	}
	now := h.Time
	if !trusted.Time.Add(trustingPeriod).After(now) {
		return fmt.Errorf("old header has expired at %v (now: %v)", trusted.Time.Add(trustingPeriod), now)
	}
	if err := h.ValidateBasic(trusted.ChainID); err != nil {
		return fmt.Errorf("untrustedHeader.ValidateBasic failed: %w", err)
	}
	if h.Height <= trusted.Height {
		return fmt.Errorf("expected new header height %d to be greater than one of old header %d", h.Height, trusted.Height)
	}
	if !h.Time.After(trusted.Time) {
		return fmt.Errorf("expected new header time %v to be after old header time %v", h.Time, trusted.Time)
	}
	if !bytes.Equal(h.ValidatorsHash, vals.Hash()) {
		return fmt.Errorf("expected new header validators (%X) to match those that were supplied (%X) at height %d",
			h.ValidatorsHash, vals.Hash(), h.Height)
	}
	if err := trustedVals.VerifyCommitLightTrusting(trusted.ChainID, h.Commit, cmtmath.Fraction{Numerator: 1, Denominator: 3}); err != nil {
		return err
	}
	// Last: vals may be made large to cost the verifier.
	return vals.VerifyCommitLight(trusted.ChainID, h.Commit.BlockID, h.Height, h.Commit)
}

// VerifyAhead verifies header h, later than the last accepted block, with
// its validators and the validators the last accepted header names as the
// next (nextVals), without changing the client: adjacent verification
// for the next height, skipping verification (NonAdjacent) beyond it. It
// shows an enclave a recent chain state (the registry at h's app hash)
// while the blocks in between are not applied yet.
func (c *Client) VerifyAhead(h *cmttypes.SignedHeader, vals, nextVals *cmttypes.ValidatorSet) error {
	if c.trusted == nil {
		return fmt.Errorf("%w: no accepted block yet", ErrHeader)
	}
	if h == nil || h.Header == nil || vals == nil || nextVals == nil {
		return fmt.Errorf("%w: incomplete header", ErrHeader)
	}
	if h.Height <= c.trusted.Height {
		return fmt.Errorf("%w: header %d is not after the accepted %d", ErrHeight, h.Height, c.trusted.Height)
	}
	if !bytes.Equal(nextVals.Hash(), c.trusted.NextValidatorsHash) {
		return fmt.Errorf("%w: validators %X are not the ones header %d names next (%X)", ErrHeader, nextVals.Hash(), c.trusted.Height, c.trusted.NextValidatorsHash)
	}
	var err error
	if h.Height == c.trusted.Height+1 {
		err = Adjacent(c.trusted, h, vals, c.cfg.TrustingPeriod)
	} else {
		err = NonAdjacent(c.trusted, nextVals, h, vals, c.cfg.TrustingPeriod)
	}
	if err != nil {
		return fmt.Errorf("%w: height %d: %w", ErrHeader, h.Height, err)
	}
	return nil
}

// Accept makes a verified block the last accepted one.
func (c *Client) Accept(b *Block) {
	c.trusted, c.next = b.Header, b.Next
}
