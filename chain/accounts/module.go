package accounts

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/bits"
	"strconv"

	"github.com/integritee-go/integritee/chain/runtime"
	"github.com/integritee-go/integritee/chain/tx"
	"github.com/integritee-go/integritee/chain/types"
	"github.com/integritee-go/integritee/internal/ed25519x"
)

// Module is the accounts module.
type Module struct {
	Keeper Keeper
}

var (
	_ runtime.Module  = (*Module)(nil)
	_ runtime.Genesis = (*Module)(nil)
)

// New returns the module.
func New() *Module { return &Module{} }

// Name implements runtime.Module.
func (*Module) Name() string { return Name }

// DecodeCall implements runtime.Module.
func (*Module) DecodeCall(call tx.Call) (runtime.Msg, error) {
	switch call.Method {
	case MethodTransfer:
		var m Transfer
		if err := call.DecodeArgs(&m); err != nil {
			return nil, fmt.Errorf("%w: %w", types.ErrMalformedCall, err)
		}
		if m.Amount == 0 {
			return nil, fmt.Errorf("%w: transfer of zero", types.ErrMalformedCall)
		}
		return m, nil
	case MethodSetBalance:
		var m SetBalance
		if err := call.DecodeArgs(&m); err != nil {
			return nil, fmt.Errorf("%w: %w", types.ErrMalformedCall, err)
		}
		return m, nil
	}
	return nil, fmt.Errorf("%w: %s.%s", types.ErrUnknownCall, Name, call.Method)
}

// Execute implements runtime.Module.
func (m *Module) Execute(ctx *runtime.Context, msg runtime.Msg) error {
	switch msg := msg.(type) {
	case Transfer:
		return m.Keeper.Transfer(ctx, ctx.Sender, msg.To, msg.Amount)
	case SetBalance:
		sudo, err := m.Keeper.IsSudo(ctx.Store, ctx.Sender)
		if err != nil {
			return err
		}
		if !sudo {
			return fmt.Errorf("%w: %s", ErrNotSudo, ctx.Sender)
		}
		acc, err := m.Keeper.Account(ctx.Store, msg.Who)
		if err != nil {
			return err
		}
		acc.Balance = msg.Amount
		if err := m.Keeper.SetAccount(ctx.Store, msg.Who, acc); err != nil {
			return err
		}
		ctx.Emit(EventBalanceSet, "who", msg.Who.String(), "amount", strconv.FormatUint(msg.Amount, 10))
		return nil
	}
	return fmt.Errorf("%w: accounts cannot execute %T", types.ErrUnknownCall, msg)
}

// QueryKey implements runtime.Module: /accounts/<hex address> and
// /accounts/params.
func (*Module) QueryKey(path []string) ([]byte, error) {
	if len(path) != 1 {
		return nil, errors.New("query path: want /accounts/<hex address> or /accounts/params")
	}
	if path[0] == "params" {
		return ParamsKey(), nil
	}
	a, err := tx.ParseAddress(path[0])
	if err != nil {
		return nil, fmt.Errorf("query path: %w", err)
	}
	return AccountKey(a), nil
}

// GenesisState is the module's entry in genesis app_state.
type GenesisState struct {
	Params   Params         `json:"params"`
	Balances []GenesisEntry `json:"balances"`
}

// GenesisEntry endows one account.
type GenesisEntry struct {
	Address tx.Address `json:"address"`
	Amount  uint64     `json:"amount"`
}

// Validate checks that the genesis state is usable: a sudo key, if any,
// that only its holder can sign for, no duplicate accounts and a total
// supply that fits in a balance.
func (g *GenesisState) Validate() error {
	if s := g.Params.Sudo; s != nil {
		if err := ed25519x.CheckPublicKey(s[:]); err != nil {
			return fmt.Errorf("accounts genesis: sudo %s: %w (a chain without sudo has \"sudo\": null)", s, err)
		}
	}
	seen := make(map[tx.Address]bool, len(g.Balances))
	var total uint64
	for _, e := range g.Balances {
		if seen[e.Address] {
			return fmt.Errorf("accounts genesis: duplicate account %s", e.Address)
		}
		seen[e.Address] = true
		var carry uint64
		if total, carry = bits.Add64(total, e.Amount, 0); carry != 0 {
			return errors.New("accounts genesis: total supply overflows")
		}
	}
	return nil
}

// InitGenesis implements runtime.Genesis.
func (m *Module) InitGenesis(ctx *runtime.Context, raw []byte) error {
	if raw == nil {
		return errors.New("accounts genesis: missing")
	}
	var g GenesisState
	if err := json.Unmarshal(raw, &g); err != nil {
		return fmt.Errorf("accounts genesis: %w", err)
	}
	if err := g.Validate(); err != nil {
		return err
	}
	if err := m.Keeper.SetParams(ctx.Store, g.Params); err != nil {
		return err
	}
	for _, e := range g.Balances {
		if err := m.Keeper.SetAccount(ctx.Store, e.Address, Account{Balance: e.Amount}); err != nil {
			return err
		}
	}
	return nil
}
