package lightclient_test

import (
	"errors"
	"testing"
	"time"

	abci "github.com/cometbft/cometbft/abci/types"
	"github.com/cometbft/cometbft/crypto"
	"github.com/cometbft/cometbft/crypto/ed25519"
	"github.com/cometbft/cometbft/light"
	cmttypes "github.com/cometbft/cometbft/types"

	"github.com/integritee-go/integritee/enclave/internal/testchain"
	"github.com/integritee-go/integritee/enclave/lightclient"
)

func block(c *testchain.Chain, h int64) *lightclient.Block {
	b, n := c.Block(h), c.Block(h+1)
	return &lightclient.Block{Header: b.Header, Validators: b.Validators, Txs: b.Txs, Results: b.Results, Next: n.Header, NextValidators: n.Validators}
}

func newChain(t *testing.T, id string) *testchain.Chain {
	t.Helper()
	c := testchain.New(id, 4, "validators")
	c.Add(nil, nil)
	c.Add([][]byte{[]byte("tx1"), []byte("tx2")}, []*abci.ExecTxResult{{Code: 0}, {Code: 5, Data: []byte("x")}})
	c.Add([][]byte{[]byte("tx3")}, nil)
	c.Add(nil, nil)
	return c
}

func newClient(t *testing.T, c *testchain.Chain) *lightclient.Client {
	t.Helper()
	lc, err := lightclient.New(lightclient.Config{ChainID: c.ChainID, InitialHeight: 1, Genesis: c.Vals}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return lc
}

func TestFollowChain(t *testing.T) {
	c := newChain(t, "chain")
	lc := newClient(t, c)
	for h := int64(1); h <= 3; h++ {
		b := block(c, h)
		if err := lc.Verify(b); err != nil {
			t.Fatalf("height %d: %v", h, err)
		}
		lc.Accept(b)
	}
	if lc.Height() != 3 {
		t.Fatalf("height %d", lc.Height())
	}
	// A client restored from the trusted header continues.
	restored, err := lightclient.New(lightclient.Config{ChainID: "chain"}, lc.Trusted())
	if err != nil {
		t.Fatal(err)
	}
	c.Add(nil, nil)
	if err := restored.Verify(block(c, 4)); err != nil {
		t.Fatalf("restored client: %v", err)
	}
}

func TestRejections(t *testing.T) {
	c := newChain(t, "chain")
	impostors := testchain.New("chain", 4, "impostors")
	other := newChain(t, "other-chain")

	clone := func(b *lightclient.Block) *lightclient.Block { cp := *b; return &cp }
	signedBy := func(h *cmttypes.SignedHeader, keys []crypto.PrivKey) *cmttypes.SignedHeader {
		return &cmttypes.SignedHeader{Header: h.Header, Commit: c.Sign(h.Header, keys)}
	}
	retime := func(h *cmttypes.SignedHeader) *cmttypes.SignedHeader {
		hdr := *h.Header
		hdr.AppHash = make([]byte, 32)
		return &cmttypes.SignedHeader{Header: &hdr, Commit: h.Commit}
	}

	tests := []struct {
		name   string
		height int64 // client advanced to height-1 first
		mutate func(b *lightclient.Block) *lightclient.Block
		want   error
	}{
		{"skips a height", 1, func(b *lightclient.Block) *lightclient.Block { return block(c, 2) }, lightclient.ErrHeight},
		{"repeats a height", 2, func(b *lightclient.Block) *lightclient.Block { return block(c, 1) }, lightclient.ErrHeight},
		{"forged commit", 2, func(b *lightclient.Block) *lightclient.Block {
			b = clone(b)
			b.Header = signedBy(b.Header, impostors.Keys)
			return b
		}, lightclient.ErrHeader},
		{"forged commit on the first block", 1, func(b *lightclient.Block) *lightclient.Block {
			b = clone(b)
			b.Header = signedBy(b.Header, impostors.Keys)
			return b
		}, lightclient.ErrHeader},
		{"one validator of four", 2, func(b *lightclient.Block) *lightclient.Block {
			b = clone(b)
			b.Header = signedBy(b.Header, c.Keys[:1])
			return b
		}, lightclient.ErrHeader},
		{"two of four is not +2/3", 2, func(b *lightclient.Block) *lightclient.Block {
			b = clone(b)
			b.Header = signedBy(b.Header, c.Keys[:2])
			return b
		}, lightclient.ErrHeader},
		{"header changed after signing", 2, func(b *lightclient.Block) *lightclient.Block {
			b = clone(b)
			b.Header = retime(b.Header)
			return b
		}, lightclient.ErrHeader},
		{"validators swapped with the impostors'", 2, func(b *lightclient.Block) *lightclient.Block {
			b = clone(b)
			b.Validators = impostors.Vals
			return b
		}, lightclient.ErrHeader},
		{"forged next header", 2, func(b *lightclient.Block) *lightclient.Block {
			b = clone(b)
			b.Next = signedBy(b.Next, impostors.Keys)
			return b
		}, lightclient.ErrHeader},
		{"next header of another block", 2, func(b *lightclient.Block) *lightclient.Block {
			b = clone(b)
			b.Next = c.Block(2).Header
			return b
		}, lightclient.ErrHeader},
		{"other chain", 1, func(b *lightclient.Block) *lightclient.Block { return block(other, 1) }, lightclient.ErrHeader},
		{"extra transaction", 2, func(b *lightclient.Block) *lightclient.Block {
			b = clone(b)
			b.Txs = append(b.Txs, []byte("injected"))
			b.Results = append(b.Results, &abci.ExecTxResult{})
			return b
		}, lightclient.ErrDataHash},
		{"changed transaction", 2, func(b *lightclient.Block) *lightclient.Block {
			b = clone(b)
			b.Txs = [][]byte{[]byte("tx1"), []byte("tx2'")}
			return b
		}, lightclient.ErrDataHash},
		{"failed tx claimed successful", 2, func(b *lightclient.Block) *lightclient.Block {
			b = clone(b)
			b.Results = []*abci.ExecTxResult{{Code: 0}, {Code: 0, Data: []byte("x")}}
			return b
		}, lightclient.ErrResultsHash},
		{"missing result", 2, func(b *lightclient.Block) *lightclient.Block {
			b = clone(b)
			b.Results = b.Results[:1]
			return b
		}, lightclient.ErrResultsHash},
		{"incomplete", 2, func(b *lightclient.Block) *lightclient.Block {
			b = clone(b)
			b.Next = nil
			return b
		}, lightclient.ErrHeader},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lc := newClient(t, c)
			for h := int64(1); h < tt.height; h++ {
				b := block(c, h)
				if err := lc.Verify(b); err != nil {
					t.Fatal(err)
				}
				lc.Accept(b)
			}
			if err := lc.Verify(tt.mutate(block(c, tt.height))); !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			if lc.Height() != tt.height-1 {
				t.Fatal("a rejected block advanced the client")
			}
			// The genuine block is still accepted afterwards.
			if err := lc.Verify(block(c, tt.height)); err != nil {
				t.Fatalf("genuine block after rejection: %v", err)
			}
		})
	}
}

func TestGenesisMismatch(t *testing.T) {
	c := newChain(t, "chain")
	k := ed25519.GenPrivKeyFromSecret([]byte("x"))
	lc, err := lightclient.New(lightclient.Config{ChainID: "chain", Genesis: cmttypes.NewValidatorSet([]*cmttypes.Validator{cmttypes.NewValidator(k.PubKey(), 1)})}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := lc.Verify(block(c, 1)); !errors.Is(err, lightclient.ErrHeader) {
		t.Fatalf("err = %v", err)
	}
}

func TestConfig(t *testing.T) {
	if _, err := lightclient.New(lightclient.Config{ChainID: "c"}, nil); !errors.Is(err, lightclient.ErrConfig) {
		t.Fatalf("no genesis: %v", err)
	}
	if _, err := lightclient.New(lightclient.Config{}, nil); !errors.Is(err, lightclient.ErrConfig) {
		t.Fatalf("no chain ID: %v", err)
	}
}

// TestAdjacentMatchesCometBFT checks that Adjacent accepts and rejects
// exactly as CometBFT's light.VerifyAdjacent (with the new header's time as
// now) on genuine and forged headers.
func TestAdjacentMatchesCometBFT(t *testing.T) {
	c := newChain(t, "chain")
	impostors := testchain.New("chain", 4, "impostors")
	trusted := c.Block(1).Header
	h := c.Block(2).Header
	changed := *h.Header
	changed.AppHash = make([]byte, 32)
	tests := []struct {
		name   string
		h      *cmttypes.SignedHeader
		vals   *cmttypes.ValidatorSet
		period time.Duration
		ok     bool
	}{
		{"genuine", h, c.Vals, time.Hour, true},
		{"expired trust", h, c.Vals, time.Second, false},
		{"forged commit", &cmttypes.SignedHeader{Header: h.Header, Commit: c.Sign(h.Header, impostors.Keys)}, c.Vals, time.Hour, false},
		{"impostor validators", &cmttypes.SignedHeader{Header: h.Header, Commit: c.Sign(h.Header, impostors.Keys)}, impostors.Vals, time.Hour, false},
		{"too few signatures", &cmttypes.SignedHeader{Header: h.Header, Commit: c.Sign(h.Header, c.Keys[:2])}, c.Vals, time.Hour, false},
		{"changed header", &cmttypes.SignedHeader{Header: &changed, Commit: h.Commit}, c.Vals, time.Hour, false},
		{"not adjacent", c.Block(3).Header, c.Vals, time.Hour, false},
		{"same height", trusted, c.Vals, time.Hour, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ours := lightclient.Adjacent(trusted, tt.h, tt.vals, tt.period)
			theirs := light.VerifyAdjacent(trusted, tt.h, tt.vals, tt.period, tt.h.Time, time.Second)
			if (ours == nil) != tt.ok || (theirs == nil) != tt.ok {
				t.Fatalf("ours %v, CometBFT %v, want ok=%v", ours, theirs, tt.ok)
			}
		})
	}
}

// TestNonAdjacentMatchesCometBFT checks that NonAdjacent accepts and
// rejects exactly as CometBFT's light.VerifyNonAdjacent (trust level 1/3,
// the new header's time as now) on genuine and forged headers.
func TestNonAdjacentMatchesCometBFT(t *testing.T) {
	c := newChain(t, "chain")
	impostors := testchain.New("chain", 4, "impostors")
	trusted := c.Block(1).Header
	h := c.Block(4).Header
	changed := *h.Header
	changed.AppHash = make([]byte, 32)
	tests := []struct {
		name   string
		h      *cmttypes.SignedHeader
		vals   *cmttypes.ValidatorSet
		period time.Duration
		ok     bool
	}{
		{"genuine", h, c.Vals, time.Hour, true},
		{"expired trust", h, c.Vals, time.Second, false},
		{"forged commit", &cmttypes.SignedHeader{Header: h.Header, Commit: c.Sign(h.Header, impostors.Keys)}, c.Vals, time.Hour, false},
		{"impostor validators", &cmttypes.SignedHeader{Header: h.Header, Commit: c.Sign(h.Header, impostors.Keys)}, impostors.Vals, time.Hour, false},
		{"too few signatures", &cmttypes.SignedHeader{Header: h.Header, Commit: c.Sign(h.Header, c.Keys[:2])}, c.Vals, time.Hour, false},
		{"changed header", &cmttypes.SignedHeader{Header: &changed, Commit: h.Commit}, c.Vals, time.Hour, false},
		{"adjacent", c.Block(2).Header, c.Vals, time.Hour, false},
		{"same height", trusted, c.Vals, time.Hour, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ours := lightclient.NonAdjacent(trusted, c.Vals, tt.h, tt.vals, tt.period)
			theirs := light.VerifyNonAdjacent(trusted, c.Vals, tt.h, tt.vals, tt.period, tt.h.Time, time.Second, light.DefaultTrustLevel)
			if (ours == nil) != tt.ok || (theirs == nil) != tt.ok {
				t.Fatalf("ours %v, CometBFT %v, want ok=%v", ours, theirs, tt.ok)
			}
		})
	}
}

// TestVerifyAhead: a later header is verified from the accepted one without
// accepting it; an earlier one, the wrong next validators or a forged
// commit are refused.
func TestVerifyAhead(t *testing.T) {
	c := newChain(t, "chain")
	impostors := testchain.New("chain", 4, "impostors")
	lc, err := lightclient.New(lightclient.Config{ChainID: "chain", Genesis: c.Vals}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := lc.VerifyAhead(c.Block(3).Header, c.Vals, c.Vals); err == nil {
		t.Fatal("verified ahead of nothing")
	}
	for h := int64(1); h <= 2; h++ {
		b := block(c, h)
		if err := lc.Verify(b); err != nil {
			t.Fatal(err)
		}
		lc.Accept(b)
	}
	for _, h := range []int64{3, 4} {
		if err := lc.VerifyAhead(c.Block(h).Header, c.Vals, c.Vals); err != nil {
			t.Fatalf("header %d: %v", h, err)
		}
	}
	if lc.Height() != 2 {
		t.Fatalf("VerifyAhead moved the client to %d", lc.Height())
	}
	hdr := c.Block(4).Header
	for name, err := range map[string]error{
		"earlier":         lc.VerifyAhead(c.Block(2).Header, c.Vals, c.Vals),
		"wrong next vals": lc.VerifyAhead(hdr, c.Vals, impostors.Vals),
		"forged":          lc.VerifyAhead(&cmttypes.SignedHeader{Header: hdr.Header, Commit: c.Sign(hdr.Header, impostors.Keys)}, impostors.Vals, c.Vals),
	} {
		if err == nil {
			t.Errorf("%s: verified", name)
		}
	}
}
