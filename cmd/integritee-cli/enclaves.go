package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/integritee-go/integritee/chain/bridge"
	"github.com/integritee-go/integritee/chain/teerex"
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

// enclaveView is a registration as the CLI shows it: with its state at the
// chain's latest block time under the current policy.
type enclaveView struct {
	teerex.Enclave
	// Status is "active", "expired", "silent" (no keep_alive within the
	// liveness period: its worker stopped, its machine may be lost), "not
	// allowed" or "debug not allowed", as the enclave bridge would judge
	// the enclave at the block time.
	Status    string    `json:"status"`
	ExpiresAt time.Time `json:"expires_at"`
	// LastSeen is the enclave's latest registration or keep_alive;
	// SilentAfter, under a policy with a liveness period, when it is (or
	// was) silent without another keep_alive.
	LastSeen    time.Time  `json:"last_seen"`
	SilentAfter *time.Time `json:"silent_after,omitempty"`
	// Confirmed is the enclave's latest confirmation of the shard's
	// processed blocks (shard show only).
	Confirmed *bridge.Confirmation `json:"confirmed,omitempty"`
}

// judge tells whether e may act at time now under policy p and allowlist
// l, by the chain's rule (teerex.Enclave.CheckActive).
func judge(e teerex.Enclave, p *teerex.Policy, l teerex.MRENCLAVEs, now time.Time) enclaveView {
	v := enclaveView{Enclave: e, ExpiresAt: e.ExpiresAt(p.RenewalPeriod()), LastSeen: e.LastSeen(), Status: "active"}
	if d := p.Liveness(); d > 0 {
		at := v.LastSeen.Add(d)
		v.SilentAfter = &at
	}
	switch err := e.CheckActive(p, l, now); {
	case err == nil:
	case errors.Is(err, teerex.ErrExpired):
		v.Status = "expired"
	case errors.Is(err, teerex.ErrSilent):
		v.Status = "silent"
	case errors.Is(err, teerex.ErrDebugEnclave):
		v.Status = "debug not allowed"
	default:
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
		return writeEnclaveList(e.stdout, views, h)
	}
}

// writeEnclaveList is the text of enclaves list.
func writeEnclaveList(w io.Writer, views []enclaveView, h int64) error {
	if len(views) == 0 {
		fmt.Fprintf(w, "no enclaves registered (height %d)\n", h)
		return nil
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SIGNER\tMRENCLAVE\tKIND\tTCB\tSTATUS\tLAST SEEN\tEXPIRES\tWORKER URL")
	for _, v := range views {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", v.Signer, v.MRENCLAVE, v.Kind, v.TCBStatus, v.Status,
			v.LastSeen.UTC().Format(time.RFC3339), v.ExpiresAt.UTC().Format(time.RFC3339), v.WorkerURL)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(w, "%d enclaves, proved at height %d\n", len(views), h)
	return nil
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
		seen := v.LastSeen.Format(time.RFC3339) + " (registration)"
		if v.AliveAt > v.AttestedAt {
			seen = v.LastSeen.Format(time.RFC3339) + " (keep_alive)"
		}
		line("last seen", seen)
		if v.SilentAfter != nil {
			line("silent after", v.SilentAfter.UTC().Format(time.RFC3339)+" without a keep_alive")
		}
		if v.EvidenceTime != 0 {
			line("IAS report time", time.Unix(0, v.EvidenceTime).UTC().Format(time.RFC3339))
		}
		line("registered / attested height", fmt.Sprintf("%d / %d", v.RegisteredHeight, v.AttestedHeight))
		line("proved at height", h)
		return tw.Flush()
	}
}
