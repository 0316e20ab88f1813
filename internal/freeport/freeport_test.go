package freeport

import (
	"net"
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

// TestAddrBelowEphemeralRange: the ports picked are on the loopback,
// bindable, and below the ephemeral range, where outgoing connections do
// not take them.
func TestAddrBelowEphemeralRange(t *testing.T) {
	low := ephemeralLow(rangeFile)
	for range 20 {
		a, err := Addr()
		if err != nil {
			t.Fatal(err)
		}
		host, port, err := net.SplitHostPort(a)
		if err != nil || host != "127.0.0.1" {
			t.Fatalf("address %q: %v", a, err)
		}
		p, _ := strconv.Atoi(port)
		if low > lowest && (p < lowest || p >= low) {
			t.Fatalf("port %d outside [%d, %d)", p, lowest, low)
		}
		l, err := net.Listen("tcp", a)
		if err != nil {
			t.Fatalf("picked %s, but it cannot be bound: %v", a, err)
		}
		l.Close()
	}
}

// TestPickFallsBack: with no room below the range, the kernel picks.
func TestPickFallsBack(t *testing.T) {
	a, err := pick(lowest)
	if err != nil {
		t.Fatal(err)
	}
	if _, port, _ := net.SplitHostPort(a); port == "0" || port == "" {
		t.Fatalf("address %q", a)
	}
}

func TestEphemeralLow(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		text string
		want int
	}{
		{"32768\t60999\n", 32768},
		{"49152 65535", 49152},
		{"", defaultEphemeral},
		{"x 1", defaultEphemeral},
		{"0 1", defaultEphemeral},
		{"70000 80000", defaultEphemeral},
	} {
		p := filepath.Join(dir, "range")
		if err := os.WriteFile(p, []byte(c.text), 0o600); err != nil {
			t.Fatal(err)
		}
		if got := ephemeralLow(p); got != c.want {
			t.Errorf("%q: %d, want %d", c.text, got, c.want)
		}
	}
	if got := ephemeralLow(filepath.Join(dir, "missing")); got != defaultEphemeral {
		t.Errorf("missing file: %d", got)
	}
}
