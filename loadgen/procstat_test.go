package loadgen

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

// fakeProc writes a /proc tree: a localnet process 100 (node and worker
// listening on ports 26657 and 2000) with two enclave children, an
// unrelated enclave 300 of another parent, and process 400 listening on
// 3000.
func fakeProc(t *testing.T) procFS {
	t.Helper()
	root := t.TempDir()
	write := func(name, s string) {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	stat := func(pid, ppid int, comm string, utime, stime uint64) {
		write(fmt.Sprintf("%d/stat", pid), fmt.Sprintf("%d (%s) S %d 1 1 0 -1 4194304 100 0 0 0 %d %d 0 0 20 0 4 0 5 1000 100\n", pid, comm, ppid, utime, stime))
		write(fmt.Sprintf("%d/status", pid), fmt.Sprintf("Name:\t%s\nVmPeak:\t 999 kB\nVmHWM:\t  %d kB\nVmRSS:\t 10 kB\n", comm, 2048*pid))
	}
	stat(100, 1, "integritee-cli", 500, 250)
	stat(101, 100, "integritee-encl", 40, 10)
	stat(102, 100, "integritee-encl", 30, 10)
	stat(103, 100, "go) (weird", 1, 1)
	stat(300, 1, "integritee-encl", 7, 7)
	stat(400, 1, "integritee-node", 3, 4)
	write("net/tcp", `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:6821 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 111 1 0000000000000000 100 0 0 10 0
   1: 0100007F:07D0 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 222 1 0000000000000000 100 0 0 10 0
   2: 0100007F:07D0 0100007F:C000 01 00000000:00000000 00:00000000 00000000  1000        0 333 1 0000000000000000 100 0 0 10 0
`)
	write("net/tcp6", `  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000000000000:0BB8 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 444 1 0000000000000000 100 0 0 10 0
`)
	link := func(pid int, fd, target string) {
		dir := filepath.Join(root, strconv.Itoa(pid), "fd")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(target, filepath.Join(dir, fd)); err != nil {
			t.Fatal(err)
		}
	}
	link(100, "3", "socket:[111]")
	link(100, "4", "/dev/null")
	link(100, "5", "socket:[222]")
	link(300, "5", "socket:[333]") // a connection, not a listener
	link(400, "7", "socket:[444]")
	return procFS{root: root}
}

func TestFindProcs(t *testing.T) {
	p := fakeProc(t)
	procs, missing := p.findProcs("http://127.0.0.1:26657", []string{"http://127.0.0.1:2000", "http://127.0.0.1:2001"})
	if len(missing) != 1 || missing[0] != "worker http://127.0.0.1:2001" {
		t.Errorf("missing %q, want the worker on 2001", missing)
	}
	got := map[int]string{}
	for _, pr := range procs {
		got[pr.PID] = pr.Role + " " + pr.Comm
	}
	want := map[int]string{100: "node+worker integritee-cli", 101: "enclave integritee-encl", 102: "enclave integritee-encl"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("procs %v, want %v", got, want)
	}
	// A node of its own, found by its IPv6 listener.
	procs, missing = p.findProcs("127.0.0.1:3000", nil)
	if len(procs) != 1 || procs[0].PID != 400 || procs[0].Role != "node" || len(missing) != 0 {
		t.Errorf("node on 3000: %+v, missing %q", procs, missing)
	}
}

func TestProcUsage(t *testing.T) {
	p := fakeProc(t)
	procs, _ := p.findProcs("http://127.0.0.1:26657", []string{"http://127.0.0.1:2000"})
	p.start(procs)
	// The localnet process uses 3 s more (300 ticks), enclave 101 0.5 s.
	if err := os.WriteFile(filepath.Join(p.root, "100/stat"), []byte("100 (integritee-cli) S 1 1 1 0 -1 4194304 100 0 0 0 700 350 0 0 20 0 4 0 5 1000 100\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(p.root, "101/stat"), []byte("101 (integritee-encl) S 100 1 1 0 -1 4194304 100 0 0 0 80 20 0 0 20 0 4 0 5 1000 100\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	p.finish(procs)
	for _, pr := range procs {
		want := map[int]float64{100: 3, 101: 0.5, 102: 0}[pr.PID]
		if pr.CPUSeconds != want {
			t.Errorf("pid %d: cpu %.2f s, want %.2f", pr.PID, pr.CPUSeconds, want)
		}
		if pr.PeakRSSMiB != float64(2*pr.PID) {
			t.Errorf("pid %d: peak %.1f MiB, want %d", pr.PID, pr.PeakRSSMiB, 2*pr.PID)
		}
		if !pr.PeakReset { // clear_refs is a plain file here
			t.Errorf("pid %d: peak not reset", pr.PID)
		}
	}
}

// TestListenerOnThisMachine finds this test's own listener in the real
// /proc.
func TestListenerOnThisMachine(t *testing.T) {
	if _, err := os.Stat("/proc/net/tcp"); err != nil {
		t.Skip("no /proc/net/tcp")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	if pid := (procFS{root: "/proc"}).listener(port); pid != os.Getpid() {
		t.Errorf("listener of port %d: pid %d, want this test's %d", port, pid, os.Getpid())
	}
	_, _, ticks, err := (procFS{root: "/proc"}).stat(os.Getpid())
	if err != nil || ticks == 0 {
		t.Errorf("own cpu ticks %d, %v", ticks, err)
	}
}
