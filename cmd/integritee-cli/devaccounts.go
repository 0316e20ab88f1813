package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"time"

	"github.com/integritee-go/integritee/enclave/stf"
	"github.com/integritee-go/integritee/internal/cli"
	"github.com/integritee-go/integritee/loadgen"
)

// devAccountsResult is the JSON output of trusted dev-accounts.
type devAccountsResult struct {
	Shard   string  `json:"shard"`
	First   uint32  `json:"first"`
	Count   uint32  `json:"count"`
	Amount  uint64  `json:"amount"`
	Calls   int     `json:"calls"`
	Seconds float64 `json:"seconds"`
}

// trustedDevAccounts creates generated accounts in a dev shard with the
// dev sudo's dev_accounts calls (loadgen.CreateDevAccounts).
func (e *env) trustedDevAccounts(fs *flag.FlagSet) cli.RunFunc {
	var f trustedFlags
	f.register(fs, e)
	n := fs.Uint("n", 0, fmt.Sprintf("number of generated accounts (stf.DevAccount(FIRST..FIRST+N-1)); %d per call", stf.MaxDevAccounts))
	first := fs.Uint("first", 0, "number of the first generated account")
	amount := fs.Uint64("amount", loadgen.DevAccountAmount, "base units each account gets")
	sudo := fs.String("sudo", "Alice", "the enclave's dev sudo (`account`: the dev build's is Alice)")
	return func(ctx context.Context, pos []string) error {
		if err := cli.NoArgs(pos); err != nil {
			return err
		}
		if *n == 0 || *n > 1<<31 || *first > 1<<31 {
			return errors.New("--n must be in 1..2^31, --first at most 2^31")
		}
		s, err := e.incognitoSigner(*sudo, *f.keystore)
		if err != nil {
			return fmt.Errorf("--sudo: %w", err)
		}
		ss, cancel, err := f.open(ctx, e)
		if err != nil {
			return err
		}
		defer cancel()
		start, calls := time.Now(), 0
		err = loadgen.CreateDevAccounts(ss.ctx, ss.tc, s.key, uint32(*first), uint32(*n), *amount, func(done int) {
			calls++
			if !f.json {
				fmt.Fprintf(e.stderr, "\r%d/%d accounts", done, *n)
			}
		})
		if !f.json && calls > 0 {
			fmt.Fprintln(e.stderr)
		}
		if err != nil {
			return err
		}
		out := devAccountsResult{Shard: fmt.Sprintf("%x", ss.shard), First: uint32(*first), Count: uint32(*n), Amount: *amount, Calls: calls, Seconds: time.Since(start).Seconds()}
		if f.json {
			return writeJSON(e.stdout, out)
		}
		fmt.Fprintf(e.stdout, "%d generated accounts %d..%d in shard %s have %s each (%d dev_accounts calls, %.1fs)\n",
			out.Count, out.First, out.First+out.Count-1, out.Shard, formatAmount(out.Amount), calls, out.Seconds)
		return nil
	}
}
