package main

import (
	"context"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"

	"github.com/integritee-go/integritee/chain/tx"
	"github.com/integritee-go/integritee/client/trusted"
	"github.com/integritee-go/integritee/enclave/stf"
	"github.com/integritee-go/integritee/internal/cli"
	"github.com/integritee-go/integritee/worker/rpc/api"
)

// trustedDirectCommands are the trusted group's commands of the direct
// path.
func (e *env) trustedDirectCommands() []*cli.Command {
	return []*cli.Command{
		{Name: "nonce", Usage: "--account INCOGNITO [flags]", Short: "an incognito account's next trusted-call nonce (private getter)", Setup: e.trustedNonce},
		{Name: "dev-accounts", Usage: "--n N [--first F] [--amount A] [--sudo NAME] [flags]", Short: "dev builds: create N generated accounts in the shard (dev_accounts calls of the dev sudo), e.g. for a large state", Setup: e.trustedDevAccounts},
	}
}

// registerWatch registers transfer's and unshield's --watch.
func registerWatch(fs *flag.FlagSet, watch *bool) {
	fs.BoolVar(watch, "watch", false, "print the call's status stream: submitted, executed or invalid, confirmed (direct path)")
}

// dialWorker connects to the worker and verifies its enclave.
func (f *trustedFlags) dialWorker(ctx context.Context, e *env) (context.Context, context.CancelFunc, *trusted.Client, error) {
	s, cancel, err := f.open(ctx, e)
	if err != nil {
		return nil, nil, nil, err
	}
	return s.ctx, cancel, s.tc, nil
}

// directResult is the JSON output of a direct call (and of each status
// with --watch).
type directResult struct {
	Status     string `json:"status"`
	Hash       string `json:"hash"`
	Shard      string `json:"shard"`
	Nonce      uint64 `json:"trusted_nonce"`
	Success    *bool  `json:"success,omitempty"`
	Error      string `json:"error,omitempty"`
	Reason     string `json:"reason,omitempty"`
	Block      uint64 `json:"shard_block,omitempty"`
	HeaderHash string `json:"header_hash,omitempty"`
	StateHash  string `json:"state_hash,omitempty"`
}

func (d *directResult) set(r *trusted.Result) {
	ok := r.Success
	d.Success, d.Error = &ok, r.Error
	d.Block, d.HeaderHash, d.StateHash = r.Block.Number, r.HeaderHash.String(), r.Block.StateHash.String()
}

func (d *directResult) print(e *env, asJSON bool, what string) error {
	if asJSON {
		return writeJSON(e.stdout, d)
	}
	switch {
	case d.Status == api.StatusInvalid:
		fmt.Fprintf(e.stdout, "%s: invalid: %s\n", what, d.Reason)
	case d.Success != nil && !*d.Success:
		fmt.Fprintf(e.stdout, "%s: %s but failed: %s (shard block %d, nonce %d used)\n", what, d.Status, d.Error, d.Block, d.Nonce)
	case d.Block != 0:
		fmt.Fprintf(e.stdout, "%s: %s in shard block %d (header %s, state %s)\n", what, d.Status, d.Block, d.HeaderHash, d.StateHash)
	default:
		fmt.Fprintf(e.stdout, "%s: %s (call %s)\n", what, d.Status, d.Hash)
	}
	return nil
}

// submitDirect signs call for the sender and sends it to the worker; with
// watch it prints every status until the last.
func submitDirect(ctx context.Context, e *env, f *trustedCallFlags, watch bool, what string, build func(from tx.Address) stf.Call) error {
	if *f.payer != "" {
		return errors.New("--payer pays a chain invoke: use it with --indirect")
	}
	sender, err := e.incognitoSigner(*f.from, *f.keystore)
	if err != nil {
		return fmt.Errorf("--from: %w", err)
	}
	ctx, cancel, tc, err := f.dialWorker(ctx, e)
	if err != nil {
		return err
	}
	defer cancel()
	nonce := uint64(f.nonce)
	if f.nonce < 0 {
		if nonce, err = tc.Nonce(ctx, sender.key); err != nil {
			return fmt.Errorf("trusted nonce: %w", err)
		}
	}
	ct, err := tc.EncryptCall(sender.key, build(sender.Address), nonce)
	if err != nil {
		return err
	}
	shard := tc.Shard()
	out := directResult{Shard: hex.EncodeToString(shard[:]), Nonce: nonce}
	if !watch {
		// SignedBy: if a worker dies with the call, the next one settles
		// whether it ran (trusted.ErrExecutedEarlier).
		r, err := tc.Submit(ctx, ct, trusted.SignedBy(sender.key, nonce))
		var ie *trusted.InvalidCallError
		if errors.As(err, &ie) {
			return fmt.Errorf("%s refused by the enclave: %s", what, ie.Reason)
		}
		if err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		out.Status, out.Hash = api.StatusExecuted, hex.EncodeToString(r.Hash[:])
		out.set(r)
		if !r.Success && !f.json {
			return failed(what, r, nonce)
		}
		if err := out.print(e, f.json, what); err != nil {
			return err
		}
		if !r.Success {
			return failed(what, r, nonce)
		}
		return nil
	}
	w, err := tc.Watch(ctx, ct, trusted.SignedBy(sender.key, nonce))
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	defer w.Close()
	for {
		st, err := w.Next(ctx)
		if err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		s := out
		s.Status, s.Reason = st.Status, st.Reason
		if st.Result != nil {
			s.Hash = hex.EncodeToString(st.Result.Hash[:])
			s.set(st.Result)
		}
		if err := s.print(e, f.json, what); err != nil {
			return err
		}
		if st.Final() {
			if st.Status == api.StatusInvalid {
				return fmt.Errorf("%s refused by the enclave: %s", what, st.Reason)
			}
			if st.Result != nil && !st.Result.Success {
				return failed(what, st.Result, nonce)
			}
			return nil
		}
	}
}

// failed is the error of a call the STF refused: it is in a shard block
// and its nonce is used, but it changed nothing else.
func failed(what string, r *trusted.Result, nonce uint64) error {
	return fmt.Errorf("%s failed in the enclave: %s (shard block %d, nonce %d used)", what, r.Error, r.Block.Number, nonce)
}

// trustedNonce is the JSON output of trusted nonce.
type trustedNonce struct {
	Account tx.Address `json:"account"`
	Shard   string     `json:"shard"`
	Nonce   uint64     `json:"nonce"`
	Stale   bool       `json:"stale,omitempty"`
}

// warnStale tells the user on stderr that a worker's getter answer is
// stale (GetterResult.stale): it may miss calls other workers answered.
func warnStale(e *env, worker string) {
	fmt.Fprintf(e.stderr, "warning: worker %s answered from its own state without the shard's read barrier (stale): "+
		"it may miss calls other workers answered a moment ago; ask again or ask another worker\n", worker)
}

func (e *env) trustedNonce(fs *flag.FlagSet) cli.RunFunc {
	var f trustedFlags
	f.register(fs, e)
	acct := fs.String("account", "", "incognito `account` (its key signs the getter: name, DEVNAME//SUFFIX or keystore name)")
	return func(ctx context.Context, pos []string) error {
		if err := cli.NoArgs(pos); err != nil {
			return err
		}
		if *acct == "" {
			return errors.New("--account is required")
		}
		a, err := e.incognitoSigner(*acct, *f.keystore)
		if err != nil {
			return fmt.Errorf("--account: %w", err)
		}
		ctx, cancel, tc, err := f.dialWorker(ctx, e)
		if err != nil {
			return err
		}
		defer cancel()
		n, stale, err := tc.NonceRead(ctx, a.key)
		if err != nil {
			return err
		}
		if stale {
			warnStale(e, tc.URL())
		}
		shard := tc.Shard()
		out := trustedNonce{Account: a.Address, Shard: hex.EncodeToString(shard[:]), Nonce: n, Stale: stale}
		if f.json {
			return writeJSON(e.stdout, out)
		}
		fmt.Fprintf(e.stdout, "%s in shard %s: next nonce %d\n", a.Address, out.Shard, n)
		return nil
	}
}
