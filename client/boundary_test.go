package client_test

import (
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/integritee-go/integritee/"

// TestSDKLinksNoWorker: the SDKs (every package under client/) speak to a
// worker through its wire types, package worker/rpc/api, and link nothing
// else of the worker, directly or indirectly: not the JSON-RPC server
// (worker/rpc, its net/http handlers, queues and limits), not the host
// (worker) nor its store. An application embedding the SDK then carries
// no server code, and the server can change without breaking clients as
// long as the wire types hold.
func TestSDKLinksNoWorker(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "./...").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	sawAPI := false
	for _, p := range strings.Fields(string(out)) {
		switch {
		case p == module+"worker/rpc/api":
			sawAPI = true
		case p == module+"worker", strings.HasPrefix(p, module+"worker/"):
			t.Errorf("client/... depends on %s", p)
		}
	}
	if !sawAPI {
		t.Error("go list output does not list worker/rpc/api: the check looked at nothing")
	}
}
