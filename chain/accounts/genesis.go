package accounts

import (
	"errors"
	"fmt"
	"math/bits"

	"github.com/integritee-go/integritee/chain/tx"
	"github.com/integritee-go/integritee/internal/ed25519x"
)

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
