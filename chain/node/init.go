package node

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	cmtcfg "github.com/cometbft/cometbft/config"
	"github.com/cometbft/cometbft/p2p"
	"github.com/cometbft/cometbft/privval"
	cmttypes "github.com/cometbft/cometbft/types"

	"github.com/integritee-go/integritee/chain"
	"github.com/integritee-go/integritee/chain/accounts"
	"github.com/integritee-go/integritee/chain/teerex"
)

// Default chain IDs.
const (
	DevChainID   = "integritee-dev"
	LocalChainID = "integritee-local"
	// TestnetChainID is the default of Testnet: a testnet's dev genesis
	// funds the same dev keys as a dev node, and only the chain ID in
	// the signed body keeps a transaction for one from replaying on
	// the other.
	TestnetChainID = "integritee-testnet"
)

// ErrHomeExists is returned by Init for a home that already has a genesis.
var ErrHomeExists = errors.New("home already initialized")

// InitOptions configure a new home.
type InitOptions struct {
	// ChainID defaults to DevChainID with Dev, else LocalChainID.
	ChainID string
	// Dev writes a development genesis: the dev accounts (accounts.DevNames)
	// are funded, Alice is sudo, and the chain runs in dev mode.
	Dev bool
	// Config defaults to DefaultConfig(Dev).
	Config *Config
	// Accounts overrides the accounts genesis. Without it a dev chain gets
	// accounts.DevGenesis() and any other chain the dev parameters with no
	// balances and no sudo ("sudo": null): edit app_state before the first
	// start to name one.
	Accounts *accounts.GenesisState
	// GenesisTime defaults to now.
	GenesisTime time.Time
	// Modules holds the genesis entries (app_state keys) of modules other
	// than accounts, e.g. "teerex". Without a "teerex" entry a dev chain
	// gets devnet.TeerexGenesis(GenesisTime) (the sim dev root, with dev
	// collateral valid for devnet.CollateralValidity) and any other
	// chain teerex.ProductionGenesis() (Intel's roots, no collateral, no
	// allowlisted measurement: sudo adds them).
	Modules map[string]json.RawMessage
}

func (o *InitOptions) defaults() {
	if o.ChainID == "" {
		o.ChainID = LocalChainID
		if o.Dev {
			o.ChainID = DevChainID
		}
	}
	if o.Config == nil {
		c := DefaultConfig(o.Dev)
		o.Config = &c
	}
	if o.GenesisTime.IsZero() {
		o.GenesisTime = time.Now().UTC()
	}
}

func cometConfig(home string) *cmtcfg.Config {
	c := cmtcfg.DefaultConfig()
	c.SetRoot(home)
	return c
}

// Init creates a one-validator home: keys, node.toml and genesis.
func Init(home string, opts InitOptions) error {
	opts.defaults()
	v, err := initKeys(home, *opts.Config)
	if err != nil {
		return err
	}
	return writeGenesis([]string{home}, opts, []cmttypes.GenesisValidator{v})
}

// initKeys creates the directories, validator key, node key and node.toml.
func initKeys(home string, c Config) (cmttypes.GenesisValidator, error) {
	var v cmttypes.GenesisValidator
	cc := cometConfig(home)
	if _, err := os.Stat(cc.GenesisFile()); err == nil {
		return v, fmt.Errorf("init %s: %w", home, ErrHomeExists)
	}
	for _, dir := range []string{filepath.Dir(cc.GenesisFile()), cc.DBDir()} {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return v, fmt.Errorf("init %s: %w", home, err)
		}
	}
	if err := SaveConfig(home, c); err != nil {
		return v, err
	}
	pv := privval.GenFilePV(cc.PrivValidatorKeyFile(), cc.PrivValidatorStateFile())
	pv.Save()
	if _, err := p2p.LoadOrGenNodeKey(cc.NodeKeyFile()); err != nil {
		return v, fmt.Errorf("init %s: node key: %w", home, err)
	}
	pub, err := pv.GetPubKey()
	if err != nil {
		return v, fmt.Errorf("init %s: %w", home, err)
	}
	return cmttypes.GenesisValidator{Address: pub.Address(), PubKey: pub, Power: 10, Name: c.Moniker}, nil
}

// writeGenesis writes the same genesis into every home.
func writeGenesis(homes []string, opts InitOptions, vals []cmttypes.GenesisValidator) error {
	ag := opts.Accounts
	if ag == nil {
		g := accounts.DevGenesis()
		if !opts.Dev {
			g.Balances = nil
			g.Params.Sudo = nil
		}
		ag = &g
	}
	if err := ag.Validate(); err != nil {
		return err
	}
	acc, err := json.Marshal(ag)
	if err != nil {
		return err
	}
	mods := map[string]json.RawMessage{accounts.Name: acc}
	for name, raw := range opts.Modules {
		if name == accounts.Name || name == "dev" {
			return fmt.Errorf("genesis: module entry %q is reserved", name)
		}
		mods[name] = raw
	}
	if _, ok := mods[teerex.Name]; !ok {
		// Made here, once, so that every home gets the same bytes.
		if mods[teerex.Name], err = teerexGenesis(opts.Dev, opts.GenesisTime); err != nil {
			return err
		}
	}
	appState, err := json.Marshal(chain.AppState{Dev: opts.Dev, Modules: mods})
	if err != nil {
		return err
	}
	gen := &cmttypes.GenesisDoc{
		GenesisTime:     opts.GenesisTime,
		ChainID:         opts.ChainID,
		InitialHeight:   1,
		ConsensusParams: cmttypes.DefaultConsensusParams(),
		Validators:      vals,
		AppState:        appState,
	}
	if err := gen.ValidateAndComplete(); err != nil {
		return fmt.Errorf("genesis: %w", err)
	}
	for _, h := range homes {
		if err := gen.SaveAs(cometConfig(h).GenesisFile()); err != nil {
			return fmt.Errorf("write genesis in %s: %w", h, err)
		}
	}
	return nil
}
