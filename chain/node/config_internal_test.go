package node

import (
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// TestInitConfigFile: init writes config/node.toml with every setting and
// a comment for each; read back it is the default configuration, and the
// CometBFT configuration made of it is the one the defaults make.
func TestInitConfigFile(t *testing.T) {
	for _, dev := range []bool{true, false} {
		home := t.TempDir()
		if err := Init(home, InitOptions{Dev: dev}); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(legacyConfigPath(home)); !os.IsNotExist(err) {
			t.Fatalf("init wrote %s: %v", LegacyConfigFile, err)
		}
		b, err := os.ReadFile(configPath(home))
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(string(b), "\n")
		typ := reflect.TypeFor[Config]()
		for i := range typ.NumField() {
			key := typ.Field(i).Tag.Get("toml")
			at := -1
			for j, l := range lines {
				if strings.HasPrefix(l, key+" = ") {
					at = j
				}
			}
			if at < 1 || !strings.HasPrefix(lines[at-1], "# ") {
				t.Errorf("setting %s missing or without a comment in\n%s", key, b)
			}
		}
		got, err := LoadConfig(home)
		if err != nil {
			t.Fatal(err)
		}
		if want := DefaultConfig(dev); !reflect.DeepEqual(got, want) {
			t.Fatalf("dev %v: file reads as %+v, want %+v", dev, got, want)
		}
		fromFile, err := cometConfigFor(home, got)
		if err != nil {
			t.Fatal(err)
		}
		fromDefaults, err := cometConfigFor(home, DefaultConfig(dev))
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(fromFile, fromDefaults) {
			t.Fatalf("dev %v: CometBFT config of the file differs from the defaults'", dev)
		}
	}
}

// TestStartFromConfigFile: a node starts from the file init wrote with its
// settings; the start options (the --rpc and --p2p flags) override it.
func TestStartFromConfigFile(t *testing.T) {
	home := t.TempDir()
	c := DefaultConfig(true)
	c.RPCListen, c.P2PListen = freeAddr(t), freeAddr(t)
	c.Moniker = "from-the-file"
	if err := Init(home, InitOptions{Dev: true, Config: &c}); err != nil {
		t.Fatal(err)
	}
	rpc := freeAddr(t)
	n, err := Start(home, StartOptions{RPCListen: rpc})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := n.Stop(); err != nil {
			t.Error(err)
		}
	}()
	want := c
	want.RPCListen = rpc
	if !reflect.DeepEqual(n.cfg, want) {
		t.Fatalf("running with %+v, want %+v", n.cfg, want)
	}
	if n.RPCAddress() != "http://"+rpc {
		t.Fatalf("RPC at %s, want the flag's %s", n.RPCAddress(), rpc)
	}
	// The RPC and p2p ports listen where they should.
	for _, addr := range []string{rpc, c.P2PListen} {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatalf("nothing listens on %s: %v", addr, err)
		}
		conn.Close()
	}
	// CometBFT runs with the file's settings.
	cc := n.cmt.Config()
	if cc.Moniker != "from-the-file" || cc.Consensus.TimeoutCommit != 150*time.Millisecond || cc.P2P.PexReactor || cc.RPC.ListenAddress != "tcp://"+rpc {
		t.Fatalf("CometBFT config: moniker %q, timeout_commit %v, pex %v, rpc %s", cc.Moniker, cc.Consensus.TimeoutCommit, cc.P2P.PexReactor, cc.RPC.ListenAddress)
	}
}

func writeConfigFile(t *testing.T, home, text string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Join(home, "config"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(configPath(home), []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestLoadConfigRefuses(t *testing.T) {
	valid, err := MarshalConfig(DefaultConfig(false))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, text, want string
	}{
		{"unknown key", string(valid) + "timeout_propose_typo = '3s'\n", `unknown setting "timeout_propose_typo" (line `},
		{"unknown table", string(valid) + "[p2p]\nladdr = 'x'\n", `unknown setting "p2p" (line `},
		{"wrong type", strings.Replace(string(valid), "pex = true", "pex = 'yes'", 1), "node.toml:"},
		{"bad duration", strings.Replace(string(valid), "timeout_commit = '1s'", "timeout_commit = 'soon'", 1), "node.toml:"},
		{"number for duration", strings.Replace(string(valid), "timeout_commit = '1s'", "timeout_commit = 1", 1), `timeout_commit: want a duration as a string like "1s", got 1`},
		{"bad log level", strings.Replace(string(valid), "log_level = 'info'", "log_level = 'loud'", 1), `log_level "loud"`},
		{"empty listen", strings.Replace(string(valid), "rpc_listen = '127.0.0.1:26657'", "rpc_listen = ''", 1), "rpc_listen and p2p_listen are required"},
		{"syntax", "moniker = \n", "node.toml:1:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.text == string(valid) {
				t.Fatal("the case changed nothing")
			}
			home := t.TempDir()
			writeConfigFile(t, home, tt.text)
			_, err := LoadConfig(home)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
			if _, err := Start(home, StartOptions{}); err == nil {
				t.Fatal("a node started with the file")
			}
		})
	}
	// A key left out takes the production default.
	home := t.TempDir()
	writeConfigFile(t, home, "moniker = 'short'\n")
	got, err := LoadConfig(home)
	want := DefaultConfig(false)
	want.Moniker = "short"
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("partial file: %+v, %v", got, err)
	}
}

// TestLegacyNodeJSON: a home of an earlier release, with config/node.json
// (no log_level), still loads; one with both files is refused.
func TestLegacyNodeJSON(t *testing.T) {
	home := t.TempDir()
	old := map[string]any{
		"moniker": "old", "rpc_listen": "127.0.0.1:1", "p2p_listen": "127.0.0.1:2", "pex": false,
		"timeout_commit": "150ms", "create_empty_blocks": true, "comet_log_level": "error",
	}
	b, err := json.Marshal(old)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(home, "config"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(legacyConfigPath(home), b, 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := LoadConfig(home)
	want := Config{Moniker: "old", RPCListen: "127.0.0.1:1", P2PListen: "127.0.0.1:2", TimeoutCommit: Duration(150 * time.Millisecond),
		CreateEmptyBlocks: true, CometLogLevel: "error", LogLevel: "info"}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("node.json: %+v, %v", got, err)
	}
	writeConfigFile(t, home, "moniker = 'new'\n")
	if _, err := LoadConfig(home); err == nil || !strings.Contains(err.Error(), "remove one") {
		t.Fatalf("both files: %v", err)
	}
}
