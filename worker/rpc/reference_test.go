package rpc_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strconv"
	"testing"

	"github.com/integritee-go/integritee/worker/rpc"
	"github.com/integritee-go/integritee/worker/rpc/api"
	"github.com/integritee-go/integritee/worker/rpc/rpctest"
)

// reference is the JSON-RPC reference for users.
const reference = "../../docs/rpc.md"

// TestRPCReference keeps docs/rpc.md true: its method sections ("### `m`")
// are exactly what a running server's rpc_methods lists, in that order,
// and its error table lists exactly the codes of package api.
func TestRPCReference(t *testing.T) {
	doc, err := os.ReadFile(reference)
	if err != nil {
		t.Fatal(err)
	}
	var documented []string
	for _, m := range regexp.MustCompile("(?m)^### `([a-zA-Z_]+)`$").FindAllSubmatch(doc, -1) {
		documented = append(documented, string(m[1]))
	}

	srv := rpc.New(rpctest.NewEnclave(t, "reference"), rpc.Options{})
	url, _ := rpctest.Serve(t, srv)
	resp, err := http.Post(url, "application/json", bytes.NewReader([]byte(`{"jsonrpc":"2.0","id":1,"method":"rpc_methods"}`)))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var r struct {
		Result api.MethodsResult `json:"result"`
		Error  *api.Error        `json:"error"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil || r.Error != nil {
		t.Fatalf("rpc_methods: %v %v", err, r.Error)
	}
	served := r.Result.Methods
	if len(served) == 0 {
		t.Fatal("rpc_methods lists no method")
	}
	for _, m := range served {
		if !slices.Contains(documented, m) {
			t.Errorf("%s: served but not documented in %s", m, reference)
		}
	}
	for _, m := range documented {
		if !slices.Contains(served, m) {
			t.Errorf("%s: documented in %s but not served", m, reference)
		}
	}

	var codes []int
	for _, m := range regexp.MustCompile(`(?m)^\| (-?\d+) \|`).FindAllSubmatch(doc, -1) {
		c, _ := strconv.Atoi(string(m[1]))
		codes = append(codes, c)
	}
	want := []int{api.CodeParseError, api.CodeInvalidRequest, api.CodeMethodNotFound, api.CodeInvalidParams, api.CodeInternal,
		api.CodeNotReady, api.CodeInvalidCall, api.CodeInvalidGetter, api.CodeRateLimited, api.CodeBusy, api.CodeWrongShard,
		api.CodeSeveralWorkers, api.CodeNoQuorum}
	if !slices.Equal(codes, want) {
		t.Errorf("error table of %s lists codes %v, want %v", reference, codes, want)
	}
}
