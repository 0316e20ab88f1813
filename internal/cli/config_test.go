package cli

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// settings is a flag set of every type a config file holds.
type settings struct {
	Name  string
	On    bool
	Count int
	Max   uint
	Rate  float64
	Wait  time.Duration
	Peers ListFlag
}

func newSettings() (*flag.FlagSet, *settings) {
	fs := flag.NewFlagSet("prog", flag.ContinueOnError)
	s := &settings{}
	fs.StringVar(&s.Name, "name", "default", "the `name`, with \"quotes\" and a # sign")
	fs.BoolVar(&s.On, "on", false, "switch it on")
	fs.IntVar(&s.Count, "count", 3, "how many")
	fs.UintVar(&s.Max, "max", 10, "at most")
	fs.Float64Var(&s.Rate, "rate", 2.5, "per second")
	fs.DurationVar(&s.Wait, "wait", time.Second, "how long, a usage long enough to be wrapped over two lines of the comment in the file written")
	fs.Var(&s.Peers, "peer", "a peer (repeatable)")
	fs.String("config", "", "the file itself")
	return fs, s
}

func writeConfig(t *testing.T, fs *flag.FlagSet) (string, string) {
	t.Helper()
	var buf bytes.Buffer
	if err := WriteConfig(&buf, "prog settings\nsecond line", fs, "config"); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "prog.toml")
	if err := os.WriteFile(path, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	return path, buf.String()
}

// TestConfigRoundTrip: a file written from flags sets the same values in a
// fresh flag set, defaults and changed values alike; every flag but the
// skipped one is in it, with its usage as a comment.
func TestConfigRoundTrip(t *testing.T) {
	for _, args := range [][]string{
		nil,
		{"--name", `a "b" # c`, "--on", "--count", "-7", "--max", "0", "--rate", "0.125", "--wait", "1m30s", "--peer", "x", "--peer", "y"},
	} {
		fs, want := newSettings()
		if err := fs.Parse(args); err != nil {
			t.Fatal(err)
		}
		path, text := writeConfig(t, fs)
		for _, s := range []string{"# prog settings\n# second line\n", "# the name, with", "# how long", "\n# the file written\n", "wait = '"} {
			if !strings.Contains(text, s) {
				t.Errorf("file lacks %q:\n%s", s, text)
			}
		}
		if strings.Contains(text, "config") {
			t.Errorf("the skipped flag is in the file:\n%s", text)
		}
		fs2, got := newSettings()
		if err := fs2.Parse(nil); err != nil {
			t.Fatal(err)
		}
		// Start the fresh set away from the defaults, so that equal values
		// come from the file.
		got.Name, got.On, got.Count, got.Max, got.Rate, got.Wait = "?", !want.On, 99, 99, 99, time.Hour
		if err := ApplyConfig(path, fs2, "config"); err != nil {
			t.Fatal(err)
		}
		if want.Peers == nil {
			want.Peers = ListFlag{}
		}
		if got.Peers == nil {
			got.Peers = ListFlag{}
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("file gave %+v, want %+v\n%s", got, want, text)
		}
	}
}

// TestConfigFlagsOverride: a flag on the command line wins over the file,
// the file over the default.
func TestConfigFlagsOverride(t *testing.T) {
	fs, _ := newSettings()
	if err := fs.Parse([]string{"--count", "5", "--peer", "file-peer", "--name", "from-file"}); err != nil {
		t.Fatal(err)
	}
	path, _ := writeConfig(t, fs)
	fs2, got := newSettings()
	if err := fs2.Parse([]string{"--count", "6", "--peer", "cmd-peer"}); err != nil {
		t.Fatal(err)
	}
	if err := ApplyConfig(path, fs2, "config"); err != nil {
		t.Fatal(err)
	}
	if got.Count != 6 || !reflect.DeepEqual([]string(got.Peers), []string{"cmd-peer"}) || got.Name != "from-file" || got.Rate != 2.5 {
		t.Fatalf("got %+v", got)
	}
}

func TestConfigRefused(t *testing.T) {
	tests := []struct {
		name, file, want string
	}{
		{"unknown key", "nmae = 'x'\n", `unknown setting "nmae"`},
		{"skipped key", "config = 'x'\n", `unknown setting "config"`},
		{"table", "[name]\nx = 1\n", "want a string, got a table"},
		{"string for int", "count = '5'\n", `count: want an integer, got the string "5"`},
		{"float for int", "count = 5.5\n", "want an integer"},
		{"negative uint", "max = -1\n", `max: invalid value "-1"`},
		{"number for duration", "wait = 10\n", `want a duration as a string like "10s"`},
		{"bad duration", "wait = 'soon'\n", `wait: invalid value "soon"`},
		{"string for bool", "on = 'yes'\n", "want true or false"},
		{"array of numbers", "peer = [1]\n", "element 0: want a string"},
		{"string for array", "peer = 'x'\n", "want an array of strings"},
		{"syntax", "name = \n", "prog.toml:1:"},
		{"duplicate", "name = 'a'\nname = 'b'\n", "prog.toml:2:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "prog.toml")
			if err := os.WriteFile(path, []byte(tt.file), 0o600); err != nil {
				t.Fatal(err)
			}
			fs, _ := newSettings()
			err := ApplyConfig(path, fs, "config")
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), path) {
				t.Fatalf("err = %v, want one naming %s and saying %q", err, path, tt.want)
			}
		})
	}
	fs, _ := newSettings()
	if err := ApplyConfig(filepath.Join(t.TempDir(), "none.toml"), fs); err == nil || !strings.Contains(err.Error(), "no such file") {
		t.Fatalf("missing file: %v", err)
	}
}
