package client_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"time"

	"github.com/integritee-go/integritee/chain/accounts"
	"github.com/integritee-go/integritee/chain/node/nodetest"
	"github.com/integritee-go/integritee/client"
)

// Connect to a node, read an account with a proof checked against a
// light-client-verified header, and send a transfer.
func Example() {
	nodeRPC, stop := devNode()
	defer stop()
	ctx := context.Background()

	// No trust root given: the client trusts the node's newest block on
	// first use (see Options for a root from elsewhere).
	c, err := client.New(ctx, nodeRPC, client.Options{})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("chain:", c.ChainID())

	charlie := accounts.DevAddress("Charlie")
	acc, _, err := c.VerifiedAccount(ctx, charlie, 0)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("Charlie:", acc.Balance/accounts.Unit, "TEER")

	// Alice signs; Submit picks her nonce and the minimum fee and waits
	// for the block.
	sub, err := c.Transfer(ctx, accounts.DevKey("Alice"), charlie, 5*accounts.Unit)
	if err != nil {
		log.Fatal(err)
	}
	// The state after the transfer's block, proved.
	acc, _, err = c.VerifiedAccount(ctx, charlie, sub.Height)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("Charlie:", acc.Balance/accounts.Unit, "TEER")
	// Output:
	// chain: integritee-dev
	// Charlie: 1000 TEER
	// Charlie: 1005 TEER
}

// devNode runs an in-process dev node on free loopback ports and returns
// its RPC address and how to stop it.
func devNode() (string, func()) {
	home, err := os.MkdirTemp("", "client-example-")
	if err != nil {
		log.Fatal(err)
	}
	n, err := nodetest.Dev(home, time.Time{}, 2)
	if err != nil {
		log.Fatal(err)
	}
	return n.RPCAddress(), func() {
		n.Stop()
		os.RemoveAll(home)
	}
}
