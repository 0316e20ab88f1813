package worker

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/integritee-go/integritee/chain/accounts"
	"github.com/integritee-go/integritee/chain/bridge"
	"github.com/integritee-go/integritee/chain/sidechain"
	"github.com/integritee-go/integritee/chain/tx"
	"github.com/integritee-go/integritee/chain/types"
	"github.com/integritee-go/integritee/client"
	"github.com/integritee-go/integritee/enclave/protocol"
)

// Submission: the outbox holds what the enclave emitted (committed with
// the block or batch that emitted it); the submit loop has the enclave sign
// it with the account's nonces and broadcasts it, oldest first, until the
// chain has it.

// Submission tuning.
const (
	// outgoing calls signed per round: the enclave signs a run of a
	// shard's block votes as one transaction of up to 64, so a round
	// keeps up with a shard sealing hundreds of blocks per chain block
	submitBatch   = 4 * sidechain.MaxConfirmHeaders
	inclusionWait = 20 * time.Second // how long a broadcast tx may take to land
)

// errRenew means the chain refused a call because of the enclave's
// registration: the renewal part checks it at once (renewSoon).
var errRenew = errors.New("registration must be checked")

func (w *Worker) accountState(ctx context.Context, a tx.Address) (accounts.Params, accounts.Account, error) {
	params, err := w.node.Params(ctx)
	if err != nil {
		return params, accounts.Account{}, err
	}
	acc, err := w.node.Account(ctx, a)
	return params, acc, err
}

func (w *Worker) txParams(p accounts.Params, nonce uint64) protocol.TxParams {
	return protocol.TxParams{ChainID: w.chainID, Nonce: nonce, BaseFee: p.BaseFee, PerByteFee: p.PerByteFee}
}

// fund gets the enclave's account funded to at least need: through the
// configured hook, or by asking the operator and waiting.
func (w *Worker) fund(ctx context.Context, a tx.Address, need uint64) error {
	if w.cfg.Fund != nil {
		w.log.Info("funding enclave account", "account", a, "need", need)
		return w.cfg.Fund(ctx, a, need)
	}
	w.log.Warn("FUND THE ENCLAVE ACCOUNT to continue: it pays the enclave's chain fees", "account", a, "need_at_least", need)
	t := time.NewTicker(2 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
		acc, err := w.node.Account(ctx, a)
		if err == nil && acc.Balance >= need {
			w.log.Info("enclave account funded", "account", a, "balance", acc.Balance)
			return nil
		}
	}
}

// submitLoop submits the outbox's calls, oldest first.
func (w *Worker) submitLoop(ctx context.Context) error {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	b := backoff{}
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-w.outbox:
		case <-tick.C:
		}
		if w.retired.Load() {
			// The chain takes no more calls of this release; the new
			// release's enclaves made the same ones.
			continue
		}
		for ctx.Err() == nil {
			n, err := w.submitRound(ctx)
			if errors.Is(err, errRenew) {
				w.renewSoon()
			}
			if waitsForPeers(err) {
				// Not this worker's fault, and over once the other
				// enclaves' votes are in: retry soon, not ever later.
				b.reset()
			}
			if err != nil {
				b.wait(ctx, w.log, "submit outgoing calls", err)
				break
			}
			b.reset()
			if n == 0 {
				break
			}
		}
	}
}

// wakeSubmitter tells the submit loop that the outbox has new calls.
func (w *Worker) wakeSubmitter() {
	select {
	case w.outbox <- struct{}{}:
	default:
	}
}

// submitRound signs up to submitBatch outbox calls with consecutive nonces
// from the account's committed nonce, broadcasts them in order and waits
// for their blocks. It returns the number of calls settled: on chain
// (executed or failed there) or refused for good (e.g. an unshield that
// another worker of the shard already executed).
func (w *Worker) submitRound(ctx context.Context) (int, error) {
	items, err := w.store.Outbox(submitBatch)
	if err != nil || len(items) == 0 {
		return 0, err
	}
	w.account.Lock()
	defer w.account.Unlock()
	signer := w.Signer()
	params, acc, err := w.accountState(ctx, signer)
	if err != nil {
		return 0, err
	}
	calls := make([]protocol.Outgoing, len(items))
	for i, it := range items {
		calls[i] = it.Call
	}
	signed, err := callAs[*protocol.SignedTxs](ctx, w.sup, &protocol.SignOutgoing{Calls: calls, Params: w.txParams(params, acc.Nonce)})
	if err != nil {
		return 0, err
	}
	spans, err := signed.Spans(len(items))
	if err != nil {
		return 0, fmt.Errorf("enclave signed outgoing calls: %w", err)
	}
	var (
		settled []uint64
		sent    []int
		hashes  [][32]byte
		stop    error
	)
	// method names transaction k's call for logs, from the outbox.
	method := func(k int) string {
		if spans[k][1]-spans[k][0] > 1 {
			return sidechain.MethodConfirmSidechainBlocks
		}
		return items[spans[k][0]].Call.Call.Method
	}
	// settle marks the calls transaction k carries as done.
	settle := func(k int, result string) {
		w.metrics.settled(result, spans[k][1]-spans[k][0])
		for _, it := range items[spans[k][0]:spans[k][1]] {
			settled = append(settled, it.Seq)
		}
	}
	for i, raw := range signed.Txs {
		_, err := w.node.Broadcast(ctx, raw)
		if err == nil || isInMempool(err) {
			sent, hashes = append(sent, i), append(hashes, tx.Hash(raw))
			continue
		}
		var te *client.TxError
		if !errors.As(err, &te) {
			stop = err
			break
		}
		switch {
		case alreadyOnChain(te):
			// Already on chain (submitted before a restart, or by
			// another worker of the shard): settled.
			w.log.Info("outgoing call already on chain", "method", method(i), "reason", te.Log)
			settle(i, "already_on_chain")
		case errors.Is(te, types.ErrUnaffordableFee):
			stop = w.fund(ctx, signer, acc.Balance+params.MinFee(len(raw))*uint64(len(signed.Txs)))
		case transient(te):
			stop = err // sign again next round
		case needsRenewal(te):
			stop = fmt.Errorf("%w: %w", errRenew, err)
		default:
			// Can never succeed; keeping it would block every later
			// call.
			w.log.Error("outgoing call refused by the chain; dropped", "method", method(i), "err", err)
			settle(i, "dropped")
		}
		break
	}
	// Later calls were signed with nonces after the refused one: they are
	// signed again next round.
	for k, i := range sent {
		wctx, cancel := context.WithTimeout(ctx, inclusionWait)
		res, err := w.node.WaitTx(wctx, hashes[k])
		cancel()
		var te *client.TxError
		result := "included"
		switch {
		case err == nil:
			w.log.Debug("outgoing call on chain", "method", method(i), "height", res.Height)
		case errors.As(err, &te) && te.Height > 0 && (transient(te) || needsRenewal(te)):
			// Failed in a block for a reason that passes (a shard block
			// whose turn has not come, a lapsed registration): the call
			// stays in the outbox and is signed again, never dropped, so
			// that a shard block and its unshields are not lost.
			w.log.Warn("outgoing call failed on chain; kept to retry", "method", method(i), "height", te.Height, "err", err)
			if stop == nil {
				stop = err
				if needsRenewal(te) {
					stop = fmt.Errorf("%w: %w", errRenew, err)
				}
			}
			if err := w.store.Done(settled...); err != nil {
				return 0, err
			}
			return len(settled), stop
		case errors.As(err, &te) && te.Height > 0:
			if alreadyOnChain(te) {
				w.log.Info("outgoing call already on chain", "method", method(i), "reason", te.Log)
				result = "already_on_chain"
			} else {
				w.log.Error("outgoing call failed on chain", "method", method(i), "height", te.Height, "err", err)
				result = "failed"
			}
		default:
			// Not (yet) included: left in the outbox for the next round.
			if stop == nil {
				stop = err
			}
			if err := w.store.Done(settled...); err != nil {
				return 0, err
			}
			return len(settled), stop
		}
		settle(i, result)
	}
	if err := w.store.Done(settled...); err != nil {
		return 0, err
	}
	return len(settled), stop
}

// transient reports a refusal that passes with time: a nonce or fee race,
// a confirmation of a block the chain has not reached, a vote for a shard
// block whose chain height is not confirmed yet or that is more than
// sidechain.VoteWindow after the shard's next (its predecessors still lack
// the other enclaves' votes; a vote within the window is recorded at once,
// so the host never holds one back), or a vote of an enclave registered
// after the block (the earlier enclaves' votes settle it, ending in
// ErrAlreadyConfirmed; once they have all left, this one counts). Such a
// call is kept and signed again: dropping a shard block's vote would
// strand every later block of the shard and its unshields.
// (ErrSeveralEnclaves is no longer returned by the chain.)
func transient(err error) bool {
	for _, e := range []error{
		types.ErrStaleNonce, types.ErrFutureNonce, types.ErrInsufficientFee, bridge.ErrFutureHeight,
		sidechain.ErrSeveralEnclaves, sidechain.ErrChainHeight, sidechain.ErrFutureBlock,
		sidechain.ErrRegisteredLater, bridge.ErrBlockNotConfirmed,
	} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// waitsForPeers reports a vote refused because it is beyond the chain's
// vote window: this worker is ahead of the shard's other enclaves.
func waitsForPeers(err error) bool { return errors.Is(err, sidechain.ErrFutureBlock) }

// needsRenewal reports a refusal because the enclave is not (or no longer)
// an active enclave of the shard, in either module.
func needsRenewal(err error) bool {
	return errors.Is(err, bridge.ErrNotActive) || errors.Is(err, bridge.ErrNotShardEnclave) ||
		errors.Is(err, sidechain.ErrNotActive) || errors.Is(err, sidechain.ErrNotShardEnclave)
}

// alreadyOnChain reports a refusal that means the call's effect is on chain
// already: submitted before a restart, or by another worker of the shard
// (which derives the same unshields and shard blocks): the block is
// confirmed, or this enclave's vote for it is recorded.
func alreadyOnChain(err error) bool {
	return errors.Is(err, bridge.ErrAlreadyUnshielded) || errors.Is(err, bridge.ErrStaleConfirmation) ||
		errors.Is(err, sidechain.ErrAlreadyConfirmed) || errors.Is(err, sidechain.ErrAlreadyVoted)
}

// isInMempool reports CometBFT's refusal of a transaction it already has.
func isInMempool(err error) bool {
	return errors.Is(err, client.ErrTxInCache)
}

// DevFunder returns a Config.Fund for development chains: it transfers
// max(need, amount) from the dev account key (e.g. accounts.DevKey("Alice"))
// to the enclave account. Calls are serialised, and a nonce clash with the
// key's other users is retried.
func DevFunder(nodeRPC string, from ed25519.PrivateKey, amount uint64) func(ctx context.Context, a tx.Address, need uint64) error {
	var mu sync.Mutex
	return func(ctx context.Context, a tx.Address, need uint64) error {
		mu.Lock()
		defer mu.Unlock()
		c, err := client.New(ctx, nodeRPC, client.Options{})
		if err != nil {
			return err
		}
		acc, err := c.Account(ctx, a)
		if err != nil {
			return err
		}
		if acc.Balance >= need {
			return nil
		}
		for attempt := 0; ; attempt++ {
			_, err = c.Transfer(ctx, from, a, max(need, amount))
			if err == nil || attempt == 10 || !(errors.Is(err, types.ErrStaleNonce) || errors.Is(err, types.ErrFutureNonce)) {
				if err != nil {
					return fmt.Errorf("dev funding of %s: %w", a, err)
				}
				return nil
			}
			sleep(ctx, 200*time.Millisecond)
		}
	}
}
