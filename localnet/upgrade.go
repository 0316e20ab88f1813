package localnet

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"time"

	"github.com/integritee-go/integritee/chain/accounts"
	"github.com/integritee-go/integritee/chain/types"
	"github.com/integritee-go/integritee/client"
	"github.com/integritee-go/integritee/client/trusted"
	"github.com/integritee-go/integritee/worker"
)

// BuildEnclaveRelease builds the dev enclave as release r
// (cmd/integritee-enclave's main.release; state version 3, the default,
// for release 1 and 4 from release 2 on) into dir: the same code with
// another measured version string, so another binary and another sim
// MRENCLAVE (its SHA-256).
func BuildEnclaveRelease(ctx context.Context, dir string, r int) (string, error) {
	if r < 1 {
		return "", fmt.Errorf("release %d: want 1 or more", r)
	}
	sv := min(r+2, 4)
	ld := fmt.Sprintf("-X main.release=%d -X main.stateVersion=%d", r, sv)
	return buildLD(ctx, dir, EnclavePackage, fmt.Sprintf("integritee-enclave-r%d", r), ld, "dev")
}

// UpgradeConfig configures Net.Upgrade.
type UpgradeConfig struct {
	// EnclaveBinary is the new release's enclave; empty builds release 2
	// into Dir/bin.
	EnclaveBinary string
	// Workers is the number of workers of the new release to start
	// (default: as many as run now).
	Workers int
	// EnactIn is how many blocks after the authorization the new release
	// takes over (default 60): enough for its workers to get the keys,
	// register and join the shard's group before.
	EnactIn int64
}

// Upgraded is what Upgrade did.
type Upgraded struct {
	MRENCLAVE       types.Hash
	EnactmentHeight int64
	// Workers are the new release's workers (also in Net.Workers).
	Workers []*Worker
}

// Upgrade moves the shard to another release of the enclave: sudo (Alice)
// authorizes its measurement with update_shard_config from EnactIn blocks
// on, the new release's workers start, get the shard's keys and state from
// the running workers and join the shard's group, and at the enactment
// height they take over while the old release's workers stop serving
// (docs/upgrades.md). It returns once a new worker processed the
// enactment height; progress goes to out.
func (n *Net) Upgrade(ctx context.Context, cfg UpgradeConfig, out io.Writer) (*Upgraded, error) {
	if cfg.EnactIn == 0 {
		cfg.EnactIn = 60
	}
	if cfg.Workers == 0 {
		cfg.Workers = max(len(n.workers), 1)
	}
	bin := cfg.EnclaveBinary
	if bin == "" {
		var err error
		if bin, err = BuildEnclaveRelease(ctx, filepath.Join(n.Dir, "bin"), 2); err != nil {
			return nil, err
		}
	}
	m, enact, err := n.Authorize(ctx, bin, cfg.EnactIn, out)
	if err != nil {
		return nil, err
	}
	up := &Upgraded{MRENCLAVE: m, EnactmentHeight: enact}
	for i := range cfg.Workers {
		w, err := n.AddWorkerOf(ctx, bin)
		if err != nil {
			return nil, fmt.Errorf("new release's worker %d: %w", i, err)
		}
		up.Workers = append(up.Workers, w)
		h, _ := w.Processed()
		fmt.Fprintf(out, "new release's worker %s provisioned by the old release at height %d\n", w.RPCAddr(), h)
	}
	if err := n.waitProcessed(ctx, up.Workers, enact); err != nil {
		return nil, err
	}
	fmt.Fprintf(out, "the new release serves the shard from height %d\n", enact)
	return up, nil
}

// Authorize has sudo (Alice) authorize the release of enclaveBinary for
// the shard from enactIn blocks on, and returns its measurement and the
// enactment height once the old release's workers processed the block
// after the authorization: from then on they hand the keys over.
func (n *Net) Authorize(ctx context.Context, enclaveBinary string, enactIn int64, out io.Writer) (types.Hash, int64, error) {
	m, err := worker.SimMRENCLAVE(enclaveBinary)
	if err != nil {
		return types.Hash{}, 0, err
	}
	if m == n.Shard {
		return types.Hash{}, 0, errors.New("the new release has the shard's current measurement: build it with another release number")
	}
	c, err := client.New(ctx, n.NodeRPC(), client.Options{})
	if err != nil {
		return types.Hash{}, 0, err
	}
	st, err := c.Shard(ctx, types.Hash(n.Shard))
	if err != nil {
		return types.Hash{}, 0, err
	}
	enact := st.Height + 1 + enactIn
	sub, err := c.UpdateShardConfig(ctx, accounts.DevKey("Alice"), types.Hash(n.Shard), types.Hash(m), uint64(enact))
	if err != nil {
		return types.Hash{}, 0, fmt.Errorf("update_shard_config: %w", err)
	}
	fmt.Fprintf(out, "authorized MRENCLAVE %x for shard %x from height %d (in block %d)\n", m, n.Shard, enact, sub.Height)
	// The old release's enclaves hand the keys over once their checkpoint
	// holds the authorization (the state after its block).
	if err := n.waitProcessed(ctx, n.workers, sub.Height+1); err != nil {
		return types.Hash{}, 0, err
	}
	return types.Hash(m), enact, nil
}

// WaitProcessed waits until every worker of ws processed height h.
func (n *Net) WaitProcessed(ctx context.Context, ws []*Worker, h int64) error {
	return n.waitProcessed(ctx, ws, h)
}

// waitProcessed waits until every worker of ws processed height h.
func (n *Net) waitProcessed(ctx context.Context, ws []*Worker, h int64) error {
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		done := true
		for _, w := range ws {
			if got, _ := w.Processed(); got < h {
				done = false
			}
		}
		if done {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for the workers to process block %d: %w", h, ctx.Err())
		case <-t.C:
		}
	}
}

// UpgradeDemo runs Upgrade on a network that ran Demo and shows the shard
// moving with its balances: the private balances of Alice//incognito and
// Bob//incognito before, on an old worker, and after, on every new one,
// must agree, and a client refuses the old workers (the chain has the new
// measurement serve the shard).
func (n *Net) UpgradeDemo(ctx context.Context, cfg UpgradeConfig, out io.Writer) error {
	old := n.Workers()
	if len(old) == 0 {
		return errors.New("no workers to upgrade")
	}
	c, err := client.New(ctx, n.NodeRPC(), client.Options{})
	if err != nil {
		return err
	}
	aliceI, bobI := accounts.DevKey("Alice//incognito"), accounts.DevKey("Bob//incognito")
	balances := func(url string) (uint64, uint64, error) {
		tc, err := trusted.Dial(ctx, url, c, trusted.Options{})
		if err != nil {
			return 0, 0, err
		}
		a, err := tc.Balance(ctx, aliceI)
		if err != nil {
			return 0, 0, err
		}
		b, err := tc.Balance(ctx, bobI)
		return a, b, err
	}
	a0, b0, err := balances(old[0].RPCAddr())
	if err != nil {
		return fmt.Errorf("balances before the upgrade: %w", err)
	}
	fmt.Fprintf(out, "\nupgrade: the shard runs release 1; Alice//incognito %s, Bob//incognito %s\n", commas(a0), commas(b0))
	up, err := n.Upgrade(ctx, cfg, out)
	if err != nil {
		return err
	}
	for _, w := range up.Workers {
		a, b, err := balances(w.RPCAddr())
		if err != nil {
			return fmt.Errorf("balances on %s after the upgrade: %w", w.RPCAddr(), err)
		}
		if a != a0 || b != b0 {
			return fmt.Errorf("balances on %s after the upgrade: %d and %d, before %d and %d", w.RPCAddr(), a, b, a0, b0)
		}
		fmt.Fprintf(out, "  release 2 worker %s: Alice//incognito %s, Bob//incognito %s (as before)\n", w.RPCAddr(), commas(a), commas(b))
	}
	for _, w := range old {
		_, _, err := balances(w.RPCAddr())
		if err == nil {
			return fmt.Errorf("old worker %s still serves the shard after the upgrade", w.RPCAddr())
		}
		fmt.Fprintf(out, "  release 1 worker %s refused: %v\n", w.RPCAddr(), err)
	}
	return nil
}
