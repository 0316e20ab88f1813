package trusted_test

import (
	"context"
	"crypto/sha256"
	"errors"
	"net"
	"testing"

	"github.com/integritee-go/integritee/chain/teerex"
	"github.com/integritee-go/integritee/chain/tx"
	"github.com/integritee-go/integritee/client/trusted"
	"github.com/integritee-go/integritee/worker/rpc/api"
)

// TestProbeWorker: a live worker reports its identity, health and
// version, and matches its own registration but not another's; a closed
// port is unreachable; a non-worker URL is refused.
func TestProbeWorker(t *testing.T) {
	e, _, url := start(t, "sdk probe")
	id := e.Identity()
	ctx := context.Background()
	p, err := trusted.ProbeWorker(ctx, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if p.Signer != tx.Address(id.Signer) || p.MRENCLAVE != id.MRENCLAVE || p.Shard != id.Shard || p.ShieldingKeyHash != sha256.Sum256(id.ShieldingKey) {
		t.Errorf("probe %+v, identity %+v", p, id)
	}
	if p.Health.Height == 0 && p.Health.StateRoot == "" {
		t.Errorf("no health in %+v", p.Health)
	}
	reg := teerex.Enclave{Signer: tx.Address(id.Signer), MRENCLAVE: id.MRENCLAVE, ShieldingKeyHash: sha256.Sum256(id.ShieldingKey)}
	if !p.Matches(&reg) {
		t.Error("worker does not match its own registration")
	}
	for name, other := range map[string]teerex.Enclave{
		"signer":        {Signer: tx.Address{1}, MRENCLAVE: reg.MRENCLAVE, ShieldingKeyHash: reg.ShieldingKeyHash},
		"measurement":   {Signer: reg.Signer, MRENCLAVE: [32]byte{2}, ShieldingKeyHash: reg.ShieldingKeyHash},
		"shielding key": {Signer: reg.Signer, MRENCLAVE: reg.MRENCLAVE, ShieldingKeyHash: [32]byte{3}},
	} {
		if p.Matches(&other) {
			t.Errorf("matches a registration with another %s", name)
		}
	}

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + l.Addr().String()
	l.Close()
	if _, err := trusted.ProbeWorker(ctx, closed, nil); !errors.Is(err, trusted.ErrUnreachable) {
		t.Errorf("closed port: %v, want ErrUnreachable", err)
	}
	var rpcErr *api.Error
	if _, err := trusted.ProbeWorker(ctx, "ftp://"+l.Addr().String(), nil); err == nil || errors.Is(err, trusted.ErrUnreachable) || errors.As(err, &rpcErr) {
		t.Errorf("ftp URL: %v", err)
	}
}
