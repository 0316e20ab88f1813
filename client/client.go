package client

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"strings"
	"time"

	rpchttp "github.com/cometbft/cometbft/rpc/client/http"

	"github.com/integritee-go/integritee/chain/accounts"
	"github.com/integritee-go/integritee/chain/codec"
	"github.com/integritee-go/integritee/chain/smt"
	"github.com/integritee-go/integritee/chain/tx"
	"github.com/integritee-go/integritee/chain/types"
)

// Options configure a client.
type Options struct {
	// TrustHeight and TrustHash name a block the caller trusts (e.g. from
	// a block explorer or an operator), both or neither. They take
	// precedence over the TrustStore's record, which they replace once a
	// proved query succeeded.
	TrustHeight int64
	TrustHash   []byte
	// TrustStore keeps the newest verified header per chain between runs
	// (e.g. FileTrustStore). Nil: each client trusts the node on first
	// use unless TrustHeight and TrustHash are set.
	TrustStore TrustStore
	// TrustingPeriod bounds how old a trusted header may be for
	// verifying newer ones; default 14 days.
	TrustingPeriod time.Duration
	// Now is the clock the trusting period is counted by; default
	// time.Now.
	Now func() time.Time
	// PollInterval is how often WaitTx asks for a transaction; default 50ms.
	PollInterval time.Duration
}

// Client talks to one node.
type Client struct {
	rpc     *rpchttp.HTTP
	chainID string
	opts    Options
	light   *verifier
}

// New connects to a node's RPC address (http://host:port) and reads its
// chain ID.
func New(ctx context.Context, addr string, opts Options) (*Client, error) {
	if (opts.TrustHeight == 0) != (opts.TrustHash == nil) || opts.TrustHeight < 0 {
		return nil, fmt.Errorf("client: trust height %d and hash %X: set both (a positive height) or neither", opts.TrustHeight, opts.TrustHash)
	}
	rpc, err := rpchttp.New(addr, "/websocket")
	if err != nil {
		return nil, fmt.Errorf("client %s: %w", addr, err)
	}
	st, err := rpc.Status(ctx)
	if err != nil {
		return nil, fmt.Errorf("client %s: status: %w", addr, err)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.TrustingPeriod == 0 {
		opts.TrustingPeriod = 14 * 24 * time.Hour
	}
	if opts.PollInterval == 0 {
		opts.PollInterval = 50 * time.Millisecond
	}
	c := &Client{rpc: rpc, chainID: st.NodeInfo.Network, opts: opts}
	c.light = &verifier{c: c}
	return c, nil
}

// ChainID is the chain ID the node reported.
func (c *Client) ChainID() string { return c.chainID }

// RPC exposes the underlying CometBFT RPC client.
func (c *Client) RPC() *rpchttp.HTTP { return c.rpc }

// TxError is a transaction rejected by CheckTx or failed in its block. It
// matches the runtime error of the same codespace and code under errors.Is,
// e.g. errors.Is(err, types.ErrStaleNonce).
type TxError struct {
	Codespace string
	Code      uint32
	Log       string
	// Height is the block of a transaction that failed in execution, 0 for
	// a CheckTx rejection.
	Height int64
	// err is a cause the node did not state as a code (ErrTxInCache).
	err error
}

// ErrTxInCache is a broadcast of a transaction the node has seen already:
// CometBFT's mempool cache refuses it before the app's CheckTx runs, as a
// generic RPC error. Broadcast returns it as the *TxError the app would
// have given (types.ErrStaleNonce: its nonce is taken by this very
// transaction, pending or committed), matching both under errors.Is.
var ErrTxInCache = errors.New("the node has this transaction already (pending in its mempool or committed)")

// cometTxInCache is the text of CometBFT's mempool.ErrTxInCache, which
// reaches an RPC client only as text.
const cometTxInCache = "tx already exists in cache"

// Unwrap returns the cause the node did not state as a code, if any.
func (e *TxError) Unwrap() error { return e.err }

func (e *TxError) Error() string {
	if e.Height > 0 {
		return fmt.Sprintf("tx failed in block %d: %s/%d: %s", e.Height, e.Codespace, e.Code, e.Log)
	}
	return fmt.Sprintf("tx rejected: %s/%d: %s", e.Codespace, e.Code, e.Log)
}

// Is matches a *types.Error with the same codespace and code.
func (e *TxError) Is(target error) bool {
	var re *types.Error
	return errors.As(target, &re) && re.Codespace == e.Codespace && re.Code == e.Code
}

// query runs an abci_query and returns the response value and height.
func (c *Client) query(ctx context.Context, path string, height int64, prove bool) ([]byte, []byte, int64, *smt.Proof, error) {
	res, err := c.rpc.ABCIQueryWithOptions(ctx, path, nil, abciQueryOptions(height, prove))
	if err != nil {
		return nil, nil, 0, nil, fmt.Errorf("query %s: %w", path, err)
	}
	r := res.Response
	if r.Code != 0 {
		return nil, nil, 0, nil, fmt.Errorf("query %s: %w", path, &TxError{Codespace: r.Codespace, Code: r.Code, Log: r.Log})
	}
	var p *smt.Proof
	if prove {
		if p, err = smt.ProofFromOps(r.ProofOps, r.Key); err != nil {
			return nil, nil, 0, nil, fmt.Errorf("query %s: %w", path, err)
		}
	}
	return r.Key, r.Value, r.Height, p, nil
}

// Account returns an account at the latest height as the node reports it,
// without proof.
func (c *Client) Account(ctx context.Context, a tx.Address) (accounts.Account, error) {
	var acc accounts.Account
	_, v, _, _, err := c.query(ctx, "/accounts/"+a.String(), 0, false)
	if err != nil || v == nil {
		return acc, err
	}
	if err := codec.Unmarshal(v, &acc); err != nil {
		return acc, fmt.Errorf("decode account: %w", err)
	}
	return acc, nil
}

// Params returns the accounts parameters (fees, fee collector, sudo) as the
// node reports them.
func (c *Client) Params(ctx context.Context) (accounts.Params, error) {
	var p accounts.Params
	_, v, _, _, err := c.query(ctx, "/accounts/params", 0, false)
	if err != nil {
		return p, err
	}
	if err := codec.Unmarshal(v, &p); err != nil {
		return p, fmt.Errorf("decode params: %w", err)
	}
	return p, nil
}

// VerifiedAccount returns an account at a committed height (0: latest)
// with its proof checked against the app hash of a verified header. It
// waits for the next block when the state is the newest, since that block's
// header carries the app hash.
func (c *Client) VerifiedAccount(ctx context.Context, a tx.Address, height int64) (accounts.Account, int64, error) {
	var acc accounts.Account
	_, h, err := c.provedInto(ctx, "/accounts/"+a.String(), accounts.AccountKey(a), height, &acc)
	if err != nil {
		return accounts.Account{}, 0, fmt.Errorf("verified account: %w", err)
	}
	return acc, h, nil
}

// Submitted is a transaction included in a block.
type Submitted struct {
	Hash   [32]byte
	Height int64
	// Events of the transaction (fee, transfer, ...).
	Events []Event
}

// Event is a transaction event.
type Event struct {
	Type  string
	Attrs map[string]string
}

// Build signs a transaction for key with an explicit nonce and fee.
func (c *Client) Build(key ed25519.PrivateKey, nonce, fee uint64, call tx.Call) ([]byte, error) {
	body := tx.Body{ChainID: c.chainID, Sender: tx.AddressOf(key.Public().(ed25519.PublicKey)), Nonce: nonce, Fee: fee, Call: call}
	stx, err := tx.Sign(body, key)
	if err != nil {
		return nil, err
	}
	return stx.Encode()
}

// BuildMinFee signs a transaction paying exactly the minimum fee for its own
// size under params.
func (c *Client) BuildMinFee(key ed25519.PrivateKey, nonce uint64, params accounts.Params, call tx.Call) ([]byte, error) {
	var fee uint64
	// The fee's own encoding length changes the size: iterate to a fixpoint
	// (at most a few rounds since the CBOR length of a uint only grows).
	for range 8 {
		wire, err := c.Build(key, nonce, fee, call)
		if err != nil {
			return nil, err
		}
		want := params.MinFee(len(wire))
		if want == fee {
			return wire, nil
		}
		fee = want
	}
	return nil, errors.New("build: fee did not converge")
}

// Broadcast submits wire bytes with broadcast_tx_sync: it returns once
// CheckTx has admitted the transaction to the mempool. A transaction the
// node has seen already is a *TxError of types.ErrStaleNonce that also
// matches ErrTxInCache, with the transaction's hash (to wait for it).
func (c *Client) Broadcast(ctx context.Context, wire []byte) ([32]byte, error) {
	res, err := c.rpc.BroadcastTxSync(ctx, wire)
	if err != nil && strings.Contains(err.Error(), cometTxInCache) {
		return tx.Hash(wire), &TxError{Codespace: types.ErrStaleNonce.Codespace, Code: types.ErrStaleNonce.Code,
			Log: types.ErrStaleNonce.Msg + ": " + ErrTxInCache.Error() + " (" + cometTxInCache + ")", err: ErrTxInCache}
	}
	if err != nil {
		return [32]byte{}, fmt.Errorf("broadcast: %w", err)
	}
	if res.Code != 0 {
		return [32]byte{}, &TxError{Codespace: res.Codespace, Code: res.Code, Log: res.Log}
	}
	return tx.Hash(wire), nil
}

// WaitTx polls until the transaction is in a committed block. A transaction
// whose call failed is returned with a *TxError (its fee was charged).
func (c *Client) WaitTx(ctx context.Context, hash [32]byte) (*Submitted, error) {
	t := time.NewTicker(c.opts.PollInterval)
	defer t.Stop()
	for {
		res, err := c.rpc.Tx(ctx, hash[:], false)
		if err == nil {
			s := &Submitted{Hash: hash, Height: res.Height}
			for _, ev := range res.TxResult.Events {
				e := Event{Type: ev.Type, Attrs: map[string]string{}}
				for _, a := range ev.Attributes {
					e.Attrs[a.Key] = a.Value
				}
				s.Events = append(s.Events, e)
			}
			if res.TxResult.Code != 0 {
				return s, &TxError{Codespace: res.TxResult.Codespace, Code: res.TxResult.Code, Log: res.TxResult.Log, Height: res.Height}
			}
			return s, nil
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("wait for tx %X: %w (last: %v)", hash, ctx.Err(), err)
		case <-t.C:
		}
	}
}

// Submit signs call for key with the account's next committed nonce and the
// minimum fee, broadcasts it and waits for its block. For several
// transactions of one sender in flight, use BuildMinFee with own nonces.
func (c *Client) Submit(ctx context.Context, key ed25519.PrivateKey, call tx.Call) (*Submitted, error) {
	addr := tx.AddressOf(key.Public().(ed25519.PublicKey))
	acc, err := c.Account(ctx, addr)
	if err != nil {
		return nil, err
	}
	params, err := c.Params(ctx)
	if err != nil {
		return nil, err
	}
	wire, err := c.BuildMinFee(key, acc.Nonce, params, call)
	if err != nil {
		return nil, err
	}
	h, err := c.Broadcast(ctx, wire)
	if err != nil {
		return nil, err
	}
	return c.WaitTx(ctx, h)
}

// Transfer sends amount from key's account to to and waits for its block.
func (c *Client) Transfer(ctx context.Context, key ed25519.PrivateKey, to tx.Address, amount uint64) (*Submitted, error) {
	call, err := accounts.TransferCall(to, amount)
	if err != nil {
		return nil, err
	}
	return c.Submit(ctx, key, call)
}
