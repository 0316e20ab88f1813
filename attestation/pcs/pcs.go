package pcs

import (
	"crypto/x509"
	"errors"
	"time"

	"github.com/integritee-go/integritee/attestation"
)

// Errors for each rejection class, errors.Is-able through every wrap.
var (
	ErrSignature          = errors.New("collateral signature invalid")
	ErrChain              = errors.New("collateral signing chain invalid")
	ErrExpired            = errors.New("collateral expired")
	ErrNotYetValid        = errors.New("collateral not yet valid")
	ErrFMSPCMismatch      = errors.New("FMSPC mismatch")
	ErrPCEIDMismatch      = errors.New("PCEID mismatch")
	ErrTCBLevelNotFound   = errors.New("no matching TCB level")
	ErrRevoked            = errors.New("certificate revoked")
	ErrCRLIssuer          = errors.New("CRL issued by another CA")
	ErrQEIdentityMismatch = errors.New("QE report does not match QE identity")
	ErrWrongTEE           = errors.New("collateral is for another TEE type")
	ErrUnsupportedVersion = errors.New("unsupported collateral version")
	ErrUnknownStatus      = errors.New("unknown TCB status")
	ErrMalformed          = errors.New("malformed collateral")
	ErrMissing            = errors.New("collateral missing")
)

// Collateral identifiers used in the "id" fields of Intel's documents.
const (
	IDSGX  = "SGX"
	IDTDX  = "TDX"
	IDQE   = "QE"
	IDTDQE = "TD_QE"
	IDQVE  = "QVE"
)

// TCBLevel is one level of a TCB Info. CompSVN holds the 16 SGX TCB component
// SVNs whatever the JSON version spelled them as.
type TCBLevel struct {
	CompSVN     [16]uint8
	PCESVN      uint16
	TCBDate     time.Time
	Status      attestation.TCBStatus
	AdvisoryIDs []string

	// TDXCompSVN holds the TDX TCB component SVNs (TCB Info id "TDX" only).
	TDXCompSVN [16]uint8
}

// TDXModule is the TDX module identity of a TDX TCB Info (v3 "tdxModule").
type TDXModule struct {
	MRSIGNER       [48]byte
	Attributes     [8]byte
	AttributesMask [8]byte
}

// TDXModuleIdentity is one entry of a TDX TCB Info's "tdxModuleIdentities".
type TDXModuleIdentity struct {
	ID string
	TDXModule
	Levels []QELevel // isvsvn here is the TDX module's minor SVN
}

// TCBInfo is Intel's TCB Info (version 2 or 3) for one FMSPC.
type TCBInfo struct {
	ID                      string // "SGX", "TDX"; empty in version 2 (SGX)
	Version                 int
	IssueDate, NextUpdate   time.Time
	FMSPC                   [6]byte
	PCEID                   [2]byte
	TCBType                 int
	TCBEvaluationDataNumber int
	Levels                  []TCBLevel

	// TDX only (ID "TDX"); nil otherwise.
	TDXModule           *TDXModule
	TDXModuleIdentities []TDXModuleIdentity
}

// QELevel is one TCB level of a QE identity.
type QELevel struct {
	ISVSVN      uint16
	TCBDate     time.Time
	Status      attestation.TCBStatus
	AdvisoryIDs []string
}

// QEIdentity is Intel's enclave identity (version 2) of a quoting enclave
// ("QE", "TD_QE") or of the quote verification enclave ("QVE").
type QEIdentity struct {
	ID                      string
	Version                 int
	IssueDate, NextUpdate   time.Time
	TCBEvaluationDataNumber int
	MiscSelect              uint32
	MiscSelectMask          uint32
	Attributes              [16]byte
	AttributesMask          [16]byte
	MRSIGNER                [32]byte
	ISVProdID               uint16
	Levels                  []QELevel
}

// SignedTCBInfo is a TCB Info with its signature and signing chain. Body is
// exactly the signed bytes; Info was parsed from Body.
type SignedTCBInfo struct {
	Body, Signature []byte // Signature: 64-byte r||s
	Chain           []*x509.Certificate
	Info            TCBInfo
}

// SignedQEIdentity is a QE identity with its signature and signing chain.
type SignedQEIdentity struct {
	Body, Signature []byte
	Chain           []*x509.Certificate
	Identity        QEIdentity
}

// CRL is a certificate revocation list with the chain of its issuer. Chain
// may be empty for a list issued by a root.
type CRL struct {
	List  *x509.RevocationList
	Chain []*x509.Certificate
}

// Collateral is everything besides the quote that DCAP verification needs.
// TCBInfo and QEIdentity are required; the CRLs are optional (not every
// source ships them), and are checked when present.
type Collateral struct {
	TCBInfo         *SignedTCBInfo
	QEIdentity      *SignedQEIdentity
	PCKCRL, RootCRL *CRL
}

// QEReport is what QE identity evaluation needs from the QE's report.
type QEReport struct {
	MRSIGNER   [32]byte
	ISVProdID  uint16
	MiscSelect uint32
	Attributes [16]byte
	ISVSVN     uint16
}
