package node

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"time"

	"github.com/pelletier/go-toml/v2"
)

// Config is the node's own configuration, stored as config/node.toml
// (commented, see SaveConfig; homes of earlier releases have
// config/node.json, which LoadConfig still reads). Flags of `start`
// override it for one run.
type Config struct {
	// Moniker names the node to its peers.
	Moniker string `json:"moniker" toml:"moniker" comment:"moniker names the node to its peers"`
	// RPCListen is CometBFT's RPC address, host:port (127.0.0.1 by default).
	RPCListen string `json:"rpc_listen" toml:"rpc_listen" comment:"CometBFT RPC listen address, host:port (loopback by default: CometBFT's RPC has\nno authentication; expose it through a proxy). Flag: --rpc"`
	// P2PListen is the p2p address, host:port.
	P2PListen string `json:"p2p_listen" toml:"p2p_listen" comment:"p2p listen address, host:port. Flag: --p2p"`
	// PersistentPeers are id@host:port entries.
	PersistentPeers []string `json:"persistent_peers,omitempty" toml:"persistent_peers" comment:"peers to keep connected to: \"NODE_ID@host:port\" (NODE_ID from config/node_key.json)"`
	// PEX enables peer exchange (address book in config/addrbook.json).
	// Off for dev nodes and loopback testnets, which know their peers.
	PEX bool `json:"pex" toml:"pex" comment:"peer exchange: learn and share peer addresses (address book in config/addrbook.json)"`
	// TimeoutCommit is how long a validator waits after a commit before the
	// next height: the block time of an idle chain.
	TimeoutCommit Duration `json:"timeout_commit" toml:"timeout_commit" comment:"how long a validator waits after a commit before the next height: the block\ntime of an idle chain (a Go duration: \"1s\", \"150ms\")"`
	// TimeoutPropose is how long validators wait for a round's proposal
	// before they vote nil and move to the next round (and proposer): what
	// a dead or slow proposer costs each of its turns. It grows by 500 ms
	// per round of a height (CometBFT's timeout_propose_delta). Absent
	// (files from before it): CometBFT's default, 3s.
	TimeoutPropose Duration `json:"timeout_propose,omitempty" toml:"timeout_propose" comment:"how long validators wait for a round's proposal before they vote nil and move\nto the next proposer: what a dead proposer costs each of its turns (a Go duration)"`
	// CreateEmptyBlocks keeps producing blocks without transactions.
	// Turning it off saves nothing: every block records its hash in the
	// state, so the app hash changes each block, and CometBFT makes a
	// block whenever the last one changed the app hash.
	CreateEmptyBlocks bool `json:"create_empty_blocks" toml:"create_empty_blocks" comment:"produce blocks without transactions (turning it off saves nothing: every block\nchanges the app hash, and CometBFT makes a block after one that did)"`
	// CometLogLevel filters CometBFT's own logs: debug, info, warn or error.
	CometLogLevel string `json:"comet_log_level" toml:"comet_log_level" comment:"level of CometBFT's own logs: debug, info, warn or error"`
	// LogLevel filters the node's other logs (the application's); the
	// --log-level flag overrides it. Empty in node.json of earlier
	// releases: info.
	LogLevel string `json:"log_level,omitempty" toml:"log_level" comment:"level of the node's own logs: debug, info, warn or error. Flag: --log-level"`
	// MetricsListen is where Prometheus metrics (CometBFT's and the
	// app's) are served under /metrics, host:port; empty serves none.
	MetricsListen string `json:"metrics_listen,omitempty" toml:"metrics_listen" comment:"serve Prometheus metrics (CometBFT's and the app's) under /metrics on host:port;\nempty serves none. Flag: --metrics"`
}

// Duration is a time.Duration written as a string ("150ms") in JSON and
// TOML.
type Duration time.Duration

// MarshalText writes the duration as a Go duration string.
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// UnmarshalText reads a Go duration string.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
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
		TimeoutPropose:    Duration(3 * time.Second),
		CreateEmptyBlocks: true,
		CometLogLevel:     "error",
		LogLevel:          "info",
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

// ConfigFile and LegacyConfigFile are the node's settings in a home:
// node.toml, written by this release, and node.json of earlier ones.
const (
	ConfigFile       = "node.toml"
	LegacyConfigFile = "node.json"
)

func configPath(home string) string { return filepath.Join(home, "config", ConfigFile) }

func legacyConfigPath(home string) string { return filepath.Join(home, "config", LegacyConfigFile) }

// LoadConfig reads the node's settings of home: config/node.toml, or
// config/node.json of a home of an earlier release. A key of node.toml
// that is not a setting is an error; one left out has the default of a
// production home (DefaultConfig(false)).
func LoadConfig(home string) (Config, error) {
	tb, terr := os.ReadFile(configPath(home))
	jb, jerr := os.ReadFile(legacyConfigPath(home))
	switch {
	case terr == nil && jerr == nil:
		return Config{}, fmt.Errorf("load node config: both %s and %s: %s of this release replaces %s, remove one",
			configPath(home), legacyConfigPath(home), ConfigFile, LegacyConfigFile)
	case terr == nil:
		return decodeTOML(configPath(home), tb)
	case errors.Is(terr, fs.ErrNotExist) && jerr == nil:
		var c Config
		if err := json.Unmarshal(jb, &c); err != nil {
			return c, fmt.Errorf("load node config %s: %w", legacyConfigPath(home), err)
		}
		if c.LogLevel == "" {
			c.LogLevel = "info"
		}
		return c, c.Validate()
	}
	return Config{}, fmt.Errorf("load node config: %w", terr)
}

// decodeTOML reads node.toml strictly: every key must be a setting.
func decodeTOML(path string, b []byte) (Config, error) {
	c := DefaultConfig(false)
	d := toml.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	if err := d.Decode(&c); err != nil {
		var strict *toml.StrictMissingError
		var de *toml.DecodeError
		switch {
		case errors.As(err, &strict):
			var keys []string
			for _, e := range strict.Errors {
				row, _ := e.Position()
				keys = append(keys, fmt.Sprintf("%q (line %d)", strings.Join(e.Key(), "."), row))
			}
			return c, fmt.Errorf("load node config %s: unknown setting %s; the settings are those 'integritee-node init' writes",
				path, strings.Join(keys, ", "))
		case errors.As(err, &de):
			row, col := de.Position()
			return c, fmt.Errorf("load node config %s:%d:%d: %w", path, row, col, err)
		}
		return c, fmt.Errorf("load node config %s: %w", path, err)
	}
	// A bare number would decode into a Duration as nanoseconds.
	var doc map[string]any
	if err := toml.Unmarshal(b, &doc); err != nil {
		return c, fmt.Errorf("load node config %s: %w", path, err)
	}
	typ := reflect.TypeFor[Config]()
	for i := range typ.NumField() {
		f := typ.Field(i)
		if v, ok := doc[f.Tag.Get("toml")]; ok && f.Type == reflect.TypeFor[Duration]() {
			if _, ok := v.(string); !ok {
				return c, fmt.Errorf("load node config %s: %s: want a duration as a string like \"1s\", got %v", path, f.Tag.Get("toml"), v)
			}
		}
	}
	if len(c.PersistentPeers) == 0 {
		c.PersistentPeers = nil
	}
	if err := c.Validate(); err != nil {
		return c, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

// Validate checks the settings that CometBFT would otherwise reject late.
func (c Config) Validate() error {
	if c.RPCListen == "" || c.P2PListen == "" {
		return errors.New("node config: rpc_listen and p2p_listen are required")
	}
	if c.TimeoutCommit < 0 {
		return errors.New("node config: negative timeout_commit")
	}
	if c.TimeoutPropose < 0 {
		return errors.New("node config: negative timeout_propose")
	}
	for _, l := range []struct{ name, v string }{{"comet_log_level", c.CometLogLevel}, {"log_level", c.LogLevel}} {
		var lv slog.Level
		if err := lv.UnmarshalText([]byte(l.v)); l.v != "" && err != nil {
			return fmt.Errorf("node config: %s %q: want debug, info, warn or error", l.name, l.v)
		}
	}
	return nil
}

// SaveConfig writes config/node.toml of home, every setting with a comment
// that says what it does.
func SaveConfig(home string, c Config) error {
	b, err := MarshalConfig(c)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(configPath(home)), 0o700); err != nil {
		return fmt.Errorf("save node config: %w", err)
	}
	return writeFileAtomic(configPath(home), b, 0o600)
}

// MarshalConfig is the commented node.toml of c.
func MarshalConfig(c Config) ([]byte, error) {
	b, err := toml.Marshal(c)
	if err != nil {
		return nil, fmt.Errorf("node config: %w", err)
	}
	var out bytes.Buffer
	out.WriteString(`# integritee-node settings (config/node.toml), written by 'integritee-node init'.
# Flags of 'integritee-node start' (--rpc, --p2p, --log-level) override them for
# one run. Unknown keys are refused; a key left out takes the default of a
# production home. CometBFT's own config.toml is not read: these are the
# settings the node applies to it.
`)
	// A blank line before each setting's comment.
	prevComment := false
	for _, line := range strings.SplitAfter(string(b), "\n") {
		isComment := strings.HasPrefix(line, "#")
		if isComment && !prevComment {
			out.WriteByte('\n')
		}
		prevComment = isComment
		out.WriteString(line)
	}
	return out.Bytes(), nil
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
