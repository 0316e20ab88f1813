package worker

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// rpcWorker is a worker without node or enclave: enough for the RPC
// handler, whose enclave calls then fail.
func rpcWorker() *Worker {
	return &Worker{
		cfg: Config{Shard: [32]byte{7}, Enclave: func(context.Context) (Enclave, error) {
			return nil, errors.New("no enclave in this test")
		}},
		log: slog.New(slog.DiscardHandler),
	}
}

func serve(w *Worker, method, body string) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	w.serveRPC(rec, httptest.NewRequest(method, "/", strings.NewReader(body)))
	return rec
}

func TestServeRPC(t *testing.T) {
	w := rpcWorker()
	w.height, w.stateRoot = 42, [32]byte{1}
	for _, tc := range []struct {
		name, body string
		code       int // JSON-RPC error code, 0 for a result
		result     string
	}{
		{"health", `{"jsonrpc":"2.0","id":1,"method":"system_health"}`, 0, `"height":42`},
		{"version", `{"jsonrpc":"2.0","id":"a","method":"system_version"}`, 0, Version},
		{"no identity yet", `{"jsonrpc":"2.0","id":1,"method":"author_getShieldingKey"}`, rpcServerError, ""},
		{"parse error", `{"jsonrpc":`, rpcParseError, ""},
		{"not 2.0", `{"jsonrpc":"1.0","id":1,"method":"system_health"}`, rpcInvalidRequest, ""},
		{"unknown method", `{"jsonrpc":"2.0","id":1,"method":"nope"}`, rpcMethodNotFound, ""},
		{"getter params", `{"jsonrpc":"2.0","id":1,"method":"state_executeGetter","params":["00"]}`, rpcInvalidParams, ""},
		{"getter hex", `{"jsonrpc":"2.0","id":1,"method":"state_executeGetter","params":{"shard":"zz","request":"00"}}`, rpcInvalidParams, ""},
		{"getter wrong shard", `{"jsonrpc":"2.0","id":1,"method":"state_executeGetter","params":{"shard":"` + strings.Repeat("00", 32) + `","request":"00"}}`, rpcWrongShard, ""},
		{"getter without enclave", `{"jsonrpc":"2.0","id":1,"method":"state_executeGetter","params":{"shard":"07` + strings.Repeat("00", 31) + `","request":"0x00"}}`, rpcServerError, ""},
		{"too large", `{"jsonrpc":"2.0","id":1,"method":"x","params":"` + strings.Repeat("a", maxRPCBody) + `"}`, rpcInvalidRequest, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := serve(w, http.MethodPost, tc.body)
			var res struct {
				JSONRPC string          `json:"jsonrpc"`
				Result  json.RawMessage `json:"result"`
				Error   *RPCError       `json:"error"`
			}
			if err := json.Unmarshal(rec.Body.Bytes(), &res); err != nil || res.JSONRPC != "2.0" {
				t.Fatalf("response %q: %v", rec.Body, err)
			}
			switch {
			case tc.code == 0 && res.Error != nil:
				t.Fatalf("error %+v", res.Error)
			case tc.code == 0 && !strings.Contains(string(res.Result), tc.result):
				t.Errorf("result %s, want %q in it", res.Result, tc.result)
			case tc.code != 0 && (res.Error == nil || res.Error.Code != tc.code):
				t.Errorf("error %+v, want code %d", res.Error, tc.code)
			}
		})
	}
	if rec := serve(w, http.MethodGet, ""); rec.Code != http.StatusMethodNotAllowed {
		t.Errorf("GET: status %d", rec.Code)
	}
}

// FuzzServeRPC: any request body gets a JSON-RPC response, never a panic.
func FuzzServeRPC(f *testing.F) {
	f.Add(`{"jsonrpc":"2.0","id":1,"method":"system_health"}`)
	f.Add(`{"jsonrpc":"2.0","id":1,"method":"state_executeGetter","params":{"shard":"07","request":"00"}}`)
	f.Add(`[1,2,3]`)
	f.Add(`{"jsonrpc":"2.0","id":null,"method":"author_getShieldingKey","params":null}`)
	w := rpcWorker()
	f.Fuzz(func(t *testing.T, body string) {
		rec := serve(w, http.MethodPost, body)
		var res map[string]any
		if err := json.Unmarshal(rec.Body.Bytes(), &res); err != nil {
			t.Fatalf("response %q: %v", rec.Body, err)
		}
		if res["jsonrpc"] != "2.0" {
			t.Fatalf("response %q", rec.Body)
		}
	})
}
