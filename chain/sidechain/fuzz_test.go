package sidechain_test

import (
	"bytes"
	"testing"

	"github.com/integritee-go/integritee/chain/sidechain"
	"github.com/integritee-go/integritee/chain/teerex"
	"github.com/integritee-go/integritee/chain/tx"
)

// FuzzDecodeCall: the decoder never panics, and whatever it accepts is the
// canonical encoding of the message it returns.
func FuzzDecodeCall(f *testing.F) {
	c, err := sidechain.ConfirmCall(teerex.Hash{1}, 9, teerex.Hash{2})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(sidechain.MethodConfirmSidechainBlock, []byte(c.Args))
	m := sidechain.New(nil, nil)
	f.Fuzz(func(t *testing.T, method string, args []byte) {
		msg, err := m.DecodeCall(tx.Call{Module: sidechain.Name, Method: method, Args: args})
		if err != nil {
			return
		}
		again, err := tx.NewCall(sidechain.Name, method, msg)
		if err != nil {
			t.Fatalf("accepted message does not encode: %v", err)
		}
		if !bytes.Equal(again.Args, args) {
			t.Fatalf("accepted non-canonical args %x, canonical %x", args, []byte(again.Args))
		}
	})
}
