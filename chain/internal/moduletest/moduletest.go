// Package moduletest holds the assertions the runtime modules' tests share.
package moduletest

import (
	"errors"
	"testing"

	abci "github.com/cometbft/cometbft/abci/types"
)

// WantErr fails unless every error in want matches err (no want: success).
func WantErr(t testing.TB, err error, want ...error) {
	t.Helper()
	if len(want) == 0 {
		if err != nil {
			t.Fatalf("unexpected error: %v", err)
		}
		return
	}
	if err == nil {
		t.Fatalf("succeeded, want %v", want)
	}
	for _, w := range want {
		if !errors.Is(err, w) {
			t.Fatalf("error %q is not %q", err, w)
		}
	}
}

// Rejected asserts a call that failed with want and left no writes and no
// events behind.
func Rejected(t testing.TB, err error, changes int, events []abci.Event, want ...error) {
	t.Helper()
	WantErr(t, err, want...)
	if changes != 0 || len(events) != 0 {
		t.Fatalf("rejected call left %d writes and %d events", changes, len(events))
	}
}
