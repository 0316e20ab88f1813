package main

import (
	"context"
	"flag"
	"fmt"
	"time"

	"github.com/integritee-go/integritee/chain/tx"
	"github.com/integritee-go/integritee/chain/types"
	"github.com/integritee-go/integritee/client"
	"github.com/integritee-go/integritee/internal/cli"
)

func (e *env) sudoGroup() *cli.Command {
	return &cli.Command{
		Name:  "sudo",
		Short: "governance calls signed by the sudo key",
		Commands: []*cli.Command{
			{Name: "allow-mrenclave", Usage: "HEX [--from NAME] [--node URL] [--json]", Short: "allow an enclave measurement to register", Setup: e.allow(true)},
			{Name: "disallow-mrenclave", Usage: "HEX [--from NAME] [--node URL] [--json]", Short: "disallow a measurement (its enclaves become inactive)", Setup: e.allow(false)},
			{Name: "remove-enclave", Usage: "SIGNER [--from NAME] [--node URL] [--json]", Short: "remove an enclave's registration at once (e.g. its machine is lost)", Setup: e.removeEnclave},
			{Name: "set-liveness", Usage: "DURATION [--from NAME] [--node URL] [--json]", Short: "set the attestation policy's liveness period (0: none): enclaves without keep_alive for that long leave their shards", Setup: e.setLiveness},
			{Name: "set-collateral", Usage: "[--tcb-info FILE --tcb-info-chain FILE --qe-identity FILE] [--pck-crl FILE --pck-crl-chain FILE] [--root-crl FILE] | --qvl-collateral FILE [--from NAME] [--node URL] [--json]", Short: "install DCAP collateral (Intel PCS) in the attestation policy", Setup: e.setCollateral},
		},
	}
}

func (e *env) allow(allow bool) func(fs *flag.FlagSet) cli.RunFunc {
	return func(fs *flag.FlagSet) cli.RunFunc {
		var nf sudoFlags
		nf.register(fs, e)
		return func(ctx context.Context, pos []string) error {
			arg, err := exactlyOne(pos, "MRENCLAVE")
			if err != nil {
				return err
			}
			m, err := parseHash(arg, "MRENCLAVE")
			if err != nil {
				return err
			}
			ctx, cancel, c, sender, err := nf.connectSudo(ctx)
			if err != nil {
				return err
			}
			defer cancel()
			submit := c.AllowMRENCLAVE
			if !allow {
				submit = c.DisallowMRENCLAVE
			}
			sub, err := submit(ctx, sender.key, m)
			if err != nil {
				return err
			}
			out := struct {
				txOutput
				MRENCLAVE types.Hash `json:"mrenclave"`
				Allowed   bool       `json:"allowed"`
				Sudo      tx.Address `json:"sudo"`
			}{newTxOutput(sub), m, allow, sender.Address}
			if nf.json {
				return writeJSON(e.stdout, out)
			}
			verb := "allowed"
			if !allow {
				verb = "disallowed"
			}
			fmt.Fprintf(e.stdout, "%s MRENCLAVE %s\ntx %s in block %d, fee %s\n", verb, m, out.Hash, out.Height, formatAmount(out.Fee))
			return nil
		}
	}
}

// sudoFlags are the flags of a command the chain's sudo key signs: the
// node's, the keystore and --from.
type sudoFlags struct {
	nodeFlags
	e        *env
	keystore *string
	from     *string
}

func (f *sudoFlags) register(fs *flag.FlagSet, e *env) {
	f.nodeFlags.register(fs, e)
	f.e = e
	f.keystore = keystoreFlag(fs)
	f.from = fs.String("from", "alice", "the sudo key: dev account or keystore `name`")
}

// connectSudo resolves the sudo key (before anything touches the network),
// then connects to the node.
func (f *sudoFlags) connectSudo(ctx context.Context) (context.Context, context.CancelFunc, *client.Client, *account, error) {
	sender, err := f.e.signer(*f.from, *f.keystore)
	if err != nil {
		return nil, nil, nil, nil, fmt.Errorf("--from: %w", err)
	}
	ctx, cancel, c, err := f.nodeFlags.connect(ctx)
	if err != nil {
		return nil, nil, nil, nil, err
	}
	return ctx, cancel, c, sender, nil
}

// removeEnclave submits remove_enclave: the registration of an enclave
// whose machine is lost leaves its shard at once, rather than when its
// keep_alives have been missing for the liveness period (or, without one,
// when it expires). The registration is read first, so that an unknown
// signer fails before anything is signed and the output names what was
// removed.
func (e *env) removeEnclave(fs *flag.FlagSet) cli.RunFunc {
	var nf sudoFlags
	nf.register(fs, e)
	return func(ctx context.Context, pos []string) error {
		who, err := exactlyOne(pos, "SIGNER")
		if err != nil {
			return err
		}
		target, err := resolve(who, *nf.keystore)
		if err != nil {
			return err
		}
		ctx, cancel, c, sender, err := nf.connectSudo(ctx)
		if err != nil {
			return err
		}
		defer cancel()
		en, _, err := c.Enclave(ctx, target.Address)
		if err != nil {
			return err
		}
		sub, err := c.RemoveEnclave(ctx, sender.key, target.Address)
		if err != nil {
			return err
		}
		out := struct {
			txOutput
			Signer    tx.Address `json:"signer"`
			MRENCLAVE types.Hash `json:"mrenclave"`
			WorkerURL string     `json:"worker_url"`
			Sudo      tx.Address `json:"sudo"`
		}{newTxOutput(sub), en.Signer, en.MRENCLAVE, en.WorkerURL, sender.Address}
		if nf.json {
			return writeJSON(e.stdout, out)
		}
		fmt.Fprintf(e.stdout, "removed enclave %s (MRENCLAVE %s, worker %s)\ntx %s in block %d, fee %s\n",
			out.Signer, out.MRENCLAVE, orDash(out.WorkerURL), out.Hash, out.Height, formatAmount(out.Fee))
		return nil
	}
}

// setLiveness replaces the attestation policy with its liveness period
// set: the rest of the policy is read from the chain first, so only that
// field changes (set_attestation_policy replaces the whole policy).
func (e *env) setLiveness(fs *flag.FlagSet) cli.RunFunc {
	var nf sudoFlags
	nf.register(fs, e)
	return func(ctx context.Context, pos []string) error {
		arg, err := exactlyOne(pos, "DURATION")
		if err != nil {
			return err
		}
		d, err := time.ParseDuration(arg)
		if err != nil || d < 0 || d%time.Second != 0 {
			return cli.Usagef("liveness period %q: want 0 or a duration in whole seconds, e.g. 10m", arg)
		}
		ctx, cancel, c, sender, err := nf.connectSudo(ctx)
		if err != nil {
			return err
		}
		defer cancel()
		p, _, err := c.Policy(ctx)
		if err != nil {
			return err
		}
		p.LivenessSecs = uint64(d / time.Second)
		sub, err := c.SetAttestationPolicy(ctx, sender.key, *p)
		if err != nil {
			return err
		}
		out := struct {
			txOutput
			LivenessSecs uint64     `json:"liveness_secs"`
			Sudo         tx.Address `json:"sudo"`
		}{newTxOutput(sub), p.LivenessSecs, sender.Address}
		if nf.json {
			return writeJSON(e.stdout, out)
		}
		fmt.Fprintf(e.stdout, "liveness period %s\ntx %s in block %d, fee %s\n", d, out.Hash, out.Height, formatAmount(out.Fee))
		return nil
	}
}
