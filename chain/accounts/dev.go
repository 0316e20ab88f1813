package accounts

import (
	"crypto/ed25519"
	"crypto/sha256"

	"github.com/integritee-go/integritee/chain/tx"
)

// DevNames are the well-known development accounts, funded in dev genesis.
var DevNames = []string{"Alice", "Bob", "Charlie", "Dave", "Eve", "Ferdie"}

// Unit is one TEER in the smallest balance unit (12 decimals).
const Unit uint64 = 1_000_000_000_000

// Dev genesis parameters.
const (
	DevBalance    = 1000 * Unit
	DevBaseFee    = 1_000_000 // one micro-TEER per transaction ...
	DevPerByteFee = 1_000     // ... plus one nano-TEER per byte
)

// DevKey returns the well-known key of a development account:
// ed25519.NewKeyFromSeed(sha256("//" + name)), e.g. sha256("//Alice").
// Anyone can derive it: never fund these keys on a real chain.
func DevKey(name string) ed25519.PrivateKey {
	seed := sha256.Sum256([]byte("//" + name))
	return ed25519.NewKeyFromSeed(seed[:])
}

// DevAddress returns the address of a development account.
func DevAddress(name string) tx.Address {
	return tx.AddressOf(DevKey(name).Public().(ed25519.PublicKey))
}

// FeeCollectorAddress is the account that receives fees:
// sha256("integritee/fee-collector"). It is not an ed25519 key anyone holds,
// so nobody can spend from it by transaction.
func FeeCollectorAddress() tx.Address {
	return tx.Address(sha256.Sum256([]byte("integritee/fee-collector")))
}

// DevGenesis returns the accounts genesis of a development chain: every dev
// account holds DevBalance and Alice is sudo.
func DevGenesis() GenesisState {
	alice := DevAddress("Alice")
	g := GenesisState{Params: Params{
		BaseFee:      DevBaseFee,
		PerByteFee:   DevPerByteFee,
		FeeCollector: FeeCollectorAddress(),
		Sudo:         &alice,
	}}
	for _, n := range DevNames {
		g.Balances = append(g.Balances, GenesisEntry{Address: DevAddress(n), Amount: DevBalance})
	}
	return g
}
