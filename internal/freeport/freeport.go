// Package freeport picks loopback TCP ports for servers that are told
// their address before they bind it (a CometBFT node's RPC and P2P
// listeners, from its configuration).
//
// A port that was free when picked may be taken before it is bound. The
// usual pick, binding port 0, returns a port from the kernel's ephemeral
// range, the range every outgoing connection's local port is also taken
// from: a busy machine (a test suite opening connections beside) takes
// such a port within the gap often enough to fail a test now and then.
// Ports below that range are taken only by explicit binds, so Addr picks
// there, at random.
package freeport

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
)

// rangeFile is where Linux keeps its ephemeral port range.
const rangeFile = "/proc/sys/net/ipv4/ip_local_port_range"

// lowest is the lowest port Addr picks: above the well-known and most
// registered services' ports.
const lowest = 10000

// defaultEphemeral is the bottom of Linux's default ephemeral range.
const defaultEphemeral = 32768

// Addr returns a loopback host:port that was free a moment ago, below the
// ephemeral range if there is room there, else from the kernel (port 0).
func Addr() (string, error) {
	return pick(ephemeralLow(rangeFile))
}

func pick(below int) (string, error) {
	if below > lowest {
		for range 64 {
			p := lowest + rand.IntN(below-lowest)
			if l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p)); err == nil {
				l.Close()
				return l.Addr().String(), nil
			}
		}
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("free port: %w", err)
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// ephemeralLow is the bottom of the ephemeral range in path, or Linux's
// default if it cannot be read.
func ephemeralLow(path string) int {
	b, err := os.ReadFile(path)
	if err != nil {
		return defaultEphemeral
	}
	f := strings.Fields(string(b))
	if len(f) != 2 {
		return defaultEphemeral
	}
	lo, err := strconv.Atoi(f[0])
	if err != nil || lo < 1 || lo > 65535 {
		return defaultEphemeral
	}
	return lo
}
