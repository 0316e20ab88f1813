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
	"math/bits"

	"github.com/integritee-go/integritee/chain/tx"
	"github.com/integritee-go/integritee/chain/types"
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
