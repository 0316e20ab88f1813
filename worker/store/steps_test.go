package store_test

import (
	"errors"
	"path/filepath"
	"testing"

	"github.com/integritee-go/integritee/enclave/protocol"
	"github.com/integritee-go/integritee/worker/store"
)

// TestCommitSteps: a replicated enclave's reply (records, then chain and
// direct steps in log order) is written in one transaction; a step out of
// order writes nothing, records included.
func TestCommitSteps(t *testing.T) {
	path := filepath.Join(t.TempDir(), "w.db")
	s := open(t, path)
	chain := func(h int64, root byte, block *uint64) store.Step {
		st := store.Step{Batch: store.Batch{Checkpoint: store.Checkpoint{Height: h, StateRoot: [32]byte{root}, Sealed: []byte{root}},
			Changes: []protocol.Entry{{Key: key(int(root)), Value: []byte{root}}}}}
		if block != nil {
			b := shardBlock(*block)
			st.Batch.Block = &b
		}
		return st
	}
	direct := func(h int64, root byte, n uint64) store.Step {
		b := shardBlock(n)
		return store.Step{Batch: store.Batch{Checkpoint: store.Checkpoint{Height: h, StateRoot: [32]byte{root}, Sealed: []byte{root}},
			Outgoing: []protocol.Outgoing{{Tag: []byte{root}}}}, Direct: &b}
	}
	one := uint64(1)
	if err := s.CommitSteps(store.Records{Shard: shardA, Data: recs("r0", "r1")},
		[]store.Step{chain(5, 1, nil), direct(5, 2, 1), chain(6, 3, nil)}); err != nil {
		t.Fatal(err)
	}
	if err := s.CommitSteps(store.Records{Shard: shardA, Data: recs("r2")}, nil); err != nil {
		t.Fatalf("records only: %v", err)
	}
	for name, steps := range map[string][]store.Step{
		"height gap":       {chain(8, 4, nil)},
		"direct off chain": {direct(7, 4, 2)},
		"block gap":        {chain(7, 4, &one)},
		"second bad":       {chain(7, 4, nil), direct(6, 5, 2)},
	} {
		err := s.CommitSteps(store.Records{Shard: shardA, Data: recs("bad")}, steps)
		if !errors.Is(err, store.ErrHeightGap) && !errors.Is(err, store.ErrShardBlockGap) {
			t.Fatalf("%s: %v", name, err)
		}
	}
	s.Close()
	s = open(t, path)
	wantRecords(t, s, shardA, 0, recs("r0", "r1", "r2"))
	cp, ok, err := s.Checkpoint()
	if err != nil || !ok || cp.Height != 6 || cp.StateRoot != [32]byte{3} {
		t.Fatalf("checkpoint %+v %v %v", cp, ok, err)
	}
	last, ok, err := s.LastShardBlock()
	if err != nil || !ok || last.Header.Number != 1 {
		t.Fatalf("last shard block %d %v %v", last.Header.Number, ok, err)
	}
	ob, err := s.Outbox(10)
	if err != nil || len(ob) != 1 {
		t.Fatalf("outbox %d %v", len(ob), err)
	}
}
