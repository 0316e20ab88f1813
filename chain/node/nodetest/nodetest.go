// Package nodetest runs in-process dev nodes for the tests of other
// packages (the client, the CLI): loopback ports, fast blocks, stopped at
// the end of the test.
package nodetest

import (
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/integritee-go/integritee/chain/node"
	"github.com/integritee-go/integritee/internal/freeport"
)

// FreePort returns a loopback TCP port that was free a moment ago, below
// the kernel's ephemeral range (freeport).
func FreePort(t testing.TB) string {
	t.Helper()
	p, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func freePort() (string, error) {
	a, err := freeport.Addr()
	if err != nil {
		return "", err
	}
	_, port, err := net.SplitHostPort(a)
	return port, err
}

// Config is the dev configuration of a test node: loopback ports that
// were free a moment ago, 50 ms blocks.
func Config(t testing.TB) node.Config {
	t.Helper()
	c, err := devConfig()
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func devConfig() (node.Config, error) {
	c := node.DefaultConfig(true)
	rpcPort, err := freePort()
	if err != nil {
		return c, err
	}
	p2pPort, err := freePort()
	if err != nil {
		return c, err
	}
	c.RPCListen, c.P2PListen = "127.0.0.1:"+rpcPort, "127.0.0.1:"+p2pPort
	c.TimeoutCommit = node.Duration(50 * time.Millisecond)
	return c, nil
}

// StartDev runs a dev node (50 ms blocks) whose genesis, and so block 1,
// is at genesisTime (zero: now), stops it when the test ends, and returns
// it once it has made block minHeight (within a minute).
func StartDev(t testing.TB, genesisTime time.Time, minHeight int64) *node.Node {
	t.Helper()
	n, err := Dev(t.TempDir(), genesisTime, minHeight)
	if err != nil {
		t.Fatal(err)
	}
	stopAtEnd(t, n)
	return n
}

// Start runs the node of home with the integritee runtime
// (node.Modules), stops it when the test ends, and returns it once it has
// made block minHeight (within a minute).
func Start(t testing.TB, home string, minHeight int64) *node.Node {
	t.Helper()
	n, err := start(home, minHeight)
	if err != nil {
		t.Fatal(err)
	}
	stopAtEnd(t, n)
	return n
}

func stopAtEnd(t testing.TB, n *node.Node) {
	t.Cleanup(func() {
		if err := n.Stop(); err != nil {
			t.Errorf("stop node: %v", err)
		}
	})
}

// Dev is StartDev for code without a testing.TB, such as an Example: it
// runs the node in home, an empty directory, and the caller stops it.
func Dev(home string, genesisTime time.Time, minHeight int64) (*node.Node, error) {
	c, err := devConfig()
	if err != nil {
		return nil, err
	}
	if err := node.Init(home, node.InitOptions{Dev: true, Config: &c, GenesisTime: genesisTime}); err != nil {
		return nil, err
	}
	return start(home, minHeight)
}

// start runs the node of home and waits for block minHeight.
func start(home string, minHeight int64) (*node.Node, error) {
	n, err := node.Start(home, node.StartOptions{Modules: node.Modules()})
	if err != nil {
		return nil, err
	}
	deadline := time.Now().Add(time.Minute)
	for n.Height() < minHeight {
		if time.Now().After(deadline) {
			n.Stop()
			return nil, fmt.Errorf("nodetest: node made no block %d", minHeight)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return n, nil
}
