package store_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/integritee-go/integritee/worker/store"
)

var (
	shardA = [32]byte{0xa}
	shardB = [32]byte{0xb}
)

func wantRecords(t *testing.T, s *store.Store, shard [32]byte, first uint64, want [][]byte) {
	t.Helper()
	got, err := s.Records(shard)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("shard %x: %d records, want %d", shard[0], len(got), len(want))
	}
	for i := range want {
		if !bytes.Equal(got[i], want[i]) {
			t.Fatalf("shard %x: record %d = %q, want %q", shard[0], i, got[i], want[i])
		}
	}
	f, n, err := s.RecordRange(shard)
	if err != nil || f != first || n != first+uint64(len(want)) {
		t.Fatalf("shard %x: range [%d, %d) %v, want [%d, %d)", shard[0], f, n, err, first, first+uint64(len(want)))
	}
	var idx []uint64
	if err := s.EachRecord(shard, func(i uint64, _ []byte) error { idx = append(idx, i); return nil }); err != nil {
		t.Fatal(err)
	}
	for k, i := range idx {
		if i != first+uint64(k) {
			t.Fatalf("shard %x: indexes %v, want from %d", shard[0], idx, first)
		}
	}
}

func recs(ss ...string) [][]byte {
	out := make([][]byte, len(ss))
	for i, s := range ss {
		out[i] = []byte(s)
	}
	return out
}

// TestRecordsAppendReopen: records of two shards are kept apart and in
// order, appended alone or with a commit, and survive a reopen.
func TestRecordsAppendReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "w.db")
	s := open(t, path)
	wantRecords(t, s, shardA, 0, nil)
	if err := s.AppendRecords(shardA, nil); err != nil {
		t.Fatal(err)
	}
	if err := s.AppendRecords(shardA, recs("a0", "a1")); err != nil {
		t.Fatal(err)
	}
	if err := s.AppendRecords(shardB, recs("b0")); err != nil {
		t.Fatal(err)
	}
	if err := s.AppendRecords(shardA, recs("a2")); err != nil {
		t.Fatal(err)
	}
	err := s.Commit(store.Batch{
		Checkpoint: store.Checkpoint{Height: 1, Sealed: []byte("cp1")},
		Records:    store.Records{Shard: shardA, Data: recs("a3", "a4")},
	})
	if err != nil {
		t.Fatal(err)
	}
	// A refused commit appends nothing.
	err = s.Commit(store.Batch{
		Checkpoint: store.Checkpoint{Height: 5},
		Records:    store.Records{Shard: shardA, Data: recs("lost")},
	})
	if !errors.Is(err, store.ErrHeightGap) {
		t.Fatalf("commit with a gap: %v", err)
	}
	s.Close()

	s = open(t, path)
	wantRecords(t, s, shardA, 0, recs("a0", "a1", "a2", "a3", "a4"))
	wantRecords(t, s, shardB, 0, recs("b0"))
	if cp, ok, err := s.Checkpoint(); err != nil || !ok || cp.Height != 1 {
		t.Fatalf("checkpoint %+v %v %v", cp, ok, err)
	}
	if err := s.AppendRecords(shardB, recs("b1")); err != nil {
		t.Fatal(err)
	}
	wantRecords(t, s, shardB, 0, recs("b0", "b1"))
}

// TestRecordsExact is what a restarted enclave relies on from its host's
// store: whatever sequence of records, of whatever sizes and bytes,
// appended in whatever groups, comes back byte for byte and in order,
// unaffected by the caller changing its slices before or after, and by
// another shard's records. (A host that does not run this store can of
// course return anything: the enclave checks the records' hash chain.)
func TestRecordsExact(t *testing.T) {
	path := filepath.Join(t.TempDir(), "w.db")
	s := open(t, path)
	rng := rand.New(rand.NewPCG(1, 2))
	var wantA, wantB [][]byte
	for range 60 {
		n := 1 + rng.IntN(8)
		batch := make([][]byte, n)
		for i := range batch {
			size := 1 + rng.IntN(3000)
			if rng.IntN(10) == 0 {
				size = 1 + rng.IntN(200<<10) // some larger than a bbolt page
			}
			r := make([]byte, size)
			for j := range r {
				r[j] = byte(rng.Uint32())
			}
			if rng.IntN(5) == 0 {
				// Bytes that look like the store's own keys.
				copy(r, []byte("next"))
			}
			batch[i] = r
		}
		shard, want := shardA, &wantA
		if rng.IntN(3) == 0 {
			shard, want = shardB, &wantB
		}
		for _, r := range batch {
			*want = append(*want, bytes.Clone(r))
		}
		if rng.IntN(2) == 0 {
			if err := s.AppendRecords(shard, batch); err != nil {
				t.Fatal(err)
			}
		} else {
			cp, _, err := s.Checkpoint()
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Commit(store.Batch{Checkpoint: store.Checkpoint{Height: cp.Height + 1}, Records: store.Records{Shard: shard, Data: batch}}); err != nil {
				t.Fatal(err)
			}
		}
		for _, r := range batch {
			clear(r) // the caller reuses its buffers
		}
	}
	got, err := s.Records(shardA)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range got {
		clear(r) // nor does changing what it got back change the store
	}
	s.Close()
	s = open(t, path)
	wantRecords(t, s, shardA, 0, wantA)
	wantRecords(t, s, shardB, 0, wantB)
}

// TestRecordsLimits: an empty or oversized record, or an append over the
// count or byte bound, is refused with ErrRecordSize and writes nothing,
// alone or with a commit.
func TestRecordsLimits(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "w.db"))
	if err := s.AppendRecords(shardA, recs("r0")); err != nil {
		t.Fatal(err)
	}
	big := make([]byte, store.MaxRecordBytes+1)
	atMax := big[:store.MaxRecordBytes]
	tooMany := make([][]byte, store.MaxRecordsPerAppend+1)
	for i := range tooMany {
		tooMany[i] = []byte{1}
	}
	tooLarge := make([][]byte, store.MaxAppendBytes/store.MaxRecordBytes+1)
	for i := range tooLarge {
		tooLarge[i] = atMax // the same backing array: no need for 320 MiB
	}
	for _, tc := range []struct {
		name string
		recs [][]byte
	}{
		{"empty record", [][]byte{{1}, {}}},
		{"nil record", [][]byte{nil}},
		{"oversized record", [][]byte{{1}, big}},
		{"too many records", tooMany},
		{"too many bytes", tooLarge},
	} {
		err := s.AppendRecords(shardA, tc.recs)
		if !errors.Is(err, store.ErrRecordSize) {
			t.Errorf("%s: %v, want ErrRecordSize", tc.name, err)
		}
		err = s.Commit(store.Batch{Checkpoint: store.Checkpoint{Height: 1}, Records: store.Records{Shard: shardA, Data: tc.recs}})
		if !errors.Is(err, store.ErrRecordSize) {
			t.Errorf("%s with a commit: %v, want ErrRecordSize", tc.name, err)
		}
	}
	if _, ok, _ := s.Checkpoint(); ok {
		t.Error("a refused commit wrote its checkpoint")
	}
	wantRecords(t, s, shardA, 0, recs("r0"))
	if err := s.AppendRecords(shardA, [][]byte{atMax}); err != nil {
		t.Fatalf("record of exactly MaxRecordBytes: %v", err)
	}
	if _, n, _ := s.RecordRange(shardA); n != 2 {
		t.Fatalf("next index %d, want 2", n)
	}
}

// TestTruncateRecords: a prefix can be dropped, indexes keep counting,
// and a truncation beyond the records is refused.
func TestTruncateRecords(t *testing.T) {
	path := filepath.Join(t.TempDir(), "w.db")
	s := open(t, path)
	if err := s.TruncateRecordsBefore(shardA, 0); err != nil {
		t.Fatalf("truncate nothing of a shard without records: %v", err)
	}
	if err := s.TruncateRecordsBefore(shardA, 1); !errors.Is(err, store.ErrRecordRange) {
		t.Fatalf("truncate beyond a shard without records: %v", err)
	}
	if err := s.AppendRecords(shardA, recs("r0", "r1", "r2", "r3", "r4")); err != nil {
		t.Fatal(err)
	}
	if err := s.AppendRecords(shardB, recs("b0", "b1")); err != nil {
		t.Fatal(err)
	}
	if err := s.TruncateRecordsBefore(shardA, 3); err != nil {
		t.Fatal(err)
	}
	wantRecords(t, s, shardA, 3, recs("r3", "r4"))
	wantRecords(t, s, shardB, 0, recs("b0", "b1"))
	if err := s.TruncateRecordsBefore(shardA, 2); err != nil {
		t.Fatalf("truncate an already dropped prefix: %v", err)
	}
	if err := s.TruncateRecordsBefore(shardA, 6); !errors.Is(err, store.ErrRecordRange) {
		t.Fatalf("truncate beyond the records: %v", err)
	}
	wantRecords(t, s, shardA, 3, recs("r3", "r4"))
	if err := s.TruncateRecordsBefore(shardA, 5); err != nil {
		t.Fatal(err)
	}
	wantRecords(t, s, shardA, 5, nil)
	s.Close()

	s = open(t, path)
	wantRecords(t, s, shardA, 5, nil)
	if err := s.AppendRecords(shardA, recs("r5")); err != nil {
		t.Fatal(err)
	}
	wantRecords(t, s, shardA, 5, recs("r5"))
}

// TestRecordsCrash kills a process that appends records as fast as it
// can, alone and with commits, and checks that the store always holds an
// unbroken sequence of whole records, and the records of a commit exactly
// when it holds its checkpoint.
func TestRecordsCrash(t *testing.T) {
	if os.Getenv("STORE_RECORDS_CHILD") != "" {
		recordsChild(os.Getenv("STORE_RECORDS_CHILD"))
		return
	}
	path := filepath.Join(t.TempDir(), "w.db")
	for round := range 3 {
		cmd := exec.Command(os.Args[0], "-test.run=^TestRecordsCrash$")
		cmd.Env = append(os.Environ(), "STORE_RECORDS_CHILD="+path)
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 64)
		for n := 0; n < 5; {
			k, err := out.Read(buf)
			if err != nil {
				t.Fatalf("round %d: child output: %v", round, err)
			}
			n += bytes.Count(buf[:k], []byte{'\n'})
		}
		cmd.Process.Kill()
		cmd.Wait()

		s, err := store.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		var n uint64
		err = s.EachRecord(shardA, func(i uint64, r []byte) error {
			if !bytes.Equal(r, crashRecord(i)) {
				return fmt.Errorf("record %d is not whole: %d bytes", i, len(r))
			}
			n = i + 1
			return nil
		})
		if err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		cp, ok, err := s.Checkpoint()
		if err != nil || !ok {
			t.Fatalf("round %d: checkpoint %v %v", round, ok, err)
		}
		// The checkpoint holds the next index after its commit; at most
		// one AppendRecords of 1 record can follow it.
		after, _ := strconv.ParseUint(string(cp.Sealed), 10, 64)
		if n != after && n != after+1 {
			t.Fatalf("round %d: %d records, the last commit ended at %d", round, n, after)
		}
		s.Close()
	}
}

func crashRecord(i uint64) []byte {
	return bytes.Repeat(binary.BigEndian.AppendUint64(nil, i), 1+int(i%700))
}

func recordsChild(path string) {
	s, err := store.Open(path)
	if err != nil {
		os.Exit(2)
	}
	cp, _, err := s.Checkpoint()
	if err != nil {
		os.Exit(3)
	}
	_, next, err := s.RecordRange(shardA)
	if err != nil {
		os.Exit(3)
	}
	for h := cp.Height + 1; ; h++ {
		if err := s.AppendRecords(shardA, [][]byte{crashRecord(next)}); err != nil {
			os.Exit(4)
		}
		next++
		rs := [][]byte{crashRecord(next), crashRecord(next + 1), crashRecord(next + 2)}
		next += 3
		err := s.Commit(store.Batch{
			Checkpoint: store.Checkpoint{Height: h, Sealed: []byte(strconv.FormatUint(next, 10))},
			Records:    store.Records{Shard: shardA, Data: rs},
		})
		if err != nil {
			os.Exit(5)
		}
		os.Stdout.Write([]byte("ok\n"))
	}
}

// TestCommitKeepsLastRecords: a commit whose records end with a
// compaction keeps only the last KeepLast records of the shard, in the
// same transaction; other shards keep theirs.
func TestCommitKeepsLastRecords(t *testing.T) {
	path := filepath.Join(t.TempDir(), "w.db")
	s := open(t, path)
	if err := s.AppendRecords(shardA, recs("r0", "r1", "r2", "r3")); err != nil {
		t.Fatal(err)
	}
	if err := s.AppendRecords(shardB, recs("b0")); err != nil {
		t.Fatal(err)
	}
	if err := s.CommitSteps(store.Records{Shard: shardA, Data: recs("r4", "base"), KeepLast: 3}, nil); err != nil {
		t.Fatal(err)
	}
	wantRecords(t, s, shardA, 3, recs("r3", "r4", "base"))
	wantRecords(t, s, shardB, 0, recs("b0"))
	// Keeping more than there are keeps them all.
	if err := s.CommitSteps(store.Records{Shard: shardA, Data: recs("r6"), KeepLast: 10}, nil); err != nil {
		t.Fatal(err)
	}
	wantRecords(t, s, shardA, 3, recs("r3", "r4", "base", "r6"))
	// Nothing to keep the last of is refused, and changes nothing.
	if err := s.CommitSteps(store.Records{Shard: shardA, KeepLast: 1}, nil); !errors.Is(err, store.ErrRecordRange) {
		t.Fatalf("keep without records: %v", err)
	}
	s.Close()
	s = open(t, path)
	wantRecords(t, s, shardA, 3, recs("r3", "r4", "base", "r6"))
}
