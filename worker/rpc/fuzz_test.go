package rpc

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

type nopBackend struct{}

func (nopBackend) ShieldingKey(context.Context) (*Identity, error) {
	return &Identity{ShieldingKey: []byte{1}, Signer: []byte{2}}, nil
}
func (nopBackend) SubmitCalls(_ context.Context, calls [][]byte) ([]Outcome, error) {
	out := make([]Outcome, len(calls))
	for i := range out {
		out[i] = Outcome{Status: 3, Reason: "malformed"}
	}
	return out, nil
}
func (nopBackend) ExecuteGetter(context.Context, []byte) ([]byte, bool, error) {
	return []byte{1}, false, nil
}
func (nopBackend) Health(context.Context) (*Health, error) { return &Health{}, nil }

// FuzzServeHTTP: any body gets a well-formed JSON-RPC answer (or none for
// notifications), never a panic.
func FuzzServeHTTP(f *testing.F) {
	for _, s := range []string{
		`{"jsonrpc":"2.0","id":1,"method":"system_version"}`,
		`[{"jsonrpc":"2.0","id":1,"method":"rpc_methods"},{"jsonrpc":"2.0","method":"system_health"}]`,
		`{"jsonrpc":"2.0","id":"a","method":"author_submitTrustedCall","params":{"shard":"0000000000000000000000000000000000000000000000000000000000000000","call":"00"}}`,
		`{"jsonrpc":"2.0","id":null,"method":"state_executeGetter","params":{"shard":"00","request":"0x01"}}`,
		`{`, `[]`, `[1,2]`, `null`,
	} {
		f.Add(s)
	}
	srv := New(nopBackend{}, Options{RateLimit: 1e9, RateBurst: 1 << 30})
	f.Cleanup(func() { srv.Close() })
	f.Fuzz(func(t *testing.T, body string) {
		r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(body))
		w := httptest.NewRecorder()
		srv.ServeHTTP(w, r)
		switch w.Code {
		case http.StatusNoContent:
			return
		case http.StatusOK, http.StatusRequestEntityTooLarge:
		default:
			t.Fatalf("status %d for %q", w.Code, body)
		}
		if !json.Valid(w.Body.Bytes()) {
			t.Fatalf("invalid JSON answer %q", w.Body.String())
		}
	})
}
