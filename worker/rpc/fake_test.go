package rpc_test

import (
	"bytes"
	"context"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/cometbft/cometbft/crypto/merkle"

	"github.com/integritee-go/integritee/chain/sidechain"
	"github.com/integritee-go/integritee/chain/types"
	"github.com/integritee-go/integritee/enclave/protocol"
	"github.com/integritee-go/integritee/worker/rpc"
)

// fake is a backend without an enclave: a call whose ciphertext starts with
// "bad" is invalid, "fail" failed, anything else executed; each round trip
// makes a block.
type fake struct {
	id rpc.Identity
	// gate, if set, holds SubmitCalls until it is closed; entered reports
	// each round trip's size on entry.
	gate    chan struct{}
	entered chan int
	// getterGate, if set, holds ExecuteGetter until it is closed;
	// getters counts those inside, maxGetters the most seen at once.
	getterGate          chan struct{}
	getters, maxGetters atomic.Int64

	mu     sync.Mutex
	rounds []int
	calls  [][]byte // every call received, copied, in order
	block  uint64
}

var fakeShard = [32]byte{0x5a}

func newFake() *fake {
	return &fake{id: rpc.Identity{ShieldingKey: []byte("shielding key"), Signer: bytes.Repeat([]byte{1}, 32), MRENCLAVE: fakeShard, Shard: fakeShard}}
}

func (f *fake) ShieldingKey(context.Context) (*rpc.Identity, error) { id := f.id; return &id, nil }

func (f *fake) SubmitCalls(ctx context.Context, calls [][]byte) ([]rpc.Outcome, error) {
	if f.entered != nil {
		f.entered <- len(calls)
	}
	if f.gate != nil {
		select {
		case <-f.gate:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.rounds = append(f.rounds, len(calls))
	for _, c := range calls {
		f.calls = append(f.calls, bytes.Clone(c))
	}
	rep := &protocol.SubmitCallsReply{Results: make([]protocol.CallResult, len(calls))}
	for i, c := range calls {
		r := &rep.Results[i]
		switch {
		case bytes.HasPrefix(c, []byte("bad")):
			r.Status, r.Reason = protocol.CallInvalid, protocol.ReasonBadSignature
			continue
		case bytes.HasPrefix(c, []byte("fail")):
			r.Status, r.Reason = protocol.CallFailed, "balances: insufficient funds"
		default:
			r.Status = protocol.CallExecuted
		}
		r.Index = uint32(len(rep.Leaves))
		rep.Leaves = append(rep.Leaves, c)
	}
	if len(rep.Leaves) > 0 {
		f.block++
		rep.Block = &sidechain.SignedHeader{Header: sidechain.Header{
			Shard: types.Hash(fakeShard), Number: f.block, CallsRoot: types.Hash(merkle.HashFromByteSlices(rep.Leaves)),
		}}
	}
	return rpc.Outcomes(rep)
}

func (f *fake) ExecuteGetter(ctx context.Context, req []byte) ([]byte, bool, error) {
	n := f.getters.Add(1)
	defer f.getters.Add(-1)
	for m := f.maxGetters.Load(); n > m && !f.maxGetters.CompareAndSwap(m, n); m = f.maxGetters.Load() {
	}
	if f.getterGate != nil {
		select {
		case <-f.getterGate:
		case <-ctx.Done():
			return nil, false, ctx.Err()
		}
	}
	if bytes.HasPrefix(req, []byte("bad")) {
		return nil, false, protocol.Errorf(protocol.CodeInvalidInput, "getter request does not decrypt")
	}
	if bytes.HasPrefix(req, []byte("down")) {
		return nil, false, rpc.ErrNotReady
	}
	return append([]byte("enc:"), req...), bytes.HasPrefix(req, []byte("stale")), nil
}

func (f *fake) Health(context.Context) (*rpc.Health, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return &rpc.Health{Height: 7, StateRoot: [32]byte{1}, ShardBlock: f.block}, nil
}

func (f *fake) received() [][]byte {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.calls)
}

func (f *fake) roundTrips() []int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]int(nil), f.rounds...)
}
