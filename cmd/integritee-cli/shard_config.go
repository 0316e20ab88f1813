package main

import (
	"context"
	"errors"
	"flag"
	"fmt"

	"github.com/integritee-go/integritee/chain/types"
	"github.com/integritee-go/integritee/internal/cli"
)

// shardUpdateConfig sends update_shard_config: from --enactment-height on
// (default: --enact-in blocks after the latest), MRENCLAVE serves the
// shard; its enclaves get the keys from the current ones
// (docs/upgrades.md). The sender is sudo (or an enclave of the serving
// measurement, which the chain also accepts).
func (e *env) shardUpdateConfig(fs *flag.FlagSet) cli.RunFunc {
	var nf sudoFlags
	nf.register(fs, e)
	at := fs.Uint64("enactment-height", 0, "`height` from which MRENCLAVE serves the shard (0: --enact-in blocks from now)")
	in := fs.Uint64("enact-in", 60, "`blocks` from the latest to the enactment height, when --enactment-height is 0: time for the new release's workers to get the keys and join")
	return func(ctx context.Context, pos []string) error {
		if len(pos) != 2 {
			return errors.New("want SHARD MRENCLAVE")
		}
		shard, err := parseHash(pos[0], "shard")
		if err != nil {
			return err
		}
		m, err := parseHash(pos[1], "MRENCLAVE")
		if err != nil {
			return err
		}
		if *at == 0 && (*in < 2 || *in > 1<<20) {
			return fmt.Errorf("--enact-in %d: want 2..%d (the authorization must be provable before the enactment height)", *in, 1<<20)
		}
		ctx, cancel, c, sender, err := nf.connectSudo(ctx)
		if err != nil {
			return err
		}
		defer cancel()
		h := *at
		if h == 0 {
			st, err := c.Shard(ctx, shard)
			if err != nil {
				return err
			}
			h = uint64(st.Height) + 1 + *in
		}
		sub, err := c.UpdateShardConfig(ctx, sender.key, shard, m, h)
		if err != nil {
			return err
		}
		out := struct {
			txOutput
			Shard           types.Hash `json:"shard"`
			MRENCLAVE       types.Hash `json:"mrenclave"`
			EnactmentHeight uint64     `json:"enactment_height"`
		}{newTxOutput(sub), shard, m, h}
		if nf.json {
			return writeJSON(e.stdout, out)
		}
		fmt.Fprintf(e.stdout, "shard %s: MRENCLAVE %s serves from height %d\ntx %s in block %d, fee %s\n",
			shard, m, h, out.Hash, out.Height, formatAmount(out.Fee))
		return nil
	}
}
