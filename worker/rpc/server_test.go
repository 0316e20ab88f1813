package rpc_test

import (
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/integritee-go/integritee/worker/rpc"
	"github.com/integritee-go/integritee/worker/rpc/api"
	"github.com/integritee-go/integritee/worker/rpc/rpctest"
)

var shardHex = hex.EncodeToString(fakeShard[:])

func callParams(ct string) map[string]string {
	return map[string]string{"shard": shardHex, "call": hex.EncodeToString([]byte(ct))}
}

func newServer(t testing.TB, b rpc.Backend, opts rpc.Options) (*rpc.Server, string, string) {
	t.Helper()
	srv := rpc.New(b, opts)
	h, w := rpctest.Serve(t, srv)
	return srv, h, w
}

// badInputs are requests that must each get their error.
var badInputs = []struct {
	name string
	body string
	code int
}{
	{"invalid JSON", `{"jsonrpc":"2.0","id":1,"method":`, api.CodeParseError},
	{"not an object", `"hello"`, api.CodeInvalidRequest},
	{"wrong version", `{"jsonrpc":"1.0","id":1,"method":"system_version"}`, api.CodeInvalidRequest},
	{"no method", `{"jsonrpc":"2.0","id":1}`, api.CodeInvalidRequest},
	{"object id", `{"jsonrpc":"2.0","id":{},"method":"system_version"}`, api.CodeInvalidRequest},
	{"unknown method", req(1, "author_doSomething", nil), api.CodeMethodNotFound},
	{"params array", req(1, "author_submitTrustedCall", []string{"x"}), api.CodeInvalidParams},
	{"unknown param", req(1, "author_submitTrustedCall", map[string]string{"shard": shardHex, "call": "00", "x": "1"}), api.CodeInvalidParams},
	{"missing call", req(1, "author_submitTrustedCall", map[string]string{"shard": shardHex}), api.CodeInvalidParams},
	{"bad hex", req(1, "author_submitTrustedCall", map[string]string{"shard": shardHex, "call": "zz"}), api.CodeInvalidParams},
	{"wrong shard", req(1, "author_submitTrustedCall", map[string]string{"shard": strings.Repeat("00", 32), "call": "00"}), api.CodeWrongShard},
	{"invalid call", req(1, "author_submitTrustedCall", callParams("bad signature")), api.CodeInvalidCall},
	{"undecryptable getter", req(1, "state_executeGetter", map[string]string{"shard": shardHex, "request": hex.EncodeToString([]byte("bad"))}), api.CodeInvalidGetter},
	{"worker not ready", req(1, "state_executeGetter", map[string]string{"shard": shardHex, "request": hex.EncodeToString([]byte("down"))}), api.CodeNotReady},
	{"empty batch", `[]`, api.CodeInvalidRequest},
	{"broken batch", `[{"jsonrpc":"2.0"`, api.CodeParseError},
}

func TestHTTPBadInput(t *testing.T) {
	_, url, _ := newServer(t, newFake(), rpc.Options{MaxRequestBytes: 4096})
	for _, tc := range badInputs {
		t.Run(tc.name, func(t *testing.T) {
			status, body := post(t, url, tc.body)
			m := decode(t, body)
			if status != http.StatusOK || m.Error == nil || m.Error.Code != tc.code {
				t.Fatalf("status %d, response %s, want code %d", status, body, tc.code)
			}
			// The server keeps serving.
			if _, ok := versionOf(t, url); !ok {
				t.Fatal("server stopped serving")
			}
		})
	}
	t.Run("oversize", func(t *testing.T) {
		status, body := post(t, url, req(1, "author_submitTrustedCall", callParams(strings.Repeat("x", 5000))))
		if m := decode(t, body); status != http.StatusRequestEntityTooLarge || m.Error == nil || m.Error.Code != api.CodeInvalidRequest {
			t.Fatalf("status %d, %s", status, body)
		}
	})
	t.Run("GET", func(t *testing.T) {
		resp, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusMethodNotAllowed {
			t.Fatalf("status %d", resp.StatusCode)
		}
	})
	t.Run("subscription over HTTP", func(t *testing.T) {
		_, body := post(t, url, req(1, "author_submitAndWatchTrustedCall", callParams("ok")))
		if m := decode(t, body); m.Error == nil || m.Error.Code != api.CodeInvalidRequest {
			t.Fatalf("%s", body)
		}
	})
	t.Run("notification", func(t *testing.T) {
		status, body := post(t, url, `{"jsonrpc":"2.0","method":"system_version"}`)
		if status != http.StatusNoContent || len(body) != 0 {
			t.Fatalf("status %d body %q", status, body)
		}
	})
	t.Run("batch", func(t *testing.T) {
		_, body := post(t, url, "["+req(1, "system_version", nil)+`,{"jsonrpc":"2.0","method":"system_version"},`+req(3, "nope", nil)+"]")
		var ms []message
		if err := json.Unmarshal(body, &ms); err != nil || len(ms) != 2 {
			t.Fatalf("batch response %s: %v", body, err)
		}
		if string(ms[0].ID) != "1" || ms[0].Error != nil || string(ms[1].ID) != "3" || ms[1].Error.Code != api.CodeMethodNotFound {
			t.Fatalf("batch response %s", body)
		}
	})
}

func versionOf(t testing.TB, url string) (string, bool) {
	t.Helper()
	_, body := post(t, url, req(9, "system_version", nil))
	var v struct {
		Result struct {
			Version string `json:"version"`
		} `json:"result"`
	}
	if json.Unmarshal(body, &v) != nil {
		return "", false
	}
	return v.Result.Version, true
}

func TestInfoMethods(t *testing.T) {
	f := newFake()
	_, url, _ := newServer(t, f, rpc.Options{Version: "9.9.9"})
	if v, _ := versionOf(t, url); v != "9.9.9" {
		t.Fatalf("version %q", v)
	}
	_, body := post(t, url, req(1, "author_getShieldingKey", nil))
	var key api.ShieldingKeyResult
	if err := json.Unmarshal(decode(t, body).Result, &key); err != nil {
		t.Fatal(err)
	}
	if key.ShieldingKey != hex.EncodeToString(f.id.ShieldingKey) || key.Signer != hex.EncodeToString(f.id.Signer) || key.Shard != shardHex || key.MRENCLAVE != shardHex {
		t.Fatalf("key %+v", key)
	}
	_, body = post(t, url, req(1, "rpc_methods", nil))
	var ms struct {
		Methods []string `json:"methods"`
	}
	if err := json.Unmarshal(decode(t, body).Result, &ms); err != nil || !slices.Equal(ms.Methods, rpc.Methods()) || len(ms.Methods) != 9 {
		t.Fatalf("methods %v %v", ms.Methods, err)
	}
	_, body = post(t, url, req(1, "system_health", nil))
	var h api.HealthResult
	if err := json.Unmarshal(decode(t, body).Result, &h); err != nil || h.Height != 7 {
		t.Fatalf("health %+v %v", h, err)
	}
	_, body = post(t, url, req(1, "state_getNonce", map[string]string{"shard": "0x" + shardHex, "request": "0x0102"}))
	var g api.GetterResult
	if err := json.Unmarshal(decode(t, body).Result, &g); err != nil || g.Response != hex.EncodeToString([]byte("enc:\x01\x02")) || g.Stale {
		t.Fatalf("getter %+v %v", g, err)
	}
	// A fresh answer leaves "stale" out (the wire of workers before it);
	// a stale one says so.
	if res := decode(t, body).Result; strings.Contains(string(res), "stale") {
		t.Fatalf("fresh getter result %s names stale", res)
	}
	_, body = post(t, url, req(1, "state_executeGetter", map[string]string{"shard": shardHex, "request": hex.EncodeToString([]byte("stale"))}))
	if res := decode(t, body).Result; string(res) != `{"response":"`+hex.EncodeToString([]byte("enc:stale"))+`","stale":true}` {
		t.Fatalf("stale getter result %s", res)
	}
	_, body = post(t, url, req(1, "author_submitTrustedCall", callParams("fail: no funds")))
	var r api.CallResult
	if err := json.Unmarshal(decode(t, body).Result, &r); err != nil || r.Status != api.StatusExecuted || r.Result.Success || r.Result.Error != "balances: insufficient funds" || r.Block == nil {
		t.Fatalf("failed call %+v %v", r, err)
	}
}

// TestWSBadInputOtherClientServed: one client sends every bad input over
// a WebSocket; each gets its error, its connection stays usable, and a
// second client is served in between.
func TestWSBadInputOtherClientServed(t *testing.T) {
	_, _, ws := newServer(t, newFake(), rpc.Options{MaxRequestBytes: 4096})
	bad, good := dialWS(t, ws), dialWS(t, ws)
	for _, tc := range badInputs {
		t.Run(tc.name, func(t *testing.T) {
			bad.send(tc.body)
			if m := bad.next(); m.Error == nil || m.Error.Code != tc.code {
				t.Fatalf("response %+v, want code %d", m, tc.code)
			}
			if m := good.call(2, "author_submitTrustedCall", callParams("ok "+tc.name)); m.Error != nil {
				t.Fatalf("other client: %+v", m.Error)
			}
		})
	}
	// Oversize up to twice the limit: an error, the connection stays.
	bad.send(req(1, "author_submitTrustedCall", callParams(strings.Repeat("x", 3000))))
	if m := bad.next(); m.Error == nil || m.Error.Code != api.CodeInvalidRequest {
		t.Fatalf("oversize: %+v", m)
	}
	if m := bad.call(3, "system_version", nil); m.Error != nil {
		t.Fatalf("after oversize: %+v", m.Error)
	}
	// Far beyond: only this connection is closed.
	bad.send(req(1, "author_submitTrustedCall", callParams(strings.Repeat("x", 10000))))
	if _, _, err := bad.conn.Read(t.Context()); err == nil {
		t.Fatal("a message of 5x the limit was accepted")
	}
	if m := good.call(4, "author_submitTrustedCall", callParams("still served")); m.Error != nil {
		t.Fatalf("other client after the close: %+v", m.Error)
	}
}

// TestSubmissionsBatched: submissions that arrive while a batch is in the
// enclave go to the backend together, in arrival order.
func TestSubmissionsBatched(t *testing.T) {
	f := newFake()
	f.gate, f.entered = make(chan struct{}), make(chan int, 4)
	srv, _, ws := newServer(t, f, rpc.Options{})
	first := dialWS(t, ws)
	first.send(req(0, "author_submitTrustedCall", callParams("first")))
	if n := <-f.entered; n != 1 {
		t.Fatalf("first round trip of %d", n)
	}
	c := dialWS(t, ws)
	const n = 20
	for i := 1; i <= n; i++ {
		c.send(req(i, "author_submitTrustedCall", callParams(strings.Repeat("c", i))))
	}
	for srv.Queued() < n {
		// Wait until the reader has queued all of them.
		time.Sleep(time.Millisecond)
	}
	close(f.gate)
	if got := <-f.entered; got != n {
		t.Fatalf("second round trip of %d calls, want %d", got, n)
	}
	seen := map[string]int{}
	for range n {
		m := c.next()
		var r api.CallResult
		if m.Error != nil || json.Unmarshal(m.Result, &r) != nil {
			t.Fatalf("response %+v", m)
		}
		seen[string(m.ID)] = int(r.Block.Proof.Index)
	}
	for i := 1; i <= n; i++ {
		if idx, ok := seen[strconvI(i)]; !ok || idx != i-1 {
			t.Fatalf("call %d at leaf %d (%v): not in arrival order", i, idx, ok)
		}
	}
	if m := first.next(); m.Error != nil {
		t.Fatalf("first: %+v", m.Error)
	}
	if r := f.roundTrips(); !slices.Equal(r, []int{1, n}) {
		t.Fatalf("round trips %v", r)
	}
}

// TestWSMessageBuffersReused: a session reads each message into a pooled
// buffer, which the next message (of any session) overwrites; the calls
// waiting for a batch hold copies, so the backend gets exactly the calls
// sent, however the buffers were reused meanwhile.
func TestWSMessageBuffersReused(t *testing.T) {
	f := newFake()
	f.gate, f.entered = make(chan struct{}), make(chan int, 4)
	srv, _, ws := newServer(t, f, rpc.Options{})
	c := dialWS(t, ws)
	// Of one length, so that each message fills the buffer the one
	// before it left, byte for byte where they differ.
	want := []string{"call number 0", "call number 1", "call number 2", "call number 3", "call number 4"}
	// The ids too are of one length: each request keeps its own copy.
	c.send(req(0, "author_submitTrustedCall", callParams(want[0])))
	if n := <-f.entered; n != 1 {
		t.Fatalf("first round trip of %d", n)
	}
	other := dialWS(t, ws)
	for i, ct := range want[1:] {
		c.send(req(i+1, "author_submitTrustedCall", callParams(ct)))
		other.send(req(100+i, "author_submitTrustedCall", callParams("other client "+strconvI(i))))
	}
	for srv.Queued() < 2*(len(want)-1) {
		// Wait until the readers have queued all of them.
		time.Sleep(time.Millisecond)
	}
	close(f.gate)
	<-f.entered
	ids := map[string]bool{}
	for range want {
		m := c.next()
		if m.Error != nil {
			t.Fatalf("response %+v", m.Error)
		}
		ids[string(m.ID)] = true
	}
	for i := range want {
		if !ids[strconvI(i)] {
			t.Fatalf("answers have ids %v, want 0 to %d", ids, len(want)-1)
		}
	}
	var got []string
	for _, b := range f.received() {
		if s := string(b); strings.HasPrefix(s, "call number") {
			got = append(got, s)
		}
	}
	if !slices.Equal(got, want) {
		t.Fatalf("the backend received %q, want %q", got, want)
	}
}

func strconvI(i int) string { b, _ := json.Marshal(i); return string(b) }

func TestWatch(t *testing.T) {
	f := newFake()
	srv, _, ws := newServer(t, f, rpc.Options{})
	c := dialWS(t, ws)
	sub := c.call(1, "author_submitAndWatchTrustedCall", callParams("watched"))
	var id string
	if sub.Error != nil || json.Unmarshal(sub.Result, &id) != nil || id == "" {
		t.Fatalf("subscribe: %+v", sub)
	}
	statuses := func(want ...string) []api.CallResult {
		t.Helper()
		var out []api.CallResult
		for _, w := range want {
			m := c.next()
			if m.Method != api.NotificationTrustedCallStatus || m.Params.Subscription != id || m.Params.Result.Status != w {
				t.Fatalf("got %+v, want status %s", m, w)
			}
			out = append(out, m.Params.Result)
		}
		return out
	}
	rs := statuses(api.StatusSubmitted, api.StatusExecuted)
	if rs[1].Block == nil || rs[1].Block.Header.Number != 1 || !rs[1].Result.Success {
		t.Fatalf("executed %+v", rs[1])
	}
	srv.Confirmed(1)
	if rs := statuses(api.StatusConfirmed); rs[0].Block.Header.Number != 1 {
		t.Fatalf("confirmed %+v", rs[0])
	}

	// Invalid: the subscription ends with the reason.
	sub = c.call(2, "author_submitAndWatchTrustedCall", callParams("bad nonce"))
	if err := json.Unmarshal(sub.Result, &id); err != nil {
		t.Fatal(err)
	}
	if rs := statuses(api.StatusSubmitted, api.StatusInvalid); rs[1].Reason == "" {
		t.Fatalf("invalid without reason %+v", rs[1])
	}

	// Block 2 is confirmed before its call executes (the invalid call
	// made no block): confirmed follows executed at once.
	srv.Confirmed(2)
	json.Unmarshal(c.call(3, "author_submitAndWatchTrustedCall", callParams("third")).Result, &id)
	if rs := statuses(api.StatusSubmitted, api.StatusExecuted, api.StatusConfirmed); rs[2].Block.Header.Number != 2 {
		t.Fatalf("third in block %d", rs[2].Block.Header.Number)
	}
	// An unwatched call gets nothing more.
	json.Unmarshal(c.call(4, "author_submitAndWatchTrustedCall", callParams("fourth")).Result, &id)
	statuses(api.StatusSubmitted, api.StatusExecuted)
	if m := c.call(5, "author_unwatchTrustedCall", map[string]string{"subscription": id}); string(m.Result) != "true" {
		t.Fatalf("unwatch %+v", m)
	}
	srv.Confirmed(3)
	if m := c.call(6, "system_version", nil); m.Method != "" || string(m.ID) != "6" {
		t.Fatalf("unwatched subscription still notified: %+v", m)
	}
	if m := c.call(7, "author_unwatchTrustedCall", map[string]string{"subscription": id}); string(m.Result) != "false" {
		t.Fatalf("second unwatch %+v", m)
	}
}

func TestRateLimit(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	srv := rpc.New(newFake(), rpc.Options{RateLimit: 1, RateBurst: 2, Now: clock})
	t.Cleanup(func() { srv.Close() })
	call := func(ip string) int {
		r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(req(1, "system_version", nil)))
		r.RemoteAddr = ip + ":1234"
		w := httptest.NewRecorder()
		srv.ServeHTTP(w, r)
		if w.Code == http.StatusTooManyRequests {
			if m := decode(t, w.Body.Bytes()); m.Error == nil || m.Error.Code != api.CodeRateLimited {
				t.Fatalf("429 body %s", w.Body)
			}
		}
		return w.Code
	}
	if codes := []int{call("10.0.0.1"), call("10.0.0.1"), call("10.0.0.1")}; !slices.Equal(codes, []int{200, 200, 429}) {
		t.Fatalf("burst of 2: statuses %v, want 200 200 429", codes)
	}
	if call("10.0.0.2") != 200 {
		t.Fatal("another client limited")
	}
	mu.Lock()
	now = now.Add(time.Second)
	mu.Unlock()
	if call("10.0.0.1") != 200 || call("10.0.0.1") != 429 {
		t.Fatal("refill of 1/s wrong")
	}
}

func TestQueueFull(t *testing.T) {
	f := newFake()
	f.gate, f.entered = make(chan struct{}), make(chan int, 4)
	srv, _, ws := newServer(t, f, rpc.Options{QueueSize: 1})
	c := dialWS(t, ws)
	c.send(req(1, "author_submitTrustedCall", callParams("in the enclave")))
	<-f.entered
	c.send(req(2, "author_submitTrustedCall", callParams("queued")))
	for srv.Queued() < 1 {
		time.Sleep(time.Millisecond)
	}
	if m := c.call(3, "author_submitTrustedCall", callParams("refused")); m.Error == nil || m.Error.Code != api.CodeBusy {
		t.Fatalf("%+v", m)
	}
	close(f.gate)
	for range 2 {
		if m := c.next(); m.Error != nil {
			t.Fatalf("%+v", m.Error)
		}
	}
}

// TestTypesCarryNoGetterPlaintext walks every type the host-side RPC
// exposes (the Backend's signatures, the results) and fails on anything
// that could hold a getter's plaintext answer: a field named like a value,
// or a getter path carrying anything but ciphertext bytes.
func TestTypesCarryNoGetterPlaintext(t *testing.T) {
	bt := reflect.TypeFor[rpc.Backend]()
	m, ok := bt.MethodByName("ExecuteGetter")
	if !ok {
		t.Fatal("no ExecuteGetter")
	}
	bytesT, boolT, errT := reflect.TypeFor[[]byte](), reflect.TypeFor[bool](), reflect.TypeFor[error]()
	if m.Type.NumOut() != 3 || m.Type.Out(0) != bytesT || m.Type.Out(1) != boolT || m.Type.Out(2) != errT || m.Type.In(1) != bytesT {
		t.Fatalf("ExecuteGetter %s: must take and return opaque ciphertext bytes (and the host's stale flag)", m.Type)
	}
	// Beside the encrypted response only the host's own flag: one bit it
	// knows without the plaintext.
	gr := reflect.TypeFor[api.GetterResult]()
	if gr.NumField() != 2 || gr.Field(0).Name != "Response" || gr.Field(1).Name != "Stale" || gr.Field(1).Type != boolT {
		t.Fatalf("GetterResult has fields beyond the encrypted response and the stale flag: %v", gr)
	}
	var types []reflect.Type
	for i := range bt.NumMethod() {
		mt := bt.Method(i).Type
		for j := range mt.NumIn() {
			types = append(types, mt.In(j))
		}
		for j := range mt.NumOut() {
			types = append(types, mt.Out(j))
		}
	}
	types = append(types, reflect.TypeFor[api.CallResult](), reflect.TypeFor[api.GetterResult](), reflect.TypeFor[api.GetterParams](),
		reflect.TypeFor[api.HealthResult](), reflect.TypeFor[api.ShieldingKeyResult](), reflect.TypeFor[api.CallParams]())
	seen := map[reflect.Type]bool{}
	var walk func(path string, typ reflect.Type)
	walk = func(path string, typ reflect.Type) {
		if seen[typ] {
			return
		}
		seen[typ] = true
		switch typ.Kind() {
		case reflect.Pointer, reflect.Slice, reflect.Array:
			walk(path+"[]", typ.Elem())
		case reflect.Struct:
			for i := range typ.NumField() {
				f := typ.Field(i)
				name := strings.ToLower(f.Name)
				for _, bad := range []string{"value", "balance", "plaintext", "answer", "nonce"} {
					if strings.Contains(name, bad) {
						t.Errorf("%s.%s: a field that could carry a getter's answer", path, f.Name)
					}
				}
				walk(path+"."+f.Name, f.Type)
			}
		}
	}
	for _, typ := range types {
		walk(typ.String(), typ)
	}
	if len(seen) < 15 {
		t.Fatalf("walked only %d types", len(seen))
	}
}

// With a linger, calls that come one by one go to the enclave as one
// batch, sent as soon as it is full (the linger here is an hour: a batch
// that waited for it would time the test out).
func TestBatchLinger(t *testing.T) {
	f := newFake()
	f.entered = make(chan int, 4)
	_, _, ws := newServer(t, f, rpc.Options{BatchLinger: time.Hour, MaxCallsPerRound: 3})
	c := dialWS(t, ws)
	for i := 1; i <= 3; i++ {
		c.send(req(i, "author_submitTrustedCall", callParams(strings.Repeat("c", i))))
		if i == 1 {
			// The first call is in the batch loop's hands, alone.
			time.Sleep(10 * time.Millisecond)
		}
	}
	for range 3 {
		if m := c.next(); m.Error != nil {
			t.Fatalf("call: %+v", m.Error)
		}
	}
	if r := f.roundTrips(); !slices.Equal(r, []int{3}) {
		t.Fatalf("round trips %v, want one of 3", r)
	}
}
