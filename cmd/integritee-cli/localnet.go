package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/integritee-go/integritee/chain/teerex"
	"github.com/integritee-go/integritee/client"
	"github.com/integritee-go/integritee/internal/cli"
	"github.com/integritee-go/integritee/localnet"
	"github.com/integritee-go/integritee/worker/rpc"
)

func (e *env) localnetCommand() *cli.Command {
	return &cli.Command{
		Name:  "localnet",
		Usage: "[--workers N] [--demo=false] [--upgrade] [--dir DIR] [--block-time D] [--node-rpc HOST:PORT] [--worker-rpc-port P] [--node-metrics HOST:PORT] [--worker-metrics-port P] [--enclave PATH] [--worker-rpc-rate R --worker-rpc-burst B --worker-rpc-X ...: integritee-worker's --rpc-X limits]",
		Short: "run a dev node and sim workers on this machine, show them at work, keep them running until Ctrl-C (localnet [--workers N] [--demo=false])",
		Setup: e.localnet,
	}
}

func (e *env) localnet(fs *flag.FlagSet) cli.RunFunc {
	workers := fs.Int("workers", 2, "number of workers; the first creates the shard's keys, the others are provisioned by it")
	demo := fs.Bool("demo", true, "run the demo after startup (shield, confidential transfer, unshield, checks on every worker and on chain); a failed check exits with status 1")
	upgrade := fs.Bool("upgrade", false, "after the demo, move the shard to a second enclave release (the same code built with another release string, so another MRENCLAVE): authorize it on chain, start as many workers of it, which get the keys from the running ones and take over at the enactment height; the balances must stay (docs/upgrades.md)")
	dir := fs.String("dir", "", "`directory` for the node home and worker data; reused if it exists (default: a temporary one, removed on exit)")
	nodeRPC := fs.String("node-rpc", "127.0.0.1:26657", "node RPC listen `address` (port 0: a free port)")
	workerPort := fs.Int("worker-rpc-port", 2000, "RPC `port` of worker 0; worker i listens on port+i (0: free ports)")
	nodeMetrics := fs.String("node-metrics", "127.0.0.1:26660", "node Prometheus metrics listen `address` (port 0: a free port)")
	workerMetricsPort := fs.Int("worker-metrics-port", 2090, "Prometheus metrics `port` of worker 0; worker i listens on port+i (0: free ports)")
	enclave := fs.String("enclave", "", "integritee-enclave `executable` (default: built with go build into DIR/bin)")
	heartbeat := fs.Duration("confirm-heartbeat", time.Minute, "workers' confirm_processed_block heartbeat in chain block time while the shard is idle, like integritee-worker --confirm-heartbeat (0: every block)")
	blockTime := fs.Duration("block-time", 0, "the validator's timeout_commit for a new home: the block time of an idle chain (0: the dev default, 150ms; a production node's default is 1s). A load measurement at a production block time spares the node, and the workers' light clients, six blocks a second")
	liveness := fs.Duration("liveness", localnet.DefaultLiveness, "the chain's teerex liveness period for a new home: an enclave without keep_alive for that long leaves its shard's group, so a shard that lost a worker goes on (0: none; else 10s or more, whole seconds)")
	logLevel := fs.String("log-level", "warn", "log `level`: debug, info, warn, error")
	// Each worker's JSON-RPC limits: integritee-worker's --rpc-X flags
	// as --worker-rpc-X (a load measurement on loopback lifts them).
	var rpcLimits rpc.Options
	rpcLimitsOK := rpcLimits.RegisterFlags(fs, "worker-rpc-")
	return func(ctx context.Context, pos []string) error {
		if err := cli.NoArgs(pos); err != nil {
			return err
		}
		if *workers < 0 || *workers > 16 {
			return fmt.Errorf("--workers %d: want 0..16", *workers)
		}
		if *heartbeat < 0 || *heartbeat%time.Millisecond != 0 {
			return fmt.Errorf("--confirm-heartbeat %v: want 0 or more, in whole milliseconds", *heartbeat)
		}
		if *blockTime != 0 && (*blockTime < 10*time.Millisecond || *blockTime%time.Millisecond != 0) {
			return fmt.Errorf("--block-time %v: want 0, or 10ms or more in whole milliseconds", *blockTime)
		}
		if *liveness != 0 && (*liveness < teerex.MinLiveness || *liveness%time.Second != 0) {
			return fmt.Errorf("--liveness %v: want 0, or %v or more in whole seconds", *liveness, teerex.MinLiveness)
		}
		live := *liveness
		if live == 0 {
			live = -1
		}
		if err := rpcLimitsOK(); err != nil {
			return err
		}
		var level slog.Level
		if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
			return fmt.Errorf("--log-level: %w", err)
		}
		cfg := localnet.Config{
			Dir: *dir, Workers: *workers, NoWorkers: *workers == 0, EnclaveBinary: *enclave,
			NodeRPC: *nodeRPC, WorkerRPCBasePort: *workerPort, ConfirmHeartbeat: *heartbeat, Liveness: live, BlockTime: *blockTime,
			NodeMetrics: *nodeMetrics, WorkerMetricsBasePort: *workerMetricsPort,
			WorkerRPC: rpcLimits,
			Logger:    slog.New(slog.NewTextHandler(e.stderr, &slog.HandlerOptions{Level: level})),
		}
		host, port, err := net.SplitHostPort(*nodeRPC)
		if err != nil {
			return fmt.Errorf("--node-rpc: %w", err)
		}
		if port == "0" {
			addr, err := localnet.FreeAddr()
			if err != nil {
				return err
			}
			_, free, _ := net.SplitHostPort(addr)
			cfg.NodeRPC = net.JoinHostPort(host, free)
		}
		if *upgrade && (!*demo || *workers == 0) {
			return errors.New("--upgrade runs after the demo: it needs --demo and workers")
		}
		return serveLocalnet(ctx, e, cfg, *demo, *upgrade)
	}
}

// serveLocalnet starts the network, runs the demo if asked, prints what to
// try by hand and keeps the network running until ctx is done.
func serveLocalnet(ctx context.Context, e *env, cfg localnet.Config, demo, upgrade bool) (err error) {
	if cfg.EnclaveBinary == "" {
		fmt.Fprintln(e.stdout, "building integritee-enclave (the first run compiles it; later runs reuse Go's build cache) ...")
	}
	fmt.Fprintf(e.stdout, "starting a validator and %d worker(s) in simulated-TEE mode ...\n", cfg.Workers)
	ln, err := localnet.Start(ctx, cfg)
	if err != nil {
		return err
	}
	defer func() {
		fmt.Fprintln(e.stdout, "stopping ...")
		err = errors.Join(err, ln.Stop())
	}()
	ln.Describe(e.stdout)
	if demo && len(ln.Workers()) > 0 {
		fmt.Fprintln(e.stdout)
		if err := ln.Demo(ctx, e.stdout); err != nil {
			return err
		}
		if upgrade {
			if err := ln.UpgradeDemo(ctx, localnet.UpgradeConfig{}, e.stdout); err != nil {
				return err
			}
		}
	}
	if err := trustLocalnet(ctx, e, ln.NodeRPC()); err != nil {
		return err
	}
	tryCommands(e, ln)
	fmt.Fprintln(e.stdout, "\nlocalnet running; Ctrl-C stops it")
	<-ctx.Done()
	return nil
}

// cliCommand is how the printed examples run the CLI: from the module's
// root, like the localnet command itself.
const cliCommand = "go run ./cmd/integritee-cli"

// tryCommands prints commands to try in another shell. Flags equal to the
// trusted commands' defaults are left out. Every worker takes direct calls
// (watched until confirmed on chain): the shard's enclaves order them in
// one log, and each answers the getters alike.
func tryCommands(e *env, ln *localnet.Net) {
	w := e.stdout
	var ws []*localnet.Worker
	for _, wk := range ln.Workers() {
		if !wk.Retired() { // an upgrade's old release serves no more
			ws = append(ws, wk)
		}
	}
	if len(ws) == 0 {
		return
	}
	var tf trustedFlags
	fs := flag.NewFlagSet("", flag.ContinueOnError)
	tf.register(fs, e)
	node := ""
	if ln.NodeRPC() != fs.Lookup("node").DefValue {
		node = " --node " + ln.NodeRPC()
	}
	conn := func(worker string) string {
		if worker != fs.Lookup("worker").DefValue {
			return node + " --worker " + worker
		}
		return node
	}
	w0 := conn(ws[0].RPCAddr())
	path, how := "--watch", "trusted calls go directly to the worker, watched until the chain confirms their shard block"
	wLast := w0
	if len(ws) > 1 {
		how = "trusted calls go directly to any worker, watched until the chain confirms their shard block"
		wLast = conn(ws[len(ws)-1].RPCAddr())
	}
	fmt.Fprintf(w, "\ntry it from another shell in this directory (%s):\n", how)
	fmt.Fprintf(w, "  %s trusted shield%s --from Alice --amount 1000 --to Alice//incognito\n", cliCommand, w0)
	fmt.Fprintf(w, "  %s trusted transfer %s%s --from Alice//incognito --to Bob//incognito --amount 300\n", cliCommand, path, w0)
	fmt.Fprintf(w, "  %s trusted unshield %s%s --from Bob//incognito --to Bob --amount 100\n", cliCommand, path, wLast)
	for _, wk := range ws {
		fmt.Fprintf(w, "  %s trusted balance%s --account Bob//incognito\n", cliCommand, conn(wk.RPCAddr()))
	}
	fmt.Fprintf(w, "  %s shard show %x%s\n", cliCommand, ln.Shard, node)
	fmt.Fprintf(w, "  %s balance Bob%s\n", cliCommand, node)
}

// trustLocalnet makes the new chain's newest block the trusted header of
// its chain ID in the default trust store. The chain was made by this
// process, so its node is the authority on it; without this, the record of
// an earlier localnet (the same dev chain ID, another chain) would make
// every printed command fail.
func trustLocalnet(ctx context.Context, e *env, nodeRPC string) error {
	if e.trustDir == "" {
		return nil
	}
	c, err := client.New(ctx, nodeRPC, client.Options{})
	if err != nil {
		return err
	}
	// A node that has just started (no worker waited for it) may not have
	// committed its first block yet: its latest commit has no header.
	com, err := c.RPC().Commit(ctx, nil)
	for err == nil && (com.Header == nil || com.Commit == nil) {
		select {
		case <-ctx.Done():
			return fmt.Errorf("trust the localnet chain: no block committed yet: %w", ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
		com, err = c.RPC().Commit(ctx, nil)
	}
	if err != nil {
		return fmt.Errorf("trust the localnet chain: %w", err)
	}
	c, err = client.New(ctx, nodeRPC, client.Options{TrustStore: client.FileTrustStore{Dir: e.trustDir},
		TrustHeight: com.Height, TrustHash: com.Hash()})
	if err != nil {
		return err
	}
	// A proved query stores the header.
	if _, err := c.GenesisID(ctx); err != nil {
		return fmt.Errorf("trust the localnet chain: %w", err)
	}
	fmt.Fprintf(e.stdout, "\nthe CLI's trust store (%s) now trusts this chain (%s)\n", e.trustDir, c.ChainID())
	return nil
}
