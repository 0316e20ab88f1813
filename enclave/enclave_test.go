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
	"github.com/integritee-go/integritee/chain/types"
	"github.com/integritee-go/integritee/enclave"
	"github.com/integritee-go/integritee/enclave/internal/testchain"
	"github.com/integritee-go/integritee/enclave/keys"
	"github.com/integritee-go/integritee/enclave/protocol"
	"github.com/integritee-go/integritee/enclave/shielding"
	"github.com/integritee-go/integritee/enclave/stf"
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
			bridge.ShieldFunds{Shard: types.Hash(shard), Amount: 7, EncryptedRecipient: ct}))
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
	// The two balances and the state version.
	entries := h.allEntries()
	if len(entries) != 3 {
		t.Fatalf("%d entries, want 3", len(entries))
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
	// A chunk the host cut short or gave a value length past its end is
	// refused before anything of it is loaded: the load goes on, and the
	// whole state then resumes.
	t.Run("malformed chunk", func(t *testing.T) {
		h.start()
		if _, err := h.c.Call(ctx, good); err != nil {
			t.Fatal(err)
		}
		whole := protocol.PackEntries(entries).Packed
		for _, bad := range [][]byte{whole[:len(whole)-1], whole[:40], append(append([]byte{}, whole[:32]...), 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01)} {
			if _, err := h.c.Call(ctx, &protocol.LoadEntries{Packed: bad}); !errors.Is(err, protocol.ErrInvalidInput) {
				t.Fatalf("load of %d malformed bytes: %v, want ErrInvalidInput", len(bad), err)
			}
		}
		if err := h.load(entries, 1); err != nil {
			t.Fatal(err)
		}
		if _, err := h.c.Call(ctx, &protocol.Resume{}); err != nil {
			t.Fatalf("resume after refused chunks: %v", err)
		}
	})
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

// TestAttackDevModeFromHost is attack 1 of issue 8. Before, protocol.Init
// carried Dev and DevSudo: a host restarted its production enclave from
// the sealed keys with Dev=true and itself as DevSudo, sent a direct
// set_balance to itself and then an unshield, and the enclave signed an
// unshield_funds that the chain paid from the vault; with Dev set,
// GetState and the plaintext getter handed it every balance. Now dev
// features are a property of the enclave's build (Config.Dev): a host
// that restarts a production enclave (Init has no such field: see
// protocol's TestInitHasNoTrustSwitch) gets set_balance refused
// (balances: set_balance is dev-only), no unshield, and no plaintext.
// The control runs the same steps on a dev build, where they work, so the
// test can fail.
func TestAttackDevModeFromHost(t *testing.T) {
	ctx := context.Background()
	for _, dev := range []bool{false, true} {
		t.Run(map[bool]string{false: "production", true: "dev build (control)"}[dev], func(t *testing.T) {
			d := newDirectBuild(t, "dev from host", dev)
			// The host restarts the enclave from its sealed keys and
			// checkpoint, and plays sudo with the build's dev sudo key
			// (the worst case: it knows the key).
			d.h.boot(d.c)
			thief := key("host's own incognito account")
			set := d.call(devSudo, stf.Call{SetBalance: &stf.SetBalance{Who: addr(thief), Amount: 500}}, 0)
			rep := d.submit(set)
			unshield := d.call(thief, stf.Call{Unshield: &stf.UnshieldTo{From: addr(thief), Beneficiary: addr(thief), Amount: 500}}, 0)
			urep := d.submit(unshield)
			var unshields int
			for _, o := range urep.Outgoing {
				if o.Call.Method == bridge.MethodUnshieldFunds {
					unshields++
				}
			}
			_, stateErr := d.h.c.Call(ctx, &protocol.GetState{Key: []byte("balances/free/")})
			_, getterErr := d.h.c.Call(ctx, &protocol.ExecuteGetter{Getter: []byte{0xa0}})
			if dev {
				if rep.Results[0].Status != protocol.CallExecuted || unshields != 1 || stateErr != nil {
					t.Fatalf("control: set_balance %+v, %d unshields, get_state %v", rep.Results[0], unshields, stateErr)
				}
				return
			}
			if r := rep.Results[0]; r.Status != protocol.CallFailed || r.Reason != stf.ErrDevOnly.Error() {
				t.Fatalf("set_balance on a production enclave: %+v", r)
			}
			if r := urep.Results[0]; r.Status != protocol.CallFailed || r.Reason != stf.ErrInsufficientFunds.Error() || unshields != 0 {
				t.Fatalf("unshield of nothing: %+v, %d unshield_funds signed", r, unshields)
			}
			for name, err := range map[string]error{"get_state": stateErr, "execute_getter": getterErr} {
				if !errors.Is(err, protocol.ErrForbidden) {
					t.Fatalf("%s on a production enclave: %v", name, err)
				}
			}
		})
	}
}

// TestAttackChainIdentitySealed is the enclave half of attack 2 of issue
// 8. Before, the light client's genesis validators came from Init alone:
// a host restarted a registered enclave's sealed keys with the real chain
// ID but its own validator keys, fed it a fake block with a shield_funds
// to itself, and the registered signer signed an unshield that the real
// vault paid. Now the keys and checkpoints are sealed to the genesis ID
// (chain ID, initial height, genesis validators): on another genesis they
// do not open, and a fresh enclave on another genesis commits to that
// genesis in its quote, which the chain refuses (teerex's ErrWrongChain).
func TestAttackChainIdentitySealed(t *testing.T) {
	ctx := context.Background()
	c := newChainSim(t)
	h := newHost(t, sha256Of("chain identity"))
	real := h.boot(c)
	c.block()
	c.block()
	if _, err := h.process(c, 1); err != nil {
		t.Fatal(err)
	}
	fake := testchain.New(chainID, 4, "the host's own validators")
	fakeVals, err := protocol.EncodeValidatorSet(fake.Vals)
	if err != nil {
		t.Fatal(err)
	}
	for _, withCheckpoint := range []bool{false, true} {
		h.start()
		r := h.initRequest(c)
		r.GenesisValidators = fakeVals
		if !withCheckpoint {
			r.Checkpoint = nil
		}
		if _, err := h.c.Call(ctx, r); !errors.Is(err, protocol.ErrSealing) {
			t.Fatalf("sealed keys on another genesis (checkpoint %v): %v", withCheckpoint, err)
		}
	}
	// Control: the same keys on the real genesis open.
	if again := h.boot(c); !bytes.Equal(again.SignerPublic, real.SignerPublic) {
		t.Fatal("control: the sealed keys do not reopen on their own genesis")
	}

	// A fresh enclave of the same binary on the host's own validators
	// commits to that genesis in its quote, and the real chain refuses to
	// register it (so it can never sign an unshield the vault pays).
	h2 := newHost(t, sha256Of("chain identity"))
	h2.start()
	r := h2.initRequest(c)
	r.GenesisValidators = fakeVals
	init2, err := protocol.CallAs[*protocol.InitReply](ctx, h2.c, r)
	if err != nil {
		t.Fatal(err)
	}
	att, err := protocol.CallAs[*protocol.AttestReply](ctx, h2.c, &protocol.Attest{})
	if err != nil {
		t.Fatal(err)
	}
	if want := teerex.GenesisID(chainID, 1, fake.Vals.Hash()); !bytes.Equal(att.ReportData[32:], want[:]) {
		t.Fatalf("report data %x does not commit to the fake genesis %x", att.ReportData[32:], want)
	}
	signer := tx.AddressOf(ed25519.PublicKey(init2.SignerPublic))
	c.block(c.tx(accounts.DevKey("Alice"), accounts.Name, accounts.MethodTransfer, accounts.Transfer{To: signer, Amount: accounts.Unit}))
	reg, err := protocol.CallAs[*protocol.SignedTxs](ctx, h2.c, &protocol.SignRegistration{
		Params: protocol.TxParams{ChainID: chainID, BaseFee: accounts.DevBaseFee, PerByteFee: accounts.DevPerByteFee}, WorkerURL: "ws://127.0.0.1:2000"})
	if err != nil {
		t.Fatal(err)
	}
	res := c.block(reg.Txs...)
	if res[0].Codespace != teerex.ErrWrongChain.Codespace || res[0].Code != teerex.ErrWrongChain.Code {
		t.Fatalf("registration of an enclave on another genesis: %s/%d %s", res[0].Codespace, res[0].Code, res[0].Log)
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
	if rep.ReportData != want || !bytes.Equal(want[:32], sum[:]) || types.Hash(want[32:]) != genesis {
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

// trustReview is why no field of a host → enclave request can change what
// the enclave trusts (its dev features, roots, genesis, peers, time, past
// state). A new field fails TestHostMessagesSwitchNoTrust until it is
// reviewed here.
var trustReview = map[string]string{
	"init.Shard":                  "names the shard; keys and checkpoints are sealed to it (SealScope), calls are signed for it",
	"init.ChainID":                "part of the genesis ID: keys are sealed to it, the quote commits to it (TestAttackChainIdentitySealed)",
	"init.GenesisValidators":      "part of the genesis ID: on another genesis the sealed keys do not open and a fresh enclave's quote names that genesis, which the chain refuses",
	"init.InitialHeight":          "part of the genesis ID",
	"init.SealedKeys":             "authenticated by the TEE's sealing key, bound to measurement and SealScope; tampering is refused",
	"init.Checkpoint":             "sealed like the keys; an old one is a rollback, which the chain's one confirmed shard chain defeats (TestAttackRollbackDoubleUnshield)",
	"init.ConfirmHeartbeat":       "only how often an idle shard's confirm_processed_block is produced: liveness, not trust (TestConfirmHeartbeatFromHost)",
	"load_entries.Packed":         "state entries, packed; a malformed chunk is refused whole; Resume checks them against the sealed checkpoint's root and count",
	"sign_registration.Params":    "chain ID (must be the enclave's own), nonce and fees of the enclave's own transactions",
	"sign_registration.WorkerURL": "public URL recorded on chain; trusted by no one",
	"process_block.Block":         "verified by the light client from the genesis validators",
	"process_block.Txs":           "proved by the header's data hash",
	"process_block.Results":       "proved by the next header's results hash",
	"process_block.Next":          "verified by the light client",
	"sign_outgoing.Calls":         "only calls the enclave tagged itself are signed (TestEndToEnd's forged tag)",
	"sign_outgoing.Params":        "nonce and fees of the enclave's own transactions",
	"execute_getter.Getter":       "a signed getter; the request exists only in dev builds",
	"get_state.Key":               "exists only in dev builds",
	"submit_calls.Calls":          "encrypted, signed trusted calls; nonces stop replays",
	"submit_calls.Timestamp":      "block timestamp only, never before the last verified chain header; no decision depends on it",
	"replica_start.Records":       "sealed to this enclave and hash-chained (replica.ErrRecords); a cut tail is a rollback, which the chain arbitrates (docs/sidechain.md)",
	"replica_start.More":          "chunking only",
	"replica_step.Ticks":          "Raft's clock: a host can speed up or stall elections, which is liveness only",
	"replica_step.Reads":          "request IDs echoed back with the group's commit index; a read index decides when a getter runs, never what it may see",
	"replica_step.Registry":       "proved against the app hash of the light client's latest header (or of Ahead); membership is what the chain's registry says",
	"replica_step.Ahead":          "a later header verified from the light client's (adjacent, or CometBFT's skipping verification); it only shows the registry at a later height, never moves the light client",
	"sign_registration.KeepAlive": "asks for a keep_alive, which claims only that this enclave runs; a failed enclave signs nothing",
	"replica_step.Envelopes":      "AES-GCM under a key of the shard's state key with sender and recipient bound; drops, duplicates and replays are what Raft tolerates",
	"private_getter.Request":      "an encrypted, signed getter",
	"provision_init.Init":         "as init; the requester's genesis is checked by the provider inside mutual RA-TLS",
	"provision_init.Collateral":   "Intel-signed PCS collateral, verified under the build's roots at the judged time; the host can withhold it, not forge it",
	"provision_serve.Collateral":  "as provision_init.Collateral",
	"provision_serve.Registry":    "Merkle proofs the requester checks against the app hash of the checkpoint header it receives inside TLS; the host can withhold them, not forge them",
	"provision_step.In":           "TLS records, authenticated inside the session",
	"provision_serve.Session":     "selects the enclave's own session",
	"provision_serve.Checkpoint":  "sealed by this enclave; served only to an attested peer of the same measurement and genesis",
	"provision_serve.In":          "TLS records, authenticated inside the session",
	"provision_serve.Abort":       "ends a session: availability only",
}

// TestHostMessagesSwitchNoTrust walks every request the host sends: each
// field must be reviewed in trustReview, and none may be named like a
// switch of trust (dev mode, sudo, roots, policy, debug, peers, time).
// Before issue 8, Init's Dev and DevSudo switched the dev features on.
func TestHostMessagesSwitchNoTrust(t *testing.T) {
	seen := map[string]bool{}
	for _, req := range protocol.Requests() {
		typ := reflect.TypeOf(req).Elem()
		for i := range typ.NumField() {
			f := typ.Field(i)
			path := req.Type() + "." + f.Name
			seen[path] = true
			if _, ok := trustReview[path]; !ok {
				t.Errorf("%s: not reviewed: say in trustReview why the host cannot change a trust decision with it", path)
			}
			name := strings.ToLower(f.Name)
			for _, bad := range []string{"dev", "sudo", "root", "policy", "debug", "trust", "allow", "peer", "now", "clock", "mode", "mrenclave"} {
				if strings.Contains(name, bad) {
					t.Errorf("%s: a host message must not carry %q", path, bad)
				}
			}
		}
	}
	for path := range trustReview {
		if !seen[path] {
			t.Errorf("trustReview names %s, which no request has", path)
		}
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
