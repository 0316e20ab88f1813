package localnet_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/integritee-go/integritee/chain/accounts"
	"github.com/integritee-go/integritee/chain/sidechain"
	"github.com/integritee-go/integritee/chain/tx"
	"github.com/integritee-go/integritee/chain/types"
	"github.com/integritee-go/integritee/client"
	"github.com/integritee-go/integritee/client/trusted"
	"github.com/integritee-go/integritee/enclave/shielding"
	"github.com/integritee-go/integritee/localnet"
	"github.com/integritee-go/integritee/worker/rpc/api"
)

// TestUpgrade moves a two-worker shard from release 1 to release 2 (the
// same code, another measured release string): after direct and indirect
// calls, sudo authorizes release 2 from height H, two release-2 workers
// get the keys and state from release 1 and join the shard's group; a
// client that lists all four workers keeps sending direct calls across H,
// every balance is the same after as before (less what the calls moved),
// release 1 refuses calls after H pointing to release 2, and the chain's
// confirmations go on from release 2.
func TestUpgrade(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	bin2, err := localnet.BuildEnclaveRelease(ctx, t.TempDir(), 2)
	if err != nil {
		t.Fatal(err)
	}
	n, err := localnet.Start(ctx, localnet.Config{Workers: 2, EnclaveBinary: bins.enclave, Logger: testLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Stop()
	shard := types.Hash(n.Shard)
	c, err := client.New(ctx, n.NodeRPC(), client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	r1 := n.Workers()
	tc1, err := trusted.DialWorkers(ctx, []string{r1[0].RPCAddr(), r1[1].RPCAddr()}, c, trusted.Options{})
	if err != nil {
		t.Fatal(err)
	}
	alice, bob := accounts.DevKey("Alice"), accounts.DevKey("Bob")
	aliceI, bobI := incognito("alice"), incognito("bob")
	bobA := addr(bobI)

	// Release 1: a shield and a transfer (indirect), a direct transfer.
	recipient, err := shielding.Encrypt(tc1.ShieldingKey(), shielding.InfoShieldRecipient, ab(aliceI))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.ShieldFunds(ctx, alice, shard, 1000, recipient); err != nil {
		t.Fatal(err)
	}
	ct, err := tc1.EncryptCall(aliceI, transferCall(addr(aliceI), bobA, 300), 0)
	if err != nil {
		t.Fatal(err)
	}
	sub, err := c.Invoke(ctx, bob, shard, ct)
	if err != nil {
		t.Fatal(err)
	}
	if err := n.WaitProcessed(ctx, r1, sub.Height); err != nil {
		t.Fatal(err)
	}
	if _, err := tc1.Transfer(ctx, aliceI, bobA, 50); err != nil {
		t.Fatal(err)
	}
	a0, b0 := balances(t, ctx, tc1, aliceI, bobI)
	if a0 != 650 || b0 != 350 {
		t.Fatalf("release 1: alice %d bob %d, want 650 350", a0, b0)
	}
	confirmedBefore := latestConfirmed(t, ctx, c, shard, func(*sidechain.Confirmation) bool { return true })

	// Authorize release 2 and start its workers: they get the keys and the
	// state from release 1 and join the group before H.
	m2, enact, err := n.Authorize(ctx, bin2, 150, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	var r2 []*localnet.Worker
	for range 2 {
		w, err := n.AddWorkerOf(ctx, bin2)
		if err != nil {
			t.Fatal(err)
		}
		r2 = append(r2, w)
	}
	if h, _ := r2[1].Processed(); h >= enact-1 {
		t.Fatalf("release 2 was ready only at height %d, the enactment height is %d: raise EnactIn", h, enact)
	}
	for _, w := range r2 {
		if w.Identity().ShieldingKey != r1[0].Identity().ShieldingKey {
			t.Fatal("release 2 has another shielding key")
		}
	}

	// A client of all four workers sends a direct transfer of 1 after
	// another until release 2 served a few blocks.
	all := []string{r1[0].RPCAddr(), r1[1].RPCAddr(), r2[0].RPCAddr(), r2[1].RPCAddr()}
	tc, err := trusted.DialWorkers(ctx, all, c, trusted.Options{FailoverBackoff: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	// Alice sends 1 to Bob, Bob 1 back, in turn.
	sent, failed := [2]uint64{}, map[string]int{}
	keys, to := [2]ed25519.PrivateKey{aliceI, bobI}, [2]tx.Address{bobA, addr(aliceI)}
	// Calls start a few blocks before H and go at a walk, so that the
	// shard blocks they make get confirmed on chain within the test (each
	// direct call is a shard block, and the chain confirms them in turn).
	if err := n.WaitProcessed(ctx, r2, enact-6); err != nil {
		t.Fatal(err)
	}
	var before, after int
	for i := 0; after < 8; i++ {
		time.Sleep(150 * time.Millisecond)
		h, _ := r2[0].Processed()
		if h < enact {
			before++
		} else {
			after++
		}
		r, err := tc.Transfer(ctx, keys[i%2], to[i%2], 1)
		if err == nil && !r.Success {
			err = errors.New(r.Error)
		}
		if err != nil {
			failed[err.Error()]++
			if len(failed) > 3 || ctx.Err() != nil {
				t.Fatalf("direct calls across the enactment height %d: %v", enact, failed)
			}
			continue
		}
		sent[i%2]++
	}
	t.Logf("direct transfers across the enactment height %d: %d before, %d after; %d+%d executed, refused: %v",
		enact, before, after, sent[0], sent[1], failed)
	if before == 0 || after == 0 {
		t.Fatalf("no direct transfers on one side of the enactment height: %d before, %d after", before, after)
	}
	if tc.MRENCLAVE() != m2 {
		t.Fatalf("client signs for %x after the enactment height, want release 2's %x", tc.MRENCLAVE(), m2)
	}
	// An indirect call for release 2.
	ct, err = tc.EncryptCall(bobI, transferCall(bobA, addr(aliceI), 7), mustNonce(t, ctx, tc, bobI))
	if err != nil {
		t.Fatal(err)
	}
	if sub, err = c.Invoke(ctx, bob, shard, ct); err != nil {
		t.Fatal(err)
	}
	if err := n.WaitProcessed(ctx, r2, sub.Height); err != nil {
		t.Fatal(err)
	}
	a1, b1 := balances(t, ctx, tc, aliceI, bobI)
	moved := int64(sent[1]) - int64(sent[0]) + 7 // to Alice
	if int64(a1) != int64(a0)+moved || int64(b1) != int64(b0)-moved {
		t.Fatalf("release 2: alice %d bob %d, want %d %d", a1, b1, int64(a0)+moved, int64(b0)-moved)
	}

	// Release 1 refuses, naming release 2 and its workers.
	for _, w := range r1 {
		e := rawCall(t, ctx, w.RPCAddr(), api.MethodSubmitTrustedCall, api.CallParams{Shard: shard.String(), Call: "00"})
		if e == nil || e.Code != api.CodeRetired || !strings.Contains(fmt.Sprint(e.Data), m2.String()) {
			t.Fatalf("release 1 after the enactment height: %+v", e)
		}
	}
	// The chain's confirmations go on from release 2: a shard block on a
	// chain height from H on, by a release-2 enclave.
	latestConfirmed(t, ctx, c, shard, func(l *sidechain.Confirmation) bool {
		return l.Number > confirmedBefore.Number && l.ChainHeight >= enact && (l.Enclave == r2[0].Signer() || l.Enclave == r2[1].Signer())
	})
	st, err := c.Shard(ctx, shard)
	if err != nil || st.Shard.Config.MRENCLAVE != m2 || st.Shard.Latest == nil || st.Shard.Latest.Height < uint64(enact) {
		t.Fatalf("shard after the upgrade %+v, %v", st, err)
	}
}

// latestConfirmed waits until the chain's latest confirmed shard block
// satisfies ok and returns it.
func latestConfirmed(t *testing.T, ctx context.Context, c *client.Client, shard types.Hash, ok func(*sidechain.Confirmation) bool) *sidechain.Confirmation {
	t.Helper()
	for {
		l, _, err := c.SidechainLatest(ctx, shard)
		if err == nil && l != nil && ok(l) {
			return l
		}
		select {
		case <-ctx.Done():
			t.Fatalf("latest confirmed shard block %+v, %v", l, err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func balances(t *testing.T, ctx context.Context, tc *trusted.Client, a, b ed25519.PrivateKey) (uint64, uint64) {
	t.Helper()
	x, err := tc.Balance(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	y, err := tc.Balance(ctx, b)
	if err != nil {
		t.Fatal(err)
	}
	return x, y
}

func mustNonce(t *testing.T, ctx context.Context, tc *trusted.Client, k ed25519.PrivateKey) uint64 {
	t.Helper()
	n, err := tc.Nonce(ctx, k)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// rawCall sends one JSON-RPC request and returns its error object.
func rawCall(t *testing.T, ctx context.Context, url, method string, params any) *api.Error {
	t.Helper()
	p, err := json.Marshal(params)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := json.Marshal(map[string]any{"jsonrpc": api.Version, "id": 1, "method": method, "params": json.RawMessage(p)})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var out struct {
		Error *api.Error `json:"error"`
	}
	if err := json.NewDecoder(res.Body).Decode(&out); err != nil {
		t.Fatal(errors.Join(err, fmt.Errorf("status %s", res.Status)))
	}
	return out.Error
}

// TestUpgradeDemo is `integritee-cli localnet --workers 1 --upgrade`: the
// demo on release 1, then the shard moves to release 2 with its balances.
func TestUpgradeDemo(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	bin2, err := localnet.BuildEnclaveRelease(ctx, t.TempDir(), 2)
	if err != nil {
		t.Fatal(err)
	}
	n, err := localnet.Start(ctx, localnet.Config{Workers: 1, EnclaveBinary: bins.enclave, Logger: testLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Stop()
	var out bytes.Buffer
	if err := n.Demo(ctx, &out); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	if err := n.UpgradeDemo(ctx, localnet.UpgradeConfig{EnclaveBinary: bin2, EnactIn: 40}, &out); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	t.Log(out.String())
	if !strings.Contains(out.String(), "(as before)") || !strings.Contains(out.String(), "release 1 worker") || !n.Workers()[0].Retired() {
		t.Fatalf("upgrade demo output:\n%s", out.String())
	}
}
