package peer_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/integritee-go/integritee/chain/node"
	"github.com/integritee-go/integritee/chain/teerex"
	"github.com/integritee-go/integritee/chain/tx"
	"github.com/integritee-go/integritee/client"
	"github.com/integritee-go/integritee/localnet"
	"github.com/integritee-go/integritee/worker/peer"
)

// chain is a peer.Chain of fixed registrations.
type chain struct {
	enclaves  map[tx.Address]teerex.Enclave
	policyErr error
}

func (c chain) Enclave(_ context.Context, a tx.Address) (*teerex.Enclave, int64, error) {
	e, ok := c.enclaves[a]
	if !ok {
		return nil, 7, teerex.ErrNotRegistered
	}
	return &e, 7, nil
}

func (c chain) Policy(context.Context) (*teerex.Policy, int64, error) {
	if c.policyErr != nil {
		return nil, 0, c.policyErr
	}
	return &teerex.Policy{RenewalPeriodSecs: 3600}, 7, nil
}

func TestRegistry(t *testing.T) {
	now := time.Unix(1_000_000, 0)
	attested := func(e teerex.Enclave, at time.Time) teerex.Enclave {
		e.AttestedAt = at.UnixNano()
		return e
	}
	c := chain{enclaves: map[tx.Address]teerex.Enclave{
		addr(1): attested(teerex.Enclave{Signer: addr(1), WorkerURL: "ws://10.0.0.1:2000"}, now.Add(-time.Minute)),
		addr(2): attested(teerex.Enclave{Signer: addr(2)}, now.Add(-time.Minute)),
		addr(3): attested(teerex.Enclave{Signer: addr(3), WorkerURL: "http://10.0.0.3:2000"}, now.Add(-2*time.Hour)),
	}}
	r := peer.NewRegistry(c, func() time.Time { return now })
	ctx := context.Background()
	if u, err := r.WorkerURL(ctx, addr(1)); err != nil || u != "ws://10.0.0.1:2000" {
		t.Errorf("registered: %q %v", u, err)
	}
	for _, tc := range []struct {
		name string
		a    tx.Address
		want error
	}{
		{"no worker URL", addr(2), peer.ErrNoWorkerURL},
		{"expired", addr(3), peer.ErrExpired},
		{"not registered", addr(4), teerex.ErrNotRegistered},
	} {
		if _, err := r.WorkerURL(ctx, tc.a); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
	c.policyErr = errors.New("node down")
	if _, err := peer.NewRegistry(c, nil).WorkerURL(ctx, addr(1)); err == nil {
		t.Error("no error without the policy")
	}
}

// TestRegistryNode reads a dev node's registry through the node client:
// a signer that never registered is proved absent.
func TestRegistryNode(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a node")
	}
	home := t.TempDir()
	rpc, err := localnet.FreeAddr()
	if err != nil {
		t.Fatal(err)
	}
	p2p, err := localnet.FreeAddr()
	if err != nil {
		t.Fatal(err)
	}
	cfg := node.DefaultConfig(true)
	cfg.RPCListen, cfg.P2PListen = rpc, p2p
	cfg.TimeoutCommit = node.Duration(50 * time.Millisecond)
	if err := node.Init(home, node.InitOptions{Dev: true, Config: &cfg}); err != nil {
		t.Fatal(err)
	}
	n, err := node.Start(home, node.StartOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Stop() })
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := client.New(ctx, n.RPCAddress(), client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	// A proved query needs the header after its state's block.
	waitFor(t, "block 3", func() bool {
		st, err := c.RPC().Status(ctx)
		return err == nil && st.SyncInfo.LatestBlockHeight >= 3
	})
	r := peer.NewRegistry(c, nil)
	if _, err := r.WorkerURL(ctx, addr(0x42)); !errors.Is(err, teerex.ErrNotRegistered) {
		t.Fatalf("unregistered signer: %v, want ErrNotRegistered", err)
	}
}
