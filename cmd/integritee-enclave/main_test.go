package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/cometbft/cometbft/crypto/ed25519"
	cmttypes "github.com/cometbft/cometbft/types"

	"github.com/integritee-go/integritee/enclave/protocol"
)

// buildEnclave builds this command with the given build tags ("" for the
// production build).
func buildEnclave(t *testing.T, tags string) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "integritee-enclave")
	if out, err := exec.Command("go", "build", "-tags", tags, "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build -tags %q: %v\n%s", tags, err, out)
	}
	return bin
}

// TestBuildsFixTheirRules: the production build has no simulated TEE, so no
// host can run it under a PKI it controls, and the dev and test-TEE builds
// differ in measurement (a dev build never passes for a production one).
func TestBuildsFixTheirRules(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	prod := buildEnclave(t, "")
	out, err := exec.Command(prod, "--tee", "sim").CombinedOutput()
	if err == nil || !bytes.Contains(out, []byte("the production build has no simulated TEE")) {
		t.Fatalf("production build with --tee sim: %v\n%s", err, out)
	}
	// Its default is Gramine, which fails here for want of /dev/attestation.
	if out, err := exec.Command(prod).CombinedOutput(); err == nil {
		t.Fatalf("production build without Gramine started:\n%s", out)
	}
	sums := map[[32]byte]string{}
	for _, tags := range []string{"", "dev", "testtee"} {
		b, err := os.ReadFile(buildEnclave(t, tags))
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(b)
		if other, ok := sums[sum]; ok {
			t.Fatalf("builds %q and %q have one measurement", tags, other)
		}
		sums[sum] = tags
	}
}

type pipes struct {
	io.Reader
	io.Writer
}

// TestChildProcess builds the binary, runs it as the worker would (a child
// speaking the protocol on stdin/stdout) and checks that its sim
// measurement is the SHA-256 of the executable, that malformed input gets
// an error reply, and that it exits when stdin closes.
func TestChildProcess(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := buildEnclave(t, "dev")
	exe, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "--tee", "sim", "--log-level", "warn")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()

	c := protocol.NewClient(pipes{stdout, stdin}, 0)
	ctx := context.Background()
	info, err := protocol.CallAs[*protocol.StateInfoReply](ctx, c, &protocol.StateInfo{})
	if err != nil {
		t.Fatal(err)
	}
	if info.MRENCLAVE != sha256.Sum256(exe) {
		t.Fatalf("MRENCLAVE %x is not the executable's hash", info.MRENCLAVE)
	}
	vs := cmttypes.NewValidatorSet([]*cmttypes.Validator{cmttypes.NewValidator(ed25519.GenPrivKeyFromSecret([]byte("v")).PubKey(), 1)})
	vals, err := protocol.EncodeValidatorSet(vs)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := protocol.CallAs[*protocol.InitReply](ctx, c, &protocol.Init{ChainID: "c", GenesisValidators: vals, InitialHeight: 1})
	if err != nil || !rep.Created || rep.MRENCLAVE != info.MRENCLAVE {
		t.Fatalf("init: %+v %v", rep, err)
	}
	// Malformed frame: an error reply, and the process keeps serving.
	if err := protocol.WriteFrame(stdin, []byte{0xff, 0xff}, protocol.DefaultMaxFrameSize); err != nil {
		t.Fatal(err)
	}
	if _, err := protocol.ReadFrame(stdout, protocol.DefaultMaxFrameSize); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Call(ctx, &protocol.Attest{}); err != nil {
		t.Fatalf("attest after a malformed frame: %v", err)
	}
	stdin.Close()
	if err := cmd.Wait(); err != nil {
		t.Fatalf("exit: %v\n%s", err, stderr.String())
	}
}

func TestFlags(t *testing.T) {
	tests := []struct {
		args []string
		ok   bool
	}{
		// The test binary is the production build unless tags say
		// otherwise: its default is Gramine and it has no sim TEE.
		{nil, build.defaultTEE == "sim"},
		{[]string{"--tee", "sim"}, build.simSeed != ""},
		// A production build fixes what decides trust: the host cannot
		// stretch the light client's trusting period (review of issue 8).
		{[]string{"--tee", "sim", "--trusting-period", "8760h"}, build.tunable && build.simSeed != ""},
		{[]string{"--tee", "gramine", "--gramine-dir", "/nonexistent"}, false},
		{[]string{"--tee", "tdx"}, false},
		{[]string{"extra"}, false},
		{[]string{"--log-level", "loud"}, false},
		// The simulated machine's sealing secret: only where the build
		// has a simulated TEE (a production build's key is the CPU's).
		{[]string{"--tee", "sim", "--sim-sealing-secret", "00112233445566778899aabbccddeeff"}, build.simSeed != ""},
		{[]string{"--tee", "sim", "--sim-sealing-secret", "0011"}, false},
		{[]string{"--tee", "sim", "--sim-sealing-secret", "not hex, not hex, not hex, not hex"}, false},
	}
	for _, tt := range tests {
		err := run(context.Background(), tt.args, bytes.NewReader(nil), io.Discard, io.Discard)
		if (err == nil) != tt.ok {
			t.Errorf("run(%q) = %v, want ok=%v", tt.args, err, tt.ok)
		}
	}
	if err := run(context.Background(), []string{"-h"}, bytes.NewReader(nil), io.Discard, io.Discard); err != nil && !errors.Is(err, io.EOF) {
		t.Errorf("-h: %v", err)
	}
}
