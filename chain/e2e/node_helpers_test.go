package e2e_test

import (
	"context"
	"testing"
	"time"

	"github.com/integritee-go/integritee/chain/accounts"
	"github.com/integritee-go/integritee/chain/node"
	"github.com/integritee-go/integritee/chain/node/nodetest"
	"github.com/integritee-go/integritee/client"
)

// initHome initializes a one-validator home on free loopback ports. A
// production (non-dev) chain gets the dev accounts genesis anyway, so that
// somebody can pay for transactions.
func initHome(t testing.TB, dev bool) string {
	t.Helper()
	home := t.TempDir()
	c := nodetest.Config(t)
	opts := node.InitOptions{Dev: dev, Config: &c}
	if !dev {
		g := accounts.DevGenesis()
		opts.Accounts = &g
	}
	if err := node.Init(home, opts); err != nil {
		t.Fatal(err)
	}
	return home
}

// startNode starts the node of home with the integritee runtime and a
// client for it, and waits for the first block; both stop with the test.
func startNode(t testing.TB, home string) (*node.Node, *client.Client) {
	t.Helper()
	n := nodetest.Start(t, home, 0)
	ctx := ctxT(t)
	c, err := client.New(ctx, n.RPCAddress(), client.Options{PollInterval: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.VerifiedHeader(ctx, 2); err != nil {
		t.Fatal(err)
	}
	return n, c
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}
