package rpc

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/cometbft/cometbft/crypto/merkle"

	"github.com/integritee-go/integritee/chain/sidechain"
	"github.com/integritee-go/integritee/enclave/protocol"
	"github.com/integritee-go/integritee/worker/rpc/api"
)

// TestExecutedAnswerEncoding: an executed or failed call's answer,
// encoded from its block's shared part, is byte for byte the
// api.CallResult that callResult makes, for blocks of one call (no
// aunts) to many and for failure reasons JSON must escape.
func TestExecutedAnswerEncoding(t *testing.T) {
	rng := rand.New(rand.NewChaCha8([32]byte{7}))
	fill := func(b []byte) []byte {
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		return b
	}
	reasons := []string{"", "insufficient funds", `quote " backslash \ <tag> & é \u2028` + "\x01"}
	for _, calls := range []int{1, 2, 3, 7, 64} {
		t.Run(fmt.Sprintf("calls=%d", calls), func(t *testing.T) {
			leaves := make([][]byte, calls)
			for i := range leaves {
				leaves[i] = fill(make([]byte, 40))
			}
			root, _ := merkle.ProofsFromByteSlices(leaves)
			h := sidechain.Header{Number: rng.Uint64(), ChainHeight: rng.Int64(), Timestamp: -rng.Int64()}
			fill(h.Shard[:])
			fill(h.ParentHash[:])
			fill(h.StateHash[:])
			fill(h.UnshieldsRoot[:])
			fill(h.Author[:])
			copy(h.CallsRoot[:], root)
			rep := &protocol.SubmitCallsReply{Block: &sidechain.SignedHeader{Header: h, Signature: fill(make([]byte, 64))}, Leaves: leaves}
			for i := range calls {
				r := protocol.CallResult{Status: protocol.CallExecuted, Index: uint32(i)}
				if i%2 == 1 {
					r.Status, r.Reason = protocol.CallFailed, reasons[i/2%len(reasons)]
				}
				rep.Results = append(rep.Results, r)
			}
			outs, err := Outcomes(rep)
			if err != nil {
				t.Fatal(err)
			}
			// A header replaced after Outcomes (as a lying test backend
			// does) is encoded as callResult encodes it too.
			altered := *rep.Block
			altered.Header.StateHash[0] ^= 1
			outs = append(outs, outs[0])
			outs[len(outs)-1].Block = &altered
			for i := range outs {
				hash := [32]byte(fill(make([]byte, 32)))
				r, err := callResult(hash, &outs[i])
				if err != nil {
					t.Fatal(err)
				}
				want, err := json.Marshal(r)
				if err != nil {
					t.Fatal(err)
				}
				a, err := newExecutedAnswer(hash, &outs[i])
				if err != nil {
					t.Fatal(err)
				}
				// As the response encodes it: through json.Marshal.
				got, err := json.Marshal(a)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(got, want) {
					t.Fatalf("call %d:\n got %s\nwant %s", i, got, want)
				}
				// As a response splices it, unchecked by json.Marshal,
				// whatever the request's id.
				for _, id := range []string{`1`, `-0.5e3`, `"a<b>&c\u2028"`, `null`, `"` + strings.Repeat("é", 3) + `"`} {
					r := &response{JSONRPC: api.Version, ID: json.RawMessage(id), Result: a}
					want, err := json.Marshal(r)
					if err != nil {
						t.Fatal(err)
					}
					if got, ok := spliced(nil, r); !ok || !bytes.Equal(got, want) {
						t.Fatalf("call %d, id %s: spliced %v\n got %s\nwant %s", i, id, ok, got, want)
					}
					// Into a pooled buffer that held an earlier answer.
					if got, ok := spliced(bytes.Repeat([]byte{'x'}, 4096)[:0], r); !ok || !bytes.Equal(got, want) {
						t.Fatalf("call %d, id %s: spliced into a used buffer %v\n got %s\nwant %s", i, id, ok, got, want)
					}
				}
			}
		})
	}
	if _, err := newExecutedAnswer([32]byte{}, &Outcome{Status: protocol.CallInvalid, Reason: "bad"}); err == nil {
		t.Error("an invalid call answered as executed")
	}
	if _, err := newExecutedAnswer([32]byte{}, &Outcome{Status: protocol.CallExecuted}); err == nil {
		t.Error("an executed call without its block answered")
	}
}
