package loadgen

import (
	"context"
	"crypto/sha256"
	"fmt"
	"time"

	"github.com/integritee-go/integritee/attestation"
	"github.com/integritee-go/integritee/chain/teerex"
	"github.com/integritee-go/integritee/client"
	"github.com/integritee-go/integritee/tee/sim"
)

// registerShieldingKey is the shielding key the load's enclaves register:
// the chain stores it and checks that the quote binds it.
var registerShieldingKey = []byte("integritee load: shielding key")

// RegisterMeasurement is the measurement of a Register run's enclaves
// with tag: a sim measurement of no real enclave, so that no shard's
// workers take the registrations as theirs.
func RegisterMeasurement(tag string) [32]byte {
	return sha256.Sum256([]byte("integritee load register/" + tag))
}

// Register registers cfg.N sim enclaves on chain (teerex
// register_enclave, each with a DCAP quote of a simulated TEE binding its
// signer and shielding key to this chain), from N dev-derived signer
// accounts funded first, broadcast by cfg.Concurrency senders at once
// (each one after the other). The quotes and transactions are made before
// the timed phase; the chain verifies every quote in CheckTx and in the
// block. Latency is from broadcast to commit, as for Transfers.
func Register(ctx context.Context, cfg Config) (*Report, error) {
	if err := cfg.normalize(false); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	c, err := client.New(ctx, cfg.NodeURL, client.Options{})
	if err != nil {
		return nil, err
	}
	params, err := c.Params(ctx)
	if err != nil {
		return nil, fmt.Errorf("params: %w", err)
	}
	genesis, err := c.GenesisID(ctx)
	if err != nil {
		return nil, fmt.Errorf("genesis: %w", err)
	}
	m := RegisterMeasurement(cfg.Tag)
	tee, err := sim.New(sim.Config{Measurement: &m})
	if err != nil {
		return nil, err
	}
	prefix := "Alice//load/" + cfg.Tag
	enclaves := make([]account, cfg.N)
	for e := range enclaves {
		enclaves[e] = devAccount(fmt.Sprintf("%s/enclave/%d", prefix, e))
	}
	build := func(e int, nonce uint64) ([]byte, error) {
		q, err := tee.Quote(teerex.ReportData(enclaves[e].addr, registerShieldingKey, genesis))
		if err != nil {
			return nil, err
		}
		call, err := teerex.RegisterEnclaveCall(teerex.Evidence{Kind: attestation.KindDCAP, Quote: q}, registerShieldingKey, "")
		if err != nil {
			return nil, err
		}
		return c.BuildMinFee(enclaves[e].key, nonce, params, call)
	}
	// An upper bound of a registration's fee.
	probe, err := build(0, ^uint64(0))
	if err != nil {
		return nil, err
	}
	fee := params.MinFee(len(probe))
	funding := make([]uint64, cfg.N)
	for e := range funding {
		funding[e] = fee
	}
	cfg.Logger.Info("funding enclave accounts", "accounts", cfg.N)
	if err := fund(ctx, c, params, cfg.Funder, enclaves, funding); err != nil {
		return nil, err
	}
	k := cfg.Concurrency
	rep := &Report{Kind: "register", N: cfg.N, Concurrency: k, Senders: make([]Sender, k)}
	// Sender i broadcasts the registrations of enclaves i, i+k, ...
	wires := make([][][]byte, k)
	nonces := make([][]uint64, k)
	for i := range k {
		rep.Senders[i] = Sender{Name: fmt.Sprintf("%s/enclave/%d+%dn", prefix, i, k)}
		for e := i; e < cfg.N; e += k {
			acc, err := c.Account(ctx, enclaves[e].addr)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", enclaves[e].name, err)
			}
			nonces[i] = append(nonces[i], acc.Nonce)
			rep.Senders[i].Funded += fee
		}
		wires[i] = make([][]byte, len(nonces[i]))
	}
	st, err := c.RPC().Status(ctx)
	if err != nil {
		return nil, fmt.Errorf("status: %w", err)
	}
	prep := time.Now()
	if err := buildAll(ctx, wires, func(i, j int) ([]byte, error) { return build(i+j*k, nonces[i][j]) }); err != nil {
		return nil, err
	}
	rep.PrepareSeconds = time.Since(prep).Seconds()
	return broadcastAll(ctx, c, cfg, params, rep, wires, st.SyncInfo.LatestBlockHeight)
}
