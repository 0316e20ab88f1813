// Command integritee-node runs the integritee chain: CometBFT consensus
// embedded in-process with the integritee application.
//
//	integritee-node init --home DIR [--dev] [--chain-id ID] [--rpc HOST:PORT] [--p2p HOST:PORT]
//	                     (writes config/node.toml, every setting commented)
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
	"path/filepath"
	"runtime/debug"
	"time"

	"github.com/integritee-go/integritee/chain"
	"github.com/integritee-go/integritee/chain/accounts"
	"github.com/integritee-go/integritee/chain/devnet"
	"github.com/integritee-go/integritee/chain/node"
	"github.com/integritee-go/integritee/internal/cli"
)

func main() {
	cli.Main(commands(os.Stdout, os.Stderr))
}

// run executes one command line; ctx ends a running node.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return cli.Run(ctx, commands(stdout, stderr), args, stdout)
}

// commands is the command tree. Without a command, --dev runs a dev node;
// every command takes only its own flags.
func commands(stdout, stderr io.Writer) *cli.Command {
	return &cli.Command{
		Name:  "integritee-node",
		Usage: "COMMAND [flags]  |  integritee-node --dev [--home DIR] [--chain-id ID] [--rpc HOST:PORT] [--p2p HOST:PORT] [--metrics HOST:PORT]",
		Short: "The integritee chain: CometBFT consensus with the integritee application, in one process.",
		Long: `Without a command, --dev runs one dev validator with 150 ms blocks, initializing --home
(default: a temporary directory, removed on exit) if it has no genesis yet.
SIGINT or SIGTERM stops the node cleanly.`,
		Setup: func(fs *flag.FlagSet) cli.RunFunc {
			dev := fs.Bool("dev", false, "run a development chain (funded dev accounts, Alice is sudo, short blocks)")
			home := fs.String("home", "", "node home `directory` (default: a temporary one)")
			chainID := fs.String("chain-id", "", "chain `ID` of a new home")
			rpc, p2p := listenFlags(fs)
			metrics := metricsFlag(fs)
			logLevel := logLevelFlag(fs)
			return func(ctx context.Context, args []string) error {
				if err := cli.NoArgs(args); err != nil {
					return err
				}
				if !*dev {
					return cli.Usagef("no command given (--dev runs a dev node)")
				}
				if _, err := newLogger(stderr, *logLevel); err != nil {
					return err
				}
				return runDev(ctx, *home, *chainID, *logLevel, node.StartOptions{RPCListen: *rpc, P2PListen: *p2p, MetricsListen: *metrics}, stderr, stdout)
			}
		},
		Commands: []*cli.Command{
			{
				Name:  "init",
				Usage: "--home DIR [--dev] [--chain-id ID] [--rpc HOST:PORT] [--p2p HOST:PORT] [--metrics HOST:PORT]",
				Short: "write a node home: keys, config/node.toml (every setting, commented), config/genesis.json",
				Setup: func(fs *flag.FlagSet) cli.RunFunc {
					home := fs.String("home", "", "node home `directory` (required)")
					dev := fs.Bool("dev", false, "development genesis (funded dev accounts, Alice is sudo, short blocks)")
					chainID := fs.String("chain-id", "", "chain `ID`")
					rpc, p2p := listenFlags(fs)
					metrics := metricsFlag(fs)
					return func(ctx context.Context, args []string) error {
						if err := cli.NoArgs(args); err != nil {
							return err
						}
						if *home == "" {
							return cli.Usagef("--home is required")
						}
						return initHome(*home, *dev, *chainID, *rpc, *p2p, *metrics, stdout)
					}
				},
			},
			{
				Name:  "start",
				Usage: "--home DIR [--rpc HOST:PORT] [--p2p HOST:PORT] [--metrics HOST:PORT] [--log-level LEVEL]",
				Short: "run the node of a home",
				Setup: func(fs *flag.FlagSet) cli.RunFunc {
					home := fs.String("home", "", "node home `directory` (required)")
					rpc, p2p := listenFlags(fs)
					metrics := metricsFlag(fs)
					logLevel := logLevelFlag(fs)
					return func(ctx context.Context, args []string) error {
						if err := cli.NoArgs(args); err != nil {
							return err
						}
						if *home == "" {
							return cli.Usagef("--home is required")
						}
						log, err := homeLogger(stderr, *home, *logLevel)
						if err != nil {
							return err
						}
						return node.Run(ctx, *home, node.StartOptions{Logger: log, RPCListen: *rpc, P2PListen: *p2p, MetricsListen: *metrics,
							Modules: node.Modules()})
					}
				},
			},
			{
				Name:  "testnet",
				Usage: "--n N --out DIR [--base-port PORT] [--chain-id ID]",
				Short: "write N validator homes of one dev genesis that connect over loopback",
				Setup: func(fs *flag.FlagSet) cli.RunFunc {
					n := fs.Int("n", 4, "number of validators")
					out := fs.String("out", "", "output `directory` (required)")
					basePort := fs.Int("base-port", 26600, "first `port` (p2p BASE+2i, rpc BASE+2i+1)")
					chainID := fs.String("chain-id", "", "chain `ID`")
					return func(ctx context.Context, args []string) error {
						if err := cli.NoArgs(args); err != nil {
							return err
						}
						if *out == "" {
							return cli.Usagef("--out is required")
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
				},
			},
			{
				Name:  "version",
				Short: "print the node's, the app's and CometBFT's versions",
				Setup: cli.Action(func(ctx context.Context, args []string) error {
					if err := cli.NoArgs(args); err != nil {
						return err
					}
					fmt.Fprintf(stdout, "integritee-node %s (app version %d, CometBFT %s)\n", chain.Version, chain.AppVersion, cometVersion())
					return nil
				}),
			},
		},
	}
}

// listenFlags declares --rpc and --p2p (empty: the home's configuration).
func listenFlags(fs *flag.FlagSet) (rpc, p2p *string) {
	return fs.String("rpc", "", "RPC listen `address` HOST:PORT"), fs.String("p2p", "", "p2p listen `address` HOST:PORT")
}

// metricsFlag declares --metrics (empty: the home's configuration).
func metricsFlag(fs *flag.FlagSet) *string {
	return fs.String("metrics", "", "serve Prometheus metrics under /metrics on `address` HOST:PORT (config/node.toml: metrics_listen)")
}

func logLevelFlag(fs *flag.FlagSet) *string {
	return fs.String("log-level", "", "log `level`: debug, info, warn, error (default: log_level of the home's config/node.toml)")
}

// homeLogger logs at the level of the flag, else of the home's config.
func homeLogger(w io.Writer, home, flagLevel string) (*slog.Logger, error) {
	if flagLevel == "" {
		c, err := node.LoadConfig(home)
		if err != nil {
			return nil, err
		}
		return newLogger(w, c.LogLevel)
	}
	return newLogger(w, flagLevel)
}

// newLogger logs to w at the level named by --log-level (empty: info).
func newLogger(w io.Writer, level string) (*slog.Logger, error) {
	var l slog.Level
	if level == "" {
		level = "info"
	}
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, cli.Usagef("--log-level: %w", err)
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: l})), nil
}

func initHome(home string, dev bool, chainID, rpc, p2p, metrics string, stdout io.Writer) error {
	c := node.DefaultConfig(dev)
	if metrics != "" {
		c.MetricsListen = metrics
	}
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
func runDev(ctx context.Context, home, chainID, logLevel string, opts node.StartOptions, stderr, stdout io.Writer) error {
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
	log, err := homeLogger(stderr, home, logLevel)
	if err != nil {
		return err
	}
	opts.Logger, opts.Modules = log, node.Modules()
	n, err := node.Start(home, opts)
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
	if m := n.MetricsAddress(); m != "" {
		fmt.Fprintf(w, "metrics: %s/metrics\n", m)
	}
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
