package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"sort"
	"strings"

	"github.com/integritee-go/integritee/internal/cli"
	"github.com/integritee-go/integritee/loadgen"
)

func (e *env) loadGroup() *cli.Command {
	return &cli.Command{Name: "load", Short: "measure a local network: public transfers or direct trusted calls (loopback only)", Commands: []*cli.Command{
		e.loadCommand("transfers", "N public transfers from C funded senders: submitted/s, committed/s, latency to commit", 1000, false, loadgen.Transfers),
		e.loadCommand("direct", "N direct trusted transfers from C shielded accounts: calls/s, latency to executed, shard blocks", 200, true, loadgen.Direct),
	}}
}

// errLoadFailures makes the command exit non-zero when calls failed; the
// report is printed first.
var errLoadFailures = errors.New("some calls failed")

type loadFlags struct {
	cfg    loadgen.Config
	asJSON bool
}

func (f *loadFlags) register(fs *flag.FlagSet, defN int, worker bool) {
	fs.StringVar(&f.cfg.NodeURL, "node", defaultNode, "node RPC `URL` (loopback only)")
	if worker {
		fs.StringVar(&f.cfg.WorkerURL, "worker", "http://127.0.0.1:2000", "worker RPC `URL` (loopback only)")
	}
	fs.IntVar(&f.cfg.N, "n", defN, "number of transfers")
	fs.IntVar(&f.cfg.Concurrency, "concurrency", 8, "senders submitting at once, each with its own account")
	fs.Uint64Var(&f.cfg.Amount, "amount", 1, "base units per transfer")
	fs.DurationVar(&f.cfg.Timeout, "timeout", loadgen.DefaultTimeout, "bound of the whole run, setup included")
	fs.StringVar(&f.cfg.Tag, "tag", "default", "names the run's dev-derived accounts (Alice//load/TAG/...)")
	fs.BoolVar(&f.asJSON, "json", false, "write JSON")
}

// loadCommand is "load transfers" or "load direct": run measures the
// network with the flags' configuration.
func (e *env) loadCommand(name, short string, defN int, worker bool, run func(context.Context, loadgen.Config) (*loadgen.Report, error)) *cli.Command {
	usage := "--n N --concurrency C [--node URL] [flags]"
	if worker {
		usage = "--n N --concurrency C [--node URL] [--worker URL] [flags]"
	}
	return &cli.Command{Name: name, Usage: usage, Short: short, Setup: func(fs *flag.FlagSet) cli.RunFunc {
		var f loadFlags
		f.register(fs, defN, worker)
		return func(ctx context.Context, pos []string) error {
			if err := cli.NoArgs(pos); err != nil {
				return err
			}
			rep, err := run(ctx, f.cfg)
			if err != nil {
				return err
			}
			if f.asJSON {
				if err := writeJSON(e.stdout, rep); err != nil {
					return err
				}
			} else {
				printLoadReport(e, rep)
			}
			if !rep.OK() {
				return fmt.Errorf("%w: %d of %d (%s)", errLoadFailures, rep.N-rep.Committed, rep.N, failureList(rep.Failures))
			}
			return nil
		}
	}}
}

func failureList(m map[string]int) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for i, k := range keys {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s: %d", k, m[k])
	}
	return b.String()
}

func printLoadReport(e *env, r *loadgen.Report) {
	w := e.stdout
	done, unit, blocks := "committed", "to commit", "chain blocks"
	if r.Kind == "direct" {
		done, unit, blocks = "executed", "to executed", "shard blocks"
	}
	fmt.Fprintf(w, "load %s: %d calls from %d senders\n", r.Kind, r.N, r.Concurrency)
	fmt.Fprintf(w, "  submitted  %d in %.2fs (%.1f/s)\n", r.Submitted, r.SubmitSeconds, r.SubmittedPerSec)
	fmt.Fprintf(w, "  %-9s  %d in %.2fs (%.1f/s)\n", done, r.Committed, r.TotalSeconds, r.CommittedPerSec)
	fmt.Fprintf(w, "  latency %s  p50 %.1f ms  p90 %.1f ms  p99 %.1f ms  max %.1f ms\n", unit, r.Latency.P50, r.Latency.P90, r.Latency.P99, r.Latency.Max)
	if r.Blocks > 0 {
		fmt.Fprintf(w, "  %s %d (%.1f calls per block)\n", blocks, r.Blocks, float64(r.Committed)/float64(r.Blocks))
	}
	if r.Retries > 0 {
		fmt.Fprintf(w, "  rate-limited resends %d\n", r.Retries)
	}
	if r.Failed > 0 {
		fmt.Fprintf(w, "  failed %d: %s\n", r.Failed, failureList(r.Failures))
	} else {
		fmt.Fprintln(w, "  failed 0")
	}
}
