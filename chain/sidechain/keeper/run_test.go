package keeper_test

import (
	"errors"
	"testing"
	"time"

	"github.com/integritee-go/integritee/chain/internal/moduletest"
	"github.com/integritee-go/integritee/chain/sidechain"
	"github.com/integritee-go/integritee/chain/sidechain/keeper"
	"github.com/integritee-go/integritee/chain/tx"
	"github.com/integritee-go/integritee/chain/types"
)

func (c *chain) confirmRun(sender tx.Address, hs ...sidechain.Header) moduletest.Result {
	c.T.Helper()
	return c.Exec(c.sidechain, sender, sidechain.MethodConfirmSidechainBlocks, sidechain.ConfirmSidechainBlocks{Headers: hs})
}

// confirmedThrough checks a run's result data: the run confirmed blocks
// through h.
func confirmedThrough(t *testing.T, r moduletest.Result, h sidechain.Header) {
	t.Helper()
	last, lastHash, through, ok := sidechain.ParseConfirmedResult(r.Data)
	if !ok || !through || last != h.Number || lastHash != hashOf(t, h) {
		t.Fatalf("result data %q: last %d %s through %v ok %v, want block %d %s", r.Data, last, lastHash, through, ok, h.Number, hashOf(t, h))
	}
}

// TestConfirmRun: a confirm_sidechain_blocks is its headers' votes in
// order in one transaction: all of it or nothing, passing over the headers
// already confirmed or voted for by its sender.
func TestConfirmRun(t *testing.T) {
	shard := measurement("v1")
	hs := blocks(t, shard, 6)

	t.Run("one enclave confirms a run, and a run sent again counts only its new headers", func(t *testing.T) {
		c := newChain(t)
		c.Register(dave, shard)
		c.Next(time.Second)
		r := c.confirmRun(dave, hs[:3]...)
		wantErr(t, r.Err)
		confirmedThrough(t, r, hs[2])
		if n := eventCount(r, sidechain.EventBlockConfirmed); n != 3 {
			t.Fatalf("%d blocks confirmed, want 3", n)
		}
		if l := c.latest(shard); l.Number != 3 || l.HeaderHash != hashOf(t, hs[2]) || l.Enclave != dave {
			t.Fatalf("latest %+v, want block 3 by dave", l)
		}
		rejected(t, c.confirmRun(dave, hs[:3]...), sidechain.ErrAlreadyConfirmed)
		r = c.confirmRun(dave, hs[1:6]...)
		wantErr(t, r.Err)
		confirmedThrough(t, r, hs[5])
		if n := eventCount(r, sidechain.EventBlockConfirmed); n != 3 {
			t.Fatalf("%d blocks confirmed, want 3 (4, 5 and 6)", n)
		}
		if l := c.latest(shard); l.Number != 6 {
			t.Fatalf("latest %d, want 6", l.Number)
		}
	})

	t.Run("three enclaves: the second run confirms, the third is late", func(t *testing.T) {
		c := newChain(t)
		for _, s := range []tx.Address{dave, eve, charlie} {
			c.Register(s, shard)
		}
		c.Next(time.Second)
		r := c.confirmRun(dave, hs[:4]...)
		wantErr(t, r.Err)
		if r.Data != nil || eventCount(r, sidechain.EventBlockVoted) != 4 {
			t.Fatalf("first run: data %q, %d votes recorded, want none and 4", r.Data, eventCount(r, sidechain.EventBlockVoted))
		}
		rejected(t, c.confirmRun(dave, hs[:4]...), sidechain.ErrAlreadyVoted)
		// Eve's block 1 confirms it; the cascade stops at 2, which has
		// Dave's vote only until Eve's, and so on.
		r = c.confirmRun(eve, hs[:4]...)
		wantErr(t, r.Err)
		confirmedThrough(t, r, hs[3])
		rejected(t, c.confirmRun(charlie, hs[:4]...), sidechain.ErrAlreadyConfirmed)
		// A run with old and new headers: the new ones count.
		wantErr(t, c.confirmRun(charlie, hs[2:5]...).Err)
		if l := c.latest(shard); l.Number != 4 {
			t.Fatalf("latest %d, want 4 (block 5 has one vote of two)", l.Number)
		}
	})

	t.Run("an early run is recorded and counted with its predecessor", func(t *testing.T) {
		c := newChain(t)
		c.Register(dave, shard)
		c.Next(time.Second)
		r := c.confirmRun(dave, hs[2:5]...)
		wantErr(t, r.Err)
		if r.Data != nil {
			t.Fatalf("early run confirmed: %q", r.Data)
		}
		r = c.confirmRun(dave, hs[:2]...)
		wantErr(t, r.Err)
		confirmedThrough(t, r, hs[4])
	})

	// Each refused run changes nothing, not even its headers before the
	// refused one: the application (and Exec) drops a failed call's
	// writes, which the votes before the refused header made.
	for _, tc := range []struct {
		name string
		run  func(c *chain) []sidechain.Header
		want error
	}{
		{
			name: "a header after the current block",
			run: func(c *chain) []sidechain.Header {
				late := child(t, hs[1], c.Ctx.Height, 9)
				return []sidechain.Header{hs[0], hs[1], late}
			},
			want: sidechain.ErrChainHeight,
		},
		{
			name: "a fork of a confirmed block",
			run: func(c *chain) []sidechain.Header {
				wantErr(t, c.confirm(dave, hs[0]).Err)
				fork := first(shard, 10, 0x77)
				return []sidechain.Header{fork, child(t, fork, 10, 2)}
			},
			want: sidechain.ErrForkedBlock,
		},
		{
			name: "beyond the vote window",
			run: func(c *chain) []sidechain.Header {
				hs := blocks(t, shard, sidechain.VoteWindow+2)
				return hs[2:]
			},
			want: sidechain.ErrFutureBlock,
		},
		{
			name: "an enclave of another shard",
			run: func(c *chain) []sidechain.Header {
				return blocks(t, measurement("v2"), 2)
			},
			want: sidechain.ErrNotShardEnclave,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newChain(t)
			c.Register(dave, shard)
			c.Next(time.Second)
			run := tc.run(c)
			before := c.latest(shard)
			wantErr(t, c.confirmRun(dave, run...).Err, tc.want)
			if l := c.latest(shard); l != before {
				t.Fatalf("latest %+v after a refused run, was %+v", l, before)
			}
			for _, h := range run {
				if _, ok, err := c.sidechain.Votes(c.KV, h.Shard, h.Number); err != nil || ok {
					t.Fatalf("votes of block %d after a refused run: %v %v", h.Number, ok, err)
				}
			}
		})
	}

	t.Run("not an active enclave", func(t *testing.T) {
		c := newChain(t)
		c.Register(dave, shard)
		c.Next(time.Second)
		rejected(t, c.confirmRun(eve, hs[:2]...), sidechain.ErrNotActive)
	})
}

// TestDecodeRun: a run that is not consecutive headers of one shard, each
// extending the one before, is malformed.
func TestDecodeRun(t *testing.T) {
	m := keeper.New(nil, nil)
	shard := measurement("v1")
	hs := blocks(t, shard, 3)
	other := blocks(t, measurement("v2"), 2)
	gap := hs[2]
	gap.Number = 4
	zero := sidechain.Header{Shard: shard, Number: 0}
	tooMany := blocks(t, shard, sidechain.MaxConfirmHeaders+1)
	for name, tc := range map[string]struct {
		headers []sidechain.Header
		want    error
	}{
		"a run":                 {hs, nil},
		"the longest run":       {tooMany[:sidechain.MaxConfirmHeaders], nil},
		"empty":                 {nil, types.ErrMalformedCall},
		"too long":              {tooMany, types.ErrMalformedCall},
		"two shards":            {[]sidechain.Header{hs[0], other[1]}, types.ErrMalformedCall},
		"a gap":                 {[]sidechain.Header{hs[0], hs[1], gap}, types.ErrMalformedCall},
		"not extending":         {[]sidechain.Header{hs[0], hs[2]}, types.ErrMalformedCall},
		"out of order":          {[]sidechain.Header{hs[1], hs[0]}, types.ErrMalformedCall},
		"number zero":           {[]sidechain.Header{zero}, types.ErrMalformedCall},
		"wrong parent, same no": {[]sidechain.Header{hs[0], child(t, other[0], 10, 2)}, types.ErrMalformedCall},
	} {
		t.Run(name, func(t *testing.T) {
			call, err := sidechain.ConfirmBlocksCall(tc.headers)
			if err != nil {
				t.Fatal(err)
			}
			msg, err := m.DecodeCall(call)
			if !errors.Is(err, tc.want) || (tc.want == nil && err != nil) {
				t.Fatalf("error %v, want %v", err, tc.want)
			}
			if err == nil && len(msg.(*sidechain.ConfirmSidechainBlocks).Headers) != len(tc.headers) {
				t.Fatalf("decoded %d headers, want %d", len(msg.(*sidechain.ConfirmSidechainBlocks).Headers), len(tc.headers))
			}
		})
	}
}

// eventCount counts r's events of type typ.
func eventCount(r moduletest.Result, typ string) int {
	n := 0
	for _, e := range r.Events {
		if e.Type == typ {
			n++
		}
	}
	return n
}
