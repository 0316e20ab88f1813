package stf

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/integritee-go/integritee/chain/codec"
	"github.com/integritee-go/integritee/chain/tx"
	"github.com/integritee-go/integritee/enclave/state"
)

// Balances is the shipped STF: confidential balances. Accounts are ed25519
// keys (incognito accounts, usually unrelated to public chain accounts).
type Balances struct {
	// Dev enables set_balance, by Sudo only.
	Dev  bool
	Sudo tx.Address
}

var _ STF = (*Balances)(nil)

// Call is a balances call: exactly one field set.
type Call struct {
	Transfer   *Transfer   `cbor:"transfer,omitempty"`
	Unshield   *UnshieldTo `cbor:"unshield,omitempty"`
	SetBalance *SetBalance `cbor:"set_balance,omitempty"`
	// DevAccounts creates accounts in bulk (dev chains, sudo only).
	DevAccounts *DevAccounts `cbor:"dev_accounts,omitempty"`
}

// Transfer moves Amount from From (the signer) to To within the shard.
type Transfer struct {
	From   tx.Address `cbor:"from"`
	To     tx.Address `cbor:"to"`
	Amount uint64     `cbor:"amount"`
}

// UnshieldTo debits Amount from From (the signer) and releases it from the
// shard vault to the public account Beneficiary.
type UnshieldTo struct {
	From        tx.Address `cbor:"from"`
	Beneficiary tx.Address `cbor:"beneficiary"`
	Amount      uint64     `cbor:"amount"`
}

// SetBalance sets Who's balance (dev chains, sudo only).
type SetBalance struct {
	Who    tx.Address `cbor:"who"`
	Amount uint64     `cbor:"amount"`
}

// DevAccounts gives Amount to Count generated accounts, numbers First to
// First+Count-1 (DevAccount): the setup of a large state for measurements
// (docs/performance.md), in calls of at most MaxDevAccounts, without a
// chain transaction per account. Nobody holds the generated accounts'
// keys. Dev chains, sudo only, like SetBalance.
type DevAccounts struct {
	First  uint32 `cbor:"first"`
	Count  uint32 `cbor:"count"`
	Amount uint64 `cbor:"amount"`
}

// MaxDevAccounts bounds the accounts of one DevAccounts call, and so the
// entries one block changes.
const MaxDevAccounts = 50_000

// DevAccount is generated account number i of DevAccounts.
func DevAccount(i uint32) tx.Address {
	h := sha256.Sum256(binary.BigEndian.AppendUint32([]byte("integritee/dev-account/"), i))
	return tx.Address(h[:tx.AddressLen])
}

// Getter is a balances getter: exactly one field set; Who must be the
// signer.
type Getter struct {
	FreeBalance *tx.Address `cbor:"free_balance,omitempty"`
	Nonce       *tx.Address `cbor:"nonce,omitempty"`
}

// Event types.
const (
	EventTransfer   = "balances.transfer"
	EventUnshield   = "balances.unshield"
	EventShield     = "balances.shield"
	EventSetBalance = "balances.set_balance"
)

// Errors of balances calls: the call fails, its nonce is consumed.
var (
	ErrUnknownCall       = errors.New("balances: not exactly one call or getter")
	ErrNotOwner          = errors.New("balances: signer is not the account owner")
	ErrInsufficientFunds = errors.New("balances: insufficient funds")
	ErrOverflow          = errors.New("balances: balance overflow")
	ErrZeroAmount        = errors.New("balances: zero amount")
	ErrDevOnly           = errors.New("balances: set_balance is dev-only and sudo-only")
	ErrTooManyAccounts   = fmt.Errorf("balances: dev_accounts: count not in 1..%d", MaxDevAccounts)
)

// Encode helpers for clients.

// EncodeCall returns the CBOR of a balances call.
func EncodeCall(c Call) ([]byte, error) { return codec.Marshal(c) }

// EncodeGetter returns the CBOR of a balances getter.
func EncodeGetter(g Getter) ([]byte, error) { return codec.Marshal(g) }

func balanceKey(a tx.Address) []byte { return append([]byte("balances/free/"), a[:]...) }

// FreeBalance reads an account's balance.
func FreeBalance(st state.KV, a tx.Address) (uint64, error) {
	v, ok, err := st.Get(balanceKey(a))
	if err != nil || !ok {
		return 0, err
	}
	var n uint64
	if err := codec.Unmarshal(v, &n); err != nil {
		return 0, fmt.Errorf("balances: stored balance: %w", err)
	}
	return n, nil
}

func setBalance(st state.KV, a tx.Address, n uint64) error {
	if n == 0 {
		return st.Delete(balanceKey(a))
	}
	v, err := codec.Marshal(n)
	if err != nil {
		return err
	}
	return st.Set(balanceKey(a), v)
}

func credit(st state.KV, a tx.Address, amount uint64) error {
	b, err := FreeBalance(st, a)
	if err != nil {
		return err
	}
	if b+amount < b {
		return ErrOverflow
	}
	return setBalance(st, a, b+amount)
}

func debit(st state.KV, a tx.Address, amount uint64) error {
	b, err := FreeBalance(st, a)
	if err != nil {
		return err
	}
	if b < amount {
		return fmt.Errorf("%w: balance %d, need %d", ErrInsufficientFunds, b, amount)
	}
	return setBalance(st, a, b-amount)
}

// Execute implements STF.
func (s *Balances) Execute(_ Env, st state.KV, signer tx.Address, raw []byte) ([]Event, error) {
	var c Call
	if err := codec.Unmarshal(raw, &c); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnknownCall, err)
	}
	n := 0
	for _, set := range []bool{c.Transfer != nil, c.Unshield != nil, c.SetBalance != nil, c.DevAccounts != nil} {
		if set {
			n++
		}
	}
	if n != 1 {
		return nil, ErrUnknownCall
	}
	switch {
	case c.Transfer != nil:
		t := c.Transfer
		if t.From != signer {
			return nil, ErrNotOwner
		}
		if t.Amount == 0 {
			return nil, ErrZeroAmount
		}
		if err := debit(st, t.From, t.Amount); err != nil {
			return nil, err
		}
		if err := credit(st, t.To, t.Amount); err != nil {
			return nil, err
		}
		return []Event{{Type: EventTransfer}}, nil
	case c.Unshield != nil:
		u := c.Unshield
		if u.From != signer {
			return nil, ErrNotOwner
		}
		if u.Amount == 0 {
			return nil, ErrZeroAmount
		}
		if err := debit(st, u.From, u.Amount); err != nil {
			return nil, err
		}
		return []Event{{Type: EventUnshield, Unshield: &Unshield{Beneficiary: u.Beneficiary, Amount: u.Amount}}}, nil
	case c.DevAccounts != nil:
		if !s.Dev || signer != s.Sudo {
			return nil, ErrDevOnly
		}
		d := c.DevAccounts
		if d.Count == 0 || d.Count > MaxDevAccounts || d.First+d.Count < d.First {
			return nil, ErrTooManyAccounts
		}
		for i := d.First; i < d.First+d.Count; i++ {
			if err := setBalance(st, DevAccount(i), d.Amount); err != nil {
				return nil, err
			}
		}
		return []Event{{Type: EventSetBalance}}, nil
	default:
		if !s.Dev || signer != s.Sudo {
			return nil, ErrDevOnly
		}
		if err := setBalance(st, c.SetBalance.Who, c.SetBalance.Amount); err != nil {
			return nil, err
		}
		return []Event{{Type: EventSetBalance}}, nil
	}
}

// Get implements STF: the CBOR of a uint64.
func (s *Balances) Get(_ Env, st state.KV, signer tx.Address, raw []byte) ([]byte, error) {
	var g Getter
	if err := codec.Unmarshal(raw, &g); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnknownCall, err)
	}
	var v uint64
	var err error
	switch {
	case g.FreeBalance != nil && g.Nonce == nil:
		if *g.FreeBalance != signer {
			return nil, ErrNotOwner
		}
		v, err = FreeBalance(st, signer)
	case g.Nonce != nil && g.FreeBalance == nil:
		if *g.Nonce != signer {
			return nil, ErrNotOwner
		}
		v, err = Nonce(st, signer)
	default:
		return nil, ErrUnknownCall
	}
	if err != nil {
		return nil, err
	}
	return codec.Marshal(v)
}

// Shield implements STF.
func (s *Balances) Shield(_ Env, st state.KV, to tx.Address, amount uint64) ([]Event, error) {
	if amount == 0 {
		return nil, ErrZeroAmount
	}
	if err := credit(st, to, amount); err != nil {
		return nil, err
	}
	return []Event{{Type: EventShield}}, nil
}
