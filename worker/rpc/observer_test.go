package rpc_test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/integritee-go/integritee/worker/rpc"
	"github.com/integritee-go/integritee/worker/rpc/api"
)

// observed counts the answers an Observer is told of.
type observed struct {
	mu sync.Mutex
	n  map[string]int
}

func (o *observed) Request(method string, code int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.n[fmt.Sprintf("%s %d", method, code)]++
}

func (o *observed) get(method string, code int) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.n[fmt.Sprintf("%s %d", method, code)]
}

// The Observer hears of every answer, with the method (or "unknown",
// "none") and the error code, over HTTP and WebSocket, refusals before any
// method was read included; Sessions counts the open WebSocket sessions.
func TestObserverSeesEveryAnswer(t *testing.T) {
	obs := &observed{n: map[string]int{}}
	srv := rpc.New(newFake(), rpc.Options{Observer: obs, RateLimit: 1e-9, RateBurst: 6, Now: func() time.Time { return time.Unix(0, 0) }})
	addr := serve(t, srv)
	url := "http://" + addr

	post(t, url, req(1, api.MethodVersion, nil))
	post(t, url, req(2, "no_such_method", nil))
	post(t, url, `{"jsonrpc":"2.0","id":3,"method":"system_version"`) // truncated
	post(t, url, "["+req(4, api.MethodHealth, nil)+","+req(5, api.MethodVersion, []int{1})+"]")
	ws := dialWS(t, "ws://"+addr)
	waitFor(t, "the WebSocket session", func() bool { return srv.Sessions() == 1 })
	if m := ws.call(6, api.MethodVersion, nil); m.Error != nil {
		t.Fatalf("system_version over WebSocket: %+v", m.Error)
	}
	// The burst of 6 is spent: refused before the body is read.
	post(t, url, req(7, api.MethodVersion, nil))

	for _, c := range []struct {
		method string
		code   int
		want   int
	}{
		{api.MethodVersion, 0, 3},
		{api.MethodHealth, 0, 1},
		{rpc.MethodUnknown, api.CodeMethodNotFound, 1},
		{rpc.MethodNone, api.CodeParseError, 1},
		{rpc.MethodNone, api.CodeRateLimited, 1},
	} {
		if got := obs.get(c.method, c.code); got != c.want {
			t.Errorf("%s %d: observed %d times, want %d (all: %v)", c.method, c.code, got, c.want, obs.n)
		}
	}
	ws.conn.CloseNow()
	waitFor(t, "the WebSocket session to end", func() bool { return srv.Sessions() == 0 })
}
