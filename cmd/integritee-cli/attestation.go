package main

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/integritee-go/integritee/attestation"
	"github.com/integritee-go/integritee/attestation/dcap"
	"github.com/integritee-go/integritee/attestation/ias"
	"github.com/integritee-go/integritee/attestation/pcs"
	"github.com/integritee-go/integritee/attestation/ratls"
	"github.com/integritee-go/integritee/attestation/roots"
	"github.com/integritee-go/integritee/internal/cli"
	"github.com/integritee-go/integritee/tee/sim"
)

func (e *env) attestationGroup() *cli.Command {
	return &cli.Command{
		Name:  "attestation",
		Short: "verify SGX quotes, RA-TLS certificates and IAS reports; run the real Intel vectors",
		Commands: []*cli.Command{
			{Name: "verify", Usage: "FILE [flags]", Short: "verify a DCAP quote (binary or hex), an RA-TLS certificate (PEM/DER) or an IAS report (JSON)", Setup: e.verify},
			{Name: "vectors", Usage: "[--dir PATH] [--json]", Short: "verify every real attestation vector at its fixed time and compare with the expected verdict", Setup: e.vectors},
			{Name: "sim-quote", Usage: "[flags] > quote.bin", Short: "write a quote of the simulated TEE backend to stdout", Setup: e.simQuote},
		},
	}
}

// errPolicy marks evidence that verified but that the policy rejects; the
// result is still shown.
var errPolicy = errors.New("rejected by policy")

// defaultStatuses are accepted unless --accept-status says otherwise: the
// platform's TCB is current, possibly needing configuration or software
// hardening by the enclave. Out-of-date and revoked platforms are not.
func defaultStatuses() []attestation.TCBStatus {
	return []attestation.TCBStatus{
		attestation.StatusUpToDate,
		attestation.StatusSWHardeningNeeded,
		attestation.StatusConfigurationNeeded,
		attestation.StatusConfigurationAndSWHardeningNeeded,
	}
}

func allStatuses() []attestation.TCBStatus {
	return append(defaultStatuses(),
		attestation.StatusOutOfDate,
		attestation.StatusOutOfDateConfigurationNeeded,
		attestation.StatusRevoked)
}

// evidence is one attestation loaded from a file, in whichever container.
type evidence struct {
	format string
	quote  []byte            // DCAP quote
	cert   *x509.Certificate // RA-TLS certificate
	ias    *ias.Evidence     // IAS report
}

// loadEvidence detects the format of data. iasSig and iasChain, when set,
// are the signature and URL-encoded signing chain of a bare IAS report
// body (oasis-core's split form).
func loadEvidence(data, iasSig, iasChain []byte) (*evidence, error) {
	t := bytes.TrimSpace(data)
	if len(t) == 0 {
		return nil, errors.New("empty evidence file")
	}
	switch {
	case bytes.HasPrefix(t, []byte("-----BEGIN")):
		b, _ := pem.Decode(t)
		if b == nil || b.Type != "CERTIFICATE" {
			return nil, errors.New("PEM input is not a CERTIFICATE block")
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("parse RA-TLS certificate: %w", err)
		}
		return &evidence{format: "ra-tls certificate (PEM)", cert: c}, nil
	case t[0] == '{':
		if iasSig != nil || iasChain != nil {
			if iasSig == nil || iasChain == nil {
				return nil, errors.New("an IAS report body needs both --ias-sig and --ias-chain")
			}
			// IAS signed the body bytes exactly as stored.
			ev, err := ias.EvidenceFromResponse(data, string(iasSig), string(iasChain))
			if err != nil {
				return nil, err
			}
			return &evidence{format: "ias report (body + signature + chain)", ias: ev}, nil
		}
		if bytes.Contains(t, []byte(`"raReport"`)) {
			ev, err := ias.EvidenceFromPhala(data)
			if err != nil {
				return nil, err
			}
			return &evidence{format: "ias report (raReport JSON)", ias: ev}, nil
		}
		return nil, errors.New("JSON input is neither a {raReport, signature, rawSigningCert} object nor accompanied by --ias-sig and --ias-chain")
	}
	// Hex text before DER: "30…" in ASCII starts with the byte 0x30 too.
	if q, ok := decodeHexText(t); ok {
		return &evidence{format: "dcap quote (hex)", quote: q}, nil
	}
	if data[0] == 0x30 {
		// DER SEQUENCE: a certificate (a quote starts with its version,
		// 3 to 5, little-endian).
		c, err := x509.ParseCertificate(data)
		if err != nil {
			return nil, fmt.Errorf("parse RA-TLS certificate (DER): %w", err)
		}
		return &evidence{format: "ra-tls certificate (DER)", cert: c}, nil
	}
	return &evidence{format: "dcap quote", quote: data}, nil
}

// decodeHexText decodes b if it is hex text (optionally 0x-prefixed,
// whitespace ignored).
func decodeHexText(b []byte) ([]byte, bool) {
	s := strings.Join(strings.Fields(string(b)), "")
	s = strings.TrimPrefix(strings.TrimPrefix(s, "0x"), "0X")
	if s == "" || len(s)%2 != 0 {
		return nil, false
	}
	out, err := hex.DecodeString(s)
	if err != nil {
		return nil, false
	}
	return out, true
}

// verifyConfig is everything a verification needs besides the evidence.
type verifyConfig struct {
	policy     attestation.Policy
	collateral *pcs.Collateral // for DCAP quotes and OE/EGo certificates
	at         time.Time
	// attestationOnly skips the RA-TLS key binding (Integritee IAS
	// certificates commit to the enclave signer instead).
	attestationOnly bool
}

// outcome is what verification established; res is set whenever the
// cryptographic verification passed, even if the policy then rejected.
type outcome struct {
	res        *attestation.Result
	keyBinding string // for certificates: "verified" or "not checked"
}

// verifyEvidence verifies ev fully and then applies the policy. An error
// wrapping errPolicy comes with a result.
func verifyEvidence(ev *evidence, cfg verifyConfig) (outcome, error) {
	// Verify with a policy that admits any verified enclave, then apply the
	// real one, so a policy rejection can still show what was verified.
	open := cfg.policy
	open.AllowDebug = true
	open.AcceptedTCBStatuses = allStatuses()
	open.AllowedMRENCLAVE, open.AllowedMRSIGNER = nil, nil
	open.MaxAge = 0

	var out outcome
	var err error
	switch {
	case ev.quote != nil:
		if cfg.collateral == nil {
			return out, errors.New("a DCAP quote needs collateral: --qvl-collateral, or --tcb-info and --qe-identity (with their chains), or --sim-seed")
		}
		out.res, err = dcap.Verify(ev.quote, dcap.Options{Roots: open.DCAPRoots, Collateral: cfg.collateral, Time: cfg.at})
	case ev.ias != nil:
		out.res, err = ias.Verify(ev.ias, ias.Options{Roots: open.IASRoots, Time: cfg.at})
	case ev.cert != nil:
		v := &ratls.Verifier{Policy: open, Now: func() time.Time { return cfg.at }}
		if cfg.collateral != nil {
			v.Collateral = ratls.StaticCollateral(cfg.collateral)
		}
		if cfg.attestationOnly {
			out.keyBinding = "not checked"
			out.res, err = v.VerifyAttestationOnly(ev.cert)
		} else {
			out.keyBinding = "verified"
			out.res, err = v.VerifyCertificate(ev.cert)
		}
	default:
		return out, errors.New("no evidence")
	}
	if err != nil {
		return outcome{}, err
	}
	if err := cfg.policy.Check(out.res, cfg.at); err != nil {
		return out, fmt.Errorf("%w: %w", errPolicy, err)
	}
	return out, nil
}

// collateralFiles names the collateral files of a verification.
type collateralFiles struct {
	tcbInfo, tcbInfoChain       string
	qeIdentity, qeIdentityChain string
	pckCRL, pckCRLChain         string
	rootCRL                     string
	qvl                         string // dcap-qvl QuoteCollateralV3 JSON
	// Fortanix rust-sgx's own formats (.tcb, .id, .crl); vectors only.
	fortanixTCB, fortanixQE, fortanixCRL string
}

func (c *collateralFiles) register(fs *flag.FlagSet) {
	fs.StringVar(&c.tcbInfo, "tcb-info", "", "TCB info JSON `file` ({\"tcbInfo\":…,\"signature\":hex})")
	fs.StringVar(&c.tcbInfoChain, "tcb-info-chain", "", "PEM `file` of the TCB info signing chain")
	fs.StringVar(&c.qeIdentity, "qe-identity", "", "QE identity JSON `file` ({\"enclaveIdentity\":…,\"signature\":hex})")
	fs.StringVar(&c.qeIdentityChain, "qe-identity-chain", "", "PEM `file` of the QE identity signing chain (default: --tcb-info-chain)")
	fs.StringVar(&c.pckCRL, "pck-crl", "", "PCK CA CRL `file` (DER, PEM or hex)")
	fs.StringVar(&c.pckCRLChain, "pck-crl-chain", "", "PEM `file` of the PCK CRL issuer chain")
	fs.StringVar(&c.rootCRL, "root-crl", "", "Intel SGX Root CA CRL `file` (DER, PEM or hex)")
	fs.StringVar(&c.qvl, "qvl-collateral", "", "dcap-qvl collateral JSON `file` (all of the above in one)")
}

func (c *collateralFiles) empty() bool { return *c == collateralFiles{} }

// load reads the collateral; relative names are resolved against dir.
func (c *collateralFiles) load(dir string) (*pcs.Collateral, error) {
	read := func(name string) ([]byte, error) {
		if name == "" {
			return nil, nil
		}
		if dir != "" && !filepath.IsAbs(name) {
			name = filepath.Join(dir, name)
		}
		return readInput(name)
	}
	if c.qvl != "" {
		if c.tcbInfo != "" || c.qeIdentity != "" || c.pckCRL != "" || c.rootCRL != "" {
			return nil, errors.New("--qvl-collateral excludes the separate collateral flags")
		}
		b, err := read(c.qvl)
		if err != nil {
			return nil, err
		}
		return pcs.ParseQVLCollateral(b)
	}
	if c.fortanixTCB != "" {
		return c.loadFortanix(read)
	}
	if c.tcbInfo == "" || c.qeIdentity == "" {
		return nil, errors.New("collateral needs both --tcb-info and --qe-identity")
	}
	files := make(map[string][]byte)
	for _, n := range []string{c.tcbInfo, c.tcbInfoChain, c.qeIdentity, c.qeIdentityChain, c.pckCRL, c.pckCRLChain, c.rootCRL} {
		b, err := read(n)
		if err != nil {
			return nil, err
		}
		files[n] = b
	}
	qeChain := files[c.qeIdentityChain]
	if c.qeIdentityChain == "" {
		qeChain = files[c.tcbInfoChain]
	}
	var col pcs.Collateral
	var err error
	if col.TCBInfo, err = pcs.ParseTCBInfo(files[c.tcbInfo], files[c.tcbInfoChain]); err != nil {
		return nil, fmt.Errorf("TCB info %s: %w", c.tcbInfo, err)
	}
	if col.QEIdentity, err = pcs.ParseQEIdentity(files[c.qeIdentity], qeChain); err != nil {
		return nil, fmt.Errorf("QE identity %s: %w", c.qeIdentity, err)
	}
	if c.pckCRL != "" {
		if col.PCKCRL, err = pcs.ParseCRL(files[c.pckCRL], files[c.pckCRLChain]); err != nil {
			return nil, fmt.Errorf("PCK CRL %s: %w", c.pckCRL, err)
		}
	}
	if c.rootCRL != "" {
		if col.RootCRL, err = pcs.ParseCRL(files[c.rootCRL], nil); err != nil {
			return nil, fmt.Errorf("root CRL %s: %w", c.rootCRL, err)
		}
	}
	return &col, nil
}

func (c *collateralFiles) loadFortanix(read func(string) ([]byte, error)) (*pcs.Collateral, error) {
	var col pcs.Collateral
	b, err := read(c.fortanixTCB)
	if err != nil {
		return nil, err
	}
	if col.TCBInfo, err = pcs.ParseFortanixTCBInfo(b); err != nil {
		return nil, err
	}
	if b, err = read(c.fortanixQE); err != nil {
		return nil, err
	}
	if col.QEIdentity, err = pcs.ParseFortanixQEIdentity(b); err != nil {
		return nil, err
	}
	if c.fortanixCRL != "" {
		if b, err = read(c.fortanixCRL); err != nil {
			return nil, err
		}
		if col.PCKCRL, err = pcs.ParseFortanixCRL(b); err != nil {
			return nil, err
		}
	}
	return &col, nil
}

// readInput reads a file. It exists so that every read goes through one
// place; "-" (stdin) is handled by the caller that allows it.
func readInput(name string) ([]byte, error) {
	return os.ReadFile(name)
}

// readCerts reads every certificate of a PEM file.
func readCerts(name string) ([]*x509.Certificate, error) {
	b, err := readInput(name)
	if err != nil {
		return nil, err
	}
	var out []*x509.Certificate
	for {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			break
		}
		if blk.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: no PEM certificate", name)
	}
	return out, nil
}

func parseHex32List(vals []string, what string) ([][32]byte, error) {
	var out [][32]byte
	for _, s := range vals {
		b, err := hex.DecodeString(strings.TrimPrefix(s, "0x"))
		if err != nil || len(b) != 32 {
			return nil, fmt.Errorf("--%s %q: want 64 hex digits", what, s)
		}
		out = append(out, [32]byte(b))
	}
	return out, nil
}

func parseStatuses(vals []string) ([]attestation.TCBStatus, error) {
	var out []attestation.TCBStatus
	for _, s := range vals {
		if s == "all" {
			out = append(out, allStatuses()...)
			continue
		}
		st := attestation.TCBStatus(s)
		if !st.Known() {
			return nil, fmt.Errorf("--accept-status: unknown TCB status %q", s)
		}
		out = append(out, st)
	}
	return out, nil
}

func (e *env) verify(fs *flag.FlagSet) cli.RunFunc {
	at := fs.String("at", "", "verification `time`, RFC 3339 (default now)")
	jsonOut := fs.Bool("json", false, "print JSON")
	var rootFiles, accept, mrenclave, mrsigner listFlag
	fs.Var(&rootFiles, "root", "PEM `file` of trusted roots, repeatable (default: Intel SGX Root CA and IAS root, compiled in)")
	fs.Var(&accept, "accept-status", "accepted TCB `statuses`, comma-separated, or \"all\" (default UpToDate,SWHardeningNeeded,ConfigurationNeeded,ConfigurationAndSWHardeningNeeded)")
	fs.Var(&mrenclave, "mrenclave", "allowed MRENCLAVE `hex` values, comma-separated (default any)")
	fs.Var(&mrsigner, "mrsigner", "allowed MRSIGNER `hex` values, comma-separated (default any)")
	allowDebug := fs.Bool("allow-debug", false, "accept debug enclaves")
	attOnly := fs.Bool("attestation-only", false, "RA-TLS certificate: do not require the attestation to bind the certificate key")
	simSeed := fs.String("sim-seed", "", "trust the sim backend's dev root made from `seed` (\"default\": its default seed) and use its dev collateral")
	iasSig := fs.String("ias-sig", "", "`file` with the base64 IAS signature of a bare report body")
	iasChain := fs.String("ias-chain", "", "`file` with the URL-encoded PEM IAS signing chain of a bare report body")
	var cf collateralFiles
	cf.register(fs)
	return func(ctx context.Context, pos []string) error {
		var err error
		if len(pos) != 1 {
			return cli.Usagef("want exactly one FILE")
		}
		file := pos[0]

		cfg := verifyConfig{at: e.now().UTC(), attestationOnly: *attOnly}
		if *at != "" {
			if cfg.at, err = time.Parse(time.RFC3339Nano, *at); err != nil {
				return fmt.Errorf("--at: %w", err)
			}
		}
		cfg.policy.AllowDebug = *allowDebug
		if cfg.policy.AcceptedTCBStatuses, err = parseStatuses(accept); err != nil {
			return err
		}
		if len(accept) == 0 {
			cfg.policy.AcceptedTCBStatuses = defaultStatuses()
		}
		if cfg.policy.AllowedMRENCLAVE, err = parseHex32List(mrenclave, "mrenclave"); err != nil {
			return err
		}
		if cfg.policy.AllowedMRSIGNER, err = parseHex32List(mrsigner, "mrsigner"); err != nil {
			return err
		}
		switch {
		case *simSeed != "":
			seed := *simSeed
			if seed == "default" {
				seed = sim.DefaultSeed
			}
			pki, err := sim.NewPKI([]byte(seed))
			if err != nil {
				return err
			}
			cfg.policy.DCAPRoots = []*x509.Certificate{pki.Root()}
			if !cf.empty() {
				return errors.New("--sim-seed brings its own collateral; drop the collateral flags")
			}
			if cfg.collateral, err = pki.Collateral(cfg.at); err != nil {
				return err
			}
		case len(rootFiles) > 0:
			for _, f := range rootFiles {
				cs, err := readCerts(f)
				if err != nil {
					return fmt.Errorf("--root: %w", err)
				}
				// Roots are anchored by subject and key, so offering each to
				// both verifiers cannot make one trust the other's.
				cfg.policy.DCAPRoots = append(cfg.policy.DCAPRoots, cs...)
				cfg.policy.IASRoots = append(cfg.policy.IASRoots, cs...)
			}
		default:
			cfg.policy.DCAPRoots = roots.DCAP()
			cfg.policy.IASRoots = roots.IAS()
		}
		if *simSeed == "" && !cf.empty() {
			if cfg.collateral, err = cf.load(""); err != nil {
				return err
			}
		}

		var data []byte
		if file == "-" {
			data, err = io.ReadAll(e.stdin)
		} else {
			data, err = readInput(file)
		}
		if err != nil {
			return err
		}
		var sig, chain []byte
		if *iasSig != "" {
			if sig, err = readInput(*iasSig); err != nil {
				return err
			}
		}
		if *iasChain != "" {
			if chain, err = readInput(*iasChain); err != nil {
				return err
			}
		}
		ev, err := loadEvidence(data, sig, chain)
		if err != nil {
			return err
		}
		out, verr := verifyEvidence(ev, cfg)
		rep := newVerifyReport(file, ev.format, cfg.at, out, verr)
		if *jsonOut {
			if err := writeJSON(e.stdout, rep); err != nil {
				return err
			}
		} else {
			rep.writeText(e.stdout)
		}
		if verr != nil {
			return fmt.Errorf("%s: REJECT: %w", file, verr)
		}
		return nil
	}
}

// resultJSON is an attestation.Result for printing: hex strings, not byte
// arrays.
type resultJSON struct {
	Kind        string    `json:"kind"`
	MRENCLAVE   string    `json:"mrenclave"`
	MRSIGNER    string    `json:"mrsigner"`
	ISVProdID   uint16    `json:"isv_prod_id"`
	ISVSVN      uint16    `json:"isv_svn"`
	Debug       bool      `json:"debug"`
	Attributes  string    `json:"attributes"`
	CPUSVN      string    `json:"cpu_svn"`
	ReportData  string    `json:"report_data"`
	TCBStatus   string    `json:"tcb_status"`
	RawStatus   string    `json:"raw_status,omitempty"`
	AdvisoryIDs []string  `json:"advisory_ids"`
	QETCBStatus string    `json:"qe_tcb_status,omitempty"`
	FMSPC       string    `json:"fmspc,omitempty"`
	TCBDate     time.Time `json:"tcb_date,omitzero"`
	Timestamp   time.Time `json:"timestamp"`
}

func toJSON(r *attestation.Result) *resultJSON {
	if r == nil {
		return nil
	}
	adv := r.AdvisoryIDs
	if adv == nil {
		adv = []string{}
	}
	return &resultJSON{
		Kind:        string(r.Kind),
		MRENCLAVE:   hex.EncodeToString(r.MRENCLAVE[:]),
		MRSIGNER:    hex.EncodeToString(r.MRSIGNER[:]),
		ISVProdID:   r.ISVProdID,
		ISVSVN:      r.ISVSVN,
		Debug:       r.Debug(),
		Attributes:  hex.EncodeToString(r.Attributes[:]),
		CPUSVN:      hex.EncodeToString(r.CPUSVN[:]),
		ReportData:  hex.EncodeToString(r.ReportData[:]),
		TCBStatus:   string(r.TCBStatus),
		RawStatus:   r.RawStatus,
		AdvisoryIDs: adv,
		QETCBStatus: string(r.QETCBStatus),
		FMSPC:       hex.EncodeToString(r.FMSPC),
		TCBDate:     r.TCBDate,
		Timestamp:   r.Timestamp,
	}
}

// verifyReport is the output of attestation verify.
type verifyReport struct {
	File       string      `json:"file"`
	Format     string      `json:"format"`
	VerifiedAt time.Time   `json:"verified_at"`
	Verdict    string      `json:"verdict"` // "accept" or "reject"
	Error      string      `json:"error,omitempty"`
	KeyBinding string      `json:"key_binding,omitempty"`
	Result     *resultJSON `json:"result,omitempty"`
}

func newVerifyReport(file, format string, at time.Time, out outcome, err error) *verifyReport {
	r := &verifyReport{File: file, Format: format, VerifiedAt: at, Verdict: "accept", KeyBinding: out.keyBinding, Result: toJSON(out.res)}
	if err != nil {
		r.Verdict = "reject"
		r.Error = oneLine(err.Error())
	}
	return r
}

func (r *verifyReport) writeText(w io.Writer) {
	tw := tabwriter.NewWriter(w, 0, 4, 1, ' ', 0)
	line := func(k, v string) { fmt.Fprintf(tw, "%s:\t%s\n", k, v) }
	line("file", r.File)
	line("format", r.Format)
	line("verified at", r.VerifiedAt.Format(time.RFC3339))
	if r.Error != "" {
		line("verdict", "REJECT ("+r.Error+")")
	} else {
		line("verdict", "ACCEPT")
	}
	if r.KeyBinding != "" {
		line("key binding", r.KeyBinding)
	}
	if res := r.Result; res != nil {
		line("kind", res.Kind)
		line("MRENCLAVE", res.MRENCLAVE)
		line("MRSIGNER", res.MRSIGNER)
		line("ISV prod ID", fmt.Sprint(res.ISVProdID))
		line("ISV SVN", fmt.Sprint(res.ISVSVN))
		line("debug", fmt.Sprint(res.Debug))
		line("attributes", res.Attributes)
		line("CPU SVN", res.CPUSVN)
		line("report data", res.ReportData)
		status := res.TCBStatus
		if res.RawStatus != "" && res.RawStatus != res.TCBStatus {
			status += " (" + res.RawStatus + ")"
		}
		line("TCB status", status)
		line("advisories", strings.Join(res.AdvisoryIDs, ", "))
		if res.QETCBStatus != "" {
			line("QE TCB status", res.QETCBStatus)
		}
		if res.FMSPC != "" {
			line("FMSPC", res.FMSPC)
		}
		if !res.TCBDate.IsZero() {
			line("TCB date", res.TCBDate.Format(time.RFC3339))
		}
		line("timestamp", res.Timestamp.Format(time.RFC3339Nano))
	}
	tw.Flush()
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func (e *env) simQuote(fs *flag.FlagSet) cli.RunFunc {
	seed := fs.String("seed", sim.DefaultSeed, "seed of the dev PKI that signs the quote")
	rd := fs.String("report-data", "", "report data, up to 64 bytes in `hex` (zero-padded)")
	binary := fs.String("binary", "", "enclave binary `file`; MRENCLAVE is its SHA-256 (default: SHA-256 of \"integritee-cli sim enclave\")")
	debug := fs.Bool("debug", false, "mark the enclave as a debug enclave")
	hexOut := fs.Bool("hex", false, "write hex text instead of binary")
	jsonOut := fs.Bool("json", false, "write JSON {quote, mrenclave, report_data}")
	return func(ctx context.Context, pos []string) error {
		if err := cli.NoArgs(pos); err != nil {
			return err
		}
		var reportData [64]byte
		if *rd != "" {
			b, err := hex.DecodeString(strings.TrimPrefix(*rd, "0x"))
			if err != nil || len(b) > 64 {
				return errors.New("--report-data: want at most 64 bytes of hex")
			}
			copy(reportData[:], b)
		}
		pki, err := sim.NewPKI([]byte(*seed))
		if err != nil {
			return err
		}
		cfg := sim.Config{PKI: pki, EnclaveBinary: *binary, Debug: *debug}
		if *binary == "" {
			m := simMeasurement()
			cfg.Measurement = &m
		}
		b, err := sim.New(cfg)
		if err != nil {
			return err
		}
		q, err := b.Quote(reportData)
		if err != nil {
			return err
		}
		switch {
		case *jsonOut:
			m := b.Measurement()
			return writeJSON(e.stdout, map[string]string{
				"quote":       hex.EncodeToString(q),
				"mrenclave":   hex.EncodeToString(m[:]),
				"report_data": hex.EncodeToString(reportData[:]),
			})
		case *hexOut:
			_, err = fmt.Fprintln(e.stdout, hex.EncodeToString(q))
		default:
			_, err = e.stdout.Write(q)
		}
		return err
	}
}
