package worker

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	rpchttp "github.com/cometbft/cometbft/rpc/client/http"
	cmttypes "github.com/cometbft/cometbft/types"

	"github.com/integritee-go/integritee/chain/codec"
	"github.com/integritee-go/integritee/chain/sidechain"
	"github.com/integritee-go/integritee/chain/teerex"
	"github.com/integritee-go/integritee/chain/tx"
	"github.com/integritee-go/integritee/enclave/protocol"
)

// chainReader fetches from the node's CometBFT RPC what the enclave needs
// to verify and process a block, and the registry records the host acts
// on. It checks nothing that matters for trust: the enclave verifies
// everything it is fed. Blocks are read by chain sync alone (sync.go).
type chainReader struct {
	rpc *rpchttp.HTTP

	// The validator set changes rarely: keep the last one by hash.
	valsHash []byte
	valsRaw  []byte

	// The header fetched as the next one of block H is block H+1's
	// (prefetched; forgetNext drops it).
	next       *protocol.Header
	nextHeight int64
}

// forgetNext drops the prefetched header: the enclave refused a block
// fed with it, and the node may serve it right on a retry.
func (c *chainReader) forgetNext() { c.next = nil }

// genesis returns the genesis validator set (protobuf bytes), the chain ID
// and the initial height.
func (c *chainReader) genesis(ctx context.Context) ([]byte, string, int64, error) {
	res, err := c.rpc.Genesis(ctx)
	if err != nil {
		return nil, "", 0, fmt.Errorf("genesis: %w", err)
	}
	g := res.Genesis
	vals := make([]*cmttypes.Validator, len(g.Validators))
	for i, v := range g.Validators {
		vals[i] = cmttypes.NewValidator(v.PubKey, v.Power)
	}
	raw, err := protocol.EncodeValidatorSet(cmttypes.NewValidatorSet(vals))
	if err != nil {
		return nil, "", 0, err
	}
	initial := g.InitialHeight
	if initial == 0 {
		initial = 1
	}
	return raw, g.ChainID, initial, nil
}

// latest returns the node's last committed height.
func (c *chainReader) latest(ctx context.Context) (int64, error) {
	st, err := c.rpc.Status(ctx)
	if err != nil {
		return 0, fmt.Errorf("status: %w", err)
	}
	return st.SyncInfo.LatestBlockHeight, nil
}

// latestTime returns the time of the node's last committed block.
func (c *chainReader) latestTime(ctx context.Context) (time.Time, error) {
	st, err := c.rpc.Status(ctx)
	if err != nil {
		return time.Time{}, fmt.Errorf("status: %w", err)
	}
	return st.SyncInfo.LatestBlockTime, nil
}

// header returns the signed header of height h and its validators.
func (c *chainReader) header(ctx context.Context, h int64) (protocol.Header, error) {
	if c.next != nil && c.nextHeight == h {
		return *c.next, nil
	}
	com, err := c.rpc.Commit(ctx, &h)
	if err != nil {
		return protocol.Header{}, fmt.Errorf("commit %d: %w", h, err)
	}
	sh, err := protocol.EncodeSignedHeader(&com.SignedHeader)
	if err != nil {
		return protocol.Header{}, err
	}
	if com.Header == nil || !bytes.Equal(com.Header.ValidatorsHash, c.valsHash) {
		vals, err := c.validators(ctx, h)
		if err != nil {
			return protocol.Header{}, err
		}
		raw, err := protocol.EncodeValidatorSet(vals)
		if err != nil {
			return protocol.Header{}, err
		}
		c.valsHash, c.valsRaw = vals.Hash(), raw
	}
	return protocol.Header{SignedHeader: sh, Validators: c.valsRaw}, nil
}

func (c *chainReader) validators(ctx context.Context, h int64) (*cmttypes.ValidatorSet, error) {
	var vals []*cmttypes.Validator
	perPage := 100
	for page := 1; ; page++ {
		res, err := c.rpc.Validators(ctx, &h, &page, &perPage)
		if err != nil {
			return nil, fmt.Errorf("validators %d: %w", h, err)
		}
		vals = append(vals, res.Validators...)
		if len(vals) >= res.Total || len(res.Validators) == 0 {
			break
		}
	}
	return cmttypes.NewValidatorSet(vals), nil
}

// block returns the request that feeds block h, and the shard blocks the
// block's transactions confirmed (sidechain events, for the RPC's
// "confirmed" statuses: the host's information, which clients can check
// with proved queries); the node must have committed h+1.
func (c *chainReader) block(ctx context.Context, h int64) (*protocol.ProcessBlock, []sidechain.Confirmed, error) {
	hdr, err := c.header(ctx, h)
	if err != nil {
		return nil, nil, err
	}
	b, err := c.rpc.Block(ctx, &h)
	if err != nil {
		return nil, nil, fmt.Errorf("block %d: %w", h, err)
	}
	res, err := c.rpc.BlockResults(ctx, &h)
	if err != nil {
		return nil, nil, fmt.Errorf("block results %d: %w", h, err)
	}
	if len(res.TxsResults) != len(b.Block.Txs) {
		return nil, nil, fmt.Errorf("block %d: %d txs but %d results", h, len(b.Block.Txs), len(res.TxsResults))
	}
	req := &protocol.ProcessBlock{Block: hdr, Txs: make([][]byte, len(b.Block.Txs)), Results: make([]protocol.TxResult, len(b.Block.Txs))}
	var confirmed []sidechain.Confirmed
	for i, t := range b.Block.Txs {
		req.Txs[i] = t
		r := res.TxsResults[i]
		req.Results[i] = protocol.TxResult{Code: r.Code, Data: r.Data, GasWanted: r.GasWanted, GasUsed: r.GasUsed}
		if r.Code != 0 {
			continue
		}
		for _, ev := range r.Events {
			attrs := make(map[string]string, len(ev.Attributes))
			for _, a := range ev.Attributes {
				attrs[a.Key] = a.Value
			}
			if sc, ok := sidechain.ParseEvent(ev.Type, attrs); ok {
				confirmed = append(confirmed, sc)
			}
		}
	}
	next, err := c.header(ctx, h+1)
	if err != nil {
		return nil, nil, err
	}
	req.Next = next
	c.next, c.nextHeight = &next, h+1
	return req, confirmed, nil
}

// query runs an abci_query and returns the value (nil when absent).
func (c *chainReader) query(ctx context.Context, path string) ([]byte, error) {
	res, err := c.rpc.ABCIQuery(ctx, path, nil)
	if err != nil {
		return nil, fmt.Errorf("query %s: %w", path, err)
	}
	if r := res.Response; r.Code != 0 {
		return nil, fmt.Errorf("query %s: %s/%d: %s", path, r.Codespace, r.Code, r.Log)
	}
	return res.Response.Value, nil
}

// errNotRegistered means the chain holds no registration of the signer.
var errNotRegistered = errors.New("enclave not registered")

// registration returns the chain's record of signer.
func (c *chainReader) registration(ctx context.Context, signer tx.Address) (*teerex.Enclave, error) {
	v, err := c.query(ctx, "/teerex/enclave/"+signer.String())
	if err != nil {
		return nil, err
	}
	if v == nil {
		return nil, errNotRegistered
	}
	var e teerex.Enclave
	if err := codec.Unmarshal(v, &e); err != nil {
		return nil, fmt.Errorf("decode registration of %s: %w", signer, err)
	}
	return &e, nil
}

// policy returns the chain's attestation policy.
func (c *chainReader) policy(ctx context.Context) (*teerex.Policy, error) {
	v, err := c.query(ctx, "/teerex/policy")
	if err != nil {
		return nil, err
	}
	var p teerex.Policy
	if err := codec.Unmarshal(v, &p); err != nil {
		return nil, fmt.Errorf("decode policy: %w", err)
	}
	return &p, nil
}
