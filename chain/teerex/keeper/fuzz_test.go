package keeper_test

import (
	"bytes"
	"testing"

	"github.com/integritee-go/integritee/attestation"
	"github.com/integritee-go/integritee/chain/teerex"
	"github.com/integritee-go/integritee/chain/teerex/keeper"
	"github.com/integritee-go/integritee/chain/tx"
	"github.com/integritee-go/integritee/chain/types"
)

// FuzzDecodeCall feeds arbitrary methods and arguments to the decoder: it
// must never panic, and whatever it accepts must be the canonical encoding
// of the message it returns.
func FuzzDecodeCall(f *testing.F) {
	for _, s := range []struct {
		method string
		args   any
	}{
		{teerex.MethodRegisterEnclave, teerex.RegisterEnclave{Attestation: teerex.Evidence{Kind: attestation.KindDCAP, Quote: []byte{3, 0, 2, 0}}, ShieldingKey: []byte("k"), WorkerURL: "wss://w:1"}},
		{teerex.MethodRegisterEnclave, teerex.RegisterEnclave{Attestation: teerex.Evidence{Kind: attestation.KindIAS, Report: []byte("{}"), Signature: []byte{1}, Certs: [][]byte{{0x30}}}}},
		{teerex.MethodUnregisterEnclave, teerex.UnregisterEnclave{}},
		{teerex.MethodAllowMRENCLAVE, teerex.AllowMRENCLAVE{MRENCLAVE: types.Hash{1}}},
		{teerex.MethodDisallowMRENCLAVE, teerex.DisallowMRENCLAVE{}},
		{teerex.MethodSetAttestationPolicy, teerex.SetAttestationPolicy{Policy: teerex.ProductionPolicy()}},
		{teerex.MethodSetCollateral, teerex.SetCollateral{RootCRL: &teerex.CRLDoc{CRL: []byte{0x30}}}},
	} {
		call, err := tx.NewCall(teerex.Name, s.method, s.args)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(s.method, []byte(call.Args))
	}
	m := keeper.New(nil, nil)
	f.Fuzz(func(t *testing.T, method string, args []byte) {
		msg, err := m.DecodeCall(tx.Call{Module: teerex.Name, Method: method, Args: args})
		if err != nil {
			return
		}
		again, err := tx.NewCall(teerex.Name, method, msg)
		if err != nil {
			t.Fatalf("accepted message does not encode: %v", err)
		}
		if !bytes.Equal(again.Args, args) {
			t.Fatalf("accepted non-canonical args %x, canonical %x", args, []byte(again.Args))
		}
	})
}
