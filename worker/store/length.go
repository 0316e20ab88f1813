package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"math"
	"os"
)

// bbolt maps a file and reads its pages in place: a file cut short (a
// disk that lost its tail, a truncated copy) makes it read past the end
// of the file, which the kernel answers with SIGBUS, a fault no recover
// catches. checkLength reads the file's two meta pages as bbolt does and
// refuses a file shorter than the pages its last commit uses, so such a
// file gives ErrCorrupt instead of a crash. Other damage is left to
// bbolt's own checks.

// The layout of a bbolt meta page (go.etcd.io/bbolt/internal/common): a
// 16-byte page header, then magic, version, page size and flags (uint32
// each), the root bucket (16 bytes), the freelist page, the high-water
// page id, the transaction id and an FNV-64a checksum of what precedes it
// (uint64 each), in the machine's byte order.
const (
	boltMagic     = 0xED0CDAED
	boltVersion   = 2
	metaOffset    = 16
	metaSumOffset = 56
	metaLen       = 64
)

type boltMeta struct {
	pageSize   uint32
	pgid, txid uint64
}

func readMeta(b []byte) (boltMeta, bool) {
	if len(b) < metaOffset+metaLen {
		return boltMeta{}, false
	}
	m := b[metaOffset : metaOffset+metaLen]
	h := fnv.New64a()
	h.Write(m[:metaSumOffset])
	ne := binary.NativeEndian
	if ne.Uint32(m[0:]) != boltMagic || ne.Uint32(m[4:]) != boltVersion || ne.Uint64(m[metaSumOffset:]) != h.Sum64() {
		return boltMeta{}, false
	}
	return boltMeta{pageSize: ne.Uint32(m[8:]), pgid: ne.Uint64(m[40:]), txid: ne.Uint64(m[48:])}, true
}

// lastCommit reads the meta pages of the bbolt file r (size bytes) as
// bbolt chooses between them: the valid one with the higher transaction
// id. The second is found with the first's page size; if the first is
// invalid, bbolt looks for a valid meta page at 1 KiB, 2 KiB, ... 16 MiB
// and takes its page size, and so does lastCommit. ok is false when
// neither is valid.
func lastCommit(r io.ReaderAt, size int64) (m boltMeta, ok bool) {
	read := func(off int64) []byte {
		b := make([]byte, metaOffset+metaLen)
		n, _ := r.ReadAt(b, off)
		return b[:n]
	}
	m0, ok0 := readMeta(read(0))
	ps := int64(m0.pageSize)
	if !ok0 {
		ps = 0
		for i := range 15 {
			pos := int64(1024) << i
			if pos >= size-1024 {
				break
			}
			if m, ok := readMeta(read(pos)); ok {
				ps = int64(m.pageSize)
				break
			}
		}
	}
	var m1 boltMeta
	var ok1 bool
	if ps > 0 {
		m1, ok1 = readMeta(read(ps))
	}
	switch {
	case !ok0 && !ok1:
		return boltMeta{}, false
	case !ok0 || ok1 && m1.txid > m0.txid:
		return m1, true
	}
	return m0, true
}

// needs is the file length the commit m uses; ok is false if it
// overflows.
func (m boltMeta) needs() (int64, bool) {
	if m.pageSize == 0 || m.pgid > math.MaxInt64/uint64(m.pageSize) {
		return 0, false
	}
	return int64(m.pgid * uint64(m.pageSize)), true
}

// checkLength refuses (ErrCorrupt) a bbolt file at path that is shorter
// than the pages its newest valid meta page counts. A missing or empty
// file, or one without a valid meta page, is left to bbolt.
func checkLength(path string) error {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	m, ok := lastCommit(f, fi.Size())
	if !ok {
		return nil
	}
	// The size again, after the meta: bbolt grows a file before it writes
	// the meta page that uses the new pages and never shrinks it, so a
	// commit of another process in between cannot make it look short.
	if fi, err = f.Stat(); err != nil {
		return err
	}
	if need, ok := m.needs(); !ok || need > fi.Size() {
		return fmt.Errorf("%w: %s is cut short: %d bytes, its last commit uses %d pages of %d bytes", ErrCorrupt, path, fi.Size(), m.pgid, m.pageSize)
	}
	return nil
}

// neverCommitted reports whether the file at path is a bbolt file that
// never had a commit: no longer than the four pages bbolt writes to
// create one (the first commit grows it past InitialMmapSize's allocation
// step), with no meta page of a transaction after the two bbolt's
// creation writes (ids 0 and 1). Such a file, torn or whole, holds
// nothing. A file cut short after commits has a newer meta page and is
// not one.
func neverCommitted(path string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil || fi.Size() == 0 || fi.Size() > 4*int64(os.Getpagesize()) {
		return false
	}
	m, ok := lastCommit(f, fi.Size())
	return !ok || m.txid < 2
}
