package peer

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/integritee-go/integritee/chain/teerex"
	"github.com/integritee-go/integritee/chain/tx"
	"github.com/integritee-go/integritee/client"
)

// Registry errors (a signer that is not registered at all gives
// teerex.ErrNotRegistered).
var (
	// ErrNoWorkerURL means the signer registered no worker URL.
	ErrNoWorkerURL = errors.New("peer: enclave registered without a worker URL")
	// ErrExpired means the signer's registration expired.
	ErrExpired = errors.New("peer: enclave registration expired")
)

// Chain is what Registry reads of the chain: the node client's proved
// queries (*client.Client).
type Chain interface {
	Enclave(ctx context.Context, signer tx.Address) (*teerex.Enclave, int64, error)
	Policy(ctx context.Context) (*teerex.Policy, int64, error)
}

var _ Chain = (*client.Client)(nil)

// Registry is a Directory over the chain's enclave registry: a signer's
// worker is the worker URL of its registration, if it has not expired.
// Every answer is proved against a light-client-verified header, as
// everything the worker reads of the registry, although a wrong one would
// only lose envelopes: they are sealed for their recipient. It caches
// nothing: the Sender does.
type Registry struct {
	chain Chain
	now   func() time.Time
}

// NewRegistry returns a directory that reads c; now is the clock
// expirations are judged by (nil: time.Now).
func NewRegistry(c Chain, now func() time.Time) *Registry {
	if now == nil {
		now = time.Now
	}
	return &Registry{chain: c, now: now}
}

// WorkerURL returns the worker URL signer registered.
func (r *Registry) WorkerURL(ctx context.Context, signer tx.Address) (string, error) {
	e, h, err := r.chain.Enclave(ctx, signer)
	if err != nil {
		return "", fmt.Errorf("registration of %s: %w", signer, err)
	}
	if e.WorkerURL == "" {
		return "", fmt.Errorf("%w: %s at height %d", ErrNoWorkerURL, signer, h)
	}
	p, _, err := r.chain.Policy(ctx)
	if err != nil {
		return "", fmt.Errorf("attestation policy: %w", err)
	}
	if exp := e.ExpiresAt(p.RenewalPeriod()); !r.now().Before(exp) {
		return "", fmt.Errorf("%w: %s at %s", ErrExpired, signer, exp.UTC().Format(time.RFC3339))
	}
	return e.WorkerURL, nil
}
