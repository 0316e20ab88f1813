// Command integritee-node runs the integritee chain: CometBFT consensus
// embedded in-process with the integritee application.
//
//	integritee-node init --home DIR [--dev] [--chain-id ID] [--rpc HOST:PORT] [--p2p HOST:PORT]
//	integritee-node start --home DIR [--rpc HOST:PORT] [--p2p HOST:PORT]
//	integritee-node --dev [--home DIR] [--rpc HOST:PORT]
//	integritee-node testnet --n N --out DIR [--base-port P] [--chain-id ID]
//	integritee-node version
//
// SIGINT or SIGTERM stops the node cleanly; a restart resumes from the last
// committed block.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	"github.com/integritee-go/integritee/chain"
	"github.com/integritee-go/integritee/chain/accounts"
	"github.com/integritee-go/integritee/chain/devnet"
	"github.com/integritee-go/integritee/chain/node"
)

const usage = `usage:
  integritee-node init --home DIR [--dev] [--chain-id ID] [--rpc HOST:PORT] [--p2p HOST:PORT]
  integritee-node start --home DIR [--rpc HOST:PORT] [--p2p HOST:PORT]
  integritee-node --dev [--home DIR] [--rpc HOST:PORT] [--p2p HOST:PORT]
  integritee-node testnet --n N --out DIR [--base-port PORT] [--chain-id ID]
  integritee-node version
common flags: --log-level debug|info|warn|error (default info)
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "integritee-node:", err)
		stop()
		os.Exit(1)
	}
}

// run executes one command; ctx ends a running node.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errors.New("no command")
	}
	cmd := args[0]
	if strings.HasPrefix(cmd, "-") {
		cmd = "dev" // integritee-node --dev [...]
	} else {
		args = args[1:]
	}
	fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, usage) }
	home := fs.String("home", "", "node home directory")
	logLevel := fs.String("log-level", "info", "log level: debug, info, warn, error")
	rpc := fs.String("rpc", "", "RPC listen address HOST:PORT")
	p2p := fs.String("p2p", "", "p2p listen address HOST:PORT")
	chainID := fs.String("chain-id", "", "chain ID")
	dev := fs.Bool("dev", false, "development chain (funded dev accounts, Alice is sudo, short blocks)")
	n := fs.Int("n", 4, "testnet: number of validators")
	out := fs.String("out", "", "testnet: output directory")
	basePort := fs.Int("base-port", 26600, "testnet: first port (p2p BASE+2i, rpc BASE+2i+1)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		return fmt.Errorf("--log-level: %w", err)
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))

	switch cmd {
	case "version":
		fmt.Fprintf(stdout, "integritee-node %s (app version %d, CometBFT %s)\n", chain.Version, chain.AppVersion, cometVersion())
		return nil
	case "init":
		if *home == "" {
			return errors.New("init: --home is required")
		}
		return initHome(*home, *dev, *chainID, *rpc, *p2p, stdout)
	case "start":
		if *home == "" {
			return errors.New("start: --home is required")
		}
		return node.Run(ctx, *home, node.StartOptions{Logger: log, RPCListen: *rpc, P2PListen: *p2p, Modules: node.Modules()})
	case "dev":
		if !*dev {
			return fmt.Errorf("unknown flag %q (did you mean --dev?)", args[0])
		}
		return runDev(ctx, *home, *chainID, *rpc, *p2p, log, stdout)
	case "testnet":
		if *out == "" {
			return errors.New("testnet: --out is required")
		}
		homes, err := node.Testnet(*out, *n, node.TestnetOptions{ChainID: *chainID, Dev: true, BasePort: *basePort})
		if err != nil {
			return err
		}
		for i, h := range homes {
			fmt.Fprintf(stdout, "validator %d: integritee-node start --home %s   (rpc http://127.0.0.1:%d)\n", i, h, *basePort+2*i+1)
		}
		return nil
	}
	fs.Usage()
	return fmt.Errorf("unknown command %q", cmd)
}

func initHome(home string, dev bool, chainID, rpc, p2p string, stdout io.Writer) error {
	c := node.DefaultConfig(dev)
	if rpc != "" {
		c.RPCListen = rpc
	}
	if p2p != "" {
		c.P2PListen = p2p
	}
	if err := node.Init(home, node.InitOptions{ChainID: chainID, Dev: dev, Config: &c}); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "initialized %s (chain %q, dev %v): start it with integritee-node start --home %s\n", home, orDefault(chainID, dev), dev, home)
	if !dev {
		fmt.Fprintf(stdout, "production genesis: no balances and no sudo (\"sudo\": null; name a key's hex address to have one), teerex trusts Intel's roots with no collateral and no allowed MRENCLAVE; edit app_state in %s before the first start\n",
			filepath.Join(home, "config", "genesis.json"))
	}
	return nil
}

func orDefault(chainID string, dev bool) string {
	switch {
	case chainID != "":
		return chainID
	case dev:
		return node.DevChainID
	}
	return node.LocalChainID
}

// runDev initializes home if needed (a temporary one, removed on exit, if
// none is given) and runs one validator.
func runDev(ctx context.Context, home, chainID, rpc, p2p string, log *slog.Logger, stdout io.Writer) error {
	if home == "" {
		tmp, err := os.MkdirTemp("", "integritee-dev-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		home = tmp
	}
	if _, err := os.Stat(filepath.Join(home, "config", "genesis.json")); errors.Is(err, os.ErrNotExist) {
		c := node.DefaultConfig(true)
		if err := node.Init(home, node.InitOptions{ChainID: chainID, Dev: true, Config: &c}); err != nil {
			return err
		}
	} else if err != nil {
		return err
	}
	n, err := node.Start(home, node.StartOptions{Logger: log, RPCListen: rpc, P2PListen: p2p, Modules: node.Modules()})
	if err != nil {
		return err
	}
	printDevInfo(stdout, home, n)
	<-ctx.Done()
	stopCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- n.Stop() }()
	select {
	case err := <-done:
		return err
	case <-stopCtx.Done():
		return errors.New("stop timed out")
	}
}

// printDevInfo tells the user of a dev node where it is and what it holds.
func printDevInfo(w io.Writer, home string, n *node.Node) {
	fmt.Fprintf(w, "dev node: home %s, chain %s, rpc %s\n", home, n.ChainID(), n.RPCAddress())
	fmt.Fprintf(w, "dev accounts (%d TEER each; key = ed25519 seed sha256(\"//Name\"); Alice is sudo):\n", accounts.DevBalance/accounts.Unit)
	for _, name := range accounts.DevNames {
		fmt.Fprintf(w, "  %-8s %s\n", name, accounts.DevAddress(name))
	}
	if gen, err := node.Genesis(home); err == nil {
		if st, err := node.AppState(gen); err == nil && st.Dev {
			fmt.Fprintf(w, "teerex: dev mode, sim enclaves (tee/sim dev root) register until %s\n",
				gen.GenesisTime.Add(devnet.CollateralValidity).UTC().Format(time.DateOnly))
		}
	}
	fmt.Fprintf(w, "try: integritee-cli balance alice --node %s\n", n.RPCAddress())
}

// cometVersion is the CometBFT module version the binary was built with.
func cometVersion() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, d := range bi.Deps {
			if d.Path == "github.com/cometbft/cometbft" {
				return d.Version
			}
		}
	}
	return "unknown"
}
