package node

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"strconv"
	"time"

	"github.com/cometbft/cometbft/p2p"
	cmttypes "github.com/cometbft/cometbft/types"
)

// TestnetOptions configure a local multi-validator network.
type TestnetOptions struct {
	// ChainID defaults to TestnetChainID (never the dev node's, so that
	// transactions signed for one do not replay on the other).
	ChainID string
	// Dev writes a dev genesis (funded dev accounts, Alice sudo).
	Dev bool
	// BasePort: validator i uses p2p BasePort+2i and RPC BasePort+2i+1, on
	// 127.0.0.1. Default 26600.
	BasePort int
	// TimeoutCommit defaults to 200ms.
	TimeoutCommit time.Duration
	// GenesisTime defaults to now.
	GenesisTime time.Time
	// Modules are genesis entries of modules other than accounts.
	Modules map[string]json.RawMessage
}

// Testnet writes homes out/node0 ... out/node<n-1> for n validators of one
// genesis that connect to each other over loopback, and returns them.
func Testnet(out string, n int, opts TestnetOptions) ([]string, error) {
	if n < 1 || n > 100 {
		return nil, fmt.Errorf("testnet: %d validators, want 1 to 100", n)
	}
	if opts.BasePort == 0 {
		opts.BasePort = 26600
	}
	if opts.BasePort < 1024 || opts.BasePort+2*n > 65535 {
		return nil, fmt.Errorf("testnet: base port %d out of range", opts.BasePort)
	}
	if opts.ChainID == "" {
		opts.ChainID = TestnetChainID
	}
	if opts.TimeoutCommit == 0 {
		opts.TimeoutCommit = 200 * time.Millisecond
	}
	homes := make([]string, n)
	cfgs := make([]Config, n)
	vals := make([]cmttypes.GenesisValidator, n)
	peers := make([]string, n)
	for i := range n {
		homes[i] = filepath.Join(out, "node"+strconv.Itoa(i))
		c := DefaultConfig(true)
		c.Moniker = "node" + strconv.Itoa(i)
		c.P2PListen = "127.0.0.1:" + strconv.Itoa(opts.BasePort+2*i)
		c.RPCListen = "127.0.0.1:" + strconv.Itoa(opts.BasePort+2*i+1)
		c.TimeoutCommit = Duration(opts.TimeoutCommit)
		v, err := initKeys(homes[i], c)
		if err != nil {
			return nil, err
		}
		nk, err := p2p.LoadNodeKey(cometConfig(homes[i]).NodeKeyFile())
		if err != nil {
			return nil, fmt.Errorf("testnet: %w", err)
		}
		cfgs[i], vals[i] = c, v
		peers[i] = string(nk.ID()) + "@" + c.P2PListen
	}
	for i := range n {
		for j := range n {
			if j != i {
				cfgs[i].PersistentPeers = append(cfgs[i].PersistentPeers, peers[j])
			}
		}
		if err := SaveConfig(homes[i], cfgs[i]); err != nil {
			return nil, err
		}
	}
	io := InitOptions{ChainID: opts.ChainID, Dev: opts.Dev, GenesisTime: opts.GenesisTime, Modules: opts.Modules}
	io.defaults()
	if err := writeGenesis(homes, io, vals); err != nil {
		return nil, err
	}
	return homes, nil
}
