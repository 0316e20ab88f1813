package main

import (
	"context"
	"testing"
	"time"

	"github.com/integritee-go/integritee/chain/bridge"
	"github.com/integritee-go/integritee/client"
	"github.com/integritee-go/integritee/localnet"
)

// TestTrustedCommands drives the trusted group against a localnet with one
// sim worker: shield, confidential transfer, unshield and balances, plus
// the refusals of bad input.
func TestTrustedCommands(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	enclave, err := localnet.BuildEnclave(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	net, err := localnet.Start(ctx, localnet.Config{EnclaveBinary: enclave})
	if err != nil {
		t.Fatal(err)
	}
	defer net.Stop()
	node, w := net.NodeRPC(), net.Workers()[0].RPCAddr()
	c, err := client.New(ctx, node, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	common := []string{"--node", node, "--worker", w, "--keystore", t.TempDir()}

	var res trustedResult
	cliJSON(t, &res, append([]string{"trusted", "shield", "--from", "Alice", "--amount", "1000", "--to", "Alice//incognito"}, common...)...)
	if res.Height == 0 || res.Shard != net.Workers()[0].Identity().Shard {
		t.Errorf("shield result %+v", res)
	}
	cliJSON(t, &res, append([]string{"trusted", "transfer", "--indirect", "--from", "Alice//incognito", "--to", "Bob//incognito", "--amount", "300"}, common...)...)
	if res.Nonce != 0 {
		t.Errorf("first trusted call has nonce %d", res.Nonce)
	}
	cliJSON(t, &res, append([]string{"trusted", "unshield", "--indirect", "--from", "Bob//incognito", "--to", "Bob", "--amount", "100"}, common...)...)
	unshieldHeight := res.Height

	for _, tc := range []struct {
		account     string
		free, nonce uint64
	}{{"Alice//incognito", 700, 1}, {"Bob//incognito", 200, 1}, {"Charlie//incognito", 0, 0}} {
		var b trustedBalance
		cliJSON(t, &b, append([]string{"trusted", "balance", "--account", tc.account}, common...)...)
		if b.Free != tc.free || b.Nonce != tc.nonce {
			t.Errorf("%s: free %d nonce %d, want %d %d", tc.account, b.Free, b.Nonce, tc.free, tc.nonce)
		}
	}
	// The unshield pays once the enclave's unshield_funds is on chain (Bob
	// paid the invoke's fee, far above 100).
	vault := bridge.VaultAddress(net.Shard)
	for {
		v, err := c.Account(ctx, vault)
		if err == nil && v.Balance == 900 {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("unshield of block %d never paid: vault %d", unshieldHeight, v.Balance)
		case <-time.After(100 * time.Millisecond):
		}
	}

	for _, tc := range []struct {
		want string
		args []string
	}{
		{"only --indirect", []string{"trusted", "transfer", "--from", "Alice//incognito", "--to", "Bob//incognito", "--amount", "1"}},
		{"--payer is required", []string{"trusted", "transfer", "--indirect", "--from", "Charlie", "--to", "Bob//incognito", "--amount", "1"}},
		{"derived names", []string{"trusted", "balance", "--account", "Nobody//incognito"}},
		{"is an address", []string{"trusted", "balance", "--account", "0000000000000000000000000000000000000000000000000000000000000001"}},
		{"serves shard", []string{"trusted", "balance", "--account", "Bob//incognito", "--shard", "0000000000000000000000000000000000000000000000000000000000000001"}},
		{"--from, --to and --amount are required", []string{"trusted", "shield", "--from", "Alice"}},
	} {
		cliFails(t, tc.want, append(tc.args, common...)...)
	}
}
