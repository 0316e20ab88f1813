// Command integritee-cli is the command-line client of integritee-go.
//
// Commands are grouped ("integritee-cli GROUP COMMAND [flags] [args]"); each
// group lives in its own file and is listed in groups below. Every command
// takes --json for machine-readable output. On failure the command prints
// one line "integritee-cli: ..." to stderr and exits with status 1.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"text/tabwriter"
	"time"
)

// group is a set of related commands, e.g. "attestation". A group with
// run instead of commands is a single command ("balance NAME").
type group struct {
	name     string
	summary  string
	commands []command
	run      func(e *env, args []string) error
}

// command is one leaf command. run gets the arguments after the command
// name and does its own flag parsing with newFlagSet.
type command struct {
	name    string
	args    string // synopsis of the arguments, for usage
	summary string
	run     func(e *env, args []string) error
}

// env is what commands may touch of the outside world; tests substitute
// buffers and a fixed clock.
type env struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	now            func() time.Time
	// trustDir is the default of --trust-dir.
	trustDir string
}

// groups lists the command groups. Add new groups here, one file each.
func groups() []group {
	return []group{
		attestationGroup(),
		accountGroup(),
		balanceGroup(),
		transferGroup(),
		enclavesGroup(),
		shardGroup(),
		policyGroup(),
		sudoGroup(),
		trustedGroup(),
		localnetGroup(),
		loadGroup(),
	}
}

func main() {
	e := &env{stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr, now: time.Now}
	if home, err := os.UserHomeDir(); err == nil {
		e.trustDir = filepath.Join(home, ".integritee", "trust")
	}
	os.Exit(run(os.Args[1:], e))
}

// run executes the command line args and returns the process exit status.
func run(args []string, e *env) int {
	if err := dispatch(args, e); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintf(e.stderr, "integritee-cli: %s%s\n", oneLine(err.Error()), trustAdvice(err))
		return 1
	}
	return 0
}

func dispatch(args []string, e *env) error {
	gs := groups()
	if len(args) == 0 || isHelp(args[0]) {
		usage(e.stdout, gs)
		if len(args) == 0 {
			return errors.New("no command given")
		}
		return flag.ErrHelp
	}
	for _, g := range gs {
		if g.name != args[0] {
			continue
		}
		if g.run != nil {
			if err := g.run(e, args[1:]); err != nil {
				if errors.Is(err, flag.ErrHelp) {
					return err
				}
				return fmt.Errorf("%s: %w", g.name, err)
			}
			return nil
		}
		if len(args) == 1 || isHelp(args[1]) {
			groupUsage(e.stdout, g)
			if len(args) == 1 {
				return fmt.Errorf("%s: no command given", g.name)
			}
			return flag.ErrHelp
		}
		for _, c := range g.commands {
			if c.name == args[1] {
				if err := c.run(e, args[2:]); err != nil {
					if errors.Is(err, flag.ErrHelp) {
						return err
					}
					return fmt.Errorf("%s %s: %w", g.name, c.name, err)
				}
				return nil
			}
		}
		return fmt.Errorf("%s: unknown command %q (see integritee-cli %s help)", g.name, args[1], g.name)
	}
	return fmt.Errorf("unknown command group %q (see integritee-cli help)", args[0])
}

func isHelp(s string) bool { return s == "help" || s == "-h" || s == "--help" || s == "-help" }

func usage(w io.Writer, gs []group) {
	fmt.Fprintln(w, "usage: integritee-cli GROUP COMMAND [flags] [args]")
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, g := range gs {
		fmt.Fprintf(tw, "  %s\t%s\n", g.name, g.summary)
	}
	tw.Flush()
	fmt.Fprintln(w, "\nRun 'integritee-cli GROUP help' for the commands of a group.")
}

func groupUsage(w io.Writer, g group) {
	fmt.Fprintf(w, "usage: integritee-cli %s COMMAND [flags] [args]\n\n", g.name)
	cs := append([]command(nil), g.commands...)
	sort.Slice(cs, func(i, j int) bool { return cs[i].name < cs[j].name })
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, c := range cs {
		fmt.Fprintf(tw, "  %s %s\t%s\n", c.name, c.args, c.summary)
	}
	tw.Flush()
	fmt.Fprintf(w, "\nRun 'integritee-cli %s COMMAND -h' for its flags.\n", g.name)
}

// newFlagSet returns a flag set that reports errors instead of printing
// them, so failures stay one line; -h prints the defaults to stdout.
func newFlagSet(e *env, name, synopsis string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {
		fmt.Fprintf(e.stdout, "usage: integritee-cli %s %s\n", name, synopsis)
		fs.SetOutput(e.stdout)
		fs.PrintDefaults()
		fs.SetOutput(io.Discard)
	}
	return fs
}

// parseFlags parses args allowing flags after positional arguments
// ("verify FILE --json"), which the flag package alone does not.
func parseFlags(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		// On -h, Parse itself calls fs.Usage and returns flag.ErrHelp.
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if n := len(args) - len(rest); n > 0 && args[n-1] == "--" {
			// Everything after "--" is positional.
			return append(pos, rest...), nil
		}
		if len(rest) == 0 {
			return pos, nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// listFlag collects a repeatable or comma-separated string flag.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }

func (l *listFlag) Set(s string) error {
	for _, v := range strings.Split(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			*l = append(*l, v)
		}
	}
	return nil
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}
