package client

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/cometbft/cometbft/mempool"

	"github.com/integritee-go/integritee/chain/accounts"
	"github.com/integritee-go/integritee/chain/types"
)

// A transaction broadcast again reaches CometBFT's mempool cache, not the
// app: the client reports it as the app would (integritee/6, stale nonce)
// and as ErrTxInCache, with the hash to wait for; pending and committed
// alike.
func TestBroadcastAgain(t *testing.T) {
	if cometTxInCache != mempool.ErrTxInCache.Error() {
		t.Fatalf("CometBFT's cache error reads %q now", mempool.ErrTxInCache)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c := newClient(t, startNode(t, time.Now()), Options{})
	params, err := c.Params(ctx)
	if err != nil {
		t.Fatal(err)
	}
	call, err := accounts.TransferCall(accounts.DevAddress("Bob"), 7)
	if err != nil {
		t.Fatal(err)
	}
	wire, err := c.BuildMinFee(accounts.DevKey("Alice"), 0, params, call)
	if err != nil {
		t.Fatal(err)
	}
	h, err := c.Broadcast(ctx, wire)
	if err != nil {
		t.Fatal(err)
	}
	again := func(when string) {
		t.Helper()
		got, err := c.Broadcast(ctx, wire)
		var te *TxError
		if !errors.As(err, &te) || !errors.Is(err, types.ErrStaleNonce) || !errors.Is(err, ErrTxInCache) || got != h {
			t.Fatalf("%s: broadcast again = %x, %v; want the hash and a stale nonce / ErrTxInCache", when, got, err)
		}
		if want := "tx rejected: integritee/6: stale nonce: the node has this transaction already"; !strings.HasPrefix(err.Error(), want) {
			t.Fatalf("%s: %q, want it to start %q", when, err, want)
		}
	}
	again("pending")
	if _, err := c.WaitTx(ctx, h); err != nil {
		t.Fatal(err)
	}
	again("committed")
	if a, err := c.Account(ctx, accounts.DevAddress("Alice")); err != nil || a.Nonce != 1 {
		t.Fatalf("Alice %+v %v: the transfer must count once", a, err)
	}
	// The README's tx_search example finds it by its event attributes.
	q := fmt.Sprintf("accounts.transfer.from='%s' AND accounts.transfer.to='%s' AND accounts.transfer.amount>=7", accounts.DevAddress("Alice"), accounts.DevAddress("Bob"))
	page, per := 1, 10
	found, err := c.RPC().TxSearch(ctx, q, false, &page, &per, "asc")
	if err != nil || found.TotalCount != 1 || [32]byte(found.Txs[0].Hash) != h {
		t.Fatalf("tx_search %q: %+v %v", q, found, err)
	}
}
