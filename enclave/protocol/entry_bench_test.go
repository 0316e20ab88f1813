package protocol

import (
	"crypto/sha256"
	"encoding/binary"
	"testing"

	"github.com/integritee-go/integritee/internal/cputime"
)

// BenchmarkLoadEntriesCodec measures encoding and decoding a LoadEntries
// chunk of 4096 entries (the worker's restart chunk).
func BenchmarkLoadEntriesCodec(b *testing.B) {
	entries := make([]Entry, 4096)
	for i := range entries {
		entries[i] = Entry{Key: sha256.Sum256(binary.BigEndian.AppendUint64(nil, uint64(i))), Value: make([]byte, 37)}
	}
	c0 := cputime.Used()
	for b.Loop() {
		enc, err := Marshal(PackEntries(entries))
		if err != nil {
			b.Fatal(err)
		}
		var got LoadEntries
		if err := Unmarshal(enc, &got); err != nil {
			b.Fatal(err)
		}
		if es, err := got.Unpack(); err != nil || len(es) != 4096 {
			b.Fatal(err)
		}
	}
	cputime.ReportPerOp(b, c0)
}
