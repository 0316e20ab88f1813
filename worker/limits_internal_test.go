package worker

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/integritee-go/integritee/enclave/protocol"
	"github.com/integritee-go/integritee/worker/rpc"
)

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); !cond(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

func (m *fifoMutex) waiting() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.waiters)
}

// TestGettersDoNotStarveBlocks floods the worker's RPC with 40 getters
// while the first is held in the enclave, then lets a chain block ask for
// the enclave (a turn, as a chain block's Apply takes): it gets it after
// the getters that were already waiting, MaxGetters at most, not after the
// flood. On the old code every getter went to the lock on its own
// goroutine and
// sync.Mutex let them all (and the ones that kept coming) ahead: the block
// waited for about 40.
func TestGettersDoNotStarveBlocks(t *testing.T) {
	const getters, maxGetters = 40, 3
	release := make(chan struct{})
	var entered atomic.Int64
	encl := Pipe(protocol.HandlerFunc(func(_ context.Context, req protocol.Request) (protocol.Reply, error) {
		if _, ok := req.(*protocol.PrivateGetter); !ok {
			return nil, protocol.Errorf(protocol.CodeForbidden, "%s not supported", req.Type())
		}
		if entered.Add(1) == 1 {
			<-release
		}
		return &protocol.PrivateGetterReply{Response: []byte("encrypted answer")}, nil
	}))
	defer encl.Close()
	shard := [32]byte{7}
	ready := make(chan struct{})
	close(ready)
	w := &Worker{
		cfg: Config{Shard: shard}, log: slog.New(slog.DiscardHandler), ready: ready,
		sup: &supervisor{log: slog.New(slog.DiscardHandler), encl: encl,
			identity: &protocol.InitReply{ShieldingPublic: []byte("shielding key"), SignerPublic: make([]byte, 32)}},
	}
	srv := rpc.New(directBackend{w}, rpc.Options{MaxGetters: maxGetters})
	defer srv.Close()

	body := fmt.Sprintf(`{"jsonrpc":"2.0","id":1,"method":"state_executeGetter","params":{"shard":%q,"request":"01"}}`, hex.EncodeToString(shard[:]))
	var wg sync.WaitGroup
	failed := make(chan string, getters)
	for range getters {
		wg.Go(func() {
			r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(body))
			rec := httptest.NewRecorder()
			srv.ServeHTTP(rec, r)
			if rec.Code != http.StatusOK || strings.Contains(rec.Body.String(), `"error"`) {
				failed <- rec.Body.String()
			}
		})
	}
	waitFor(t, "the flood queued behind the getter in the enclave", func() bool {
		return entered.Load() == 1 && w.sup.turn.waiting() == maxGetters-1 && srv.QueuedGetters() == getters-maxGetters
	})
	got := make(chan int64, 1)
	go func() {
		w.sup.turn.Lock()
		got <- entered.Load()
		w.sup.turn.Unlock()
	}()
	waitFor(t, "the block waiting for the enclave", func() bool { return w.sup.turn.waiting() == maxGetters })
	close(release)
	select {
	case n := <-got:
		if n > maxGetters {
			t.Fatalf("the block got the enclave after %d getters, want at most %d", n, maxGetters)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the block never got the enclave")
	}
	wg.Wait()
	close(failed)
	for b := range failed {
		t.Errorf("getter answered %s", b)
	}
	if n := entered.Load(); n != getters {
		t.Fatalf("%d getters reached the enclave, want %d", n, getters)
	}
}

// TestFifoMutex: waiters get the lock in the order they came, each
// exactly once. sync.Mutex does not promise this (a goroutine that comes
// back at once may take it first).
func TestFifoMutex(t *testing.T) {
	var m fifoMutex
	m.Lock()
	var order []int
	var omu sync.Mutex
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Go(func() {
			m.Lock()
			omu.Lock()
			order = append(order, i)
			omu.Unlock()
			m.Unlock()
		})
		waitFor(t, "the waiter queued", func() bool { return m.waiting() == i+1 })
	}
	m.Unlock()
	wg.Wait()
	for i, v := range order {
		if v != i {
			t.Fatalf("lock order %v", order)
		}
	}
	if len(order) != 20 || m.locked {
		t.Fatalf("order %v, locked %v", order, m.locked)
	}
}

// TestProvisioningListenerTimeouts: the provisioning endpoint's own
// listener has the RPC's timeouts: a client that sends its body a byte at
// a time is cut off. On the old code (a header timeout only) the
// connection stayed open as long as bytes kept coming: the read below hit
// the test's 20 s deadline.
func TestProvisioningListenerTimeouts(t *testing.T) {
	w := &Worker{
		cfg: Config{Provision: ProvisionConfig{Listen: "127.0.0.1:0"}, RPC: rpc.Options{ReadTimeout: 500 * time.Millisecond}},
		log: slog.New(slog.DiscardHandler), ready: make(chan struct{}),
	}
	stop, err := w.serveProvisioning()
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	addr := strings.TrimPrefix(w.ProvisionAddr(), "http://")
	c, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "POST /provision/session HTTP/1.1\r\nHost: worker\r\nContent-Length: 10000\r\n\r\n")
	stopTrickle := make(chan struct{})
	defer close(stopTrickle)
	go func() {
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for range 400 { // at most 20 s
			select {
			case <-stopTrickle:
				return
			case <-tick.C:
			}
			if _, err := c.Write([]byte{0}); err != nil {
				return
			}
		}
	}()
	c.SetReadDeadline(time.Now().Add(20 * time.Second))
	if _, err := io.ReadAll(c); errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatal("slow body to the provisioning listener not cut off")
	}
}
