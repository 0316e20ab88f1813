// Package gramine is the TEE backend for real SGX enclaves run under Gramine.
//
// Gramine exposes the enclave's attestation primitives as pseudo-files under
// /dev/attestation, so this backend needs no cgo: a quote is obtained by
// writing the report data to user_report_data and reading quote, the
// measurement comes from my_target_info and sealing keys from keys/.
//
// The base directory is configurable so tests can run against a fake tree.
package gramine

import (
	"bytes"
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"

	"github.com/integritee-go/integritee/tee"
)

// DefaultDir is where Gramine mounts its attestation pseudo-files.
const DefaultDir = "/dev/attestation"

// Pseudo-file names below the base directory.
const (
	fileAttestationType = "attestation_type"
	fileUserReportData  = "user_report_data"
	fileQuote           = "quote"
	fileMyTargetInfo    = "my_target_info"
	fileMRENCLAVEKey    = "keys/_sgx_mrenclave"
)

const (
	// targetInfoSize is sizeof(sgx_target_info_t); MRENCLAVE is its first field.
	targetInfoSize = 512
	// sealKeySize is the size of an SGX key (EGETKEY output) as Gramine exposes it.
	sealKeySize = 16
	// sealingKeySize is the size of the keys SealingKey returns.
	sealingKeySize = 32

	// SGX quote layout (v3 and v4): 48-byte header, then the 384-byte ISV
	// report body whose last 64 bytes are the report data.
	quoteHeaderSize     = 48
	reportDataOffset    = quoteHeaderSize + 320
	reportDataEnd       = reportDataOffset + 64
	teeTypeSGX          = 0
	maxQuoteFileSize    = 1 << 20 // real quotes are a few KiB
	maxSmallFileSize    = 4096
	attestationTypeDCAP = "dcap"
	attestationTypeNone = "none"
)

// Errors of the backend.
var (
	// ErrNoAttestation means Gramine runs without remote attestation
	// (sgx.remote_attestation = "none" in the manifest, or outside SGX).
	ErrNoAttestation = errors.New("gramine: remote attestation disabled: attestation_type is none")
	// ErrUnsupportedAttestation means an attestation type other than DCAP
	// (such as EPID), which this backend does not produce quotes for.
	ErrUnsupportedAttestation = errors.New("gramine: unsupported attestation type")
	// ErrMalformed means a pseudo-file had an unexpected size or content.
	ErrMalformed = errors.New("gramine: malformed pseudo-file")
	// ErrReportDataMismatch means the quote read back does not carry the
	// report data just written: it belongs to another request.
	ErrReportDataMismatch = errors.New("gramine: quote report data does not match the request")
)

// Backend is the Gramine TEE backend. It is safe for concurrent use.
type Backend struct {
	dir         string
	measurement [32]byte

	// mu serialises quote generation: user_report_data and quote are
	// process-global, so two interleaved requests could read each other's quote.
	mu sync.Mutex
}

var _ tee.Backend = (*Backend)(nil)

// New opens the Gramine attestation interface under dir (DefaultDir if empty)
// and reads the enclave's measurement.
func New(dir string) (*Backend, error) {
	if dir == "" {
		dir = DefaultDir
	}
	ti, err := readFile(dir, fileMyTargetInfo, maxSmallFileSize)
	if err != nil {
		return nil, fmt.Errorf("gramine: read target info: %w", err)
	}
	if len(ti) != targetInfoSize {
		return nil, fmt.Errorf("%w: %s is %d bytes, want %d", ErrMalformed, fileMyTargetInfo, len(ti), targetInfoSize)
	}
	b := &Backend{dir: dir}
	copy(b.measurement[:], ti[:32])
	return b, nil
}

// Measurement returns the enclave's MRENCLAVE.
func (b *Backend) Measurement() [32]byte { return b.measurement }

// AttestationType returns Gramine's attestation type ("dcap", "epid" or "none").
func (b *Backend) AttestationType() (string, error) {
	t, err := readFile(b.dir, fileAttestationType, maxSmallFileSize)
	if err != nil {
		return "", fmt.Errorf("gramine: read attestation type: %w", err)
	}
	return string(bytes.TrimSpace(t)), nil
}

// Quote returns a DCAP quote over reportData.
func (b *Backend) Quote(reportData [64]byte) ([]byte, error) {
	typ, err := b.AttestationType()
	if err != nil {
		return nil, err
	}
	switch typ {
	case attestationTypeDCAP:
	case attestationTypeNone:
		return nil, ErrNoAttestation
	default:
		return nil, fmt.Errorf("%w: %q, want %q", ErrUnsupportedAttestation, typ, attestationTypeDCAP)
	}

	b.mu.Lock()
	defer b.mu.Unlock()
	if err := writeReportData(filepath.Join(b.dir, fileUserReportData), reportData); err != nil {
		return nil, fmt.Errorf("gramine: write report data: %w", err)
	}
	q, err := readFile(b.dir, fileQuote, maxQuoteFileSize)
	if err != nil {
		return nil, fmt.Errorf("gramine: read quote: %w", err)
	}
	if err := checkReportData(q, reportData); err != nil {
		return nil, err
	}
	return q, nil
}

// SealingKey derives a 32-byte key for label from the enclave's MRENCLAVE
// sealing key (EGETKEY with KEYPOLICY.MRENCLAVE): only the same enclave on the
// same CPU obtains it.
func (b *Backend) SealingKey(label string) ([]byte, error) {
	k, err := readFile(b.dir, fileMRENCLAVEKey, maxSmallFileSize)
	if err != nil {
		return nil, fmt.Errorf("gramine: read sealing key: %w", err)
	}
	if len(k) != sealKeySize {
		return nil, fmt.Errorf("%w: %s is %d bytes, want %d", ErrMalformed, fileMRENCLAVEKey, len(k), sealKeySize)
	}
	key, err := hkdf.Key(sha256.New, k, nil, label, sealingKeySize)
	if err != nil {
		return nil, fmt.Errorf("gramine: derive sealing key: %w", err)
	}
	return key, nil
}

func writeReportData(path string, reportData [64]byte) error {
	// No O_CREATE: a missing file means we are not running under Gramine.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		return err
	}
	n, err := f.Write(reportData[:])
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil && n != len(reportData) {
		err = io.ErrShortWrite
	}
	return err
}

// readFile reads a pseudo-file, refusing more than limit bytes.
func readFile(dir, name string, limit int64) ([]byte, error) {
	f, err := os.Open(filepath.Join(dir, name))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%w: %s exceeds %d bytes", ErrMalformed, name, limit)
	}
	return b, nil
}

// checkReportData checks that q is an SGX quote (v3 or v4) whose ISV report
// carries reportData. The quote is not verified here; that is the verifier's job.
func checkReportData(q []byte, reportData [64]byte) error {
	if len(q) < reportDataEnd {
		return fmt.Errorf("%w: quote is %d bytes, want at least %d", ErrMalformed, len(q), reportDataEnd)
	}
	version := binary.LittleEndian.Uint16(q[0:2])
	teeType := binary.LittleEndian.Uint32(q[4:8])
	if (version != 3 && version != 4) || teeType != teeTypeSGX {
		return fmt.Errorf("%w: quote version %d, TEE type %#x, want an SGX v3 or v4 quote", ErrMalformed, version, teeType)
	}
	if !bytes.Equal(q[reportDataOffset:reportDataEnd], reportData[:]) {
		return ErrReportDataMismatch
	}
	return nil
}
