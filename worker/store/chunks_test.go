package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	bolt "go.etcd.io/bbolt"
)

var chunkShard = [32]byte{0xc}

func openChunks(t *testing.T) *Store {
	t.Helper()
	s, err := Open(filepath.Join(t.TempDir(), "w.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { closeFiles(s) })
	return s
}

func pattern(n int, seed byte) []byte {
	r := make([]byte, n)
	for i := range r {
		r[i] = seed + byte(i*7)
	}
	return r
}

// logKeys returns the keys of the shard's log bucket, in order.
func logKeys(t *testing.T, s *Store) [][]byte {
	t.Helper()
	var keys [][]byte
	if err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketRecords).Bucket(chunkShard[:]).Bucket(bucketLog).ForEach(func(k, _ []byte) error {
			keys = append(keys, bytes.Clone(k))
			return nil
		})
	}); err != nil {
		t.Fatal(err)
	}
	return keys
}

// TestRecordChunks: each record is stored as chunks of recordChunkBytes
// (of maxRecordChunk above bulkRecordBytes) under its index and the
// chunks' numbers, comes back whole, and a truncation drops every chunk of
// the records it drops.
func TestRecordChunks(t *testing.T) {
	s := openChunks(t)
	sizes := []int{1, recordChunkBytes, recordChunkBytes + 1, 12_000, bulkRecordBytes, bulkRecordBytes + 1, 3*maxRecordChunk + 5}
	want := map[int]int{ // chunks per record
		0: 1, 1: 1, 2: 2, 3: 12, 4: bulkRecordBytes / recordChunkBytes, 5: 1, 6: 4,
	}
	var recs [][]byte
	for i, n := range sizes {
		recs = append(recs, pattern(n, byte(i)))
	}
	if err := s.AppendRecords(chunkShard, recs); err != nil {
		t.Fatal(err)
	}
	got, err := s.Records(chunkShard)
	if err != nil {
		t.Fatal(err)
	}
	for i := range recs {
		if !bytes.Equal(got[i], recs[i]) {
			t.Fatalf("record %d of %d bytes came back as %d bytes, or different", i, len(recs[i]), len(got[i]))
		}
	}
	chunks := map[uint64]int{}
	for _, k := range logKeys(t, s) {
		idx := binary.BigEndian.Uint64(k)
		if want := chunkKey(idx, uint32(chunks[idx]), uint32(want[int(idx)])); !bytes.Equal(k, want) {
			t.Fatalf("key %x, want %x", k, want)
		}
		chunks[idx]++
	}
	for i := range sizes {
		if chunks[uint64(i)] != want[i] {
			t.Errorf("record of %d bytes in %d chunks, want %d", sizes[i], chunks[uint64(i)], want[i])
		}
	}
	if err := s.TruncateRecordsBefore(chunkShard, 4); err != nil {
		t.Fatal(err)
	}
	keys := logKeys(t, s)
	if first := chunkKey(4, 0, uint32(want[4])); len(keys) == 0 || !bytes.Equal(keys[0], first) {
		t.Fatalf("after truncating before 4 the keys are %x..., want %x first", keys[:1], first)
	}
	wantRecordsIn(t, s, 4, recs[4:])
}

func wantRecordsIn(t *testing.T, s *Store, first uint64, want [][]byte) {
	t.Helper()
	var got [][]byte
	if err := s.EachRecord(chunkShard, func(i uint64, r []byte) error {
		if i != first+uint64(len(got)) {
			t.Errorf("record index %d, want %d", i, first+uint64(len(got)))
		}
		got = append(got, r)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("%d records, want %d", len(got), len(want))
	}
	for i := range want {
		if !bytes.Equal(got[i], want[i]) {
			t.Fatalf("record %d differs", first+uint64(i))
		}
	}
}

// putWhole writes recs as the store wrote records before chunks, each
// whole under its index from first, and the next index after them.
func putWhole(s *Store, first uint64, recs ...[]byte) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		sb, lb, err := createShardLog(tx, chunkShard)
		if err != nil {
			return err
		}
		for i, r := range recs {
			if err := lb.Put(binary.BigEndian.AppendUint64(nil, first+uint64(i)), r); err != nil {
				return err
			}
		}
		return sb.Put(keyRecordNext, binary.BigEndian.AppendUint64(nil, first+uint64(len(recs))))
	})
}

// TestRecordsWhole: a store written before records were cut in chunks
// (each record whole under its index) reads, appends and truncates.
func TestRecordsWhole(t *testing.T) {
	s := openChunks(t)
	old := [][]byte{pattern(20_000, 1), pattern(5, 2)}
	if err := putWhole(s, 0, old...); err != nil {
		t.Fatal(err)
	}
	wantRecordsIn(t, s, 0, old)
	added := pattern(3000, 3)
	if err := s.AppendRecords(chunkShard, [][]byte{added}); err != nil {
		t.Fatal(err)
	}
	wantRecordsIn(t, s, 0, append(old, added))
	if err := s.TruncateRecordsBefore(chunkShard, 1); err != nil {
		t.Fatal(err)
	}
	wantRecordsIn(t, s, 1, [][]byte{old[1], added})
}

// TestRecordChunksCorrupt: a log whose chunks were lost, reordered,
// planted or resized (a damaged or tampered disk) is reported as
// ErrCorrupt, never returned as a shorter or longer record. (Two full
// chunks swapped keep every size: the enclave's seal on the record finds
// that, as any change of a record's bytes.)
func TestRecordChunksCorrupt(t *testing.T) {
	for _, tc := range []struct {
		name   string
		damage func(lb *bolt.Bucket) error
	}{
		// Record 0 has 3 chunks, record 1 has 3, record 2 one.
		{"intact", nil},
		{"middle chunk lost", func(lb *bolt.Bucket) error { return lb.Delete(chunkKey(1, 1, 3)) }},
		{"last chunk lost", func(lb *bolt.Bucket) error { return lb.Delete(chunkKey(1, 2, 3)) }},
		{"all but the first chunk lost", func(lb *bolt.Bucket) error {
			return errors.Join(lb.Delete(chunkKey(1, 1, 3)), lb.Delete(chunkKey(1, 2, 3)))
		}},
		{"first chunk lost", func(lb *bolt.Bucket) error { return lb.Delete(chunkKey(1, 0, 3)) }},
		{"first record's first chunk lost", func(lb *bolt.Bucket) error { return lb.Delete(chunkKey(0, 0, 3)) }},
		{"chunk planted after the last", func(lb *bolt.Bucket) error { return lb.Put(chunkKey(1, 99, 100), []byte{1}) }},
		{"chunk of another count", func(lb *bolt.Bucket) error { return lb.Put(chunkKey(1, 2, 4), []byte{1}) }},
		{"chunk of a whole record", func(lb *bolt.Bucket) error { return lb.Put(chunkKey(2, 1, 2), []byte{1}) }},
		{"chunk numbered past its count", func(lb *bolt.Bucket) error { return lb.Put(chunkKey(2, 5, 2), []byte{1}) }},
		// Values the chunking could not have made (a record's bytes in
		// the right keys but the wrong sizes; swapped full chunks are
		// the enclave's seal to find).
		{"first and last chunk swapped", func(lb *bolt.Bucket) error {
			first, last := bytes.Clone(lb.Get(chunkKey(1, 0, 3))), bytes.Clone(lb.Get(chunkKey(1, 2, 3)))
			return errors.Join(lb.Put(chunkKey(1, 0, 3), last), lb.Put(chunkKey(1, 2, 3), first))
		}},
		{"middle chunk emptied", func(lb *bolt.Bucket) error { return lb.Put(chunkKey(1, 1, 3), []byte{}) }},
		{"middle chunk short", func(lb *bolt.Bucket) error { return lb.Put(chunkKey(1, 1, 3), []byte{1, 2, 3}) }},
		{"last chunk too long", func(lb *bolt.Bucket) error { return lb.Put(chunkKey(1, 2, 3), make([]byte, recordChunkBytes+1)) }},
		{"middle chunk a bucket", func(lb *bolt.Bucket) error {
			if err := lb.Delete(chunkKey(1, 1, 3)); err != nil {
				return err
			}
			_, err := lb.CreateBucket(chunkKey(1, 1, 3))
			return err
		}},
		{"whole record a bucket", func(lb *bolt.Bucket) error {
			if err := lb.Delete(chunkKey(2, 0, 1)); err != nil {
				return err
			}
			_, err := lb.CreateBucket(chunkKey(2, 0, 1))
			return err
		}},
		{"small chunks for a bulk record", func(lb *bolt.Bucket) error {
			if err := lb.Delete(chunkKey(2, 0, 1)); err != nil {
				return err
			}
			const n = bulkRecordBytes/recordChunkBytes + 2
			for i := range uint32(n - 1) {
				if err := lb.Put(chunkKey(2, i, n), make([]byte, recordChunkBytes)); err != nil {
					return err
				}
			}
			return lb.Put(chunkKey(2, n-1, n), []byte{1})
		}},
		{"key of another length", func(lb *bolt.Bucket) error {
			return lb.Put(append(chunkKey(1, 0, 1), 0, 1), []byte{1})
		}},
		{"record past MaxRecordBytes", func(lb *bolt.Bucket) error {
			n := uint32(MaxRecordBytes/maxRecordChunk + 1)
			big := make([]byte, maxRecordChunk)
			if err := lb.Delete(chunkKey(2, 0, 1)); err != nil {
				return err
			}
			for i := range n {
				if err := lb.Put(chunkKey(2, i, n), big); err != nil {
					return err
				}
			}
			return nil
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := openChunks(t)
			if err := s.AppendRecords(chunkShard, [][]byte{pattern(2500, 1), pattern(3000, 2), pattern(10, 3)}); err != nil {
				t.Fatal(err)
			}
			if err := s.db.Update(func(tx *bolt.Tx) error {
				if tc.damage == nil {
					return nil
				}
				return tc.damage(tx.Bucket(bucketRecords).Bucket(chunkShard[:]).Bucket(bucketLog))
			}); err != nil {
				t.Fatal(err)
			}
			var n int
			err := s.EachRecord(chunkShard, func(uint64, []byte) error { n++; return nil })
			if tc.damage == nil {
				if err != nil || n != 3 {
					t.Fatalf("EachRecord of the intact log: %v after %d records, want 3", err, n)
				}
				return
			}
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("EachRecord: %v after %d records, want ErrCorrupt", err, n)
			}
		})
	}
}

// wchar returns the bytes this process has passed to write calls (bbolt
// counts its write calls, not their bytes).
func wchar(t *testing.T) int64 {
	t.Helper()
	b, err := os.ReadFile("/proc/self/io")
	if err != nil {
		t.Skipf("no write counts: %v", err)
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, "wchar: "); ok {
			n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Skip("no wchar in /proc/self/io")
	return 0
}

// TestRecordAppendWritesOnce: appending a block's record (~12 KB) to a
// long log writes fewer bytes in chunks than whole: bbolt keeps at least
// two values in a leaf, so a whole record was written again with its
// neighbours.
func TestRecordAppendWritesOnce(t *testing.T) {
	const size, n = 12_000, 20
	appendWhole := func(s *Store, index uint64, r []byte) error { return putWhole(s, index, r) }
	appendChunks := func(s *Store, _ uint64, r []byte) error { return s.AppendRecords(chunkShard, [][]byte{r}) }
	perAppend := func(put func(*Store, uint64, []byte) error) float64 {
		s := openChunks(t)
		var before int64
		for i := range 50 + n {
			if i == 50 {
				before = wchar(t)
			}
			if err := put(s, uint64(i), pattern(size, byte(i))); err != nil {
				t.Fatal(err)
			}
		}
		return float64(wchar(t)-before) / n / 4096
	}
	whole, chunked := perAppend(appendWhole), perAppend(appendChunks)
	t.Logf("pages written per append of a %d-byte record: %.1f whole, %.1f in chunks", size, whole, chunked)
	if chunked >= whole {
		t.Errorf("%.1f pages written per append in chunks, %.1f whole: want fewer", chunked, whole)
	}
}

// truncatedBytes returns the bytes of the truncated records still in the
// file (below the first index) and the first index.
func truncatedBytes(t *testing.T, s *Store) (int, uint64) {
	t.Helper()
	var first uint64
	if err := s.db.View(func(tx *bolt.Tx) error {
		first = readUint(tx.Bucket(bucketRecords).Bucket(chunkShard[:]).Get(keyRecordFirst))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return bytesBelow(t, s, first), first
}

// bytesBelow returns the bytes of the records below index in the file.
func bytesBelow(t *testing.T, s *Store, index uint64) int {
	t.Helper()
	n := 0
	if err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketRecords).Bucket(chunkShard[:]).Bucket(bucketLog).ForEach(func(k, v []byte) error {
			if bytes.Compare(k, recordKey(index)) < 0 {
				n += len(v)
			}
			return nil
		})
	}); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestRecordsTruncatedAsRecordsCome: a commit that keeps only the last
// records hides the others at once and deletes about as many bytes of
// them as it appends (at least minDropBytes), the commits after it the
// rest, so that the pages freed are taken again by the next records;
// reads, before and after a reopen, never see a truncated record.
func TestRecordsTruncatedAsRecordsCome(t *testing.T) {
	path := filepath.Join(t.TempDir(), "w.db")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	var all [][]byte
	for i := range 10 {
		all = append(all, pattern(3000, byte(i)))
	}
	if err := s.AppendRecords(chunkShard, all); err != nil {
		t.Fatal(err)
	}
	step := func(rec []byte, keep int) {
		t.Helper()
		_, first := truncatedBytes(t, s)
		if keep > 0 {
			first = uint64(len(all) + 1 - keep)
		}
		before := bytesBelow(t, s, first)
		if err := s.CommitSteps(Records{Shard: chunkShard, Data: [][]byte{rec}, KeepLast: uint64(keep)}, nil); err != nil {
			t.Fatal(err)
		}
		all = append(all, rec)
		after, got := truncatedBytes(t, s)
		if got != first {
			t.Fatalf("first index %d, want %d", got, first)
		}
		wantRecordsIn(t, s, first, all[first:])
		limit := max(len(rec), minDropBytes)
		if deleted := before - after; deleted > limit || (after > 0 && deleted <= limit-recordChunkBytes) {
			t.Fatalf("a commit appending %d bytes deleted %d bytes of truncated records (%d left), want at most %d and within a chunk of it", len(rec), deleted, after, limit)
		}
	}
	step(pattern(2048, 20), 2) // keeps records 9 and 10: 27,000 bytes truncated
	if n, _ := truncatedBytes(t, s); n == 0 {
		t.Fatal("every truncated record deleted by a commit of 2,048 bytes")
	}
	step(pattern(20_000, 21), 0)
	s.Close()
	if s, err = Open(path); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	_, first := truncatedBytes(t, s)
	wantRecordsIn(t, s, first, all[first:])
	step(pattern(20_000, 22), 0)
	if n, _ := truncatedBytes(t, s); n != 0 {
		t.Fatalf("%d bytes of truncated records left", n)
	}
	if keys := logKeys(t, s); !bytes.Equal(keys[0], chunkKey(9, 0, 3)) {
		t.Fatalf("first key %x, want record 9's first chunk", keys[0])
	}
	// A first index past the next, or not 8 bytes, is a damaged file.
	for _, v := range [][]byte{recordKey(uint64(len(all) + 1)), {9}} {
		if err := s.db.Update(func(tx *bolt.Tx) error {
			return tx.Bucket(bucketRecords).Bucket(chunkShard[:]).Put(keyRecordFirst, v)
		}); err != nil {
			t.Fatal(err)
		}
		if _, _, err := s.RecordRange(chunkShard); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("first index %x: %v, want ErrCorrupt", v, err)
		}
		if err := s.EachRecord(chunkShard, func(uint64, []byte) error { return nil }); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("records with first index %x: %v, want ErrCorrupt", v, err)
		}
	}
}

// TestRecordsFirstForged: the first index is the host's to change, like
// the records themselves. Moved onto a record whose first chunks were
// deleted, the log is ErrCorrupt; moved back onto records still in the
// file, those are read, whole and in order (an older copy of the log,
// which the enclave's replica start judges); moved forward, the records
// before it are hidden (a cut log, which the replica start refuses:
// enclave/replica's TestCompactedRecordsCannotBeCut). Nothing is read that
// the store did not write under its index.
func TestRecordsFirstForged(t *testing.T) {
	s := openChunks(t)
	var all [][]byte
	for i := range 10 {
		all = append(all, pattern(3000, byte(i)))
	}
	if err := s.AppendRecords(chunkShard, all); err != nil {
		t.Fatal(err)
	}
	// Keeps records 9 and 10; deletes record 0 and the first chunk of 1.
	if err := s.CommitSteps(Records{Shard: chunkShard, Data: [][]byte{pattern(2048, 20)}, KeepLast: 2}, nil); err != nil {
		t.Fatal(err)
	}
	all = append(all, pattern(2048, 20))
	if keys := logKeys(t, s); !bytes.Equal(keys[0], chunkKey(1, 1, 3)) {
		t.Fatalf("first key %x, want record 1's second chunk", keys[0])
	}
	forge := func(first uint64) {
		t.Helper()
		if err := s.db.Update(func(tx *bolt.Tx) error {
			return tx.Bucket(bucketRecords).Bucket(chunkShard[:]).Put(keyRecordFirst, recordKey(first))
		}); err != nil {
			t.Fatal(err)
		}
	}
	forge(1)
	if err := s.EachRecord(chunkShard, func(uint64, []byte) error { return nil }); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("first index on a record missing its first chunk: %v, want ErrCorrupt", err)
	}
	forge(2)
	wantRecordsIn(t, s, 2, all[2:])
	forge(10)
	wantRecordsIn(t, s, 10, all[10:])
}
