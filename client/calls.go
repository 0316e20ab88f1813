package client

import (
	"context"
	"crypto/ed25519"

	"github.com/integritee-go/integritee/chain/accounts"
	"github.com/integritee-go/integritee/chain/bridge"
	"github.com/integritee-go/integritee/chain/teerex"
	"github.com/integritee-go/integritee/chain/tx"
	"github.com/integritee-go/integritee/chain/types"
)

func (c *Client) submitCall(ctx context.Context, key ed25519.PrivateKey, module, method string, args any) (*Submitted, error) {
	call, err := tx.NewCall(module, method, args)
	if err != nil {
		return nil, err
	}
	return c.Submit(ctx, key, call)
}

// SetBalance sets an account's balance (sudo only).
func (c *Client) SetBalance(ctx context.Context, sudo ed25519.PrivateKey, who tx.Address, amount uint64) (*Submitted, error) {
	return c.submitCall(ctx, sudo, accounts.Name, accounts.MethodSetBalance, accounts.SetBalance{Who: who, Amount: amount})
}

// RegisterEnclave registers (or renews) the enclave whose signer key is
// key. The evidence's report data must be teerex.ReportData(signer,
// shieldingKey, genesis), genesis being the chain's (GenesisID).
func (c *Client) RegisterEnclave(ctx context.Context, key ed25519.PrivateKey, ev teerex.Evidence, shieldingKey []byte, workerURL string) (*Submitted, error) {
	return c.submitCall(ctx, key, teerex.Name, teerex.MethodRegisterEnclave,
		teerex.RegisterEnclave{Attestation: ev, ShieldingKey: shieldingKey, WorkerURL: workerURL})
}

// UnregisterEnclave removes the registration of key's enclave.
func (c *Client) UnregisterEnclave(ctx context.Context, key ed25519.PrivateKey) (*Submitted, error) {
	return c.submitCall(ctx, key, teerex.Name, teerex.MethodUnregisterEnclave, teerex.UnregisterEnclave{})
}

// KeepAlive tells the chain that key's enclave is alive: under a policy
// with a liveness period it stays active for that period after the block.
func (c *Client) KeepAlive(ctx context.Context, key ed25519.PrivateKey) (*Submitted, error) {
	return c.submitCall(ctx, key, teerex.Name, teerex.MethodKeepAlive, teerex.KeepAlive{})
}

// RemoveEnclave removes the registration of signer (sudo only), e.g. an
// enclave whose machine is lost.
func (c *Client) RemoveEnclave(ctx context.Context, sudo ed25519.PrivateKey, signer tx.Address) (*Submitted, error) {
	return c.submitCall(ctx, sudo, teerex.Name, teerex.MethodRemoveEnclave, teerex.RemoveEnclave{Signer: signer})
}

// AllowMRENCLAVE adds a measurement to the allowlist (sudo only).
func (c *Client) AllowMRENCLAVE(ctx context.Context, sudo ed25519.PrivateKey, m types.Hash) (*Submitted, error) {
	return c.submitCall(ctx, sudo, teerex.Name, teerex.MethodAllowMRENCLAVE, teerex.AllowMRENCLAVE{MRENCLAVE: m})
}

// DisallowMRENCLAVE removes a measurement from the allowlist (sudo only);
// its enclaves stay registered but are no longer active.
func (c *Client) DisallowMRENCLAVE(ctx context.Context, sudo ed25519.PrivateKey, m types.Hash) (*Submitted, error) {
	return c.submitCall(ctx, sudo, teerex.Name, teerex.MethodDisallowMRENCLAVE, teerex.DisallowMRENCLAVE{MRENCLAVE: m})
}

// SetAttestationPolicy replaces the attestation policy (sudo only).
func (c *Client) SetAttestationPolicy(ctx context.Context, sudo ed25519.PrivateKey, p teerex.Policy) (*Submitted, error) {
	return c.submitCall(ctx, sudo, teerex.Name, teerex.MethodSetAttestationPolicy, teerex.SetAttestationPolicy{Policy: p})
}

// SetCollateral adds or replaces collateral of the policy (sudo only).
func (c *Client) SetCollateral(ctx context.Context, sudo ed25519.PrivateKey, col teerex.SetCollateral) (*Submitted, error) {
	return c.submitCall(ctx, sudo, teerex.Name, teerex.MethodSetCollateral, col)
}

// Invoke sends an encrypted call to a shard's enclaves (indirect
// invocation).
func (c *Client) Invoke(ctx context.Context, key ed25519.PrivateKey, shard types.Hash, ciphertext []byte) (*Submitted, error) {
	return c.submitCall(ctx, key, bridge.Name, bridge.MethodInvoke, bridge.Invoke{Shard: shard, Ciphertext: ciphertext})
}

// ShieldFunds moves amount from key's account into the shard's vault; the
// shard's enclaves credit the recipient they decrypt.
func (c *Client) ShieldFunds(ctx context.Context, key ed25519.PrivateKey, shard types.Hash, amount uint64, encryptedRecipient []byte) (*Submitted, error) {
	return c.submitCall(ctx, key, bridge.Name, bridge.MethodShieldFunds,
		bridge.ShieldFunds{Shard: shard, Amount: amount, EncryptedRecipient: encryptedRecipient})
}

// UnshieldFunds submits an unshield_funds, sent by an active enclave of
// the shard: it pays from the shard's vault once per call hash, only as
// proved into the unshields root of a confirmed shard block (u.Block,
// u.Proof; see sidechain.UnshieldCall).
func (c *Client) UnshieldFunds(ctx context.Context, key ed25519.PrivateKey, u bridge.UnshieldFunds) (*Submitted, error) {
	return c.submitCall(ctx, key, bridge.Name, bridge.MethodUnshieldFunds, u)
}

// ConfirmProcessedBlock records that key's enclave processed a chain block
// for its shard.
func (c *Client) ConfirmProcessedBlock(ctx context.Context, key ed25519.PrivateKey, conf bridge.ConfirmProcessedBlock) (*Submitted, error) {
	return c.submitCall(ctx, key, bridge.Name, bridge.MethodConfirmProcessedBlock, conf)
}

// UpdateShardConfig schedules measurement m to serve the shard from
// enactmentHeight on (sudo, or an enclave of the shard's current
// measurement).
func (c *Client) UpdateShardConfig(ctx context.Context, key ed25519.PrivateKey, shard, m types.Hash, enactmentHeight uint64) (*Submitted, error) {
	return c.submitCall(ctx, key, bridge.Name, bridge.MethodUpdateShardConfig,
		bridge.UpdateShardConfig{Shard: shard, MRENCLAVE: m, EnactmentHeight: enactmentHeight})
}
