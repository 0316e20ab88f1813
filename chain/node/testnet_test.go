package node_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"testing"
	"time"

	"github.com/integritee-go/integritee/chain/accounts"
	"github.com/integritee-go/integritee/chain/node"
	"github.com/integritee-go/integritee/chain/teerex"
	"github.com/integritee-go/integritee/client"
)

// freeRange finds n consecutive ports that are free on 127.0.0.1.
func freeRange(t *testing.T, n int) int {
	t.Helper()
	for range 50 {
		base := 20000 + 2*rand.IntN(15000)
		ok := true
		var ls []net.Listener
		for p := base; p < base+n; p++ {
			l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
			if err != nil {
				ok = false
				break
			}
			ls = append(ls, l)
		}
		for _, l := range ls {
			l.Close()
		}
		if ok {
			return base
		}
	}
	t.Fatal("no free port range")
	return 0
}

// TestTestnetSurvivesStoppedValidator runs a 4-validator testnet on
// loopback, stops one validator, keeps transacting with the other three
// (3 of 4 is more than 2/3 of the power), and restarts the stopped one,
// which must catch up with the chain and its state.
func TestTestnetSurvivesStoppedValidator(t *testing.T) {
	if testing.Short() {
		t.Skip("starts four validators")
	}
	const n = 4
	base := freeRange(t, 2*n)
	homes, err := node.Testnet(t.TempDir(), n, node.TestnetOptions{Dev: true, BasePort: base, TimeoutCommit: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	nodes := make([]*node.Node, n)
	for i, h := range homes {
		nd, err := node.Start(h, node.StartOptions{Modules: node.Modules()})
		if err != nil {
			t.Fatal(err)
		}
		nodes[i] = nd
		t.Cleanup(func() { _ = nd.Stop() })
	}
	clients := make([]*client.Client, n)
	for i, nd := range nodes {
		c, err := client.New(ctx, nd.RPCAddress(), client.Options{PollInterval: 20 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		clients[i] = c
	}
	for i, c := range clients {
		if _, err := c.VerifiedHeader(ctx, 3); err != nil {
			t.Fatalf("validator %d: %v", i, err)
		}
	}
	// Every validator recorded the genesis ID of the four-validator set
	// in the first header (its hash depends on the set's order).
	first, err := clients[0].VerifiedHeader(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	for i, c := range clients {
		id, err := c.GenesisID(ctx)
		if want := teerex.GenesisID(c.ChainID(), 1, first.ValidatorsHash); err != nil || id != want {
			t.Fatalf("validator %d: genesis ID %s (%v), want %s", i, id, err, want)
		}
	}

	if err := nodes[3].Stop(); err != nil {
		t.Fatal(err)
	}
	sub, err := clients[0].Transfer(ctx, accounts.DevKey("Alice"), accounts.DevAddress("Bob"), 123)
	if err != nil {
		t.Fatal(err)
	}
	// The remaining three keep producing blocks.
	target := sub.Height + 5
	if _, err := clients[1].VerifiedHeader(ctx, target); err != nil {
		t.Fatal(err)
	}

	restarted, err := node.Start(homes[3], node.StartOptions{Modules: node.Modules()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = restarted.Stop() })
	c3, err := client.New(ctx, restarted.RPCAddress(), client.Options{PollInterval: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	// Caught up: it serves the block made while it was down, the transfer
	// and the state after it.
	if _, err := c3.VerifiedHeader(ctx, target+2); err != nil {
		t.Fatalf("restarted validator did not catch up: %v", err)
	}
	res, err := c3.RPC().Tx(ctx, sub.Hash[:], false)
	if err != nil || res.Height != sub.Height {
		t.Fatalf("restarted validator lacks the transfer: %v", err)
	}
	bob, _, err := c3.VerifiedAccount(ctx, accounts.DevAddress("Bob"), 0)
	if err != nil || bob.Balance != accounts.DevBalance+123 {
		t.Fatalf("Bob on the restarted validator: %+v %v", bob, err)
	}
}

// A testnet has a chain ID of its own: its dev genesis funds the same dev
// keys as a dev node, and only the signed chain ID keeps a transaction of
// one from replaying on the other.
func TestTestnetChainID(t *testing.T) {
	for _, tc := range []struct{ opt, want string }{
		{"", node.TestnetChainID},
		{"my-testnet", "my-testnet"},
	} {
		homes, err := node.Testnet(t.TempDir(), 2, node.TestnetOptions{ChainID: tc.opt, Dev: true, BasePort: 30000})
		if err != nil {
			t.Fatal(err)
		}
		for _, h := range homes {
			g, err := node.Genesis(h)
			if err != nil || g.ChainID != tc.want {
				t.Fatalf("testnet (--chain-id %q) home %s: chain %q (%v), want %q", tc.opt, h, g.ChainID, err, tc.want)
			}
		}
	}
	if node.TestnetChainID == node.DevChainID {
		t.Fatal("testnet and dev node share a chain ID")
	}
}
