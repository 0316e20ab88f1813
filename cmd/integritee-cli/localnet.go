package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"syscall"

	"github.com/integritee-go/integritee/localnet"
)

func localnetGroup() group {
	return group{name: "localnet", summary: "run a dev node and sim workers on this machine until Ctrl-C (localnet [--workers N])", run: runLocalnet}
}

func runLocalnet(e *env, args []string) error {
	fs := newFlagSet(e, "localnet", "[--workers N] [--dir DIR] [--node-rpc HOST:PORT] [--worker-rpc-port P] [--enclave PATH]")
	workers := fs.Int("workers", 1, "number of workers")
	dir := fs.String("dir", "", "`directory` for the node home and worker data; reused if it exists (default: a temporary one, removed on exit)")
	nodeRPC := fs.String("node-rpc", "127.0.0.1:26657", "node RPC listen `address` (port 0: a free port)")
	workerPort := fs.Int("worker-rpc-port", 2000, "RPC `port` of worker 0; worker i listens on port+i (0: free ports)")
	enclave := fs.String("enclave", "", "integritee-enclave `executable` (default: built with go build into DIR/bin)")
	confirmEvery := fs.Uint("confirm-every", 1, "blocks per confirm_processed_block")
	logLevel := fs.String("log-level", "warn", "log `level`: debug, info, warn, error")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		return fmt.Errorf("unexpected argument %q", pos[0])
	}
	if *workers < 0 || *workers > 16 {
		return fmt.Errorf("--workers %d: want 0..16", *workers)
	}
	if *confirmEvery == 0 || *confirmEvery > 1<<16 {
		return fmt.Errorf("--confirm-every %d: want 1..65536", *confirmEvery)
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		return fmt.Errorf("--log-level: %w", err)
	}
	cfg := localnet.Config{
		Dir: *dir, Workers: *workers, NoWorkers: *workers == 0, EnclaveBinary: *enclave,
		NodeRPC: *nodeRPC, WorkerRPCBasePort: *workerPort, ConfirmEvery: uint32(*confirmEvery),
		Logger: slog.New(slog.NewTextHandler(e.stderr, &slog.HandlerOptions{Level: level})),
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
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if cfg.EnclaveBinary == "" {
		fmt.Fprintln(e.stdout, "building integritee-enclave ...")
	}
	ln, err := localnet.Start(ctx, cfg)
	if err != nil {
		return err
	}
	ln.Describe(e.stdout)
	if ws := ln.Workers(); len(ws) > 0 {
		fmt.Fprintf(e.stdout, "\ntry:\n")
		fmt.Fprintf(e.stdout, "  integritee-cli trusted shield --node %s --worker %s --from Alice --amount 1000 --to Alice//incognito\n", ln.NodeRPC(), ws[0].RPCAddr())
		fmt.Fprintf(e.stdout, "  integritee-cli trusted transfer --indirect --node %s --worker %s --from Alice//incognito --to Bob//incognito --amount 300\n", ln.NodeRPC(), ws[0].RPCAddr())
		fmt.Fprintf(e.stdout, "  integritee-cli trusted balance --node %s --worker %s --account Bob//incognito\n", ln.NodeRPC(), ws[0].RPCAddr())
	}
	fmt.Fprintln(e.stdout, "\nlocalnet running; Ctrl-C stops it")
	<-ctx.Done()
	fmt.Fprintln(e.stdout, "stopping ...")
	return ln.Stop()
}
