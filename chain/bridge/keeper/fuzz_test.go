package keeper_test

import (
	"testing"

	"github.com/integritee-go/integritee/chain/bridge"
	"github.com/integritee-go/integritee/chain/bridge/keeper"
	"github.com/integritee-go/integritee/chain/internal/moduletest"
	"github.com/integritee-go/integritee/chain/types"
)

// FuzzDecodeCall: the decoder never panics, and whatever it accepts is the
// canonical encoding of the message it returns.
func FuzzDecodeCall(f *testing.F) {
	moduletest.FuzzDecodeCall(f, keeper.New(nil, nil, nil, nil), nil,
		moduletest.Seed{Method: bridge.MethodInvoke, Args: bridge.Invoke{Shard: types.Hash{1}, Ciphertext: []byte("ct")}},
		moduletest.Seed{Method: bridge.MethodShieldFunds, Args: bridge.ShieldFunds{Shard: types.Hash{1}, Amount: 5, EncryptedRecipient: []byte("r")}},
		moduletest.Seed{Method: bridge.MethodUnshieldFunds, Args: bridge.UnshieldFunds{Shard: types.Hash{1}, Amount: 5, CallHash: types.Hash{2}, Block: 3,
			Proof: bridge.UnshieldProof{Index: 1, Total: 2, Aunts: [][]byte{make([]byte, 32)}}}},
		moduletest.Seed{Method: bridge.MethodConfirmProcessedBlock, Args: bridge.ConfirmProcessedBlock{Shard: types.Hash{1}, Height: 7}},
		moduletest.Seed{Method: bridge.MethodUpdateShardConfig, Args: bridge.UpdateShardConfig{Shard: types.Hash{1}, EnactmentHeight: 1 << 40}},
	)
}
