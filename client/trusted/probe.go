package trusted

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/integritee-go/integritee/chain/teerex"
	"github.com/integritee-go/integritee/chain/tx"
	"github.com/integritee-go/integritee/chain/types"
	"github.com/integritee-go/integritee/worker/rpc/api"
)

// Probe is what a worker says of itself: its enclave's identity, health
// and version, as the worker reports them (host data, for monitoring).
// Matches tells whether the identity is the one a registration holds.
type Probe struct {
	Signer           tx.Address
	MRENCLAVE        types.Hash
	Shard            types.Hash
	ShieldingKeyHash types.Hash
	Health           api.HealthResult
	Version          string
}

// Matches reports whether the probed worker presents the enclave of e: its
// signer, measurement and shielding key. A worker at a registered URL that
// presents another enclave is not that enclave's worker.
func (p *Probe) Matches(e *teerex.Enclave) bool {
	return p.Signer == e.Signer && p.MRENCLAVE == e.MRENCLAVE && p.ShieldingKeyHash == e.ShieldingKeyHash
}

// ErrUnreachable wraps a probe of a worker that gave no JSON-RPC answer:
// it is down, or not at that address.
var ErrUnreachable = errors.New("trusted: worker unreachable")

// ProbeWorker asks the worker at workerURL (http(s):// or ws(s)://) for its
// identity, health and version, without checking them against the chain
// (Dial does that, for a worker a client will use); hc nil means a client
// with a 10-second timeout. A worker that does not answer gives an error
// wrapping ErrUnreachable; one that answers with an error object gives
// that *api.Error.
func ProbeWorker(ctx context.Context, workerURL string, hc *http.Client) (*Probe, error) {
	ep, err := parseEndpoint(workerURL)
	if err != nil {
		return nil, err
	}
	if hc == nil {
		hc = &http.Client{Timeout: 10 * time.Second}
	}
	c := &Client{http: hc}
	call := func(method string, result any) error {
		err := c.post(ctx, ep.url, method, nil, result)
		var te *transportError
		if errors.As(err, &te) {
			return fmt.Errorf("%w: %s: %w", ErrUnreachable, method, te.err)
		}
		return err
	}
	var r api.ShieldingKeyResult
	if err := call(api.MethodGetShieldingKey, &r); err != nil {
		return nil, err
	}
	id, err := parseIdentity(&r)
	if err != nil {
		return nil, err
	}
	p := &Probe{Signer: id.signer, MRENCLAVE: id.mrenclave, Shard: id.shard, ShieldingKeyHash: sha256.Sum256(id.key)}
	if err := call(api.MethodHealth, &p.Health); err != nil {
		return nil, err
	}
	var v api.VersionResult
	if err := call(api.MethodVersion, &v); err != nil {
		return nil, err
	}
	p.Version = v.Version
	return p, nil
}
