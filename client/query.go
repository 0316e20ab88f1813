package client

import (
	"bytes"
	"context"
	"fmt"
	"slices"

	abci "github.com/cometbft/cometbft/abci/types"
	ctypes "github.com/cometbft/cometbft/rpc/core/types"

	"github.com/integritee-go/integritee/chain/accounts"
	"github.com/integritee-go/integritee/chain/bridge"
	"github.com/integritee-go/integritee/chain/codec"
	"github.com/integritee-go/integritee/chain/runtime"
	"github.com/integritee-go/integritee/chain/sidechain"
	"github.com/integritee-go/integritee/chain/smt"
	"github.com/integritee-go/integritee/chain/teerex"
	"github.com/integritee-go/integritee/chain/tx"
	"github.com/integritee-go/integritee/chain/types"
)

// proved runs an abci_query of path at height (0: the latest) with a proof,
// checks that the node answered for key and that the proof verifies
// against the app hash in the light-client-verified header that commits to
// that state (the header one block later, which it may wait for). It
// returns the value, nil if the key is proved absent, and the height.
func (c *Client) proved(ctx context.Context, path string, key []byte, height int64) ([]byte, int64, error) {
	v, h, err := c.provedOnly(ctx, path, key, height)
	if err != nil {
		return nil, 0, err
	}
	if err := c.remember(ctx); err != nil {
		return nil, 0, fmt.Errorf("query %s: %w", path, err)
	}
	return v, h, nil
}

// provedOnly is proved without writing the trust store.
func (c *Client) provedOnly(ctx context.Context, path string, key []byte, height int64) ([]byte, int64, error) {
	k, v, h, p, err := c.query(ctx, path, height, true)
	if err != nil {
		return nil, 0, err
	}
	if !bytes.Equal(k, key) {
		return nil, 0, fmt.Errorf("query %s: node answered for key %q, want %q", path, k, key)
	}
	if height != 0 && h != height {
		return nil, 0, fmt.Errorf("query %s: node answered at height %d, asked %d", path, h, height)
	}
	if len(v) == 0 {
		// The RPC does not tell an absent value from an empty one; modules
		// never store empty values.
		v = nil
	}
	hdr, err := c.VerifiedHeader(ctx, h+1)
	if err != nil {
		return nil, 0, fmt.Errorf("query %s: %w", path, err)
	}
	if err := p.Verify(hdr.AppHash, key, v); err != nil {
		return nil, 0, fmt.Errorf("query %s at %d: %w", path, h, err)
	}
	return v, h, nil
}

// ProofAt returns the value of key (nil if absent) at height with its
// Merkle proof, as the node answers it, unverified: for a verifier that
// holds its own trusted app hash, such as an enclave.
func (c *Client) ProofAt(ctx context.Context, path string, key []byte, height int64) ([]byte, *smt.Proof, error) {
	k, v, h, p, err := c.query(ctx, path, height, true)
	if err != nil {
		return nil, nil, err
	}
	if !bytes.Equal(k, key) || h != height {
		return nil, nil, fmt.Errorf("query %s: node answered for key %q at %d, asked %q at %d", path, k, h, key, height)
	}
	if len(v) == 0 {
		v = nil
	}
	return v, p, nil
}

// keyQuery is a query path and the state key that answers it.
type keyQuery struct {
	path string
	key  []byte
}

// batchSize is how many queries go in one JSON-RPC batch: CometBFT's
// default max_request_batch_size.
const batchSize = 10

// provedAt runs queries at height h (not 0) with proofs, in batches, and
// checks every answer against the app hash of the one verified header that
// commits to h. It returns the values, nil for a key proved absent.
func (c *Client) provedAt(ctx context.Context, h int64, qs []keyQuery) ([][]byte, error) {
	hdr, err := c.VerifiedHeader(ctx, h+1)
	if err != nil {
		return nil, fmt.Errorf("proved queries at %d: %w", h, err)
	}
	out := make([][]byte, 0, len(qs))
	for start := 0; start < len(qs); start += batchSize {
		part := qs[start:min(start+batchSize, len(qs))]
		res, err := c.queryMany(ctx, h, part)
		if err != nil {
			return nil, err
		}
		for i, r := range res {
			q := part[i]
			if r.Code != 0 {
				return nil, fmt.Errorf("query %s: %w", q.path, &TxError{Codespace: r.Codespace, Code: r.Code, Log: r.Log})
			}
			if !bytes.Equal(r.Key, q.key) || r.Height != h {
				return nil, fmt.Errorf("query %s: node answered for key %q at %d, want %q at %d", q.path, r.Key, r.Height, q.key, h)
			}
			p, err := smt.ProofFromOps(r.ProofOps, r.Key)
			if err != nil {
				return nil, fmt.Errorf("query %s: %w", q.path, err)
			}
			v := r.Value
			if len(v) == 0 {
				v = nil // as in proved
			}
			if err := p.Verify(hdr.AppHash, q.key, v); err != nil {
				return nil, fmt.Errorf("query %s at %d: %w", q.path, h, err)
			}
			out = append(out, v)
		}
	}
	return out, nil
}

// queryMany runs proved queries at height h in one JSON-RPC batch, or one
// by one if there is a single query (a batch of one comes back unbatched)
// or the node refuses the batch (a lower max_request_batch_size).
func (c *Client) queryMany(ctx context.Context, h int64, qs []keyQuery) ([]*abci.ResponseQuery, error) {
	if len(qs) > 1 {
		if out, ok := c.queryBatch(ctx, h, qs); ok {
			return out, nil
		}
	}
	out := make([]*abci.ResponseQuery, 0, len(qs))
	for _, q := range qs {
		r, err := c.rpc.ABCIQueryWithOptions(ctx, q.path, nil, abciQueryOptions(h, true))
		if err != nil {
			return nil, fmt.Errorf("query %s: %w", q.path, err)
		}
		out = append(out, &r.Response)
	}
	return out, nil
}

func (c *Client) queryBatch(ctx context.Context, h int64, qs []keyQuery) ([]*abci.ResponseQuery, bool) {
	b := c.rpc.NewBatch()
	for _, q := range qs {
		if _, err := b.ABCIQueryWithOptions(ctx, q.path, nil, abciQueryOptions(h, true)); err != nil {
			return nil, false
		}
	}
	res, err := b.Send(ctx)
	if err != nil || len(res) != len(qs) {
		return nil, false
	}
	out := make([]*abci.ResponseQuery, 0, len(qs))
	for _, r := range res {
		q, ok := r.(*ctypes.ResultABCIQuery)
		if !ok {
			return nil, false
		}
		out = append(out, &q.Response)
	}
	return out, true
}

// provedInto decodes a proved value into v and reports whether it exists.
func (c *Client) provedInto(ctx context.Context, path string, key []byte, height int64, v any) (bool, int64, error) {
	b, h, err := c.proved(ctx, path, key, height)
	if err != nil || b == nil {
		return false, h, err
	}
	if err := codec.Unmarshal(b, v); err != nil {
		return false, 0, fmt.Errorf("query %s: decode: %w", path, err)
	}
	return true, h, nil
}

// VerifiedParams returns the accounts parameters (fees, fee collector, sudo
// key), proved.
func (c *Client) VerifiedParams(ctx context.Context) (accounts.Params, int64, error) {
	var p accounts.Params
	ok, h, err := c.provedInto(ctx, "/accounts/params", accounts.ParamsKey(), 0, &p)
	if err == nil && !ok {
		err = fmt.Errorf("accounts params missing from state at height %d", h)
	}
	return p, h, err
}

// GenesisID returns the genesis ID of the chain (teerex.GenesisID of its
// chain ID, initial height and genesis validators), which the chain records
// at genesis and registering enclaves must commit to, proved.
func (c *Client) GenesisID(ctx context.Context) (types.Hash, error) {
	g, err := c.genesisAt(ctx, 0)
	if err != nil {
		return types.Hash{}, err
	}
	if err := c.remember(ctx); err != nil {
		return types.Hash{}, fmt.Errorf("genesis ID: %w", err)
	}
	return g, nil
}

// genesisAt proves the genesis ID at height (0: the latest) without
// writing the trust store, which needs it.
func (c *Client) genesisAt(ctx context.Context, height int64) (types.Hash, error) {
	v, h, err := c.provedOnly(ctx, "/app/genesis", runtime.GenesisKey(), height)
	if err != nil {
		return types.Hash{}, err
	}
	if len(v) != len(types.Hash{}) {
		return types.Hash{}, fmt.Errorf("genesis ID at height %d has %d bytes, want %d", h, len(v), len(types.Hash{}))
	}
	return types.Hash(v), nil
}

// Enclave returns the registration of signer, expired or not. An absent
// one gives an error wrapping teerex.ErrNotRegistered.
func (c *Client) Enclave(ctx context.Context, signer tx.Address) (*teerex.Enclave, int64, error) {
	return c.EnclaveAt(ctx, signer, 0)
}

// EnclaveAt is Enclave at height (0: the latest).
func (c *Client) EnclaveAt(ctx context.Context, signer tx.Address, height int64) (*teerex.Enclave, int64, error) {
	var e teerex.Enclave
	ok, h, err := c.provedInto(ctx, "/teerex/enclave/"+signer.String(), teerex.EnclaveKey(signer), height, &e)
	if err != nil {
		return nil, 0, err
	}
	if !ok {
		return nil, h, fmt.Errorf("%w: %s at height %d", teerex.ErrNotRegistered, signer, h)
	}
	return &e, h, nil
}

// Enclaves returns every registration, expired ones included, in signer
// order, all proved at one height. The list has no bound but the chain's:
// prefer EachEnclave to stop early.
func (c *Client) Enclaves(ctx context.Context) ([]teerex.Enclave, int64, error) {
	return c.enclaveList(ctx, nil, 0)
}

// EnclavesOf returns the registrations with measurement m: the enclaves
// that may serve the shard m by default.
func (c *Client) EnclavesOf(ctx context.Context, m types.Hash) ([]teerex.Enclave, int64, error) {
	return c.enclaveList(ctx, &m, 0)
}

// EnclavesOfAt is EnclavesOf at height (0: the latest).
func (c *Client) EnclavesOfAt(ctx context.Context, m types.Hash, height int64) ([]teerex.Enclave, int64, error) {
	return c.enclaveList(ctx, &m, height)
}

func (c *Client) enclaveList(ctx context.Context, m *types.Hash, height int64) ([]teerex.Enclave, int64, error) {
	var out []teerex.Enclave
	_, h, err := c.EachEnclaveAt(ctx, m, height, func(e teerex.Enclave) bool { out = append(out, e); return true })
	if err != nil {
		return nil, 0, err
	}
	slices.SortFunc(out, func(a, b teerex.Enclave) int { return bytes.Compare(a.Signer[:], b.Signer[:]) })
	return out, h, nil
}

// enclavePage is how many registrations EachEnclave reads per step.
const enclavePage = 50

// EachEnclave calls fn with the registrations of measurement m (all
// registrations if m is nil), in the chain's slot order, until fn returns
// false. It proves the number of registrations at the latest height and
// then, at that same height, the signer in each slot and its registration,
// a page at a time, so that the listing is complete and consistent; it
// returns that number and the height.
func (c *Client) EachEnclave(ctx context.Context, m *types.Hash, fn func(teerex.Enclave) bool) (uint64, int64, error) {
	return c.EachEnclaveAt(ctx, m, 0, fn)
}

// EachEnclaveAt is EachEnclave at height (0: the latest).
func (c *Client) EachEnclaveAt(ctx context.Context, m *types.Hash, height int64, fn func(teerex.Enclave) bool) (uint64, int64, error) {
	countPath, countKey := "/teerex/enclaves", teerex.EnclavesCountKey()
	slot := func(i uint64) keyQuery {
		return keyQuery{fmt.Sprintf("/teerex/enclaves/%d", i), teerex.EnclavesSlotKey(i)}
	}
	if m != nil {
		countPath, countKey = "/teerex/enclaves/"+m.String(), teerex.EnclavesOfCountKey(*m)
		slot = func(i uint64) keyQuery {
			return keyQuery{fmt.Sprintf("/teerex/enclaves/%s/%d", m, i), teerex.EnclavesOfSlotKey(*m, i)}
		}
	}
	var n uint64
	_, h, err := c.provedInto(ctx, countPath, countKey, height, &n)
	if err != nil {
		return 0, 0, err
	}
	seen := make(map[tx.Address]bool)
	for from := uint64(0); from < n; from += enclavePage {
		qs := make([]keyQuery, 0, enclavePage)
		for i := from; i < min(from+enclavePage, n); i++ {
			qs = append(qs, slot(i))
		}
		vals, err := c.provedAt(ctx, h, qs)
		if err != nil {
			return 0, 0, err
		}
		signers := make([]tx.Address, len(vals))
		recs := make([]keyQuery, len(vals))
		for i, v := range vals {
			if v == nil || codec.Unmarshal(v, &signers[i]) != nil {
				return 0, 0, fmt.Errorf("query %s at %d: slot of %d registrations empty or malformed", qs[i].path, h, n)
			}
			if seen[signers[i]] {
				return 0, 0, fmt.Errorf("query %s at %d: %s listed twice", qs[i].path, h, signers[i])
			}
			seen[signers[i]] = true
			recs[i] = keyQuery{"/teerex/enclave/" + signers[i].String(), teerex.EnclaveKey(signers[i])}
		}
		if vals, err = c.provedAt(ctx, h, recs); err != nil {
			return 0, 0, err
		}
		for i, v := range vals {
			var e teerex.Enclave
			if v == nil || codec.Unmarshal(v, &e) != nil || e.Signer != signers[i] || m != nil && e.MRENCLAVE != *m {
				return 0, 0, fmt.Errorf("query %s at %d: listed registration missing or not the listed one", recs[i].path, h)
			}
			if !fn(e) {
				return n, h, nil
			}
		}
	}
	return n, h, nil
}

// Policy returns the attestation policy.
func (c *Client) Policy(ctx context.Context) (*teerex.Policy, int64, error) {
	return c.PolicyAt(ctx, 0)
}

// PolicyAt is Policy at height (0: the latest).
func (c *Client) PolicyAt(ctx context.Context, height int64) (*teerex.Policy, int64, error) {
	var p teerex.Policy
	ok, h, err := c.provedInto(ctx, "/teerex/policy", teerex.PolicyKey(), height, &p)
	if err != nil {
		return nil, 0, err
	}
	if !ok {
		return nil, h, fmt.Errorf("attestation policy missing from state at height %d", h)
	}
	return &p, h, nil
}

// Allowlist returns the measurements allowed to register (consulted unless
// the policy allows any).
func (c *Client) Allowlist(ctx context.Context) (teerex.MRENCLAVEs, int64, error) {
	return c.AllowlistAt(ctx, 0)
}

// AllowlistAt is Allowlist at height (0: the latest).
func (c *Client) AllowlistAt(ctx context.Context, height int64) (teerex.MRENCLAVEs, int64, error) {
	var l teerex.MRENCLAVEs
	_, h, err := c.provedInto(ctx, "/teerex/allowlist", teerex.AllowlistKey(), height, &l)
	return l, h, err
}

// ShardStatus is what the chain knows of a shard.
type ShardStatus struct {
	// Shard is the on-chain record, or bridge.DefaultShard when the shard
	// has none yet (no confirmation or configuration change): Recorded
	// tells which.
	Shard    bridge.Shard
	Recorded bool
	// VaultBalance is the balance of Shard.Vault: the shielded funds.
	VaultBalance uint64
	// Height is the height all of it was read at.
	Height int64
}

// Shard returns a shard's configuration, latest confirmations and vault
// balance.
func (c *Client) Shard(ctx context.Context, id types.Hash) (*ShardStatus, error) {
	return c.ShardAt(ctx, id, 0)
}

// ShardAt is Shard at height (0: the latest).
func (c *Client) ShardAt(ctx context.Context, id types.Hash, height int64) (*ShardStatus, error) {
	s := &ShardStatus{Shard: bridge.DefaultShard(id)}
	ok, h, err := c.provedInto(ctx, "/bridge/shard/"+id.String(), bridge.ShardKey(id), height, &s.Shard)
	if err != nil {
		return nil, err
	}
	s.Recorded, s.Height = ok, h
	if ok && s.Shard.ID != id {
		return nil, fmt.Errorf("shard %s: record names shard %s", id, s.Shard.ID)
	}
	var vault accounts.Account
	if _, _, err := c.provedInto(ctx, "/accounts/"+s.Shard.Vault.String(), accounts.AccountKey(s.Shard.Vault), h, &vault); err != nil {
		return nil, err
	}
	s.VaultBalance = vault.Balance
	return s, nil
}

// SidechainBlocks returns the confirmations of a shard's sidechain blocks
// by number, proved at height (a height a proved query returned, such as
// SidechainLatest's). A block the chain had not confirmed at height is
// absent from the map. All of them are checked against one verified
// header, where SidechainBlock verifies a header for each block and waits
// for the next chain block every time: hundreds of blocks took minutes.
func (c *Client) SidechainBlocks(ctx context.Context, shard types.Hash, numbers []uint64, height int64) (map[uint64]*sidechain.Confirmation, error) {
	if height <= 0 {
		return nil, fmt.Errorf("sidechain blocks of %s: height %d, want a committed height", shard, height)
	}
	qs := make([]keyQuery, len(numbers))
	for i, n := range numbers {
		qs[i] = keyQuery{fmt.Sprintf("/sidechain/block/%s/%d", shard, n), sidechain.BlockKey(shard, n)}
	}
	vals, err := c.provedAt(ctx, height, qs)
	if err != nil {
		return nil, err
	}
	out := make(map[uint64]*sidechain.Confirmation)
	for i, v := range vals {
		if v == nil {
			continue
		}
		conf := new(sidechain.Confirmation)
		if err := codec.Unmarshal(v, conf); err != nil {
			return nil, fmt.Errorf("query %s: decode: %w", qs[i].path, err)
		}
		if conf.Shard != shard || conf.Number != numbers[i] {
			return nil, fmt.Errorf("query %s: record names %s/%d", qs[i].path, conf.Shard, conf.Number)
		}
		out[numbers[i]] = conf
	}
	return out, nil
}

// Confirmations returns the latest confirmation of a shard's processed
// blocks by each of the given enclaves that confirmed any, proved at
// height (a height a proved query returned, such as ShardStatus.Height).
func (c *Client) Confirmations(ctx context.Context, shard types.Hash, enclaves []tx.Address, height int64) (map[tx.Address]bridge.Confirmation, error) {
	if height <= 0 {
		return nil, fmt.Errorf("confirmations of %s: height %d, want a committed height", shard, height)
	}
	qs := make([]keyQuery, len(enclaves))
	for i, e := range enclaves {
		qs[i] = keyQuery{"/bridge/confirmation/" + shard.String() + "/" + e.String(), bridge.ConfirmationKey(shard, e)}
	}
	vals, err := c.provedAt(ctx, height, qs)
	if err != nil {
		return nil, err
	}
	out := make(map[tx.Address]bridge.Confirmation)
	for i, v := range vals {
		if v == nil {
			continue
		}
		var conf bridge.Confirmation
		if err := codec.Unmarshal(v, &conf); err != nil {
			return nil, fmt.Errorf("query %s: decode: %w", qs[i].path, err)
		}
		if conf.Enclave != enclaves[i] {
			return nil, fmt.Errorf("query %s: record names enclave %s", qs[i].path, conf.Enclave)
		}
		out[enclaves[i]] = conf
	}
	return out, nil
}

// Unshielded returns the record of an executed unshield_funds of a shard's
// call hash, or nil if it has not been executed.
func (c *Client) Unshielded(ctx context.Context, shard, callHash types.Hash) (*bridge.Unshielded, int64, error) {
	var u bridge.Unshielded
	ok, h, err := c.provedInto(ctx, "/bridge/unshielded/"+shard.String()+"/"+callHash.String(), bridge.UnshieldedKey(shard, callHash), 0, &u)
	if err != nil || !ok {
		return nil, h, err
	}
	return &u, h, nil
}

// ConfirmedBlock returns the first confirmation of a shard's processed
// block at height, or nil if none.
func (c *Client) ConfirmedBlock(ctx context.Context, shard types.Hash, height uint64) (*bridge.Confirmation, int64, error) {
	var conf bridge.Confirmation
	ok, h, err := c.provedInto(ctx, fmt.Sprintf("/bridge/block/%s/%d", shard, height), bridge.BlockKey(shard, height), 0, &conf)
	if err != nil || !ok {
		return nil, h, err
	}
	return &conf, h, nil
}

// SidechainLatest returns the latest confirmed block of a shard's
// sidechain (direct invocation), or nil if the shard has confirmed none.
func (c *Client) SidechainLatest(ctx context.Context, shard types.Hash) (*sidechain.Confirmation, int64, error) {
	var conf sidechain.Confirmation
	ok, h, err := c.provedInto(ctx, "/sidechain/shard/"+shard.String(), sidechain.ShardKey(shard), 0, &conf)
	if err != nil || !ok {
		return nil, h, err
	}
	if conf.Shard != shard {
		return nil, 0, fmt.Errorf("sidechain of %s: record names shard %s", shard, conf.Shard)
	}
	return &conf, h, nil
}

// SidechainBlock returns the confirmation of a shard's sidechain block
// number, or nil if that block was not confirmed.
func (c *Client) SidechainBlock(ctx context.Context, shard types.Hash, number uint64) (*sidechain.Confirmation, int64, error) {
	var conf sidechain.Confirmation
	ok, h, err := c.provedInto(ctx, fmt.Sprintf("/sidechain/block/%s/%d", shard, number), sidechain.BlockKey(shard, number), 0, &conf)
	if err != nil || !ok {
		return nil, h, err
	}
	if conf.Shard != shard || conf.Number != number {
		return nil, 0, fmt.Errorf("sidechain block %s/%d: record names %s/%d", shard, number, conf.Shard, conf.Number)
	}
	return &conf, h, nil
}
