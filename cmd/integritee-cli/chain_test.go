package main

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	cmttypes "github.com/cometbft/cometbft/types"

	"github.com/integritee-go/integritee/attestation"
	"github.com/integritee-go/integritee/chain/accounts"
	"github.com/integritee-go/integritee/chain/bridge"
	"github.com/integritee-go/integritee/chain/node"
	"github.com/integritee-go/integritee/chain/node/nodetest"
	"github.com/integritee-go/integritee/chain/teerex"
	"github.com/integritee-go/integritee/chain/tx"
	"github.com/integritee-go/integritee/chain/types"
	"github.com/integritee-go/integritee/client"
	"github.com/integritee-go/integritee/tee/sim"
)

func freePort(t *testing.T) string { return nodetest.FreePort(t) }

// startDevNode runs an in-process dev node for the test and returns its RPC
// address and a client.
func startDevNode(t *testing.T) (string, *client.Client) {
	t.Helper()
	return startDevNodeAt(t, time.Time{})
}

// startDevNodeAt is startDevNode with a genesis (block 1) at genesisTime,
// zero for now.
func startDevNodeAt(t *testing.T, genesisTime time.Time) (string, *client.Client) {
	t.Helper()
	n := nodetest.StartDev(t, genesisTime, 0)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cl, err := client.New(ctx, n.RPCAddress(), client.Options{PollInterval: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cl.VerifiedHeader(ctx, 2); err != nil {
		t.Fatal(err)
	}
	return n.RPCAddress(), cl
}

// cliJSON runs a command that must succeed and decodes its JSON output.
func cliJSON(t *testing.T, v any, args ...string) {
	t.Helper()
	cliJSONAt(t, func() time.Time { return cliNow }, v, args...)
}

// cliJSONAt is cliJSON with the clock now.
func cliJSONAt(t *testing.T, now func() time.Time, v any, args ...string) {
	t.Helper()
	code, out, errOut := runCLIAt(t, now, nil, append(args, "--json")...)
	if code != 0 {
		t.Fatalf("%q: exit %d: %s", args, code, errOut)
	}
	if err := json.Unmarshal([]byte(out), v); err != nil {
		t.Fatalf("%q: %v in %q", args, err, out)
	}
}

// cliFails runs a command that must fail with a one-line error containing
// want.
func cliFails(t *testing.T, want string, args ...string) {
	t.Helper()
	cliFailsAt(t, func() time.Time { return cliNow }, want, args...)
}

// cliFailsAt is cliFails with the clock now.
func cliFailsAt(t *testing.T, now func() time.Time, want string, args ...string) {
	t.Helper()
	code, _, errOut := runCLIAt(t, now, nil, args...)
	if code != 1 {
		t.Fatalf("%q: exit %d, want 1", args, code)
	}
	assertOneLineError(t, errOut, want)
}

// cliUsageError runs the CLI and expects a usage error (exit 2) whose one
// line contains want.
func cliUsageError(t *testing.T, want string, args ...string) {
	t.Helper()
	code, _, errOut := runCLI(t, nil, args...)
	if code != 2 {
		t.Fatalf("%q: exit %d, want 2", args, code)
	}
	assertOneLineError(t, errOut, want)
}

func TestChainCommands(t *testing.T) {
	rpc, cl := startDevNode(t)
	ks := filepath.Join(t.TempDir(), "keys")
	alice := accounts.DevAddress("Alice")

	t.Run("account", func(t *testing.T) {
		var carol account
		cliJSON(t, &carol, "account", "new", "--name", "carol", "--keystore", ks)
		if carol.Name != "carol" || carol.Source != "keystore" || carol.File != filepath.Join(ks, "carol.json") {
			t.Fatalf("new key %+v", carol)
		}
		for path, want := range map[string]os.FileMode{ks: 0o700, carol.File: 0o600} {
			if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != want {
				t.Fatalf("%s: mode %v, want %v (%v)", path, fi.Mode().Perm(), want, err)
			}
		}
		var unnamed account
		cliJSON(t, &unnamed, "account", "new", "--keystore", ks)
		if unnamed.Name != unnamed.Address.String()[:8] {
			t.Fatalf("default name %q for %s", unnamed.Name, unnamed.Address)
		}
		cliFails(t, `key "carol" exists`, "account", "new", "--name", "carol", "--keystore", ks)
		cliFails(t, "is a dev account", "account", "new", "--name", "Alice", "--keystore", ks)
		cliFails(t, "key name", "account", "new", "--name", "../x", "--keystore", ks)

		var list []account
		cliJSON(t, &list, "account", "list", "--keystore", ks)
		if len(list) != len(accounts.DevNames)+2 || list[0].Address != alice || list[len(list)-1].Name != "carol" && list[len(list)-2].Name != "carol" {
			t.Fatalf("list %+v", list)
		}
		for _, name := range []string{"alice", "Alice", "//Alice"} {
			var a account
			cliJSON(t, &a, "account", "show", name)
			if a.Address != alice || a.Source != "dev" || a.Name != "Alice" {
				t.Fatalf("%s: %+v", name, a)
			}
		}
		var c2 account
		cliJSON(t, &c2, "account", "show", "carol", "--keystore", ks)
		if c2.Address != carol.Address {
			t.Fatalf("carol shows %s, created %s", c2.Address, carol.Address)
		}
		var byHex account
		cliJSON(t, &byHex, "account", "show", alice.String())
		if byHex.Address != alice || byHex.Source != "address" {
			t.Fatalf("hex: %+v", byHex)
		}
		cliFails(t, `no key "nobody"`, "account", "show", "nobody", "--keystore", ks)
		cliUsageError(t, "want exactly one", "account", "show")
	})

	t.Run("balance and transfer", func(t *testing.T) {
		var b balanceOutput
		cliJSON(t, &b, "balance", "alice", "--node", rpc)
		if b.Address != alice || b.Balance != accounts.DevBalance || b.Nonce != 0 || b.Height < 1 {
			t.Fatalf("Alice %+v", b)
		}
		code, out, errOut := runCLI(t, nil, "balance", "alice", "--node", rpc)
		if code != 0 || !strings.Contains(out, "1000 TEER") || !strings.Contains(out, "nonce 0") {
			t.Fatalf("text balance: %d %q %q", code, out, errOut)
		}

		var tr struct {
			txOutput
			From, To tx.Address
			Amount   uint64
		}
		cliJSON(t, &tr, "transfer", "--from", "alice", "--to", "carol", "--amount", "1.5TEER", "--keystore", ks, "--node", rpc)
		if tr.Amount != 1_500_000_000_000 || tr.From != alice || tr.Fee == 0 || tr.Height < 1 || len(tr.Hash) != 64 {
			t.Fatalf("transfer %+v", tr)
		}
		cliJSON(t, &b, "balance", "carol", "--keystore", ks, "--node", rpc)
		if b.Address != tr.To || b.Balance != tr.Amount {
			t.Fatalf("carol %+v after %+v", b, tr)
		}
		cliJSON(t, &b, "balance", "alice", "--node", rpc)
		if b.Balance != accounts.DevBalance-tr.Amount-tr.Fee || b.Nonce != 1 {
			t.Fatalf("Alice %+v after %+v", b, tr)
		}
		cliFails(t, "insufficient funds", "transfer", "--from", "carol", "--to", "bob", "--amount", "2TEER", "--keystore", ks, "--node", rpc)
		(&ksEnv{env: map[string]string{PassphraseEnv: "not " + testPassphrase}}).mustFail(t, []string{`key "carol"`, "wrong passphrase"},
			"transfer", "--from", "carol", "--to", "bob", "--amount", "1", "--keystore", ks, "--node", rpc)
		cliFails(t, "is an address", "transfer", "--from", alice.String(), "--to", "bob", "--amount", "1", "--node", rpc)
		cliFails(t, "required", "transfer", "--from", "alice", "--node", rpc)
		cliFails(t, "amount", "transfer", "--from", "alice", "--to", "bob", "--amount", "1.0000000000001TEER", "--node", rpc)
		cliFails(t, "balance", "balance", "alice", "--node", "http://127.0.0.1:"+freePort(t), "--timeout", "2s")
	})

	shard := types.Hash(sha256.Sum256([]byte("cli test enclave")))
	dave := accounts.DevAddress("Dave")
	t.Run("enclaves and shard", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		m := [32]byte(shard)
		b, err := sim.New(sim.Config{Measurement: &m})
		if err != nil {
			t.Fatal(err)
		}
		genesis, err := cl.GenesisID(ctx)
		if err != nil {
			t.Fatal(err)
		}
		q, err := b.Quote(teerex.ReportData(dave, []byte("shielding key"), genesis))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := cl.RegisterEnclave(ctx, accounts.DevKey("Dave"), teerex.Evidence{Kind: attestation.KindDCAP, Quote: q}, []byte("shielding key"), "wss://127.0.0.1:2000"); err != nil {
			t.Fatal(err)
		}
		if _, err := cl.ShieldFunds(ctx, accounts.DevKey("Bob"), shard, 1000, []byte("to someone")); err != nil {
			t.Fatal(err)
		}

		var list struct {
			Height   int64
			Enclaves []enclaveView
		}
		cliJSON(t, &list, "enclaves", "list", "--node", rpc)
		if len(list.Enclaves) != 1 || list.Enclaves[0].Signer != dave || list.Enclaves[0].Status != "active" || list.Enclaves[0].MRENCLAVE != shard {
			t.Fatalf("enclaves %+v", list)
		}
		cliJSON(t, &list, "enclaves", "list", "--mrenclave", shard.String(), "--node", rpc)
		if len(list.Enclaves) != 1 {
			t.Fatalf("enclaves of the shard %+v", list)
		}
		cliJSON(t, &list, "enclaves", "list", "--mrenclave", types.Hash{9}.String(), "--node", rpc)
		if len(list.Enclaves) != 0 {
			t.Fatalf("enclaves of another measurement %+v", list)
		}
		code, out, _ := runCLI(t, nil, "enclaves", "list", "--node", rpc)
		if code != 0 || !strings.Contains(out, dave.String()) || !strings.Contains(out, "active") || !strings.Contains(out, "wss://127.0.0.1:2000") {
			t.Fatalf("text list: %q", out)
		}
		var v enclaveView
		cliJSON(t, &v, "enclaves", "show", "dave", "--node", rpc)
		if v.Signer != dave || v.ShieldingKeyHash != sha256.Sum256([]byte("shielding key")) || v.TCBStatus != attestation.StatusUpToDate ||
			!v.ExpiresAt.Equal(v.Attested().Add(teerex.DefaultRenewalPeriod)) {
			t.Fatalf("show %+v", v)
		}
		cliFails(t, "enclave not registered", "enclaves", "show", "bob", "--node", rpc)

		var st struct {
			Vault        tx.Address    `json:"vault"`
			Recorded     bool          `json:"recorded"`
			VaultBalance uint64        `json:"vault_balance"`
			Serving      types.Hash    `json:"serving_mrenclave"`
			Registered   []enclaveView `json:"registered_enclaves"`
			Warnings     []string      `json:"warnings"`
		}
		cliJSON(t, &st, "shard", "show", shard.String(), "--node", rpc)
		if st.Recorded || st.VaultBalance != 1000 || st.Serving != shard || len(st.Registered) != 1 || st.Registered[0].Signer != dave {
			t.Fatalf("shard %+v", st)
		}
		// One active enclave: its keys exist on one machine only.
		if len(st.Warnings) != 1 || !strings.Contains(st.Warnings[0], "single live enclave") {
			t.Fatalf("shard warnings %q, want the single-enclave warning", st.Warnings)
		}
		code, out, _ = runCLI(t, nil, "shard", "show", shard.String(), "--node", rpc)
		if code != 0 || !strings.Contains(out, "1000 (0.000000001 TEER)") || !strings.Contains(out, "1 active") ||
			!strings.Contains(out, "WARNING") || !strings.Contains(out, "one machine only") {
			t.Fatalf("text shard: %q", out)
		}
		cliFails(t, "shard", "shard", "show", "xyz", "--node", rpc)
	})

	t.Run("policy and sudo", func(t *testing.T) {
		var p policyView
		cliJSON(t, &p, "policy", "show", "--node", rpc)
		if !p.AllowAnyMRENCLAVE || !p.AllowDebug || len(p.DCAPRoots) != 1 || !strings.Contains(p.DCAPRoots[0].Subject, "Integritee Dev") ||
			len(p.TCBInfos) != 1 || p.TCBInfos[0].NextUpdate.Before(time.Now().AddDate(9, 0, 0)) || len(p.Allowlist) != 0 || p.LivenessPeriod != "0s" {
			t.Fatalf("dev policy %+v", p)
		}
		m := types.Hash{0xab}
		var res struct {
			txOutput
			Allowed bool
			Sudo    tx.Address
		}
		cliJSON(t, &res, "sudo", "allow-mrenclave", m.String(), "--node", rpc)
		if !res.Allowed || res.Sudo != alice || res.Height < 1 {
			t.Fatalf("allow %+v", res)
		}
		cliJSON(t, &p, "policy", "show", "--node", rpc)
		if len(p.Allowlist) != 1 || p.Allowlist[0] != m {
			t.Fatalf("allowlist %v", p.Allowlist)
		}
		cliFails(t, "sender is not the sudo key", "sudo", "disallow-mrenclave", m.String(), "--from", "bob", "--node", rpc)
		cliJSON(t, &res, "sudo", "disallow-mrenclave", m.String(), "--node", rpc)
		cliJSON(t, &p, "policy", "show", "--node", rpc)
		if len(p.Allowlist) != 0 {
			t.Fatalf("allowlist after disallow %v", p.Allowlist)
		}
		code, out, _ := runCLI(t, nil, "policy", "show", "--node", rpc)
		if code != 0 || !strings.Contains(out, "any (dev chain)") || !strings.Contains(out, "liveness period        none") {
			t.Fatalf("text policy: %q", out)
		}
		cliFails(t, "MRENCLAVE", "sudo", "allow-mrenclave", "abc", "--node", rpc)
	})

	t.Run("shard update-config", func(t *testing.T) {
		m := types.Hash{0xcd}
		cliFails(t, "may not change the shard configuration", "shard", "update-config", shard.String(), m.String(), "--from", "bob", "--node", rpc)
		cliFails(t, "--enact-in", "shard", "update-config", shard.String(), m.String(), "--enact-in", "1", "--node", rpc)
		var res struct {
			txOutput
			MRENCLAVE       types.Hash `json:"mrenclave"`
			EnactmentHeight uint64     `json:"enactment_height"`
		}
		cliJSON(t, &res, "shard", "update-config", shard.String(), m.String(), "--enact-in", "1000", "--node", rpc)
		if res.MRENCLAVE != m || res.EnactmentHeight <= uint64(res.Height) {
			t.Fatalf("update-config %+v", res)
		}
		var st struct {
			Pending *bridge.Config `json:"pending"`
			Serving types.Hash     `json:"serving_mrenclave"`
		}
		cliJSON(t, &st, "shard", "show", shard.String(), "--node", rpc)
		if st.Pending == nil || st.Pending.MRENCLAVE != m || st.Pending.Since != res.EnactmentHeight || st.Serving != shard {
			t.Fatalf("shard after update-config %+v", st)
		}
	})

	t.Run("sudo set-liveness", func(t *testing.T) {
		cliFails(t, "sender is not the sudo key", "sudo", "set-liveness", "10m", "--from", "bob", "--node", rpc)
		cliUsageError(t, "whole seconds", "sudo", "set-liveness", "1.5s")
		cliFails(t, "liveness period 5s", "sudo", "set-liveness", "5s", "--node", rpc)
		var res struct {
			txOutput
			LivenessSecs uint64 `json:"liveness_secs"`
		}
		cliJSON(t, &res, "sudo", "set-liveness", "10m", "--node", rpc)
		var p struct {
			LivenessPeriod string `json:"liveness_period"`
		}
		cliJSON(t, &p, "policy", "show", "--node", rpc)
		if res.LivenessSecs != 600 || p.LivenessPeriod != "10m0s" {
			t.Fatalf("set-liveness %+v, policy %+v", res, p)
		}
		cliJSON(t, &res, "sudo", "set-liveness", "0", "--node", rpc)
		cliJSON(t, &p, "policy", "show", "--node", rpc)
		if res.LivenessSecs != 0 || p.LivenessPeriod != "0s" {
			t.Fatalf("policy after set-liveness 0: %+v %+v", res, p)
		}
	})

	t.Run("sudo remove-enclave", func(t *testing.T) {
		cliFails(t, "sender is not the sudo key", "sudo", "remove-enclave", "dave", "--from", "bob", "--node", rpc)
		cliFails(t, "enclave not registered", "sudo", "remove-enclave", "bob", "--node", rpc)
		cliUsageError(t, "want exactly one SIGNER", "sudo", "remove-enclave")
		var v enclaveView
		cliJSON(t, &v, "enclaves", "show", "dave", "--node", rpc)
		if v.Status != "active" || !v.LastSeen.Equal(v.Attested()) || v.SilentAfter != nil {
			t.Fatalf("before removal %+v", v)
		}
		var res struct {
			txOutput
			Signer    tx.Address `json:"signer"`
			MRENCLAVE types.Hash `json:"mrenclave"`
			Sudo      tx.Address `json:"sudo"`
		}
		cliJSON(t, &res, "sudo", "remove-enclave", dave.String(), "--node", rpc)
		if res.Signer != dave || res.MRENCLAVE != shard || res.Sudo != alice || res.Height < 1 {
			t.Fatalf("remove-enclave %+v", res)
		}
		cliFails(t, "enclave not registered", "enclaves", "show", "dave", "--node", rpc)
		var list struct{ Enclaves []enclaveView }
		cliJSON(t, &list, "enclaves", "list", "--node", rpc)
		if len(list.Enclaves) != 0 {
			t.Fatalf("enclaves after removal %+v", list)
		}
	})
}

// TestTrustStore runs the CLI against a chain whose block 1 is three
// months old. The old CLI verified from block 1 on every run and failed
// there ("old header has expired"), kept no header between runs and had
// no --trust-height, --trust-hash or --trust-dir.
func TestTrustStore(t *testing.T) {
	rpc, cl := startDevNodeAt(t, time.Now().Add(-90*24*time.Hour).UTC())
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dir := filepath.Join(t.TempDir(), "trust")
	path := client.FileTrustStore{Dir: dir}.Path(node.DevChainID)
	type record struct {
		Height    int64      `json:"height"`
		GenesisID types.Hash `json:"genesis_id"`
	}
	stored := func() record {
		t.Helper()
		var r record
		b, err := os.ReadFile(path)
		if err == nil {
			err = json.Unmarshal(b, &r)
		}
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	genesis, err := cl.GenesisID(ctx)
	if err != nil {
		t.Fatal(err)
	}

	var b balanceOutput
	cliJSON(t, &b, "balance", "alice", "--node", rpc, "--trust-dir", dir)
	if b.Balance != accounts.DevBalance {
		t.Fatalf("Alice %+v", b)
	}
	first := stored()
	if first.Height <= b.Height || first.GenesisID != genesis {
		t.Fatalf("stored %+v after a balance at %d (genesis %s)", first, b.Height, genesis)
	}
	cliJSON(t, &b, "balance", "alice", "--node", rpc, "--trust-dir", dir)
	if second := stored(); second.Height <= first.Height {
		t.Fatalf("stored height %d, then %d", first.Height, second.Height)
	}

	// A record of block 1, months old, has expired: the error says what to
	// do, and the record stays.
	h1 := int64(1)
	com, err := cl.RPC().Commit(ctx, &h1)
	if err != nil {
		t.Fatal(err)
	}
	vals, err := cl.RPC().Validators(ctx, &h1, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	old := &client.TrustedHeader{Header: &com.SignedHeader, Validators: cmttypes.NewValidatorSet(vals.Validators), GenesisID: genesis}
	if err := (client.FileTrustStore{Dir: dir}).Save(node.DevChainID, old); err != nil {
		t.Fatal(err)
	}
	cliFails(t, "older than the trusting period", "balance", "alice", "--node", rpc, "--trust-dir", dir)
	cliFails(t, "pass --trust-height and --trust-hash", "balance", "alice", "--node", rpc, "--trust-dir", dir)
	if stored().Height != 1 {
		t.Fatal("the expired record was replaced")
	}

	// A recent block named on the command line replaces it.
	recent, err := cl.VerifiedHeader(ctx, b.Height)
	if err != nil {
		t.Fatal(err)
	}
	cliJSON(t, &b, "balance", "alice", "--node", rpc, "--trust-dir", dir,
		"--trust-height", strconv.FormatInt(recent.Height, 10), "--trust-hash", recent.Hash().String())
	if r := stored(); r.Height <= recent.Height {
		t.Fatalf("stored %+v after trusting block %d", r, recent.Height)
	}
	cliFails(t, "not the trusted one", "balance", "alice", "--node", rpc, "--trust-dir", dir,
		"--trust-height", strconv.FormatInt(recent.Height, 10), "--trust-hash", strings.Repeat("ab", 32))
	cliFails(t, "go together", "balance", "alice", "--node", rpc, "--trust-height", "3")
	cliFails(t, "--trust-hash", "balance", "alice", "--node", rpc, "--trust-height", "3", "--trust-hash", "xyz")

	// A truncated record is refused, not taken for none.
	good, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, good[:len(good)/3], 0o600); err != nil {
		t.Fatal(err)
	}
	cliFails(t, "unusable trusted header record", "balance", "alice", "--node", rpc, "--trust-dir", dir)
	if got, _ := os.ReadFile(path); len(got) != len(good)/3 {
		t.Fatal("the truncated record was replaced")
	}
}

func TestParseAmount(t *testing.T) {
	tests := []struct {
		in   string
		want uint64
		ok   bool
	}{
		{"1500", 1500, true},
		{"1TEER", accounts.Unit, true},
		{"1.5teer", 1_500_000_000_000, true},
		{".000000000001TEER", 1, true},
		{"18446744073709551615", ^uint64(0), true},
		{"18446744073709551616", 0, false},
		{"18446744TEER", 18_446_744 * accounts.Unit, true},
		{"18446745TEER", 0, false},
		{"1.0000000000001TEER", 0, false},
		{"TEER", 0, false},
		{"-1", 0, false},
		{"1.5", 0, false},
	}
	for _, tc := range tests {
		got, err := parseAmount(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("parseAmount(%q) = %d, %v; want %d, ok %v", tc.in, got, err, tc.want, tc.ok)
		}
	}
	if got := formatAmount(1_500_000_000_000); got != "1500000000000 (1.5 TEER)" {
		t.Errorf("formatAmount: %q", got)
	}
}

// FuzzParseAmount: never panics, and an accepted amount reads back the same
// from its base units and from formatAmount's TEER figure.
func FuzzParseAmount(f *testing.F) {
	for _, s := range []string{"1500", "1.5TEER", ".000000000001teer", "18446744073709551615", "18446745TEER", "TEER", " 2 TEER"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, err := parseAmount(s)
		if err != nil {
			return
		}
		if back, err := parseAmount(strconv.FormatUint(v, 10)); err != nil || back != v {
			t.Fatalf("%q = %d, base units read back as %d (%v)", s, v, back, err)
		}
		formatted := formatAmount(v)
		teer := formatted[strings.Index(formatted, "(")+1 : len(formatted)-1]
		if back, err := parseAmount(strings.ReplaceAll(teer, " ", "")); err != nil || back != v {
			t.Fatalf("%q = %d, %q read back as %d (%v)", s, v, teer, back, err)
		}
	})
}
