package client

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/cometbft/cometbft/light"
	rpcclient "github.com/cometbft/cometbft/rpc/client"
	cmttypes "github.com/cometbft/cometbft/types"

	"github.com/integritee-go/integritee/chain/types"
)

// maxClockDrift is the tolerance for headers timed ahead of the local clock.
const maxClockDrift = 10 * time.Second

// maxBackward bounds how many blocks below its trusted headers the client
// verifies by hash links, one request per block.
const maxBackward = 1000

func abciQueryOptions(height int64, prove bool) rpcclient.ABCIQueryOptions {
	return rpcclient.ABCIQueryOptions{Height: height, Prove: prove}
}

type trusted struct {
	header *cmttypes.SignedHeader
	vals   *cmttypes.ValidatorSet // validators of header.Height; nil if verified backwards
}

// verifier verifies headers from a trusted root with the light-client
// rules. It keeps the root and the newest verified header, and writes the
// newest to the trust store.
type verifier struct {
	c      *Client
	mu     sync.Mutex
	root   *trusted
	latest *trusted
	// rootFrom says where the root came from, for messages.
	rootFrom string
	// stored is the trust store's record the root came from, nil for a
	// root set in Options or trusted on first use.
	stored *TrustedHeader

	// saveMu orders writes to the trust store; saved is the newest header
	// written (or loaded), genesis the chain's genesis ID once checked.
	saveMu  sync.Mutex
	saved   *cmttypes.SignedHeader
	genesis *types.Hash
}

// VerifiedHeader returns the header at height verified by the light-client
// rules from the trusted root. It waits (polling) until the node has the
// block.
func (c *Client) VerifiedHeader(ctx context.Context, height int64) (*cmttypes.Header, error) {
	if err := c.waitHeight(ctx, height); err != nil {
		return nil, err
	}
	t, err := c.light.verify(ctx, height)
	if err != nil {
		return nil, fmt.Errorf("verify header %d: %w", height, err)
	}
	return t.header.Header, nil
}

func (c *Client) waitHeight(ctx context.Context, height int64) error {
	t := time.NewTicker(c.opts.PollInterval)
	defer t.Stop()
	for {
		st, err := c.rpc.Status(ctx)
		if err == nil && st.SyncInfo.LatestBlockHeight >= height {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for height %d: %w", height, ctx.Err())
		case <-t.C:
		}
	}
}

// fetch returns the signed header and validators at height, checked for
// internal consistency (the commit signs the header and the validator set
// is the one the header names), not yet for trust.
func (v *verifier) fetch(ctx context.Context, height int64) (*trusted, error) {
	com, err := v.c.rpc.Commit(ctx, &height)
	if err != nil {
		return nil, fmt.Errorf("commit %d: %w", height, err)
	}
	sh := &com.SignedHeader
	if err := sh.ValidateBasic(v.c.chainID); err != nil {
		return nil, fmt.Errorf("header %d: %w", height, err)
	}
	var vals []*cmttypes.Validator
	perPage := 100
	for page := 1; ; page++ {
		res, err := v.c.rpc.Validators(ctx, &height, &page, &perPage)
		if err != nil {
			return nil, fmt.Errorf("validators %d: %w", height, err)
		}
		vals = append(vals, res.Validators...)
		if len(vals) >= res.Total || len(res.Validators) == 0 {
			break
		}
	}
	vs := cmttypes.NewValidatorSet(vals)
	if !bytes.Equal(vs.Hash(), sh.ValidatorsHash) {
		return nil, fmt.Errorf("validators %d do not match the header", height)
	}
	return &trusted{header: sh, vals: vs}, nil
}

func (v *verifier) expired(t *trusted) bool {
	return light.HeaderExpired(t.header, v.c.opts.TrustingPeriod, v.c.opts.Now())
}

// expiredError says which trusted header is too old and what to do.
func (v *verifier) expiredError(t *trusted, from string) error {
	return fmt.Errorf("%w: block %d of %s (%s) is from %s, more than %s ago: set a recent block you trust",
		ErrTrustExpired, t.header.Height, v.c.chainID, from, t.header.Time.UTC().Format(time.RFC3339), v.c.opts.TrustingPeriod)
}

// initRoot sets the root: the block named in Options, else the trust
// store's record, else the node's newest block (trust on first use).
func (v *verifier) initRoot(ctx context.Context) error {
	o := &v.c.opts
	if o.TrustHeight != 0 {
		t, err := v.fetch(ctx, o.TrustHeight)
		if err != nil {
			return err
		}
		if !bytes.Equal(t.header.Hash(), o.TrustHash) {
			return fmt.Errorf("%w: block %d has hash %X, trusted %X", ErrChainMismatch, o.TrustHeight, t.header.Hash(), o.TrustHash)
		}
		if err := t.vals.VerifyCommitLight(v.c.chainID, t.header.Commit.BlockID, t.header.Height, t.header.Commit); err != nil {
			return fmt.Errorf("trusted block %d: %w", t.header.Height, err)
		}
		v.rootFrom = "set in the options"
		if v.expired(t) {
			return v.expiredError(t, v.rootFrom)
		}
		v.root, v.latest = t, t
		return nil
	}
	if o.TrustStore != nil {
		st, err := o.TrustStore.Load(v.c.chainID)
		if err != nil {
			return err
		}
		if st != nil {
			if err := st.check(v.c.chainID); err != nil {
				return fmt.Errorf("%w %s: %w", ErrTrustRecord, st.Source, err)
			}
			t := &trusted{header: st.Header, vals: st.Validators}
			v.rootFrom = "stored"
			if st.Source != "" {
				v.rootFrom += " in " + st.Source
			}
			if v.expired(t) {
				return v.expiredError(t, v.rootFrom)
			}
			if err := v.nodeHas(ctx, t); err != nil {
				return err
			}
			v.root, v.latest, v.stored = t, t, st
			v.saved = st.Header
			return nil
		}
	}
	// Trust on first use: the node's newest block, which unlike its first
	// one is within the trusting period on a chain of any age.
	st, err := v.c.rpc.Status(ctx)
	if err != nil {
		return fmt.Errorf("status: %w", err)
	}
	t, err := v.fetch(ctx, st.SyncInfo.LatestBlockHeight)
	if err != nil {
		return err
	}
	if err := t.vals.VerifyCommitLight(v.c.chainID, t.header.Commit.BlockID, t.header.Height, t.header.Commit); err != nil {
		return fmt.Errorf("node's block %d: %w", t.header.Height, err)
	}
	if v.expired(t) {
		return fmt.Errorf("the node's newest block %d is from %s, more than %s ago: it is not synced, or the chain halted",
			t.header.Height, t.header.Time.UTC().Format(time.RFC3339), v.c.opts.TrustingPeriod)
	}
	v.root, v.latest, v.rootFrom = t, t, "trusted on first use"
	return nil
}

// nodeHas checks that the node's chain holds the stored header t: a node
// of another chain of the same ID has another block at its height.
func (v *verifier) nodeHas(ctx context.Context, t *trusted) error {
	h := t.header.Height
	st, err := v.c.rpc.Status(ctx)
	if err != nil {
		return fmt.Errorf("status: %w", err)
	}
	switch {
	case st.SyncInfo.LatestBlockHeight < h:
		return fmt.Errorf("the node's newest block %d is below the trusted block %d (%s): it is behind, or on another chain",
			st.SyncInfo.LatestBlockHeight, h, v.rootFrom)
	case st.SyncInfo.EarliestBlockHeight > h:
		// Pruned: verifying forward from t still checks the chain.
		return nil
	}
	com, err := v.c.rpc.Commit(ctx, &h)
	if err != nil {
		return fmt.Errorf("commit %d: %w", h, err)
	}
	if got := com.SignedHeader.Hash(); !bytes.Equal(got, t.header.Hash()) {
		return fmt.Errorf("%w: the node's block %d has hash %X, the trusted one (%s) %X", ErrChainMismatch, h, got, v.rootFrom, t.header.Hash())
	}
	return nil
}

func (v *verifier) verify(ctx context.Context, height int64) (*trusted, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.root == nil {
		if err := v.initRoot(ctx); err != nil {
			return nil, err
		}
	}
	switch {
	case height == v.latest.header.Height:
		return v.latest, nil
	case height == v.root.header.Height:
		return v.root, nil
	case height > v.latest.header.Height:
		t, err := v.verifyFrom(ctx, v.latest, height, 0)
		if err != nil {
			return nil, v.classify(err, v.latest)
		}
		v.latest = t
		return t, nil
	case height > v.root.header.Height && !v.expired(v.root):
		t, err := v.verifyFrom(ctx, v.root, height, 0)
		if err != nil {
			return nil, v.classify(err, v.root)
		}
		return t, nil
	default:
		// Below the root (or between an expired root and the newest
		// header): older headers are linked by hash to newer ones.
		from := v.latest
		if height < v.root.header.Height {
			from = v.root
		}
		return v.verifyBack(ctx, from, height)
	}
}

// classify marks light-client refusals: an expired trusted header, or
// blocks its validators did not sign. Invalid headers (e.g. timed ahead of
// the local clock) stay as they are: they need not mean another chain.
func (v *verifier) classify(err error, from *trusted) error {
	var (
		expired light.ErrOldHeaderExpired
		failed  light.ErrVerificationFailed
		cant    light.ErrNewValSetCantBeTrusted
	)
	switch {
	case errors.As(err, &expired):
		src := "verified before"
		if from == v.root {
			src = v.rootFrom
		}
		return fmt.Errorf("%w: %w", v.expiredError(from, src), err)
	case errors.As(err, &failed), errors.As(err, &cant):
		return fmt.Errorf("%w: the node's blocks do not follow from block %d (%s): %w", ErrChainMismatch, from.header.Height, v.rootFrom, err)
	}
	return err
}

// verifyFrom verifies height from a trusted header, bisecting when the
// validator set changed too much for one skip.
func (v *verifier) verifyFrom(ctx context.Context, from *trusted, height int64, depth int) (*trusted, error) {
	if depth > 64 {
		return nil, errors.New("bisection too deep")
	}
	t, err := v.fetch(ctx, height)
	if err != nil {
		return nil, err
	}
	err = light.Verify(from.header, from.vals, t.header, t.vals, v.c.opts.TrustingPeriod, v.c.opts.Now(), maxClockDrift, light.DefaultTrustLevel)
	var cant light.ErrNewValSetCantBeTrusted
	if errors.As(err, &cant) && height > from.header.Height+1 {
		mid := from.header.Height + (height-from.header.Height)/2
		m, err := v.verifyFrom(ctx, from, mid, depth+1)
		if err != nil {
			return nil, err
		}
		return v.verifyFrom(ctx, m, height, depth+1)
	}
	if err != nil {
		return nil, err
	}
	return t, nil
}

// verifyBack verifies a height below a trusted header by following the
// hash links of the headers in between (each names its predecessor's
// hash), as CometBFT's light client does.
func (v *verifier) verifyBack(ctx context.Context, from *trusted, height int64) (*trusted, error) {
	if n := from.header.Height - height; n > maxBackward {
		return nil, fmt.Errorf("height %d is %d blocks below the verified block %d (at most %d): set a trusted block at or below it (TrustHeight, TrustHash)",
			height, n, from.header.Height, maxBackward)
	}
	// No trusting period here: a hash link holds however old the
	// verified header is.
	cur := from.header
	for h := from.header.Height - 1; h >= height; h-- {
		com, err := v.c.rpc.Commit(ctx, &h)
		if err != nil {
			return nil, fmt.Errorf("commit %d: %w", h, err)
		}
		if err := light.VerifyBackwards(com.SignedHeader.Header, cur.Header); err != nil {
			return nil, fmt.Errorf("%w: block %d: %w", ErrChainMismatch, h, err)
		}
		cur = &com.SignedHeader
	}
	return &trusted{header: cur}, nil
}

// remember writes the newest verified header to the trust store when it
// is newer than the one stored. The first time, it also proves the chain's
// genesis ID and compares it with the stored record's: a chain restarted
// under the same chain ID by the same validator keys passes the
// light-client rules, and only its genesis ID tells it apart.
func (c *Client) remember(ctx context.Context) error {
	if c.opts.TrustStore == nil {
		return nil
	}
	v := c.light
	v.saveMu.Lock()
	defer v.saveMu.Unlock()
	v.mu.Lock()
	latest, stored := v.latest, v.stored
	v.mu.Unlock()
	if latest == nil {
		return nil
	}
	if v.genesis == nil {
		// Read below the newest verified header, whose app hash proves it
		// without waiting for a block.
		g, err := c.genesisAt(ctx, latest.header.Height-1)
		if err != nil {
			return fmt.Errorf("trust store: %w", err)
		}
		if stored != nil && g != stored.GenesisID {
			return fmt.Errorf("%w: %s has genesis ID %s, the header stored in %s is of genesis %s (a chain restarted under the same ID?)",
				ErrChainMismatch, c.chainID, g, stored.Source, stored.GenesisID)
		}
		v.genesis = &g
	}
	if v.saved != nil && latest.header.Height <= v.saved.Height {
		return nil
	}
	if err := c.opts.TrustStore.Save(c.chainID, &TrustedHeader{Header: latest.header, Validators: latest.vals, GenesisID: *v.genesis}); err != nil {
		return err
	}
	v.saved = latest.header
	return nil
}
