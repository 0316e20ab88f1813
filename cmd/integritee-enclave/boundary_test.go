package main

import (
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/integritee-go/integritee/"

// forbidden reports why the trusted code base must not link package p, or
// "" if it may: the chain's state machine (store, runtime, keepers, dev
// genesis), LevelDB and bbolt, the host's and clients' packages, and
// HTTP/RPC clients.
func forbidden(p string) string {
	switch {
	case p == module+"chain/store", p == module+"chain/runtime", strings.HasSuffix(p, "/keeper"),
		p == module+"chain/devnet", p == module+"chain/node" || strings.HasPrefix(p, module+"chain/node/"):
		return "the chain's state machine"
	case strings.HasPrefix(p, "github.com/syndtr/goleveldb"), strings.HasPrefix(p, "github.com/cometbft/cometbft-db"),
		strings.HasPrefix(p, "go.etcd.io/bbolt"):
		return "a database"
	case strings.HasPrefix(p, module+"worker"), strings.HasPrefix(p, module+"client"),
		strings.HasPrefix(p, module+"localnet"), strings.HasPrefix(p, module+"loadgen"):
		return "host or client code"
	case strings.HasPrefix(p, "github.com/cometbft/cometbft/rpc/"), strings.HasPrefix(p, "github.com/cometbft/cometbft/light/provider"):
		return "an RPC client"
	}
	return ""
}

func goList(t *testing.T, args ...string) []string {
	t.Helper()
	out, err := exec.Command("go", append([]string{"list"}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("go list %v: %v\n%s", args, err, out)
	}
	return strings.Fields(string(out))
}

// TestEnclaveLinksOnlyWhatItUses: the enclave binary (every build) and the
// host-enclave wire package depend on no part of the chain's state machine,
// no database, no host or client code and no RPC client, and none of their
// own packages imports net/http. (net/http is still linked: CometBFT's
// types, which the light client needs to verify headers, import its ABCI
// service definitions and with them gRPC. Nothing in the enclave calls it.)
// The production build links no simulated TEE.
func TestEnclaveLinksOnlyWhatItUses(t *testing.T) {
	for _, tags := range []string{"", "dev", "testtee"} {
		t.Run("tags="+tags, func(t *testing.T) {
			deps := goList(t, "-tags", tags, "-deps", ".", "../../enclave/protocol")
			seen := map[string]bool{}
			for _, p := range deps {
				seen[p] = true
				if why := forbidden(p); why != "" {
					t.Errorf("the enclave depends on %s: %s", p, why)
				}
			}
			for _, want := range []string{module + "enclave/lightclient", module + "chain/teerex", module + "chain/smt"} {
				if !seen[want] {
					t.Fatalf("go list does not list %s: the check looked at nothing", want)
				}
			}
			if tags == "" && seen[module+"tee/sim"] {
				t.Error("the production enclave links the simulated TEE")
			}
			var own []string
			for _, p := range deps {
				if strings.HasPrefix(p, module) {
					own = append(own, p)
				}
			}
			imports := goList(t, append([]string{"-tags", tags, "-f", `{{join .Imports "\n"}}`}, own...)...)
			for _, p := range imports {
				if p == "net/http" || strings.HasPrefix(p, "net/http/") || p == "net/rpc" {
					t.Errorf("an enclave package imports %s", p)
				}
			}
		})
	}
}
