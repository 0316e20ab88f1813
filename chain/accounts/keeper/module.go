// Package keeper is the accounts module's state machine: its Keeper reads and
// writes balances, nonces and parameters and charges fees, and its Module
// executes the calls of package accounts.
package keeper

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"github.com/integritee-go/integritee/chain/accounts"
	"github.com/integritee-go/integritee/chain/runtime"
	"github.com/integritee-go/integritee/chain/tx"
	"github.com/integritee-go/integritee/chain/types"
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
func (*Module) Name() string { return accounts.Name }

// DecodeCall implements runtime.Module.
func (*Module) DecodeCall(call tx.Call) (runtime.Msg, error) {
	switch call.Method {
	case accounts.MethodTransfer:
		var m accounts.Transfer
		if err := call.DecodeArgs(&m); err != nil {
			return nil, fmt.Errorf("%w: %w", types.ErrMalformedCall, err)
		}
		if m.Amount == 0 {
			return nil, fmt.Errorf("%w: transfer of zero", types.ErrMalformedCall)
		}
		return m, nil
	case accounts.MethodSetBalance:
		var m accounts.SetBalance
		if err := call.DecodeArgs(&m); err != nil {
			return nil, fmt.Errorf("%w: %w", types.ErrMalformedCall, err)
		}
		return m, nil
	}
	return nil, fmt.Errorf("%w: %s.%s", types.ErrUnknownCall, accounts.Name, call.Method)
}

// Execute implements runtime.Module.
func (m *Module) Execute(ctx *runtime.Context, msg runtime.Msg) error {
	switch msg := msg.(type) {
	case accounts.Transfer:
		return m.Keeper.Transfer(ctx, ctx.Sender, msg.To, msg.Amount)
	case accounts.SetBalance:
		sudo, err := m.Keeper.IsSudo(ctx.Store, ctx.Sender)
		if err != nil {
			return err
		}
		if !sudo {
			return fmt.Errorf("%w: %s", accounts.ErrNotSudo, ctx.Sender)
		}
		acc, err := m.Keeper.Account(ctx.Store, msg.Who)
		if err != nil {
			return err
		}
		acc.Balance = msg.Amount
		if err := m.Keeper.SetAccount(ctx.Store, msg.Who, acc); err != nil {
			return err
		}
		ctx.Emit(accounts.EventBalanceSet, "who", msg.Who.String(), "amount", strconv.FormatUint(msg.Amount, 10))
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
		return accounts.ParamsKey(), nil
	}
	a, err := tx.ParseAddress(path[0])
	if err != nil {
		return nil, fmt.Errorf("query path: %w", err)
	}
	return accounts.AccountKey(a), nil
}

// InitGenesis implements runtime.Genesis.
func (m *Module) InitGenesis(ctx *runtime.Context, raw []byte) error {
	if raw == nil {
		return errors.New("accounts genesis: missing")
	}
	var g accounts.GenesisState
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
		if err := m.Keeper.SetAccount(ctx.Store, e.Address, accounts.Account{Balance: e.Amount}); err != nil {
			return err
		}
	}
	return nil
}
