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
		json string
		want time.Duration
	}{
		{`"timeout_propose": "1.5s",`, 1500 * time.Millisecond},
		{``, 3 * time.Second},
	} {
		body := `{"rpc_listen": "127.0.0.1:1", "p2p_listen": "127.0.0.1:2", ` + tc.json + ` "timeout_commit": "1s"}`
		if err := os.MkdirAll(filepath.Join(home, "config"), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(configPath(home), []byte(body), 0o600); err != nil {
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
			t.Errorf("node.json %s: CometBFT timeout_propose %v, want %v", body, cc.Consensus.TimeoutPropose, tc.want)
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
