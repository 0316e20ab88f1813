package main

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/integritee-go/integritee/attestation"
	"github.com/integritee-go/integritee/attestation/pcs"
	"github.com/integritee-go/integritee/chain/bridge"
	"github.com/integritee-go/integritee/chain/teerex"
	"github.com/integritee-go/integritee/chain/tx"
	"github.com/integritee-go/integritee/chain/types"
	"github.com/integritee-go/integritee/client"
	"github.com/integritee-go/integritee/internal/cli"
)

func (e *env) enclavesGroup() *cli.Command {
	return &cli.Command{
		Name:  "enclaves",
		Short: "list and show the enclaves registered on chain (teerex)",
		Commands: []*cli.Command{
			{Name: "list", Usage: "[--mrenclave HEX] [--node URL] [--json]", Short: "list registrations, all or of one measurement", Setup: e.enclavesList},
			{Name: "show", Usage: "SIGNER [--node URL] [--json]", Short: "show one registration (signer: hex address or account name)", Setup: e.enclavesShow},
		},
	}
}

func (e *env) shardGroup() *cli.Command {
	return &cli.Command{
		Name:  "shard",
		Short: "show what the chain knows of a shard (enclave bridge)",
		Commands: []*cli.Command{
			{Name: "show", Usage: "SHARD [--node URL] [--json]", Short: "configuration, vault balance, confirmations and enclaves of a shard", Setup: e.shardShow},
		},
	}
}

func (e *env) policyGroup() *cli.Command {
	return &cli.Command{
		Name:  "policy",
		Short: "show the on-chain attestation policy",
		Commands: []*cli.Command{
			{Name: "show", Usage: "[--node URL] [--json]", Short: "roots, collateral, accepted statuses, allowlist, renewal period", Setup: e.policyShow},
		},
	}
}

func (e *env) sudoGroup() *cli.Command {
	return &cli.Command{
		Name:  "sudo",
		Short: "governance calls signed by the sudo key",
		Commands: []*cli.Command{
			{Name: "allow-mrenclave", Usage: "HEX [--from NAME] [--node URL] [--json]", Short: "allow an enclave measurement to register", Setup: e.allow(true)},
			{Name: "disallow-mrenclave", Usage: "HEX [--from NAME] [--node URL] [--json]", Short: "disallow a measurement (its enclaves become inactive)", Setup: e.allow(false)},
		},
	}
}

// enclaveView is a registration as the CLI shows it: with its state at the
// chain's latest block time under the current policy.
type enclaveView struct {
	teerex.Enclave
	// Status is "active", "expired", "not allowed" or "debug not allowed",
	// as the enclave bridge would judge the enclave at the block time.
	Status    string    `json:"status"`
	ExpiresAt time.Time `json:"expires_at"`
	// Confirmed is the enclave's latest confirmation of the shard's
	// processed blocks (shard show only).
	Confirmed *bridge.Confirmation `json:"confirmed,omitempty"`
}

// judge tells whether e may act at time now under policy p and allowlist
// l, as teerex.Keeper.Active does.
func judge(e teerex.Enclave, p *teerex.Policy, l teerex.MRENCLAVEs, now time.Time) enclaveView {
	v := enclaveView{Enclave: e, ExpiresAt: e.ExpiresAt(p.RenewalPeriod()), Status: "active"}
	switch {
	case now.After(v.ExpiresAt):
		v.Status = "expired"
	case e.Debug && !p.AllowDebug:
		v.Status = "debug not allowed"
	case !p.AllowAnyMRENCLAVE && !slices.Contains(l, e.MRENCLAVE):
		v.Status = "not allowed"
	}
	return v
}

// judgeAll reads the policy, allowlist and block time of height h and
// judges es.
func judgeAll(ctx context.Context, c *client.Client, es []teerex.Enclave, h int64) ([]enclaveView, error) {
	p, _, err := c.PolicyAt(ctx, h)
	if err != nil {
		return nil, err
	}
	l, _, err := c.AllowlistAt(ctx, h)
	if err != nil {
		return nil, err
	}
	hdr, err := c.VerifiedHeader(ctx, h)
	if err != nil {
		return nil, err
	}
	out := make([]enclaveView, len(es))
	for i, e := range es {
		out[i] = judge(e, p, l, hdr.Time)
	}
	return out, nil
}

func (e *env) enclavesList(fs *flag.FlagSet) cli.RunFunc {
	var nf nodeFlags
	nf.register(fs, e)
	mr := fs.String("mrenclave", "", "only enclaves of this measurement (`hex`), i.e. of the shard it serves by default")
	return func(ctx context.Context, pos []string) error {
		if err := cli.NoArgs(pos); err != nil {
			return err
		}
		ctx, cancel, c, err := nf.connect(ctx)
		if err != nil {
			return err
		}
		defer cancel()
		var (
			es []teerex.Enclave
			h  int64
		)
		if *mr != "" {
			m, err := parseHash(*mr, "--mrenclave")
			if err != nil {
				return err
			}
			es, h, err = c.EnclavesOf(ctx, m)
			if err != nil {
				return err
			}
		} else if es, h, err = c.Enclaves(ctx); err != nil {
			return err
		}
		views, err := judgeAll(ctx, c, es, h)
		if err != nil {
			return err
		}
		if nf.json {
			return writeJSON(e.stdout, struct {
				Height   int64         `json:"height"`
				Enclaves []enclaveView `json:"enclaves"`
			}{h, views})
		}
		if len(views) == 0 {
			fmt.Fprintf(e.stdout, "no enclaves registered (height %d)\n", h)
			return nil
		}
		tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "SIGNER\tMRENCLAVE\tKIND\tTCB\tSTATUS\tEXPIRES\tWORKER URL")
		for _, v := range views {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", v.Signer, v.MRENCLAVE, v.Kind, v.TCBStatus, v.Status,
				v.ExpiresAt.UTC().Format(time.RFC3339), v.WorkerURL)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "%d enclaves, proved at height %d\n", len(views), h)
		return nil
	}
}

func (e *env) enclavesShow(fs *flag.FlagSet) cli.RunFunc {
	var nf nodeFlags
	nf.register(fs, e)
	ks := keystoreFlag(fs)
	return func(ctx context.Context, pos []string) error {
		who, err := exactlyOne(pos, "SIGNER")
		if err != nil {
			return err
		}
		a, err := resolve(who, *ks)
		if err != nil {
			return err
		}
		ctx, cancel, c, err := nf.connect(ctx)
		if err != nil {
			return err
		}
		defer cancel()
		en, h, err := c.Enclave(ctx, a.Address)
		if err != nil {
			return err
		}
		views, err := judgeAll(ctx, c, []teerex.Enclave{*en}, h)
		if err != nil {
			return err
		}
		v := views[0]
		if nf.json {
			return writeJSON(e.stdout, v)
		}
		tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
		line := func(k string, val any) { fmt.Fprintf(tw, "%s\t%v\n", k, val) }
		line("signer", v.Signer)
		line("status", v.Status)
		line("kind", v.Kind)
		line("MRENCLAVE", v.MRENCLAVE)
		line("MRSIGNER", v.MRSIGNER)
		line("ISV prod ID / SVN", fmt.Sprintf("%d / %d", v.ISVProdID, v.ISVSVN))
		line("debug", v.Debug)
		line("TCB status", v.TCBStatus)
		if len(v.AdvisoryIDs) > 0 {
			line("advisories", strings.Join(v.AdvisoryIDs, ", "))
		}
		line("shielding key hash", v.ShieldingKeyHash)
		line("worker URL", v.WorkerURL)
		line("attested at", v.Attested().Format(time.RFC3339))
		line("expires at", v.ExpiresAt.UTC().Format(time.RFC3339))
		if v.EvidenceTime != 0 {
			line("IAS report time", time.Unix(0, v.EvidenceTime).UTC().Format(time.RFC3339))
		}
		line("registered / attested height", fmt.Sprintf("%d / %d", v.RegisteredHeight, v.AttestedHeight))
		line("proved at height", h)
		return tw.Flush()
	}
}

func (e *env) shardShow(fs *flag.FlagSet) cli.RunFunc {
	var nf nodeFlags
	nf.register(fs, e)
	return func(ctx context.Context, pos []string) error {
		arg, err := exactlyOne(pos, "SHARD")
		if err != nil {
			return err
		}
		id, err := parseHash(arg, "shard")
		if err != nil {
			return err
		}
		ctx, cancel, c, err := nf.connect(ctx)
		if err != nil {
			return err
		}
		defer cancel()
		st, err := c.Shard(ctx, id)
		if err != nil {
			return err
		}
		serving := st.Shard.MRENCLAVEAt(uint64(st.Height))
		es, _, err := c.EnclavesOfAt(ctx, serving, st.Height)
		if err != nil {
			return err
		}
		views, err := judgeAll(ctx, c, es, st.Height)
		if err != nil {
			return err
		}
		signers := make([]tx.Address, len(views))
		for i, v := range views {
			signers[i] = v.Signer
		}
		confs, err := c.Confirmations(ctx, id, signers, st.Height)
		if err != nil {
			return err
		}
		for i := range views {
			if conf, ok := confs[views[i].Signer]; ok {
				views[i].Confirmed = &conf
			}
		}
		if nf.json {
			return writeJSON(e.stdout, struct {
				bridge.Shard
				Recorded     bool          `json:"recorded"`
				VaultBalance uint64        `json:"vault_balance"`
				Serving      types.Hash    `json:"serving_mrenclave"`
				Registered   []enclaveView `json:"registered_enclaves"`
				Height       int64         `json:"height"`
			}{st.Shard, st.Recorded, st.VaultBalance, serving, views, st.Height})
		}
		s := st.Shard
		tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
		line := func(k string, val any) { fmt.Fprintf(tw, "%s\t%v\n", k, val) }
		line("shard", s.ID)
		if !st.Recorded {
			line("record", "none yet (default configuration: served by the measurement equal to the shard ID)")
		}
		line("vault", s.Vault)
		line("vault balance", formatAmount(st.VaultBalance))
		line("MRENCLAVE", fmt.Sprintf("%s (since height %d)", s.Config.MRENCLAVE, s.Config.Since))
		if s.Pending != nil {
			line("pending MRENCLAVE", fmt.Sprintf("%s from height %d", s.Pending.MRENCLAVE, s.Pending.Since))
		}
		if s.Latest != nil {
			line("latest confirmed", confirmation(s.Latest))
		}
		for _, v := range views {
			if v.Confirmed != nil {
				line("  by "+v.Signer.String()[:16]+"…", confirmation(v.Confirmed))
			}
		}
		if s.Divergences == 0 {
			line("divergences", "none")
		} else {
			line("divergences", fmt.Sprintf("%d heights with differing confirmations, last %d", s.Divergences, s.LastDivergence))
		}
		active := 0
		for _, v := range views {
			if v.Status == "active" {
				active++
			}
		}
		line("registered enclaves", fmt.Sprintf("%d of the serving measurement, %d active", len(views), active))
		for _, v := range views {
			line("  "+v.Signer.String(), v.Status+" "+v.WorkerURL)
		}
		line("proved at height", st.Height)
		return tw.Flush()
	}
}

func confirmation(c *bridge.Confirmation) string {
	return fmt.Sprintf("height %d, state %s, block %s (in block %d, by %s)", c.Height, c.StateHash, c.BlockHash, c.ConfirmedHeight, c.Enclave)
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
	IASMaxAge         string                  `json:"ias_max_age"`
	Height            int64                   `json:"height"`
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
		Allowlist: l, RenewalPeriod: p.RenewalPeriod().String(), IASMaxAge: p.IASMaxAge().String(), Height: h,
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
	line("IAS report max age", v.IASMaxAge)
	line("proved at height", v.Height)
	tw.Flush()
}

func (e *env) allow(allow bool) func(fs *flag.FlagSet) cli.RunFunc {
	return func(fs *flag.FlagSet) cli.RunFunc {
		var nf nodeFlags
		nf.register(fs, e)
		ks := keystoreFlag(fs)
		from := fs.String("from", "alice", "the sudo key: dev account or keystore `name`")
		return func(ctx context.Context, pos []string) error {
			arg, err := exactlyOne(pos, "MRENCLAVE")
			if err != nil {
				return err
			}
			m, err := parseHash(arg, "MRENCLAVE")
			if err != nil {
				return err
			}
			sender, err := signer(*from, *ks)
			if err != nil {
				return fmt.Errorf("--from: %w", err)
			}
			ctx, cancel, c, err := nf.connect(ctx)
			if err != nil {
				return err
			}
			defer cancel()
			submit := c.AllowMRENCLAVE
			if !allow {
				submit = c.DisallowMRENCLAVE
			}
			sub, err := submit(ctx, sender.key, m)
			if err != nil {
				return err
			}
			out := struct {
				txOutput
				MRENCLAVE types.Hash `json:"mrenclave"`
				Allowed   bool       `json:"allowed"`
				Sudo      tx.Address `json:"sudo"`
			}{newTxOutput(sub), m, allow, sender.Address}
			if nf.json {
				return writeJSON(e.stdout, out)
			}
			verb := "allowed"
			if !allow {
				verb = "disallowed"
			}
			fmt.Fprintf(e.stdout, "%s MRENCLAVE %s\ntx %s in block %d, fee %s\n", verb, m, out.Hash, out.Height, formatAmount(out.Fee))
			return nil
		}
	}
}
