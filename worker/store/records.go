package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// Record limits. A record is one Ready of the enclave's Raft node
// (enclave/replica): its hard state, new log entries and, rarely, a
// snapshot received from the leader, sealed. Entries are bounded by
// Raft's message size (1 MiB) times its inflight window, a snapshot by the
// shard's state; the bounds only keep a broken or hostile enclave reply
// from filling the disk in one step.
const (
	// MaxRecordBytes bounds one record.
	MaxRecordBytes = 64 << 20
	// MaxRecordsPerAppend bounds the records of one append.
	MaxRecordsPerAppend = 4096
	// MaxAppendBytes bounds the records of one append together.
	MaxAppendBytes = 256 << 20
)

// Record errors.
var (
	// ErrRecordSize means a record is empty or larger than MaxRecordBytes,
	// or an append has too many records or bytes.
	ErrRecordSize = errors.New("store: record size out of bounds")
	// ErrRecordRange means a truncation point lies beyond the last record.
	ErrRecordRange = errors.New("store: record index out of range")
)

var (
	bucketRecords = []byte("raft_records")

	// In a shard's records bucket: the index the next record gets, the
	// index of the first record not truncated, and the nested bucket of
	// the records (index -> record). The next index is kept apart from the
	// records so that it survives a truncation of all of them.
	keyRecordNext  = []byte("next")
	keyRecordFirst = []byte("first")
	bucketLog      = []byte("log")
)

// A record is stored in chunks. A record of one chunk is stored under its
// index (8 bytes), as every record was before chunks; chunk i of a record
// of k > 1 chunks under index || i || k (4 bytes each), which sort in
// order after the index's own key and before the next index. Every chunk
// names the count, so a chunk lost or planted is found, not read as a
// shorter or longer record. bbolt keeps at least two values in a leaf, so
// a block's whole record (~12 KB) was written again with its neighbours
// in every commit; chunks of a kilobyte in pages filled to logFillPercent
// are written once, and from bbolt's page pool rather than fresh
// multi-page buffers. A record larger than bulkRecordBytes (a snapshot)
// is cut in chunks of maxRecordChunk: a few large values are cheaper to
// write than many small ones.
const (
	recordChunkBytes = 1 << 10
	bulkRecordBytes  = 64 << 10
	maxRecordChunk   = 1 << 20
	logFillPercent   = 0.9
	recordKeyBytes   = 8
	chunkKeyBytes    = 8 + 4 + 4
)

// chunkSizeFor is the size of the chunks a record of n bytes is cut into
// (the last may be shorter).
func chunkSizeFor(n int) int {
	if n > bulkRecordBytes {
		return maxRecordChunk
	}
	return recordChunkBytes
}

// recordChunks returns r's chunks, which alias r.
func recordChunks(r []byte) [][]byte {
	size := chunkSizeFor(len(r))
	chunks := make([][]byte, 0, (len(r)+size-1)/size)
	for len(r) > size {
		chunks = append(chunks, r[:size])
		r = r[size:]
	}
	return append(chunks, r)
}

// chunkKey returns the key of chunk i of the k chunks of record index.
func chunkKey(index uint64, i, k uint32) []byte {
	key := binary.BigEndian.AppendUint64(make([]byte, 0, chunkKeyBytes), index)
	if k == 1 {
		return key
	}
	return binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint32(key, i), k)
}

// chunkSize returns the size of the chunks of a record of n chunks whose
// first has first bytes: what recordChunks cut it into, or an error if
// it could not have (an empty record, a first chunk of another size, more
// chunks than MaxRecordBytes allows).
func chunkSize(first int, n uint32) (int, error) {
	switch {
	case first == 0:
		return 0, errors.New("empty first chunk")
	case n == 1:
		if first > MaxRecordBytes {
			return 0, fmt.Errorf("%d bytes, limit %d", first, MaxRecordBytes)
		}
		return first, nil
	case first != recordChunkBytes && first != maxRecordChunk:
		return 0, fmt.Errorf("first of %d chunks has %d bytes", n, first)
	case uint64(n-1)*uint64(first) >= MaxRecordBytes:
		return 0, fmt.Errorf("%d chunks of %d bytes exceed %d", n, first, MaxRecordBytes)
	}
	return first, nil
}

// parseRecordKey returns the index of a key, its chunk number and the
// record's count of chunks.
func parseRecordKey(key []byte) (index uint64, i, k uint32, ok bool) {
	switch len(key) {
	case recordKeyBytes:
		return binary.BigEndian.Uint64(key), 0, 1, true
	case chunkKeyBytes:
		i, k = binary.BigEndian.Uint32(key[8:]), binary.BigEndian.Uint32(key[12:])
		return binary.BigEndian.Uint64(key), i, k, k > 1 && i < k
	}
	return 0, 0, 0, false
}

// Records are sealed Raft records of a shard, appended with a Batch (in
// the same transaction as its state changes) or by AppendRecords.
type Records struct {
	Shard [32]byte
	Data  [][]byte
	// KeepLast, if not 0, drops every record of the shard but the last
	// KeepLast once Data is appended, in the same transaction: the
	// enclave compacted its log into the last of Data
	// (ReplicaOutput.KeepRecords).
	KeepLast uint64
}

// checkRecords enforces the record limits.
func checkRecords(recs [][]byte) error {
	if len(recs) > MaxRecordsPerAppend {
		return fmt.Errorf("%w: %d records in one append, limit %d", ErrRecordSize, len(recs), MaxRecordsPerAppend)
	}
	total := 0
	for i, r := range recs {
		if len(r) == 0 || len(r) > MaxRecordBytes {
			return fmt.Errorf("%w: record %d has %d bytes, want 1 to %d", ErrRecordSize, i, len(r), MaxRecordBytes)
		}
		total += len(r)
	}
	if total > MaxAppendBytes {
		return fmt.Errorf("%w: append of %d bytes, limit %d", ErrRecordSize, total, MaxAppendBytes)
	}
	return nil
}

// AppendRecords appends sealed Raft records to the shard's sequence, in
// order, durably: when it returns nil the records are on disk (bbolt
// fsyncs before a transaction counts as committed), so the messages of
// the same Ready may be sent. Either all records are appended or none.
func (s *Store) AppendRecords(shard [32]byte, recs [][]byte) error {
	if err := checkRecords(recs); err != nil {
		return err
	}
	if len(recs) == 0 {
		return nil
	}
	if err := s.db.Update(func(tx *bolt.Tx) error { return appendRecords(tx, shard, recs) }); err != nil {
		return fmt.Errorf("append records of shard %x: %w", shard, err)
	}
	return nil
}

// createShardLog returns the shard's bucket of records and its log
// bucket, creating them if needed.
func createShardLog(tx *bolt.Tx, shard [32]byte) (sb, lb *bolt.Bucket, err error) {
	if sb, err = tx.Bucket(bucketRecords).CreateBucketIfNotExists(shard[:]); err != nil {
		return nil, nil, err
	}
	if lb, err = sb.CreateBucketIfNotExists(bucketLog); err != nil {
		return nil, nil, err
	}
	return sb, lb, nil
}

func appendRecords(tx *bolt.Tx, shard [32]byte, recs [][]byte) error {
	sb, lb, err := createShardLog(tx, shard)
	if err != nil {
		return err
	}
	lb.FillPercent = logFillPercent
	next := readUint(sb.Get(keyRecordNext))
	for _, r := range recs {
		// bbolt needs the value unchanged until the commit: a copy does
		// not depend on the caller for that.
		chunks := recordChunks(bytes.Clone(r))
		for i, c := range chunks {
			if err := lb.Put(chunkKey(next, uint32(i), uint32(len(chunks))), c); err != nil {
				return err
			}
		}
		next++
	}
	return sb.Put(keyRecordNext, binary.BigEndian.AppendUint64(nil, next))
}

// Records returns the shard's stored records in the order they were
// appended, from the first one not truncated. The slices are copies.
func (s *Store) Records(shard [32]byte) ([][]byte, error) {
	var out [][]byte
	err := s.EachRecord(shard, func(_ uint64, r []byte) error {
		out = append(out, r)
		return nil
	})
	return out, err
}

// EachRecord calls fn with each of the shard's stored records and its
// index, in order, until fn returns an error (which it returns). The
// record may be kept: it is a copy. It checks that the records are
// exactly the indexes RecordRange reports, so a damaged database is
// reported rather than fed to the enclave with a hole.
func (s *Store) EachRecord(shard [32]byte, fn func(index uint64, rec []byte) error) error {
	err := s.db.View(func(tx *bolt.Tx) error {
		first, next, lb, err := recordRange(tx, shard)
		if err != nil || lb == nil {
			return err
		}
		want := first
		c := lb.Cursor()
		for k, v := c.Seek(recordKey(first)); k != nil; k, v = c.Next() {
			index, i, n, ok := parseRecordKey(k)
			if !ok || i != 0 || index != want || want >= next {
				return fmt.Errorf("%w: record key %x, want index %d of [%d, %d)", ErrCorrupt, k, want, first, next)
			}
			size, err := chunkSize(len(v), n)
			if err != nil {
				return fmt.Errorf("%w: record %d: %w", ErrCorrupt, want, err)
			}
			rec := make([]byte, 0, min(int(n)*size, MaxRecordBytes))
			rec = append(rec, v...)
			for i = 1; i < n; i++ {
				k, v = c.Next()
				if ci, cj, cn, ok := parseRecordKey(k); !ok || ci != want || cj != i || cn != n {
					return fmt.Errorf("%w: record key %x, want chunk %d of %d of record %d", ErrCorrupt, k, i, n, want)
				}
				// Every chunk but the last is full, the last is not empty:
				// recordChunks cut them so.
				if len(v) == 0 || len(v) > size || (i < n-1 && len(v) != size) {
					return fmt.Errorf("%w: record %d: chunk %d of %d has %d bytes, chunks of %d", ErrCorrupt, want, i, n, len(v), size)
				}
				rec = append(rec, v...)
			}
			if n > 1 && size != chunkSizeFor(len(rec)) {
				return fmt.Errorf("%w: record %d of %d bytes in chunks of %d", ErrCorrupt, want, len(rec), size)
			}
			if err := fn(want, rec); err != nil {
				return err
			}
			want++
		}
		if want != next {
			return fmt.Errorf("%w: records end at %d, next index is %d", ErrCorrupt, want, next)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("records of shard %x: %w", shard, err)
	}
	return nil
}

// RecordRange returns the index of the shard's first stored record and
// the index the next appended record gets; first == next when none is
// stored. Indexes count every record ever appended, from 0.
func (s *Store) RecordRange(shard [32]byte) (first, next uint64, err error) {
	err = s.db.View(func(tx *bolt.Tx) error {
		first, next, _, err = recordRange(tx, shard)
		return err
	})
	if err != nil {
		return 0, 0, fmt.Errorf("records of shard %x: %w", shard, err)
	}
	return first, next, nil
}

// recordRange returns the shard's record range and log bucket (nil if
// the shard has none).
func recordRange(tx *bolt.Tx, shard [32]byte) (first, next uint64, lb *bolt.Bucket, err error) {
	sb := tx.Bucket(bucketRecords).Bucket(shard[:])
	if sb == nil {
		return 0, 0, nil, nil
	}
	lb = sb.Bucket(bucketLog)
	if lb == nil {
		return 0, 0, nil, fmt.Errorf("%w: shard records without a log", ErrCorrupt)
	}
	nb := sb.Get(keyRecordNext)
	if len(nb) != 8 {
		return 0, 0, nil, fmt.Errorf("%w: next record index of %d bytes", ErrCorrupt, len(nb))
	}
	next = binary.BigEndian.Uint64(nb)
	if fb := sb.Get(keyRecordFirst); fb != nil {
		if len(fb) != 8 || binary.BigEndian.Uint64(fb) > next {
			return 0, 0, nil, fmt.Errorf("%w: first record index %x, next %d", ErrCorrupt, fb, next)
		}
		first = binary.BigEndian.Uint64(fb)
	}
	// Records below first are truncated, waiting to be deleted
	// (dropTruncated).
	k, _ := lb.Cursor().Seek(recordKey(first))
	if k == nil {
		return next, next, lb, nil
	}
	index, i, _, ok := parseRecordKey(k)
	if !ok || i != 0 {
		return 0, 0, nil, fmt.Errorf("%w: first record key %x", ErrCorrupt, k)
	}
	return index, next, lb, nil
}

// TruncateRecordsBefore drops the shard's records with an index below n,
// once a later record (a snapshot) supersedes them. n may be at most the
// next index (dropping every record); records already dropped are not an
// error. The next index does not change, so indexes stay unique.
//
// Which prefix a snapshot supersedes is the enclave's to say (the records
// are sealed and hash-chained): it says so with Records.KeepLast.
func (s *Store) TruncateRecordsBefore(shard [32]byte, n uint64) error {
	err := s.db.Update(func(tx *bolt.Tx) error { return truncateRecords(tx, shard, n, 0) })
	if err != nil {
		return fmt.Errorf("truncate records of shard %x: %w", shard, err)
	}
	return nil
}

// truncateRecords truncates the shard's records below n: at once for
// readers (the first index moves to n), in the file up to limit bytes of
// them (all if limit is 0; see dropTruncated).
func truncateRecords(tx *bolt.Tx, shard [32]byte, n uint64, limit int) error {
	first, next, lb, err := recordRange(tx, shard)
	if err != nil {
		return err
	}
	return truncateRange(tx, shard, first, next, lb, n, limit)
}

// truncateRange is truncateRecords on the range recordRange read.
func truncateRange(tx *bolt.Tx, shard [32]byte, first, next uint64, lb *bolt.Bucket, n uint64, limit int) error {
	if n > next {
		return fmt.Errorf("%w: truncate before %d, next index is %d", ErrRecordRange, n, next)
	}
	if lb == nil {
		return nil
	}
	sb := tx.Bucket(bucketRecords).Bucket(shard[:])
	if first < n {
		if err := sb.Put(keyRecordFirst, binary.BigEndian.AppendUint64(nil, n)); err != nil {
			return err
		}
	}
	return dropTruncated(sb, lb, limit)
}

// dropTruncated deletes truncated records (below the first index) from
// the file, the oldest first, up to limit bytes of them (at least one
// chunk; all if limit is 0). A commit that appends records deletes about
// as many bytes of truncated ones (putRecords): the pages it frees are
// taken again by the next commits' records. A compaction of the Raft
// log truncated some 6 s of records (~4,400 pages) in one commit of
// 20-36 ms, every ~6 s under load, and since bbolt writes its whole
// freelist in every commit, the commits of the next seconds wrote a
// freelist of up to 36 KB (docs/performance.md, "The fold waits for real
// idleness").
func dropTruncated(sb, lb *bolt.Bucket, limit int) error {
	end := recordKey(readUint(sb.Get(keyRecordFirst)))
	// The keys are gathered before any is deleted: a cursor stepping
	// over leaves it emptied would cost a rescan per key.
	var keys [][]byte
	size := 0
	c := lb.Cursor()
	for k, v := c.First(); k != nil && bytes.Compare(k, end) < 0; k, v = c.Next() {
		if size += len(v); limit > 0 && len(keys) > 0 && size > limit {
			break
		}
		keys = append(keys, bytes.Clone(k))
	}
	for _, k := range keys {
		if err := lb.Delete(k); err != nil {
			return err
		}
	}
	return nil
}

// recordKey is the key a record's chunks sort from: its index.
func recordKey(index uint64) []byte { return binary.BigEndian.AppendUint64(nil, index) }

// putRecords appends recs and keeps the last recs.KeepLast, if set.
func putRecords(tx *bolt.Tx, recs Records) error {
	if len(recs.Data) == 0 {
		if recs.KeepLast > 0 {
			return fmt.Errorf("%w: keep the last %d records of none appended", ErrRecordRange, recs.KeepLast)
		}
		return nil
	}
	if err := appendRecords(tx, recs.Shard, recs.Data); err != nil {
		return err
	}
	appended := 0
	for _, r := range recs.Data {
		appended += len(r)
	}
	limit := max(appended, minDropBytes)
	first, next, lb, err := recordRange(tx, recs.Shard)
	if err != nil {
		return err
	}
	if recs.KeepLast == 0 || recs.KeepLast >= next { // none to truncate, or all kept
		return dropTruncated(tx.Bucket(bucketRecords).Bucket(recs.Shard[:]), lb, limit)
	}
	return truncateRange(tx, recs.Shard, first, next, lb, next-recs.KeepLast, limit)
}
