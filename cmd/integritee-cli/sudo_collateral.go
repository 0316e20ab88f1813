package main

import (
	"context"
	"errors"
	"flag"
	"fmt"

	"github.com/integritee-go/integritee/attestation/pcs"
	"github.com/integritee-go/integritee/chain/teerex"
	"github.com/integritee-go/integritee/chain/tx"
	"github.com/integritee-go/integritee/internal/cli"
)

// setCollateral submits set_collateral: DCAP collateral from Intel's PCS
// (or a PCCS) for the chain's attestation policy, so that enclaves of the
// platforms it covers can register. The documents are parsed here, so a
// wrong file fails before anything is sent; the chain checks their
// signatures against its roots.
func (e *env) setCollateral(fs *flag.FlagSet) cli.RunFunc {
	var nf sudoFlags
	nf.register(fs, e)
	var files collateralFiles
	files.register(fs)
	return func(ctx context.Context, pos []string) error {
		if err := cli.NoArgs(pos); err != nil {
			return err
		}
		col, err := files.loadPartial()
		if err != nil {
			return err
		}
		arg, err := teerex.NewSetCollateral(col)
		if err != nil {
			return err
		}
		ctx, cancel, c, sender, err := nf.connectSudo(ctx)
		if err != nil {
			return err
		}
		defer cancel()
		sub, err := c.SetCollateral(ctx, sender.key, arg)
		if err != nil {
			return err
		}
		out := struct {
			txOutput
			TCBInfos   int        `json:"tcb_infos"`
			FMSPC      string     `json:"fmspc,omitempty"`
			QEIdentity bool       `json:"qe_identity"`
			PCKCRLs    int        `json:"pck_crls"`
			RootCRL    bool       `json:"root_crl"`
			Sudo       tx.Address `json:"sudo"`
		}{txOutput: newTxOutput(sub), TCBInfos: len(arg.TCBInfos), QEIdentity: arg.QEIdentity != nil,
			PCKCRLs: len(arg.PCKCRLs), RootCRL: arg.RootCRL != nil, Sudo: sender.Address}
		if col.TCBInfo != nil {
			out.FMSPC = fmt.Sprintf("%x", col.TCBInfo.Info.FMSPC)
		}
		if nf.json {
			return writeJSON(e.stdout, out)
		}
		fmt.Fprintf(e.stdout, "collateral set: %d TCB info (FMSPC %s), QE identity %t, %d PCK CRL, root CRL %t\ntx %s in block %d, fee %s\n",
			out.TCBInfos, orDash(out.FMSPC), out.QEIdentity, out.PCKCRLs, out.RootCRL, out.Hash, out.Height, formatAmount(out.Fee))
		return nil
	}
}

// loadPartial reads collateral for set_collateral, which may carry any of
// its pieces: all of them (load), or only CRLs for a refresh of the lists.
func (c *collateralFiles) loadPartial() (*pcs.Collateral, error) {
	if c.qvl != "" || c.tcbInfo != "" || c.qeIdentity != "" {
		return c.load("")
	}
	if c.pckCRL == "" && c.rootCRL == "" {
		return nil, errors.New("no collateral: pass --tcb-info and --qe-identity (with their chains), --qvl-collateral, or --pck-crl / --root-crl")
	}
	var col pcs.Collateral
	if c.pckCRL != "" {
		crl, err := readInput(c.pckCRL)
		if err != nil {
			return nil, err
		}
		var chain []byte
		if c.pckCRLChain != "" {
			if chain, err = readInput(c.pckCRLChain); err != nil {
				return nil, err
			}
		}
		if col.PCKCRL, err = pcs.ParseCRL(crl, chain); err != nil {
			return nil, fmt.Errorf("PCK CRL %s: %w", c.pckCRL, err)
		}
	}
	if c.rootCRL != "" {
		crl, err := readInput(c.rootCRL)
		if err != nil {
			return nil, err
		}
		if col.RootCRL, err = pcs.ParseCRL(crl, nil); err != nil {
			return nil, fmt.Errorf("root CRL %s: %w", c.rootCRL, err)
		}
	}
	return &col, nil
}
