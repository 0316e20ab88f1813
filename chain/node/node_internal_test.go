package node

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	dbm "github.com/cometbft/cometbft-db"
)

// Reads after Close answer "absent", never an error CometBFT would panic on.
func TestCloseTolerantDB(t *testing.T) {
	db := &closeTolerantDB{DB: dbm.NewMemDB()}
	if err := db.Set([]byte("k"), []byte("v")); err != nil {
		t.Fatal(err)
	}
	if v, err := db.Get([]byte("k")); err != nil || string(v) != "v" {
		t.Fatalf("Get before Close = %q, %v", v, err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if v, err := db.Get([]byte("k")); err != nil || v != nil {
		t.Fatalf("Get after Close = %q, %v; want absent", v, err)
	}
	if ok, err := db.Has([]byte("k")); err != nil || ok {
		t.Fatalf("Has after Close = %v, %v; want false", ok, err)
	}
	if err := db.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

// node.json's timeout_propose reaches CometBFT; a file without it (from
// before it existed) keeps CometBFT's default; a negative one is refused.
func TestTimeoutPropose(t *testing.T) {
	home := t.TempDir()
	for _, tc := range []struct {
		path, body string
		want       time.Duration
	}{
		{configPath(home), "rpc_listen = '127.0.0.1:1'\np2p_listen = '127.0.0.1:2'\ntimeout_propose = '1.5s'\ntimeout_commit = '1s'\n", 1500 * time.Millisecond},
		{legacyConfigPath(home), `{"rpc_listen": "127.0.0.1:1", "p2p_listen": "127.0.0.1:2", "timeout_propose": "2.5s", "timeout_commit": "1s"}`, 2500 * time.Millisecond},
		// node.json of a release before timeout_propose: CometBFT's default.
		{legacyConfigPath(home), `{"rpc_listen": "127.0.0.1:1", "p2p_listen": "127.0.0.1:2", "timeout_commit": "1s"}`, 3 * time.Second},
	} {
		body := tc.body
		if err := os.MkdirAll(filepath.Join(home, "config"), 0o700); err != nil {
			t.Fatal(err)
		}
		for _, p := range []string{configPath(home), legacyConfigPath(home)} {
			if err := os.Remove(p); err != nil && !os.IsNotExist(err) {
				t.Fatal(err)
			}
		}
		if err := os.WriteFile(tc.path, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		c, err := LoadConfig(home)
		if err != nil {
			t.Fatal(err)
		}
		cc, err := cometConfigFor(home, c)
		if err != nil {
			t.Fatal(err)
		}
		if cc.Consensus.TimeoutPropose != tc.want {
			t.Errorf("%s: CometBFT timeout_propose %v, want %v", body, cc.Consensus.TimeoutPropose, tc.want)
		}
	}
	if DefaultConfig(false).TimeoutPropose != Duration(3*time.Second) {
		t.Errorf("default timeout_propose %v", time.Duration(DefaultConfig(false).TimeoutPropose))
	}
	c := DefaultConfig(true)
	c.TimeoutPropose = Duration(-time.Second)
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "timeout_propose") {
		t.Errorf("negative timeout_propose: %v", err)
	}
}
