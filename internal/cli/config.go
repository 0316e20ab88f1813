package cli

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/pelletier/go-toml/v2"
)

// A config file holds the settings of a command's flags as TOML: each key
// is the name of a flag, each value the flag's value in its TOML type
// (strings, durations as strings like "10s", numbers, booleans, arrays for
// repeatable flags). Flags given on the command line override the file.

// ListFlag is a repeatable string flag (each use appends); in a config
// file it is an array of strings.
type ListFlag []string

// String joins the values with commas.
func (l *ListFlag) String() string { return strings.Join(*l, ",") }

// Set appends one value.
func (l *ListFlag) Set(s string) error {
	*l = append(*l, s)
	return nil
}

// Get returns the values.
func (l *ListFlag) Get() any { return []string(*l) }

// WriteConfig writes every flag of fs but those named in skip as a
// commented TOML document: header, then per flag its usage as a comment
// and its current value.
func WriteConfig(w io.Writer, header string, fs *flag.FlagSet, skip ...string) error {
	var buf bytes.Buffer
	for _, line := range strings.Split(strings.TrimSpace(header), "\n") {
		fmt.Fprintf(&buf, "# %s\n", line)
	}
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		if err != nil || slices.Contains(skip, f.Name) {
			return
		}
		var v any
		if v, err = tomlValue(f); err != nil {
			return
		}
		var line []byte
		if line, err = toml.Marshal(map[string]any{f.Name: v}); err != nil {
			err = fmt.Errorf("config: %s: %w", f.Name, err)
			return
		}
		_, usage := flag.UnquoteUsage(f)
		buf.WriteByte('\n')
		for _, l := range wrap(usage, 76) {
			fmt.Fprintf(&buf, "# %s\n", l)
		}
		buf.Write(line)
	})
	if err != nil {
		return err
	}
	_, err = w.Write(buf.Bytes())
	return err
}

// tomlValue is the flag's current value as the TOML type the file holds.
func tomlValue(f *flag.Flag) (any, error) {
	g, ok := f.Value.(flag.Getter)
	if !ok {
		return nil, fmt.Errorf("config: flag %s has no typed value", f.Name)
	}
	switch v := g.Get().(type) {
	case bool, string, int, int64, uint, uint64, float64:
		return v, nil
	case time.Duration:
		return v.String(), nil
	case []string:
		if v == nil {
			v = []string{}
		}
		return v, nil
	default:
		return nil, fmt.Errorf("config: flag %s has a value of type %T", f.Name, v)
	}
}

// wrap splits s into lines of at most width characters at spaces.
func wrap(s string, width int) []string {
	var lines []string
	line := ""
	for _, word := range strings.Fields(s) {
		if line != "" && len(line)+1+len(word) > width {
			lines = append(lines, line)
			line = ""
		}
		if line != "" {
			line += " "
		}
		line += word
	}
	return append(lines, line)
}

// ApplyConfig sets the flags of fs from the TOML file at path, but not
// those already set (on the command line) nor those named in skip. A key
// that names no flag, a value of the wrong type and a value the flag
// refuses are errors naming the file and the key.
func ApplyConfig(path string, fs *flag.FlagSet, skip ...string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	var doc map[string]any
	if err := toml.Unmarshal(b, &doc); err != nil {
		var de *toml.DecodeError
		if errors.As(err, &de) {
			row, col := de.Position()
			return fmt.Errorf("config %s:%d:%d: %w", path, row, col, err)
		}
		return fmt.Errorf("config %s: %w", path, err)
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	keys := make([]string, 0, len(doc))
	for k := range doc {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		f := fs.Lookup(k)
		if f == nil || slices.Contains(skip, k) {
			return fmt.Errorf("config %s: unknown setting %q (the settings are the flags of '%s -h', without the dashes)", path, k, fs.Name())
		}
		if set[k] {
			continue
		}
		if err := applyValue(fs, f, doc[k]); err != nil {
			return fmt.Errorf("config %s: %s: %w", path, k, err)
		}
	}
	return nil
}

// applyValue sets flag f from the decoded TOML value v, which must have
// the flag's type.
func applyValue(fs *flag.FlagSet, f *flag.Flag, v any) error {
	cur, err := tomlValue(f)
	if err != nil {
		return err
	}
	if _, ok := f.Value.(flag.Getter).Get().(time.Duration); ok {
		str, ok := v.(string)
		if !ok {
			return fmt.Errorf("want a duration as a string like \"10s\", got %s", describe(v))
		}
		return set(fs, f.Name, str)
	}
	var s string
	switch cur.(type) {
	case bool:
		b, ok := v.(bool)
		if !ok {
			return fmt.Errorf("want true or false, got %s", describe(v))
		}
		s = strconv.FormatBool(b)
	case int, int64, uint, uint64:
		n, ok := v.(int64)
		if !ok {
			return fmt.Errorf("want an integer, got %s", describe(v))
		}
		s = strconv.FormatInt(n, 10)
	case float64:
		switch n := v.(type) {
		case int64:
			s = strconv.FormatInt(n, 10)
		case float64:
			s = strconv.FormatFloat(n, 'g', -1, 64)
		default:
			return fmt.Errorf("want a number, got %s", describe(v))
		}
	case string:
		str, ok := v.(string)
		if !ok {
			return fmt.Errorf("want a string, got %s", describe(v))
		}
		s = str
	case []string:
		arr, ok := v.([]any)
		if !ok {
			return fmt.Errorf("want an array of strings, got %s", describe(v))
		}
		for i, e := range arr {
			str, ok := e.(string)
			if !ok {
				return fmt.Errorf("element %d: want a string, got %s", i, describe(e))
			}
			if err := set(fs, f.Name, str); err != nil {
				return err
			}
		}
		return nil
	}
	return set(fs, f.Name, s)
}

// set sets a flag, saying which value it refused.
func set(fs *flag.FlagSet, name, value string) error {
	if err := fs.Set(name, value); err != nil {
		return fmt.Errorf("invalid value %q: %w", value, err)
	}
	return nil
}

// describe names a decoded TOML value's type for an error.
func describe(v any) string {
	switch v := v.(type) {
	case string:
		return fmt.Sprintf("the string %q", v)
	case int64, float64:
		return fmt.Sprintf("the number %v", v)
	case bool:
		return fmt.Sprintf("%v", v)
	case []any:
		return "an array"
	case map[string]any:
		return "a table"
	default:
		return fmt.Sprintf("a %T", v)
	}
}
