package moduletest

import (
	"bytes"
	"testing"

	"github.com/integritee-go/integritee/chain/runtime"
	"github.com/integritee-go/integritee/chain/tx"
)

// Seed is a call of a module's method whose encoding seeds FuzzDecodeCall.
type Seed struct {
	Method string
	Args   any
}

// FuzzDecodeCall feeds arbitrary methods and arguments, starting from the
// seeds, to m's decoder: it must never panic, and whatever it accepts must
// be the canonical encoding of the message it returns. check, if not nil,
// checks each accepted message further.
func FuzzDecodeCall(f *testing.F, m runtime.Module, check func(t *testing.T, msg runtime.Msg), seeds ...Seed) {
	for _, s := range seeds {
		call, err := tx.NewCall(m.Name(), s.Method, s.Args)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(s.Method, []byte(call.Args))
	}
	f.Fuzz(func(t *testing.T, method string, args []byte) {
		msg, err := m.DecodeCall(tx.Call{Module: m.Name(), Method: method, Args: args})
		if err != nil {
			return
		}
		if check != nil {
			check(t, msg)
		}
		again, err := tx.NewCall(m.Name(), method, msg)
		if err != nil {
			t.Fatalf("accepted message does not encode: %v", err)
		}
		if !bytes.Equal(again.Args, args) {
			t.Fatalf("accepted non-canonical args %x, canonical %x", args, []byte(again.Args))
		}
	})
}
