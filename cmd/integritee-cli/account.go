package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"text/tabwriter"

	"github.com/integritee-go/integritee/chain/accounts"
	"github.com/integritee-go/integritee/chain/tx"
	"github.com/integritee-go/integritee/internal/cli"
)

func (e *env) accountGroup() *cli.Command {
	return &cli.Command{
		Name:  "account",
		Short: "create and list account keys (dev accounts alice ... ferdie need none)",
		Commands: []*cli.Command{
			{Name: "new", Usage: "[--name NAME] [--keystore DIR] [--json]", Short: "generate an ed25519 account key in the keystore", Setup: e.accountNew},
			{Name: "list", Usage: "[--keystore DIR] [--json]", Short: "list the dev accounts and the keystore's keys", Setup: e.accountList},
			{Name: "show", Usage: "NAME|HEX [--keystore DIR] [--json]", Short: "show the address of a dev account, key or address", Setup: e.accountShow},
		},
	}
}

func (e *env) balanceCommand() *cli.Command {
	return &cli.Command{Name: "balance", Usage: "NAME|HEX [--node URL] [--json]", Short: "show an account's balance and nonce, proved (balance NAME|HEX)", Setup: e.balance}
}

func (e *env) transferCommand() *cli.Command {
	return &cli.Command{Name: "transfer", Usage: "--from NAME --to NAME|HEX --amount N [--node URL] [--json]", Short: "send funds (transfer --from NAME --to NAME|HEX --amount N)", Setup: e.transfer}
}

func (e *env) accountNew(fs *flag.FlagSet) cli.RunFunc {
	name := fs.String("name", "", "key `name` (default: the first 8 hex digits of the address)")
	ks := keystoreFlag(fs)
	jsonOut := fs.Bool("json", false, "write JSON")
	return func(ctx context.Context, pos []string) error {
		if err := cli.NoArgs(pos); err != nil {
			return err
		}
		k, path, err := createKey(*ks, *name)
		if err != nil {
			return err
		}
		out := account{Name: k.Name, Address: k.Address, Source: "keystore", File: path}
		if *jsonOut {
			return writeJSON(e.stdout, out)
		}
		fmt.Fprintf(e.stdout, "created %s: %s\nkey file %s (unencrypted, mode 0600)\n", out.Name, out.Address, out.File)
		return nil
	}
}

func (e *env) accountList(fs *flag.FlagSet) cli.RunFunc {
	ks := keystoreFlag(fs)
	jsonOut := fs.Bool("json", false, "write JSON")
	return func(ctx context.Context, pos []string) error {
		if err := cli.NoArgs(pos); err != nil {
			return err
		}
		var all []account
		for _, n := range accounts.DevNames {
			all = append(all, account{Name: n, Address: accounts.DevAddress(n), Source: "dev"})
		}
		keys, err := listKeys(*ks)
		if err != nil {
			return err
		}
		for _, k := range keys {
			all = append(all, account{Name: k.Name, Address: k.Address, Source: "keystore", File: keyPath(*ks, k.Name)})
		}
		if *jsonOut {
			return writeJSON(e.stdout, all)
		}
		tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "NAME\tADDRESS\tSOURCE")
		for _, a := range all {
			fmt.Fprintf(tw, "%s\t%s\t%s\n", a.Name, a.Address, a.Source)
		}
		return tw.Flush()
	}
}

func (e *env) accountShow(fs *flag.FlagSet) cli.RunFunc {
	ks := keystoreFlag(fs)
	jsonOut := fs.Bool("json", false, "write JSON")
	return func(ctx context.Context, pos []string) error {
		who, err := exactlyOne(pos, "NAME|HEX")
		if err != nil {
			return err
		}
		a, err := resolve(who, *ks)
		if err != nil {
			return err
		}
		if *jsonOut {
			return writeJSON(e.stdout, a)
		}
		tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
		if a.Name != "" {
			fmt.Fprintf(tw, "name\t%s\n", a.Name)
		}
		fmt.Fprintf(tw, "address\t%s\nsource\t%s\n", a.Address, a.Source)
		switch a.Source {
		case "dev":
			fmt.Fprintf(tw, "key\ted25519 seed sha256(\"//%s\"), public: never fund it on a real chain\n", a.Name)
		case "keystore":
			fmt.Fprintf(tw, "file\t%s\n", a.File)
		}
		return tw.Flush()
	}
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
		sender, err := signer(*from, *ks)
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
