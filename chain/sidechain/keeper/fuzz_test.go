package keeper_test

import (
	"bytes"
	"testing"

	"github.com/integritee-go/integritee/chain/sidechain"
	"github.com/integritee-go/integritee/chain/sidechain/keeper"
	"github.com/integritee-go/integritee/chain/tx"
	"github.com/integritee-go/integritee/chain/types"
)

// FuzzDecodeCall: the decoder never panics, whatever it accepts is the
// canonical encoding of the message it returns, and no accepted header is
// numbered zero.
func FuzzDecodeCall(f *testing.F) {
	for _, h := range []sidechain.Header{
		{Shard: types.Hash{1}, Number: 9, ParentHash: types.Hash{2}, ChainHeight: 40, StateHash: types.Hash{3}, UnshieldsRoot: types.Hash{4}},
		{Shard: types.Hash{1}, Number: 1, ChainHeight: 7, Timestamp: 1_700_000_000_000, Author: dave},
		{Shard: types.Hash{1}},
	} {
		c, err := sidechain.ConfirmCall(h)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(sidechain.MethodConfirmSidechainBlock, []byte(c.Args))
	}
	m := keeper.New(nil, nil)
	f.Fuzz(func(t *testing.T, method string, args []byte) {
		msg, err := m.DecodeCall(tx.Call{Module: sidechain.Name, Method: method, Args: args})
		if err != nil {
			return
		}
		if msg.(*sidechain.ConfirmSidechainBlock).Header.Number == 0 {
			t.Fatal("accepted block number zero")
		}
		again, err := tx.NewCall(sidechain.Name, method, msg)
		if err != nil {
			t.Fatalf("accepted message does not encode: %v", err)
		}
		if !bytes.Equal(again.Args, args) {
			t.Fatalf("accepted non-canonical args %x, canonical %x", args, []byte(again.Args))
		}
	})
}
