package main

import (
	"context"
	"flag"
	"fmt"
	"text/tabwriter"

	"github.com/integritee-go/integritee/chain/accounts"
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
			{Name: "encrypt", Usage: "NAME [--keystore DIR] [--json]", Short: "encrypt a key file of an earlier release that holds its seed unencrypted", Setup: e.accountEncrypt},
		},
	}
}

func (e *env) accountNew(fs *flag.FlagSet) cli.RunFunc {
	name := fs.String("name", "", "key `name` (default: the first 8 hex digits of the address)")
	ks := keystoreFlag(fs)
	jsonOut := fs.Bool("json", false, "write JSON")
	return func(ctx context.Context, pos []string) error {
		if err := cli.NoArgs(pos); err != nil {
			return err
		}
		k, path, err := e.createKey(*ks, *name)
		if err != nil {
			return err
		}
		out := account{Name: k.Name, Address: k.Address, Source: "keystore", File: path}
		if *jsonOut {
			return writeJSON(e.stdout, out)
		}
		fmt.Fprintf(e.stdout, "created %s: %s\nkey file %s (encrypted with the passphrase: scrypt, AES-256-GCM; mode 0600)\n", out.Name, out.Address, out.File)
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
			all = append(all, account{Name: k.Name, Address: k.Address, Source: "keystore", File: keyPath(*ks, k.Name), Unencrypted: k.Unencrypted})
		}
		if *jsonOut {
			return writeJSON(e.stdout, all)
		}
		tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "NAME\tADDRESS\tSOURCE")
		for _, a := range all {
			src := a.Source
			if a.Unencrypted {
				src += " (UNENCRYPTED: refused until 'account encrypt " + a.Name + "')"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\n", a.Name, a.Address, src)
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

func (e *env) accountEncrypt(fs *flag.FlagSet) cli.RunFunc {
	ks := keystoreFlag(fs)
	jsonOut := fs.Bool("json", false, "write JSON")
	return func(ctx context.Context, pos []string) error {
		name, err := exactlyOne(pos, "NAME")
		if err != nil {
			return err
		}
		k, err := e.encryptKey(*ks, name)
		if err != nil {
			return err
		}
		out := account{Name: k.Name, Address: k.Address, Source: "keystore", File: keyPath(*ks, k.Name)}
		if *jsonOut {
			return writeJSON(e.stdout, out)
		}
		fmt.Fprintf(e.stdout, "encrypted %s: %s\nkey file %s (scrypt, AES-256-GCM; mode 0600). The unencrypted seed may remain in backups "+
			"or on the disk's free blocks: if they could have been read, move the funds to a new key.\n", out.Name, out.Address, out.File)
		return nil
	}
}
