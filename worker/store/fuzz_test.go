package store

import (
	"bytes"
	"errors"
	"testing"

	"github.com/integritee-go/integritee/enclave/protocol"
)

// FuzzDecodeChanges feeds pending records as a host's disk could hold
// them: decodeChanges never panics, reports anything it cannot read as
// ErrCorrupt, and what it reads encodes to a record that decodes to the same
// changes.
func FuzzDecodeChanges(f *testing.F) {
	f.Add(encodeChanges([]protocol.Entry{{Key: blinded(1), Value: []byte{1, 2, 3}}, {Key: blinded(2)}}))
	f.Add(bytes.Repeat([]byte{1}, 20))
	f.Add(append(bytes.Repeat([]byte{1}, 32), 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff))
	f.Fuzz(func(t *testing.T, rec []byte) {
		var got []protocol.Entry
		err := decodeChanges(rec, func(key, value []byte) {
			got = append(got, protocol.Entry{Key: [32]byte(key), Value: bytes.Clone(value)})
		})
		n, cerr := changeCount(rec)
		if (err == nil) != (cerr == nil) {
			t.Fatalf("decode %v, count %v", err, cerr)
		}
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error %v is not ErrCorrupt", err)
			}
			return
		}
		if n != len(got) {
			t.Fatalf("count %d, decoded %d", n, len(got))
		}
		// A uvarint may be written in more bytes than needed, so compare
		// the decoded changes, not the bytes.
		var again []protocol.Entry
		if err := decodeChanges(encodeChanges(got), func(key, value []byte) {
			again = append(again, protocol.Entry{Key: [32]byte(key), Value: bytes.Clone(value)})
		}); err != nil || len(again) != len(got) {
			t.Fatalf("re-encoded: %d changes, %v; want %d", len(again), err, len(got))
		}
		for i := range got {
			if again[i].Key != got[i].Key || !bytes.Equal(again[i].Value, got[i].Value) {
				t.Fatalf("change %d differs after re-encoding", i)
			}
		}
	})
}

// FuzzLastCommit feeds the first pages of a bbolt file as a host's disk
// could hold them: lastCommit never panics, and a commit it reports has a
// page size and, when it does not overflow, the length it needs.
func FuzzLastCommit(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		m, ok := lastCommit(bytes.NewReader(b), int64(len(b)))
		if !ok {
			return
		}
		if need, ok := m.needs(); ok && m.pageSize != 0 && need != int64(m.pgid)*int64(m.pageSize) {
			t.Fatalf("needs %d for %d pages of %d", need, m.pgid, m.pageSize)
		}
	})
}
