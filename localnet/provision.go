package localnet

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"strconv"

	"github.com/integritee-go/integritee/chain/accounts"
	"github.com/integritee-go/integritee/worker"
)

// AddWorker starts one more worker of the shard and waits until it is
// registered and syncing. The first worker finds no other enclave of the
// shard on chain and creates the shard's keys; each later one finds the
// registered ones and gets the keys and a state snapshot from one of them
// through its registered URL (worker/provision.go), so all workers of the
// localnet serve one shard redundantly.
//
// The new worker's enclave joins the shard's Raft group once the leader
// saw its registration (docs/sidechain.md); from then on it takes direct
// calls like the others, and every worker applies every call, direct or
// indirect, in one order.
func (n *Net) AddWorker(ctx context.Context) (*Worker, error) {
	return n.AddWorkerOf(ctx, n.EnclaveBinary)
}

// AddWorkerOf is AddWorker with the enclave binary of another release of
// the shard (Upgrade).
func (n *Net) AddWorkerOf(ctx context.Context, enclaveBinary string) (*Worker, error) {
	i, cfg := len(n.workers), n.cfg
	listen := "127.0.0.1:0"
	if cfg.WorkerRPCBasePort != 0 {
		listen = net.JoinHostPort("127.0.0.1", strconv.Itoa(cfg.WorkerRPCBasePort+i))
	}
	metrics := "127.0.0.1:0"
	if cfg.WorkerMetricsBasePort != 0 {
		metrics = net.JoinHostPort("127.0.0.1", strconv.Itoa(cfg.WorkerMetricsBasePort+i))
	}
	wc := worker.Config{
		NodeRPC: n.node.RPCAddress(), DataDir: filepath.Join(n.Dir, fmt.Sprintf("worker-%d", i)),
		Shard: n.Shard, RPCListen: listen, MetricsListen: metrics, RPC: cfg.WorkerRPC, ConfirmHeartbeat: cfg.ConfirmHeartbeat,
		Fund:   worker.DevFunder(n.node.RPCAddress(), accounts.DevKey("Alice"), WorkerFunding),
		Logger: n.log.With("worker", i),
		Enclave: worker.ProcessFactory(worker.ProcessConfig{
			Path: enclaveBinary, Args: []string{"--tee", "sim"}, Logger: n.log.With("worker", i, "process", "enclave"),
		}),
	}
	w, err := n.StartWorker(ctx, wc)
	if err != nil {
		return nil, err
	}
	n.workers = append(n.workers, w)
	return w, nil
}
