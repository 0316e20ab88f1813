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

	// In a shard's records bucket: the index the next record gets, and
	// the nested bucket of the records (index -> record). The next index
	// is kept apart from the records so that it survives a truncation of
	// all of them.
	keyRecordNext = []byte("next")
	bucketLog     = []byte("log")
)

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

func appendRecords(tx *bolt.Tx, shard [32]byte, recs [][]byte) error {
	sb, err := tx.Bucket(bucketRecords).CreateBucketIfNotExists(shard[:])
	if err != nil {
		return err
	}
	lb, err := sb.CreateBucketIfNotExists(bucketLog)
	if err != nil {
		return err
	}
	next := readUint(sb.Get(keyRecordNext))
	for _, r := range recs {
		// bbolt needs the value unchanged until the commit: a copy does
		// not depend on the caller for that.
		if err := lb.Put(binary.BigEndian.AppendUint64(nil, next), bytes.Clone(r)); err != nil {
			return err
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
		for k, v := c.First(); k != nil; k, v = c.Next() {
			if len(k) != 8 || binary.BigEndian.Uint64(k) != want || want >= next {
				return fmt.Errorf("%w: record key %x, want index %d of [%d, %d)", ErrCorrupt, k, want, first, next)
			}
			if err := fn(want, bytes.Clone(v)); err != nil {
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
	k, _ := lb.Cursor().First()
	if k == nil {
		return next, next, lb, nil
	}
	if len(k) != 8 {
		return 0, 0, nil, fmt.Errorf("%w: record key of %d bytes", ErrCorrupt, len(k))
	}
	return binary.BigEndian.Uint64(k), next, lb, nil
}

// TruncateRecordsBefore drops the shard's records with an index below n,
// once a later record (a snapshot) supersedes them. n may be at most the
// next index (dropping every record); records already dropped are not an
// error. The next index does not change, so indexes stay unique.
//
// Which prefix a snapshot supersedes is the enclave's to say (the records
// are sealed and hash-chained): it says so with Records.KeepLast.
func (s *Store) TruncateRecordsBefore(shard [32]byte, n uint64) error {
	err := s.db.Update(func(tx *bolt.Tx) error { return truncateRecords(tx, shard, n) })
	if err != nil {
		return fmt.Errorf("truncate records of shard %x: %w", shard, err)
	}
	return nil
}

func truncateRecords(tx *bolt.Tx, shard [32]byte, n uint64) error {
	first, next, lb, err := recordRange(tx, shard)
	if err != nil {
		return err
	}
	if n > next {
		return fmt.Errorf("%w: truncate before %d, next index is %d", ErrRecordRange, n, next)
	}
	for i := first; i < n; i++ {
		if err := lb.Delete(binary.BigEndian.AppendUint64(nil, i)); err != nil {
			return err
		}
	}
	return nil
}

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
	if recs.KeepLast == 0 {
		return nil
	}
	_, next, _, err := recordRange(tx, recs.Shard)
	if err != nil {
		return err
	}
	if recs.KeepLast >= next {
		return nil // all of them
	}
	return truncateRecords(tx, recs.Shard, next-recs.KeepLast)
}
