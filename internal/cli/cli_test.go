package cli

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"strings"
	"testing"
)

// tree is a small program: a root action with a flag, a group with two
// leaves of different flags, and a leaf that fails.
func tree(got *[]string) *Command {
	leaf := func(name, flagName string) *Command {
		return &Command{Name: name, Usage: "[--" + flagName + " V] ARG...", Short: "the " + name + " leaf",
			Setup: func(fs *flag.FlagSet) RunFunc {
				v := fs.String(flagName, "", "a `value`")
				return func(ctx context.Context, args []string) error {
					*got = append([]string{name, *v}, args...)
					return nil
				}
			}}
	}
	return &Command{
		Name:  "prog",
		Short: "a test program",
		Setup: func(fs *flag.FlagSet) RunFunc {
			root := fs.Bool("root", false, "the root's own flag")
			return func(ctx context.Context, args []string) error {
				if err := NoArgs(args); err != nil {
					return err
				}
				if !*root {
					return Usagef("no command given")
				}
				*got = []string{"root"}
				return nil
			}
		},
		Commands: []*Command{
			{Name: "group", Short: "a group", Commands: []*Command{leaf("a", "alpha"), leaf("b", "beta")}},
			{Name: "fail", Short: "fails", Setup: Action(func(context.Context, []string) error { return errors.New("it broke\nbadly") })},
		},
		Advice: func(err error) string { return " (advice)" },
	}
}

func TestExecute(t *testing.T) {
	for _, tc := range []struct {
		args   []string
		code   int
		got    string // the run's record
		stdout string // substring
		stderr string // the whole error line
	}{
		{[]string{"--root"}, 0, "root", "", ""},
		{[]string{"group", "a", "x", "--alpha", "1", "y"}, 0, "a 1 x y", "", ""},
		{[]string{"group", "b", "--beta=2", "--", "--alpha"}, 0, "b 2 --alpha", "", ""},
		{[]string{"group", "a", "x", "--alpha", "1", "y", "--", "--beta", "z"}, 0, "a 1 x y --beta z", "", ""},
		// Each leaf takes its own flags only.
		{[]string{"group", "a", "--beta", "2"}, 2, "", "", "prog: group a: flag provided but not defined: -beta (see 'prog group a -h')\n"},
		{[]string{"group", "b", "--root"}, 2, "", "", "prog: group b: flag provided but not defined: -root (see 'prog group b -h')\n"},
		{[]string{"--alpha", "1"}, 2, "", "", "prog: flag provided but not defined: -alpha (see 'prog -h')\n"},
		{nil, 2, "", "", "prog: no command given (see 'prog -h')\n"},
		{[]string{"--root", "extra"}, 2, "", "", "prog: unexpected argument \"extra\" (see 'prog -h')\n"},
		{[]string{"nope"}, 2, "", "", "prog: unknown command \"nope\" (see 'prog -h')\n"},
		{[]string{"group", "nope"}, 2, "", "", "prog: group: unknown command \"nope\" (see 'prog group -h')\n"},
		// A group without a command shows its commands, and fails.
		{[]string{"group"}, 2, "", "usage: prog group COMMAND", "prog: group: no command given (see 'prog group -h')\n"},
		// Failures are one line, with the root's advice; not usage errors.
		{[]string{"fail"}, 1, "", "", "prog: fail: it broke badly (advice)\n"},
		// Help goes to stdout and succeeds.
		{[]string{"-h"}, 0, "", "usage: prog COMMAND", ""},
		{[]string{"help"}, 0, "", "Run 'prog COMMAND -h'", ""},
		{[]string{"group", "--help"}, 0, "", "the b leaf", ""},
		{[]string{"help", "group", "a"}, 0, "", "usage: prog group a [--alpha V] ARG...", ""},
		{[]string{"group", "a", "x", "-h"}, 0, "", "-alpha value", ""},
		{[]string{"help", "nope"}, 2, "", "", "prog: unknown command \"nope\" (see 'prog -h')\n"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			var got []string
			var stdout, stderr bytes.Buffer
			code := Execute(context.Background(), tree(&got), tc.args, &stdout, &stderr)
			if code != tc.code {
				t.Errorf("exit %d, want %d (stderr %q)", code, tc.code, stderr.String())
			}
			if g := strings.Join(got, " "); g != tc.got {
				t.Errorf("ran %q, want %q", g, tc.got)
			}
			if !strings.Contains(stdout.String(), tc.stdout) {
				t.Errorf("stdout %q does not contain %q", stdout.String(), tc.stdout)
			}
			if stderr.String() != tc.stderr {
				t.Errorf("stderr %q, want %q", stderr.String(), tc.stderr)
			}
		})
	}
}

// TestHelpListsCommands: a command's help lists its subcommands with their
// short help, and its own flags but not its subcommands'.
func TestHelpListsCommands(t *testing.T) {
	var out bytes.Buffer
	if err := Run(context.Background(), tree(new([]string)), []string{"-h"}, &out); err != nil {
		t.Fatal(err)
	}
	h := out.String()
	for _, want := range []string{"usage: prog COMMAND [flags] [args]", "a test program", "group  a group", "fail   fails", "-root", "flags:"} {
		if !strings.Contains(h, want) {
			t.Errorf("help does not contain %q:\n%s", want, h)
		}
	}
	if strings.Contains(h, "-alpha") {
		t.Errorf("root help lists a subcommand's flag:\n%s", h)
	}
}

// TestRunErrors: Run reports usage errors typed, with the command's path,
// and a subcommand's failure prefixed with its path below the root.
func TestRunErrors(t *testing.T) {
	err := Run(context.Background(), tree(new([]string)), []string{"group", "a", "--zeta"}, new(bytes.Buffer))
	var ue *UsageError
	if !errors.As(err, &ue) || ue.Path != "prog group a" || err.Error() != "group a: flag provided but not defined: -zeta" {
		t.Errorf("err %v (%#v)", err, ue)
	}
	err = Run(context.Background(), tree(new([]string)), []string{"fail"}, new(bytes.Buffer))
	if errors.As(err, &ue) || err.Error() != "fail: it broke\nbadly" {
		t.Errorf("err %q", err)
	}
}

// TestContext: the run function gets the caller's context.
func TestContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	root := &Command{Name: "prog", Setup: Action(func(ctx context.Context, _ []string) error { return ctx.Err() })}
	if err := Run(ctx, root, nil, new(bytes.Buffer)); !errors.Is(err, context.Canceled) {
		t.Errorf("err %v", err)
	}
}
