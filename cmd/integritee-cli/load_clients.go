package main

import (
	"context"
	"flag"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/integritee-go/integritee/internal/cli"
	"github.com/integritee-go/integritee/loadgen"
)

// loadClients is "load clients": many WebSocket sessions, each from its
// own loopback address, each sending a direct call per interval
// (loadgen.Clients).
func (e *env) loadClients() *cli.Command {
	return &cli.Command{Name: "clients", Usage: "--clients N [--interval 1s] [--duration 30s] [--node URL] [--worker URL,URL,...] [flags]",
		Short: "N WebSocket sessions from distinct loopback addresses (127.1.0.1, ...), each sending one direct trusted transfer per --interval for --duration: sessions opened, offered vs achieved calls/s, latency to executed, worker CPU and RSS",
		Setup: func(fs *flag.FlagSet) cli.RunFunc {
			var (
				cfg      loadgen.ClientsConfig
				workers  string
				asJSON   bool
				progress bool
				plot     string
			)
			fs.StringVar(&cfg.NodeURL, "node", defaultNode, "node RPC `URL` (loopback only)")
			fs.StringVar(&workers, "worker", "http://127.0.0.1:2000", "worker RPC `URLs`, comma-separated (loopback only): session i opens to the (i mod count)-th")
			fs.IntVar(&cfg.Clients, "clients", 1000, fmt.Sprintf("WebSocket sessions, each from its own source address and account (1..%d; this process's open files limit bounds it)", loadgen.MaxClients))
			fs.DurationVar(&cfg.Interval, "interval", time.Second, "time between a session's calls (the first calls are spread over the first interval)")
			fs.DurationVar(&cfg.Duration, "duration", 30*time.Second, "how long the sessions send: each sends duration/interval calls")
			fs.IntVar(&cfg.Concurrency, "concurrency", 64, "accounts that fund the sessions' accounts before the run (shielded through the chain), and parallel reads after it")
			fs.Uint64Var(&cfg.Amount, "amount", 1, "base units per transfer")
			fs.DurationVar(&cfg.Timeout, "timeout", loadgen.DefaultClientsTimeout, "bound of the whole run, setup included")
			fs.StringVar(&cfg.Tag, "tag", "default", "names the run's dev-derived accounts (Alice//load/TAG/...; the sessions' are fresh each run)")
			fs.BoolVar(&asJSON, "json", false, "write JSON")
			fs.BoolVar(&progress, "progress", false, "draw a progress bar on stderr (default: when stderr is a terminal)")
			fs.StringVar(&plot, "plot", "", "write throughput and latency over time to this SVG `file`")
			fs.BoolVar(&cfg.WarmUp, "warm-up", true, "have every session send one call before the timed phase, all at once, and wait for its answer: it opens the session's shielded channel, which then is not measured")
			fs.BoolVar(&cfg.OneShot, "one-shot", false, "seal every call one-shot to the shielding key (an HPKE encapsulation per call) instead of on a shielded channel per session")
			return func(ctx context.Context, pos []string) error {
				if err := cli.NoArgs(pos); err != nil {
					return err
				}
				cfg.WorkerURLs = splitURLs(workers)
				if progress || isTerminal(e.stderr) {
					cfg.Progress = e.stderr
				}
				rep, err := loadgen.Clients(ctx, cfg)
				if err != nil {
					return err
				}
				return e.loadResult(rep, asJSON, plot)
			}
		}}
}

// printSessions prints a Clients report's sessions.
func printSessions(e *env, r *loadgen.Report) {
	s := r.Sessions
	if s == nil {
		return
	}
	w := e.stdout
	fmt.Fprintf(w, "  sessions   %d of %d opened in %.2fs from %d source addresses, %d calls each every %gs (%.1f calls/s offered); %d lost in the run, %d calls due behind an unanswered one; open files limit %d\n",
		s.Opened, s.Wanted, s.OpenSeconds, s.Sources, s.CallsPerSession, s.IntervalSeconds, r.OfferedPerSec, s.Lost, s.Behind, s.FDLimit)
	if len(s.OpenErrors) > 0 {
		kinds := make([]string, 0, len(s.OpenErrors))
		for k, n := range s.OpenErrors {
			kinds = append(kinds, fmt.Sprintf("%s: %d", k, n))
		}
		sort.Strings(kinds)
		fmt.Fprintf(w, "  sessions not opened: %s\n", strings.Join(kinds, ", "))
	}
	if u := s.WarmUp; u != nil {
		fmt.Fprintf(w, "  warm-up    %d first calls executed (%d failed) in %.2fs before the timed phase, all at once: they open the sessions' shielded channels\n", u.Executed, u.Failed, u.Seconds)
	}
	fmt.Fprintf(w, "  read back  %d session nonces equal to their executed calls; recipient holds %d\n", s.NoncesChecked, s.RecipientBalance)
}
