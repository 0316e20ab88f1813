// Package nodetest runs in-process dev nodes for the tests of other
// packages (the client, the CLI): loopback ports, fast blocks, stopped at
// the end of the test.
package nodetest

import (
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/integritee-go/integritee/chain/node"
)

// FreePort returns a loopback TCP port that was free a moment ago.
func FreePort(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
}

// Config is the dev configuration of a test node: loopback ports that
// were free a moment ago, 50 ms blocks.
func Config(t testing.TB) node.Config {
	t.Helper()
	c := node.DefaultConfig(true)
	c.RPCListen, c.P2PListen = "127.0.0.1:"+FreePort(t), "127.0.0.1:"+FreePort(t)
	c.TimeoutCommit = node.Duration(50 * time.Millisecond)
	return c
}

// StartDev runs a dev node (50 ms blocks) whose genesis, and so block 1,
// is at genesisTime (zero: now), stops it when the test ends, and returns
// it once it has made block minHeight (within a minute).
func StartDev(t testing.TB, genesisTime time.Time, minHeight int64) *node.Node {
	t.Helper()
	home := t.TempDir()
	c := Config(t)
	if err := node.Init(home, node.InitOptions{Dev: true, Config: &c, GenesisTime: genesisTime}); err != nil {
		t.Fatal(err)
	}
	return Start(t, home, minHeight)
}

// Start runs the node of home with the integritee runtime
// (node.Modules), stops it when the test ends, and returns it once it has
// made block minHeight (within a minute).
func Start(t testing.TB, home string, minHeight int64) *node.Node {
	t.Helper()
	n, err := node.Start(home, node.StartOptions{Modules: node.Modules()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := n.Stop(); err != nil {
			t.Errorf("stop node: %v", err)
		}
	})
	deadline := time.Now().Add(time.Minute)
	for n.Height() < minHeight {
		if time.Now().After(deadline) {
			t.Fatalf("node made no block %d", minHeight)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return n
}
