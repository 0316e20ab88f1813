package keeper_test

import (
	"bytes"
	"encoding/hex"
	"testing"
	"time"

	"github.com/integritee-go/integritee/attestation"
	"github.com/integritee-go/integritee/attestation/dcap"
	"github.com/integritee-go/integritee/attestation/ias"
	"github.com/integritee-go/integritee/attestation/pcs"
	"github.com/integritee-go/integritee/chain/devnet"
	"github.com/integritee-go/integritee/chain/teerex"
	"github.com/integritee-go/integritee/chain/tx"
	"github.com/integritee-go/integritee/chain/types"
)

// Fixed times from SOURCES.md.
var (
	qvlTime  = time.Date(2025, 7, 19, 10, 1, 17, 0, time.UTC)          // dcap-qvl/sgx_quote
	test4TS  = time.Date(2020, 4, 26, 11, 16, 25, 349850000, time.UTC) // integritee TEST4 report
	tdxV5Now = time.Date(2026, 2, 3, 1, 0, 0, 0, time.UTC)             // go-tdx-guest quote_v5_sample
)

func mustHex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// qvlGenesis is the production genesis with the dcap-qvl collateral added
// and the quote's MRENCLAVE allowlisted.
func qvlGenesis(t testing.TB) *teerex.GenesisState {
	t.Helper()
	c, err := pcs.ParseQVLCollateral(readVector(t, "dcap-qvl/sgx_quote_collateral.json"))
	if err != nil {
		t.Fatal(err)
	}
	var m types.Hash
	copy(m[:], mustHex(t, "33d8736db756ed4997e04ba358d27833188f1932ff7b1d156904d3f560452fbb"))
	g := teerex.ProductionGenesis(m)
	if err := g.Policy.AddCollateral(c); err != nil {
		t.Fatal(err)
	}
	return &g
}

// The real Intel DCAP quote verifies on chain at its time with its
// collateral; its report data ("Hello, world!") binds no account, so the
// registration fails exactly at the signer binding.
func TestIntelDCAPVector(t *testing.T) {
	quote := teerex.Evidence{Kind: attestation.KindDCAP, Quote: readVector(t, "dcap-qvl/sgx_quote")}
	c := newChain(t, false, qvlTime, qvlGenesis(t))

	res, err := c.Teerex.Keeper.Verify(c.KV, &quote, qvlTime)
	wantErr(t, err)
	if res.TCBStatus != attestation.StatusConfigurationAndSWHardeningNeeded ||
		!equalStrings(res.AdvisoryIDs, []string{"INTEL-SA-00289", "INTEL-SA-00615"}) ||
		res.QETCBStatus != attestation.StatusUpToDate || res.Debug() ||
		hex.EncodeToString(res.MRENCLAVE[:]) != "33d8736db756ed4997e04ba358d27833188f1932ff7b1d156904d3f560452fbb" ||
		hex.EncodeToString(res.MRSIGNER[:]) != "815f42f11cf64430c30bab7816ba596a1da0130c3b028b673133a66cf9a3e0e6" ||
		!bytes.HasPrefix(res.ReportData[:], []byte("Hello, world!")) {
		t.Fatalf("verified result %+v", res)
	}

	tests := []struct {
		name    string
		dev     bool
		genesis *teerex.GenesisState
		at      time.Time
		want    []error
	}{
		{name: "at its time: verified, binding fails", genesis: qvlGenesis(t), at: qvlTime, want: []error{teerex.ErrSenderNotAttested}},
		{name: "one second later the collateral expired", genesis: qvlGenesis(t), at: qvlTime.Add(2 * time.Second),
			want: []error{teerex.ErrInvalidCollateral, dcap.ErrCollateral, pcs.ErrExpired}},
		{name: "production genesis has no collateral", genesis: ptr(teerex.ProductionGenesis()), at: qvlTime,
			want: []error{teerex.ErrNoCollateral}},
		{name: "dev chain trusts only the dev root", dev: true, genesis: devGenesisAt(t, qvlTime), at: qvlTime,
			want: []error{teerex.ErrUntrustedRoot}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := newChain(t, tc.dev, qvlTime, tc.genesis)
			c.at(tc.at)
			rejected(t, c.register(bob, quote, nil), tc.want...)
		})
	}
}

// TDX quotes verify their signatures under Intel's root but are not SGX
// enclaves: unsupported.
func TestIntelTDXVector(t *testing.T) {
	c := newChain(t, false, tdxV5Now, ptr(teerex.ProductionGenesis()))
	ev := teerex.Evidence{Kind: attestation.KindDCAP, Quote: readVector(t, "go-tdx-guest/quote_v5_sample.dat")}
	rejected(t, c.register(bob, ev, nil), teerex.ErrUnsupportedEvidence, dcap.ErrUnsupportedTEE)
}

func iasTEST4(t testing.TB) (teerex.Evidence, tx.Address) {
	t.Helper()
	ev, _, err := ias.EvidenceFromDER(readVector(t, "integritee-pallets/ra_dump_cert_TEST4.der"))
	if err != nil {
		t.Fatal(err)
	}
	var sender tx.Address
	copy(sender[:], readVector(t, "integritee-pallets/enclave-signing-pubkey-TEST4.bin"))
	return teerex.Evidence{Kind: attestation.KindIAS, Report: ev.Body, Signature: ev.Signature, Certs: derChain(ev.Chain)}, sender
}

// The Integritee TEST4 IAS report verifies at its time. Its report data is
// the raw enclave signing key, as the original teerex wanted, not our
// sha256(sender || shielding key): the registration fails with
// ErrSenderNotAttested, after verification passed.
func TestIntelIASVector(t *testing.T) {
	ev, sender := iasTEST4(t)
	c := newChain(t, false, test4TS, ptr(teerex.ProductionGenesis()))
	res, err := c.Teerex.Keeper.Verify(c.KV, &ev, test4TS.Add(time.Hour))
	wantErr(t, err)
	if res.Kind != attestation.KindIAS || res.TCBStatus != attestation.StatusConfigurationNeeded || !res.Debug() ||
		hex.EncodeToString(res.MRENCLAVE[:]) != "7a3454ec8f42e265cb5be7dfd111e1d95ac6076ed82a0948b2e2a45cf17b62a0" ||
		!bytes.Equal(res.ReportData[:32], sender[:]) || !res.Timestamp.Equal(test4TS) {
		t.Fatalf("verified result %+v", res)
	}

	tamperedReport := ev
	tamperedReport.Report = bytes.Clone(ev.Report)
	tamperedReport.Report[len(ev.Report)/2] ^= 0x01
	tamperedSig := ev
	tamperedSig.Signature = bytes.Clone(ev.Signature)
	tamperedSig.Signature[7] ^= 0x80
	noChain := ev
	noChain.Certs = [][]byte{pcsRootDER(t)}

	tests := []struct {
		name   string
		ev     teerex.Evidence
		sender tx.Address
		at     time.Time
		want   []error
	}{
		{name: "verified, report data is the raw key", ev: ev, sender: sender, at: test4TS.Add(time.Hour), want: []error{teerex.ErrSenderNotAttested}},
		{name: "last instant of freshness", ev: ev, sender: sender, at: test4TS.Add(24 * time.Hour), want: []error{teerex.ErrSenderNotAttested}},
		{name: "stale", ev: ev, sender: sender, at: test4TS.Add(24*time.Hour + time.Millisecond),
			want: []error{teerex.ErrStaleEvidence, attestation.ErrTooOld}},
		{name: "from the future", ev: ev, sender: sender, at: test4TS.Add(-time.Second),
			want: []error{teerex.ErrEvidenceFromFuture, attestation.ErrFromFuture}},
		{name: "tampered report", ev: tamperedReport, sender: sender, at: test4TS.Add(time.Hour),
			want: []error{teerex.ErrInvalidSignature, ias.ErrSignature}},
		{name: "tampered signature", ev: tamperedSig, sender: sender, at: test4TS.Add(time.Hour),
			want: []error{teerex.ErrInvalidSignature, ias.ErrSignature}},
		{name: "signed by another root", ev: noChain, sender: sender, at: test4TS.Add(time.Hour),
			want: []error{teerex.ErrUntrustedRoot}},
		{name: "after the signing certificate expired", ev: ev, sender: sender, at: time.Date(2026, 11, 21, 0, 0, 0, 0, time.UTC),
			want: []error{teerex.ErrInvalidCertificate, ias.ErrUntrustedSigner}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := newChain(t, false, test4TS, ptr(teerex.ProductionGenesis()))
			c.at(tc.at)
			rejected(t, c.register(tc.sender, tc.ev, nil), tc.want...)
		})
	}
}

func pcsRootDER(t testing.TB) []byte {
	t.Helper()
	return teerex.ProductionPolicy().DCAPRoots[0]
}

func devGenesisAt(t testing.TB, at time.Time) *teerex.GenesisState {
	t.Helper()
	g, err := devnet.TeerexGenesis(at)
	if err != nil {
		t.Fatal(err)
	}
	return &g
}

func ptr[T any](v T) *T { return &v }

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
