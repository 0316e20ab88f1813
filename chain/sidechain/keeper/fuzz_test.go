package keeper_test

import (
	"testing"

	"github.com/integritee-go/integritee/chain/internal/moduletest"
	"github.com/integritee-go/integritee/chain/runtime"
	"github.com/integritee-go/integritee/chain/sidechain"
	"github.com/integritee-go/integritee/chain/sidechain/keeper"
	"github.com/integritee-go/integritee/chain/types"
)

// FuzzDecodeCall: the decoder never panics, whatever it accepts is the
// canonical encoding of the message it returns, no accepted header is
// numbered zero, and every accepted run of headers passes its Check.
func FuzzDecodeCall(f *testing.F) {
	seed := func(h sidechain.Header) moduletest.Seed {
		return moduletest.Seed{Method: sidechain.MethodConfirmSidechainBlock, Args: sidechain.ConfirmSidechainBlock{Header: h}}
	}
	run := func(hs ...sidechain.Header) moduletest.Seed {
		return moduletest.Seed{Method: sidechain.MethodConfirmSidechainBlocks, Args: sidechain.ConfirmSidechainBlocks{Headers: hs}}
	}
	h1 := sidechain.Header{Shard: types.Hash{1}, Number: 9, ParentHash: types.Hash{2}, ChainHeight: 40}
	h2 := sidechain.Header{Shard: types.Hash{1}, Number: 10, ParentHash: hashOf(f, h1), ChainHeight: 41}
	moduletest.FuzzDecodeCall(f, keeper.New(nil, nil), func(t *testing.T, msg runtime.Msg) {
		switch m := msg.(type) {
		case *sidechain.ConfirmSidechainBlock:
			if m.Header.Number == 0 {
				t.Fatal("accepted block number zero")
			}
		case *sidechain.ConfirmSidechainBlocks:
			// Accepted runs are what Execute takes: Check passes again.
			if _, err := m.Check(); err != nil {
				t.Fatalf("accepted a run Check refuses: %v", err)
			}
		default:
			t.Fatalf("decoded %T", msg)
		}
	},
		seed(sidechain.Header{Shard: types.Hash{1}, Number: 9, ParentHash: types.Hash{2}, ChainHeight: 40, StateHash: types.Hash{3}, UnshieldsRoot: types.Hash{4}}),
		seed(sidechain.Header{Shard: types.Hash{1}, Number: 1, ChainHeight: 7, Timestamp: 1_700_000_000_000, Author: dave}),
		seed(sidechain.Header{Shard: types.Hash{1}}),
		run(h1, h2),
		run(h1, sidechain.Header{Shard: types.Hash{1}, Number: 10}),
	)
}
