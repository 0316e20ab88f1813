package sim

import (
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"fmt"
	"math/big"
	"time"

	"github.com/integritee-go/integritee/attestation"
	"github.com/integritee-go/integritee/attestation/pcs"
)

// Dev quoting enclave identity: what the sim backend's QE reports carry and
// the dev QE identity accepts.
const (
	devQEProdID = 1
	devQESVN    = 8
	devQEFlags  = 0x11 // INIT | PROVISIONKEY, as Intel's QE
	devQEXFRM   = 0x03

	// DevAdvisoryID is listed by dev TCB levels whose status is not UpToDate.
	DevAdvisoryID = "INTEGRITEE-DEV-SA-00001"

	devTCBEvaluationDataNumber = 17
	// Collateral validity around the time it is made for.
	collateralIssuedBefore = time.Hour
	collateralValidFor     = 30 * 24 * time.Hour
)

func devQEMRSIGNER() [32]byte {
	return sha256.Sum256([]byte("integritee dev sgx quoting enclave: mrsigner"))
}

func devQEMRENCLAVE() [32]byte {
	return sha256.Sum256([]byte("integritee dev sgx quoting enclave: mrenclave"))
}

func devQEAttributes() [16]byte {
	var a [16]byte
	a[0], a[8] = devQEFlags, devQEXFRM
	return a
}

// devTCBDate is the TCB date of the dev levels; fixed so collateral for the
// same time is the same.
func devTCBDate() time.Time { return time.Date(2024, 11, 13, 0, 0, 0, 0, time.UTC) }

// Collateral returns dev collateral, as Intel's PCS serves it for a real
// platform: TCB info and QE identity signed by the dev TCB signing key, a PCK
// CRL from the dev PCK CA and a root CA CRL, all issued at at-1h and valid
// until at+30 days. The dev platform's TCB status is UpToDate and nothing is
// revoked.
func (p *PKI) Collateral(at time.Time) (*pcs.Collateral, error) {
	return p.CollateralWith(at, CollateralOptions{})
}

// CollateralOptions vary the dev collateral, for testing verifier policy.
type CollateralOptions struct {
	// TCBStatus is the status of the dev platform's TCB level; empty means
	// UpToDate. Levels with another status list DevAdvisoryID.
	TCBStatus attestation.TCBStatus
	// RevokePCK lists the dev PCK certificate in the PCK CRL.
	RevokePCK bool
	// ValidFor is how long after at the collateral stays valid; zero means
	// 30 days, as Intel's. A dev chain writes its collateral into genesis
	// once, so it wants a longer life.
	ValidFor time.Duration
}

// CollateralWith is Collateral varied by opts.
func (p *PKI) CollateralWith(at time.Time, opts CollateralOptions) (*pcs.Collateral, error) {
	status := opts.TCBStatus
	if status == "" {
		status = attestation.StatusUpToDate
	}
	if !status.Known() {
		return nil, fmt.Errorf("sim: collateral: unknown TCB status %q", status)
	}
	issue := at.Add(-collateralIssuedBefore).UTC().Truncate(time.Second)
	validFor := opts.ValidFor
	if validFor == 0 {
		validFor = collateralValidFor
	}
	if validFor < 0 {
		return nil, fmt.Errorf("sim: collateral: negative validity %s", validFor)
	}
	next := at.Add(validFor).UTC().Truncate(time.Second)
	chain := p.TCBSigningChain()

	platform := pcs.TCBLevel{
		CompSVN: p.ext.CompSVN,
		PCESVN:  p.ext.PCESVN,
		TCBDate: devTCBDate(),
		Status:  status,
	}
	if status != attestation.StatusUpToDate {
		platform.AdvisoryIDs = []string{DevAdvisoryID}
	}
	info := pcs.TCBInfo{
		ID:                      pcs.IDSGX,
		Version:                 3,
		IssueDate:               issue,
		NextUpdate:              next,
		FMSPC:                   p.ext.FMSPC,
		PCEID:                   p.ext.PCEID,
		TCBType:                 0,
		TCBEvaluationDataNumber: devTCBEvaluationDataNumber,
		Levels: []pcs.TCBLevel{
			platform,
			// Any platform below the dev one is out of date.
			{
				TCBDate:     devTCBDate().AddDate(-1, 0, 0),
				Status:      attestation.StatusOutOfDate,
				AdvisoryIDs: []string{DevAdvisoryID},
			},
		},
	}
	signedInfo, err := pcs.SignTCBInfo(info, p.tcbKey, chain)
	if err != nil {
		return nil, fmt.Errorf("sim: collateral: %w", err)
	}

	qe := pcs.QEIdentity{
		ID:                      pcs.IDQE,
		Version:                 2,
		IssueDate:               issue,
		NextUpdate:              next,
		TCBEvaluationDataNumber: devTCBEvaluationDataNumber,
		MiscSelect:              0,
		MiscSelectMask:          0xffffffff,
		Attributes:              devQEAttributes(),
		// Like Intel's: all flags but KSS are checked, XFRM is not.
		AttributesMask: [16]byte{0xfb, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff},
		MRSIGNER:       devQEMRSIGNER(),
		ISVProdID:      devQEProdID,
		Levels: []pcs.QELevel{
			{ISVSVN: devQESVN, TCBDate: devTCBDate(), Status: attestation.StatusUpToDate},
			{ISVSVN: 0, TCBDate: devTCBDate().AddDate(-1, 0, 0), Status: attestation.StatusOutOfDate, AdvisoryIDs: []string{DevAdvisoryID}},
		},
	}
	signedQE, err := pcs.SignQEIdentity(qe, p.tcbKey, chain)
	if err != nil {
		return nil, fmt.Errorf("sim: collateral: %w", err)
	}

	var revoked []x509.RevocationListEntry
	if opts.RevokePCK {
		revoked = append(revoked, x509.RevocationListEntry{SerialNumber: p.pck.SerialNumber, RevocationTime: issue})
	}
	pckCRL, err := issueCRL(p.pckCA, p.pckCAKey, revoked, issue, next)
	if err != nil {
		return nil, fmt.Errorf("sim: collateral: PCK CRL: %w", err)
	}
	rootCRL, err := issueCRL(p.root, p.rootKey, nil, issue, next)
	if err != nil {
		return nil, fmt.Errorf("sim: collateral: root CA CRL: %w", err)
	}
	return &pcs.Collateral{
		TCBInfo:    signedInfo,
		QEIdentity: signedQE,
		PCKCRL:     &pcs.CRL{List: pckCRL, Chain: []*x509.Certificate{p.pckCA, p.root}},
		RootCRL:    &pcs.CRL{List: rootCRL, Chain: []*x509.Certificate{p.root}},
	}, nil
}

func issueCRL(issuer *x509.Certificate, key *ecdsa.PrivateKey, revoked []x509.RevocationListEntry, thisUpdate, nextUpdate time.Time) (*x509.RevocationList, error) {
	der, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{
		SignatureAlgorithm:        x509.ECDSAWithSHA256,
		RevokedCertificateEntries: revoked,
		// The number only has to grow between issues; ours are a function
		// of time, so derive it from the issue time.
		Number:     big.NewInt(thisUpdate.Unix()),
		ThisUpdate: thisUpdate,
		NextUpdate: nextUpdate,
	}, issuer, key)
	if err != nil {
		return nil, err
	}
	return x509.ParseRevocationList(der)
}
