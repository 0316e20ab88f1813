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
// (uint64 each), in the machine's byte order (little-endian here).
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
	le := binary.LittleEndian
	if le.Uint32(m[0:]) != boltMagic || le.Uint32(m[4:]) != boltVersion || le.Uint64(m[metaSumOffset:]) != h.Sum64() {
		return boltMeta{}, false
	}
	return boltMeta{pageSize: le.Uint32(m[8:]), pgid: le.Uint64(m[40:]), txid: le.Uint64(m[48:])}, true
}

// lastCommit reads the meta pages of the bbolt file r as bbolt chooses
// between them: the valid one with the higher transaction id, the second
// found with the first's page size (the OS page size if the first is
// invalid). ok is false when neither is valid.
func lastCommit(r io.ReaderAt) (m boltMeta, ok bool) {
	read := func(off int64) []byte {
		b := make([]byte, metaOffset+metaLen)
		n, _ := r.ReadAt(b, off)
		return b[:n]
	}
	m0, ok0 := readMeta(read(0))
	ps := int64(os.Getpagesize())
	if ok0 {
		ps = int64(m0.pageSize)
	}
	m1, ok1 := readMeta(read(ps))
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
	m, ok := lastCommit(f)
	if !ok {
		return nil
	}
	if need, ok := m.needs(); !ok || need > fi.Size() {
		return fmt.Errorf("%w: %s is cut short: %d bytes, its last commit uses %d pages of %d bytes", ErrCorrupt, path, fi.Size(), m.pgid, m.pageSize)
	}
	return nil
}
