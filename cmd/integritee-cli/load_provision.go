package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/integritee-go/integritee/internal/cli"
	"github.com/integritee-go/integritee/loadgen"
	"github.com/integritee-go/integritee/localnet"
)

// loadProvision is "load provision": a new worker of a shard of N
// accounts, timed until it serves (loadgen.Provision).
func (e *env) loadProvision() *cli.Command {
	return &cli.Command{Name: "provision", Usage: "--accounts N [--node URL] [--worker URL] [--enclave PATH] [flags]",
		Short: "create N accounts in a dev shard (untimed), then start one new worker in this process and time it until provisioned, registered and serving the right balances",
		Setup: func(fs *flag.FlagSet) cli.RunFunc {
			var cfg loadgen.ProvisionConfig
			var asJSON, prog bool
			fs.StringVar(&cfg.NodeURL, "node", defaultNode, "node RPC `URL` (loopback only)")
			fs.StringVar(&cfg.WorkerURL, "worker", "http://127.0.0.1:2000", "RPC `URL` of a running worker of the shard (loopback only): it takes the setup's calls")
			fs.IntVar(&cfg.Accounts, "accounts", 10_000, fmt.Sprintf("generated accounts in the shard (1..%d)", loadgen.MaxProvisionAccounts))
			fs.StringVar(&cfg.EnclaveBinary, "enclave", "", "integritee-enclave `executable` of the new worker: the shard workers' build (default: build the dev build from source, as localnet does)")
			fs.StringVar(&cfg.DataDir, "data-dir", "", "the new worker's data `directory`, must be new (default: a temporary one, removed)")
			fs.StringVar(&cfg.Tag, "tag", "default", "names the sampled accounts (Alice//load/TAG/provision/K)")
			fs.DurationVar(&cfg.Timeout, "timeout", loadgen.DefaultProvisionTimeout, "bound of the whole run, setup included")
			logLevel := fs.String("log-level", "error", "the new worker's log `level` on stderr: debug, info, warn, error")
			fs.BoolVar(&asJSON, "json", false, "write JSON")
			fs.BoolVar(&prog, "progress", false, "show progress on stderr (default: when stderr is a terminal)")
			return func(ctx context.Context, pos []string) error {
				if err := cli.NoArgs(pos); err != nil {
					return err
				}
				var level slog.Level
				if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
					return fmt.Errorf("--log-level: %w", err)
				}
				cfg.Logger = slog.New(slog.NewTextHandler(e.stderr, &slog.HandlerOptions{Level: level}))
				if prog || isTerminal(e.stderr) {
					cfg.Progress = e.stderr
				}
				if cfg.EnclaveBinary == "" {
					dir, err := os.MkdirTemp("", "integritee-load-enclave-")
					if err != nil {
						return err
					}
					defer os.RemoveAll(dir)
					if cfg.EnclaveBinary, err = localnet.BuildEnclave(ctx, filepath.Join(dir, "bin")); err != nil {
						return fmt.Errorf("--enclave: %w", err)
					}
				}
				rep, err := loadgen.Provision(ctx, cfg)
				if err != nil {
					return err
				}
				if asJSON {
					return writeJSON(e.stdout, rep)
				}
				printProvisionReport(e, rep)
				return nil
			}
		}}
}

func printProvisionReport(e *env, r *loadgen.ProvisionReport) {
	w := e.stdout
	fmt.Fprintf(w, "load provision: a new worker of a shard of %d accounts (%d entries received at height %d)\n", r.Accounts, r.Entries, r.Height)
	fmt.Fprintf(w, "  setup (not timed)  %d dev calls in %.2fs\n", r.SetupCalls, r.SetupSeconds)
	fmt.Fprintf(w, "  provisioned        %6.2fs  keys and state received, checked against the checkpoint, persisted\n", r.ProvisionedSeconds)
	fmt.Fprintf(w, "  enclave started    %6.2fs  the enclave that serves is up (the one that checked the state)\n", r.StartedSeconds)
	fmt.Fprintf(w, "  registered         %6.2fs  registered on chain, syncing\n", r.RegisteredSeconds)
	fmt.Fprintf(w, "  serving            %6.2fs  %d sampled balances right through private getters to %s\n", r.ServingSeconds, len(r.Samples), r.NewWorker)
	fmt.Fprintf(w, "  enclave processes started %d; state root %s on both workers\n", r.EnclaveStarts, r.StateRoot)
	if len(r.Procs) > 0 {
		fmt.Fprintf(w, "  processes (CPU from the new worker's start until it served, peak RSS):\n")
		for _, p := range r.Procs {
			fmt.Fprintf(w, "    %-32s pid %-7d %-16s cpu %6.2f s  peak rss %7.1f MiB\n", p.Role, p.PID, p.Comm, p.CPUSeconds, p.PeakRSSMiB)
		}
	}
	for _, l := range r.Limits {
		fmt.Fprintf(w, "  note: %s\n", l)
	}
}
