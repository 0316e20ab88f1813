package store_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/integritee-go/integritee/chain/sidechain"
	"github.com/integritee-go/integritee/chain/tx"
	"github.com/integritee-go/integritee/chain/types"
	"github.com/integritee-go/integritee/enclave/protocol"
	"github.com/integritee-go/integritee/worker/store"
)

func open(t *testing.T, path string) *store.Store {
	t.Helper()
	s, err := store.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func key(i int) [32]byte {
	var k [32]byte
	binary.BigEndian.PutUint64(k[24:], uint64(i))
	return k
}

func TestCommitAndReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "w.db")
	s := open(t, path)
	if err := s.Bind([32]byte{1}, "c"); err != nil {
		t.Fatal(err)
	}
	if k, err := s.SealedKeys(); err != nil || k != nil {
		t.Fatalf("fresh sealed keys = %v, %v", k, err)
	}
	if _, ok, err := s.Checkpoint(); err != nil || ok {
		t.Fatalf("fresh checkpoint ok=%v err=%v", ok, err)
	}
	keys := protocol.SealedKeys{Signer: []byte("s"), Shielding: []byte("sh"), State: []byte("st")}
	if err := s.SaveSealedKeys(keys); err != nil {
		t.Fatal(err)
	}
	call := protocol.Outgoing{Call: tx.Call{Module: "bridge", Method: "confirm_processed_block", Args: []byte{0xa0}}, Tag: []byte("tag")}
	err := s.Commit(store.Batch{
		Checkpoint: store.Checkpoint{Height: 5, StateRoot: [32]byte{5}, Sealed: []byte("cp5")},
		Changes:    []protocol.Entry{{Key: key(1), Value: []byte("a")}, {Key: key(2), Value: []byte("b")}},
		Outgoing:   []protocol.Outgoing{call, call},
	})
	if err != nil {
		t.Fatal(err)
	}
	err = s.Commit(store.Batch{
		Checkpoint: store.Checkpoint{Height: 6, StateRoot: [32]byte{6}, Sealed: []byte("cp6")},
		Changes:    []protocol.Entry{{Key: key(1)}, {Key: key(3), Value: []byte("c")}},
		Outgoing:   []protocol.Outgoing{call},
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range []int64{6, 8, 5} {
		err := s.Commit(store.Batch{Checkpoint: store.Checkpoint{Height: h}})
		if !errors.Is(err, store.ErrHeightGap) {
			t.Errorf("commit height %d after 6: err = %v, want ErrHeightGap", h, err)
		}
	}
	if err := s.Done(1); err != nil {
		t.Fatal(err)
	}
	s.Close()

	s = open(t, path)
	if err := s.Bind([32]byte{2}, "c"); !errors.Is(err, store.ErrWrongShard) {
		t.Errorf("bind other shard: %v", err)
	}
	if err := s.Bind([32]byte{1}, "other"); !errors.Is(err, store.ErrWrongShard) {
		t.Errorf("bind other chain: %v", err)
	}
	if err := s.Bind([32]byte{1}, "c"); err != nil {
		t.Fatal(err)
	}
	got, err := s.SealedKeys()
	if err != nil || got == nil || !bytes.Equal(got.Signer, keys.Signer) || !bytes.Equal(got.State, keys.State) {
		t.Fatalf("sealed keys = %+v, %v", got, err)
	}
	cp, ok, err := s.Checkpoint()
	if err != nil || !ok || cp.Height != 6 || cp.StateRoot != ([32]byte{6}) || string(cp.Sealed) != "cp6" {
		t.Fatalf("checkpoint = %+v %v %v", cp, ok, err)
	}
	var entries []string
	if err := s.Entries(func(e protocol.Entry) error {
		entries = append(entries, strconv.Itoa(int(e.Key[31]))+"="+string(e.Value))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if want := "[2=b 3=c]"; stringOf(entries) != want {
		t.Errorf("entries = %v, want %s", entries, want)
	}
	if n, _ := s.EntryCount(); n != 2 {
		t.Errorf("entry count %d", n)
	}
	ob, err := s.Outbox(10)
	if err != nil {
		t.Fatal(err)
	}
	if len(ob) != 2 || ob[0].Seq != 2 || ob[1].Seq != 3 || ob[0].Call.Call.Method != call.Call.Method {
		t.Errorf("outbox = %+v", ob)
	}
	if ob, _ := s.Outbox(1); len(ob) != 1 {
		t.Errorf("outbox limit: %d", len(ob))
	}
}

func shardBlock(n uint64) sidechain.SignedHeader {
	return sidechain.SignedHeader{Header: sidechain.Header{Number: n, StateHash: types.Hash{byte(n)}}, Signature: []byte{byte(n)}}
}

// TestCommitShardBlock: shard blocks are numbered consecutively (from any
// number: a provisioned enclave continues its provider's) on top of the
// last chain block, written with their state changes, checkpoint and
// outgoing calls in one transaction, and handed back after a reopen; a
// wrong number or height writes nothing.
func TestCommitShardBlock(t *testing.T) {
	path := filepath.Join(t.TempDir(), "w.db")
	s := open(t, path)
	call := protocol.Outgoing{Call: tx.Call{Module: "sidechain", Method: "confirm_sidechain_block", Args: []byte{0xa0}}, Tag: []byte("t")}
	batch := func(h int64, root byte, k int) store.Batch {
		return store.Batch{
			Checkpoint: store.Checkpoint{Height: h, StateRoot: [32]byte{root}, Sealed: []byte{root}},
			Changes:    []protocol.Entry{{Key: key(k), Value: []byte{root}}},
			Outgoing:   []protocol.Outgoing{call},
		}
	}
	if err := s.CommitShardBlock(batch(0, 1, 1), shardBlock(1)); !errors.Is(err, store.ErrShardBlockGap) {
		t.Fatalf("shard block before any chain block: %v", err)
	}
	if err := s.Commit(store.Batch{Checkpoint: store.Checkpoint{Height: 3, StateRoot: [32]byte{3}}}); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := s.LastShardBlock(); ok || err != nil {
		t.Fatalf("last shard block of a fresh store: %v %v", ok, err)
	}
	if err := s.CommitShardBlock(batch(3, 10, 10), shardBlock(7)); err != nil {
		t.Fatal(err)
	}
	if err := s.CommitShardBlock(batch(3, 11, 11), shardBlock(8)); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		h    int64
		n    uint64
	}{{"repeated number", 3, 8}, {"old number", 3, 1}, {"skipped number", 3, 10}, {"next height", 4, 9}, {"old height", 2, 9}} {
		if err := s.CommitShardBlock(batch(tc.h, 99, 99), shardBlock(tc.n)); !errors.Is(err, store.ErrShardBlockGap) {
			t.Errorf("%s: %v, want ErrShardBlockGap", tc.name, err)
		}
	}
	// A chain block follows the last chain block, shard blocks or not.
	if err := s.Commit(store.Batch{Checkpoint: store.Checkpoint{Height: 4, StateRoot: [32]byte{12}, Sealed: []byte{12}}}); err != nil {
		t.Fatal(err)
	}
	if err := s.CommitShardBlock(batch(4, 13, 13), shardBlock(9)); err != nil {
		t.Fatal(err)
	}
	s.Close()

	s = open(t, path)
	cp, ok, err := s.Checkpoint()
	if err != nil || !ok || cp.Height != 4 || cp.StateRoot != [32]byte{13} || !bytes.Equal(cp.Sealed, []byte{13}) {
		t.Fatalf("checkpoint after shard block 9: %+v %v %v", cp, ok, err)
	}
	last, ok, err := s.LastShardBlock()
	if err != nil || !ok || last.Header.Number != 9 || last.Header.StateHash != (types.Hash{9}) || !bytes.Equal(last.Signature, []byte{9}) {
		t.Fatalf("last shard block %+v %v %v", last, ok, err)
	}
	if b, ok, err := s.ShardBlock(8); err != nil || !ok || b.Header.Number != 8 {
		t.Fatalf("shard block 8: %+v %v %v", b, ok, err)
	}
	for _, n := range []uint64{1, 6, 10} {
		if _, ok, err := s.ShardBlock(n); err != nil || ok {
			t.Fatalf("shard block %d: %v %v", n, ok, err)
		}
	}
	var got []int
	s.Entries(func(e protocol.Entry) error {
		got = append(got, int(binary.BigEndian.Uint64(e.Key[24:])))
		return nil
	})
	if want := []int{10, 11, 13}; !slices.Equal(got, want) {
		t.Errorf("entries %v, want %v (refused blocks must write nothing)", got, want)
	}
	if ob, err := s.Outbox(100); err != nil || len(ob) != 3 {
		t.Errorf("outbox %d calls, %v; want 3", len(ob), err)
	}
}

func stringOf(v []string) string {
	b := []byte{'['}
	for i, s := range v {
		if i > 0 {
			b = append(b, ' ')
		}
		b = append(b, s...)
	}
	return string(append(b, ']'))
}

func TestLocked(t *testing.T) {
	path := filepath.Join(t.TempDir(), "w.db")
	open(t, path)
	// bbolt's flock is per open file description, so a second open in
	// this process is refused like one from another process.
	if _, err := store.Open(path); !errors.Is(err, store.ErrLocked) {
		t.Fatalf("second open: %v, want ErrLocked", err)
	}
}

// TestCrashAtomicity kills a process that commits blocks as fast as it can
// and checks that the database always holds exactly the blocks up to its
// checkpoint: block h writes entry h and deletes entry h-3, and shard block
// h, committed after it, writes entry shardBase+h. The kill points are
// random (the seed is logged): after 1 to 400 blocks of a store that lives
// through all rounds, so that kills land before, in and after folds, and
// within the first milliseconds of new stores, so that they land in their
// creation. Only where the kill lands depends on the scheduler; what is
// checked never does.
func TestCrashAtomicity(t *testing.T) {
	if os.Getenv("STORE_CRASH_CHILD") != "" {
		crashChild(os.Getenv("STORE_CRASH_CHILD"))
		return
	}
	seed := time.Now().UnixNano()
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(uint64(seed), 0))
	start := func(path string) (*exec.Cmd, io.Reader) {
		cmd := exec.Command(os.Args[0], "-test.run=^TestCrashAtomicity$")
		cmd.Env = append(os.Environ(), "STORE_CRASH_CHILD="+path)
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		return cmd, out
	}
	path := filepath.Join(t.TempDir(), "w.db")
	for round := range 6 {
		cmd, out := start(path)
		blocks := 1 + rng.IntN(400)
		buf := make([]byte, 4096)
		for n := 0; n < blocks; {
			k, err := out.Read(buf)
			if err != nil {
				t.Fatalf("round %d: child output: %v", round, err)
			}
			n += bytes.Count(buf[:k], []byte{'\n'})
		}
		cmd.Process.Kill()
		cmd.Wait()
		checkCrashed(t, fmt.Sprintf("round %d, killed after %d blocks", round, blocks), path, true)
	}
	for round := range 4 {
		fresh := filepath.Join(t.TempDir(), "w.db")
		cmd, _ := start(fresh)
		wait := time.Duration(rng.IntN(60)) * time.Millisecond
		time.Sleep(wait)
		cmd.Process.Kill()
		cmd.Wait()
		checkCrashed(t, fmt.Sprintf("new store %d, killed after %v", round, wait), fresh, false)
	}
}

// checkCrashed opens the store a killed crashChild left at path and checks
// that it holds exactly the blocks up to its checkpoint (none, unless
// committed says a block was).
func checkCrashed(t *testing.T, round, path string, committed bool) {
	t.Helper()
	s, err := store.Open(path)
	if err != nil {
		t.Fatalf("%s: %v", round, err)
	}
	defer s.Close()
	cp, ok, err := s.Checkpoint()
	if err != nil || committed && !ok {
		t.Fatalf("%s: checkpoint %v %v", round, ok, err)
	}
	want := map[int]bool{}
	for h := 1; h <= int(cp.Height); h++ {
		want[h] = true
		delete(want, h-3)
	}
	last, _, err := s.LastShardBlock()
	if err != nil || (int64(last.Header.Number) != cp.Height && int64(last.Header.Number) != cp.Height-1) {
		t.Fatalf("%s: height %d with last shard block %d (%v)", round, cp.Height, last.Header.Number, err)
	}
	if last.Header.Number > 0 && int64(last.Header.Number) == cp.Height && cp.StateRoot != [32]byte{1} {
		t.Fatalf("%s: checkpoint is not the shard block's", round)
	}
	for n := 1; n <= int(last.Header.Number); n++ {
		want[shardBase+n] = true
	}
	got := map[int]bool{}
	if err := s.Entries(func(e protocol.Entry) error {
		got[int(binary.BigEndian.Uint64(e.Key[24:]))] = true
		return nil
	}); err != nil {
		t.Fatalf("%s: entries: %v", round, err)
	}
	if len(got) != len(want) {
		t.Fatalf("%s: height %d, entries %v, want %v", round, cp.Height, got, want)
	}
	for h := range want {
		if !got[h] {
			t.Fatalf("%s: height %d, entry %d missing", round, cp.Height, h)
		}
	}
	ob, _ := s.Outbox(1 << 20)
	if len(ob) != int(cp.Height)+int(last.Header.Number) {
		t.Fatalf("%s: height %d, shard block %d, with %d outgoing calls", round, cp.Height, last.Header.Number, len(ob))
	}
}

const shardBase = 1 << 30

func crashChild(path string) {
	s, err := store.Open(path)
	if err != nil {
		os.Exit(2)
	}
	cp, _, err := s.Checkpoint()
	if err != nil {
		os.Exit(3)
	}
	shardBatch := func(h int) store.Batch {
		return store.Batch{
			Checkpoint: store.Checkpoint{Height: int64(h), StateRoot: [32]byte{1}, Sealed: bytes.Repeat([]byte{3}, 100)},
			Changes:    []protocol.Entry{{Key: key(shardBase + h), Value: []byte{4}}},
			Outgoing:   []protocol.Outgoing{{Call: tx.Call{Module: "m", Method: "y", Args: []byte{0xa0}}, Tag: []byte{1}}},
		}
	}
	// The last run may have died between a block and its shard block.
	if last, _, err := s.LastShardBlock(); err != nil {
		os.Exit(3)
	} else if h := int(cp.Height); h > 0 && int(last.Header.Number) < h {
		if err := s.CommitShardBlock(shardBatch(h), shardBlock(uint64(h))); err != nil {
			os.Exit(5)
		}
	}
	for h := int(cp.Height) + 1; ; h++ {
		b := store.Batch{
			Checkpoint: store.Checkpoint{Height: int64(h), Sealed: bytes.Repeat([]byte{1}, 100)},
			Changes:    []protocol.Entry{{Key: key(h), Value: bytes.Repeat([]byte{2}, 200)}},
			Outgoing:   []protocol.Outgoing{{Call: tx.Call{Module: "m", Method: "x", Args: []byte{0xa0}}, Tag: []byte{1}}},
		}
		if h > 3 {
			b.Changes = append(b.Changes, protocol.Entry{Key: key(h - 3)})
		}
		if err := s.Commit(b); err != nil {
			os.Exit(4)
		}
		if err := s.CommitShardBlock(shardBatch(h), shardBlock(uint64(h))); err != nil {
			os.Exit(5)
		}
		os.Stdout.Write([]byte("ok\n"))
	}
}
