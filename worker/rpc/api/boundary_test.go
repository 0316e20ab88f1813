package api_test

import (
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/integritee-go/integritee/"

// TestAPIIsWireTypesOnly: the wire types import no HTTP (serving is the
// server's business, package worker/rpc), nothing of the worker and
// nothing of the enclave, so that a client importing them gets no server
// or enclave code. (Chain types they use, such as sidechain.Header, link
// net/http indirectly through CometBFT; only this package's own imports
// are held to it.)
func TestAPIIsWireTypesOnly(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", `{{join .Imports "\n"}}`, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	imports := strings.Fields(string(out))
	if len(imports) == 0 {
		t.Fatal("go list lists no imports: the check looked at nothing")
	}
	for _, p := range imports {
		if p == "net/http" || strings.HasPrefix(p, "net/http/") {
			t.Errorf("api imports %s", p)
		}
	}
	out, err = exec.Command("go", "list", "-deps", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, p := range strings.Fields(string(out)) {
		if p == module+"worker" || strings.HasPrefix(p, module+"enclave") ||
			(strings.HasPrefix(p, module+"worker/") && p != module+"worker/rpc/api") {
			t.Errorf("api depends on %s", p)
		}
	}
}
