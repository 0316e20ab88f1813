package enclave_test

import (
	"fmt"
	"math"
	"slices"
	"testing"

	"github.com/cometbft/cometbft/crypto/merkle"

	"github.com/integritee-go/integritee/chain/accounts"
	"github.com/integritee-go/integritee/chain/bridge"
	"github.com/integritee-go/integritee/chain/types"
	"github.com/integritee-go/integritee/enclave/stf"
)

// TestConfirmationsFollowActivity: the enclave confirms a processed chain
// block when its shard changed (the block carries calls of the shard, or
// direct calls moved the state since the last confirmation) and otherwise
// only at the first block of each heartbeat window of block time. The
// heartbeat is the host's (Init.ConfirmHeartbeat), so the test includes the
// worst values a host can send: 0 and 1 ms (every block) and the largest
// (no heartbeat at all); whatever the host sends, changes are confirmed at
// their block. The decision survives a restart (the last confirmed state
// hash is in the sealed checkpoint), and the chain accepts every
// confirmation with no divergence.
func TestConfirmationsFollowActivity(t *testing.T) {
	for _, hb := range []uint64{0, 1, 4000, math.MaxUint64} {
		t.Run(fmt.Sprintf("heartbeat %d ms", hb), func(t *testing.T) {
			d := newDirectWith(t, "confirm heartbeat", func(h *host) { h.heartbeat = hb })
			c := d.c
			// What changed the shard at a height: the setup's shield
			// (block 3) and what the test does below.
			changed := map[int64]bool{3: true}
			idle := func(n int) {
				for range n {
					c.block()
				}
				d.sync()
			}
			// Processed blocks confirmed, by height.
			confirmed := map[int64]bool{}
			collect := func(from int) {
				for _, o := range d.h.outgoing[from:] {
					if o.Call.Method != bridge.MethodConfirmProcessedBlock {
						continue
					}
					var m bridge.ConfirmProcessedBlock
					if err := o.Call.DecodeArgs(&m); err != nil {
						t.Fatal(err)
					}
					confirmed[int64(m.Height)] = true
				}
			}

			idle(12)
			// A direct call between chain blocks: the next chain block
			// confirms the new state.
			d.submit(d.transfer(d.aliceI, d.bobI, 5, 0))
			changed[d.processed+1] = true
			idle(6)
			// The enclave restarts from its checkpoint in an idle
			// stretch: nothing is due on that account.
			d.h.boot(c)
			idle(6)
			// An indirect call: confirmed at its own block.
			c.block(invoke(t, c, accounts.DevKey("Bob"), d.pub, d.shard,
				trustedCall(t, d.aliceI, stf.Call{Transfer: &stf.Transfer{From: addr(d.aliceI), To: addr(d.bobI), Amount: 7}}, 1, d.target())))
			changed[c.tc.Height()] = true
			idle(12)
			collect(0)

			heartbeat := int64(min(hb, 365*24*3600*1000))
			var want []int64
			for h := int64(1); h <= d.processed; h++ {
				due := hb == 0 || h == 1 || changed[h]
				if !due {
					prev, cur := c.tc.Block(h-1).Header.Time.UnixMilli(), c.tc.Block(h).Header.Time.UnixMilli()
					due = prev/heartbeat != cur/heartbeat
				}
				if due {
					want = append(want, h)
				}
			}
			var got []int64
			for h := range confirmed {
				got = append(got, h)
			}
			slices.Sort(got)
			if !slices.Equal(got, want) {
				t.Fatalf("confirmed heights %v, want %v", got, want)
			}
			// Blocks are a second apart: a 4 s heartbeat confirms an idle
			// stretch about every fourth block, the largest never.
			switch hb {
			case 0, 1:
				if int64(len(got)) != d.processed {
					t.Fatalf("%d confirmations of %d blocks, want every block", len(got), d.processed)
				}
			case 4000:
				if n := len(got); n < int(d.processed)/4 || n > int(d.processed)/4+len(changed)+2 {
					t.Fatalf("%d confirmations of %d blocks with a 4 s heartbeat", n, d.processed)
				}
			case math.MaxUint64:
				if n := len(got); n != len(changed)+1 {
					t.Fatalf("confirmed %v: want block 1 and the %d changes only", got, len(changed))
				}
			}

			// The chain takes them all: heights above each other, its own
			// block hashes, one state per height.
			for i, r := range d.flush() {
				if r.Code != 0 {
					t.Fatalf("outgoing %d refused on chain: %s/%d %s", i, r.Codespace, r.Code, r.Log)
				}
			}
			s := c.shard(d.shard)
			if s.Divergences != 0 || s.Latest == nil || int64(s.Latest.Height) != got[len(got)-1] {
				t.Fatalf("shard record %+v, want the latest confirmation at %d and no divergence", s, got[len(got)-1])
			}
			if s.Latest.StateHash != types.Hash(d.h.root()) {
				t.Fatalf("latest confirmed state %s, the enclave's is %x", s.Latest.StateHash, d.h.root())
			}
		})
	}
}

// TestConfirmHeartbeatFromHost: a restart with another heartbeat (the
// host's choice) changes only when idle blocks are confirmed; the calls
// root of the next confirmation still covers every call since the last.
func TestConfirmHeartbeatFromHost(t *testing.T) {
	d := newDirectWith(t, "confirm heartbeat host", func(h *host) { h.heartbeat = math.MaxUint64 })
	c := d.c
	for range 5 {
		c.block()
	}
	d.sync()
	before := len(d.h.outgoing)
	d.h.heartbeat = 0
	d.h.boot(c)
	c.block()
	c.block()
	d.sync()
	var heights []uint64
	for _, o := range d.h.outgoing[before:] {
		var m bridge.ConfirmProcessedBlock
		if o.Call.Method == bridge.MethodConfirmProcessedBlock && o.Call.DecodeArgs(&m) == nil {
			heights = append(heights, m.Height)
			if m.CallsRoot != types.Hash(merkle.HashFromByteSlices(nil)) {
				t.Errorf("idle confirmation of %d with calls root %s", m.Height, m.CallsRoot)
			}
		}
	}
	if !slices.Equal(heights, []uint64{uint64(d.processed - 1), uint64(d.processed)}) {
		t.Fatalf("after a restart with heartbeat 0: confirmations of %v, want the two blocks processed (%d, %d)", heights, d.processed-1, d.processed)
	}
}
