package keeper_test

import (
	"crypto/sha256"
	"maps"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/cometbft/cometbft/crypto/merkle"

	"github.com/integritee-go/integritee/chain/accounts"
	"github.com/integritee-go/integritee/chain/bridge"
	"github.com/integritee-go/integritee/chain/sidechain"
	"github.com/integritee-go/integritee/chain/teerex"
	"github.com/integritee-go/integritee/chain/tx"
	"github.com/integritee-go/integritee/chain/types"
)

var charlie = accounts.DevAddress("Charlie") // a third enclave signer

// vote is one confirm_sidechain_block of a voting scenario and what it
// must do: fail with want (changing nothing), or be recorded with votes
// of needed (EventBlockVoted), or confirm (EventBlockConfirmed).
type vote struct {
	sender        tx.Address
	h             sidechain.Header
	want          []error
	votes, needed int
	confirms      bool
}

// TestVotes: a block is confirmed by the vote that gives its header a
// strict majority of its voting set (the shard's active enclaves first
// registered by its chain height); each enclave votes once per number.
func TestVotes(t *testing.T) {
	shard := measurement("v1")
	x, y := first(shard, 10, 1), first(shard, 10, 2) // two candidate block 1s
	// three registers Dave, Eve and Charlie at height 10 and moves to 11.
	three := func(c *chain) {
		for _, s := range []tx.Address{dave, eve, charlie} {
			c.Register(s, shard)
		}
		c.Next(time.Second)
	}
	tests := []struct {
		name  string
		setup func(c *chain)
		votes []vote
		// confirmed is block 1's header once done (zero: none).
		confirmed *sidechain.Header
	}{
		{
			name:      "one enclave confirms alone",
			setup:     func(c *chain) { c.Register(dave, shard); c.Next(time.Second) },
			votes:     []vote{{sender: dave, h: x, confirms: true}},
			confirmed: &x,
		},
		{
			name:  "three enclaves: the second vote confirms, the third is late",
			setup: three,
			votes: []vote{
				{sender: dave, h: x, votes: 1, needed: 2},
				{sender: eve, h: x, confirms: true},
				{sender: charlie, h: x, want: []error{sidechain.ErrAlreadyConfirmed}},
			},
			confirmed: &x,
		},
		{
			name:  "a repeated vote is refused",
			setup: three,
			votes: []vote{
				{sender: dave, h: x, votes: 1, needed: 2},
				{sender: dave, h: x, want: []error{sidechain.ErrAlreadyVoted}},
			},
		},
		{
			name:  "two headers: none confirms until one has a majority",
			setup: three,
			votes: []vote{
				{sender: dave, h: x, votes: 1, needed: 2},
				{sender: eve, h: y, votes: 1, needed: 2},
				{sender: charlie, h: y, confirms: true},
				{sender: dave, h: x, want: []error{sidechain.ErrForkedBlock}},
			},
			confirmed: &y,
		},
		{
			// An enclave that votes for two headers of one number has
			// forgotten its first (rolled back): the first vote stands.
			name:  "equivocation",
			setup: three,
			votes: []vote{
				{sender: dave, h: x, votes: 1, needed: 2},
				{sender: dave, h: y, want: []error{sidechain.ErrEquivocation}},
				{sender: eve, h: y, votes: 1, needed: 2},
				{sender: charlie, h: x, confirms: true},
			},
			confirmed: &x,
		},
		{
			name: "registered after the block's chain height: no vote, not counted",
			setup: func(c *chain) {
				c.Register(dave, shard)
				c.Register(eve, shard)
				c.Next(time.Second)
				c.Register(charlie, shard) // at 11, after x's chain height
				c.Next(time.Second)
			},
			votes: []vote{
				{sender: charlie, h: x, want: []error{sidechain.ErrRegisteredLater}},
				{sender: dave, h: x, votes: 1, needed: 2},
				{sender: eve, h: x, confirms: true},
			},
			confirmed: &x,
		},
		{
			name: "an expired enclave neither votes nor counts",
			setup: func(c *chain) {
				c.Register(eve, shard)
				c.Next(12 * time.Hour)
				c.Register(dave, shard)
				c.Next(12*time.Hour + time.Second) // Eve expired
			},
			votes: []vote{
				{sender: eve, h: first(shard, 10, 1), want: []error{sidechain.ErrNotActive, teerex.ErrExpired}},
				{sender: dave, h: x, confirms: true},
			},
			confirmed: &x,
		},
		{
			// Votes of enclaves that left do not count.
			name: "a voter that left does not count",
			setup: func(c *chain) {
				three(c)
				c.mustVote(eve, x)
				c.unregister(eve)
			},
			votes: []vote{
				{sender: dave, h: x, votes: 1, needed: 2},
				{sender: charlie, h: x, confirms: true},
			},
			confirmed: &x,
		},
		{
			// A voter whose peers all left is the whole voting set: its
			// repeated vote confirms rather than being ErrAlreadyVoted,
			// or the block could never be confirmed.
			name: "voters leave: the remaining vote decides",
			setup: func(c *chain) {
				three(c)
				c.mustVote(dave, x)
				c.unregister(eve)
				c.unregister(charlie)
			},
			votes:     []vote{{sender: dave, h: x, confirms: true}},
			confirmed: &x,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := newChain(t)
			tc.setup(c)
			for i, v := range tc.votes {
				before, _, err := c.sidechain.Votes(c.KV, shard, 1)
				if err != nil {
					t.Fatal(err)
				}
				r := c.confirm(v.sender, v.h)
				if len(v.want) > 0 {
					rejected(t, r, v.want...)
					continue
				}
				wantErr(t, r.Err)
				hash := hashOf(t, v.h)
				if v.confirms {
					ev, ok := findEvent(r, sidechain.EventBlockConfirmed)
					if got, _ := sidechain.ParseEvent(sidechain.EventBlockConfirmed, ev); !ok ||
						got != (sidechain.Confirmed{Shard: shard, Number: 1, HeaderHash: hash, Enclave: v.sender}) {
						t.Fatalf("vote %d: events %v", i, r.Events)
					}
					if _, ok, err := c.sidechain.Votes(c.KV, shard, 1); ok || err != nil {
						t.Fatalf("vote %d: pending votes left after the confirmation: %v", i, err)
					}
					continue
				}
				ev, ok := findEvent(r, sidechain.EventBlockVoted)
				want := map[string]string{"shard": shard.String(), "number": "1", "header_hash": hash.String(),
					"enclave": v.sender.String(), "votes": strconv.Itoa(v.votes), "needed": strconv.Itoa(v.needed)}
				if !ok || !maps.Equal(ev, want) || len(r.Events) != 1 {
					t.Fatalf("vote %d: events %v, want %v", i, r.Events, want)
				}
				after, ok, err := c.sidechain.Votes(c.KV, shard, 1)
				if err != nil || !ok || voters(after) != voters(before)+1 || !slices.Contains(candidate(after, hash), v.sender) {
					t.Fatalf("vote %d: pending votes %+v (before %+v), %v", i, after, before, err)
				}
				if l := c.latest(shard); l.Number != 0 {
					t.Fatalf("vote %d short of a majority confirmed %+v", i, l)
				}
			}
			l := c.latest(shard)
			if tc.confirmed == nil {
				if l.Number != 0 {
					t.Fatalf("confirmed %+v", l)
				}
				return
			}
			if l.Number != 1 || l.HeaderHash != hashOf(t, *tc.confirmed) || l.StateHash != tc.confirmed.StateHash {
				t.Fatalf("latest %+v, want %+v", l, *tc.confirmed)
			}
		})
	}
}

// mustVote votes and fails the test on a refusal.
func (c *chain) mustVote(sender tx.Address, h sidechain.Header) {
	c.T.Helper()
	if r := c.confirm(sender, h); r.Err != nil {
		c.T.Fatalf("vote of %s: %v", sender, r.Err)
	}
}

func voters(v sidechain.Votes) int {
	n := 0
	for _, c := range v.Candidates {
		n += len(c.Voters)
	}
	return n
}

func candidate(v sidechain.Votes, hash types.Hash) []tx.Address {
	for _, c := range v.Candidates {
		if c.HeaderHash == hash {
			return c.Voters
		}
	}
	return nil
}

// unshield is the bridge's unshield_funds of u in block number.
func (c *chain) unshield(sender tx.Address, shard types.Hash, number uint64, u sidechain.Unshield, p *merkle.Proof) error {
	c.T.Helper()
	return c.Exec(c.bridge, sender, bridge.MethodUnshieldFunds, bridge.UnshieldFunds{
		Shard: shard, Beneficiary: u.Beneficiary, Amount: u.Amount, CallHash: u.CallHash, Block: number,
		Proof: bridge.UnshieldProof{Index: uint64(p.Index), Total: uint64(p.Total), Aunts: p.Aunts},
	}).Err
}

// The core safety property of the quorum, as an attack. Charlie is one of
// the shard's three enclaves. Its host rolls its state back to before
// block 2 and has it execute other calls: it signs another block 2 (same
// number and parent, another state) whose unshield U' pays the vault's
// funds to Ferdie, and votes for it before its peers vote for the real
// block 2. Before, the chain confirmed a chain block on the word of any one
// active enclave of the shard, so the fork would have been confirmed and
// U' paid. Now the fork has one vote of the two it needs: U' is refused
// while it is pending (ErrBlockNotConfirmed), the honest enclaves' block 2
// is confirmed by their two votes, and U' is then refused for good
// (ErrUnshieldProof), as is the fork (ErrForkedBlock). The honest block's
// own unshield pays only once it is confirmed.
func TestAttackRolledBackLoneEnclaveCannotConfirmFork(t *testing.T) {
	c := newChain(t)
	shard := measurement("v1")
	for _, s := range []tx.Address{dave, eve, charlie} {
		c.Register(s, shard)
	}
	if r := c.Exec(c.bridge, bob, bridge.MethodShieldFunds, bridge.ShieldFunds{Shard: shard, Amount: 1000, EncryptedRecipient: []byte("r")}); r.Err != nil {
		t.Fatal(r.Err)
	}
	c.Next(time.Second)
	b1 := first(shard, 10, 1)
	c.mustVote(dave, b1)
	c.mustVote(eve, b1)
	rejected(t, c.confirm(charlie, b1), sidechain.ErrAlreadyConfirmed)
	c.Next(time.Second)

	// The honest block 2 unshields 300 to Bob.
	u := sidechain.Unshield{Beneficiary: bob, Amount: 300, CallHash: sha256.Sum256([]byte("unshield 300 to Bob"))}
	root, proofs := sidechain.UnshieldsRoot([]sidechain.Unshield{u})
	b2 := child(t, b1, 11, 2)
	b2.UnshieldsRoot = root
	// The rolled-back fork's block 2 unshields everything to Ferdie.
	u2 := sidechain.Unshield{Beneficiary: ferd, Amount: 1000, CallHash: sha256.Sum256([]byte("unshield 1000 to Ferdie"))}
	forkRoot, forkProofs := sidechain.UnshieldsRoot([]sidechain.Unshield{u2})
	if err := forkProofs[0].Verify(forkRoot[:], sidechain.UnshieldLeaf(u2)); err != nil {
		t.Fatalf("the fork's proof must be valid in the fork, or the test proves nothing: %v", err)
	}
	fork := child(t, b1, 11, 0xf2)
	fork.UnshieldsRoot = forkRoot
	vault := bridge.VaultAddress(shard)
	vaultBefore, ferdBefore, bobBefore := c.Balance(vault), c.Balance(ferd), c.Balance(bob)

	c.mustVote(charlie, fork)
	wantErr(t, c.unshield(charlie, shard, 2, u2, forkProofs[0]), bridge.ErrBlockNotConfirmed)
	c.mustVote(dave, b2)
	// Pending with one vote each: nothing pays.
	wantErr(t, c.unshield(dave, shard, 2, u, proofs[0]), bridge.ErrBlockNotConfirmed)
	c.mustVote(eve, b2)
	if l := c.latest(shard); l.Number != 2 || l.HeaderHash != hashOf(t, b2) || l.Enclave != eve {
		t.Fatalf("latest %+v, want the honest block 2", l)
	}
	rejected(t, c.confirm(charlie, fork), sidechain.ErrForkedBlock)
	wantErr(t, c.unshield(charlie, shard, 2, u2, forkProofs[0]), bridge.ErrUnshieldProof)
	wantErr(t, c.unshield(dave, shard, 2, u, proofs[0]))

	if got := c.Balance(ferd); got != ferdBefore {
		t.Errorf("Ferdie's balance %d, was %d", got, ferdBefore)
	}
	if got := c.Balance(bob) - bobBefore; got != 300 {
		t.Errorf("Bob received %d, want 300", got)
	}
	if got := vaultBefore - c.Balance(vault); got != 300 {
		t.Errorf("the vault paid %d, want 300", got)
	}
}
