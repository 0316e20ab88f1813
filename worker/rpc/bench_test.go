package rpc_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/coder/websocket"

	"github.com/integritee-go/integritee/internal/cputime"
	"github.com/integritee-go/integritee/worker/rpc"
)

// BenchmarkWSSubmit measures the server's cost per direct call over
// WebSocket: author_submitTrustedCall from closed-loop clients, each on its
// own connection, against the fake backend (no enclave). The clients share
// the process, so cpu-ms/op and allocs/op include their side too; compare
// runs of this benchmark with each other, not with a worker's numbers.
func BenchmarkWSSubmit(b *testing.B) {
	for _, clients := range []int{1, 64} {
		b.Run(fmt.Sprintf("clients=%d", clients), func(b *testing.B) {
			_, _, wsURL := newServer(b, newFake(), rpc.Options{RateLimit: 1e9, RateBurst: 1 << 30, MaxConnsPerIP: 1 << 16})
			// A channel ciphertext's size (a transfer sealed on a shielded
			// channel is a few hundred bytes).
			ct := make([]byte, 300)
			rand.Read(ct)
			ct[0] = 'x' // not "bad" or "fail": executed
			msg := []byte(req(1, "author_submitTrustedCall", callParams(string(ct))))
			conns := make([]*websocket.Conn, clients)
			for i := range conns {
				conns[i] = dialWS(b, wsURL).conn
			}
			var left atomic.Int64
			left.Store(int64(b.N))
			var failed atomic.Value
			b.ReportAllocs()
			b.ResetTimer()
			cpu := cputime.Used()
			var wg sync.WaitGroup
			for _, c := range conns {
				wg.Go(func() {
					ctx := context.Background()
					var buf bytes.Buffer
					for left.Add(-1) >= 0 {
						if err := c.Write(ctx, websocket.MessageText, msg); err != nil {
							failed.Store(err)
							return
						}
						_, r, err := c.Reader(ctx)
						if err == nil {
							buf.Reset()
							_, err = buf.ReadFrom(r)
						}
						if err != nil {
							failed.Store(err)
							return
						}
						if !bytes.Contains(buf.Bytes(), []byte(`"status":"executed"`)) {
							failed.Store(fmt.Errorf("response %s", buf.Bytes()))
							return
						}
					}
				})
			}
			wg.Wait()
			b.StopTimer()
			cputime.ReportPerOp(b, cpu)
			if err := failed.Load(); err != nil {
				b.Fatal(err)
			}
		})
	}
}
