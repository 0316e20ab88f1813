package keeper_test

import (
	"errors"
	"math"
	"testing"

	dbm "github.com/cometbft/cometbft-db"

	"github.com/integritee-go/integritee/chain/accounts"
	"github.com/integritee-go/integritee/chain/accounts/keeper"
	"github.com/integritee-go/integritee/chain/runtime"
	"github.com/integritee-go/integritee/chain/store"
	"github.com/integritee-go/integritee/chain/tx"
	"github.com/integritee-go/integritee/chain/types"
)

// TestDevKeysAreWellKnown pins the documented derivation
// ed25519.NewKeyFromSeed(sha256("//"+name)).
func TestDevKeysAreWellKnown(t *testing.T) {
	want := map[string]string{
		"Alice":  "f5f722d4f2cfaaf33e8a32600f6a94c9ab0311c18a2303184f21a2e9fd35bd60",
		"Bob":    "9155494cf0157e3ffa5a1e40da58c87db02b89ed07fb537bc9c67d841aafe587",
		"Ferdie": "c8fd2b87e50c246fc7a708edf8304e835554bcec1ccf2371b6861a8f86242985",
	}
	for name, hex := range want {
		if got := accounts.DevAddress(name).String(); got != hex {
			t.Errorf("%s: %s, want %s", name, got, hex)
		}
	}
	g := accounts.DevGenesis()
	if g.Params.Sudo == nil || *g.Params.Sudo != accounts.DevAddress("Alice") || len(g.Balances) != len(accounts.DevNames) {
		t.Fatalf("dev genesis: %+v", g)
	}
}

func TestMinFee(t *testing.T) {
	tests := []struct {
		p    accounts.Params
		n    int
		want uint64
	}{
		{accounts.Params{BaseFee: 10, PerByteFee: 2}, 100, 210},
		{accounts.Params{BaseFee: 0, PerByteFee: 0}, 100, 0},
		{accounts.Params{BaseFee: math.MaxUint64, PerByteFee: 1}, 1, math.MaxUint64},
		{accounts.Params{BaseFee: 1, PerByteFee: math.MaxUint64}, 2, math.MaxUint64},
	}
	for _, tc := range tests {
		if got := tc.p.MinFee(tc.n); got != tc.want {
			t.Errorf("%+v MinFee(%d) = %d, want %d", tc.p, tc.n, got, tc.want)
		}
	}
}

func TestGenesisValidate(t *testing.T) {
	a := accounts.DevAddress("Alice")
	dup := accounts.GenesisState{Balances: []accounts.GenesisEntry{{Address: a, Amount: 1}, {Address: a, Amount: 1}}}
	if err := dup.Validate(); err == nil {
		t.Error("duplicate account accepted")
	}
	over := accounts.GenesisState{Balances: []accounts.GenesisEntry{{Address: a, Amount: math.MaxUint64}, {Address: accounts.DevAddress("Bob"), Amount: 1}}}
	if err := over.Validate(); err == nil {
		t.Error("overflowing supply accepted")
	}
}

func TestKeeper(t *testing.T) {
	st, err := store.Open(dbm.NewMemDB())
	if err != nil {
		t.Fatal(err)
	}
	kv := store.NewCache(st)
	ctx := &runtime.Context{Store: kv}
	m := keeper.New()
	g := accounts.DevGenesis()
	raw := []byte(`{"params":{"base_fee":5,"per_byte_fee":1,"fee_collector":"` + g.Params.FeeCollector.String() +
		`","sudo":"` + g.Params.Sudo.String() + `"},"balances":[{"address":"` + accounts.DevAddress("Alice").String() + `","amount":100}]}`)
	if err := m.InitGenesis(ctx, raw); err != nil {
		t.Fatal(err)
	}
	alice, bob := accounts.DevAddress("Alice"), accounts.DevAddress("Bob")
	k := m.Keeper
	if err := k.Transfer(ctx, alice, bob, 101); !errors.Is(err, accounts.ErrInsufficientFunds) {
		t.Fatalf("overdraft: %v", err)
	}
	if err := k.Credit(kv, bob, math.MaxUint64); err != nil {
		t.Fatal(err)
	}
	if err := k.Credit(kv, bob, 1); !errors.Is(err, accounts.ErrBalanceOverflow) {
		t.Fatalf("overflow: %v", err)
	}
	body := &tx.Body{Sender: alice, Nonce: 0, Fee: 4}
	if err := k.Ante(ctx, body, 0); !errors.Is(err, types.ErrInsufficientFee) {
		t.Fatalf("fee below base: %v", err)
	}
	body.Fee = 101
	if err := k.Ante(ctx, body, 0); !errors.Is(err, types.ErrUnaffordableFee) {
		t.Fatalf("unaffordable: %v", err)
	}
	body.Fee = 50
	if err := k.Ante(ctx, body, 10); err != nil {
		t.Fatal(err)
	}
	acc, _ := k.Account(kv, alice)
	col, _ := k.Account(kv, g.Params.FeeCollector)
	if acc != (accounts.Account{Balance: 50, Nonce: 1}) || col.Balance != 50 {
		t.Fatalf("after ante: %+v collector %+v", acc, col)
	}
	if err := k.Ante(ctx, body, 10); !errors.Is(err, types.ErrStaleNonce) {
		t.Fatalf("replay: %v", err)
	}

	// set_balance only for sudo.
	call, err := accounts.SetBalanceCall(bob, 7)
	if err != nil {
		t.Fatal(err)
	}
	msg, err := m.DecodeCall(call)
	if err != nil {
		t.Fatal(err)
	}
	ctx.Sender = bob
	if err := m.Execute(ctx, msg); !errors.Is(err, accounts.ErrNotSudo) {
		t.Fatalf("non-sudo set_balance: %v", err)
	}
	ctx.Sender = alice
	if err := m.Execute(ctx, msg); err != nil {
		t.Fatal(err)
	}
	if b, _ := k.Account(kv, bob); b.Balance != 7 {
		t.Fatalf("bob %d", b.Balance)
	}
	if _, err := m.DecodeCall(tx.Call{Module: accounts.Name, Method: "burn"}); !errors.Is(err, types.ErrUnknownCall) {
		t.Fatalf("unknown method: %v", err)
	}
}
