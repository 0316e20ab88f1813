package worker

import (
	"testing"

	"github.com/integritee-go/integritee/chain/bridge"
	"github.com/integritee-go/integritee/chain/sidechain"
	"github.com/integritee-go/integritee/chain/types"
	"github.com/integritee-go/integritee/client"
)

// TestOutgoingRefusals: how the submit loop treats each refusal of an
// outgoing call. A shard block's confirmation refused for a reason that
// passes (another enclave registered, its turn not come, a lapsed
// registration in the sidechain module) is kept, never dropped: before,
// every such refusal dropped it, and since every later block of the shard
// builds on it, the shard froze with its unshields unpaid (review of
// issue 8).
func TestOutgoingRefusals(t *testing.T) {
	for _, tc := range []struct {
		err                           *types.Error
		transient, renew, alreadyDone bool
	}{
		{sidechain.ErrSeveralEnclaves, true, false, false},
		{sidechain.ErrChainHeight, true, false, false},
		{sidechain.ErrFutureBlock, true, false, false},
		{sidechain.ErrRegisteredLater, true, false, false},
		{bridge.ErrBlockNotConfirmed, true, false, false},
		{types.ErrStaleNonce, true, false, false},
		{bridge.ErrFutureHeight, true, false, false},
		{sidechain.ErrNotActive, false, true, false},
		{sidechain.ErrNotShardEnclave, false, true, false},
		{bridge.ErrNotActive, false, true, false},
		{sidechain.ErrAlreadyConfirmed, false, false, true},
		{sidechain.ErrAlreadyVoted, false, false, true},
		{bridge.ErrAlreadyUnshielded, false, false, true},
		// Can never succeed: dropped.
		{sidechain.ErrForkedBlock, false, false, false},
		{sidechain.ErrEquivocation, false, false, false},
		{bridge.ErrUnshieldProof, false, false, false},
		{bridge.ErrUnknownBlock, false, false, false},
	} {
		te := &client.TxError{Codespace: tc.err.Codespace, Code: tc.err.Code, Log: tc.err.Msg}
		if got := transient(te); got != tc.transient {
			t.Errorf("%s/%d %s: transient %v, want %v", tc.err.Codespace, tc.err.Code, tc.err.Msg, got, tc.transient)
		}
		if got := needsRenewal(te); got != tc.renew {
			t.Errorf("%s/%d %s: renewal %v, want %v", tc.err.Codespace, tc.err.Code, tc.err.Msg, got, tc.renew)
		}
		if got := alreadyOnChain(te); got != tc.alreadyDone {
			t.Errorf("%s/%d %s: already on chain %v, want %v", tc.err.Codespace, tc.err.Code, tc.err.Msg, got, tc.alreadyDone)
		}
		// Only a vote beyond the chain's vote window waits for the
		// shard's other enclaves: retried soon, without backing off.
		if got, want := waitsForPeers(te), tc.err == sidechain.ErrFutureBlock; got != want {
			t.Errorf("%s/%d %s: waits for peers %v, want %v", tc.err.Codespace, tc.err.Code, tc.err.Msg, got, want)
		}
	}
}
