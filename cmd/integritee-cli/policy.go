package main

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/integritee-go/integritee/attestation"
	"github.com/integritee-go/integritee/attestation/pcs"
	"github.com/integritee-go/integritee/chain/teerex"
	"github.com/integritee-go/integritee/internal/cli"
)

func (e *env) policyGroup() *cli.Command {
	return &cli.Command{
		Name:  "policy",
		Short: "show the on-chain attestation policy",
		Commands: []*cli.Command{
			{Name: "show", Usage: "[--node URL] [--json]", Short: "roots, collateral, accepted statuses, allowlist, renewal and liveness periods", Setup: e.policyShow},
		},
	}
}

// policyView summarises a policy: the documents by what identifies them.
type policyView struct {
	DCAPRoots         []certView              `json:"dcap_roots"`
	IASRoots          []certView              `json:"ias_roots"`
	TCBInfos          []docView               `json:"tcb_infos"`
	QEIdentity        *docView                `json:"qe_identity,omitempty"`
	PCKCRLs           int                     `json:"pck_crls"`
	RootCRL           bool                    `json:"root_crl"`
	AcceptedStatuses  []attestation.TCBStatus `json:"accepted_statuses"`
	AllowDebug        bool                    `json:"allow_debug"`
	AllowAnyMRENCLAVE bool                    `json:"allow_any_mrenclave"`
	Allowlist         teerex.MRENCLAVEs       `json:"allowlist"`
	RenewalPeriod     string                  `json:"renewal_period"`
	// LivenessPeriod is "0s" when the policy has none.
	LivenessPeriod string `json:"liveness_period"`
	IASMaxAge      string `json:"ias_max_age"`
	Height         int64  `json:"height"`
}

type certView struct {
	Subject string    `json:"subject"`
	SHA256  string    `json:"sha256"`
	Expires time.Time `json:"not_after"`
}

type docView struct {
	FMSPC      string    `json:"fmspc,omitempty"`
	IssueDate  time.Time `json:"issue_date"`
	NextUpdate time.Time `json:"next_update"`
}

func certViews(ders [][]byte) []certView {
	out := make([]certView, 0, len(ders))
	for _, d := range ders {
		sum := sha256.Sum256(d)
		v := certView{SHA256: hex.EncodeToString(sum[:])}
		if c, err := x509.ParseCertificate(d); err == nil {
			v.Subject, v.Expires = c.Subject.CommonName, c.NotAfter
		}
		out = append(out, v)
	}
	return out
}

func newPolicyView(p *teerex.Policy, l teerex.MRENCLAVEs, h int64) policyView {
	v := policyView{
		DCAPRoots: certViews(p.DCAPRoots), IASRoots: certViews(p.IASRoots),
		TCBInfos: []docView{}, PCKCRLs: len(p.PCKCRLs), RootCRL: p.RootCRL != nil,
		AcceptedStatuses: p.AcceptedStatuses, AllowDebug: p.AllowDebug, AllowAnyMRENCLAVE: p.AllowAnyMRENCLAVE,
		Allowlist: l, RenewalPeriod: p.RenewalPeriod().String(), LivenessPeriod: p.Liveness().String(), IASMaxAge: p.IASMaxAge().String(), Height: h,
	}
	if v.Allowlist == nil {
		v.Allowlist = teerex.MRENCLAVEs{}
	}
	for _, d := range p.TCBInfos {
		if s, err := pcs.ParseTCBInfo(d.Envelope, d.Chain); err == nil {
			v.TCBInfos = append(v.TCBInfos, docView{FMSPC: hex.EncodeToString(s.Info.FMSPC[:]), IssueDate: s.Info.IssueDate, NextUpdate: s.Info.NextUpdate})
		}
	}
	if p.QEIdentity != nil {
		if s, err := pcs.ParseQEIdentity(p.QEIdentity.Envelope, p.QEIdentity.Chain); err == nil {
			v.QEIdentity = &docView{IssueDate: s.Identity.IssueDate, NextUpdate: s.Identity.NextUpdate}
		}
	}
	return v
}

func (e *env) policyShow(fs *flag.FlagSet) cli.RunFunc {
	var nf nodeFlags
	nf.register(fs, e)
	return func(ctx context.Context, pos []string) error {
		if err := cli.NoArgs(pos); err != nil {
			return err
		}
		ctx, cancel, c, err := nf.connect(ctx)
		if err != nil {
			return err
		}
		defer cancel()
		p, h, err := c.Policy(ctx)
		if err != nil {
			return err
		}
		l, _, err := c.AllowlistAt(ctx, h)
		if err != nil {
			return err
		}
		v := newPolicyView(p, l, h)
		if nf.json {
			return writeJSON(e.stdout, v)
		}
		writePolicy(e.stdout, &v)
		return nil
	}
}

func writePolicy(w io.Writer, v *policyView) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	line := func(k string, val any) { fmt.Fprintf(tw, "%s\t%v\n", k, val) }
	for _, r := range v.DCAPRoots {
		line("DCAP root", fmt.Sprintf("%s (sha256 %s…, until %s)", r.Subject, r.SHA256[:16], r.Expires.Format(time.DateOnly)))
	}
	for _, r := range v.IASRoots {
		line("IAS root", fmt.Sprintf("%s (sha256 %s…, until %s)", r.Subject, r.SHA256[:16], r.Expires.Format(time.DateOnly)))
	}
	if len(v.TCBInfos) == 0 {
		line("TCB infos", "none: no DCAP quote can register until sudo adds collateral")
	}
	for _, d := range v.TCBInfos {
		line("TCB info", fmt.Sprintf("FMSPC %s, valid %s to %s", d.FMSPC, d.IssueDate.Format(time.RFC3339), d.NextUpdate.Format(time.RFC3339)))
	}
	if v.QEIdentity != nil {
		line("QE identity", fmt.Sprintf("valid %s to %s", v.QEIdentity.IssueDate.Format(time.RFC3339), v.QEIdentity.NextUpdate.Format(time.RFC3339)))
	}
	line("CRLs", fmt.Sprintf("%d PCK, root %v", v.PCKCRLs, v.RootCRL))
	statuses := make([]string, len(v.AcceptedStatuses))
	for i, s := range v.AcceptedStatuses {
		statuses[i] = string(s)
	}
	line("accepted TCB statuses", strings.Join(statuses, ", "))
	line("debug enclaves", v.AllowDebug)
	if v.AllowAnyMRENCLAVE {
		line("MRENCLAVEs", "any (dev chain)")
	} else {
		line("MRENCLAVEs", fmt.Sprintf("%d allowlisted", len(v.Allowlist)))
	}
	for _, m := range v.Allowlist {
		line("  allowed", m)
	}
	line("renewal period", v.RenewalPeriod)
	if v.LivenessPeriod == "0s" {
		line("liveness period", "none (an enclave is active until its registration expires)")
	} else {
		line("liveness period", v.LivenessPeriod+" (an enclave without a keep_alive for that long is silent: inactive)")
	}
	line("IAS report max age", v.IASMaxAge)
	line("proved at height", v.Height)
	tw.Flush()
}
