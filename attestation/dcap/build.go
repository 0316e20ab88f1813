package dcap

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/binary"
	"encoding/pem"
	"errors"
	"fmt"
	"math"
)

// QuoteParams are the inputs of BuildQuoteV3.
type QuoteParams struct {
	QESVN, PCESVN uint16
	QEVendorID    [16]byte
	UserData      [20]byte
	// Body is the ISV enclave report the quote attests.
	Body ReportBody
	// QEReport is the quoting enclave's report; its ReportData is overwritten
	// with the attestation key binding.
	QEReport   ReportBody
	QEAuthData []byte
	// AttestationKey signs header||body; PCKKey signs the QE report. Both
	// must be P-256 keys, and PCKKey the key of PCKChain[0].
	AttestationKey, PCKKey *ecdsa.PrivateKey
	PCKChain               []*x509.Certificate // leaf first
}

// BuildQuoteV3 produces a version 3 SGX ECDSA quote in Intel's byte format,
// with certification data type 5 (PEM PCK chain). It binds the attestation
// key into the QE report and signs both reports, so the result passes
// VerifySignatures under the root of p.PCKChain. It is how a software TEE
// produces quotes that the production verifier checks unchanged.
func BuildQuoteV3(p QuoteParams) ([]byte, error) {
	q, err := buildQuoteV3(p)
	if err != nil {
		return nil, fmt.Errorf("build quote: %w", err)
	}
	return q, nil
}

func buildQuoteV3(p QuoteParams) ([]byte, error) {
	if p.AttestationKey == nil || p.AttestationKey.Curve != elliptic.P256() {
		return nil, errors.New("attestation key must be an ECDSA P-256 key")
	}
	if p.PCKKey == nil || p.PCKKey.Curve != elliptic.P256() {
		return nil, errors.New("PCK key must be an ECDSA P-256 key")
	}
	if len(p.PCKChain) == 0 {
		return nil, errors.New("empty PCK chain")
	}
	if len(p.QEAuthData) > math.MaxUint16 {
		return nil, fmt.Errorf("QE auth data of %d bytes exceeds %d", len(p.QEAuthData), math.MaxUint16)
	}
	ak, err := p.AttestationKey.PublicKey.Bytes() // 0x04 || X || Y
	if err != nil {
		return nil, fmt.Errorf("attestation key: %w", err)
	}
	ak = ak[1:]

	h := Header{
		Version:            3,
		AttestationKeyType: AttestationKeyECDSAP256,
		TEEType:            TEETypeSGX,
		QESVN:              p.QESVN,
		PCESVN:             p.PCESVN,
		QEVendorID:         p.QEVendorID,
		UserData:           p.UserData,
	}
	hb, _ := h.MarshalBinary()
	body, _ := p.Body.MarshalBinary()
	signed := append(hb, body...)

	qe := p.QEReport
	binding := sha256.Sum256(append(append([]byte{}, ak...), p.QEAuthData...))
	qe.ReportData = [64]byte{}
	copy(qe.ReportData[:], binding[:])
	qeb, _ := qe.MarshalBinary()

	quoteSig, err := signRaw(p.AttestationKey, signed)
	if err != nil {
		return nil, fmt.Errorf("sign quote: %w", err)
	}
	qeSig, err := signRaw(p.PCKKey, qeb)
	if err != nil {
		return nil, fmt.Errorf("sign QE report: %w", err)
	}

	var chain []byte
	for _, c := range p.PCKChain {
		chain = append(chain, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
	}

	var sd []byte
	sd = append(sd, quoteSig...)
	sd = append(sd, ak...)
	sd = append(sd, qeb...)
	sd = append(sd, qeSig...)
	sd = binary.LittleEndian.AppendUint16(sd, uint16(len(p.QEAuthData)))
	sd = append(sd, p.QEAuthData...)
	sd = binary.LittleEndian.AppendUint16(sd, certDataPCKChain)
	sd = binary.LittleEndian.AppendUint32(sd, uint32(len(chain)))
	sd = append(sd, chain...)
	if uint64(len(sd)) > math.MaxUint32 {
		return nil, errors.New("signature data too long")
	}

	out := signed
	out = binary.LittleEndian.AppendUint32(out, uint32(len(sd)))
	return append(out, sd...), nil
}

// signRaw signs sha256(msg) and returns the signature as 32-byte big-endian
// r || s, the encoding of quotes.
func signRaw(k *ecdsa.PrivateKey, msg []byte) ([]byte, error) {
	d := sha256.Sum256(msg)
	r, s, err := ecdsa.Sign(rand.Reader, k, d[:])
	if err != nil {
		return nil, err
	}
	sig := make([]byte, signatureSize)
	r.FillBytes(sig[:32])
	s.FillBytes(sig[32:])
	return sig, nil
}
