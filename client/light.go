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
	"github.com/cometbft/cometbft/types"
)

// maxClockDrift is the tolerance for headers timed ahead of the local clock.
const maxClockDrift = 10 * time.Second

func abciQueryOptions(height int64, prove bool) rpcclient.ABCIQueryOptions {
	return rpcclient.ABCIQueryOptions{Height: height, Prove: prove}
}

type trusted struct {
	header *types.SignedHeader
	vals   *types.ValidatorSet // validators of header.Height
}

// verifier verifies headers from a trusted root with the light-client
// rules. It keeps the root and the newest verified header.
type verifier struct {
	c      *Client
	mu     sync.Mutex
	root   *trusted
	latest *trusted
}

// VerifiedHeader returns the header at height verified by the light-client
// rules from the trusted root. It waits (polling) until the node has the
// block.
func (c *Client) VerifiedHeader(ctx context.Context, height int64) (*types.Header, error) {
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
	var vals []*types.Validator
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
	vs := types.NewValidatorSet(vals)
	if !bytes.Equal(vs.Hash(), sh.ValidatorsHash) {
		return nil, fmt.Errorf("validators %d do not match the header", height)
	}
	return &trusted{header: sh, vals: vs}, nil
}

func (v *verifier) initRoot(ctx context.Context) error {
	h := v.c.opts.TrustHeight
	if h == 0 {
		h = 1
	}
	t, err := v.fetch(ctx, h)
	if err != nil {
		return err
	}
	if v.c.opts.TrustHash != nil && !bytes.Equal(t.header.Hash(), v.c.opts.TrustHash) {
		return fmt.Errorf("block %d has hash %X, trusted %X", h, t.header.Hash(), v.c.opts.TrustHash)
	}
	if err := t.vals.VerifyCommitLight(v.c.chainID, t.header.Commit.BlockID, h, t.header.Commit); err != nil {
		return fmt.Errorf("trusted block %d: %w", h, err)
	}
	v.root, v.latest = t, t
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
	from := v.latest
	if height < from.header.Height {
		from = v.root
	}
	if height < from.header.Height {
		return nil, fmt.Errorf("height %d is below the trusted root %d", height, from.header.Height)
	}
	if height == from.header.Height {
		return from, nil
	}
	t, err := v.verifyFrom(ctx, from, height, 0)
	if err != nil {
		return nil, err
	}
	if height > v.latest.header.Height {
		v.latest = t
	}
	return t, nil
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
	err = light.Verify(from.header, from.vals, t.header, t.vals, v.c.opts.TrustingPeriod, time.Now(), maxClockDrift, light.DefaultTrustLevel)
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
