// Package cli is the command layer of the integritee binaries
// (integritee-node, integritee-worker, integritee-cli): a tree of commands
// in which each command declares its own flag set, so that it accepts
// exactly its flags and no other command's; one help format for every
// command; and one exit-status convention: 0 for success or requested help,
// 1 for a failed command, 2 for a usage error (an unknown command or flag,
// a missing or surplus argument).
//
// Help (-h, --help, or the word help before a command name) goes to
// stdout. An error is one line "PROGRAM: COMMAND: ..." on stderr, so that a
// script can show it as it is.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"text/tabwriter"
)

// RunFunc runs a command with its positional arguments, once its flags are
// parsed. ctx ends on SIGINT or SIGTERM (see Main).
type RunFunc func(ctx context.Context, args []string) error

// Command is a node of the command tree: a group of subcommands, an action,
// or both (a program that runs without a command but also has some, like
// integritee-worker and its version command).
type Command struct {
	// Name selects the command on the command line; the root's is the
	// program name.
	Name string
	// Usage is the synopsis after the command's path in its help, e.g.
	// "FILE [flags]". Empty for a group: "COMMAND [flags] [args]".
	Usage string
	// Short is the one-line description in the parent's listing.
	Short string
	// Long, if set, follows the usage line in the command's help.
	Long string
	// Setup declares the command's flags on fs and returns the function
	// that runs it. It is also called to print help, so it must only
	// declare flags. Nil for a group that only dispatches.
	Setup func(fs *flag.FlagSet) RunFunc
	// Commands are the subcommands, listed in help in this order.
	Commands []*Command
	// Advice, on the root only, returns text to append to a failed
	// command's error line (what to do about it), or "".
	Advice func(error) string
}

// Action is the Setup of a command without flags.
func Action(run RunFunc) func(*flag.FlagSet) RunFunc {
	return func(*flag.FlagSet) RunFunc { return run }
}

// UsageError is a command line the program cannot run: it exits with
// status 2.
type UsageError struct {
	// Path is the command whose usage was wrong, e.g. "integritee-node
	// init"; the layer fills it in.
	Path string
	Err  error
}

func (e *UsageError) Error() string { return e.Err.Error() }
func (e *UsageError) Unwrap() error { return e.Err }

// Usagef returns a usage error; commands use it for bad arguments that
// their flag set cannot catch.
func Usagef(format string, args ...any) error {
	return &UsageError{Err: fmt.Errorf(format, args...)}
}

// NoArgs refuses positional arguments.
func NoArgs(args []string) error {
	if len(args) != 0 {
		return Usagef("unexpected argument %q", args[0])
	}
	return nil
}

// Main runs root with the process's arguments and standard streams under
// a context that SIGINT or SIGTERM cancels, and exits with Execute's
// status. After the first signal the default handling is restored, so a
// second one kills a command that does not stop.
func Main(root *Command) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		<-ctx.Done()
		stop()
	}()
	code := Execute(ctx, root, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// Execute runs the command line args against root, prints a failure as one
// line on stderr and returns the exit status (0, 1, or 2 for a usage
// error).
func Execute(ctx context.Context, root *Command, args []string, stdout, stderr io.Writer) int {
	err := Run(ctx, root, args, stdout)
	if err == nil {
		return 0
	}
	line := root.Name + ": " + strings.Join(strings.Fields(err.Error()), " ")
	if ue := (*UsageError)(nil); errors.As(err, &ue) {
		fmt.Fprintf(stderr, "%s (see '%s -h')\n", line, ue.Path)
		return 2
	}
	if root.Advice != nil {
		line += root.Advice(err)
	}
	fmt.Fprintln(stderr, line)
	return 1
}

// Run runs the command line args against root; help goes to stdout and
// returns nil. A usage error is a *UsageError. An error of a subcommand is
// prefixed with its path below the root ("attestation verify: ...").
func Run(ctx context.Context, root *Command, args []string, stdout io.Writer) error {
	return root.run(ctx, []string{root.Name}, args, stdout)
}

func (c *Command) run(ctx context.Context, path, args []string, stdout io.Writer) error {
	if len(c.Commands) > 0 && len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		if args[0] == "help" {
			// "help A B" is "A B -h".
			return c.run(ctx, path, append(args[1:len(args):len(args)], "-h"), stdout)
		}
		sub := c.find(args[0])
		if sub == nil {
			return c.usage(path, fmt.Errorf("unknown command %q", args[0]))
		}
		return sub.run(ctx, append(path[:len(path):len(path)], sub.Name), args[1:], stdout)
	}
	fs := flag.NewFlagSet(strings.Join(path, " "), flag.ContinueOnError)
	// The layer reports parse errors itself, as one line.
	fs.SetOutput(io.Discard)
	var runFn RunFunc
	if c.Setup != nil {
		runFn = c.Setup(fs)
	}
	pos, err := parseInterspersed(fs, args)
	if errors.Is(err, flag.ErrHelp) {
		c.help(stdout, path, fs)
		return nil
	}
	if err != nil {
		return c.usage(path, err)
	}
	if runFn == nil {
		// A group named without a command: show what it has.
		c.help(stdout, path, fs)
		if len(pos) > 0 {
			return c.usage(path, fmt.Errorf("unknown command %q", pos[0]))
		}
		return c.usage(path, errors.New("no command given"))
	}
	err = runFn(ctx, pos)
	if err == nil {
		return nil
	}
	if ue := (*UsageError)(nil); errors.As(err, &ue) && ue.Path == "" {
		ue.Path = strings.Join(path, " ")
	}
	return prefix(path, err)
}

// usage returns err as a usage error of the command at path.
func (c *Command) usage(path []string, err error) error {
	return prefix(path, &UsageError{Path: strings.Join(path, " "), Err: err})
}

// prefix names the command below the root that failed: the root's name
// starts the error line anyway.
func prefix(path []string, err error) error {
	if len(path) < 2 {
		return err
	}
	return fmt.Errorf("%s: %w", strings.Join(path[1:], " "), err)
}

func (c *Command) find(name string) *Command {
	for _, s := range c.Commands {
		if s.Name == name {
			return s
		}
	}
	return nil
}

// help writes the command's help: usage, description, subcommands, flags.
func (c *Command) help(w io.Writer, path []string, fs *flag.FlagSet) {
	p := strings.Join(path, " ")
	u := c.Usage
	if u == "" && len(c.Commands) > 0 {
		u = "COMMAND [flags] [args]"
	}
	fmt.Fprintf(w, "usage: %s %s\n", p, u)
	if c.Short != "" {
		fmt.Fprintf(w, "\n%s\n", c.Short)
	}
	if c.Long != "" {
		fmt.Fprintf(w, "\n%s\n", strings.TrimSpace(c.Long))
	}
	if len(c.Commands) > 0 {
		fmt.Fprintln(w, "\ncommands:")
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		for _, s := range c.Commands {
			fmt.Fprintf(tw, "  %s\t%s\n", s.Name, s.Short)
		}
		tw.Flush()
	}
	nflags := 0
	fs.VisitAll(func(*flag.Flag) { nflags++ })
	if nflags > 0 {
		fmt.Fprintln(w, "\nflags:")
		fs.SetOutput(w)
		fs.PrintDefaults()
		fs.SetOutput(io.Discard)
	}
	if len(c.Commands) > 0 {
		fmt.Fprintf(w, "\nRun '%s COMMAND -h' for a command's flags.\n", p)
	}
}

// parseInterspersed parses args allowing flags after positional arguments
// ("verify FILE --json"), which the flag package alone does not; "--" ends
// the flags.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if n := len(args) - len(rest); n > 0 && args[n-1] == "--" {
			return append(pos, rest...), nil
		}
		if len(rest) == 0 {
			return pos, nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}
