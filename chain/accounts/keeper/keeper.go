package keeper

import (
	"errors"
	"fmt"
	"math/bits"
	"strconv"

	"github.com/integritee-go/integritee/chain/accounts"
	"github.com/integritee-go/integritee/chain/codec"
	"github.com/integritee-go/integritee/chain/runtime"
	"github.com/integritee-go/integritee/chain/store"
	"github.com/integritee-go/integritee/chain/tx"
	"github.com/integritee-go/integritee/chain/types"
	"github.com/integritee-go/integritee/internal/ed25519x"
)

// Keeper reads and writes the module's state. It holds no state itself.
type Keeper struct{}

// Account returns the account of a (the zero Account if absent).
func (Keeper) Account(r store.Reader, a tx.Address) (accounts.Account, error) {
	var acc accounts.Account
	b, err := r.Get(accounts.AccountKey(a))
	if err != nil || b == nil {
		return acc, err
	}
	if err := codec.Unmarshal(b, &acc); err != nil {
		return acc, fmt.Errorf("decode account %s: %w", a, err)
	}
	return acc, nil
}

// SetAccount stores the account of a; the zero account is deleted.
func (Keeper) SetAccount(kv store.KV, a tx.Address, acc accounts.Account) error {
	if acc == (accounts.Account{}) {
		kv.Delete(accounts.AccountKey(a))
		return nil
	}
	b, err := codec.Marshal(acc)
	if err != nil {
		return fmt.Errorf("encode account: %w", err)
	}
	kv.Set(accounts.AccountKey(a), b)
	return nil
}

// Params returns the parameters.
func (Keeper) Params(r store.Reader) (accounts.Params, error) {
	var p accounts.Params
	b, err := r.Get(accounts.ParamsKey())
	if err != nil {
		return p, err
	}
	if b == nil {
		return p, errors.New("accounts params missing from state")
	}
	if err := codec.Unmarshal(b, &p); err != nil {
		return p, fmt.Errorf("decode accounts params: %w", err)
	}
	return p, nil
}

// SetParams stores the parameters.
func (Keeper) SetParams(kv store.KV, p accounts.Params) error {
	b, err := codec.Marshal(p)
	if err != nil {
		return fmt.Errorf("encode accounts params: %w", err)
	}
	kv.Set(accounts.ParamsKey(), b)
	return nil
}

// IsSudo reports whether a is the sudo key: never on a chain without one,
// and never for a key no signature can be checked against.
func (k Keeper) IsSudo(r store.Reader, a tx.Address) (bool, error) {
	p, err := k.Params(r)
	if err != nil {
		return false, err
	}
	if p.Sudo == nil || *p.Sudo != a {
		return false, nil
	}
	// Genesis validation refuses such a sudo key; a state written before it
	// did may still hold the all-zero "nobody" of old production genesis
	// files, which must stay nobody.
	return ed25519x.CheckPublicKey(a[:]) == nil, nil
}

// Credit adds amount to a's balance.
func (k Keeper) Credit(kv store.KV, a tx.Address, amount uint64) error {
	acc, err := k.Account(kv, a)
	if err != nil {
		return err
	}
	sum, carry := bits.Add64(acc.Balance, amount, 0)
	if carry != 0 {
		return fmt.Errorf("%w: credit %d to %s", accounts.ErrBalanceOverflow, amount, a)
	}
	acc.Balance = sum
	return k.SetAccount(kv, a, acc)
}

// Debit removes amount from a's balance.
func (k Keeper) Debit(kv store.KV, a tx.Address, amount uint64) error {
	acc, err := k.Account(kv, a)
	if err != nil {
		return err
	}
	if acc.Balance < amount {
		return fmt.Errorf("%w: %s has %d, needs %d", accounts.ErrInsufficientFunds, a, acc.Balance, amount)
	}
	acc.Balance -= amount
	return k.SetAccount(kv, a, acc)
}

// Transfer moves amount from one account to another and emits an event.
func (k Keeper) Transfer(ctx *runtime.Context, from, to tx.Address, amount uint64) error {
	if err := k.Debit(ctx.Store, from, amount); err != nil {
		return err
	}
	if err := k.Credit(ctx.Store, to, amount); err != nil {
		return err
	}
	ctx.Emit(accounts.EventTransfer, "from", from.String(), "to", to.String(), "amount", strconv.FormatUint(amount, 10))
	return nil
}

// Ante admits a transaction of txLen wire bytes: its nonce must be the
// sender's next nonce and its fee at least the minimum and affordable. On
// success it charges the fee to the fee collector and consumes the nonce; on
// error it changes nothing and the error wraps one of the runtime validation
// errors.
func (k Keeper) Ante(ctx *runtime.Context, body *tx.Body, txLen int) error {
	p, err := k.Params(ctx.Store)
	if err != nil {
		return err
	}
	acc, err := k.Account(ctx.Store, body.Sender)
	if err != nil {
		return err
	}
	switch {
	case body.Nonce < acc.Nonce:
		return fmt.Errorf("%w: got %d, account is at %d", types.ErrStaleNonce, body.Nonce, acc.Nonce)
	case body.Nonce > acc.Nonce:
		return fmt.Errorf("%w: got %d, account is at %d", types.ErrFutureNonce, body.Nonce, acc.Nonce)
	}
	if minFee := p.MinFee(txLen); body.Fee < minFee {
		return fmt.Errorf("%w: fee %d, minimum %d for %d bytes", types.ErrInsufficientFee, body.Fee, minFee, txLen)
	}
	if acc.Balance < body.Fee {
		return fmt.Errorf("%w: fee %d, balance %d", types.ErrUnaffordableFee, body.Fee, acc.Balance)
	}
	if acc.Nonce == ^uint64(0) {
		return fmt.Errorf("%w: nonce exhausted", types.ErrStaleNonce)
	}
	// Work on a branch so that a failed credit leaves no debit behind.
	b := store.NewCache(ctx.Store)
	acc.Balance -= body.Fee
	acc.Nonce++
	if err := k.SetAccount(b, body.Sender, acc); err != nil {
		return err
	}
	if err := k.Credit(b, p.FeeCollector, body.Fee); err != nil {
		return err
	}
	for _, c := range b.Changes() {
		if c.Value == nil {
			ctx.Store.Delete(c.Key)
		} else {
			ctx.Store.Set(c.Key, c.Value)
		}
	}
	ctx.Emit(accounts.EventTx, "sender", body.Sender.String(), "nonce", strconv.FormatUint(body.Nonce, 10))
	ctx.Emit(accounts.EventFee, "payer", body.Sender.String(), "amount", strconv.FormatUint(body.Fee, 10), "collector", p.FeeCollector.String())
	return nil
}
