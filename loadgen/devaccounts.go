package loadgen

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"

	"github.com/integritee-go/integritee/chain/tx"
	"github.com/integritee-go/integritee/client/trusted"
	"github.com/integritee-go/integritee/enclave/stf"
)

// ErrDevCall is a dev call (dev_accounts, set_balance) that the enclave
// executed but refused: not a dev build, or not signed by its dev sudo.
var ErrDevCall = errors.New("loadgen: dev call failed")

// CreateDevAccounts gives amount to the generated accounts
// stf.DevAccount(first) .. stf.DevAccount(first+n-1) of the shard tc
// serves, with direct dev_accounts calls signed by the shard's dev sudo
// (the dev build's: Alice on a localnet), stf.MaxDevAccounts accounts per
// call, one call after the other. It calls done with the number created
// so far after each call (nil: none). The accounts have no keys; a
// repeated run sets the same balances again. Only a dev build of the
// enclave takes the call (ErrDevCall otherwise).
func CreateDevAccounts(ctx context.Context, tc *trusted.Client, sudo ed25519.PrivateKey, first, n uint32, amount uint64, done func(created int)) error {
	if n == 0 || first+n < first {
		return fmt.Errorf("%w: accounts %d from %d", ErrConfig, n, first)
	}
	if amount == 0 {
		return fmt.Errorf("%w: zero amount", ErrConfig)
	}
	for i := uint32(0); i < n; {
		k := min(n-i, stf.MaxDevAccounts)
		call := stf.Call{DevAccounts: &stf.DevAccounts{First: first + i, Count: k, Amount: amount}}
		if err := submitDev(ctx, tc, sudo, call); err != nil {
			return fmt.Errorf("dev_accounts %d..%d: %w", first+i, first+i+k-1, err)
		}
		i += k
		if done != nil {
			done(int(i))
		}
	}
	return nil
}

// SetDevBalance sets who's balance in the shard with a direct set_balance
// call of the dev sudo (dev builds only, like CreateDevAccounts).
func SetDevBalance(ctx context.Context, tc *trusted.Client, sudo ed25519.PrivateKey, who tx.Address, amount uint64) error {
	if err := submitDev(ctx, tc, sudo, stf.Call{SetBalance: &stf.SetBalance{Who: who, Amount: amount}}); err != nil {
		return fmt.Errorf("set_balance %x: %w", who, err)
	}
	return nil
}

func submitDev(ctx context.Context, tc *trusted.Client, sudo ed25519.PrivateKey, call stf.Call) error {
	r, err := tc.SubmitCall(ctx, sudo, call)
	if err != nil {
		return err
	}
	if !r.Success {
		return fmt.Errorf("%w in shard block %d: %s (the enclave must be a dev build and the signer its dev sudo)", ErrDevCall, r.Block.Number, r.Error)
	}
	return nil
}
