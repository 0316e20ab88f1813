package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/integritee-go/integritee/attestation"
	"github.com/integritee-go/integritee/client/keystore"
	"github.com/integritee-go/integritee/internal/testvectors"
)

// cliNow is the clock of the CLI under test.
var cliNow = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// runCLI runs the CLI in-process with stdin in, at cliNow.
func runCLI(t *testing.T, in []byte, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	return runCLIAt(t, func() time.Time { return cliNow }, in, args...)
}

// runCLIAt runs the CLI in-process with stdin in and the clock now. Each
// run has its own empty default --trust-dir, so that tests' dev chains (of
// one chain ID) do not meet each other's records.
func runCLIAt(t *testing.T, now func() time.Time, in []byte, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(context.Background(), args, &env{stdin: bytes.NewReader(in), stdout: &out, stderr: &errb, now: now, trustDir: t.TempDir(),
		lookupEnv: testPassphraseEnv, kdf: testKDF})
	return code, out.String(), errb.String()
}

// testPassphrase unlocks the keystores of tests, through PassphraseEnv.
const testPassphrase = "test passphrase"

func testPassphraseEnv(name string) (string, bool) {
	if name == PassphraseEnv {
		return testPassphrase, true
	}
	return "", false
}

// testKDF are cheap scrypt parameters (1 MiB) for the keys tests create.
var testKDF = keystore.Params{N: 1 << 10, R: 8, P: 1}

// vec returns the path of a vector file.
func vec(t *testing.T, rel string) string { return testvectors.Path(t, rel) }

func assertOneLineError(t *testing.T, stderr, want string) {
	t.Helper()
	if strings.Count(stderr, "\n") != 1 || !strings.HasPrefix(stderr, "integritee-cli: ") {
		t.Errorf("stderr is not one error line: %q", stderr)
	}
	if !strings.Contains(stderr, want) {
		t.Errorf("stderr %q does not contain %q", stderr, want)
	}
}

func TestDispatch(t *testing.T) {
	tests := []struct {
		args    []string
		code    int
		stdout  string // substring
		errText string // substring of the one-line error; "" for none
	}{
		{nil, 2, "usage: integritee-cli GROUP", "no command given"},
		{[]string{"help"}, 0, "attestation", ""},
		{[]string{"-h"}, 0, "localnet", ""},
		{[]string{"nosuch"}, 2, "", `unknown command "nosuch"`},
		{[]string{"attestation"}, 2, "sim-quote", "attestation: no command given"},
		{[]string{"attestation", "help"}, 0, "vectors", ""},
		{[]string{"help", "attestation"}, 0, "vectors", ""},
		{[]string{"attestation", "nosuch"}, 2, "", `attestation: unknown command "nosuch"`},
		{[]string{"attestation", "verify", "-h"}, 0, "-qvl-collateral", ""},
		{[]string{"help", "attestation", "verify"}, 0, "usage: integritee-cli attestation verify FILE", ""},
		{[]string{"attestation", "verify", "--bogus"}, 2, "", "attestation verify: flag provided but not defined: -bogus"},
		// Each command takes its own flags: --node is not attestation's.
		{[]string{"attestation", "vectors", "--node", "x"}, 2, "", "flag provided but not defined: -node"},
		{[]string{"account", "list", "--amount", "1"}, 2, "", "account list: flag provided but not defined: -amount"},
		{[]string{"balance", "alice", "--watch"}, 2, "", "balance: flag provided but not defined: -watch"},
		{[]string{"trusted", "balance", "--indirect"}, 2, "", "trusted balance: flag provided but not defined: -indirect"},
		{[]string{"attestation", "verify"}, 2, "", "want exactly one FILE"},
		{[]string{"attestation", "verify", "a", "b"}, 2, "", "want exactly one FILE"},
		{[]string{"localnet", "extra"}, 2, "", `localnet: unexpected argument "extra"`},
		{[]string{"attestation", "verify", "/nonexistent/quote"}, 1, "", "no such file"},
		{[]string{"attestation", "verify", "x", "--at", "yesterday"}, 1, "", "--at"},
		{[]string{"attestation", "verify", "x", "--mrenclave", "abcd"}, 1, "", "want 64 hex digits"},
		{[]string{"attestation", "verify", "x", "--accept-status", "Fine"}, 1, "", `unknown TCB status "Fine"`},
		{[]string{"attestation", "sim-quote", "--report-data", "zz"}, 1, "", "--report-data"},
		{[]string{"attestation", "sim-quote", "--seed", "short"}, 1, "", "seed"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			code, stdout, stderr := runCLI(t, nil, tt.args...)
			if code != tt.code {
				t.Errorf("exit %d, want %d (stderr %q)", code, tt.code, stderr)
			}
			if strings.Count(stdout, "usage:") > 1 {
				t.Errorf("usage printed twice:\n%s", stdout)
			}
			if !strings.Contains(stdout, tt.stdout) {
				t.Errorf("stdout %q does not contain %q", stdout, tt.stdout)
			}
			if tt.errText == "" {
				if stderr != "" {
					t.Errorf("unexpected stderr %q", stderr)
				}
				return
			}
			assertOneLineError(t, stderr, tt.errText)
		})
	}
}

func TestVectorsCommand(t *testing.T) {
	dir := testvectors.Path(t, ".")
	code, stdout, stderr := runCLI(t, nil, "attestation", "vectors", "--dir", dir)
	if code != 0 {
		t.Fatalf("exit %d: %s\n%s", code, stderr, stdout)
	}
	n := len(attestationVectors())
	if want := "vectors, "; !strings.Contains(stdout, want) || strings.Contains(stdout, "MISMATCH") {
		t.Fatalf("output:\n%s", stdout)
	}
	if lines := strings.Count(stdout, "\n"); lines != n+2 { // header + vectors + summary
		t.Errorf("%d lines, want %d", lines, n+2)
	}
	if !strings.Contains(stdout, "echeck sample.pem") || !strings.Contains(stdout, "df2493c1") {
		t.Errorf("echeck line missing:\n%s", stdout)
	}

	code, stdout, _ = runCLI(t, nil, "attestation", "vectors", "--dir", dir, "--json")
	if code != 0 {
		t.Fatalf("--json exit %d", code)
	}
	var rs []vectorResult
	if err := json.Unmarshal([]byte(stdout), &rs); err != nil {
		t.Fatal(err)
	}
	accepted := 0
	for _, r := range rs {
		if !r.OK {
			t.Errorf("%s not OK: %s", r.Name, r.Error)
		}
		if r.Actual == "accept" {
			accepted++
		}
	}
	if len(rs) != n || accepted < 20 || len(rs)-accepted < 15 {
		t.Errorf("%d results, %d accepted", len(rs), accepted)
	}

	code, _, stderr = runCLI(t, nil, "attestation", "vectors", "--dir", t.TempDir())
	if code != 1 {
		t.Errorf("empty dir: exit %d", code)
	}
	assertOneLineError(t, stderr, "not the attestation vector directory")
}

// TestRunVectorDetectsMismatch: a wrong expectation is reported, whichever
// way it is wrong.
func TestRunVectorDetectsMismatch(t *testing.T) {
	dir := testvectors.Path(t, ".")
	var good vector
	for _, v := range attestationVectors() {
		if v.name == "dcap-qvl sgx_quote" {
			good = v
		}
	}
	if r := runVector(dir, good); !r.OK {
		t.Fatalf("good vector: %+v", r)
	}
	wrongStatus := good
	wrongStatus.status = attestation.StatusUpToDate
	wrongMR := good
	wrongMR.mrenclave = "00"
	wrongVerdict := good
	wrongVerdict.accept, wrongVerdict.wantErr = false, errPolicy
	wrongTime := good
	wrongTime.at = "2026-01-01T00:00:00Z"
	for name, v := range map[string]vector{"status": wrongStatus, "mrenclave": wrongMR, "verdict": wrongVerdict, "time": wrongTime} {
		if r := runVector(dir, v); r.OK {
			t.Errorf("%s: mismatch not detected: %+v", name, r)
		}
	}
}

func TestVerifyEcheck(t *testing.T) {
	args := []string{"attestation", "verify", vec(t, "echeck/sample.pem"),
		"--at", "2025-07-19T10:01:17Z", "--qvl-collateral", vec(t, "dcap-qvl/sgx_quote_collateral.json")}
	code, stdout, stderr := runCLI(t, nil, args...)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, want := range []string{
		"ACCEPT", "ra-tls certificate (PEM)", "key binding:   verified",
		"df2493c11fc01708af6913323b64e20ae84b12779dbe44ba428da66dfc4488f5",
		"976aa9f931b8a16e01e01895d627e3ee96dce5478ebbbc77e120a25c79fe6016",
		"ISV prod ID:   1", "ISV SVN:       1", "debug:         false",
		"ConfigurationAndSWHardeningNeeded", "INTEL-SA-00289, INTEL-SA-00615",
		"QE TCB status: UpToDate", "FMSPC:         00a067110000",
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("output lacks %q:\n%s", want, stdout)
		}
	}

	code, stdout, _ = runCLI(t, nil, append(args, "--json")...)
	if code != 0 {
		t.Fatalf("--json exit %d", code)
	}
	var rep verifyReport
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Verdict != "accept" || rep.Result == nil || rep.Result.ISVProdID != 1 || rep.Result.TCBStatus != "ConfigurationAndSWHardeningNeeded" ||
		rep.Result.QETCBStatus != "UpToDate" || rep.Result.FMSPC != "00a067110000" || len(rep.Result.AdvisoryIDs) != 2 {
		t.Errorf("JSON report %+v %+v", rep, rep.Result)
	}
}

func TestVerifyRejections(t *testing.T) {
	qvl := vec(t, "dcap-qvl/sgx_quote_collateral.json")
	sample := vec(t, "echeck/sample.pem")
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"other MRENCLAVE", []string{sample, "--at", "2025-07-19T10:01:17Z", "--qvl-collateral", qvl, "--mrenclave", strings.Repeat("ab", 32)}, "MRENCLAVE not allowed"},
		{"status not accepted", []string{sample, "--at", "2025-07-19T10:01:17Z", "--qvl-collateral", qvl, "--accept-status", "UpToDate"}, "TCB status not accepted"},
		{"collateral expired (default now)", []string{sample, "--qvl-collateral", qvl}, "collateral expired"},
		{"no collateral", []string{vec(t, "dcap-qvl/sgx_quote"), "--at", "2025-07-19T10:01:17Z"}, "needs collateral"},
		{"wrong root", []string{sample, "--at", "2025-07-19T10:01:17Z", "--qvl-collateral", qvl, "--root", vec(t, "intel-roots/Intel_SGX_Attestation_Report_Signing_CA.pem")}, "trusted root"},
		{"debug not allowed", []string{vec(t, "oasis-core/ias/avr_v4_body_sw_hardening_needed.json"), "--at", "2020-05-11T09:21:16Z",
			"--ias-sig", vec(t, "oasis-core/ias/avr_v4_body_sw_hardening_needed.sig"), "--ias-chain", vec(t, "oasis-core/ias/avr_certificates_urlencoded.pem")}, "debug enclave not allowed"},
		{"IAS body without signature", []string{vec(t, "oasis-core/ias/avr_v4_body_sw_hardening_needed.json")}, "--ias-sig"},
		{"key not bound", []string{vec(t, "integritee-pallets/ra_dump_cert_TEST4.der"), "--at", "2020-04-26T12:16:26Z", "--allow-debug"}, "does not bind the certificate key"},
		{"truncated certificate", []string{vec(t, "integritee-pallets/mesatee-derived/mesatee_ra_cert_truncated_569B.der")}, "parse RA-TLS certificate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, stderr := runCLI(t, nil, append([]string{"attestation", "verify"}, tt.args...)...)
			if code != 1 {
				t.Fatalf("exit %d, want 1", code)
			}
			assertOneLineError(t, stderr, tt.want)
		})
	}

	// A policy rejection still shows what was verified.
	code, stdout, _ := runCLI(t, nil, "attestation", "verify", sample, "--json", "--at", "2025-07-19T10:01:17Z",
		"--qvl-collateral", qvl, "--mrenclave", strings.Repeat("ab", 32))
	var rep verifyReport
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil || code != 1 {
		t.Fatalf("exit %d, %v", code, err)
	}
	if rep.Verdict != "reject" || rep.Result == nil || !strings.HasPrefix(rep.Result.MRENCLAVE, "df2493c1") || !strings.Contains(rep.Error, "MRENCLAVE not allowed") {
		t.Errorf("report %+v", rep)
	}
}

func TestVerifyFormats(t *testing.T) {
	auto := "automata-dcap-attestation/"
	tests := []struct {
		name      string
		args      []string
		format    string
		mrenclave string
		status    string
	}{
		{"binary quote", []string{vec(t, "dcap-qvl/sgx_quote"), "--at", "2025-07-19T10:01:17Z", "--qvl-collateral", vec(t, "dcap-qvl/sgx_quote_collateral.json")},
			"dcap quote", "33d8736d", "ConfigurationAndSWHardeningNeeded"},
		{"hex quote, separate collateral", []string{vec(t, auto+"quotes/quotev3.hex"), "--at", "2025-08-15T05:45:00Z",
			"--tcb-info", vec(t, auto+"collateral-2025-08/sgx_tcbinfov3_00606a000000.json"),
			"--tcb-info-chain", vec(t, "intel-roots/Intel_SGX_TCB_Signing_2025-05-06_to_2032-05-06.pem"),
			"--qe-identity", vec(t, auto+"collateral-2025-08/sgx_qeidentity_v4.json"),
			"--pck-crl", vec(t, auto+"collateral-2025-08/platform_crl.der"), "--pck-crl-chain", vec(t, "intel-roots/Intel_SGX_PCK_Platform_CA.pem"),
			"--root-crl", vec(t, auto+"pcs-certs-derived/intel_sgx_root_ca_crl_2025-03-20.der")},
			"dcap quote (hex)", "a4f45c39", "SWHardeningNeeded"},
		{"IAS body, signature and chain", []string{vec(t, "oasis-core/ias/avr_v5_body_sw_hardening_needed.json"), "--at", "2023-09-27T15:51:59Z", "--allow-debug",
			"--ias-sig", vec(t, "oasis-core/ias/avr_v5_body_sw_hardening_needed.sig"), "--ias-chain", vec(t, "oasis-core/ias/avr_certificates_urlencoded.pem")},
			"ias report (body + signature + chain)", "d40c35b7", "SWHardeningNeeded"},
		{"IAS raReport JSON", []string{vec(t, "phala/ias_attestation.json"), "--at", "2023-10-18T09:01:16Z", "--accept-status", "all"},
			"ias report (raReport JSON)", "10829681", "OutOfDate"},
		{"DER IAS RA-TLS certificate", []string{vec(t, "integritee-pallets/legacy-ias-2020/test_ra_cert_MRSIGNER2_MRENCLAVE2.der"), "--at", "2020-02-09T15:43:33Z",
			"--allow-debug", "--accept-status", "OutOfDate"},
			"ra-tls certificate (DER)", "04bee684", "OutOfDate"},
		{"attestation only", []string{vec(t, "integritee-pallets/ra_dump_cert_TEST8_PRODUCTION.der"), "--at", "2021-10-13T21:25:01Z", "--attestation-only"},
			"ra-tls certificate (DER)", "bcf66abf", "ConfigurationAndSWHardeningNeeded"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := runCLI(t, nil, append(append([]string{"attestation", "verify"}, tt.args...), "--json")...)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			var rep verifyReport
			if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
				t.Fatal(err)
			}
			if rep.Format != tt.format || rep.Result == nil || !strings.HasPrefix(rep.Result.MRENCLAVE, tt.mrenclave) || rep.Result.TCBStatus != tt.status {
				t.Errorf("report %+v, result %+v", rep, rep.Result)
			}
		})
	}
}

func TestSimQuoteRoundTrip(t *testing.T) {
	code, quote, stderr := runCLI(t, nil, "attestation", "sim-quote", "--report-data", "c0ffee")
	if code != 0 {
		t.Fatalf("sim-quote exit %d: %s", code, stderr)
	}
	file := filepath.Join(t.TempDir(), "quote.bin")
	if err := os.WriteFile(file, []byte(quote), 0o600); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := runCLI(t, nil, "attestation", "verify", file, "--sim-seed", "default", "--json")
	if code != 0 {
		t.Fatalf("verify exit %d: %s", code, stderr)
	}
	var rep verifyReport
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
		t.Fatal(err)
	}
	m := sha256.Sum256([]byte("integritee-cli sim enclave"))
	if rep.Result == nil || rep.Result.MRENCLAVE != hex.EncodeToString(m[:]) || !strings.HasPrefix(rep.Result.ReportData, "c0ffee00") ||
		rep.Result.TCBStatus != "UpToDate" || rep.Result.Debug {
		t.Errorf("report %+v", rep.Result)
	}

	// Hex output through stdin, with an enclave binary and a debug flag.
	bin := filepath.Join(t.TempDir(), "enclave")
	if err := os.WriteFile(bin, []byte("enclave code"), 0o600); err != nil {
		t.Fatal(err)
	}
	seed := "another seed for the dev pki"
	code, hexQuote, _ := runCLI(t, nil, "attestation", "sim-quote", "--hex", "--binary", bin, "--debug", "--seed", seed)
	if code != 0 {
		t.Fatal("sim-quote --hex failed")
	}
	code, stdout, stderr = runCLI(t, []byte(hexQuote), "attestation", "verify", "-", "--sim-seed", seed, "--allow-debug")
	binHash := sha256.Sum256([]byte("enclave code"))
	if code != 0 || !strings.Contains(stdout, hex.EncodeToString(binHash[:])) || !strings.Contains(stdout, "debug:         true") {
		t.Fatalf("verify hex from stdin: exit %d %s\n%s", code, stderr, stdout)
	}

	rejections := []struct {
		name string
		args []string
		want string
	}{
		{"debug not allowed", []string{"-", "--sim-seed", seed}, "debug enclave not allowed"},
		{"other dev root", []string{"-", "--sim-seed", "default", "--allow-debug"}, "trusted root"},
		{"Intel root", []string{"-", "--allow-debug", "--qvl-collateral", vec(t, "dcap-qvl/sgx_quote_collateral.json")}, "trusted root"},
	}
	for _, tt := range rejections {
		code, _, stderr := runCLI(t, []byte(hexQuote), append([]string{"attestation", "verify"}, tt.args...)...)
		if code != 1 {
			t.Errorf("%s: exit %d", tt.name, code)
			continue
		}
		assertOneLineError(t, stderr, tt.want)
	}

	code, stdout, _ = runCLI(t, nil, "attestation", "sim-quote", "--json")
	var j map[string]string
	if code != 0 || json.Unmarshal([]byte(stdout), &j) != nil || j["mrenclave"] != hex.EncodeToString(m[:]) || len(j["quote"]) < 2000 {
		t.Errorf("sim-quote --json: %d %q", code, stdout)
	}
}
