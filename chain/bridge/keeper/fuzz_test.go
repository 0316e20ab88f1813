package keeper_test

import (
	"bytes"
	"testing"

	"github.com/integritee-go/integritee/chain/bridge"
	"github.com/integritee-go/integritee/chain/bridge/keeper"
	"github.com/integritee-go/integritee/chain/tx"
	"github.com/integritee-go/integritee/chain/types"
)

// FuzzDecodeCall feeds arbitrary methods and arguments to the decoder: it
// must never panic, and whatever it accepts must be the canonical encoding
// of the message it returns.
func FuzzDecodeCall(f *testing.F) {
	for _, s := range []struct {
		method string
		args   any
	}{
		{bridge.MethodInvoke, bridge.Invoke{Shard: types.Hash{1}, Ciphertext: []byte("ct")}},
		{bridge.MethodShieldFunds, bridge.ShieldFunds{Shard: types.Hash{1}, Amount: 5, EncryptedRecipient: []byte("r")}},
		{bridge.MethodUnshieldFunds, bridge.UnshieldFunds{Shard: types.Hash{1}, Amount: 5, CallHash: types.Hash{2}, Block: 3,
			Proof: bridge.UnshieldProof{Index: 1, Total: 2, Aunts: [][]byte{make([]byte, 32)}}}},
		{bridge.MethodConfirmProcessedBlock, bridge.ConfirmProcessedBlock{Shard: types.Hash{1}, Height: 7}},
		{bridge.MethodUpdateShardConfig, bridge.UpdateShardConfig{Shard: types.Hash{1}, EnactmentHeight: 1 << 40}},
	} {
		call, err := tx.NewCall(bridge.Name, s.method, s.args)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(s.method, []byte(call.Args))
	}
	m := keeper.New(nil, nil, nil, nil)
	f.Fuzz(func(t *testing.T, method string, args []byte) {
		msg, err := m.DecodeCall(tx.Call{Module: bridge.Name, Method: method, Args: args})
		if err != nil {
			return
		}
		again, err := tx.NewCall(bridge.Name, method, msg)
		if err != nil {
			t.Fatalf("accepted message does not encode: %v", err)
		}
		if !bytes.Equal(again.Args, args) {
			t.Fatalf("accepted non-canonical args %x, canonical %x", args, []byte(again.Args))
		}
	})
}
