package enclave

import (
	"errors"
	"testing"

	"github.com/integritee-go/integritee/chain/tx"
	"github.com/integritee-go/integritee/chain/types"
	"github.com/integritee-go/integritee/enclave/protocol"
	"github.com/integritee-go/integritee/enclave/stf"
)

// TestDecodeCommand: log entries of format 2 decode; a direct batch of
// format 1 (ciphertexts, key "d") is refused with errLegacyLog rather than
// misread or skipped; anything else does not decode.
func TestDecodeCommand(t *testing.T) {
	legacy, err := protocol.Marshal(struct {
		D struct {
			ID       [16]byte   `cbor:"id"`
			Proposer tx.Address `cbor:"proposer"`
			Time     int64      `cbor:"time"`
			Calls    [][]byte   `cbor:"calls"`
		} `cbor:"d"`
	}{})
	if err != nil {
		t.Fatal(err)
	}
	v := stf.Verified{Nonce: 3, Call: []byte{0xa0}}
	current, err := protocol.Marshal(&command{Direct: &directCommand{Time: 7, Calls: []preparedCall{
		{Call: &v}, {Reason: protocol.ReasonUndecryptable},
	}}})
	if err != nil {
		t.Fatal(err)
	}
	cmd, err := decodeCommand(current)
	if err != nil || cmd.Direct == nil || len(cmd.Direct.Calls) != 2 || cmd.Direct.Calls[0].Call.Nonce != 3 ||
		cmd.Direct.Calls[1].Reason != protocol.ReasonUndecryptable {
		t.Fatalf("format 2: %+v, %v", cmd, err)
	}
	if _, err := decodeCommand(legacy); !errors.Is(err, errLegacyLog) {
		t.Fatalf("format 1: %v", err)
	}
	unknown, err := protocol.Marshal(map[string]int{"x": 1})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := decodeCommand(unknown); err == nil || errors.Is(err, errLegacyLog) {
		t.Fatalf("unknown entry: %v", err)
	}
}

// TestHoldsConfirmed: an enclave takes its group over only if it holds the
// shard block the chain confirmed last.
func TestHoldsConfirmed(t *testing.T) {
	e := &Enclave{side: &sidechainHead{Number: 7, Hash: [32]byte{7}}, recent: []sidechainHead{{Number: 6, Hash: [32]byte{6}}, {Number: 7, Hash: [32]byte{7}}}}
	for _, c := range []struct {
		name string
		n    uint64
		hash types.Hash
		ok   bool
	}{
		{"its head", 7, types.Hash{7}, true},
		{"an earlier recent block", 6, types.Hash{6}, true},
		{"an older block", 2, types.Hash{2}, true},
		{"beyond its head", 8, types.Hash{8}, false},
		{"another hash at its head", 7, types.Hash{9}, false},
		{"another hash at a recent number", 6, types.Hash{9}, false},
	} {
		if err := e.holdsConfirmed(c.n, c.hash); (err == nil) != c.ok {
			t.Errorf("%s: %v, want ok=%v", c.name, err, c.ok)
		}
	}
	if err := (&Enclave{}).holdsConfirmed(1, types.Hash{1}); err == nil {
		t.Error("an enclave without blocks holds block 1")
	}
}
