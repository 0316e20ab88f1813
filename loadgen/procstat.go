package loadgen

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// The processes a run loads are found from the addresses it was given:
// the process holding the listening socket of the node's and each
// worker's RPC port (from /proc/net/tcp and the processes' open files),
// and the enclaves as those processes' children. On one machine that is
// sound without any cooperation of the processes: a port has one
// listener. Processes of another user (whose files cannot be read) are
// not found; the report then says so.

// userHZ is the unit of the CPU times in /proc/<pid>/stat: USER_HZ, 100
// on every Linux architecture Go supports (it is fixed by the ABI, not
// the kernel's HZ).
const userHZ = 100

// Proc is a process of the measured system and what it used.
type Proc struct {
	// Role is "node", "worker", "node+worker" (an in-process localnet)
	// or "enclave"; Addr is the RPC address it was found by (enclaves:
	// their worker's).
	Role string `json:"role"`
	Addr string `json:"addr,omitempty"`
	PID  int    `json:"pid"`
	Comm string `json:"comm"`
	// CPUSeconds is the user and system time it used during the timed
	// phase; PeakRSSMiB its peak resident set (VmHWM), since the start of
	// the timed phase if PeakReset, else since the process started.
	CPUSeconds float64 `json:"cpu_seconds"`
	PeakRSSMiB float64 `json:"peak_rss_mib"`
	PeakReset  bool    `json:"peak_reset"`
	cpuStart   uint64
}

// procFS reads a /proc tree; tests give a fake one.
type procFS struct{ root string }

// stat returns a process's command name, parent pid and user+system CPU
// ticks.
func (p procFS) stat(pid int) (comm string, ppid int, ticks uint64, err error) {
	b, err := os.ReadFile(filepath.Join(p.root, strconv.Itoa(pid), "stat"))
	if err != nil {
		return "", 0, 0, err
	}
	// comm is in parentheses and may hold spaces and ')': the fields
	// after it start after the last ')'.
	open, end := bytes.IndexByte(b, '('), bytes.LastIndexByte(b, ')')
	if open < 0 || end < open {
		return "", 0, 0, fmt.Errorf("/proc/%d/stat: no command name", pid)
	}
	comm = string(b[open+1 : end])
	f := strings.Fields(string(b[end+1:]))
	// f[0] is field 3 (state): ppid is field 4, utime 14, stime 15.
	if len(f) < 13 {
		return "", 0, 0, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f)+2)
	}
	ppid, err = strconv.Atoi(f[1])
	if err != nil {
		return "", 0, 0, fmt.Errorf("/proc/%d/stat: ppid: %w", pid, err)
	}
	ut, err1 := strconv.ParseUint(f[11], 10, 64)
	st, err2 := strconv.ParseUint(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return "", 0, 0, fmt.Errorf("/proc/%d/stat: cpu times: %w", pid, err)
	}
	return comm, ppid, ut + st, nil
}

// peakRSS returns VmHWM in KiB.
func (p procFS) peakRSS(pid int) (uint64, error) {
	f, err := os.Open(filepath.Join(p.root, strconv.Itoa(pid), "status"))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("/proc/%d/status: VmHWM: %w", pid, err)
			}
			return kb, nil
		}
	}
	return 0, fmt.Errorf("/proc/%d/status: no VmHWM", pid)
}

// resetPeak resets VmHWM to the current RSS (clear_refs 5, Linux 4.0+);
// it needs the right to write the process's clear_refs.
func (p procFS) resetPeak(pid int) bool {
	return os.WriteFile(filepath.Join(p.root, strconv.Itoa(pid), "clear_refs"), []byte("5"), 0) == nil
}

// pids lists the processes.
func (p procFS) pids() []int {
	ents, _ := os.ReadDir(p.root)
	var out []int
	for _, e := range ents {
		if pid, err := strconv.Atoi(e.Name()); err == nil && pid > 0 {
			out = append(out, pid)
		}
	}
	return out
}

// listenInodes returns the socket inodes listening on port (IPv4 and
// IPv6, any local address).
func (p procFS) listenInodes(port int) map[string]bool {
	inodes := map[string]bool{}
	for _, name := range []string{"net/tcp", "net/tcp6"} {
		b, err := os.ReadFile(filepath.Join(p.root, name))
		if err != nil {
			continue
		}
		for line := range strings.Lines(string(b)) {
			f := strings.Fields(line)
			// sl local rem st tx:rx tr:when retr uid timeout inode
			if len(f) < 10 || f[3] != "0A" { // TCP_LISTEN
				continue
			}
			_, hexPort, ok := strings.Cut(f[1], ":")
			if pp, err := strconv.ParseUint(hexPort, 16, 16); !ok || err != nil || int(pp) != port {
				continue
			}
			inodes[f[9]] = true
		}
	}
	return inodes
}

// listener returns the pid holding a socket listening on port, or 0.
func (p procFS) listener(port int) int {
	inodes := p.listenInodes(port)
	if len(inodes) == 0 {
		return 0
	}
	for _, pid := range p.pids() {
		dir := filepath.Join(p.root, strconv.Itoa(pid), "fd")
		fds, err := os.ReadDir(dir)
		if err != nil {
			continue
		}
		for _, fd := range fds {
			l, err := os.Readlink(filepath.Join(dir, fd.Name()))
			if err != nil {
				continue
			}
			if in, ok := strings.CutPrefix(l, "socket:["); ok && inodes[strings.TrimSuffix(in, "]")] {
				return pid
			}
		}
	}
	return 0
}

// portOf is the TCP port of a URL or host:port.
func portOf(addr string) (int, error) {
	s := addr
	if !strings.Contains(s, "://") {
		s = "http://" + s
	}
	u, err := url.Parse(s)
	if err != nil {
		return 0, err
	}
	_, port, err := net.SplitHostPort(u.Host)
	if err != nil {
		return 0, fmt.Errorf("%q: %w", addr, err)
	}
	return strconv.Atoi(port)
}

// findProcs finds the node's and workers' processes by their RPC
// addresses and the enclaves as the workers' children whose command name
// starts with "integritee-encl" (comm holds 15 bytes). A process serving
// several roles (an in-process localnet) is listed once, its role joined
// ("node+worker"). Addresses whose listener is not found are returned in
// missing.
func (p procFS) findProcs(node string, workers []string) (procs []*Proc, missing []string) {
	byPID := map[int]*Proc{}
	add := func(role, addr string) *Proc {
		port, err := portOf(addr)
		pid := 0
		if err == nil {
			pid = p.listener(port)
		}
		if pid == 0 {
			missing = append(missing, role+" "+addr)
			return nil
		}
		if pr := byPID[pid]; pr != nil {
			if !strings.Contains(pr.Role, role) {
				pr.Role += "+" + role
			}
			return pr
		}
		pr := &Proc{Role: role, Addr: addr, PID: pid}
		byPID[pid] = pr
		procs = append(procs, pr)
		return pr
	}
	add("node", node)
	var hosts []int
	for _, w := range workers {
		if pr := add("worker", w); pr != nil && !slices.Contains(hosts, pr.PID) {
			hosts = append(hosts, pr.PID)
		}
	}
	for _, pid := range p.pids() {
		comm, ppid, _, err := p.stat(pid)
		if err != nil || !slices.Contains(hosts, ppid) || !strings.HasPrefix(comm, "integritee-encl") {
			continue
		}
		pr := &Proc{Role: "enclave", Addr: byPID[ppid].Addr, PID: pid}
		byPID[pid] = pr
		procs = append(procs, pr)
	}
	for _, pr := range procs {
		pr.Comm, _, _, _ = p.stat(pr.PID)
	}
	return procs, missing
}

// start records the CPU time so far and resets the peak RSS.
func (p procFS) start(procs []*Proc) {
	for _, pr := range procs {
		_, _, pr.cpuStart, _ = p.stat(pr.PID)
		pr.PeakReset = p.resetPeak(pr.PID)
	}
}

// finish fills in the CPU used since start and the peak RSS.
func (p procFS) finish(procs []*Proc) {
	for _, pr := range procs {
		if _, _, t, err := p.stat(pr.PID); err == nil && t >= pr.cpuStart {
			pr.CPUSeconds = float64(t-pr.cpuStart) / userHZ
		}
		if kb, err := p.peakRSS(pr.PID); err == nil {
			pr.PeakRSSMiB = float64(kb) / 1024
		}
	}
}
