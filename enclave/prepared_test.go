package enclave_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/integritee-go/integritee/chain/sidechain"
	"github.com/integritee-go/integritee/enclave"
	"github.com/integritee-go/integritee/enclave/protocol"
	"github.com/integritee-go/integritee/enclave/shielding"
	"github.com/integritee-go/integritee/enclave/stf"
)

// mixedBatch encrypts to shieldingPub a batch of direct calls with every
// outcome, for the shard state of newProvisionFixture after chain block 3
// (alice 750, bob 250, both at nonce 1), and returns it with the results
// and leaf kinds (by result index) it must get.
func mixedBatch(t *testing.T, f *provisionFixture) ([][]byte, []protocol.CallResult, []byte) {
	t.Helper()
	tgt := f.c.target(f.shard, f.shard)
	alice, bob := f.aliceI, f.bobI
	enc := func(pt []byte) []byte {
		ct, err := shielding.Encrypt(f.shieldingPub, shielding.InfoTrustedCall, pt)
		if err != nil {
			t.Fatal(err)
		}
		return ct
	}
	aToB := func(amount, nonce uint64) []byte {
		return trustedCall(t, alice, stf.Call{Transfer: &stf.Transfer{From: addr(alice), To: addr(bob), Amount: amount}}, nonce, tgt)
	}
	other := tgt
	other.Shard[0] ^= 1
	cts := [][]byte{
		enc(aToB(10, 1)), // executed
		enc(trustedCall(t, alice, stf.Call{Transfer: &stf.Transfer{From: addr(alice), To: addr(bob), Amount: 10}}, 2, other)), // signed for another shard
		bytes.Repeat([]byte{7}, 1200), // not a ciphertext under the shielding key
		make([]byte, protocol.MaxCallCiphertext+1),
		enc(aToB(10, 0)),                             // nonce used on chain
		enc(aToB(20, 1)),                             // nonce used by the first call of the batch
		enc(aToB(10000, 2)),                          // authentic and fresh, but more than alice has
		enc([]byte{0xa1, 0x01}),                      // not a SignedCall
		enc(signRaw(t, alice, manyPairs(t), 3, tgt)), // a call the STF does not know, with more map pairs than a log entry may hold
		enc(signRaw(t, alice, append(bytes.Repeat([]byte{0x81}, 14), 0), 4, tgt)), // the same, nested deeper than a log entry may be
		enc(trustedCall(t, bob, stf.Call{Transfer: &stf.Transfer{From: addr(bob), To: addr(alice), Amount: 5}}, 5, tgt)),
		enc(trustedCall(t, bob, stf.Call{Transfer: &stf.Transfer{From: addr(bob), To: addr(alice), Amount: 5}}, 1, tgt)),
	}
	inv := func(r string) protocol.CallResult {
		return protocol.CallResult{Status: protocol.CallInvalid, Reason: r}
	}
	want := []protocol.CallResult{
		{Status: protocol.CallExecuted, Index: 0},
		inv(protocol.ReasonBadSignature),
		inv(protocol.ReasonUndecryptable),
		inv(protocol.ReasonTooLarge),
		inv(protocol.ReasonStaleNonce),
		inv(protocol.ReasonStaleNonce),
		{Status: protocol.CallFailed, Reason: stf.ErrInsufficientFunds.Error(), Index: 1},
		inv(protocol.ReasonMalformed),
		{Status: protocol.CallFailed, Reason: stf.ErrUnknownCall.Error(), Index: 2},
		{Status: protocol.CallFailed, Reason: stf.ErrUnknownCall.Error(), Index: 3},
		inv(protocol.ReasonFutureNonce),
		{Status: protocol.CallExecuted, Index: 4},
	}
	return cts, want, []byte{sidechain.LeafExecuted, sidechain.LeafFailed, sidechain.LeafFailed, sidechain.LeafFailed, sidechain.LeafExecuted}
}

// checkBatch compares a batch's results with want and its call leaves with
// the ciphertexts' hashes and kinds.
func checkBatch(t *testing.T, what string, cts [][]byte, got, want []protocol.CallResult, leaves [][]byte, kinds []byte) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Fatalf("%s: results\n%+v\nwant\n%+v", what, got, want)
	}
	var wantLeaves [][]byte
	for i, r := range want {
		if r.Status != protocol.CallInvalid {
			wantLeaves = append(wantLeaves, sidechain.CallLeaf(sha256.Sum256(cts[i]), kinds[r.Index]))
		}
	}
	if !slices.EqualFunc(leaves, wantLeaves, bytes.Equal) {
		t.Fatalf("%s: leaves %x, want %x", what, leaves, wantLeaves)
	}
}

// TestReplicatedBatch: a direct batch with calls of every outcome, sent to
// one enclave of a three-enclave shard, gets the results and call leaves
// an enclave without replication gives it; only the enclave it was sent to
// decrypts and authenticates the calls, the other two apply them from the
// log, and all three reach the same state.
func TestReplicatedBatch(t *testing.T) {
	ctx := context.Background()

	// Without replication.
	g := newProvisionFixture(t)
	if _, err := g.prov.process(g.c, 3); err != nil {
		t.Fatal(err)
	}
	cts, want, kinds := mixedBatch(t, g)
	rep, err := protocol.CallAs[*protocol.SubmitCallsReply](ctx, g.prov.c, &protocol.SubmitCalls{Calls: cts, Timestamp: time.Now().UnixMilli()})
	if err != nil {
		t.Fatal(err)
	}
	checkBatch(t, "without replication", cts, rep.Results, want, rep.Leaves, kinds)
	if got := enclave.Decryptions(g.prov.enc); got != uint64(len(cts)-1) {
		t.Fatalf("without replication: %d decryptions, want %d (all but the oversized call)", got, len(cts)-1)
	}

	// Replicated, sent to a follower.
	f, n, r1, _ := threeVoters(t)
	cts, want, kinds = mixedBatch(t, f)
	before, decodedBefore := map[*host]uint64{}, map[*host]uint64{}
	for _, h := range n.hosts {
		before[h], decodedBefore[h] = enclave.Decryptions(h.enc), enclave.DecodedBatches(h.enc)
	}
	res := n.submitBatch(r1, cts)
	checkBatch(t, "replicated", cts, res.Results, want, res.Leaves, kinds)
	if res.Block == nil {
		t.Fatal("no shard block")
	}
	n.until("same state after the batch", 50, func() bool { return n.agreed(6) })
	for i, h := range n.hosts {
		wantDec := uint64(0)
		if h == r1 {
			wantDec = uint64(len(cts) - 1)
		}
		if got := enclave.Decryptions(h.enc) - before[h]; got != wantDec {
			t.Fatalf("host %d decrypted %d calls of the batch, want %d", i, got, wantDec)
		}
		// The proposer applies the batch as it proposed it; the others
		// decode it from the log (TestProposedCommandIsLogged: the same).
		wantDecoded := uint64(1)
		if h == r1 {
			wantDecoded = 0
		}
		if got := enclave.DecodedBatches(h.enc) - decodedBefore[h]; got != wantDecoded {
			t.Fatalf("host %d decoded %d batches from the log, want %d", i, got, wantDecoded)
		}
		if a, b := privateBalance(t, f.c, h, f.shieldingPub, f.aliceI), privateBalance(t, f.c, h, f.shieldingPub, f.bobI); a != 745 || b != 255 {
			t.Fatalf("host %d: alice %d bob %d, want 745 255", i, a, b)
		}
	}
}

// TestProposedCommandIsLogged: a direct batch with calls of every outcome
// among 300 transfers decodes from the log as the command its proposer
// built, which the proposer applies without decoding it.
func TestProposedCommandIsLogged(t *testing.T) {
	f := newProvisionFixture(t)
	if _, err := f.prov.process(f.c, 3); err != nil {
		t.Fatal(err)
	}
	tgt := f.c.target(f.shard, f.shard)
	cts, _, _ := mixedBatch(t, f)
	for i := range 300 {
		call := stf.Call{Transfer: &stf.Transfer{From: addr(f.aliceI), To: addr(f.bobI), Amount: 1}}
		cts = append(cts, encryptTo(t, f.shieldingPub, trustedCall(t, f.aliceI, call, uint64(1+i), tgt)))
	}
	proposed, logged, err := enclave.ProposedAndLogged(f.prov.enc, cts)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(proposed, logged) {
		t.Fatalf("the log gives\n%+v\nfor the proposed\n%+v", logged, proposed)
	}
}

// signRaw signs the application call bytes call of k for tgt.
func signRaw(t *testing.T, k ed25519.PrivateKey, call []byte, nonce uint64, tgt stf.Target) []byte {
	t.Helper()
	signed, err := stf.SignCall(k, call, nonce, tgt)
	if err != nil {
		t.Fatal(err)
	}
	return signed
}

// manyPairs is a CBOR map of 100 pairs.
func manyPairs(t *testing.T) []byte {
	t.Helper()
	m := map[uint64]uint64{}
	for i := range uint64(100) {
		m[i] = i
	}
	b, err := protocol.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// checkPreparedAlone fails t unless preparing cts as one batch gives, call
// by call, what preparing each alone on the single-check path
// (prepareCall) gives: a batch checks its chunks' signatures as ed25519x
// batches, a call alone is checked by itself.
func checkPreparedAlone(t *testing.T, e *enclave.Enclave, cts [][]byte) {
	t.Helper()
	got := enclave.PrepareCalls(e, cts)
	for i, ct := range cts {
		if alone := enclave.PrepareCallAlone(e, ct); !reflect.DeepEqual(got[i], alone) {
			t.Fatalf("call %d of %d: prepared in the batch as %+v, alone as %+v", i, len(cts), got[i], alone)
		}
	}
}

// TestPreparedInBatches: a batch of 600 calls, the valid ones by several
// signers and, among them, calls with every invalid outcome (a signature
// for another shard, undecryptable, oversized, not a SignedCall) at random
// places, so that some signature batches hold a bad signature and others
// none, is prepared call by call as each alone would be.
func TestPreparedInBatches(t *testing.T) {
	f := newProvisionFixture(t)
	if _, err := f.prov.process(f.c, 3); err != nil {
		t.Fatal(err)
	}
	tgt := f.c.target(f.shard, f.shard)
	mixed, _, _ := mixedBatch(t, f)
	var cts [][]byte
	for i := range 540 {
		from, to := f.aliceI, f.bobI
		if i%2 == 1 {
			from, to = to, from
		}
		call := stf.Call{Transfer: &stf.Transfer{From: addr(from), To: addr(to), Amount: 1}}
		cts = append(cts, encryptTo(t, f.shieldingPub, trustedCall(t, from, call, uint64(1+i/2), tgt)))
	}
	rng := rand.New(rand.NewPCG(3, 4))
	for range 5 {
		for _, ct := range mixed {
			i := rng.IntN(len(cts) + 1)
			cts = slices.Insert(cts, i, ct)
		}
	}
	checkPreparedAlone(t, f.prov.enc, cts)
	ok := 0
	for _, p := range enclave.PrepareCalls(f.prov.enc, cts) {
		if reflect.ValueOf(p).FieldByName("Call").IsNil() {
			continue
		}
		ok++
	}
	// The 540 transfers and, of the mixed batch, the eight calls whose
	// signatures verify (five times each): all but the four invalid ones.
	if ok != 540+5*8 {
		t.Fatalf("%d calls authenticated, want %d", ok, 540+5*8)
	}
}
