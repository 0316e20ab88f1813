package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/integritee-go/integritee/chain/bridge"
	"github.com/integritee-go/integritee/chain/sidechain"
	"github.com/integritee-go/integritee/chain/tx"
	"github.com/integritee-go/integritee/chain/types"
	"github.com/integritee-go/integritee/client"
	"github.com/integritee-go/integritee/client/trusted"
	"github.com/integritee-go/integritee/internal/cli"
	"github.com/integritee-go/integritee/worker/rpc/api"
)

func (e *env) statusCommand() *cli.Command {
	return &cli.Command{
		Name:  "status",
		Usage: "[--node URL] [--shard HEX]... [--json] [--watch [--interval D]]",
		Short: "the network at a glance: node, enclaves, shards, confirmations, workers' health",
		Setup: e.status,
	}
}

// statusReport is what `status` shows. The node's height, peers and the
// workers' health are what they report; enclaves and shards are proved
// against the light client's verified headers at Height.
type statusReport struct {
	Time     time.Time      `json:"time"`
	Node     nodeStatus     `json:"node"`
	Height   int64          `json:"height"`
	Enclaves []enclaveView  `json:"enclaves"`
	Shards   []shardStatus  `json:"shards"`
	Workers  []workerStatus `json:"workers"`
}

type nodeStatus struct {
	URL        string    `json:"url"`
	ChainID    string    `json:"chain_id"`
	Moniker    string    `json:"moniker"`
	Version    string    `json:"version"`
	Height     int64     `json:"height"`
	BlockTime  time.Time `json:"block_time"`
	CatchingUp bool      `json:"catching_up"`
	Peers      int       `json:"peers"`
	Listening  bool      `json:"listening"`
}

// shardStatus is a shard as the chain records it and as its workers
// report it.
type shardStatus struct {
	ID             types.Hash           `json:"id"`
	Recorded       bool                 `json:"recorded"`
	Serving        types.Hash           `json:"serving_mrenclave"`
	Pending        *bridge.Config       `json:"pending,omitempty"`
	Vault          tx.Address           `json:"vault"`
	VaultBalance   uint64               `json:"vault_balance"`
	Latest         *bridge.Confirmation `json:"latest_confirmed,omitempty"`
	Divergences    uint64               `json:"divergences"`
	LastDivergence uint64               `json:"last_divergence,omitempty"`
	// Confirmations are the latest confirmation of each enclave of the
	// serving measurement that confirmed any.
	Confirmations []bridge.Confirmation   `json:"confirmations"`
	Sidechain     *sidechain.Confirmation `json:"sidechain_confirmed,omitempty"`
	Enclaves      int                     `json:"enclaves"`
	Active        int                     `json:"active_enclaves"`
	WorkersUp     int                     `json:"workers_up"`
	// Agree is false when enclaves confirmed different states for one
	// height (on chain, now or in the past) or workers report different
	// state roots after the same chain height and shard block;
	// Disagreements say which.
	Agree         bool     `json:"agree"`
	Disagreements []string `json:"disagreements,omitempty"`
	// Leaders are the Raft leaders the shard's workers name (more than one
	// only while an election settles).
	Leaders []string `json:"leaders,omitempty"`
	// ShardBlocks is the lowest and highest shard block the shard's
	// workers that are up report: how far apart they are.
	ShardBlocks *blockRange `json:"worker_shard_blocks,omitempty"`
}

type blockRange struct {
	Min uint64 `json:"min"`
	Max uint64 `json:"max"`
}

// workerStatus is the worker at an enclave's registered URL.
type workerStatus struct {
	Enclave tx.Address  `json:"enclave"`
	URL     string      `json:"url"`
	Shard   *types.Hash `json:"shard,omitempty"`
	// Up is whether it answered; Error why not (or what it answered
	// instead of its identity).
	Up    bool   `json:"up"`
	Error string `json:"error,omitempty"`
	// Matches is whether it presents the registration's signer,
	// measurement and shielding key.
	Matches bool              `json:"matches_registration"`
	Version string            `json:"version,omitempty"`
	Health  *api.HealthResult `json:"health,omitempty"`
}

func (e *env) status(fs *flag.FlagSet) cli.RunFunc {
	var nf nodeFlags
	nf.register(fs, e)
	var shards listFlag
	fs.Var(&shards, "shard", "show this shard (`hex`; repeatable); default: the shards of the registered measurements and of the workers")
	watch := fs.Bool("watch", false, "refresh until interrupted")
	interval := fs.Duration("interval", 5*time.Second, "time between refreshes with --watch")
	workerTimeout := fs.Duration("worker-timeout", 5*time.Second, "how long to wait for each worker's answer before showing it down")
	return func(ctx context.Context, pos []string) error {
		if err := cli.NoArgs(pos); err != nil {
			return err
		}
		if *interval <= 0 || *workerTimeout <= 0 {
			return errors.New("--interval and --worker-timeout must be positive")
		}
		ids := make([]types.Hash, 0, len(shards))
		for _, s := range shards {
			id, err := parseHash(s, "--shard")
			if err != nil {
				return err
			}
			ids = append(ids, id)
		}
		opts, err := nf.clientOptions()
		if err != nil {
			return err
		}
		cctx, cancel := context.WithTimeout(ctx, nf.timeout)
		c, err := client.New(cctx, nf.node, opts)
		cancel()
		if err != nil {
			return err
		}
		hc := &http.Client{Timeout: *workerTimeout}
		once := func() (*statusReport, error) {
			ctx, cancel := context.WithTimeout(ctx, nf.timeout)
			defer cancel()
			return collectStatus(ctx, c, nf.node, ids, hc, e.now())
		}
		show := func(r *statusReport) error {
			if nf.json {
				return writeJSON(e.stdout, r)
			}
			return writeStatus(e.stdout, r)
		}
		if !*watch {
			r, err := once()
			if err != nil {
				return err
			}
			return show(r)
		}
		for {
			r, err := once()
			if ctx.Err() != nil {
				return nil // interrupted: the way a watch ends
			}
			switch {
			case err != nil && nf.json:
				// One object per refresh, so a reader sees the failure.
				if err := writeJSON(e.stdout, struct {
					Time  time.Time `json:"time"`
					Error string    `json:"error"`
				}{e.now(), err.Error()}); err != nil {
					return err
				}
			case err != nil:
				fmt.Fprintf(e.stdout, "\x1b[H\x1b[2J%s  status: %v (retrying every %s)\n", e.now().UTC().Format(time.RFC3339), err, *interval)
			default:
				if !nf.json {
					fmt.Fprint(e.stdout, "\x1b[H\x1b[2J") // home and clear, as watch(1)
				}
				if err := show(r); err != nil {
					return err
				}
			}
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(*interval):
			}
		}
	}
}

// collectStatus reads the chain at one proved height and asks every
// registered worker for its health, in parallel.
func collectStatus(ctx context.Context, c *client.Client, nodeURL string, want []types.Hash, hc *http.Client, now time.Time) (*statusReport, error) {
	r := &statusReport{Time: now.UTC(), Node: nodeStatus{URL: nodeURL, ChainID: c.ChainID()}}
	st, err := c.RPC().Status(ctx)
	if err != nil {
		return nil, fmt.Errorf("node status: %w", err)
	}
	r.Node.Moniker, r.Node.Version = st.NodeInfo.Moniker, st.NodeInfo.Version
	r.Node.Height, r.Node.BlockTime, r.Node.CatchingUp = st.SyncInfo.LatestBlockHeight, st.SyncInfo.LatestBlockTime.UTC(), st.SyncInfo.CatchingUp
	ni, err := c.RPC().NetInfo(ctx)
	if err != nil {
		return nil, fmt.Errorf("node peers: %w", err)
	}
	r.Node.Peers, r.Node.Listening = ni.NPeers, ni.Listening

	es, h, err := c.Enclaves(ctx)
	if err != nil {
		return nil, err
	}
	if r.Enclaves, err = judgeAll(ctx, c, es, h); err != nil {
		return nil, err
	}
	r.Height = h

	// Workers first: those that answer name the shard they serve.
	r.Workers = probeWorkers(ctx, r.Enclaves, hc)

	ids := slices.Clone(want)
	if len(ids) == 0 {
		for _, v := range r.Enclaves {
			ids = append(ids, v.MRENCLAVE)
		}
		for _, w := range r.Workers {
			if w.Shard != nil {
				ids = append(ids, *w.Shard)
			}
		}
		slices.SortFunc(ids, func(a, b types.Hash) int { return strings.Compare(a.String(), b.String()) })
		ids = slices.Compact(ids)
	}
	for _, id := range ids {
		s, err := shardReport(ctx, c, id, h, r.Enclaves, r.Workers)
		if err != nil {
			return nil, err
		}
		r.Shards = append(r.Shards, *s)
	}
	return r, nil
}

// probeWorkers asks the worker at each registered URL for its identity
// and health. A worker that does not answer is down, not an error.
func probeWorkers(ctx context.Context, es []enclaveView, hc *http.Client) []workerStatus {
	out := make([]workerStatus, len(es))
	var wg sync.WaitGroup
	for i, v := range es {
		out[i] = workerStatus{Enclave: v.Signer, URL: v.WorkerURL}
		if v.WorkerURL == "" {
			out[i].Error = "no worker URL registered"
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			w := &out[i]
			p, err := trusted.ProbeWorker(ctx, v.WorkerURL, hc)
			if err != nil {
				w.Error = oneLine(err.Error())
				// An error object is an answer: the worker is up.
				var rpcErr *api.Error
				w.Up = errors.As(err, &rpcErr)
				return
			}
			w.Up, w.Matches, w.Version, w.Health = true, p.Matches(&v.Enclave), p.Version, &p.Health
			if w.Matches {
				w.Shard = &p.Shard
			} else {
				w.Error = fmt.Sprintf("presents enclave %s (measurement %s), not the registered one", p.Signer, p.MRENCLAVE)
			}
		}()
	}
	wg.Wait()
	return out
}

// shardReport is shard id at height h, with the agreement of its enclaves'
// confirmations and of its workers' reports.
func shardReport(ctx context.Context, c *client.Client, id types.Hash, h int64, es []enclaveView, ws []workerStatus) (*shardStatus, error) {
	st, err := c.ShardAt(ctx, id, h)
	if err != nil {
		return nil, err
	}
	s := &shardStatus{
		ID: id, Recorded: st.Recorded, Serving: st.Shard.MRENCLAVEAt(uint64(h)), Pending: st.Shard.Pending,
		Vault: st.Shard.Vault, VaultBalance: st.VaultBalance, Latest: st.Shard.Latest,
		Divergences: st.Shard.Divergences, LastDivergence: st.Shard.LastDivergence,
		Confirmations: []bridge.Confirmation{},
	}
	var signers []tx.Address
	for _, v := range es {
		if v.MRENCLAVE == s.Serving {
			signers = append(signers, v.Signer)
			s.Enclaves++
			if v.Status == "active" {
				s.Active++
			}
		}
	}
	confs, err := c.Confirmations(ctx, id, signers, h)
	if err != nil {
		return nil, err
	}
	for _, a := range signers {
		if conf, ok := confs[a]; ok {
			s.Confirmations = append(s.Confirmations, conf)
		}
	}
	if s.Sidechain, _, err = c.SidechainLatest(ctx, id); err != nil {
		return nil, err
	}
	var mine []workerStatus
	for _, w := range ws {
		if w.Shard != nil && *w.Shard == id {
			mine = append(mine, w)
			s.WorkersUp++
		}
	}
	s.Disagreements = disagreements(s, mine)
	s.Agree = len(s.Disagreements) == 0
	for _, w := range mine {
		if l := w.Health.Leader; l != "" && !slices.Contains(s.Leaders, l) {
			s.Leaders = append(s.Leaders, l)
		}
		b := w.Health.ShardBlock
		if s.ShardBlocks == nil {
			s.ShardBlocks = &blockRange{b, b}
		}
		s.ShardBlocks.Min, s.ShardBlocks.Max = min(s.ShardBlocks.Min, b), max(s.ShardBlocks.Max, b)
	}
	sort.Strings(s.Leaders)
	return s, nil
}

// disagreements lists what shows the shard's enclaves apart: the bridge's
// divergence count, confirmations of one height with different states,
// and workers reporting different state roots after the same chain block
// and shard block.
func disagreements(s *shardStatus, ws []workerStatus) []string {
	var out []string
	if s.Divergences > 0 {
		out = append(out, fmt.Sprintf("the chain recorded %d heights with differing confirmations, the last %d", s.Divergences, s.LastDivergence))
	}
	byHeight := map[uint64]bridge.Confirmation{}
	for _, c := range s.Confirmations {
		if o, ok := byHeight[c.Height]; ok && o.StateHash != c.StateHash {
			out = append(out, fmt.Sprintf("enclaves %s and %s confirmed height %d with states %s and %s",
				short(o.Enclave.String()), short(c.Enclave.String()), c.Height, short(o.StateHash.String()), short(c.StateHash.String())))
			continue
		}
		byHeight[c.Height] = c
	}
	type at struct {
		height int64
		block  uint64
	}
	byPoint := map[at]workerStatus{}
	for _, w := range ws {
		k := at{w.Health.Height, w.Health.ShardBlock}
		if o, ok := byPoint[k]; ok && o.Health.StateRoot != w.Health.StateRoot {
			out = append(out, fmt.Sprintf("workers of %s and %s report states %s and %s after chain block %d and shard block %d",
				short(o.Enclave.String()), short(w.Enclave.String()), short(o.Health.StateRoot), short(w.Health.StateRoot), k.height, k.block))
			continue
		}
		byPoint[k] = w
	}
	return out
}

// short abbreviates a hex hash or address for the text view.
func short(s string) string {
	if len(s) <= 12 {
		return s
	}
	return s[:12] + "…"
}

// writeStatus prints the report in one screen.
func writeStatus(w io.Writer, r *statusReport) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	n := r.Node
	fmt.Fprintf(tw, "node\t%s  chain %s  height %d (%s, %s ago)  peers %d%s\n", n.URL, n.ChainID, n.Height,
		n.BlockTime.Format(time.RFC3339), r.Time.Sub(n.BlockTime).Round(time.Second), n.Peers, map[bool]string{true: "  CATCHING UP"}[n.CatchingUp])
	active := 0
	for _, v := range r.Enclaves {
		if v.Status == "active" {
			active++
		}
	}
	fmt.Fprintf(tw, "enclaves\t%d registered, %d active (proved at height %d)\n", len(r.Enclaves), active, r.Height)
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(r.Enclaves) > 0 {
		fmt.Fprintln(tw, "  SIGNER\tMRENCLAVE\tKIND\tTCB\tSTATUS\tLAST SEEN\tEXPIRES")
		for _, v := range r.Enclaves {
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\t%s\t%s\n", short(v.Signer.String()), short(v.MRENCLAVE.String()), v.Kind, v.TCBStatus, v.Status,
				v.LastSeen.UTC().Format(time.RFC3339), v.ExpiresAt.UTC().Format(time.RFC3339))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	for _, s := range r.Shards {
		fmt.Fprintf(w, "shard %s\n", s.ID)
		line := func(k string, val any) { fmt.Fprintf(tw, "  %s\t%v\n", k, val) }
		serving := s.Serving.String()
		if s.Pending != nil {
			serving += fmt.Sprintf(" (moving to %s at height %d)", short(s.Pending.MRENCLAVE.String()), s.Pending.Since)
		}
		line("serving", serving)
		line("enclaves", fmt.Sprintf("%d of the serving measurement, %d active; workers up: %d", s.Enclaves, s.Active, s.WorkersUp))
		line("vault balance", formatAmount(s.VaultBalance))
		if s.Latest != nil {
			line("last confirmed", fmt.Sprintf("chain height %d, state %s (in block %d)", s.Latest.Height, short(s.Latest.StateHash.String()), s.Latest.ConfirmedHeight))
		} else {
			line("last confirmed", "none")
		}
		var side []string
		if s.Sidechain != nil {
			side = append(side, fmt.Sprintf("block %d confirmed (in block %d)", s.Sidechain.Number, s.Sidechain.ConfirmedHeight))
		}
		if b := s.ShardBlocks; b != nil && b.Min == b.Max {
			side = append(side, fmt.Sprintf("workers at block %d", b.Min))
		} else if b != nil {
			side = append(side, fmt.Sprintf("workers at blocks %d to %d", b.Min, b.Max))
		}
		if len(side) > 0 {
			line("sidechain", strings.Join(side, "; "))
		}
		if s.Agree {
			line("agree", "yes")
		} else {
			line("agree", "NO: "+strings.Join(s.Disagreements, "; "))
		}
		if len(s.Leaders) > 0 {
			names := make([]string, len(s.Leaders))
			for i, l := range s.Leaders {
				names[i] = short(l)
			}
			line("leader", strings.Join(names, ", "))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	if len(r.Workers) == 0 {
		return nil
	}
	confirmed := map[tx.Address]bridge.Confirmation{}
	for _, s := range r.Shards {
		for _, c := range s.Confirmations {
			confirmed[c.Enclave] = c
		}
	}
	fmt.Fprintln(tw, "workers")
	fmt.Fprintln(tw, "  ENCLAVE\tURL\tHEALTH\tHEIGHT\tSHARD BLOCK\tCONFIRMED\tLEADER\tSTATE\tLAST CONFIRMATION")
	ws := slices.Clone(r.Workers)
	slices.SortStableFunc(ws, func(a, b workerStatus) int { return cmp.Compare(a.URL, b.URL) })
	for _, w := range ws {
		health := "up"
		switch {
		case !w.Up:
			health = "DOWN"
		case !w.Matches:
			health = "WRONG ENCLAVE"
		}
		height, block, conf, leader, state := "-", "-", "-", "-", "-"
		if w.Health != nil {
			hh := w.Health
			height, block, conf, state = fmt.Sprint(hh.Height), fmt.Sprint(hh.ShardBlock), fmt.Sprint(hh.Confirmed), short(hh.StateRoot)
			if hh.Leader != "" {
				leader = fmt.Sprintf("%s (%d voters)", short(hh.Leader), hh.Voters)
			}
		}
		last := "none"
		if c, ok := confirmed[w.Enclave]; ok {
			last = fmt.Sprintf("height %d (in block %d)", c.Height, c.ConfirmedHeight)
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", short(w.Enclave.String()), orDash(w.URL), health, height, block, conf, leader, state, last)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, wk := range ws {
		if wk.Error != "" {
			fmt.Fprintf(w, "  %s: %s\n", short(wk.Enclave.String()), wk.Error)
		}
	}
	return nil
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
