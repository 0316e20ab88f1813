package node

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// Config is the node's own configuration, stored as config/node.json. Flags
// of `start` override it for one run.
type Config struct {
	// Moniker names the node to its peers.
	Moniker string `json:"moniker"`
	// RPCListen is CometBFT's RPC address, host:port (127.0.0.1 by default).
	RPCListen string `json:"rpc_listen"`
	// P2PListen is the p2p address, host:port.
	P2PListen string `json:"p2p_listen"`
	// PersistentPeers are id@host:port entries.
	PersistentPeers []string `json:"persistent_peers,omitempty"`
	// PEX enables peer exchange (address book in config/addrbook.json).
	// Off for dev nodes and loopback testnets, which know their peers.
	PEX bool `json:"pex"`
	// TimeoutCommit is how long a validator waits after a commit before the
	// next height: the block time of an idle chain.
	TimeoutCommit Duration `json:"timeout_commit"`
	// CreateEmptyBlocks keeps producing blocks without transactions.
	// Turning it off saves nothing: every block records its hash in the
	// state, so the app hash changes each block, and CometBFT makes a
	// block whenever the last one changed the app hash.
	CreateEmptyBlocks bool `json:"create_empty_blocks"`
	// CometLogLevel filters CometBFT's own logs: debug, info, warn or error.
	CometLogLevel string `json:"comet_log_level"`
	// MetricsListen is where Prometheus metrics (CometBFT's and the
	// app's) are served under /metrics, host:port; empty serves none.
	MetricsListen string `json:"metrics_listen,omitempty"`
}

// Duration is a time.Duration written as a string ("150ms") in JSON.
type Duration time.Duration

// MarshalJSON writes the duration as a Go duration string.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// UnmarshalJSON reads a Go duration string.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// DefaultConfig is the configuration of a new home.
func DefaultConfig(dev bool) Config {
	c := Config{
		Moniker:           "integritee-node",
		RPCListen:         "127.0.0.1:26657",
		P2PListen:         "0.0.0.0:26656",
		PEX:               true,
		TimeoutCommit:     Duration(time.Second),
		CreateEmptyBlocks: true,
		CometLogLevel:     "error",
		MetricsListen:     "127.0.0.1:26660",
	}
	if dev {
		// Dev homes and local testnets run side by side: no fixed port.
		c.MetricsListen = ""
		c.P2PListen = "127.0.0.1:26656"
		c.PEX = false
		c.TimeoutCommit = Duration(150 * time.Millisecond)
	}
	return c
}

func configPath(home string) string { return filepath.Join(home, "config", "node.json") }

// LoadConfig reads config/node.json of home.
func LoadConfig(home string) (Config, error) {
	var c Config
	b, err := os.ReadFile(configPath(home))
	if err != nil {
		return c, fmt.Errorf("load node config: %w", err)
	}
	if err := json.Unmarshal(b, &c); err != nil {
		return c, fmt.Errorf("load node config %s: %w", configPath(home), err)
	}
	return c, c.Validate()
}

// Validate checks the settings that CometBFT would otherwise reject late.
func (c Config) Validate() error {
	if c.RPCListen == "" || c.P2PListen == "" {
		return errors.New("node config: rpc_listen and p2p_listen are required")
	}
	if c.TimeoutCommit < 0 {
		return errors.New("node config: negative timeout_commit")
	}
	return nil
}

// SaveConfig writes config/node.json of home.
func SaveConfig(home string, c Config) error {
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(configPath(home)), 0o700); err != nil {
		return fmt.Errorf("save node config: %w", err)
	}
	return writeFileAtomic(configPath(home), append(b, '\n'), 0o600)
}

// writeFileAtomic writes through a temporary file and a rename, so that a
// crash never leaves a truncated file.
func writeFileAtomic(path string, data []byte, perm os.FileMode) error {
	f, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Chmod(perm); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}
