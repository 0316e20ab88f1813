// Package seal encrypts data so that only the same enclave (same
// MRENCLAVE, same TEE) can decrypt it: AES-256-GCM under the TEE backend's
// sealing key for a purpose label, with associated data binding the label,
// the enclave measurement and the shard. A blob sealed for another purpose,
// enclave or shard, or changed in any byte, does not open.
//
// The enclave never writes files: sealed blobs go to the host, which
// persists them (atomically: write, fsync, rename) and hands them back.
package seal

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/integritee-go/integritee/tee"
)

// magic starts every blob: format and version.
var magic = [4]byte{'I', 'S', 'L', '1'}

const (
	nonceSize = 12
	tagSize   = 16
	// Overhead is the size of a blob minus the size of its plaintext.
	Overhead = len(magic) + nonceSize + tagSize
)

// Errors of Open, one per rejection class.
var (
	// ErrTruncated means the blob is shorter than any sealed blob.
	ErrTruncated = errors.New("seal: blob truncated")
	// ErrFormat means the blob does not start with the sealed-blob magic.
	ErrFormat = errors.New("seal: not a sealed blob")
	// ErrAuthentication means the blob was changed, or sealed for another
	// purpose, enclave or shard.
	ErrAuthentication = errors.New("seal: blob tampered or sealed for another enclave, shard or purpose")
)

// associatedData is len(label) (u16 BE) || label || MRENCLAVE || shard; the
// length prefix keeps label and measurement apart.
func associatedData(label string, mrenclave, shard [32]byte) ([]byte, error) {
	if len(label) == 0 || len(label) > 0xffff {
		return nil, fmt.Errorf("seal: label of %d bytes", len(label))
	}
	ad := binary.BigEndian.AppendUint16(nil, uint16(len(label)))
	ad = append(ad, label...)
	ad = append(ad, mrenclave[:]...)
	return append(ad, shard[:]...), nil
}

func aead(b tee.Backend, label string) (cipher.AEAD, error) {
	key, err := b.SealingKey(label)
	if err != nil {
		return nil, fmt.Errorf("seal: sealing key: %w", err)
	}
	if len(key) != 32 {
		return nil, fmt.Errorf("seal: sealing key has %d bytes, want 32", len(key))
	}
	blk, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("seal: %w", err)
	}
	return cipher.NewGCM(blk)
}

// Seal encrypts plaintext for purpose label of this enclave and shard.
func Seal(b tee.Backend, label string, shard [32]byte, plaintext []byte) ([]byte, error) {
	ad, err := associatedData(label, b.Measurement(), shard)
	if err != nil {
		return nil, err
	}
	g, err := aead(b, label)
	if err != nil {
		return nil, err
	}
	out := make([]byte, len(magic)+nonceSize, Overhead+len(plaintext))
	copy(out, magic[:])
	if _, err := rand.Read(out[len(magic):]); err != nil {
		return nil, fmt.Errorf("seal: nonce: %w", err)
	}
	return g.Seal(out, out[len(magic):], plaintext, ad), nil
}

// Open decrypts a blob that Seal produced with the same label and shard in
// this enclave.
func Open(b tee.Backend, label string, shard [32]byte, blob []byte) ([]byte, error) {
	if len(blob) < Overhead {
		return nil, fmt.Errorf("%w: %d bytes, at least %d", ErrTruncated, len(blob), Overhead)
	}
	if [4]byte(blob[:len(magic)]) != magic {
		return nil, ErrFormat
	}
	ad, err := associatedData(label, b.Measurement(), shard)
	if err != nil {
		return nil, err
	}
	g, err := aead(b, label)
	if err != nil {
		return nil, err
	}
	nonce := blob[len(magic) : len(magic)+nonceSize]
	pt, err := g.Open(nil, nonce, blob[len(magic)+nonceSize:], ad)
	if err != nil {
		return nil, fmt.Errorf("%w (%s)", ErrAuthentication, label)
	}
	return pt, nil
}
