// Package moduletest holds the helpers and assertions the tests of the
// application and its runtime modules share.
package moduletest

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"testing"

	abci "github.com/cometbft/cometbft/abci/types"
	"github.com/cometbft/cometbft/crypto/ed25519"
	cmttypes "github.com/cometbft/cometbft/types"
)

// WantErr fails unless every error in want matches err (no want: success).
func WantErr(t testing.TB, err error, want ...error) {
	t.Helper()
	if len(want) == 0 {
		if err != nil {
			t.Fatalf("unexpected error: %v", err)
		}
		return
	}
	if err == nil {
		t.Fatalf("succeeded, want %v", want)
	}
	for _, w := range want {
		if !errors.Is(err, w) {
			t.Fatalf("error %q is not %q", err, w)
		}
	}
}

// Rejected asserts a call that failed with want and left no writes and no
// events behind.
func Rejected(t testing.TB, r Result, want ...error) {
	t.Helper()
	WantErr(t, r.Err, want...)
	if r.Changes != 0 || len(r.Events) != 0 {
		t.Fatalf("rejected call left %d writes and %d events", r.Changes, len(r.Events))
	}
}

// Validators returns n genesis validators of equal power whose ed25519 keys
// derive from seed, as CometBFT passes them to InitChain, and the hash of
// their set (the ValidatorsHash of the first block's header).
func Validators(seed string, n int) ([]abci.ValidatorUpdate, []byte) {
	vals := make([]*cmttypes.Validator, n)
	for i := range vals {
		k := ed25519.GenPrivKeyFromSecret(fmt.Appendf(nil, "%s/%d", seed, i))
		vals[i] = cmttypes.NewValidator(k.PubKey(), 10)
	}
	set := cmttypes.NewValidatorSet(vals)
	return cmttypes.TM2PB.ValidatorUpdates(set), set.Hash()
}

// BlockHash is the hash that tests driving the application without
// CometBFT give block h in FinalizeBlock (CometBFT's is the header hash).
func BlockHash(h int64) []byte {
	b := sha256.Sum256(fmt.Appendf(nil, "test block %d", h))
	return b[:]
}
