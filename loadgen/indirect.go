package loadgen

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/integritee-go/integritee/chain/bridge"
	"github.com/integritee-go/integritee/chain/tx"
	"github.com/integritee-go/integritee/chain/types"
	"github.com/integritee-go/integritee/client"
	"github.com/integritee-go/integritee/client/trusted"
	"github.com/integritee-go/integritee/enclave/stf"
)

// BlockLatency summarises chain blocks from a call's broadcast to its
// execution (nearest rank).
type BlockLatency struct {
	P50 int64 `json:"p50"`
	P90 int64 `json:"p90"`
	P99 int64 `json:"p99"`
	Max int64 `json:"max"`
}

func blockPercentiles(bs []int64) *BlockLatency {
	if len(bs) == 0 {
		return nil
	}
	s := slices.Clone(bs)
	slices.Sort(s)
	rank := func(p float64) int64 {
		i := int(math.Ceil(p*float64(len(s)))) - 1
		return s[min(max(i, 0), len(s)-1)]
	}
	return &BlockLatency{P50: rank(0.5), P90: rank(0.9), P99: rank(0.99), Max: s[len(s)-1]}
}

// indirectTx is a broadcast invoke not yet seen executed.
type indirectTx struct {
	sender int
	at     time.Time
	// from is the chain height when it was broadcast; height the block
	// that holds it (0 until seen).
	from, height int64
}

// Indirect shields funds to cfg.Concurrency incognito accounts (like
// Direct), then sends cfg.N trusted transfers from them through the chain:
// each an encrypted call in a bridge invoke paid by the sender's public
// payer, broadcast pipelined (every payer sends its share, one after the
// other, without waiting for blocks; no open loop). A call is executed
// when the sender's worker has processed the chain block holding it
// (system_health's height). Latency is from the broadcast to that, in ms
// and in chain blocks (from the height at broadcast to the block that
// holds the call). After the run, each sender's trusted nonce must have
// moved by its calls in committed blocks: the enclave's word that they
// ran (an indirect call has no per-call result).
func Indirect(ctx context.Context, cfg Config) (*Report, error) {
	if err := cfg.normalize(true); err != nil {
		return nil, err
	}
	if cfg.Rate != 0 {
		return nil, fmt.Errorf("%w: indirect calls are sent pipelined, without a rate", ErrConfig)
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	c, err := client.New(ctx, cfg.NodeURL, client.Options{})
	if err != nil {
		return nil, err
	}
	m := cfg.Concurrency
	hc := &http.Client{Timeout: 30 * time.Second}
	tcs := make([]*trusted.Client, len(cfg.WorkerURLs))
	for w, u := range cfg.WorkerURLs {
		if tcs[w], err = trusted.Dial(ctx, u, c, trusted.Options{HTTPClient: hc}); err != nil {
			return nil, fmt.Errorf("worker %s: %w", u, err)
		}
		if tcs[w].Shard() != tcs[0].Shard() {
			return nil, fmt.Errorf("%w: worker %s serves another shard than %s", ErrConfig, u, cfg.WorkerURLs[0])
		}
	}
	shard := types.Hash(tcs[0].Shard())
	params, err := c.Params(ctx)
	if err != nil {
		return nil, fmt.Errorf("params: %w", err)
	}
	prefix := "Alice//load/" + cfg.Tag
	payers, senders := make([]account, m), make([]account, m)
	counts, funding := make([]int, m), make([]uint64, m)
	recipient := devAccount(prefix + "/indirect-recipient")
	// An upper bound of one invoke's fee: a call with the largest amount
	// and nonce, in a transaction with the largest nonce.
	probeCT, err := tcs[0].EncryptCall(recipient.key, stf.Call{Transfer: &stf.Transfer{From: recipient.addr, To: recipient.addr, Amount: math.MaxUint64}}, math.MaxUint64)
	if err != nil {
		return nil, err
	}
	invoke := func(ct []byte) (tx.Call, error) {
		return tx.NewCall(bridge.Name, bridge.MethodInvoke, bridge.Invoke{Shard: shard, Ciphertext: ct})
	}
	probeCall, err := invoke(probeCT)
	if err != nil {
		return nil, err
	}
	probe, err := c.BuildMinFee(recipient.key, math.MaxUint64, params, probeCall)
	if err != nil {
		return nil, err
	}
	maxFee := params.MinFee(len(probe))
	rep := &Report{Kind: "indirect", N: cfg.N, Concurrency: m, Recipient: recipient.addr.String(), Amount: cfg.Amount,
		Senders: make([]Sender, m), Workers: make([]WorkerShare, len(tcs))}
	for w, u := range cfg.WorkerURLs {
		rep.Workers[w].URL = u
	}
	for i := range m {
		payers[i] = devAccount(fmt.Sprintf("%s/invoke/%d", prefix, i))
		senders[i] = devAccount(fmt.Sprintf("%s/indirect/%d", prefix, i))
		counts[i] = share(cfg.N, m, i)
		funding[i] = uint64(counts[i])*(cfg.Amount+maxFee) + params.MinFee(tx.MaxTxBytes)
		w := workerOf(i, len(tcs))
		rep.Senders[i] = Sender{Name: senders[i].name, Address: senders[i].addr.String(), Shielded: uint64(counts[i]) * cfg.Amount,
			Funded: funding[i], Worker: cfg.WorkerURLs[w]}
		rep.Workers[w].Senders++
	}
	cfg.Logger.Info("funding payers", "payers", m)
	if err := fund(ctx, c, params, cfg.Funder, payers, funding); err != nil {
		return nil, err
	}
	if err := shieldAll(ctx, c, tcs, payers, senders, rep.Senders); err != nil {
		return nil, err
	}
	nonces, payerNonces := make([]uint64, m), make([]uint64, m)
	for i := range m {
		if nonces[i], err = tcs[workerOf(i, len(tcs))].Nonce(ctx, senders[i].key); err != nil {
			return nil, fmt.Errorf("trusted nonce of %s: %w", senders[i].name, err)
		}
		acc, err := c.Account(ctx, payers[i].addr)
		if err != nil {
			return nil, fmt.Errorf("payer %s: %w", payers[i].name, err)
		}
		payerNonces[i] = acc.Nonce
	}

	// Built, signed, encrypted and wrapped in signed invokes before the
	// timed phase.
	prep := time.Now()
	wires := make([][][]byte, m)
	for i := range m {
		wires[i] = make([][]byte, counts[i])
	}
	err = buildAll(ctx, wires, func(i, j int) ([]byte, error) {
		ct, err := tcs[workerOf(i, len(tcs))].EncryptCall(senders[i].key, stf.Call{Transfer: &stf.Transfer{From: senders[i].addr, To: recipient.addr, Amount: cfg.Amount}}, nonces[i]+uint64(j))
		if err != nil {
			return nil, err
		}
		call, err := invoke(ct)
		if err != nil {
			return nil, err
		}
		return c.BuildMinFee(payers[i].key, payerNonces[i]+uint64(j), params, call)
	})
	if err != nil {
		return nil, err
	}
	rep.PrepareSeconds = time.Since(prep).Seconds()
	rep.workerLimits(ctx, tcs)

	st, err := c.RPC().Status(ctx)
	if err != nil {
		return nil, fmt.Errorf("status: %w", err)
	}
	var (
		mu      sync.Mutex
		height  = st.SyncInfo.LatestBlockHeight // latest seen
		pending = map[[32]byte]*indirectTx{}
		inBlock []*indirectTx // committed with success, not yet executed
		sent    = make([]int, m)
		okTx    = make([]int, m)
		blocks  []int64
	)
	procs := newProbe(cfg.NodeURL, cfg.WorkerURLs)
	t := newTally()
	prog := &progress{total: cfg.N}
	procs.start()
	defer procs.release()
	start := time.Now()
	t.start = start
	stopProg := startProgress(cfg.Progress, prog, start)
	var wg sync.WaitGroup
	for i := range m {
		wg.Go(func() {
			for j, wire := range wires[i] {
				h := tx.Hash(wire)
				mu.Lock()
				pending[h] = &indirectTx{sender: i, at: time.Now(), from: height}
				mu.Unlock()
				if _, err := c.Broadcast(ctx, wire); err != nil {
					mu.Lock()
					delete(pending, h)
					mu.Unlock()
					t.fail(failCode(ctx, err), 1)
					t.fail("not_sent", counts[i]-j-1)
					prog.failed.Add(int64(counts[i] - j))
					return
				}
				t.mu.Lock()
				t.submitted++
				t.lastSub = time.Now()
				t.mu.Unlock()
				mu.Lock()
				sent[i]++
				mu.Unlock()
			}
		})
	}
	sendersDone := make(chan struct{})
	go func() { wg.Wait(); close(sendersDone) }()

	next := st.SyncInfo.LatestBlockHeight + 1
	tick := time.NewTicker(pollInterval)
	defer tick.Stop()
follow:
	for {
		select {
		case <-ctx.Done():
			break follow
		case <-tick.C:
		}
		if s, err := c.RPC().Status(ctx); err == nil {
			for ; next <= s.SyncInfo.LatestBlockHeight; next++ {
				if err := scanInvokes(ctx, c, next, &mu, pending, &inBlock, t, prog); err != nil {
					break
				}
				mu.Lock()
				height = next
				mu.Unlock()
			}
		}
		processed := make([]int64, len(tcs))
		for w, tc := range tcs {
			if h, err := tc.Health(ctx); err == nil {
				processed[w] = h.Height
			}
		}
		now := time.Now()
		mu.Lock()
		rest := inBlock[:0]
		for _, p := range inBlock {
			if p.height > processed[workerOf(p.sender, len(tcs))] {
				rest = append(rest, p)
				continue
			}
			okTx[p.sender]++
			t.mu.Lock()
			t.latencies = append(t.latencies, now.Sub(p.at))
			t.done = append(t.done, completion{at: now.Sub(start), lat: now.Sub(p.at)})
			t.blocks[uint64(p.height)] = struct{}{}
			t.lastOK = now
			t.mu.Unlock()
			blocks = append(blocks, p.height-p.from)
			prog.done.Add(1)
		}
		inBlock = rest
		finished := len(pending) == 0 && len(inBlock) == 0
		mu.Unlock()
		select {
		case <-sendersDone:
			if finished {
				break follow
			}
		default:
		}
	}
	<-sendersDone
	stopProg()
	procs.finish(rep)
	mu.Lock()
	t.fail("timeout", len(pending)+len(inBlock))
	mu.Unlock()

	// The enclave's word: each sender's nonce moved by its executed calls.
	ver := time.Now()
	for i := range m {
		n, err := tcs[workerOf(i, len(tcs))].Nonce(ctx, senders[i].key)
		switch {
		case err != nil:
			t.fail("unverified", okTx[i])
		case n-nonces[i] < uint64(okTx[i]):
			t.fail("not_executed", okTx[i]-int(n-nonces[i]))
			okTx[i] = int(n - nonces[i])
		}
		t.committed += okTx[i]
		rep.Senders[i].Sent = okTx[i]
		rep.Senders[i].Amount = uint64(okTx[i]) * cfg.Amount
		rep.Workers[workerOf(i, len(tcs))].Executed += okTx[i]
	}
	rep.VerifySeconds = time.Since(ver).Seconds()
	t.fill(rep, start)
	rep.BlocksToExecuted = blockPercentiles(blocks)
	rep.cpuPerCall()
	rep.limits(cfg, len(tcs))
	return rep, nil
}

// scanInvokes moves the pending invokes in block h to inBlock (success)
// or the failure table.
func scanInvokes(ctx context.Context, c *client.Client, h int64, mu *sync.Mutex, pending map[[32]byte]*indirectTx, inBlock *[]*indirectTx, t *tally, prog *progress) error {
	b, err := c.RPC().Block(ctx, &h)
	if err != nil {
		return err
	}
	res, err := c.RPC().BlockResults(ctx, &h)
	if err != nil {
		return err
	}
	mu.Lock()
	defer mu.Unlock()
	for i, wire := range b.Block.Data.Txs {
		p, ok := pending[tx.Hash(wire)]
		if !ok {
			continue
		}
		delete(pending, tx.Hash(wire))
		if i < len(res.TxsResults) && res.TxsResults[i].Code != 0 {
			r := res.TxsResults[i]
			t.fail(fmt.Sprintf("%s/%d", r.Codespace, r.Code), 1)
			prog.failed.Add(1)
			continue
		}
		p.height = h
		*inBlock = append(*inBlock, p)
	}
	return nil
}
