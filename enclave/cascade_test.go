package enclave_test

import (
	"bytes"
	"context"
	"slices"
	"testing"

	"github.com/integritee-go/integritee/chain/sidechain"
	"github.com/integritee-go/integritee/enclave/protocol"
)

// TestCascadeConfirmationHoldsEnclave: the chain may confirm several shard
// blocks with one vote (votes for later numbers recorded early, confirmed
// when their predecessor is); the deciding vote's verified result names the
// last one. The enclave that produced them goes on; one whose host restored
// a state from between them (it never produced the last) stops, although
// the block its vote names is one it holds.
func TestCascadeConfirmationHoldsEnclave(t *testing.T) {
	d := newDirect(t, "cascade confirmation")
	d.chainOK(d.flush(), "setup's outgoing calls")
	if rep := d.submit(d.transfer(d.aliceI, d.bobI, 1, 0)); rep.Block == nil {
		t.Fatal("no block for the first transfer")
	}
	mid := d.h.snapshot() // after block n, before block n+1
	midProcessed := d.processed
	rep := d.submit(d.transfer(d.aliceI, d.bobI, 1, 1))
	if rep.Block == nil {
		t.Fatal("no block for the second transfer")
	}
	last := rep.Block.Header

	// The host sends the votes later numbers first: block n+1's is
	// recorded, block n's confirms both.
	calls := slices.Clone(d.h.outgoing[d.flushed:])
	d.flushed = len(d.h.outgoing)
	if len(calls) != 2 {
		t.Fatalf("%d outgoing calls, want the two votes", len(calls))
	}
	slices.Reverse(calls)
	p := d.params()
	p.Nonce = d.accountNonce()
	signed, err := protocol.CallAs[*protocol.SignedTxs](context.Background(), d.h.c, &protocol.SignOutgoing{Calls: calls, Params: p})
	if err != nil {
		t.Fatal(err)
	}
	res := d.c.block(signed.Txs...)
	d.chainOK(res, "votes")
	lastHash, err := last.Hash()
	if err != nil {
		t.Fatal(err)
	}
	if want := sidechain.ConfirmedResult(last.Number-1, last.Number, lastHash); len(res[0].Data) != 0 || !bytes.Equal(res[1].Data, want) {
		t.Fatalf("results data %q, %q; want none, %q", res[0].Data, res[1].Data, want)
	}
	d.c.block()
	d.sync() // the enclave that produced both goes on

	// A host restores the state from between the two blocks: the chain
	// confirmed a block this enclave never produced.
	d.h.restore(mid)
	d.processed = midProcessed
	d.h.boot(d.c)
	wantRolledBack(t, d.catchUp(), "an enclave behind the cascade's last block")
}

// TestRunConfirmationHoldsEnclave: the enclave signs its votes for
// consecutive blocks as one confirm_sidechain_blocks, whose verified result
// names the last block it confirmed. The enclave that produced them goes
// on; one whose host restored a state from between them stops.
func TestRunConfirmationHoldsEnclave(t *testing.T) {
	d := newDirect(t, "run confirmation")
	d.chainOK(d.flush(), "setup's outgoing calls")
	mid := d.h.snapshot()
	midProcessed := d.processed
	var last sidechain.Header
	for i := range 3 {
		rep := d.submit(d.transfer(d.aliceI, d.bobI, 1, uint64(i)))
		if rep.Block == nil {
			t.Fatalf("no block for transfer %d", i)
		}
		last = rep.Block.Header
	}
	calls := slices.Clone(d.h.outgoing[d.flushed:])
	d.flushed = len(d.h.outgoing)
	if len(calls) != 3 {
		t.Fatalf("%d outgoing calls, want the three votes", len(calls))
	}
	p := d.params()
	p.Nonce = d.accountNonce()
	signed, err := protocol.CallAs[*protocol.SignedTxs](context.Background(), d.h.c, &protocol.SignOutgoing{Calls: calls, Params: p})
	if err != nil {
		t.Fatal(err)
	}
	if len(signed.Txs) != 1 || !slices.Equal(signed.Covers, []uint32{3}) || signed.NextNonce != p.Nonce+1 {
		t.Fatalf("signed %d transactions covering %v, next nonce %d; want one covering 3, %d", len(signed.Txs), signed.Covers, signed.NextNonce, p.Nonce+1)
	}
	res := d.c.block(signed.Txs...)
	d.chainOK(res, "votes")
	lastHash, err := last.Hash()
	if err != nil {
		t.Fatal(err)
	}
	if want := sidechain.ConfirmedResult(0, last.Number, lastHash); !bytes.Equal(res[0].Data, want) {
		t.Fatalf("result data %q, want %q", res[0].Data, want)
	}
	d.c.block()
	d.sync()

	d.h.restore(mid)
	d.processed = midProcessed
	d.h.boot(d.c)
	wantRolledBack(t, d.catchUp(), "an enclave behind the run's last block")
}
