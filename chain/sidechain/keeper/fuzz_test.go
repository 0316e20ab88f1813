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
// canonical encoding of the message it returns, and no accepted header is
// numbered zero.
func FuzzDecodeCall(f *testing.F) {
	seed := func(h sidechain.Header) moduletest.Seed {
		return moduletest.Seed{Method: sidechain.MethodConfirmSidechainBlock, Args: sidechain.ConfirmSidechainBlock{Header: h}}
	}
	moduletest.FuzzDecodeCall(f, keeper.New(nil, nil), func(t *testing.T, msg runtime.Msg) {
		if msg.(*sidechain.ConfirmSidechainBlock).Header.Number == 0 {
			t.Fatal("accepted block number zero")
		}
	},
		seed(sidechain.Header{Shard: types.Hash{1}, Number: 9, ParentHash: types.Hash{2}, ChainHeight: 40, StateHash: types.Hash{3}, UnshieldsRoot: types.Hash{4}}),
		seed(sidechain.Header{Shard: types.Hash{1}, Number: 1, ChainHeight: 7, Timestamp: 1_700_000_000_000, Author: dave}),
		seed(sidechain.Header{Shard: types.Hash{1}}),
	)
}
