package client

import (
	"bytes"
	"context"
	"fmt"

	"github.com/integritee-go/integritee/chain/accounts"
	"github.com/integritee-go/integritee/chain/bridge"
	"github.com/integritee-go/integritee/chain/codec"
	"github.com/integritee-go/integritee/chain/runtime"
	"github.com/integritee-go/integritee/chain/sidechain"
	"github.com/integritee-go/integritee/chain/store"
	"github.com/integritee-go/integritee/chain/teerex"
	"github.com/integritee-go/integritee/chain/tx"
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
func (c *Client) ProofAt(ctx context.Context, path string, key []byte, height int64) ([]byte, *store.Proof, error) {
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

// The typed queries below are proved: the value (or its absence) is checked
// against a verified header, as VerifiedAccount does, and each returns the
// height it was read at. Queries that read several keys read them all at
// one height.

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
func (c *Client) GenesisID(ctx context.Context) (teerex.Hash, error) {
	g, err := c.genesisAt(ctx, 0)
	if err != nil {
		return teerex.Hash{}, err
	}
	if err := c.remember(ctx); err != nil {
		return teerex.Hash{}, fmt.Errorf("genesis ID: %w", err)
	}
	return g, nil
}

// genesisAt proves the genesis ID at height (0: the latest) without
// writing the trust store, which needs it.
func (c *Client) genesisAt(ctx context.Context, height int64) (teerex.Hash, error) {
	v, h, err := c.provedOnly(ctx, "/app/genesis", runtime.GenesisKey(), height)
	if err != nil {
		return teerex.Hash{}, err
	}
	if len(v) != len(teerex.Hash{}) {
		return teerex.Hash{}, fmt.Errorf("genesis ID at height %d has %d bytes, want %d", h, len(v), len(teerex.Hash{}))
	}
	return teerex.Hash(v), nil
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
// order.
func (c *Client) Enclaves(ctx context.Context) ([]teerex.Enclave, int64, error) {
	return c.enclaveList(ctx, "/teerex/enclaves", teerex.EnclavesKey(), 0)
}

// EnclavesOf returns the registrations with measurement m: the enclaves
// that may serve the shard m by default.
func (c *Client) EnclavesOf(ctx context.Context, m teerex.Hash) ([]teerex.Enclave, int64, error) {
	return c.EnclavesOfAt(ctx, m, 0)
}

// EnclavesOfAt is EnclavesOf at height (0: the latest).
func (c *Client) EnclavesOfAt(ctx context.Context, m teerex.Hash, height int64) ([]teerex.Enclave, int64, error) {
	return c.enclaveList(ctx, "/teerex/enclaves/"+m.String(), teerex.EnclavesOfKey(m), height)
}

func (c *Client) enclaveList(ctx context.Context, path string, key []byte, height int64) ([]teerex.Enclave, int64, error) {
	var signers teerex.Signers
	_, h, err := c.provedInto(ctx, path, key, height, &signers)
	if err != nil {
		return nil, 0, err
	}
	out := make([]teerex.Enclave, 0, len(signers))
	for _, s := range signers {
		e, _, err := c.EnclaveAt(ctx, s, h)
		if err != nil {
			return nil, 0, err
		}
		out = append(out, *e)
	}
	return out, h, nil
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
func (c *Client) Shard(ctx context.Context, id teerex.Hash) (*ShardStatus, error) {
	return c.ShardAt(ctx, id, 0)
}

// ShardAt is Shard at height (0: the latest).
func (c *Client) ShardAt(ctx context.Context, id teerex.Hash, height int64) (*ShardStatus, error) {
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

// Unshielded returns the record of an executed unshield_funds of a shard's
// call hash, or nil if it has not been executed.
func (c *Client) Unshielded(ctx context.Context, shard, callHash teerex.Hash) (*bridge.Unshielded, int64, error) {
	var u bridge.Unshielded
	ok, h, err := c.provedInto(ctx, "/bridge/unshielded/"+shard.String()+"/"+callHash.String(), bridge.UnshieldedKey(shard, callHash), 0, &u)
	if err != nil || !ok {
		return nil, h, err
	}
	return &u, h, nil
}

// ConfirmedBlock returns the first confirmation of a shard's processed
// block at height, or nil if none.
func (c *Client) ConfirmedBlock(ctx context.Context, shard teerex.Hash, height uint64) (*bridge.Confirmation, int64, error) {
	var conf bridge.Confirmation
	ok, h, err := c.provedInto(ctx, fmt.Sprintf("/bridge/block/%s/%d", shard, height), bridge.BlockKey(shard, height), 0, &conf)
	if err != nil || !ok {
		return nil, h, err
	}
	return &conf, h, nil
}

// SidechainLatest returns the latest confirmed block of a shard's
// sidechain (direct invocation), or nil if the shard has confirmed none.
func (c *Client) SidechainLatest(ctx context.Context, shard teerex.Hash) (*sidechain.Confirmation, int64, error) {
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
func (c *Client) SidechainBlock(ctx context.Context, shard teerex.Hash, number uint64) (*sidechain.Confirmation, int64, error) {
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
