package enclave

import (
	"slices"
	"testing"

	"github.com/integritee-go/integritee/chain/bridge"
	"github.com/integritee-go/integritee/chain/sidechain"
	"github.com/integritee-go/integritee/chain/tx"
	"github.com/integritee-go/integritee/chain/types"
)

// TestVoteRuns: consecutive votes for blocks that follow one another are
// signed as one confirm_sidechain_blocks of at most MaxConfirmHeaders;
// anything else breaks a run, and every call is carried once, in order.
func TestVoteRuns(t *testing.T) {
	shard := types.Hash{1}
	chain := func(shard types.Hash, from uint64, n int) []sidechain.Header {
		hs := make([]sidechain.Header, n)
		var parent types.Hash
		for i := range hs {
			hs[i] = sidechain.Header{Shard: shard, Number: from + uint64(i), ParentHash: parent, ChainHeight: 3}
			h, err := hs[i].Hash()
			if err != nil {
				t.Fatal(err)
			}
			parent = h
		}
		return hs
	}
	hs := chain(shard, 1, sidechain.MaxConfirmHeaders+3)
	vote := func(h sidechain.Header) tx.Call {
		c, err := sidechain.ConfirmCall(h)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	votes := func(hs []sidechain.Header) []tx.Call {
		var cs []tx.Call
		for _, h := range hs {
			cs = append(cs, vote(h))
		}
		return cs
	}
	unshield, err := tx.NewCall(bridge.Name, bridge.MethodUnshieldFunds, bridge.UnshieldFunds{Shard: shard})
	if err != nil {
		t.Fatal(err)
	}
	fork := hs[2]
	fork.StateHash = types.Hash{9}
	for _, tc := range []struct {
		name  string
		calls []tx.Call
		// want is the headers of each call out; nil for a call passed
		// through as it came.
		want [][]sidechain.Header
	}{
		{"one vote stays a confirm_sidechain_block", votes(hs[:1]), [][]sidechain.Header{nil}},
		{"a run", votes(hs[:3]), [][]sidechain.Header{hs[:3]}},
		{"the longest run, then the next", votes(hs[:sidechain.MaxConfirmHeaders+2]),
			[][]sidechain.Header{hs[:sidechain.MaxConfirmHeaders], hs[sidechain.MaxConfirmHeaders : sidechain.MaxConfirmHeaders+2]}},
		{"an unshield between", append(append(votes(hs[:2]), unshield), votes(hs[2:4])...),
			[][]sidechain.Header{hs[:2], nil, hs[2:4]}},
		{"a gap", append(votes(hs[:2]), votes(hs[3:5])...), [][]sidechain.Header{hs[:2], hs[3:5]}},
		// The fork extends block 2; block 4 does not extend the fork.
		{"not extending", append(votes(hs[:2]), vote(fork), vote(hs[3])), [][]sidechain.Header{{hs[0], hs[1], fork}, nil}},
		{"another shard", append(votes(hs[:2]), votes(chain(types.Hash{2}, 3, 2))...),
			[][]sidechain.Header{hs[:2], chain(types.Hash{2}, 3, 2)}},
		{"out of order", []tx.Call{vote(hs[1]), vote(hs[0])}, [][]sidechain.Header{nil, nil}},
		// A host may send the tagged votes as it likes: a vote twice
		// breaks the run, and each run is still a chain of headers.
		{"a vote twice", []tx.Call{vote(hs[0]), vote(hs[1]), vote(hs[1]), vote(hs[2])},
			[][]sidechain.Header{hs[:2], hs[1:3]}},
		{"no votes", []tx.Call{unshield, unshield}, [][]sidechain.Header{nil, nil}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, covers, err := voteRuns(tc.calls)
			if err != nil {
				t.Fatal(err)
			}
			if len(out) != len(tc.want) || len(covers) != len(out) {
				t.Fatalf("%d calls, %d covers; want %d", len(out), len(covers), len(tc.want))
			}
			next := 0
			for i, c := range out {
				n := int(covers[i])
				if tc.want[i] == nil {
					if n != 1 || !slices.Equal(c.Args, tc.calls[next].Args) || c.Method != tc.calls[next].Method {
						t.Fatalf("call %d: %s covering %d, want call %d as it came", i, c.Method, n, next)
					}
					next++
					continue
				}
				var m sidechain.ConfirmSidechainBlocks
				if c.Method != sidechain.MethodConfirmSidechainBlocks || c.DecodeArgs(&m) != nil {
					t.Fatalf("call %d: %s, want a run", i, c.Method)
				}
				if !slices.Equal(m.Headers, tc.want[i]) || n != len(tc.want[i]) {
					t.Fatalf("call %d: %d headers covering %d, want %d", i, len(m.Headers), n, len(tc.want[i]))
				}
				if _, err := m.Check(); err != nil {
					t.Fatalf("call %d: a run the chain refuses: %v", i, err)
				}
				next += n
			}
			if next != len(tc.calls) {
				t.Fatalf("calls cover %d of %d", next, len(tc.calls))
			}
		})
	}
}
