package keeper_test

import (
	"testing"
	"time"

	bridgekeeper "github.com/integritee-go/integritee/chain/bridge/keeper"
	"github.com/integritee-go/integritee/chain/internal/moduletest"
	"github.com/integritee-go/integritee/chain/sidechain"
	"github.com/integritee-go/integritee/chain/sidechain/keeper"
	"github.com/integritee-go/integritee/chain/teerex"
	"github.com/integritee-go/integritee/chain/tx"
)

// TestSilentEnclaveLeavesVotingSet: under a liveness period, a two-enclave
// shard whose second enclave went silent (its machine lost: no keep_alive)
// is confirmed on the first's vote alone, because the voting set is the
// shard's active enclaves at the vote's block time; the silent one can
// neither vote nor count until it keeps alive again. Without the liveness
// period the lost enclave stayed active, and the shard stopped, for the 24 h
// renewal period (issue 12).
func TestSilentEnclaveLeavesVotingSet(t *testing.T) {
	const liveness = time.Minute
	shard := measurement("v1")
	x := first(shard, 10, 1)
	tests := []struct {
		name string
		// lose runs after Dave and Eve registered at height 10; then
		// Dave (kept alive) and Eve (silent unless revived) vote.
		lose      func(c *chain)
		votes     []vote
		confirmed bool
	}{
		{
			name: "both alive: two votes needed",
			lose: func(c *chain) {
				c.Next(liveness - time.Second)
				c.keepAlive(dave)
				c.keepAlive(eve)
			},
			votes: []vote{
				{sender: dave, h: x, votes: 1, needed: 2},
				{sender: eve, h: x, confirms: true},
			},
			confirmed: true,
		},
		{
			name: "second silent: the first's vote confirms",
			lose: func(c *chain) {
				c.Next(liveness - time.Second)
				c.keepAlive(dave)
				c.Next(2 * time.Second) // Eve last seen liveness+1s ago
			},
			votes: []vote{
				{sender: eve, h: x, want: []error{sidechain.ErrNotActive, teerex.ErrSilent}},
				{sender: dave, h: x, confirms: true},
			},
			confirmed: true,
		},
		{
			name: "vote pending when the second goes silent: the repeated vote confirms",
			lose: func(c *chain) {
				c.mustVote(dave, x) // 1 of 2
				c.Next(liveness - time.Second)
				c.keepAlive(dave)
				c.Next(2 * time.Second)
			},
			votes:     []vote{{sender: dave, h: x, confirms: true}},
			confirmed: true,
		},
		{
			name: "the silent one revives: two votes needed again",
			lose: func(c *chain) {
				c.Next(liveness - time.Second)
				c.keepAlive(dave)
				c.Next(2 * time.Second)
				c.keepAlive(eve)
			},
			votes: []vote{
				{sender: dave, h: x, votes: 1, needed: 2},
				{sender: eve, h: x, confirms: true},
			},
			confirmed: true,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g := moduletest.DevGenesis(t)
			g.Teerex.Policy.LivenessSecs = uint64(liveness / time.Second)
			mc := moduletest.NewChain(t, g)
			sc := keeper.New(mc.Teerex.Keeper, bridgekeeper.ShardStore{})
			c := &chain{Chain: mc, bridge: bridgekeeper.New(mc.Teerex.Keeper, mc.Accounts.Keeper, mc.Accounts.Keeper, sc), sidechain: sc}
			c.ToHeight(10)
			c.Register(dave, shard)
			c.Register(eve, shard)
			c.Next(time.Second)
			tc.lose(c)
			for i, v := range tc.votes {
				r := c.confirm(v.sender, v.h)
				if len(v.want) > 0 {
					rejected(t, r, v.want...)
					continue
				}
				wantErr(t, r.Err)
				if _, ok := findEvent(r, sidechain.EventBlockConfirmed); ok != v.confirms {
					t.Fatalf("vote %d of %s: confirmed %v, want %v (events %v)", i, v.sender, ok, v.confirms, r.Events)
				}
				if !v.confirms {
					ev, ok := findEvent(r, sidechain.EventBlockVoted)
					if !ok || ev["votes"] != "1" || ev["needed"] != "2" {
						t.Fatalf("vote %d of %s: events %v", i, v.sender, r.Events)
					}
				}
			}
			if l := c.latest(shard); (l.Number == 1) != tc.confirmed || tc.confirmed && l.HeaderHash != hashOf(t, x) {
				t.Fatalf("latest %+v, want block 1 confirmed %v", l, tc.confirmed)
			}
		})
	}
}

// keepAlive sends signer's keep_alive.
func (c *chain) keepAlive(signer tx.Address) {
	c.T.Helper()
	if r := c.Exec(c.Teerex, signer, teerex.MethodKeepAlive, teerex.KeepAlive{}); r.Err != nil {
		c.T.Fatalf("keep_alive of %s: %v", signer, r.Err)
	}
}
