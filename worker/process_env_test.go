package worker_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/integritee-go/integritee/worker"
)

// TestStartProcessDropsGOGC: the enclave gets the worker's environment
// but its GOGC, so that tuning the host never switches off the enclave's
// own collector policy.
func TestStartProcessDropsGOGC(t *testing.T) {
	dir := t.TempDir()
	script, out := filepath.Join(dir, "enclave.sh"), filepath.Join(dir, "env")
	if err := os.WriteFile(script, []byte("#!/bin/sh\nenv > \"$1\"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("GOGC", "50")
	t.Setenv("INTEGRITEE_TEST_PASSED", "yes")
	p, err := worker.StartProcess(worker.ProcessConfig{Path: script, Args: []string{out}})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.Done():
	case <-time.After(time.Minute):
		t.Fatal("the script did not exit")
	}
	env, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(env), "\n")
	for _, l := range lines {
		if strings.HasPrefix(l, "GOGC=") {
			t.Fatalf("the enclave got %s", l)
		}
	}
	if !strings.Contains(string(env), "\nINTEGRITEE_TEST_PASSED=yes\n") && !strings.HasPrefix(string(env), "INTEGRITEE_TEST_PASSED=yes\n") {
		t.Fatalf("the rest of the environment was not passed:\n%s", env)
	}
}
