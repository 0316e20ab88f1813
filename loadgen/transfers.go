package loadgen

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/integritee-go/integritee/chain/accounts"
	"github.com/integritee-go/integritee/chain/tx"
	"github.com/integritee-go/integritee/client"
)

// pollInterval is how often the commit watcher asks for new blocks: the
// resolution of the measured latencies.
const pollInterval = 20 * time.Millisecond

// account is a dev-derived key.
type account struct {
	name string
	key  ed25519.PrivateKey
	addr tx.Address
}

func devAccount(name string) account {
	k := accounts.DevKey(name)
	return account{name: name, key: k, addr: tx.AddressOf(k.Public().(ed25519.PublicKey))}
}

// failCode names an error for the failure table.
func failCode(ctx context.Context, err error) string {
	var te *client.TxError
	switch {
	case errors.As(err, &te):
		return fmt.Sprintf("%s/%d", te.Codespace, te.Code)
	case ctx.Err() != nil:
		return "timeout"
	default:
		return "transport"
	}
}

// fund sends each of to its amount from Alice, pipelined with consecutive
// nonces, and waits until all are committed.
func fund(ctx context.Context, c *client.Client, params accounts.Params, funder string, to []account, amount []uint64) error {
	alice := devAccount(funder)
	acc, err := c.Account(ctx, alice.addr)
	if err != nil {
		return fmt.Errorf("fund: alice: %w", err)
	}
	hashes := make([][32]byte, 0, len(to))
	for i, a := range to {
		call, err := accounts.TransferCall(a.addr, amount[i])
		if err != nil {
			return err
		}
		wire, err := c.BuildMinFee(alice.key, acc.Nonce+uint64(i), params, call)
		if err != nil {
			return fmt.Errorf("fund: %w", err)
		}
		h, err := c.Broadcast(ctx, wire)
		if err != nil {
			return fmt.Errorf("fund %s: %w", a.name, err)
		}
		hashes = append(hashes, h)
	}
	for i, h := range hashes {
		if _, err := c.WaitTx(ctx, h); err != nil {
			return fmt.Errorf("fund %s: %w", to[i].name, err)
		}
	}
	return nil
}

// pendingTx is a transfer broadcast and not yet seen in a block.
type pendingTx struct {
	sender int
	fee    uint64
	at     time.Time
}

// Transfers sends cfg.N public transfers of cfg.Amount from
// cfg.Concurrency dev-derived senders (funded from Alice first) to one
// recipient with broadcast_tx_sync, and follows the blocks until each is
// committed or the run times out. An error means the run could not be
// set up; failed transfers are in the report.
func Transfers(ctx context.Context, cfg Config) (*Report, error) {
	if err := cfg.normalize(false); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	c, err := client.New(ctx, cfg.NodeURL, client.Options{})
	if err != nil {
		return nil, err
	}
	params, err := c.Params(ctx)
	if err != nil {
		return nil, fmt.Errorf("params: %w", err)
	}
	k := cfg.Concurrency
	prefix := "Alice//load/" + cfg.Tag
	senders := make([]account, k)
	counts := make([]int, k)
	funding := make([]uint64, k)
	recipient := devAccount(prefix + "/tx-recipient")
	// An upper bound of one transfer's fee: nonces and amounts only grow
	// the encoding by a few bytes.
	probeCall, err := accounts.TransferCall(recipient.addr, ^uint64(0))
	if err != nil {
		return nil, err
	}
	probe, err := c.BuildMinFee(recipient.key, ^uint64(0), params, probeCall)
	if err != nil {
		return nil, err
	}
	maxFee := params.MinFee(len(probe))
	for i := range k {
		senders[i] = devAccount(fmt.Sprintf("%s/tx/%d", prefix, i))
		counts[i] = share(cfg.N, k, i)
		funding[i] = uint64(counts[i]) * (cfg.Amount + maxFee)
	}
	cfg.Logger.Info("funding senders", "senders", k)
	if err := fund(ctx, c, params, cfg.Funder, senders, funding); err != nil {
		return nil, err
	}
	nonces := make([]uint64, k)
	for i, s := range senders {
		acc, err := c.Account(ctx, s.addr)
		if err != nil {
			return nil, fmt.Errorf("sender %s: %w", s.name, err)
		}
		nonces[i] = acc.Nonce
	}
	st, err := c.RPC().Status(ctx)
	if err != nil {
		return nil, fmt.Errorf("status: %w", err)
	}

	rep := &Report{Kind: "transfers", N: cfg.N, Concurrency: k, Recipient: recipient.addr.String(), Amount: cfg.Amount,
		Senders: make([]Sender, k)}
	for i, s := range senders {
		rep.Senders[i] = Sender{Name: s.name, Address: s.addr.String(), Funded: funding[i]}
	}
	// Every transfer is built and signed before the timed phase.
	prep := time.Now()
	wires := make([][][]byte, k)
	for i := range k {
		wires[i] = make([][]byte, counts[i])
	}
	err = buildAll(ctx, wires, func(i, j int) ([]byte, error) {
		call, err := accounts.TransferCall(recipient.addr, cfg.Amount)
		if err != nil {
			return nil, err
		}
		return c.BuildMinFee(senders[i].key, nonces[i]+uint64(j), params, call)
	})
	if err != nil {
		return nil, err
	}
	rep.PrepareSeconds = time.Since(prep).Seconds()
	return broadcastAll(ctx, c, cfg, params, rep, wires, st.SyncInfo.LatestBlockHeight)
}

// broadcastAll is the timed phase of a run of prepared transactions:
// sender i broadcasts wires[i] one after the other (pipelined, no wait
// for blocks), and the blocks after fromHeight are followed until each
// is committed or the run times out. rep.Senders[i] gets sender i's
// outcomes.
func broadcastAll(ctx context.Context, c *client.Client, cfg Config, params accounts.Params, rep *Report, wires [][][]byte, fromHeight int64) (*Report, error) {
	procs := newProbe(cfg.NodeURL, nil)
	prog := &progress{total: cfg.N}
	t := newTally()
	t.prog = prog
	var (
		mu      sync.Mutex
		pending = map[[32]byte]pendingTx{}
	)
	procs.start()
	defer procs.release()
	start := time.Now()
	t.start = start
	stopProg := startProgress(cfg.Progress, prog, start)
	var wg sync.WaitGroup
	for i := range wires {
		wg.Go(func() {
			for j, wire := range wires[i] {
				h := tx.Hash(wire)
				// Registered before broadcasting: the watcher may see the
				// block before Broadcast returns.
				mu.Lock()
				pending[h] = pendingTx{sender: i, fee: params.MinFee(len(wire)), at: time.Now()}
				mu.Unlock()
				if _, err := c.Broadcast(ctx, wire); err != nil {
					mu.Lock()
					delete(pending, h)
					mu.Unlock()
					t.fail(failCode(ctx, err), 1)
					prog.failed.Add(int64(len(wires[i]) - j))
					// Later nonces of this sender would be rejected.
					t.fail("not_sent", len(wires[i])-j-1)
					return
				}
				t.mu.Lock()
				t.submitted++
				t.lastSub = time.Now()
				t.mu.Unlock()
			}
		})
	}
	sendersDone := make(chan struct{})
	go func() { wg.Wait(); close(sendersDone) }()

	// Follow the blocks from the height before the first submission.
	next := fromHeight + 1
	finished := false
	tick := time.NewTicker(pollInterval)
	defer tick.Stop()
	for !finished {
		select {
		case <-sendersDone:
			mu.Lock()
			finished = len(pending) == 0
			mu.Unlock()
			if finished {
				continue
			}
		default:
		}
		select {
		case <-ctx.Done():
			finished = true
			continue
		case <-tick.C:
		}
		s, err := c.RPC().Status(ctx)
		if err != nil {
			continue
		}
		for ; next <= s.SyncInfo.LatestBlockHeight; next++ {
			if err := scanBlock(ctx, c, next, &mu, pending, t, rep); err != nil {
				break
			}
		}
	}
	<-sendersDone
	stopProg()
	procs.finish(rep)
	mu.Lock()
	t.fail("timeout", len(pending))
	mu.Unlock()
	t.fill(rep, start)
	rep.cpuPerCall()
	return rep, nil
}

// scanBlock records the outcome of the pending transfers in block h.
func scanBlock(ctx context.Context, c *client.Client, h int64, mu *sync.Mutex, pending map[[32]byte]pendingTx, t *tally, rep *Report) error {
	b, err := c.RPC().Block(ctx, &h)
	if err != nil {
		return err
	}
	res, err := c.RPC().BlockResults(ctx, &h)
	if err != nil {
		return err
	}
	now := time.Now()
	mu.Lock()
	defer mu.Unlock()
	t.mu.Lock()
	defer t.mu.Unlock()
	for i, wire := range b.Block.Data.Txs {
		p, ok := pending[tx.Hash(wire)]
		if !ok {
			continue
		}
		delete(pending, tx.Hash(wire))
		s := &rep.Senders[p.sender]
		// A transaction that passed CheckTx pays its fee even if its
		// call fails in the block.
		s.Fees += p.fee
		if i < len(res.TxsResults) && res.TxsResults[i].Code != 0 {
			r := res.TxsResults[i]
			t.failures[fmt.Sprintf("%s/%d", r.Codespace, r.Code)]++
			if t.prog != nil {
				t.prog.failed.Add(1)
			}
			continue
		}
		s.Sent++
		s.Amount += rep.Amount
		t.committed++
		t.latencies = append(t.latencies, now.Sub(p.at))
		t.done = append(t.done, completion{at: now.Sub(t.start), lat: now.Sub(p.at)})
		if t.prog != nil {
			t.prog.done.Add(1)
		}
		t.blocks[uint64(h)] = struct{}{}
		t.lastOK = now
	}
	return nil
}
