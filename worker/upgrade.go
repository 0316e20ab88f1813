package worker

import (
	"context"
	"errors"
	"fmt"

	"github.com/integritee-go/integritee/chain/teerex"
	"github.com/integritee-go/integritee/chain/types"
	"github.com/integritee-go/integritee/enclave/protocol"
	"github.com/integritee-go/integritee/worker/rpc/api"
)

// Upgrades (docs/upgrades.md): once the shard moved to another release at
// its enactment height, this worker's enclave refuses blocks, calls and
// getters (protocol.ErrRetired). The worker then stops feeding blocks,
// keeps its replica and provisioning endpoint running (the new release's
// workers may still need its keys and log), and answers clients with
// api.CodeRetired naming the workers that serve the shard now.

// ErrRetired is a request refused because the shard moved to another
// release (api.CodeRetired).
var ErrRetired = errors.New("worker: the shard moved to another release")

// RetiredData is the data of api.CodeRetired: the measurement serving the
// shard now and its registered workers' URLs.
type RetiredData struct {
	MRENCLAVE string   `json:"mrenclave"`
	Workers   []string `json:"workers"`
}

// retiredError turns the enclave's refusal into the RPC error, with the
// URLs of the enclaves of the measurement serving the shard now, as the
// node reports them.
func (w *Worker) retiredError(ctx context.Context, err error) error {
	msg := "the shard moved to another release: send calls to the workers of the measurement that serves it now (" + err.Error() + ")"
	data := RetiredData{}
	if st, qerr := w.node.Shard(ctx, types.Hash(w.cfg.Shard)); qerr == nil {
		m := st.Shard.MRENCLAVEAt(uint64(max(st.Height, 0)))
		data.MRENCLAVE = m.String()
		_, _, _ = w.node.EachEnclave(ctx, &m, func(e teerex.Enclave) bool {
			if e.WorkerURL != "" {
				data.Workers = append(data.Workers, e.WorkerURL)
			}
			return len(data.Workers) < maxProviders
		})
	}
	return fmt.Errorf("%w: %w", ErrRetired, &api.Error{Code: api.CodeRetired, Message: msg, Data: data})
}

// Retired reports whether the shard moved to another release: this
// worker serves no more calls (only its keys to the new release).
func (w *Worker) Retired() bool { return w.retired.Load() }

// isRetired tells the enclave's refusal after its release's last height.
func isRetired(err error) bool { return errors.Is(err, protocol.ErrRetired) }
