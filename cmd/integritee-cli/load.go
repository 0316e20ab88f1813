package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/integritee-go/integritee/internal/cli"
	"github.com/integritee-go/integritee/loadgen"
)

func (e *env) loadGroup() *cli.Command {
	return &cli.Command{Name: "load", Short: "measure a local network: public transfers, direct trusted calls, private getters (loopback only)", Commands: []*cli.Command{
		e.loadCommand("transfers", "N public transfers from C funded senders: submitted/s, committed/s, latency to commit", 1000, false, loadgen.Transfers),
		e.loadCommand("register", "N sim enclaves registered on chain (teerex register_enclave with a simulated DCAP quote each) by C senders: registrations/s, latency to commit", 100, false, loadgen.Register),
		e.loadCommand("getters", "N private getters (each sender's trusted balance) from C accounts spread over the workers, closed loop or at --rate: getters/s, latency to the answer", 1000, true, loadgen.Getters),
		e.loadCommand("indirect", "N trusted transfers from C shielded accounts through the chain (bridge invokes, pipelined): calls/s, latency from broadcast to executed in ms and chain blocks", 200, true, loadgen.Indirect),
		e.loadProvision(),
		e.loadCommand("direct", "N direct trusted transfers from C shielded accounts spread over the workers, closed loop or at --rate calls/s: calls/s, latency to executed, shard blocks", 200, true, loadgen.Direct),
		e.loadClients(),
	}}
}

// errLoadFailures makes the command exit non-zero when calls failed; the
// report is printed first.
var errLoadFailures = errors.New("some calls failed")

type loadFlags struct {
	cfg      loadgen.Config
	workers  string
	asJSON   bool
	progress bool
	plot     string
}

func (f *loadFlags) register(fs *flag.FlagSet, name string, defN int, worker bool) {
	fs.StringVar(&f.cfg.NodeURL, "node", defaultNode, "node RPC `URL` (loopback only)")
	if worker {
		fs.StringVar(&f.workers, "worker", "http://127.0.0.1:2000", "worker RPC `URLs`, comma-separated (loopback only): sender i sends to the (i mod count)-th")
		fs.Float64Var(&f.cfg.Rate, "rate", 0, "open loop: offer this many calls/s whatever the answers, taken by the next free of --concurrency senders (0: closed loop, each sender sends when its last call executed)")
	}
	fs.IntVar(&f.cfg.N, "n", defN, "number of transfers")
	fs.IntVar(&f.cfg.Concurrency, "concurrency", 8, "senders submitting at once, each with its own account (with --rate: at most this many calls in flight)")
	fs.Uint64Var(&f.cfg.Amount, "amount", 1, "base units per transfer")
	fs.DurationVar(&f.cfg.Timeout, "timeout", loadgen.DefaultTimeout, "bound of the whole run, setup included")
	fs.StringVar(&f.cfg.Tag, "tag", "default", "names the run's dev-derived accounts (Alice//load/TAG/...)")
	fs.BoolVar(&f.asJSON, "json", false, "write JSON")
	fs.BoolVar(&f.progress, "progress", false, "draw a progress bar on stderr (default: when stderr is a terminal)")
	fs.StringVar(&f.plot, "plot", "", "write throughput and latency over time to this SVG `file`")
	if name == "direct" {
		fs.BoolVar(&f.cfg.OneShot, "one-shot", false, "seal every call one-shot to the shielding key (an HPKE encapsulation per call) instead of on a shielded channel per sender")
	}
	if name == "direct" {
		fs.Func("recipients", "send each call to one of the `N` generated accounts of `trusted dev-accounts --n N`, picked per call (0: all to one recipient)", func(v string) error {
			n, err := strconv.ParseUint(v, 10, 32)
			f.cfg.Recipients = uint32(n)
			return err
		})
		fs.StringVar(&f.cfg.Transport, "transport", loadgen.TransportHTTP, "how calls are sent: http (a JSON-RPC POST per call on pooled keep-alive connections) or ws (a WebSocket session per sender, from its own loopback address)")
		fs.DurationVar(&f.cfg.ConfirmWait, "confirm-wait", loadgen.DefaultConfirmWait, "after the calls, wait at most this long for the chain to confirm their shard blocks")
	}
}

// isTerminal reports whether w is a character device (a terminal).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// loadCommand is "load transfers" or "load direct": run measures the
// network with the flags' configuration.
func (e *env) loadCommand(name, short string, defN int, worker bool, run func(context.Context, loadgen.Config) (*loadgen.Report, error)) *cli.Command {
	usage := "--n N --concurrency C [--node URL] [flags]"
	if worker {
		usage = "--n N --concurrency C [--rate R] [--node URL] [--worker URL,URL,...] [flags]"
	}
	return &cli.Command{Name: name, Usage: usage, Short: short, Setup: func(fs *flag.FlagSet) cli.RunFunc {
		var f loadFlags
		f.register(fs, name, defN, worker)
		return func(ctx context.Context, pos []string) error {
			if err := cli.NoArgs(pos); err != nil {
				return err
			}
			if worker {
				f.cfg.WorkerURLs = splitURLs(f.workers)
			}
			if f.progress || isTerminal(e.stderr) {
				f.cfg.Progress = e.stderr
			}
			rep, err := run(ctx, f.cfg)
			if err != nil {
				return err
			}
			return e.loadResult(rep, f.asJSON, f.plot)
		}
	}}
}

// writePlot writes the report's series as an SVG file.
func writePlot(path string, r *loadgen.Report) error {
	var b bytes.Buffer
	title := fmt.Sprintf("load %s: %d calls, %d senders", r.Kind, r.N, r.Concurrency)
	if r.Mode == "open" {
		title += fmt.Sprintf(", %.0f/s offered", r.OfferedPerSec)
	}
	if r.Refused() {
		title += " (LIMITED: calls refused)"
	}
	if err := loadgen.WriteSVG(&b, title, r.Series); err != nil {
		return err
	}
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		return fmt.Errorf("--plot: %w", err)
	}
	return nil
}

// splitURLs splits a comma-separated list, dropping empty entries.
func splitURLs(s string) []string {
	var urls []string
	for u := range strings.SplitSeq(s, ",") {
		if u = strings.TrimSpace(u); u != "" {
			urls = append(urls, u)
		}
	}
	return urls
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
	switch r.Kind {
	case "direct", "clients":
		done, unit, blocks = "executed", "to executed", "shard blocks"
	case "getters":
		done, unit = "answered", "to the answer"
	case "indirect":
		done, unit = "executed", "from broadcast to executed"
	case "register":
		done, unit = "registered", "to commit"
	}
	if r.Refused() {
		fmt.Fprintf(w, "!! LIMITED by %s: calls were refused for want of capacity, so these figures measure that limit, not the workers' capacity\n", refusedBy(r))
	}
	switch r.Mode {
	case "open":
		fmt.Fprintf(w, "load %s (open loop): %d calls offered at %.1f/s, taken by %d senders", r.Kind, r.N, r.OfferedPerSec, r.Concurrency)
	case "closed":
		fmt.Fprintf(w, "load %s (closed loop): %d calls from %d senders", r.Kind, r.N, r.Concurrency)
	case "sessions":
		fmt.Fprintf(w, "load %s: %d calls from %d WebSocket sessions, one call out per session", r.Kind, r.N, r.Concurrency)
	default:
		fmt.Fprintf(w, "load %s: %d calls from %d senders", r.Kind, r.N, r.Concurrency)
	}
	if len(r.Workers) > 1 {
		fmt.Fprintf(w, " over %d workers", len(r.Workers))
	}
	fmt.Fprintln(w)
	for _, wk := range r.Workers {
		if len(r.Workers) > 1 {
			fmt.Fprintf(w, "  worker %s: %d senders, %d executed, %d failed, p50 %.1f ms  p99 %.1f ms\n", wk.URL, wk.Senders, wk.Executed, wk.Failed, wk.Latency.P50, wk.Latency.P99)
		}
	}
	printSessions(e, r)
	if r.Shielding != "" {
		fmt.Fprintf(w, "  shielding  %s\n", r.Shielding)
	}
	switch {
	case r.TransportSources > 0:
		fmt.Fprintf(w, "  transport  %s, a session per sender, from %d source addresses\n", r.Transport, r.TransportSources)
	case r.Transport != "":
		fmt.Fprintf(w, "  transport  %s\n", r.Transport)
	}
	fmt.Fprintf(w, "  submitted  %d in %.2fs (%.1f/s)\n", r.Submitted, r.SubmitSeconds, r.SubmittedPerSec)
	fmt.Fprintf(w, "  %-9s  %d in %.2fs (%.1f/s", done, r.Committed, r.TotalSeconds, r.CommittedPerSec)
	if r.Mode == "open" || r.Mode == "sessions" {
		fmt.Fprintf(w, " achieved of %.1f/s offered", r.OfferedPerSec)
	}
	if r.Refused() {
		fmt.Fprint(w, "; LIMITED, not capacity")
	}
	fmt.Fprintln(w, ")")
	from := ""
	if r.Mode == "open" || r.Mode == "sessions" {
		from = " (from due time)"
	}
	fmt.Fprintf(w, "  latency %s%s  p50 %.1f ms  p90 %.1f ms  p99 %.1f ms  max %.1f ms\n", unit, from, r.Latency.P50, r.Latency.P90, r.Latency.P99, r.Latency.Max)
	if l := r.LatencyConfirmed; l != nil {
		fmt.Fprintf(w, "  latency to confirmed on chain%s (%d calls)  p50 %.1f ms  p90 %.1f ms  p99 %.1f ms  max %.1f ms\n", from, r.Confirmed, l.P50, l.P90, l.P99, l.Max)
	}
	if b := r.BlocksToExecuted; b != nil {
		fmt.Fprintf(w, "  chain blocks from broadcast to executed  p50 %d  p90 %d  p99 %d  max %d\n", b.P50, b.P90, b.P99, b.Max)
	}
	if l := r.SendLag; l != nil {
		fmt.Fprintf(w, "  send lag after due  p50 %.1f ms  p99 %.1f ms  max %.1f ms  (%d late by more than %s)\n", l.P50, l.P99, l.Max, r.Late, loadgen.LateAfter)
	}
	if r.Blocks > 0 {
		fmt.Fprintf(w, "  %s %d (%.1f calls per block)\n", blocks, r.Blocks, float64(r.Committed)/float64(r.Blocks))
	}
	if r.Retries > 0 {
		fmt.Fprintf(w, "  resends after refusals %d (rate limited 1030: %d, busy 1031: %d)\n", r.Retries, r.RateLimited, r.Busy)
	}
	if r.Failed > 0 {
		fmt.Fprintf(w, "  failed %d: %s\n", r.Failed, failureList(r.Failures))
		for _, k := range slices.Sorted(maps.Keys(r.FailureExamples)) {
			fmt.Fprintf(w, "    first %s error: %s\n", k, r.FailureExamples[k])
		}
	} else {
		fmt.Fprintln(w, "  failed 0")
	}
	if len(r.Procs) > 0 {
		fmt.Fprintf(w, "  processes (CPU in the timed phase, peak RSS):\n")
		for _, p := range r.Procs {
			since := "since start"
			if p.PeakReset {
				since = "in the run"
			}
			fmt.Fprintf(w, "    %-18s pid %-7d %-16s cpu %6.2f s  peak rss %7.1f MiB (%s)\n", p.Role, p.PID, p.Comm, p.CPUSeconds, p.PeakRSSMiB, since)
		}
		fmt.Fprintf(w, "  system cpu %.2f s, %.3f ms per %s call\n", r.SystemCPUSeconds, r.CPUPerCallMs, done)
	}
	if c := r.Collector; c != nil {
		fmt.Fprintf(w, "  load generator's collector held in the timed phase (budget %.0f MiB): %d collections\n", c.BudgetMiB, c.Collections)
	}
	fmt.Fprintf(w, "  prepared in %.2fs before the timed phase", r.PrepareSeconds)
	if r.VerifySeconds > 0 {
		fmt.Fprintf(w, ", verified in %.2fs after it", r.VerifySeconds)
	}
	fmt.Fprintln(w)
	for _, l := range r.Limits {
		fmt.Fprintf(w, "  limit: %s\n", l)
	}
}

// refusedBy names the limits that refused calls.
func refusedBy(r *loadgen.Report) string {
	var by []string
	if r.RateLimited > 0 {
		by = append(by, fmt.Sprintf("the per-client rate limit (--rpc-rate/--rpc-burst: %d refusals 1030)", r.RateLimited))
	}
	if r.Busy > 0 {
		by = append(by, fmt.Sprintf("a full queue (--rpc-call-queue/--rpc-getter-queue: %d refusals 1031)", r.Busy))
	}
	return strings.Join(by, " and ")
}

// loadResult writes a run's plot (if asked) and its report, as JSON or
// text, and fails if any call failed.
func (e *env) loadResult(rep *loadgen.Report, asJSON bool, plot string) error {
	if plot != "" {
		if err := writePlot(plot, rep); err != nil {
			return err
		}
	}
	if asJSON {
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
