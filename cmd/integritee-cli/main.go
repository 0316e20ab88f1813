package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/term"

	"github.com/integritee-go/integritee/client/keystore"
	"github.com/integritee-go/integritee/internal/cli"
)

// env is what commands may touch of the outside world; tests substitute
// buffers and a fixed clock.
type env struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	now            func() time.Time
	// trustDir is the default of --trust-dir.
	trustDir string
	// lookupEnv reads the environment (PassphraseEnv); nil: empty.
	lookupEnv func(string) (string, bool)
	// readPassword asks for a passphrase without echo; nil when there is
	// no terminal.
	readPassword func(prompt string) ([]byte, error)
	// kdf are the scrypt parameters of new key files; zero:
	// keystore.DefaultParams.
	kdf keystore.Params
}

// commands is the command tree: the groups, one file each (see the
// package doc). Add new groups here.
func (e *env) commands() *cli.Command {
	return &cli.Command{
		Name:  "integritee-cli",
		Usage: "GROUP COMMAND [flags] [args]",
		Short: "The command-line client of integritee-go.",
		Commands: []*cli.Command{
			e.attestationGroup(),
			e.accountGroup(),
			e.balanceCommand(),
			e.transferCommand(),
			e.enclavesGroup(),
			e.shardGroup(),
			e.policyGroup(),
			e.sudoGroup(),
			e.trustedGroup(),
			e.statusCommand(),
			e.localnetCommand(),
			e.loadGroup(),
		},
		Advice: trustAdvice,
	}
}

func main() {
	e := &env{stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr, now: time.Now, lookupEnv: os.LookupEnv}
	if fd := int(os.Stdin.Fd()); term.IsTerminal(fd) {
		e.readPassword = func(prompt string) ([]byte, error) {
			fmt.Fprint(os.Stderr, prompt)
			defer fmt.Fprintln(os.Stderr)
			return term.ReadPassword(fd)
		}
	}
	if home, err := os.UserHomeDir(); err == nil {
		e.trustDir = filepath.Join(home, ".integritee", "trust")
	}
	cli.Main(e.commands())
}

// run executes the command line args and returns the process exit status.
func run(ctx context.Context, args []string, e *env) int {
	return cli.Execute(ctx, e.commands(), args, e.stdout, e.stderr)
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
