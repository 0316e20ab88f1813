package main

import (
	"context"
	"flag"
	"fmt"

	"github.com/integritee-go/integritee/chain/tx"
	"github.com/integritee-go/integritee/internal/cli"
)

func (e *env) balanceCommand() *cli.Command {
	return &cli.Command{Name: "balance", Usage: "NAME|HEX [--node URL] [--json]", Short: "show an account's balance and nonce, proved (balance NAME|HEX)", Setup: e.balance}
}

// balanceOutput is what balance prints.
type balanceOutput struct {
	Address tx.Address `json:"address"`
	Balance uint64     `json:"balance"`
	Nonce   uint64     `json:"nonce"`
	Height  int64      `json:"height"`
}

func (e *env) balance(fs *flag.FlagSet) cli.RunFunc {
	var nf nodeFlags
	nf.register(fs, e)
	ks := keystoreFlag(fs)
	return func(ctx context.Context, pos []string) error {
		who, err := exactlyOne(pos, "NAME|HEX")
		if err != nil {
			return err
		}
		a, err := resolve(who, *ks)
		if err != nil {
			return err
		}
		ctx, cancel, c, err := nf.connect(ctx)
		if err != nil {
			return err
		}
		defer cancel()
		acc, h, err := c.VerifiedAccount(ctx, a.Address, 0)
		if err != nil {
			return err
		}
		out := balanceOutput{Address: a.Address, Balance: acc.Balance, Nonce: acc.Nonce, Height: h}
		if nf.json {
			return writeJSON(e.stdout, out)
		}
		fmt.Fprintf(e.stdout, "%s\nbalance %s, nonce %d (proved at height %d)\n", out.Address, formatAmount(out.Balance), out.Nonce, out.Height)
		return nil
	}
}
