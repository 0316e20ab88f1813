package worker

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"errors"
	"fmt"
	"time"

	"github.com/integritee-go/integritee/chain/bridge"
	"github.com/integritee-go/integritee/chain/teerex"
	"github.com/integritee-go/integritee/chain/tx"
	"github.com/integritee-go/integritee/chain/types"
	"github.com/integritee-go/integritee/enclave/protocol"
)

// Registration: the enclave's signer must stay registered on chain with
// this enclave's measurement, shielding key and the worker's URL. The
// worker registers before it syncs (ensureRegistered) and then checks
// every renewCheck, or at once when the chain refused a call for it
// (renewSoon), renewing before it expires. The same check recounts the
// shard's active enclaves, which decides whether direct calls are allowed
// (direct.go).

// renewCheck is how often the registration is checked, at most; under a
// policy with a liveness period, six times per period, so that the
// enclave keeps alive every third of it (keepAliveDue) with time to spare.
const renewCheck = time.Minute

// renewLoop keeps the registration current and alive and the count of the
// shard's enclaves fresh until ctx is done.
func (w *Worker) renewLoop(ctx context.Context) error {
	// The first check at once: it learns the liveness period, which may
	// call for the next keep_alive well within renewCheck.
	timer := time.NewTimer(0)
	defer timer.Stop()
	var liveness time.Duration // the policy's, as last read
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-timer.C:
		case <-w.renewNow:
		}
		st, err := w.registrationCurrent(ctx)
		if err == nil {
			liveness = st.liveness
		}
		switch {
		case err != nil:
			if ctx.Err() == nil {
				w.log.Warn("check registration", "err", err)
			}
		case !st.current:
			if err := w.register(ctx); err != nil && ctx.Err() == nil {
				w.log.Warn("renew registration", "err", err)
			}
		case st.keepAlive:
			if err := w.keepAlive(ctx); err != nil && ctx.Err() == nil {
				w.log.Warn("keep alive", "err", err)
			}
		}
		next := renewCheck
		if liveness > 0 {
			next = min(next, liveness/6)
		}
		timer.Reset(next)
		if err := w.refreshShardEnclaves(ctx); err != nil && ctx.Err() == nil {
			w.log.Warn("count the shard's enclaves", "err", err)
		}
	}
}

// renewSoon asks the renewal loop to check the registration now.
func (w *Worker) renewSoon() {
	select {
	case w.renewNow <- struct{}{}:
	default:
	}
}

// ensureRegistered makes sure the enclave's signer has a current
// registration on chain: registered with this enclave's measurement and
// shielding key and this worker's URL, and not within a quarter of the
// renewal period of expiring. It registers (or renews) otherwise and waits
// for the registration's block.
func (w *Worker) ensureRegistered(ctx context.Context) error {
	b := backoff{}
	for {
		st, err := w.registrationCurrent(ctx)
		if err == nil && st.current && st.keepAlive {
			// Back after a pause longer than the liveness period: alive
			// again before serving.
			err = w.keepAlive(ctx)
			if err == nil {
				return nil
			}
		} else if err == nil && st.current {
			return nil
		}
		if err == nil {
			err = w.register(ctx)
			if err == nil {
				continue // check what the chain recorded
			}
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		b.wait(ctx, w.log, "enclave registration", err)
	}
}

func (w *Worker) workerURL() string {
	if w.cfg.WorkerURL != "" {
		return w.cfg.WorkerURL
	}
	return w.RPCAddr()
}

// registration is what registrationCurrent found.
type registration struct {
	// current: registered as this enclave and worker, not near expiry.
	current bool
	// keepAlive: a keep_alive is due (keepAliveDue).
	keepAlive bool
	// liveness is the policy's liveness period (zero: none).
	liveness time.Duration
}

func (w *Worker) registrationCurrent(ctx context.Context) (registration, error) {
	id := w.sup.Identity()
	signer := tx.AddressOf(ed25519.PublicKey(id.SignerPublic))
	reg, err := w.chain.registration(ctx, signer)
	if errors.Is(err, errNotRegistered) {
		return registration{}, nil
	}
	if err != nil {
		return registration{}, err
	}
	if reg.ShieldingKeyHash != shieldingKeyHash(id.ShieldingPublic) || [32]byte(reg.MRENCLAVE) != id.MRENCLAVE ||
		reg.WorkerURL != w.workerURL() {
		w.log.Info("registration outdated", "signer", signer)
		return registration{}, nil
	}
	p, err := w.chain.policy(ctx)
	if err != nil {
		return registration{}, err
	}
	st := registration{liveness: p.Liveness()}
	period := p.RenewalPeriod()
	w.metrics.registrationExpires(reg.ExpiresAt(period))
	if left := time.Until(reg.ExpiresAt(period)); left < period/4 {
		w.log.Info("registration near expiry", "signer", signer, "expires_in", left.Round(time.Second))
		return st, nil
	}
	// The chain judges silence by its block time, not by this clock.
	now := time.Now()
	if t, err := w.chain.latestTime(ctx); err == nil {
		now = t
	}
	st.current, st.keepAlive = true, keepAliveDue(reg, p.Liveness(), now)
	return st, nil
}

// keepAliveDue reports whether reg needs a keep_alive at now under
// liveness period d: a third of it passed since it was last seen, which
// leaves two more chances before it falls silent (teerex.ErrSilent).
func keepAliveDue(reg *teerex.Enclave, d time.Duration, now time.Time) bool {
	return d > 0 && now.Sub(reg.LastSeen()) >= d/3
}

// keepAlive has the enclave sign a keep_alive and submits it.
func (w *Worker) keepAlive(ctx context.Context) error {
	h, err := w.signAndSubmit(ctx, "keep_alive", &protocol.SignRegistration{KeepAlive: true}, nil)
	if err == nil {
		w.log.Debug("enclave kept alive", "signer", w.Signer(), "height", h)
	}
	return err
}

// register has the enclave sign a registration with a fresh quote and
// submits it.
func (w *Worker) register(ctx context.Context) error {
	url := w.workerURL()
	h, err := w.signAndSubmit(ctx, "registration", &protocol.SignRegistration{WorkerURL: url}, func(fee uint64) {
		w.log.Info("registering enclave", "signer", w.Signer(), "url", url, "fee", fee)
	})
	if err == nil {
		w.log.Info("enclave registered", "signer", w.Signer(), "height", h)
	}
	return err
}

// signAndSubmit has the enclave sign req (a registration or a keep_alive,
// named what) at the signer's next nonce, funds the signer instead if it
// cannot pay the fee, and otherwise broadcasts the transaction (calling
// sending with its fee first) and returns the height that included it.
func (w *Worker) signAndSubmit(ctx context.Context, what string, req *protocol.SignRegistration, sending func(fee uint64)) (int64, error) {
	w.account.Lock()
	defer w.account.Unlock()
	signer := w.Signer()
	params, acc, err := w.accountState(ctx, signer)
	if err != nil {
		return 0, err
	}
	req.Params = w.txParams(params, acc.Nonce)
	signed, err := callAs[*protocol.SignedTxs](ctx, w.sup, req)
	if err != nil {
		return 0, err
	}
	if len(signed.Txs) != 1 {
		return 0, fmt.Errorf("enclave signed %d %s transactions, want 1", len(signed.Txs), what)
	}
	stx, err := tx.Decode(signed.Txs[0])
	if err != nil {
		return 0, fmt.Errorf("%s from the enclave: %w", what, err)
	}
	if acc.Balance < stx.Body.Fee {
		return 0, w.fund(ctx, signer, stx.Body.Fee)
	}
	if sending != nil {
		sending(stx.Body.Fee)
	}
	h, err := w.node.Broadcast(ctx, signed.Txs[0])
	if err != nil {
		return 0, fmt.Errorf("broadcast %s: %w", what, err)
	}
	wctx, cancel := context.WithTimeout(ctx, inclusionWait)
	defer cancel()
	res, err := w.node.WaitTx(wctx, h)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", what, err)
	}
	return res.Height, nil
}

// refreshShardEnclaves reads from the chain how many active enclaves are
// registered with the shard's current measurement.
func (w *Worker) refreshShardEnclaves(ctx context.Context) error {
	st, err := w.node.Shard(ctx, types.Hash(w.cfg.Shard))
	if err != nil {
		return fmt.Errorf("shard %x: %w", w.cfg.Shard, err)
	}
	n, err := w.activeEnclaves(ctx, st.Shard, st.Height)
	if err != nil {
		return err
	}
	if w.enclaves.set(n) {
		w.log.Info("active enclaves of the shard", "enclaves", n)
	}
	if n == 1 {
		// At every check, not only on a change: loud while it lasts.
		w.log.Warn("SINGLE ENCLAVE: "+singleEnclaveWarning, "shard", types.Hash(w.cfg.Shard))
	}
	return nil
}

// activeEnclaves counts the active enclaves registered with the shard's
// measurement at height, stopping at two: all that direct calls depend on
// (one or not), however many registrations the measurement has. Every
// query is at height, whose proving header the shard's query already
// waited for: a query of the latest state waits for the next block.
func (w *Worker) activeEnclaves(ctx context.Context, s bridge.Shard, height int64) (int, error) {
	m := s.MRENCLAVEAt(uint64(max(height, 0)))
	pol, _, err := w.node.PolicyAt(ctx, height)
	if err != nil {
		return 0, err
	}
	n := 0
	if _, _, err := w.node.EachEnclaveAt(ctx, &m, height, func(e teerex.Enclave) bool {
		now := time.Now()
		silent := pol.Liveness() > 0 && now.After(e.LastSeen().Add(pol.Liveness()))
		if now.Before(e.ExpiresAt(pol.RenewalPeriod())) && !silent {
			n++
		}
		return n < 2
	}); err != nil {
		return 0, fmt.Errorf("enclaves of %s: %w", m, err)
	}
	return n, nil
}

// shieldingKeyHash is what teerex records of a shielding key.
func shieldingKeyHash(pub []byte) [32]byte { return sha256.Sum256(pub) }
