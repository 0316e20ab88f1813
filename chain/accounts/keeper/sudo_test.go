package keeper_test

import (
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"

	dbm "github.com/cometbft/cometbft-db"

	"github.com/integritee-go/integritee/chain/accounts"
	"github.com/integritee-go/integritee/chain/accounts/keeper"
	"github.com/integritee-go/integritee/chain/runtime"
	"github.com/integritee-go/integritee/chain/store"
	"github.com/integritee-go/integritee/chain/tx"
	"github.com/integritee-go/integritee/internal/ed25519x"
	"github.com/integritee-go/integritee/internal/ed25519x/ed25519xtest"
)

// TestGenesisRefusesUnsignableSudo: a small-order or non-canonical sudo key
// has signatures anyone can forge (issue 9, finding 1), so genesis refuses
// it; the all-zero address, once production genesis's "nobody", is one.
func TestGenesisRefusesUnsignableSudo(t *testing.T) {
	keys := append(slices.Clone(ed25519xtest.SmallOrder), ed25519xtest.NonCanonical...)
	for _, k := range keys {
		t.Run(k.Name, func(t *testing.T) {
			g := accounts.DevGenesis()
			a := tx.Address(k.Key)
			g.Params.Sudo = &a
			err := g.Validate()
			if !errors.Is(err, ed25519x.ErrKeySmallOrder) && !errors.Is(err, ed25519x.ErrKeyNonCanonical) {
				t.Fatalf("got %v, want a small-order or non-canonical key error", err)
			}
		})
	}
	g := accounts.DevGenesis()
	if err := g.Validate(); err != nil {
		t.Fatalf("dev genesis: %v", err)
	}
	g.Params.Sudo = nil
	if err := g.Validate(); err != nil {
		t.Fatalf("genesis without sudo: %v", err)
	}
}

// TestNoSudo: a genesis without sudo says so in JSON ("sudo": null), and
// then set_balance fails with ErrNotSudo for every sender, the all-zero
// address included.
func TestNoSudo(t *testing.T) {
	g := accounts.DevGenesis()
	g.Params.Sudo = nil
	raw, err := json.Marshal(g)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(raw), `"sudo":null`) {
		t.Fatalf("genesis without sudo: %s", raw)
	}
	st, err := store.Open(dbm.NewMemDB())
	if err != nil {
		t.Fatal(err)
	}
	kv := store.NewCache(st)
	m := keeper.New()
	if err := m.InitGenesis(&runtime.Context{Store: kv}, raw); err != nil {
		t.Fatal(err)
	}
	p, err := m.Keeper.Params(kv)
	if err != nil || p.Sudo != nil {
		t.Fatalf("params after genesis: %+v, %v", p, err)
	}
	call, err := accounts.SetBalanceCall(accounts.DevAddress("Bob"), 7)
	if err != nil {
		t.Fatal(err)
	}
	msg, err := m.DecodeCall(call)
	if err != nil {
		t.Fatal(err)
	}
	senders := []tx.Address{{}, accounts.DevAddress("Alice"), accounts.DevAddress("Bob")}
	for _, k := range ed25519xtest.SmallOrder {
		senders = append(senders, tx.Address(k.Key))
	}
	for _, s := range senders {
		if err := m.Execute(&runtime.Context{Store: kv, Sender: s}, msg); !errors.Is(err, accounts.ErrNotSudo) {
			t.Fatalf("set_balance by %s: %v, want %v", s, err, accounts.ErrNotSudo)
		}
	}
}

// TestZeroSudoInOldState: a state written from a genesis before validation
// refused it may name the all-zero address as sudo; it stays nobody.
func TestZeroSudoInOldState(t *testing.T) {
	st, err := store.Open(dbm.NewMemDB())
	if err != nil {
		t.Fatal(err)
	}
	kv := store.NewCache(st)
	var k keeper.Keeper
	zero := tx.Address{}
	if err := k.SetParams(kv, accounts.Params{FeeCollector: accounts.FeeCollectorAddress(), Sudo: &zero}); err != nil {
		t.Fatal(err)
	}
	if ok, err := k.IsSudo(kv, zero); err != nil || ok {
		t.Fatalf("IsSudo(zero) = %v, %v", ok, err)
	}
	alice := accounts.DevAddress("Alice")
	if err := k.SetParams(kv, accounts.Params{FeeCollector: accounts.FeeCollectorAddress(), Sudo: &alice}); err != nil {
		t.Fatal(err)
	}
	if ok, err := k.IsSudo(kv, alice); err != nil || !ok {
		t.Fatalf("IsSudo(Alice) = %v, %v", ok, err)
	}
}
