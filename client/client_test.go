package client

import (
	"errors"
	"fmt"
	"testing"

	"github.com/integritee-go/integritee/chain/accounts"
	"github.com/integritee-go/integritee/chain/types"
)

func TestTxErrorMatchesRuntimeErrors(t *testing.T) {
	err := fmt.Errorf("submit: %w", &TxError{Codespace: types.CodespaceApp, Code: types.ErrStaleNonce.Code, Log: "stale nonce: got 0"})
	if !errors.Is(err, types.ErrStaleNonce) {
		t.Fatal("does not match its own code")
	}
	for _, other := range []error{types.ErrFutureNonce, accounts.ErrNotSudo, errors.New("stale nonce")} {
		if errors.Is(err, other) {
			t.Fatalf("matches %v", other)
		}
	}
	// Same number, other codespace.
	mod := &TxError{Codespace: accounts.Name, Code: accounts.ErrInsufficientFunds.Code}
	if errors.Is(mod, types.ErrInternal) || !errors.Is(mod, accounts.ErrInsufficientFunds) {
		t.Fatal("codespace not respected")
	}
}
