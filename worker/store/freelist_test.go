package store

import (
	"os"
	"path/filepath"
	"testing"
)

// TestMainFreelistNotWritten: once a large batch has left the main file
// with many free pages (a provisioned state's pending records, folded and
// dropped), a block's commit does not write all their ids again
// (mainOptions); after a restart bbolt finds the free pages by walking the
// live ones, and reuses them instead of growing the file.
func TestMainFreelistNotWritten(t *testing.T) {
	path := filepath.Join(t.TempDir(), "w.db")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	big := make([][]byte, 40)
	for i := range big {
		big[i] = pattern(maxRecordChunk, byte(i))
	}
	if err := s.AppendRecords(chunkShard, big); err != nil {
		t.Fatal(err)
	}
	if err := s.TruncateRecordsBefore(chunkShard, uint64(len(big))); err != nil {
		t.Fatal(err)
	}
	if err := s.AppendRecords(chunkShard, [][]byte{pattern(100, 1)}); err != nil {
		t.Fatal(err) // the freed pages are free from the next commit on
	}
	before := wchar(t)
	if err := s.AppendRecords(chunkShard, [][]byte{pattern(3000, 2)}); err != nil {
		t.Fatal(err)
	}
	// ~10,000 free pages: their ids alone are 80 KB.
	if n := wchar(t) - before; n > 48<<10 {
		t.Errorf("a commit of a 3,000-byte record wrote %d bytes with 40 MiB free in the file", n)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	closeFiles(s)
	if s, err = Open(path); err != nil {
		t.Fatal(err)
	}
	defer closeFiles(s)
	if err := s.AppendRecords(chunkShard, big[:30]); err != nil {
		t.Fatal(err)
	}
	after, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if after.Size() > st.Size() {
		t.Errorf("the main file grew from %d to %d bytes with 40 MiB free: the freelist was not rebuilt", st.Size(), after.Size())
	}
	wantRecordsIn(t, s, uint64(len(big)), append([][]byte{pattern(100, 1), pattern(3000, 2)}, big[:30]...))
}
