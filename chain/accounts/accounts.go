// Package accounts is the module of ed25519 accounts: balances, nonces,
// transaction fees, transfers and the sudo key.
//
// State (all values deterministic CBOR):
//
//	accounts/a/<32-byte address>  Account{balance, nonce}
//	accounts/params               Params{base_fee, per_byte_fee, fee_collector, sudo}
//
// Queries: /accounts/<hex address> (an absent account proves absent and
// reads as the zero Account) and /accounts/params, both with Merkle proofs.
package accounts

import (
	"errors"
	"fmt"
	"math/bits"
	"strconv"

	"github.com/integritee-go/integritee/chain/codec"
	"github.com/integritee-go/integritee/chain/runtime"
	"github.com/integritee-go/integritee/chain/store"
	"github.com/integritee-go/integritee/chain/tx"
	"github.com/integritee-go/integritee/chain/types"
	"github.com/integritee-go/integritee/internal/ed25519x"
)

// Name is the module name: call namespace, key prefix and query path.
const Name = "accounts"

// Call methods.
const (
	MethodTransfer   = "transfer"
	MethodSetBalance = "set_balance"
)

// Event types. Every state change of this module emits one.
const (
	EventTx         = "accounts.tx"          // sender, nonce: a transaction was admitted (nonce consumed)
	EventFee        = "accounts.fee"         // payer, amount, collector
	EventTransfer   = "accounts.transfer"    // from, to, amount
	EventBalanceSet = "accounts.balance_set" // who, amount
)

// Errors of this module's calls (codespace "accounts"). Never renumber.
var (
	ErrInsufficientFunds = types.NewError(Name, 1, "insufficient funds")
	ErrBalanceOverflow   = types.NewError(Name, 2, "balance overflow")
	ErrNotSudo           = types.NewError(Name, 3, "sender is not the sudo key")
)

// Account is the state of one address.
type Account struct {
	Balance uint64 `cbor:"balance" json:"balance"`
	// Nonce is the nonce the account's next transaction must carry.
	Nonce uint64 `cbor:"nonce" json:"nonce"`
}

// Params are the module's chain parameters, set in genesis.
type Params struct {
	BaseFee      uint64     `cbor:"base_fee" json:"base_fee"`
	PerByteFee   uint64     `cbor:"per_byte_fee" json:"per_byte_fee"`
	FeeCollector tx.Address `cbor:"fee_collector" json:"fee_collector"`
	// Sudo is the key allowed the sudo calls. Nil (JSON null) is a chain
	// without sudo: no address, however it signs, passes IsSudo. Absence
	// is explicit because any "nobody" address would be a key someone
	// might sign for; the all-zero one once was (issue 9).
	Sudo *tx.Address `cbor:"sudo" json:"sudo"`
}

// MinFee is the smallest fee a transaction of txLen wire bytes may declare:
// BaseFee + PerByteFee*txLen, saturating at the maximum.
func (p Params) MinFee(txLen int) uint64 {
	hi, lo := bits.Mul64(p.PerByteFee, uint64(txLen))
	if hi != 0 {
		return ^uint64(0)
	}
	sum, carry := bits.Add64(lo, p.BaseFee, 0)
	if carry != 0 {
		return ^uint64(0)
	}
	return sum
}

// Transfer is the argument of "transfer": move Amount from the sender to To.
type Transfer struct {
	To     tx.Address `cbor:"to"`
	Amount uint64     `cbor:"amount"`
}

// SetBalance is the argument of "set_balance" (sudo only).
type SetBalance struct {
	Who    tx.Address `cbor:"who"`
	Amount uint64     `cbor:"amount"`
}

// TransferCall builds the call of a transfer.
func TransferCall(to tx.Address, amount uint64) (tx.Call, error) {
	return tx.NewCall(Name, MethodTransfer, Transfer{To: to, Amount: amount})
}

// SetBalanceCall builds the call of a sudo balance change.
func SetBalanceCall(who tx.Address, amount uint64) (tx.Call, error) {
	return tx.NewCall(Name, MethodSetBalance, SetBalance{Who: who, Amount: amount})
}

var (
	keyAccountPrefix = []byte(Name + "/a/")
	keyParams        = []byte(Name + "/params")
)

// AccountKey is the state key of an address.
func AccountKey(a tx.Address) []byte {
	k := make([]byte, 0, len(keyAccountPrefix)+tx.AddressLen)
	k = append(k, keyAccountPrefix...)
	return append(k, a[:]...)
}

// ParamsKey is the state key of the parameters.
func ParamsKey() []byte { return append([]byte(nil), keyParams...) }

// Keeper reads and writes the module's state. It holds no state itself.
type Keeper struct{}

// Account returns the account of a (the zero Account if absent).
func (Keeper) Account(r store.Reader, a tx.Address) (Account, error) {
	var acc Account
	b, err := r.Get(AccountKey(a))
	if err != nil || b == nil {
		return acc, err
	}
	if err := codec.Unmarshal(b, &acc); err != nil {
		return acc, fmt.Errorf("decode account %s: %w", a, err)
	}
	return acc, nil
}

// SetAccount stores the account of a; the zero account is deleted.
func (Keeper) SetAccount(kv store.KV, a tx.Address, acc Account) error {
	if acc == (Account{}) {
		kv.Delete(AccountKey(a))
		return nil
	}
	b, err := codec.Marshal(acc)
	if err != nil {
		return fmt.Errorf("encode account: %w", err)
	}
	kv.Set(AccountKey(a), b)
	return nil
}

// Params returns the parameters.
func (Keeper) Params(r store.Reader) (Params, error) {
	var p Params
	b, err := r.Get(keyParams)
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
func (Keeper) SetParams(kv store.KV, p Params) error {
	b, err := codec.Marshal(p)
	if err != nil {
		return fmt.Errorf("encode accounts params: %w", err)
	}
	kv.Set(keyParams, b)
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
		return fmt.Errorf("%w: credit %d to %s", ErrBalanceOverflow, amount, a)
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
		return fmt.Errorf("%w: %s has %d, needs %d", ErrInsufficientFunds, a, acc.Balance, amount)
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
	ctx.Emit(EventTransfer, "from", from.String(), "to", to.String(), "amount", strconv.FormatUint(amount, 10))
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
	ctx.Emit(EventTx, "sender", body.Sender.String(), "nonce", strconv.FormatUint(body.Nonce, 10))
	ctx.Emit(EventFee, "payer", body.Sender.String(), "amount", strconv.FormatUint(body.Fee, 10), "collector", p.FeeCollector.String())
	return nil
}
