package keeper_test

import (
	"bytes"
	"slices"
	"testing"
	"time"

	"github.com/integritee-go/integritee/chain/sidechain"
	"github.com/integritee-go/integritee/chain/tx"
	"github.com/integritee-go/integritee/chain/types"
)

// blocks returns blocks 1..n of shard, each the child of the previous, at
// chain height 10.
func blocks(t *testing.T, shard types.Hash, n int) []sidechain.Header {
	t.Helper()
	bs := []sidechain.Header{first(shard, 10, 1)}
	for i := 2; i <= n; i++ {
		bs = append(bs, child(t, bs[len(bs)-1], 10, byte(i)))
	}
	return bs
}

// threeVoters registers Dave, Eve and Charlie for shard at height 10 and
// moves to 11.
func threeVoters(c *chain, shard types.Hash) {
	for _, s := range []tx.Address{dave, eve, charlie} {
		c.Register(s, shard)
	}
	c.Next(time.Second)
}

// countEvents counts the events of type typ.
func countEvents(evs []string, typ string) int {
	n := 0
	for _, e := range evs {
		if e == typ {
			n++
		}
	}
	return n
}

// TestVoteCascade: votes for numbers after the next are recorded at once
// and counted when their predecessor is confirmed, in the same
// transaction, so that one round of votes, in any order, confirms many
// consecutive blocks in one chain block.
func TestVoteCascade(t *testing.T) {
	shard := measurement("v1")
	type v struct {
		sender tx.Address
		number int // 1-based index into blocks
	}
	tests := []struct {
		name   string
		voters []tx.Address
		votes  []v
		// confirms lists, per vote, how many blocks it confirmed.
		confirms []int
	}{
		{
			name:   "three voters, later numbers first",
			voters: []tx.Address{dave, eve, charlie},
			votes: []v{{dave, 5}, {dave, 4}, {dave, 3}, {dave, 2}, {dave, 1},
				{eve, 5}, {eve, 4}, {eve, 3}, {eve, 2}, {eve, 1}},
			confirms: []int{0, 0, 0, 0, 0, 0, 0, 0, 0, 5},
		},
		{
			name:   "three voters interleaved",
			voters: []tx.Address{dave, eve, charlie},
			votes: []v{{eve, 3}, {dave, 5}, {charlie, 2}, {eve, 5}, {dave, 2}, {charlie, 4}, {dave, 1},
				{charlie, 1}, {eve, 4}, {dave, 3}, {charlie, 5}},
			// Charlie's block 1 completes 1 and 2 (Charlie, Dave); 3 has
			// Eve's only until Dave's vote, which completes 3, 4 and 5;
			// Charlie's 5 comes late.
			confirms: []int{0, 0, 0, 0, 0, 0, 0, 2, 0, 3, -1},
		},
		{
			name:   "three voters, the predecessor's deciding vote last",
			voters: []tx.Address{dave, eve, charlie},
			votes: []v{{charlie, 2}, {eve, 2}, {charlie, 3}, {eve, 3}, {eve, 4}, {charlie, 4}, {eve, 5}, {charlie, 5},
				{dave, 1}, {eve, 1}, {charlie, 1}},
			confirms: []int{0, 0, 0, 0, 0, 0, 0, 0, 0, 5, -1},
		},
		{
			name:     "one voter in order: each vote confirms its block",
			voters:   []tx.Address{dave},
			votes:    []v{{dave, 1}, {dave, 2}, {dave, 3}, {dave, 4}, {dave, 5}},
			confirms: []int{1, 1, 1, 1, 1},
		},
		{
			name:     "one voter, later numbers first",
			voters:   []tx.Address{dave},
			votes:    []v{{dave, 3}, {dave, 5}, {dave, 2}, {dave, 4}, {dave, 1}},
			confirms: []int{0, 0, 0, 0, 5},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := newChain(t)
			for _, s := range tc.voters {
				c.Register(s, shard)
			}
			c.Next(time.Second)
			bs := blocks(t, shard, 5)
			height := c.Ctx.Height
			var latest uint64
			for i, vt := range tc.votes {
				h := bs[vt.number-1]
				r := c.confirm(vt.sender, h)
				if tc.confirms[i] < 0 {
					rejected(t, r, sidechain.ErrAlreadyConfirmed)
					continue
				}
				wantErr(t, r.Err)
				var typs []string
				for _, e := range r.Events {
					typs = append(typs, e.Type)
				}
				if got := countEvents(typs, sidechain.EventBlockConfirmed); got != tc.confirms[i] {
					t.Fatalf("vote %d (%s for %d): %d confirmations, want %d: %v", i, vt.sender, vt.number, got, tc.confirms[i], r.Events)
				}
				if tc.confirms[i] == 0 {
					if countEvents(typs, sidechain.EventBlockVoted) != 1 || r.Data != nil {
						t.Fatalf("vote %d: events %v, data %q, want one vote recorded", i, r.Events, r.Data)
					}
					if l := c.latest(shard); l.Number != latest {
						t.Fatalf("vote %d moved the latest to %d", i, l.Number)
					}
					continue
				}
				// The deciding vote's verified result names the last
				// block it confirmed.
				last := latest + uint64(tc.confirms[i])
				if want := sidechain.ConfirmedResult(h.Number, last, hashOf(t, bs[last-1])); !bytes.Equal(r.Data, want) {
					t.Fatalf("vote %d: data %x, want %x", i, r.Data, want)
				}
				latest = last
				if l := c.latest(shard); l.Number != latest || l.HeaderHash != hashOf(t, bs[latest-1]) {
					t.Fatalf("vote %d: latest %+v, want block %d", i, l, latest)
				}
			}
			if c.Ctx.Height != height || latest != 5 {
				t.Fatalf("at height %d (started at %d): latest %d, want all 5 confirmed in one chain block", c.Ctx.Height, height, latest)
			}
			for n := uint64(1); n <= 5; n++ {
				b, ok, err := c.sidechain.Block(c.KV, shard, n)
				if err != nil || !ok || b.HeaderHash != hashOf(t, bs[n-1]) || b.Number != n || b.ConfirmedHeight != uint64(height) {
					t.Fatalf("block %d: %+v %v %v", n, b, ok, err)
				}
				if _, ok, err := c.sidechain.Votes(c.KV, shard, n); ok || err != nil {
					t.Fatalf("votes of confirmed block %d left: %v", n, err)
				}
			}
		})
	}
}

// TestEarlyVotes: an early vote gets at once the checks that do not need
// its predecessor, and the rest when the predecessor is confirmed: one for
// a header that does not extend it is dropped uncounted (its voter may
// vote again), so it never blocks the right header.
func TestEarlyVotes(t *testing.T) {
	shard := measurement("v1")
	bs := blocks(t, shard, 3)
	b1, b2, b3 := bs[0], bs[1], bs[2]
	forked := withParent(b2, types.Hash{0xf0}) // block 2 on another block 1
	sibling := child(t, b1, 10, 0x66)          // another block 2 on b1
	low := child(t, b1, 9, 2)                  // block 2 before b1's chain height
	onForked := child(t, forked, 10, 3)        // block 3 on the forked block 2
	type step struct {
		sender   tx.Address
		h        sidechain.Header
		want     []error
		confirms int // blocks the vote confirms (when want is empty)
		dropped  int // candidates it drops
	}
	tests := []struct {
		name   string
		steps  []step
		latest sidechain.Header
		// pending: a number's record after the steps, with its
		// candidates' voters (nil: no record).
		pending map[uint64]map[types.Hash][]tx.Address
	}{
		{
			name: "a forked early vote is dropped; its voter votes again",
			steps: []step{
				{sender: dave, h: forked},
				{sender: eve, h: b2},
				{sender: dave, h: b1},
				{sender: eve, h: b1, confirms: 1, dropped: 1},
				{sender: dave, h: b2, confirms: 1},
			},
			latest: b2,
		},
		{
			name: "a forked header with a majority of early votes never confirms",
			steps: []step{
				{sender: dave, h: forked},
				{sender: eve, h: forked},
				{sender: dave, h: onForked},
				{sender: eve, h: onForked},
				{sender: dave, h: b1},
				{sender: eve, h: b1, confirms: 1, dropped: 1},
				{sender: charlie, h: b2},
				{sender: eve, h: b2, confirms: 1, dropped: 1},
				{sender: dave, h: b3},
				{sender: charlie, h: b3, confirms: 1},
			},
			latest: b3,
		},
		{
			name: "an early vote below the predecessor's chain height is dropped",
			steps: []step{
				{sender: dave, h: low},
				{sender: eve, h: low},
				{sender: dave, h: b1},
				{sender: eve, h: b1, confirms: 1, dropped: 1},
			},
			latest:  b1,
			pending: map[uint64]map[types.Hash][]tx.Address{2: nil},
		},
		{
			name: "the right header is kept, a sibling without a majority waits",
			steps: []step{
				{sender: dave, h: sibling},
				{sender: eve, h: b2},
				{sender: dave, h: b1},
				{sender: charlie, h: b1, confirms: 1},
			},
			latest:  b1,
			pending: map[uint64]map[types.Hash][]tx.Address{2: {hashOf(t, sibling): {dave}, hashOf(t, b2): {eve}}},
		},
		{
			name: "equivocation across early votes",
			steps: []step{
				{sender: dave, h: b2},
				{sender: dave, h: sibling, want: []error{sidechain.ErrEquivocation}},
				{sender: dave, h: b2, want: []error{sidechain.ErrAlreadyVoted}},
				{sender: eve, h: sibling},
				{sender: eve, h: b2, want: []error{sidechain.ErrEquivocation}},
			},
			pending: map[uint64]map[types.Hash][]tx.Address{2: {hashOf(t, b2): {dave}, hashOf(t, sibling): {eve}}},
		},
		{
			name: "an early majority waits for the predecessor",
			steps: []step{
				{sender: dave, h: b2},
				{sender: eve, h: b2},
				{sender: charlie, h: b2},
			},
			pending: map[uint64]map[types.Hash][]tx.Address{2: {hashOf(t, b2): {dave, eve, charlie}}},
		},
		{
			name: "early checks: chain height, membership, window",
			steps: []step{
				{sender: dave, h: child(t, b1, 11, 2), want: []error{sidechain.ErrChainHeight}}, // not before the current block
				{sender: bob, h: b2, want: []error{sidechain.ErrNotActive}},
				{sender: ferd, h: b2, want: []error{sidechain.ErrNotShardEnclave}},
				{sender: dave, h: numbered(b3, 2+sidechain.VoteWindow), want: []error{sidechain.ErrFutureBlock}},
				{sender: dave, h: numbered(b3, 1+sidechain.VoteWindow)},
			},
			pending: map[uint64]map[types.Hash][]tx.Address{2: nil, 1 + sidechain.VoteWindow: {hashOf(t, numbered(b3, 1+sidechain.VoteWindow)): {dave}}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := newChain(t)
			c.Register(ferd, measurement("other release"))
			threeVoters(c, shard)
			for i, s := range tc.steps {
				r := c.confirm(s.sender, s.h)
				if len(s.want) > 0 {
					rejected(t, r, s.want...)
					continue
				}
				wantErr(t, r.Err)
				var typs []string
				for _, e := range r.Events {
					typs = append(typs, e.Type)
				}
				if got := countEvents(typs, sidechain.EventBlockConfirmed); got != s.confirms {
					t.Fatalf("step %d: %d confirmations, want %d: %v", i, got, s.confirms, r.Events)
				}
				if got := countEvents(typs, sidechain.EventVotesDropped); got != s.dropped {
					t.Fatalf("step %d: %d candidates dropped, want %d: %v", i, got, s.dropped, r.Events)
				}
			}
			if l := c.latest(shard); (tc.latest == sidechain.Header{}) && l.Number != 0 ||
				(tc.latest != sidechain.Header{}) && (l.Number != tc.latest.Number || l.HeaderHash != hashOf(t, tc.latest)) {
				t.Fatalf("latest %+v, want %d", l, tc.latest.Number)
			}
			for n, want := range tc.pending {
				v, ok, err := c.sidechain.Votes(c.KV, shard, n)
				if err != nil || ok != (want != nil) {
					t.Fatalf("votes of %d: %+v %v %v, want %v", n, v, ok, err, want)
				}
				if len(v.Candidates) != len(want) {
					t.Fatalf("votes of %d: %+v, want %v", n, v, want)
				}
				for _, cand := range v.Candidates {
					if h, err := cand.Header.Hash(); err != nil || h != cand.HeaderHash || !slices.Equal(cand.Voters, want[cand.HeaderHash]) {
						t.Fatalf("votes of %d: candidate %+v, want voters %v", n, cand, want[cand.HeaderHash])
					}
				}
			}
		})
	}
}

// TestVoteWindowBoundsState: one enclave's early votes fill at most
// VoteWindow records; once the predecessors are confirmed the window moves
// on and no record is left behind the latest.
func TestVoteWindowBoundsState(t *testing.T) {
	shard := measurement("v1")
	c := newChain(t)
	threeVoters(c, shard)
	bs := blocks(t, shard, 2+sidechain.VoteWindow)
	for _, h := range bs[1 : 1+sidechain.VoteWindow] {
		wantErr(t, c.confirm(dave, h).Err)
	}
	rejected(t, c.confirm(dave, bs[1+sidechain.VoteWindow]), sidechain.ErrFutureBlock)
	records := func() (n int) {
		for i := uint64(1); i <= uint64(len(bs))+1; i++ {
			if _, ok, err := c.sidechain.Votes(c.KV, shard, i); err != nil {
				t.Fatal(err)
			} else if ok {
				n++
			}
		}
		return n
	}
	if n := records(); n != sidechain.VoteWindow {
		t.Fatalf("%d pending records, want %d", n, sidechain.VoteWindow)
	}
	// Eve's votes, last first, then block 1's: all confirm together.
	for i := len(bs) - 2; i >= 1; i-- {
		wantErr(t, c.confirm(eve, bs[i]).Err)
	}
	wantErr(t, c.confirm(dave, bs[0]).Err)
	if r := c.confirm(eve, bs[0]); r.Err != nil || c.latest(shard).Number != 1+sidechain.VoteWindow {
		t.Fatalf("latest %d, %v", c.latest(shard).Number, r.Err)
	}
	if n := records(); n != 0 {
		t.Fatalf("%d pending records left", n)
	}
	// The window moved on: the block refused before is taken now.
	if r := c.confirm(dave, bs[1+sidechain.VoteWindow]); r.Err != nil {
		t.Fatal(r.Err)
	}
}
