package keeper_test

import (
	"testing"

	"github.com/integritee-go/integritee/attestation"
	"github.com/integritee-go/integritee/chain/internal/moduletest"
	"github.com/integritee-go/integritee/chain/teerex"
	"github.com/integritee-go/integritee/chain/teerex/keeper"
	"github.com/integritee-go/integritee/chain/tx"
	"github.com/integritee-go/integritee/chain/types"
)

// FuzzDecodeCall: the decoder never panics, and whatever it accepts is the
// canonical encoding of the message it returns.
func FuzzDecodeCall(f *testing.F) {
	moduletest.FuzzDecodeCall(f, keeper.New(nil, nil), nil,
		moduletest.Seed{Method: teerex.MethodRegisterEnclave, Args: teerex.RegisterEnclave{Attestation: teerex.Evidence{Kind: attestation.KindDCAP, Quote: []byte{3, 0, 2, 0}}, ShieldingKey: []byte("k"), WorkerURL: "wss://w:1"}},
		moduletest.Seed{Method: teerex.MethodRegisterEnclave, Args: teerex.RegisterEnclave{Attestation: teerex.Evidence{Kind: attestation.KindIAS, Report: []byte("{}"), Signature: []byte{1}, Certs: [][]byte{{0x30}}}}},
		moduletest.Seed{Method: teerex.MethodUnregisterEnclave, Args: teerex.UnregisterEnclave{}},
		moduletest.Seed{Method: teerex.MethodKeepAlive, Args: teerex.KeepAlive{}},
		moduletest.Seed{Method: teerex.MethodRemoveEnclave, Args: teerex.RemoveEnclave{Signer: tx.Address{7}}},
		moduletest.Seed{Method: teerex.MethodAllowMRENCLAVE, Args: teerex.AllowMRENCLAVE{MRENCLAVE: types.Hash{1}}},
		moduletest.Seed{Method: teerex.MethodDisallowMRENCLAVE, Args: teerex.DisallowMRENCLAVE{}},
		moduletest.Seed{Method: teerex.MethodSetAttestationPolicy, Args: teerex.SetAttestationPolicy{Policy: teerex.ProductionPolicy()}},
		moduletest.Seed{Method: teerex.MethodSetCollateral, Args: teerex.SetCollateral{RootCRL: &teerex.CRLDoc{CRL: []byte{0x30}}}},
	)
}
