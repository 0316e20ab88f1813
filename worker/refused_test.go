package worker_test

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/integritee-go/integritee/chain/accounts"
	"github.com/integritee-go/integritee/chain/bridge"
	"github.com/integritee-go/integritee/chain/tx"
	"github.com/integritee-go/integritee/client"
	"github.com/integritee-go/integritee/enclave/protocol"
	"github.com/integritee-go/integritee/worker"
)

// wrongBlock makes the confirmation of the first processed block at or
// above height from name another block hash, as an enclave fed a fake
// chain would, and records that height.
type wrongBlock struct {
	worker.Enclave
	from   int64
	forged *atomic.Int64
}

func (f wrongBlock) Call(ctx context.Context, req protocol.Request) (protocol.Reply, error) {
	rep, err := f.Enclave.Call(ctx, req)
	pb, ok := rep.(*protocol.ProcessBlockReply)
	if err != nil || !ok || pb.Height < f.from || f.forged.Load() != 0 {
		return rep, err
	}
	for i, o := range pb.Outgoing {
		if o.Call.Method != bridge.MethodConfirmProcessedBlock {
			continue
		}
		var conf bridge.ConfirmProcessedBlock
		if err := o.Call.DecodeArgs(&conf); err != nil {
			return nil, err
		}
		conf.BlockHash[0] ^= 1
		call, err := tx.NewCall(bridge.Name, bridge.MethodConfirmProcessedBlock, conf)
		if err != nil {
			return nil, err
		}
		pb.Outgoing[i].Call = call
		f.forged.Store(pb.Height)
	}
	return pb, nil
}

// syncBuffer is a log sink for concurrent writers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// A confirmation the chain refuses for good (ErrUnknownBlock: not the
// chain's block at that height) is dropped from the outbox, not retried:
// the confirmations after it reach the chain.
func TestRefusedConfirmationDropped(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	rpc := startNode(t)
	c, err := client.New(ctx, rpc, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var forged atomic.Int64
	factory := func(context.Context) (worker.Enclave, error) {
		f, err := newFakeEnclave(testShard)
		if err != nil {
			return nil, err
		}
		return wrongBlock{Enclave: worker.Pipe(f), from: 5, forged: &forged}, nil
	}
	var logs syncBuffer
	w, err := worker.New(ctx, worker.Config{
		NodeRPC: rpc, DataDir: t.TempDir(), Enclave: factory, Shard: testShard,
		Fund:   worker.DevFunder(rpc, accounts.DevKey("Alice"), 10*accounts.Unit),
		Logger: slog.New(slog.NewTextHandler(&logs, nil)), PollInterval: 20 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer runWorker(t, ctx, w)()
	waitFor(t, ctx, "confirmations past the forged one", func() (bool, error) {
		h := forged.Load()
		if h == 0 {
			return false, nil
		}
		s, err := c.Shard(ctx, testShard)
		if err != nil || s.Shard.Latest == nil {
			return false, err
		}
		return int64(s.Shard.Latest.Height) > h+2, nil
	})
	h := uint64(forged.Load())
	if conf, _, err := c.ConfirmedBlock(ctx, testShard, h); err != nil || conf != nil {
		t.Fatalf("forged confirmation of block %d recorded: %+v %v", h, conf, err)
	}
	if conf, _, err := c.ConfirmedBlock(ctx, testShard, h+1); err != nil || conf == nil {
		t.Fatalf("no confirmation of block %d after the forged one: %v", h+1, err)
	}
	if l := logs.String(); !strings.Contains(l, "outgoing call refused by the chain; dropped") || !strings.Contains(l, bridge.ErrUnknownBlock.Msg) {
		t.Fatalf("no refusal with %q logged:\n%s", bridge.ErrUnknownBlock.Msg, l)
	}
}
