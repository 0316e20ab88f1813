package main

import (
	"context"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/integritee-go/integritee/chain/accounts"
	"github.com/integritee-go/integritee/chain/tx"
	"github.com/integritee-go/integritee/chain/types"
	"github.com/integritee-go/integritee/client"
	"github.com/integritee-go/integritee/internal/cli"
)

// defaultNode is the RPC address of a local node (integritee-node --dev).
const defaultNode = "http://127.0.0.1:26657"

// nodeFlags are the flags of every command that talks to a node.
type nodeFlags struct {
	node    string
	json    bool
	timeout time.Duration
	// trustDir keeps the newest verified header per chain; trustHeight
	// and trustHash name a trusted block that replaces it.
	trustDir    string
	trustHeight int64
	trustHash   string
}

func (f *nodeFlags) register(fs *flag.FlagSet, e *env) {
	fs.StringVar(&f.node, "node", defaultNode, "node RPC `address`")
	fs.BoolVar(&f.json, "json", false, "write JSON")
	fs.DurationVar(&f.timeout, "timeout", time.Minute, "give up after this long")
	fs.StringVar(&f.trustDir, "trust-dir", e.trustDir, "`directory` keeping the newest verified header of each chain (CHAIN-ID.json), verified forward from on the next run; empty: trust the node anew every run")
	fs.Int64Var(&f.trustHeight, "trust-height", 0, "verify from the block at this `height` (with --trust-hash) instead of the stored header, which it replaces")
	fs.StringVar(&f.trustHash, "trust-hash", "", "`hex` hash of the --trust-height block, from a source you trust")
}

// clientOptions are the light-client options the flags ask for.
func (f *nodeFlags) clientOptions() (client.Options, error) {
	var o client.Options
	if f.trustDir != "" {
		o.TrustStore = client.FileTrustStore{Dir: f.trustDir}
	}
	if (f.trustHeight == 0) != (f.trustHash == "") {
		return o, errors.New("--trust-height and --trust-hash go together")
	}
	if f.trustHeight < 0 {
		return o, fmt.Errorf("--trust-height %d: want a block height", f.trustHeight)
	}
	if f.trustHash != "" {
		h, err := hex.DecodeString(strings.TrimPrefix(f.trustHash, "0x"))
		if err != nil || len(h) != 32 {
			return o, fmt.Errorf("--trust-hash %q: want 32 bytes in hex", f.trustHash)
		}
		o.TrustHeight, o.TrustHash = f.trustHeight, h
	}
	return o, nil
}

// connect returns a client of the node and a context, below ctx, bounded
// by --timeout; call cancel when done.
func (f *nodeFlags) connect(ctx context.Context) (context.Context, context.CancelFunc, *client.Client, error) {
	opts, err := f.clientOptions()
	if err != nil {
		return nil, nil, nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	c, err := client.New(ctx, f.node, opts)
	if err != nil {
		cancel()
		return nil, nil, nil, err
	}
	return ctx, cancel, c, nil
}

// trustAdvice is what to do about a refused trusted header, appended to
// the error.
func trustAdvice(err error) string {
	if errors.Is(err, client.ErrTrustExpired) || errors.Is(err, client.ErrChainMismatch) || errors.Is(err, client.ErrTrustRecord) {
		return " (to go on: pass --trust-height and --trust-hash of a recent block from a source you trust, " +
			"or delete the chain's record in --trust-dir to trust the node anew)"
	}
	return ""
}

// devName returns the canonical dev account name of s ("alice", "Alice",
// "//Alice"), or "".
func devName(s string) string {
	s = strings.TrimPrefix(s, "//")
	for _, n := range accounts.DevNames {
		if strings.EqualFold(s, n) {
			return n
		}
	}
	return ""
}

func isHexAddress(s string) bool {
	_, err := tx.ParseAddress(strings.TrimPrefix(s, "0x"))
	return err == nil
}

// formatAmount writes a balance in base units and in TEER.
func formatAmount(v uint64) string {
	whole, frac := v/accounts.Unit, v%accounts.Unit
	s := strconv.FormatUint(whole, 10)
	if frac != 0 {
		s += "." + strings.TrimRight(fmt.Sprintf("%012d", frac), "0")
	}
	return fmt.Sprintf("%d (%s TEER)", v, s)
}

// parseAmount reads base units ("1500") or TEER with up to 12 decimals
// ("1.5TEER").
func parseAmount(s string) (uint64, error) {
	num, teer := strings.CutSuffix(strings.ToUpper(strings.TrimSpace(s)), "TEER")
	num = strings.TrimSpace(num)
	if !teer {
		v, err := strconv.ParseUint(num, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("amount %q: want base units or a TEER amount like 1.5TEER", s)
		}
		return v, nil
	}
	whole, frac, _ := strings.Cut(num, ".")
	if len(frac) > 12 || whole == "" && frac == "" {
		return 0, fmt.Errorf("amount %q: at most 12 decimals", s)
	}
	w, err := strconv.ParseUint(orZero(whole), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("amount %q: %w", s, err)
	}
	f, err := strconv.ParseUint(orZero(frac+strings.Repeat("0", 12-len(frac))), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("amount %q: %w", s, err)
	}
	if w > (^uint64(0)-f)/accounts.Unit {
		return 0, fmt.Errorf("amount %q too large", s)
	}
	return w*accounts.Unit + f, nil
}

func orZero(s string) string {
	if s == "" {
		return "0"
	}
	return s
}

// parseHash reads a 32-byte hex value (MRENCLAVE, shard, call hash).
func parseHash(s, what string) (types.Hash, error) {
	h, err := types.ParseHash(strings.TrimPrefix(s, "0x"))
	if err != nil {
		return h, fmt.Errorf("%s: %w", what, err)
	}
	return h, nil
}

// txOutput is what transaction commands print.
type txOutput struct {
	Hash   string `json:"hash"`
	Height int64  `json:"height"`
	Fee    uint64 `json:"fee"`
}

func newTxOutput(s *client.Submitted) txOutput {
	o := txOutput{Hash: strings.ToUpper(hex.EncodeToString(s.Hash[:])), Height: s.Height}
	for _, ev := range s.Events {
		if ev.Type == accounts.EventFee {
			o.Fee, _ = strconv.ParseUint(ev.Attrs["amount"], 10, 64)
		}
	}
	return o
}

// exactlyOne checks the positional arguments of a command taking one.
func exactlyOne(pos []string, what string) (string, error) {
	if len(pos) != 1 {
		return "", cli.Usagef("want exactly one %s, got %d arguments", what, len(pos))
	}
	return pos[0], nil
}
