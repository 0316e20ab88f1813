package enclave_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/hpke"
	"crypto/sha256"
	"errors"
	"os/exec"
	"reflect"
	"strings"
	"testing"

	"github.com/integritee-go/integritee/attestation/dcap"
	"github.com/integritee-go/integritee/chain/accounts"
	"github.com/integritee-go/integritee/chain/bridge"
	"github.com/integritee-go/integritee/chain/teerex"
	"github.com/integritee-go/integritee/chain/tx"
	"github.com/integritee-go/integritee/enclave"
	"github.com/integritee-go/integritee/enclave/keys"
	"github.com/integritee-go/integritee/enclave/protocol"
	"github.com/integritee-go/integritee/enclave/shielding"
)

func TestInitRejections(t *testing.T) {
	ctx := context.Background()
	c := newChainSim(t)
	shard := sha256Of("rejections")
	h := newHost(t, shard)
	init := h.boot(c)
	var shields [][]byte
	for _, name := range []string{"r1", "r2"} {
		a := addr(key(name))
		ct, err := shielding.Encrypt(init.ShieldingPublic, shielding.InfoShieldRecipient, a[:])
		if err != nil {
			t.Fatal(err)
		}
		shields = append(shields, c.tx(accounts.DevKey("Alice"), bridge.Name, bridge.MethodShieldFunds,
			bridge.ShieldFunds{Shard: teerex.Hash(shard), Amount: 7, EncryptedRecipient: ct}))
	}
	c.block(shields...)
	c.block()
	c.block()
	if _, err := h.process(c, 1); err != nil {
		t.Fatal(err)
	}
	good := h.initRequest(c)

	flip := func(b []byte, i int) []byte {
		b = bytes.Clone(b)
		b[i] ^= 1
		return b
	}
	tests := []struct {
		name   string
		mutate func(r *protocol.Init)
		want   error
	}{
		{"tampered signer blob", func(r *protocol.Init) {
			r.SealedKeys = &protocol.SealedKeys{Signer: flip(r.SealedKeys.Signer, 30), Shielding: r.SealedKeys.Shielding, State: r.SealedKeys.State}
		}, protocol.ErrSealing},
		{"truncated state blob", func(r *protocol.Init) {
			r.SealedKeys = &protocol.SealedKeys{Signer: r.SealedKeys.Signer, Shielding: r.SealedKeys.Shielding, State: r.SealedKeys.State[:10]}
		}, protocol.ErrSealing},
		{"missing shielding blob", func(r *protocol.Init) {
			r.SealedKeys = &protocol.SealedKeys{Signer: r.SealedKeys.Signer, State: r.SealedKeys.State}
		}, protocol.ErrSealing},
		{"keys of another shard", func(r *protocol.Init) { r.Shard[0] ^= 1 }, protocol.ErrSealing},
		{"tampered checkpoint", func(r *protocol.Init) { r.Checkpoint = flip(r.Checkpoint, len(r.Checkpoint)-1) }, protocol.ErrSealing},
		{"checkpoint without keys", func(r *protocol.Init) { r.SealedKeys = nil }, protocol.ErrSealing},
		{"checkpoint of another chain", func(r *protocol.Init) { r.ChainID = "other" }, protocol.ErrSealing},
		{"no chain ID", func(r *protocol.Init) { r.ChainID = "" }, protocol.ErrInvalidInput},
		{"bad genesis validators", func(r *protocol.Init) {
			r.SealedKeys, r.Checkpoint, r.GenesisValidators = nil, nil, []byte("garbage")
		}, protocol.ErrInvalidInput},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h.start()
			r := *good
			tt.mutate(&r)
			if _, err := h.c.Call(ctx, &r); !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
		})
	}

	// State restore: tampered or missing entries are refused at Load or
	// Resume; the enclave then needs a restart.
	entries := h.allEntries()
	if len(entries) != 2 {
		t.Fatalf("%d entries, want 2", len(entries))
	}
	restore := []struct {
		name    string
		entries []protocol.Entry
		atLoad  bool
	}{
		{"tampered entry", []protocol.Entry{{Key: entries[0].Key, Value: flip(entries[0].Value, 3)}}, true},
		{"missing entry", entries[1:], false},
		{"extra entry", append(append([]protocol.Entry{}, entries...), protocol.Entry{Key: [32]byte{1}, Value: entries[0].Value}), true},
	}
	for _, tt := range restore {
		t.Run(tt.name, func(t *testing.T) {
			h.start()
			if _, err := h.c.Call(ctx, good); err != nil {
				t.Fatal(err)
			}
			err := h.load(tt.entries, 100)
			if tt.atLoad {
				if !errors.Is(err, protocol.ErrState) {
					t.Fatalf("load: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if _, err := h.c.Call(ctx, &protocol.Resume{}); !errors.Is(err, protocol.ErrState) {
				t.Fatalf("resume: %v", err)
			}
			if _, err := h.c.Call(ctx, request(t, c.tc, 2)); !errors.Is(err, protocol.ErrInternal) {
				t.Fatalf("process after a failed restore: %v", err)
			}
		})
	}
}

func TestRequestOrder(t *testing.T) {
	ctx := context.Background()
	c := newChainSim(t)
	h := newHost(t, sha256Of("order"))
	h.start()
	if _, err := h.c.Call(ctx, &protocol.Attest{}); !errors.Is(err, protocol.ErrNotInitialized) {
		t.Fatalf("attest before init: %v", err)
	}
	c.block()
	c.block()
	if _, err := h.c.Call(ctx, request(t, c.tc, 1)); !errors.Is(err, protocol.ErrNotInitialized) {
		t.Fatalf("block before init: %v", err)
	}
	h.boot(c)
	if _, err := h.c.Call(ctx, h.initRequest(c)); !errors.Is(err, protocol.ErrAlreadyInitialized) {
		t.Fatalf("second init: %v", err)
	}
	if _, err := h.c.Call(ctx, &protocol.Resume{}); !errors.Is(err, protocol.ErrInvalidInput) {
		t.Fatalf("resume without checkpoint: %v", err)
	}
}

func TestDebugRequestsNeedDev(t *testing.T) {
	ctx := context.Background()
	c := newChainSim(t)
	h := newHost(t, sha256Of("prod"))
	h.start()
	r := h.initRequest(c)
	r.Dev = false
	if _, err := h.c.Call(ctx, r); err != nil {
		t.Fatal(err)
	}
	for _, req := range []protocol.Request{&protocol.GetState{Key: []byte("k")}, &protocol.ExecuteGetter{Getter: []byte{0xa0}}} {
		if _, err := h.c.Call(ctx, req); !errors.Is(err, protocol.ErrForbidden) {
			t.Fatalf("%s outside dev: %v", req.Type(), err)
		}
	}
}

// TestAttest checks that the quote's report data is exactly what teerex
// requires of the registration's sender and shielding key on the chain the
// enclave follows: the second half is the genesis ID that chain recorded.
func TestAttest(t *testing.T) {
	c := newChainSim(t)
	h := newHost(t, sha256Of("attest"))
	init := h.boot(c)
	rep, err := protocol.CallAs[*protocol.AttestReply](context.Background(), h.c, &protocol.Attest{})
	if err != nil {
		t.Fatal(err)
	}
	c.block() // commits genesis
	genesis := c.genesisID()
	want := teerex.ReportData(tx.AddressOf(ed25519.PublicKey(init.SignerPublic)), init.ShieldingPublic, genesis)
	sum := sha256.Sum256(append(bytes.Clone(init.SignerPublic), init.ShieldingPublic...))
	if rep.ReportData != want || !bytes.Equal(want[:32], sum[:]) || teerex.Hash(want[32:]) != genesis {
		t.Fatalf("report data %x, want %x", rep.ReportData, want)
	}
	q, err := dcap.ParseQuote(rep.Quote)
	if err != nil {
		t.Fatal(err)
	}
	if q.Body.ReportData != want || q.Body.MRENCLAVE != init.MRENCLAVE {
		t.Fatalf("quote carries report data %x, MRENCLAVE %x", q.Body.ReportData, q.Body.MRENCLAVE)
	}
}

// TestProtocolCarriesNoPrivateKeys walks every request and reply type and
// fails on any field that could hold a private key: a key type, or a name
// that says private, secret or seed.
func TestProtocolCarriesNoPrivateKeys(t *testing.T) {
	forbidden := []reflect.Type{
		reflect.TypeFor[ed25519.PrivateKey](),
		reflect.TypeFor[hpke.PrivateKey](),
		reflect.TypeFor[*keys.Keys](),
		reflect.TypeFor[keys.Keys](),
	}
	var walk func(path string, typ reflect.Type, seen map[reflect.Type]bool)
	walk = func(path string, typ reflect.Type, seen map[reflect.Type]bool) {
		for _, f := range forbidden {
			if typ == f {
				t.Errorf("%s has type %s", path, typ)
			}
		}
		if seen[typ] {
			return
		}
		seen[typ] = true
		switch typ.Kind() {
		case reflect.Pointer, reflect.Slice, reflect.Array:
			walk(path+"[]", typ.Elem(), seen)
		case reflect.Map:
			walk(path+"[key]", typ.Key(), seen)
			walk(path+"[]", typ.Elem(), seen)
		case reflect.Interface:
			t.Errorf("%s is an interface: cannot be checked", path)
		case reflect.Struct:
			for i := range typ.NumField() {
				f := typ.Field(i)
				name := strings.ToLower(f.Name)
				for _, bad := range []string{"private", "secret", "seed", "statekey", "signingkey"} {
					if strings.Contains(name, bad) {
						t.Errorf("%s.%s: field name suggests key material", path, f.Name)
					}
				}
				walk(path+"."+f.Name, f.Type, seen)
			}
		}
	}
	n := 0
	for _, req := range protocol.Requests() {
		for _, v := range []any{req, protocol.ReplyFor(req)} {
			walk(reflect.TypeOf(v).String(), reflect.TypeOf(v), map[reflect.Type]bool{})
			n++
		}
	}
	walk("protocol.Error", reflect.TypeFor[protocol.Error](), map[reflect.Type]bool{})
	if n != 2*len(protocol.Requests()) || n < 20 {
		t.Fatalf("walked %d message types", n)
	}
}

// TestImports checks that the trusted code links no host, client or RPC
// code, and that no enclave package imports net/http itself. (CometBFT's
// types package links net/http through its test helpers and gRPC; nothing
// in the enclave uses it.)
func TestImports(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go list")
	}
	out, err := exec.Command("go", "list", "-deps", "github.com/integritee-go/integritee/enclave/...", "github.com/integritee-go/integritee/cmd/integritee-enclave").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	for _, dep := range strings.Fields(string(out)) {
		for _, bad := range []string{
			"github.com/integritee-go/integritee/worker", "github.com/integritee-go/integritee/client",
			"github.com/cometbft/cometbft/rpc/client", "github.com/cometbft/cometbft/light",
		} {
			if dep == bad || strings.HasPrefix(dep, bad+"/") {
				t.Errorf("trusted code links %s", dep)
			}
		}
	}
	direct, err := exec.Command("go", "list", "-f", `{{.ImportPath}}:{{join .Imports " "}}`, "github.com/integritee-go/integritee/enclave/...", "github.com/integritee-go/integritee/cmd/integritee-enclave").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(direct)), "\n") {
		pkg, imports, _ := strings.Cut(line, ":")
		for _, imp := range strings.Fields(imports) {
			if imp == "net/http" || strings.HasPrefix(imp, "net/http/") || imp == "net/rpc" {
				t.Errorf("%s imports %s", pkg, imp)
			}
		}
	}
}

func TestNewNeedsBackend(t *testing.T) {
	if _, err := enclave.New(enclave.Config{}); err == nil {
		t.Fatal("enclave without a TEE backend")
	}
}
