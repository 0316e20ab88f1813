package main

import (
	"context"
	"flag"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/integritee-go/integritee/chain/bridge"
	"github.com/integritee-go/integritee/chain/tx"
	"github.com/integritee-go/integritee/chain/types"
	"github.com/integritee-go/integritee/internal/cli"
)

func (e *env) shardGroup() *cli.Command {
	return &cli.Command{
		Name:  "shard",
		Short: "show what the chain knows of a shard (enclave bridge), move it to another release",
		Commands: []*cli.Command{
			{Name: "show", Usage: "SHARD [--node URL] [--json]", Short: "configuration, vault balance, confirmations and enclaves of a shard", Setup: e.shardShow},
			{Name: "update-config", Usage: "SHARD MRENCLAVE [--enactment-height H | --enact-in N] [--from NAME] [--node URL] [--json]", Short: "move a shard to another enclave release from a height (sudo; docs/upgrades.md)", Setup: e.shardUpdateConfig},
		},
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
		active := 0
		for _, v := range views {
			if v.Status == "active" {
				active++
			}
		}
		warnings := shardWarnings(views, st.Shard.Latest)
		if nf.json {
			return writeJSON(e.stdout, struct {
				bridge.Shard
				Recorded     bool          `json:"recorded"`
				VaultBalance uint64        `json:"vault_balance"`
				Serving      types.Hash    `json:"serving_mrenclave"`
				Registered   []enclaveView `json:"registered_enclaves"`
				Warnings     []string      `json:"warnings,omitempty"`
				Height       int64         `json:"height"`
			}{st.Shard, st.Recorded, st.VaultBalance, serving, views, warnings, st.Height})
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
		line("registered enclaves", fmt.Sprintf("%d of the serving measurement, %d active", len(views), active))
		for _, v := range views {
			line("  "+v.Signer.String(), fmt.Sprintf("%s, last seen %s %s", v.Status, v.LastSeen.UTC().Format(time.RFC3339), v.WorkerURL))
		}
		line("proved at height", st.Height)
		for _, w := range warnings {
			line("WARNING", w)
		}
		return tw.Flush()
	}
}

// silentAfter is how many chain blocks an active enclave's latest
// confirmation may lag the shard's newest before shard show takes it for
// not live: its worker is down or its machine lost, although its
// registration stays active until it expires.
const silentAfter = 100

// singleEnclaveWarning is shard show's warning for a shard whose keys
// exist in one live enclave only: the loss of that machine loses the shard.
const singleEnclaveWarning = "a single live enclave: the shard's keys exist on one machine only, " +
	"whose loss loses the shard; start another worker (docs/operations-recovery.md)"

// shardWarnings are the conditions an operator must act on: silent
// enclaves, active enclaves that stopped confirming, and a single live
// enclave. An active
// enclave that has not confirmed anything yet counts as live (it may have
// just registered).
func shardWarnings(views []enclaveView, latest *bridge.Confirmation) []string {
	var out []string
	live := 0
	for _, v := range views {
		if v.Status == "silent" {
			out = append(out, fmt.Sprintf("enclave %s is silent (last seen %s, no keep_alive within the liveness period): it is out of the shard until it keeps alive; "+
				"if its machine is lost, remove it with sudo remove-enclave (docs/operations-recovery.md)", v.Signer, v.LastSeen.UTC().Format(time.RFC3339)))
		}
		if v.Status != "active" {
			continue
		}
		if latest != nil && v.Confirmed != nil && latest.Height > v.Confirmed.Height+silentAfter {
			out = append(out, fmt.Sprintf("enclave %s is active but has confirmed nothing since height %d (the shard's newest: %d): its worker is down or its machine lost",
				v.Signer, v.Confirmed.Height, latest.Height))
			continue
		}
		live++
	}
	if live == 1 {
		out = append(out, singleEnclaveWarning)
	}
	return out
}

func confirmation(c *bridge.Confirmation) string {
	return fmt.Sprintf("height %d, state %s, block %s (in block %d, by %s)", c.Height, c.StateHash, c.BlockHash, c.ConfirmedHeight, c.Enclave)
}
