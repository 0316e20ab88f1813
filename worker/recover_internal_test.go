package worker

import (
	"os"
	"path/filepath"
	"testing"
)

// TestInterruptedMove: a move aside cut off after enclave.json moved is
// found by the enclave.json kept without its store, and only while there
// is no enclave.json.
func TestInterruptedMove(t *testing.T) {
	const a, b = keptSuffix + "20260101T000000Z", keptSuffix + "20260202T000000Z"
	tests := []struct {
		name  string
		files []string
		want  string // "" for none
	}{
		{"nothing moved", []string{"enclave.json", "worker.db"}, ""},
		{"a finished move", []string{"enclave.json" + a, "worker.db" + a, "worker.db"}, ""},
		{"cut off", []string{"enclave.json" + a, "worker.db"}, a},
		{"cut off after a finished one", []string{"enclave.json" + a, "worker.db" + a, "enclave.json" + b, "worker.db"}, b},
		{"the newest of two cut off", []string{"enclave.json" + a, "enclave.json" + b, "worker.db"}, b},
		{"a finished move after a cut off one", []string{"enclave.json" + a, "enclave.json" + b, "worker.db" + b, "worker.db"}, a},
		{"enclave.json written since", []string{"enclave.json" + a, "enclave.json", "worker.db"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			for _, f := range tt.files {
				if err := os.WriteFile(filepath.Join(dir, f), []byte("{}"), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			got, ok := interruptedMove(dir)
			if ok != (tt.want != "") || got != tt.want {
				t.Fatalf("interruptedMove = %q, %v; want %q", got, ok, tt.want)
			}
		})
	}
}
