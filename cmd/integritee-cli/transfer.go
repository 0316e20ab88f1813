package main

import (
	"context"
	"errors"
	"flag"
	"fmt"

	"github.com/integritee-go/integritee/chain/tx"
	"github.com/integritee-go/integritee/internal/cli"
)

func (e *env) transferCommand() *cli.Command {
	return &cli.Command{Name: "transfer", Usage: "--from NAME --to NAME|HEX --amount N [--node URL] [--json]", Short: "send funds (transfer --from NAME --to NAME|HEX --amount N)", Setup: e.transfer}
}

func (e *env) transfer(fs *flag.FlagSet) cli.RunFunc {
	var nf nodeFlags
	nf.register(fs, e)
	ks := keystoreFlag(fs)
	from := fs.String("from", "", "sender: dev account or keystore `name`")
	to := fs.String("to", "", "recipient: dev account, keystore name or hex `address`")
	amount := fs.String("amount", "", "`amount` in base units, or in TEER as 1.5TEER (1 TEER = 10^12 units)")
	return func(ctx context.Context, pos []string) error {
		if err := cli.NoArgs(pos); err != nil {
			return err
		}
		if *from == "" || *to == "" || *amount == "" {
			return errors.New("--from, --to and --amount are required")
		}
		sender, err := e.signer(*from, *ks)
		if err != nil {
			return fmt.Errorf("--from: %w", err)
		}
		recipient, err := resolve(*to, *ks)
		if err != nil {
			return fmt.Errorf("--to: %w", err)
		}
		v, err := parseAmount(*amount)
		if err != nil {
			return err
		}
		if v == 0 {
			return errors.New("--amount: zero")
		}
		ctx, cancel, c, err := nf.connect(ctx)
		if err != nil {
			return err
		}
		defer cancel()
		sub, err := c.Transfer(ctx, sender.key, recipient.Address, v)
		if err != nil {
			return err
		}
		out := struct {
			txOutput
			From   tx.Address `json:"from"`
			To     tx.Address `json:"to"`
			Amount uint64     `json:"amount"`
		}{newTxOutput(sub), sender.Address, recipient.Address, v}
		if nf.json {
			return writeJSON(e.stdout, out)
		}
		fmt.Fprintf(e.stdout, "transferred %s from %s to %s\ntx %s in block %d, fee %s\n",
			formatAmount(v), label(sender), label(recipient), out.Hash, out.Height, formatAmount(out.Fee))
		return nil
	}
}

// label names an account for humans.
func label(a *account) string {
	if a.Name == "" {
		return a.Address.String()
	}
	return a.Name + " (" + a.Address.String()[:8] + "…)"
}
