package rpc_test

import (
	"context"
	"encoding/json"
	"slices"
	"testing"

	"github.com/integritee-go/integritee/worker/rpc"
	"github.com/integritee-go/integritee/worker/rpc/api"
)

// pipelined is the fake backend as an rpc.PipelinedBackend: it releases
// the next batch at once, then holds the first batch's answer until
// persist is closed (its commit, in a worker).
type pipelined struct {
	*fake
	persist chan struct{}
	rounds  chan int // each round's size, when it is released
}

func (p *pipelined) SubmitCallsPipelined(ctx context.Context, calls [][]byte, next func()) ([]rpc.Outcome, error) {
	outs, err := p.fake.SubmitCalls(ctx, calls) // ordered: the fake's block numbers follow the rounds
	first := len(p.fake.roundTrips()) == 1
	p.rounds <- len(calls)
	next()
	if first {
		<-p.persist
	}
	return outs, err
}

// TestPipelinedBatches: with a backend that takes the next batch while the
// last one is persisted, the server passes the calls that queued meanwhile
// at once, in order after it, without waiting for the first batch's
// answer.
func TestPipelinedBatches(t *testing.T) {
	p := &pipelined{fake: newFake(), persist: make(chan struct{}), rounds: make(chan int, 4)}
	_, _, ws := newServer(t, p, rpc.Options{})
	first := dialWS(t, ws)
	first.send(req(0, "author_submitTrustedCall", callParams("first")))
	if n := <-p.rounds; n != 1 {
		t.Fatalf("first round of %d", n)
	}
	// The first batch is not persisted yet; the second goes anyway.
	second := dialWS(t, ws)
	m := second.call(1, "author_submitTrustedCall", callParams("second"))
	var r api.CallResult
	if m.Error != nil || json.Unmarshal(m.Result, &r) != nil || r.Block == nil || r.Block.Header.Number != 2 {
		t.Fatalf("second call answered %+v, want executed in shard block 2", m)
	}
	close(p.persist)
	m = first.next()
	if m.Error != nil || json.Unmarshal(m.Result, &r) != nil || r.Block == nil || r.Block.Header.Number != 1 {
		t.Fatalf("first call answered %+v, want executed in shard block 1", m)
	}
	if got := p.roundTrips(); !slices.Equal(got, []int{1, 1}) {
		t.Fatalf("round trips %v", got)
	}
}
