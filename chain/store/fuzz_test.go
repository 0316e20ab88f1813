package store

import (
	"errors"
	"testing"

	cmtcrypto "github.com/cometbft/cometbft/proto/tendermint/crypto"

	"github.com/integritee-go/integritee/chain/smt"
)

// FuzzVerifyProof: proofs from untrusted nodes are decoded and verified by
// clients; neither may panic, and a random proof must not verify.
func FuzzVerifyProof(f *testing.F) {
	s, _ := openMem(f)
	p, _ := s.Prepare(1, []Change{{Key: []byte("a"), Value: []byte("1")}, {Key: []byte("b"), Value: []byte("2")}, {Key: []byte("c"), Value: []byte("3")}})
	if err := s.Commit(p); err != nil {
		f.Fatal(err)
	}
	for _, k := range []string{"a", "zz"} {
		got, err := s.GetWithProof([]byte(k), 0)
		if err != nil {
			f.Fatal(err)
		}
		op, err := got.Proof.ProofOp([]byte(k))
		if err != nil {
			f.Fatal(err)
		}
		f.Add([]byte(k), got.Value, op.Data)
	}
	root := s.Root()
	f.Fuzz(func(t *testing.T, key, value, data []byte) {
		ops := &cmtcrypto.ProofOps{Ops: []cmtcrypto.ProofOp{{Type: smt.ProofOpType, Key: key, Data: data}}}
		proof, err := smt.ProofFromOps(ops, key)
		if err != nil {
			if !errors.Is(err, smt.ErrInvalidProof) {
				t.Fatalf("unclassified error %v", err)
			}
			return
		}
		if err := proof.Verify(root, key, value); err == nil {
			// Only the true statement may verify.
			want, gerr := s.GetWithProof(key, 0)
			if gerr != nil || string(want.Value) != string(value) || (want.Value == nil) != (value == nil) {
				t.Fatalf("false statement verified: key %q value %q", key, value)
			}
		}
	})
}
