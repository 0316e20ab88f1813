package trusted

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"time"

	"github.com/integritee-go/integritee/chain/tx"
	"github.com/integritee-go/integritee/enclave/stf"
	"github.com/integritee-go/integritee/worker/rpc/api"
)

// Stale answers (see the package doc).

// DefaultStaleTries is how many times Nonce asks a worker that answers
// stale before it moves to the next (Options.StaleTries).
const DefaultStaleTries = 2

// staleRetryPause is the pause before asking a worker again that answered
// stale: its barrier already waited seconds, a moment more lets a new
// leader settle.
const staleRetryPause = 100 * time.Millisecond

// ErrStaleAnswer means every worker asked marked its answer stale: none
// could vouch that it applied the calls the shard ordered before the
// getter (a minority partition, or workers lagging), so a nonce from it
// might be used already.
var ErrStaleAnswer = errors.New("trusted: no worker gave a fresh answer (each answered from its own state without the shard's read barrier)")

// Reading is a getter's answer.
type Reading struct {
	// Value is the getter's value, from the enclave.
	Value []byte
	// Stale says the worker answered without the shard's read barrier: its
	// state may miss calls other workers answered a moment ago. It is the
	// host's word: false is not a guarantee either.
	Stale bool
	// Worker is the URL of the worker that answered.
	Worker string
}

// staleError is a worker's stale answer to a getter that needs a fresh
// one. final says every worker answered stale: the request ends there
// rather than going round the workers again.
type staleError struct {
	worker string
	tries  int
	final  bool
}

func (e *staleError) Error() string {
	return fmt.Sprintf("%v: worker %s answered stale %d times", ErrStaleAnswer, e.worker, e.tries)
}

func (e *staleError) Is(target error) bool { return target == ErrStaleAnswer }

// freshNonce reads key's next nonce from an answer not marked stale:
// StaleTries times at a worker, then at the next ones (do's failover,
// which also makes the next call go to the worker that answered fresh).
// When all answered stale it fails with ErrStaleAnswer, or, with
// AllowStaleNonce, returns the highest stale nonce: a stale state lags,
// so the highest is the nearest.
func (c *Client) freshNonce(ctx context.Context, key ed25519.PrivateKey) (uint64, error) {
	a := tx.AddressOf(key.Public().(ed25519.PublicKey))
	raw, err := stf.EncodeGetter(stf.Getter{Nonce: &a})
	if err != nil {
		return 0, err
	}
	var (
		nonce, best uint64
		seen        bool
		stale       = map[int]bool{}
	)
	err = c.do(ctx, api.MethodGetNonce, func(ctx context.Context, w *worker) error {
		for try := 1; ; try++ {
			r, err := c.getterAt(ctx, w, api.MethodGetNonce, key, raw)
			if err != nil {
				return err
			}
			n, err := decodeUint(r.Value)
			if err != nil {
				return err
			}
			if !r.Stale {
				nonce = n
				return nil
			}
			best, seen = max(best, n), true
			if try >= c.staleTries {
				stale[w.i] = true
				return &staleError{worker: w.url, tries: try, final: len(stale) == len(c.eps)}
			}
			t := time.NewTimer(staleRetryPause)
			select {
			case <-ctx.Done():
				t.Stop()
				return ctx.Err()
			case <-t.C:
			}
		}
	})
	switch {
	case err == nil:
		return nonce, nil
	case errors.Is(err, ErrStaleAnswer) && c.allowStale && seen:
		return best, nil
	}
	return 0, err
}
