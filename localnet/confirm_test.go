package localnet_test

import (
	"context"
	"slices"
	"testing"
	"time"

	abci "github.com/cometbft/cometbft/abci/types"

	"github.com/integritee-go/integritee/chain/accounts"
	"github.com/integritee-go/integritee/chain/bridge"
	"github.com/integritee-go/integritee/chain/tx"
	"github.com/integritee-go/integritee/chain/types"
	"github.com/integritee-go/integritee/client"
	"github.com/integritee-go/integritee/client/trusted"
	"github.com/integritee-go/integritee/enclave/shielding"
	"github.com/integritee-go/integritee/localnet"
)

// chainConfirmation is a confirm_processed_block committed on chain.
type chainConfirmation struct {
	enclave tx.Address
	height  uint64 // the block confirmed
	state   types.Hash
	in      int64 // the block that carried it
}

// confirmationsIn returns the successful confirm_processed_block of the
// blocks from..to, and the time of every block there.
func confirmationsIn(t *testing.T, ctx context.Context, c *client.Client, from, to int64) ([]chainConfirmation, map[int64]time.Time) {
	t.Helper()
	var out []chainConfirmation
	times := map[int64]time.Time{}
	for h := from; h <= to; h++ {
		b, err := c.RPC().Block(ctx, &h)
		if err != nil {
			t.Fatal(err)
		}
		times[h] = b.Block.Time
		var found []int
		var confs []chainConfirmation
		for i, raw := range b.Block.Txs {
			stx, err := tx.Decode(raw)
			if err != nil || stx.Body.Call.Module != bridge.Name || stx.Body.Call.Method != bridge.MethodConfirmProcessedBlock {
				continue
			}
			var m bridge.ConfirmProcessedBlock
			if err := stx.Body.Call.DecodeArgs(&m); err != nil {
				t.Fatal(err)
			}
			found = append(found, i)
			confs = append(confs, chainConfirmation{enclave: stx.Body.Sender, height: m.Height, state: m.StateHash, in: h})
		}
		if len(found) == 0 {
			continue
		}
		res, err := c.RPC().BlockResults(ctx, &h)
		if err != nil {
			t.Fatal(err)
		}
		for j, i := range found {
			if res.TxsResults[i].Code == abci.CodeTypeOK {
				out = append(out, confs[j])
			}
		}
	}
	return out, times
}

// TestConfirmationsFollowActivity is the acceptance of issue 14's item 2
// on worker processes: an idle two-worker localnet with a 10 s heartbeat
// confirms nothing for a minute of block time but the first block of each
// heartbeat window (about 400 blocks of 150 ms: before, each worker
// confirmed every one), every worker the same heights; a call is confirmed
// by both at its own block, and a direct call at the first chain block
// after its shard block, with its state hash. Counted on chain, not timed:
// block times are the chain's.
func TestConfirmationsFollowActivity(t *testing.T) {
	const heartbeat = 10 * time.Second
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	n, err := localnet.Start(ctx, localnet.Config{Workers: 2, EnclaveBinary: bins.enclave, Logger: testLogger(), ConfirmHeartbeat: heartbeat})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Stop()
	shard := types.Hash(n.Shard)
	c, err := client.New(ctx, n.NodeRPC(), client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ws := n.Workers()
	signers := []tx.Address{ws[0].Signer(), ws[1].Signer()}
	height := func() int64 {
		t.Helper()
		st, err := c.RPC().Status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return st.SyncInfo.LatestBlockHeight
	}
	waitHeight := func(h int64) {
		t.Helper()
		for height() < h {
			select {
			case <-ctx.Done():
				t.Fatalf("chain did not reach height %d", h)
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
	// confirmedAt waits until every worker's latest confirmation is at h
	// or later.
	confirmedAt := func(h uint64) {
		t.Helper()
		for {
			at := height()
			got, err := c.Confirmations(ctx, shard, signers, at)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) == len(signers) && got[signers[0]].Height >= h && got[signers[1]].Height >= h {
				return
			}
			select {
			case <-ctx.Done():
				t.Fatalf("workers did not confirm height %d: %+v", h, got)
			case <-time.After(100 * time.Millisecond):
			}
		}
	}

	// The network is up: both enclaves registered, the second provisioned.
	// From X on it is idle for a minute of block time, to Y.
	x := height() + 2
	waitHeight(x)
	var y int64
	for {
		b, err := c.RPC().Block(ctx, &x)
		if err != nil {
			t.Fatal(err)
		}
		h := height()
		last, err := c.RPC().Block(ctx, &h)
		if err != nil {
			t.Fatal(err)
		}
		if last.Block.Time.Sub(b.Block.Time) >= time.Minute {
			y = h
			break
		}
		select {
		case <-ctx.Done():
			t.Fatal("a minute of block time did not pass")
		case <-time.After(time.Second):
		}
	}

	// The heartbeat heights of X+1..Y: the first block of each window.
	_, times := confirmationsIn(t, ctx, c, x, y)
	window := func(h int64) int64 { return times[h].UnixMilli() / heartbeat.Milliseconds() }
	var beats []uint64
	for h := x + 1; h <= y; h++ {
		if window(h) != window(h-1) {
			beats = append(beats, uint64(h))
		}
	}
	if len(beats) < 5 {
		t.Fatalf("heartbeat heights %v in a minute: want about 6", beats)
	}
	confirmedAt(beats[len(beats)-1])
	end := height()
	confs, _ := confirmationsIn(t, ctx, c, x+1, end)
	byEnclave := map[tx.Address][]uint64{}
	carriedInIdle := 0
	for _, cf := range confs {
		if cf.in <= y {
			carriedInIdle++
		}
		if cf.height <= uint64(x) || cf.height > uint64(y) {
			continue
		}
		if !slices.Contains(beats, cf.height) {
			t.Errorf("%s confirmed idle height %d (in block %d), not a heartbeat height %v", cf.enclave, cf.height, cf.in, beats)
		}
		byEnclave[cf.enclave] = append(byEnclave[cf.enclave], cf.height)
	}
	for _, s := range signers {
		if !slices.Equal(byEnclave[s], beats) {
			t.Errorf("%s confirmed %v of the idle heights, want the heartbeats %v", s, byEnclave[s], beats)
		}
	}
	// Blocks X+1..Y carry only the heartbeats (and a confirmation of
	// the block before X that was still on its way).
	if limit := 2*len(beats) + 2; carriedInIdle > limit {
		t.Errorf("blocks %d..%d carry %d confirmations, want at most %d", x+1, y, carriedInIdle, limit)
	}
	t.Logf("idle blocks %d..%d (%v of block time): %d confirmations on chain, heartbeats at %v (before: %d, one per worker and block)",
		x+1, y, times[y].Sub(times[x]), carriedInIdle, beats, 2*(y-x))

	// A call: both workers confirm its block itself.
	tc, err := trusted.Dial(ctx, ws[0].RPCAddr(), c, trusted.Options{})
	if err != nil {
		t.Fatal(err)
	}
	to := accounts.DevAddress("Charlie//incognito")
	recipient, err := shielding.Encrypt(tc.ShieldingKey(), shielding.InfoShieldRecipient, to[:])
	if err != nil {
		t.Fatal(err)
	}
	sub, err := c.ShieldFunds(ctx, accounts.DevKey("Alice"), shard, 50, recipient)
	if err != nil {
		t.Fatal(err)
	}
	confirmedAt(uint64(sub.Height))
	confs, _ = confirmationsIn(t, ctx, c, sub.Height+1, height())
	for _, s := range signers {
		i := slices.IndexFunc(confs, func(cf chainConfirmation) bool { return cf.enclave == s && cf.height == uint64(sub.Height) })
		if i < 0 {
			t.Fatalf("%s did not confirm block %d of the shield: %+v", s, sub.Height, confs)
		}
		t.Logf("%s confirmed the shield's block %d in block %d", s, sub.Height, confs[i].in)
	}
	// A direct call: its shard block sits on chain block L, so both
	// enclaves confirm L+1 with the block's state hash.
	r, err := tc.Transfer(ctx, accounts.DevKey("Charlie//incognito"), accounts.DevAddress("Dave//incognito"), 5)
	if err != nil || !r.Success {
		t.Fatalf("direct transfer: %+v %v", r, err)
	}
	next := uint64(r.Block.ChainHeight + 1)
	confirmedAt(next)
	confs, _ = confirmationsIn(t, ctx, c, int64(next)+1, height())
	for _, s := range signers {
		i := slices.IndexFunc(confs, func(cf chainConfirmation) bool { return cf.enclave == s && cf.height == next })
		if i < 0 {
			t.Fatalf("%s did not confirm block %d after the direct call's shard block %d: %+v", s, next, r.Block.Number, confs)
		}
		if confs[i].state != r.Block.StateHash {
			t.Errorf("%s confirmed state %s at %d, the direct block's is %s", s, confs[i].state, next, r.Block.StateHash)
		}
		t.Logf("%s confirmed block %d, the first after the direct call's shard block, in block %d", s, next, confs[i].in)
	}
	st, err := c.Shard(ctx, shard)
	if err != nil || st.Shard.Divergences != 0 {
		t.Fatalf("shard %+v %v: want no divergence", st, err)
	}
}
