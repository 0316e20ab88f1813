package worker_test

import (
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/hpke"
	"crypto/mlkem"
	"crypto/rsa"
	"os/exec"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/integritee-go/integritee/enclave/protocol"
)

const module = "github.com/integritee-go/integritee/"

// TestHostImportsNoEnclaveSecrets: the host's packages may use the enclave
// protocol's wire types and nothing else of the enclave (not its key,
// sealing, state, STF or light client code, directly or indirectly), and no
// TEE backend directly.
func TestHostImportsNoEnclaveSecrets(t *testing.T) {
	host := []string{"./", "./store", "./rpc", "../cmd/integritee-worker"}
	out, err := exec.Command("go", append([]string{"list", "-deps"}, host...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	sawProtocol := false
	for _, p := range strings.Fields(string(out)) {
		if p == module+"enclave/protocol" {
			sawProtocol = true
			continue
		}
		if strings.HasPrefix(p, module+"enclave") {
			t.Errorf("host depends on %s", p)
		}
	}
	if !sawProtocol {
		t.Error("go list output does not list enclave/protocol: the check looked at nothing")
	}
	out, err = exec.Command("go", append([]string{"list", "-f", "{{join .Imports \"\\n\"}}"}, host...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, p := range strings.Fields(string(out)) {
		if strings.HasPrefix(p, module+"tee") {
			t.Errorf("host imports %s", p)
		}
	}
}

var secretName = regexp.MustCompile(`(?i)private|secret|seed|priv`)

// TestHostMessagesCarryNoKeys walks every request and reply type of the
// enclave protocol, the only types the host exchanges with the enclave:
// none has a private key type or a field named like one. Keys cross the
// boundary only as SealedKeys blobs.
func TestHostMessagesCarryNoKeys(t *testing.T) {
	forbidden := []reflect.Type{
		reflect.TypeFor[ed25519.PrivateKey](), reflect.TypeFor[*ecdh.PrivateKey](), reflect.TypeFor[*ecdsa.PrivateKey](),
		reflect.TypeFor[*rsa.PrivateKey](), reflect.TypeFor[hpke.PrivateKey](), reflect.TypeFor[*mlkem.DecapsulationKey768](),
	}
	seen := map[reflect.Type]bool{}
	var walk func(t reflect.Type, path string) int
	fields := 0
	walk = func(typ reflect.Type, path string) int {
		for _, f := range forbidden {
			if typ == f {
				t.Errorf("%s has private key type %s", path, typ)
			}
		}
		if seen[typ] {
			return 0
		}
		seen[typ] = true
		switch typ.Kind() {
		case reflect.Pointer, reflect.Slice, reflect.Array:
			return walk(typ.Elem(), path+"[]")
		case reflect.Map:
			return walk(typ.Key(), path+"{key}") + walk(typ.Elem(), path+"{}")
		case reflect.Interface:
			t.Errorf("%s is an interface: cannot prove what it carries", path)
		case reflect.Struct:
			n := 0
			for i := range typ.NumField() {
				f := typ.Field(i)
				if secretName.MatchString(f.Name) {
					t.Errorf("%s.%s looks like a secret", path, f.Name)
				}
				n += 1 + walk(f.Type, path+"."+f.Name)
			}
			return n
		}
		return 0
	}
	for _, req := range protocol.Requests() {
		fields += walk(reflect.TypeOf(req), req.Type())
		rep := protocol.ReplyFor(req)
		fields += walk(reflect.TypeOf(rep), rep.Type())
	}
	if fields < 50 {
		t.Errorf("walked only %d fields", fields)
	}
}
