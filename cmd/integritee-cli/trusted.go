package main

import (
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"strings"
	"time"

	"github.com/integritee-go/integritee/chain/accounts"
	"github.com/integritee-go/integritee/chain/tx"
	"github.com/integritee-go/integritee/chain/types"
	"github.com/integritee-go/integritee/client"
	"github.com/integritee-go/integritee/client/trusted"
	"github.com/integritee-go/integritee/enclave/shielding"
	"github.com/integritee-go/integritee/enclave/stf"
	"github.com/integritee-go/integritee/internal/cli"
)

func (e *env) trustedGroup() *cli.Command {
	return &cli.Command{
		Name:  "trusted",
		Short: "confidential balances in a shard (shield, transfer, unshield, balance, nonce)",
		Commands: append([]*cli.Command{
			{Name: "shield", Usage: "--from NAME --amount N --to INCOGNITO [flags]", Short: "move public funds into the shard, to an incognito account", Setup: e.trustedShield},
			{Name: "transfer", Usage: "--from INCOGNITO --to INCOGNITO --amount N [--watch | --indirect] [flags]", Short: "confidential transfer inside the shard", Setup: e.trustedTransfer},
			{Name: "unshield", Usage: "--from INCOGNITO --to NAME|HEX --amount N [--watch | --indirect] [flags]", Short: "move shard funds to a public account", Setup: e.trustedUnshield},
			{Name: "balance", Usage: "--account INCOGNITO [flags]", Short: "an incognito account's balance and nonce (private getter)", Setup: e.trustedBalance},
		}, e.trustedDirectCommands()...),
	}
}

// trustedFlags are the flags every trusted command shares.
type trustedFlags struct {
	nodeFlags
	worker   string
	shard    string
	keystore *string
	noWait   bool
}

func (f *trustedFlags) register(fs *flag.FlagSet, e *env) {
	f.nodeFlags.register(fs, e)
	fs.StringVar(&f.worker, "worker", "http://127.0.0.1:2000", "worker RPC `URLs`, comma-separated workers of one shard: one is used, the next takes over when it fails (each verified against the chain)")
	fs.StringVar(&f.shard, "shard", "", "shard `hex` (default: the worker's)")
	fs.BoolVar(&f.noWait, "no-wait", false, "return once the transaction is in a block, before the worker processed it")
	f.keystore = keystoreFlag(fs)
}

// shardSession is a checked connection to a shard: the shielding key and
// MRENCLAVE come from the worker but are accepted only as the chain
// records them for the worker's enclave (trusted.Dial).
type shardSession struct {
	ctx       context.Context
	c         *client.Client
	tc        *trusted.Client
	shard     [32]byte
	mrenclave [32]byte
	pub       []byte
}

// open connects to the node and the worker and verifies the worker's
// enclave against its registration.
func (f *trustedFlags) open(ctx context.Context, e *env) (*shardSession, context.CancelFunc, error) {
	ctx, cancel, c, err := f.connect(ctx)
	if err != nil {
		return nil, nil, err
	}
	urls, err := workerURLs(f.worker)
	var tc *trusted.Client
	if err == nil {
		tc, err = trusted.DialWorkers(ctx, urls, c, trusted.Options{Now: e.now})
	}
	if err == nil && f.shard != "" {
		var want types.Hash
		if want, err = types.ParseHash(strings.TrimPrefix(f.shard, "0x")); err != nil {
			err = fmt.Errorf("--shard: %w", err)
		} else if want != tc.Shard() {
			err = fmt.Errorf("serves shard %x, not %s", tc.Shard(), want)
		}
	}
	if err != nil {
		cancel()
		return nil, nil, fmt.Errorf("worker %s: %w", f.worker, err)
	}
	return &shardSession{ctx: ctx, c: c, tc: tc, shard: tc.Shard(), mrenclave: tc.MRENCLAVE(), pub: tc.ShieldingKey()}, cancel, nil
}

// workerURLs splits --worker's comma-separated list.
func workerURLs(s string) ([]string, error) {
	var urls []string
	for u := range strings.SplitSeq(s, ",") {
		if u = strings.TrimSpace(u); u != "" {
			urls = append(urls, u)
		}
	}
	if len(urls) == 0 {
		return nil, errors.New("--worker: no URL")
	}
	return urls, nil
}

// incognitoAccount resolves NAME//SUFFIX of a dev account to its derived
// dev key, anything else like a public account name.
func incognitoAccount(s, keystore string) (*account, error) {
	base, suffix, derived := strings.Cut(strings.TrimPrefix(s, "//"), "//")
	if derived {
		n := devName(base)
		if n == "" || suffix == "" {
			return nil, fmt.Errorf("%q: derived names are DEVNAME//SUFFIX, e.g. Alice//incognito", s)
		}
		name := n + "//" + suffix
		k := accounts.DevKey(name)
		return &account{Name: name, Address: tx.AddressOf(k.Public().(ed25519.PublicKey)), Source: "dev", key: k}, nil
	}
	return resolve(s, keystore)
}

func (e *env) incognitoSigner(s, keystore string) (*account, error) {
	a, err := incognitoAccount(s, keystore)
	if err != nil {
		return nil, err
	}
	if a.Source == "address" {
		return nil, fmt.Errorf("%s is an address; signing needs a dev name, DEVNAME//SUFFIX or a keystore name", s)
	}
	if err := e.unlock(a); err != nil {
		return nil, err
	}
	return a, nil
}

// waitProcessed waits until the worker has processed height h.
func (s *shardSession) waitProcessed(h int64) error {
	for {
		hl, err := s.tc.Health(s.ctx)
		if err == nil && hl.Height >= h {
			return nil
		}
		select {
		case <-s.ctx.Done():
			return fmt.Errorf("worker did not process block %d: %w", h, s.ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// trustedResult is the JSON output of the trusted commands that submit.
type trustedResult struct {
	TxHash string `json:"tx_hash"`
	Height int64  `json:"height"`
	Shard  string `json:"shard"`
	Nonce  uint64 `json:"trusted_nonce,omitempty"`
}

func (f *trustedFlags) report(e *env, s *shardSession, what string, sub *client.Submitted, nonce *uint64) error {
	if !f.noWait {
		if err := s.waitProcessed(sub.Height); err != nil {
			return err
		}
	}
	out := trustedResult{TxHash: hex.EncodeToString(sub.Hash[:]), Height: sub.Height, Shard: hex.EncodeToString(s.shard[:])}
	if nonce != nil {
		out.Nonce = *nonce
	}
	if f.json {
		return writeJSON(e.stdout, out)
	}
	fmt.Fprintf(e.stdout, "%s: tx %s in block %d (shard %s)\n", what, out.TxHash, out.Height, out.Shard)
	return nil
}

func (e *env) trustedShield(fs *flag.FlagSet) cli.RunFunc {
	var f trustedFlags
	f.register(fs, e)
	from := fs.String("from", "", "public account paying: dev account or keystore `name`")
	to := fs.String("to", "", "incognito `account` credited in the shard (name, DEVNAME//SUFFIX or hex)")
	amount := fs.String("amount", "", "`amount` in base units or TEER (1.5TEER)")
	return func(ctx context.Context, pos []string) error {
		if err := cli.NoArgs(pos); err != nil {
			return err
		}
		if *from == "" || *to == "" || *amount == "" {
			return errors.New("--from, --to and --amount are required")
		}
		payer, err := e.signer(*from, *f.keystore)
		if err != nil {
			return fmt.Errorf("--from: %w", err)
		}
		recipient, err := incognitoAccount(*to, *f.keystore)
		if err != nil {
			return fmt.Errorf("--to: %w", err)
		}
		n, err := parseAmount(*amount)
		if err != nil {
			return err
		}
		s, cancel, err := f.open(ctx, e)
		if err != nil {
			return err
		}
		defer cancel()
		enc, err := shielding.Encrypt(s.pub, shielding.InfoShieldRecipient, recipient.Address[:])
		if err != nil {
			return err
		}
		sub, err := s.c.ShieldFunds(s.ctx, payer.key, s.shard, n, enc)
		if err != nil {
			return err
		}
		return f.report(e, s, fmt.Sprintf("shielded %s to an encrypted recipient", formatAmount(n)), sub, nil)
	}
}

// trustedCallFlags are the flags of transfer and unshield.
type trustedCallFlags struct {
	trustedFlags
	indirect bool
	watch    bool
	from     *string
	payer    *string
	nonce    int64
}

func (f *trustedCallFlags) register(fs *flag.FlagSet, e *env) {
	f.trustedFlags.register(fs, e)
	fs.BoolVar(&f.indirect, "indirect", false, "send the call through the chain instead of directly to the worker (bridge invoke paid by --payer)")
	registerWatch(fs, &f.watch)
	f.from = fs.String("from", "", "incognito `account` signing the call (name, DEVNAME//SUFFIX or keystore name)")
	f.payer = fs.String("payer", "", "public `account` paying the invoke (default: DEVNAME of a DEVNAME//SUFFIX sender)")
	fs.Int64Var(&f.nonce, "nonce", -1, "trusted call `nonce` (default: asked with a private getter)")
}

// submit signs call for the sender and sends it to the worker, or with
// --indirect through a bridge invoke.
func (f *trustedCallFlags) submit(ctx context.Context, e *env, what string, build func(from tx.Address) stf.Call) error {
	if !f.indirect {
		return submitDirect(ctx, e, f, f.watch, what, build)
	}
	if f.watch {
		return errors.New("--watch follows a direct call: it cannot be used with --indirect")
	}
	sender, err := e.incognitoSigner(*f.from, *f.keystore)
	if err != nil {
		return fmt.Errorf("--from: %w", err)
	}
	payerName := *f.payer
	if payerName == "" {
		base, _, derived := strings.Cut(strings.TrimPrefix(*f.from, "//"), "//")
		if !derived {
			return errors.New("--payer is required unless --from is DEVNAME//SUFFIX")
		}
		payerName = base
	}
	payer, err := e.signer(payerName, *f.keystore)
	if err != nil {
		return fmt.Errorf("--payer: %w", err)
	}
	s, cancel, err := f.open(ctx, e)
	if err != nil {
		return err
	}
	defer cancel()
	nonce := uint64(f.nonce)
	if f.nonce < 0 {
		if nonce, err = s.tc.Nonce(s.ctx, sender.key); err != nil {
			return fmt.Errorf("trusted nonce: %w", err)
		}
	}
	ct, err := s.tc.EncryptCall(sender.key, build(sender.Address), nonce)
	if err != nil {
		return err
	}
	sub, err := s.c.Invoke(s.ctx, payer.key, s.shard, ct)
	if err != nil {
		return err
	}
	return f.report(e, s, what, sub, &nonce)
}

func (e *env) trustedTransfer(fs *flag.FlagSet) cli.RunFunc {
	var f trustedCallFlags
	f.register(fs, e)
	to := fs.String("to", "", "incognito `account` receiving (name, DEVNAME//SUFFIX or hex)")
	amount := fs.String("amount", "", "`amount` in base units or TEER (1.5TEER)")
	return func(ctx context.Context, pos []string) error {
		if err := cli.NoArgs(pos); err != nil {
			return err
		}
		if *f.from == "" || *to == "" || *amount == "" {
			return errors.New("--from, --to and --amount are required")
		}
		recipient, err := incognitoAccount(*to, *f.keystore)
		if err != nil {
			return fmt.Errorf("--to: %w", err)
		}
		n, err := parseAmount(*amount)
		if err != nil {
			return err
		}
		return f.submit(ctx, e, "trusted transfer sent", func(from tx.Address) stf.Call {
			return stf.Call{Transfer: &stf.Transfer{From: from, To: recipient.Address, Amount: n}}
		})
	}
}

func (e *env) trustedUnshield(fs *flag.FlagSet) cli.RunFunc {
	var f trustedCallFlags
	f.register(fs, e)
	to := fs.String("to", "", "public `account` receiving (dev account, keystore name or hex)")
	amount := fs.String("amount", "", "`amount` in base units or TEER (1.5TEER)")
	return func(ctx context.Context, pos []string) error {
		if err := cli.NoArgs(pos); err != nil {
			return err
		}
		if *f.from == "" || *to == "" || *amount == "" {
			return errors.New("--from, --to and --amount are required")
		}
		beneficiary, err := resolve(*to, *f.keystore)
		if err != nil {
			return fmt.Errorf("--to: %w", err)
		}
		n, err := parseAmount(*amount)
		if err != nil {
			return err
		}
		return f.submit(ctx, e, "trusted unshield sent", func(from tx.Address) stf.Call {
			return stf.Call{Unshield: &stf.UnshieldTo{From: from, Beneficiary: beneficiary.Address, Amount: n}}
		})
	}
}

// trustedBalance is the JSON output of trusted balance.
type trustedBalance struct {
	Account tx.Address `json:"account"`
	Shard   string     `json:"shard"`
	Free    uint64     `json:"free"`
	Nonce   uint64     `json:"nonce"`
	// Stale: the worker answered without the shard's read barrier.
	Stale bool `json:"stale,omitempty"`
}

func (e *env) trustedBalance(fs *flag.FlagSet) cli.RunFunc {
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
		s, cancel, err := f.open(ctx, e)
		if err != nil {
			return err
		}
		defer cancel()
		free, stale1, err := s.tc.BalanceRead(s.ctx, a.key)
		if err != nil {
			return err
		}
		nonce, stale2, err := s.tc.NonceRead(s.ctx, a.key)
		if err != nil {
			return err
		}
		out := trustedBalance{Account: a.Address, Shard: hex.EncodeToString(s.shard[:]), Free: free, Nonce: nonce, Stale: stale1 || stale2}
		if out.Stale {
			warnStale(e, s.tc.URL())
		}
		if f.json {
			return writeJSON(e.stdout, out)
		}
		fmt.Fprintf(e.stdout, "%s in shard %s: free %s, nonce %d\n", a.Address, out.Shard, formatAmount(free), nonce)
		return nil
	}
}
