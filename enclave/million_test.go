package enclave_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/integritee-go/integritee/chain/accounts"
	"github.com/integritee-go/integritee/chain/bridge"
	"github.com/integritee-go/integritee/chain/tx"
	"github.com/integritee-go/integritee/chain/types"
	"github.com/integritee-go/integritee/enclave/internal/testchain"
	"github.com/integritee-go/integritee/enclave/protocol"
	"github.com/integritee-go/integritee/enclave/shielding"
	"github.com/integritee-go/integritee/enclave/stf"
	"github.com/integritee-go/integritee/internal/cputime"
)

// BenchmarkMillion runs the enclave through the protocol with a state of
// 1k, 100k and 1M accounts, created by the dev build's dev_accounts call
// (docs/performance.md, "A million accounts"):
//
//   - block: a chain block of 100 confidential transfers (light client,
//     HPKE, signatures, STF, commit, sealed checkpoint), as
//     BenchmarkProcessBlock, whose cost must not grow with the state;
//   - restart: a fresh enclave restored from the persisted entries (Init
//     with the sealed checkpoint, LoadEntries in the worker's chunks of
//     4096, Resume), and the heap the restored enclave holds.
//
// Each reports the process CPU time per operation besides the wall time:
// on a shared machine the CPU time is the steadier figure.
//
// MILLION_ACCOUNTS=N runs only a state of N accounts.
func BenchmarkMillion(b *testing.B) {
	sizes := []int{1_000, 100_000, 1_000_000}
	if v := os.Getenv("MILLION_ACCOUNTS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			b.Fatalf("MILLION_ACCOUNTS=%q", v)
		}
		sizes = []int{n}
	}
	for _, n := range sizes {
		b.Run(fmt.Sprintf("accounts=%d", n), func(b *testing.B) {
			m := newMillion(b, n)
			b.Run("block", m.benchBlock)
			b.Run("restart", m.benchRestart)
		})
	}
}

type million struct {
	// bin is a dev build of the enclave to run as a process
	// ($MILLION_ENCLAVE), whose RSS is then reported; empty: in process.
	bin       string
	pid       int
	mrenclave [32]byte
	c         *chainSim
	h         *host
	shard     [32]byte
	pub       []byte
	users     []ed25519.PrivateKey
	next      int64 // next chain block to process
	round     uint64
}

const millionCalls = 100

func newMillion(b *testing.B, n int) *million {
	shard := sha256Of("million")
	m := &million{c: &chainSim{t: b, tc: testchain.New(chainID, 4, "million"), nonces: map[tx.Address]uint64{}}, shard: shard}
	m.h = newHost(b, shard)
	m.h.dev = true
	m.bin = os.Getenv("MILLION_ENCLAVE")
	m.start(b)
	rep, err := protocol.CallAs[*protocol.InitReply](context.Background(), m.h.c, m.h.initRequest(m.c))
	if err != nil {
		b.Fatal(err)
	}
	sk := rep.SealedKeys
	m.h.sealed, m.pub, m.mrenclave = &sk, rep.ShieldingPublic, rep.MRENCLAVE
	payer := accounts.DevKey("Alice")
	var shields [][]byte
	for i := range millionCalls {
		u := key(fmt.Sprint("million user ", i))
		m.users = append(m.users, u)
		a := addr(u)
		ct, err := shielding.Encrypt(m.pub, shielding.InfoShieldRecipient, a[:])
		if err != nil {
			b.Fatal(err)
		}
		shields = append(shields, m.c.tx(payer, bridge.Name, bridge.MethodShieldFunds, bridge.ShieldFunds{Shard: types.Hash(shard), Amount: 1 << 40, EncryptedRecipient: ct}))
	}
	m.c.tc.Add(shields, nil)
	// The generated accounts, one dev_accounts call per block.
	tgt := m.c.target(m.mrenclave, shard)
	sudo := devSudo
	if m.bin != "" {
		sudo = accounts.DevKey("Alice") // the dev build's sudo
	}
	for i, nonce := 0, uint64(0); i < n; nonce++ {
		k := min(n-i, stf.MaxDevAccounts)
		call := stf.Call{DevAccounts: &stf.DevAccounts{First: uint32(i), Count: uint32(k), Amount: 1000}}
		m.c.tc.Add([][]byte{invoke(b, m.c, payer, m.pub, shard, trustedCall(b, sudo, call, nonce, tgt))}, nil)
		i += k
	}
	start := time.Now()
	m.addTransfers(b)
	for m.next = 1; m.next < int64(m.c.tc.Height()); m.next++ {
		rep, err := m.h.process(m.c, m.next)
		if err != nil {
			b.Fatal(err)
		}
		if rep.Stats.Failed != 0 {
			b.Fatalf("block %d: %d calls failed", m.next, rep.Stats.Failed)
		}
	}
	if got := len(m.h.entries); got < n+millionCalls {
		b.Fatalf("%d entries after creating %d accounts", got, n)
	}
	b.Logf("state of %d accounts (%d entries) created in %v", n, len(m.h.entries), time.Since(start).Round(time.Millisecond))
	return m
}

// addTransfers adds a chain block of transfers between the users.
func (m *million) addTransfers(b *testing.B) {
	var txs [][]byte
	for i, u := range m.users {
		to := addr(m.users[(i+1)%len(m.users)])
		signed := trustedCall(b, u, stf.Call{Transfer: &stf.Transfer{From: addr(u), To: to, Amount: 1}}, m.round, m.c.target(m.mrenclave, m.shard))
		txs = append(txs, invoke(b, m.c, accounts.DevKey("Alice"), m.pub, m.shard, signed))
	}
	m.c.tc.Add(txs, nil)
	m.round++
}

func (m *million) benchBlock(b *testing.B) {
	ctx := context.Background()
	var cpu time.Duration
	for b.Loop() {
		b.StopTimer()
		m.addTransfers(b)
		req := request(b, m.c.tc, m.next)
		c0 := m.cpu(b)
		b.StartTimer()
		rep, err := protocol.CallAs[*protocol.ProcessBlockReply](ctx, m.h.c, req)
		if err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		cpu += m.cpu(b) - c0
		if rep.Stats.Applied != millionCalls {
			b.Fatalf("applied %d of %d", rep.Stats.Applied, millionCalls)
		}
		m.h.persist(rep)
		m.next++
		b.StartTimer()
	}
	b.ReportMetric(float64(cpu.Milliseconds())/float64(b.N), "cpu-ms/op")
}

func (m *million) benchRestart(b *testing.B) {
	entries := m.h.allEntries()
	slices.SortFunc(entries, func(a, b protocol.Entry) int { return bytes.Compare(a.Key[:], b.Key[:]) })
	want := m.h.root()
	var cpu time.Duration
	for b.Loop() {
		b.StopTimer()
		m.h.stop()
		runtime.GC()
		c0 := cputime.Used()
		b.StartTimer()
		m.restore(b, entries, want)
		b.StopTimer()
		cpu += cputime.Used() - c0
		if m.bin != "" {
			cpu += procCPU(b, m.pid) // all of the new process's
		}
		b.StartTimer()
	}
	b.StopTimer()
	b.ReportMetric(float64(cpu.Milliseconds())/float64(b.N), "cpu-ms/op")
	if m.bin != "" {
		// The enclave process's own memory.
		rss, hwm := procMemory(b, m.pid)
		b.ReportMetric(rss, "enclave-RSS-MiB")
		b.ReportMetric(hwm, "enclave-peakRSS-MiB")
		return
	}
	// The heap the running enclave holds: what stopping it frees.
	var with, without runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&with)
	m.h.stop()
	runtime.GC()
	runtime.ReadMemStats(&without)
	b.ReportMetric(float64(with.HeapAlloc-without.HeapAlloc)/(1<<20), "enclave-heap-MiB")
	m.restore(b, entries, want) // for whatever runs next
}

// restore starts a fresh enclave on the persisted keys, checkpoint and
// entries, as the worker's supervisor does.
func (m *million) restore(b *testing.B, entries []protocol.Entry, want [32]byte) {
	ctx := context.Background()
	m.start(b)
	rep, err := protocol.CallAs[*protocol.InitReply](ctx, m.h.c, m.h.initRequest(m.c))
	if err != nil || !rep.AwaitingEntries {
		b.Fatalf("init: %v (awaiting entries: %v)", err, rep != nil && rep.AwaitingEntries)
	}
	if err := m.h.load(entries, 4096); err != nil {
		b.Fatal(err)
	}
	res, err := protocol.CallAs[*protocol.ResumeReply](ctx, m.h.c, &protocol.Resume{})
	if err != nil || res.StateRoot != want {
		b.Fatalf("resume: %v", err)
	}
}

// start starts a fresh enclave: in process (host.start), or the dev
// build m.bin as a child process speaking the protocol on its stdio, as
// the worker runs it.
func (m *million) start(b *testing.B) {
	if m.bin == "" {
		m.h.start()
		return
	}
	if m.h.stop != nil {
		m.h.stop()
	}
	cmd := exec.Command(m.bin, "--tee", "sim", "--log-level", "warn")
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	m.pid = cmd.Process.Pid
	m.h.c = protocol.NewClient(stdioConn{out, in}, 0)
	m.h.stop = func() {
		in.Close()
		cmd.Wait()
		m.h.stop = nil
	}
	b.Cleanup(func() {
		if m.h.stop != nil {
			m.h.stop()
		}
	})
}

type stdioConn struct {
	io.Reader
	io.Writer
}

// procMemory returns a process's resident and peak resident memory in MiB.
func procMemory(b *testing.B, pid int) (rss, hwm float64) {
	st, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatal(err)
	}
	for line := range strings.Lines(string(st)) {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		kb, _ := strconv.ParseFloat(f[1], 64)
		switch f[0] {
		case "VmRSS:":
			rss = kb / 1024
		case "VmHWM:":
			hwm = kb / 1024
		}
	}
	return rss, hwm
}

// cpu is the CPU time of this process and the enclave process.
func (m *million) cpu(b *testing.B) time.Duration {
	if m.bin == "" {
		return cputime.Used()
	}
	return cputime.Used() + procCPU(b, m.pid)
}

// procCPU is the CPU time (user and system) process pid used so far.
func procCPU(b *testing.B, pid int) time.Duration {
	st, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		b.Fatal(err)
	}
	// Fields after the command's closing parenthesis; utime and stime
	// are the 14th and 15th of the line, in clock ticks (100 Hz).
	f := strings.Fields(string(st[strings.LastIndexByte(string(st), ')')+2:]))
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	sy, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+sy) * 10 * time.Millisecond
}
