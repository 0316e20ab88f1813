package trusted_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/integritee-go/integritee/chain/accounts"
	"github.com/integritee-go/integritee/chain/types"
	"github.com/integritee-go/integritee/client"
	"github.com/integritee-go/integritee/client/trusted"
	"github.com/integritee-go/integritee/enclave/shielding"
	"github.com/integritee-go/integritee/enclave/stf"
	"github.com/integritee-go/integritee/localnet"
)

// Shield public funds into a shard, transfer them privately with a direct
// call to the worker, and read the private balances. The network is a dev
// node and one worker whose enclave runs in simulated-TEE mode.
func Example() {
	nodeRPC, workerURL, stop := oneWorkerNet()
	defer stop()
	ctx := context.Background()

	c, err := client.New(ctx, nodeRPC, client.Options{})
	if err != nil {
		log.Fatal(err)
	}
	// Dial checks the worker's enclave against its registration on chain
	// (proved queries through c) before anything is encrypted to it.
	tc, err := trusted.Dial(ctx, workerURL, c, trusted.Options{})
	if err != nil {
		log.Fatal(err)
	}

	alice := accounts.DevKey("Alice")
	aliceI, bobI := accounts.DevKey("Alice//incognito"), accounts.DevKey("Bob//incognito")

	// Shield: Alice deposits 1,000 units on chain for Alice//incognito,
	// whose address only the enclave can read.
	to := accounts.DevAddress("Alice//incognito")
	recipient, err := shielding.Encrypt(tc.ShieldingKey(), shielding.InfoShieldRecipient, to[:])
	if err != nil {
		log.Fatal(err)
	}
	sub, err := c.ShieldFunds(ctx, alice, types.Hash(tc.Shard()), 1000, recipient)
	if err != nil {
		log.Fatal(err)
	}
	// The deposit is in the shard once the worker has processed its block
	// (its Health tells how far it is).
	waitProcessed(ctx, tc, sub.Height)

	// A direct transfer: straight to the worker, executed by the enclave
	// in a shard block whose signature and Merkle proof Transfer checks.
	r, err := tc.Transfer(ctx, aliceI, accounts.DevAddress("Bob//incognito"), 300)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("transfer executed:", r.Success)

	// Private balances: signed getters, answered encrypted to the caller.
	a, err := tc.Balance(ctx, aliceI)
	if err != nil {
		log.Fatal(err)
	}
	b, err := tc.Balance(ctx, bobI)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("Alice//incognito:", a)
	fmt.Println("Bob//incognito:", b)
	// Output:
	// transfer executed: true
	// Alice//incognito: 700
	// Bob//incognito: 300
}

// Watch a direct call over a WebSocket: submitted, executed in a shard
// block, then confirmed once the chain records that block (checked
// against the chain, not taken from the worker).
func ExampleClient_Watch() {
	nodeRPC, workerURL, stop := oneWorkerNet()
	defer stop()
	ctx := context.Background()
	c, tc := dial(ctx, nodeRPC, workerURL)
	shield(ctx, c, tc, "Charlie//incognito", 500)

	key := accounts.DevKey("Charlie//incognito")
	nonce, err := tc.Nonce(ctx, key)
	if err != nil {
		log.Fatal(err)
	}
	call := stf.Call{Transfer: &stf.Transfer{From: accounts.DevAddress("Charlie//incognito"), To: accounts.DevAddress("Dave//incognito"), Amount: 200}}
	ct, err := tc.EncryptCall(key, call, nonce)
	if err != nil {
		log.Fatal(err)
	}
	w, err := tc.Watch(ctx, ct)
	if err != nil {
		log.Fatal(err)
	}
	defer w.Close()
	for {
		st, err := w.Next(ctx)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(st.Status)
		if st.Final() {
			break
		}
	}
	// Output:
	// submitted
	// executed
	// confirmed
}

// dial connects to the node and, verified against it, to the worker.
func dial(ctx context.Context, nodeRPC, workerURL string) (*client.Client, *trusted.Client) {
	c, err := client.New(ctx, nodeRPC, client.Options{})
	if err != nil {
		log.Fatal(err)
	}
	tc, err := trusted.Dial(ctx, workerURL, c, trusted.Options{})
	if err != nil {
		log.Fatal(err)
	}
	return c, tc
}

// shield deposits amount from Alice to the shard account of the dev key
// name, as Example does, and waits until the worker has it.
func shield(ctx context.Context, c *client.Client, tc *trusted.Client, name string, amount uint64) {
	to := accounts.DevAddress(name)
	recipient, err := shielding.Encrypt(tc.ShieldingKey(), shielding.InfoShieldRecipient, to[:])
	if err != nil {
		log.Fatal(err)
	}
	sub, err := c.ShieldFunds(ctx, accounts.DevKey("Alice"), types.Hash(tc.Shard()), amount, recipient)
	if err != nil {
		log.Fatal(err)
	}
	waitProcessed(ctx, tc, sub.Height)
}

// oneWorkerNet runs a local network of a dev node and one worker on free
// loopback ports (package localnet; its enclave is built from source and
// run as a child process: seconds with a warm build cache, as the
// localnet tests leave it) and returns the node's and the worker's RPC
// URLs and how to stop it.
func oneWorkerNet() (nodeRPC, workerURL string, stop func()) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	n, err := localnet.Start(ctx, localnet.Config{Workers: 1, BlockTime: 50 * time.Millisecond})
	if err != nil {
		log.Fatal(err)
	}
	return n.NodeRPC(), n.Workers()[0].Identity().RPC, func() { n.Stop() }
}

// waitProcessed waits until the worker has processed chain block height.
func waitProcessed(ctx context.Context, tc *trusted.Client, height int64) {
	for {
		h, err := tc.Health(ctx)
		if err != nil {
			log.Fatal(err)
		}
		if h.Height >= height {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}
