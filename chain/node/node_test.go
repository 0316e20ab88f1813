package node_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"strconv"
	"testing"
	"time"

	dbm "github.com/cometbft/cometbft-db"

	"github.com/integritee-go/integritee/chain/accounts"
	"github.com/integritee-go/integritee/chain/node"
	"github.com/integritee-go/integritee/chain/node/nodetest"
	"github.com/integritee-go/integritee/chain/store"
	"github.com/integritee-go/integritee/chain/teerex"
	"github.com/integritee-go/integritee/chain/tx"
	"github.com/integritee-go/integritee/chain/types"
	"github.com/integritee-go/integritee/client"
)

// devHome initializes a dev home in a temp dir.
func devHome(t testing.TB) string {
	t.Helper()
	home := t.TempDir()
	c := nodetest.Config(t)
	if err := node.Init(home, node.InitOptions{Dev: true, Config: &c}); err != nil {
		t.Fatal(err)
	}
	return home
}

// startNode starts the node of home and a client for it; both stop at the
// end of the test.
func startNode(t testing.TB, home string) (*node.Node, *client.Client) {
	t.Helper()
	n := nodetest.Start(t, home, 0)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := client.New(ctx, n.RPCAddress(), client.Options{PollInterval: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	// Wait for the first block so that genesis state is queryable.
	if _, err := c.VerifiedHeader(ctx, 2); err != nil {
		t.Fatal(err)
	}
	return n, c
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func balance(t testing.TB, c *client.Client, a tx.Address) uint64 {
	t.Helper()
	acc, err := c.Account(ctxT(t), a)
	if err != nil {
		t.Fatal(err)
	}
	return acc.Balance
}

func TestTransferMovesFundsAndChargesFee(t *testing.T) {
	_, c := startNode(t, devHome(t))
	ctx := ctxT(t)
	alice, bob, collector := accounts.DevAddress("Alice"), accounts.DevAddress("Bob"), accounts.FeeCollectorAddress()
	params, err := c.Params(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if params.Sudo == nil || *params.Sudo != alice || params.BaseFee != accounts.DevBaseFee || params.PerByteFee != accounts.DevPerByteFee {
		t.Fatalf("dev params: %+v", params)
	}
	if got := balance(t, c, alice); got != accounts.DevBalance {
		t.Fatalf("Alice genesis balance %d, want %d", got, accounts.DevBalance)
	}

	const amount = 5 * accounts.Unit
	call, err := accounts.TransferCall(bob, amount)
	if err != nil {
		t.Fatal(err)
	}
	wire, err := c.BuildMinFee(accounts.DevKey("Alice"), 0, params, call)
	if err != nil {
		t.Fatal(err)
	}
	fee := params.MinFee(len(wire))
	// The exact number, so that a change of the fee rule fails here.
	if want := uint64(accounts.DevBaseFee + accounts.DevPerByteFee*len(wire)); fee != want {
		t.Fatalf("fee %d, want %d", fee, want)
	}
	h, err := c.Broadcast(ctx, wire)
	if err != nil {
		t.Fatal(err)
	}
	sub, err := c.WaitTx(ctx, h)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := balance(t, c, alice), accounts.DevBalance-amount-fee; got != want {
		t.Errorf("Alice %d, want %d", got, want)
	}
	if got, want := balance(t, c, bob), accounts.DevBalance+amount; got != want {
		t.Errorf("Bob %d, want %d", got, want)
	}
	if got := balance(t, c, collector); got != fee {
		t.Errorf("fee collector %d, want %d", got, fee)
	}
	acc, err := c.Account(ctx, alice)
	if err != nil || acc.Nonce != 1 {
		t.Errorf("Alice nonce %d (%v), want 1", acc.Nonce, err)
	}
	want := map[string]map[string]string{
		accounts.EventTx:       {"sender": alice.String(), "nonce": "0"},
		accounts.EventFee:      {"payer": alice.String(), "amount": strconv.FormatUint(fee, 10), "collector": collector.String()},
		accounts.EventTransfer: {"from": alice.String(), "to": bob.String(), "amount": strconv.FormatUint(amount, 10)},
	}
	for _, ev := range sub.Events {
		if w, ok := want[ev.Type]; ok {
			if fmt.Sprint(ev.Attrs) != fmt.Sprint(w) {
				t.Errorf("event %s: %v, want %v", ev.Type, ev.Attrs, w)
			}
			delete(want, ev.Type)
		}
	}
	if len(want) != 0 {
		t.Errorf("missing events %v in %v", want, sub.Events)
	}

	// The same balance, proven against a light-verified header.
	vacc, height, err := c.VerifiedAccount(ctx, bob, 0)
	if err != nil {
		t.Fatal(err)
	}
	if vacc.Balance != accounts.DevBalance+amount || height < sub.Height {
		t.Errorf("verified Bob %d at %d", vacc.Balance, height)
	}
	// Before the transfer (height of the block before it) Bob had less.
	old, _, err := c.VerifiedAccount(ctx, bob, sub.Height-1)
	if err != nil {
		t.Fatal(err)
	}
	if old.Balance != accounts.DevBalance {
		t.Errorf("verified Bob before transfer %d", old.Balance)
	}
	// An absent account proves absent.
	none, _, err := c.VerifiedAccount(ctx, tx.Address{1}, 0)
	if err != nil || none != (accounts.Account{}) {
		t.Errorf("absent account: %+v, %v", none, err)
	}
}

// snapshot is the observable state: every dev account and the collector.
func snapshot(t testing.TB, c *client.Client, extra ...tx.Address) map[tx.Address]accounts.Account {
	t.Helper()
	addrs := append([]tx.Address{accounts.FeeCollectorAddress()}, extra...)
	for _, n := range accounts.DevNames {
		addrs = append(addrs, accounts.DevAddress(n))
	}
	out := map[tx.Address]accounts.Account{}
	for _, a := range addrs {
		acc, err := c.Account(ctxT(t), a)
		if err != nil {
			t.Fatal(err)
		}
		out[a] = acc
	}
	return out
}

// lastHeight is the app's last committed height.
func lastHeight(t testing.TB, c *client.Client) int64 {
	t.Helper()
	info, err := c.RPC().ABCIInfo(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	return info.Response.LastBlockHeight
}

func TestBadTransactionsAreRejectedWithoutStateChange(t *testing.T) {
	_, c := startNode(t, devHome(t))
	ctx := ctxT(t)
	params, err := c.Params(ctx)
	if err != nil {
		t.Fatal(err)
	}
	bob := accounts.DevAddress("Bob")
	charlie := accounts.DevKey("Charlie")
	poorKey := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, 32))
	poor := tx.AddressOf(poorKey.Public().(ed25519.PublicKey))

	// Setup: Charlie uses nonce 0, and "poor" gets a little money.
	const poorFunds = 2_000_000
	transfer := func(to tx.Address, amount uint64) tx.Call {
		call, err := accounts.TransferCall(to, amount)
		if err != nil {
			t.Fatal(err)
		}
		return call
	}
	if _, err := c.Submit(ctx, charlie, transfer(poor, poorFunds)); err != nil {
		t.Fatal(err)
	}

	signed := func(key ed25519.PrivateKey, mutate func(*tx.Body)) []byte {
		acc, err := c.Account(ctx, tx.AddressOf(key.Public().(ed25519.PublicKey)))
		if err != nil {
			t.Fatal(err)
		}
		body := tx.Body{ChainID: c.ChainID(), Sender: tx.AddressOf(key.Public().(ed25519.PublicKey)), Nonce: acc.Nonce, Fee: params.MinFee(tx.MaxTxBytes), Call: transfer(bob, 1)}
		mutate(&body)
		stx, err := tx.Sign(body, key)
		if err != nil {
			t.Fatal(err)
		}
		wire, err := stx.Encode()
		if err != nil {
			t.Fatal(err)
		}
		return wire
	}
	rawCall := func(module, method string, args any) func(*tx.Body) {
		return func(b *tx.Body) {
			call, err := tx.NewCall(module, method, args)
			if err != nil {
				t.Fatal(err)
			}
			b.Call = call
		}
	}
	goodWire := signed(charlie, func(*tx.Body) {})

	tests := []struct {
		name string
		wire []byte
		want *types.Error
	}{
		{"garbage", []byte("not cbor at all"), types.ErrTxMalformed},
		{"trailing byte", append(bytes.Clone(goodWire), 0), types.ErrTxMalformed},
		{"oversized", signed(charlie, rawCall(accounts.Name, accounts.MethodTransfer, bytes.Repeat([]byte{1}, tx.MaxTxBytes))), types.ErrTxTooLarge},
		{"bad signature", func() []byte {
			stx, err := tx.Decode(goodWire)
			if err != nil {
				t.Fatal(err)
			}
			stx.Signature[0] ^= 1
			w, err := stx.Encode()
			if err != nil {
				t.Fatal(err)
			}
			return w
		}(), types.ErrBadSignature},
		{"wrong chain id", signed(charlie, func(b *tx.Body) { b.ChainID = "other-chain" }), types.ErrWrongChainID},
		{"stale nonce", signed(charlie, func(b *tx.Body) { b.Nonce = 0 }), types.ErrStaleNonce},
		{"future nonce", signed(charlie, func(b *tx.Body) { b.Nonce += 5 }), types.ErrFutureNonce},
		{"fee below minimum", signed(charlie, func(b *tx.Body) { b.Fee = params.BaseFee }), types.ErrInsufficientFee},
		{"unaffordable fee", signed(poorKey, func(b *tx.Body) { b.Fee = poorFunds + 1 }), types.ErrUnaffordableFee},
		{"unknown module", signed(charlie, rawCall("nosuch", "x", 1)), types.ErrUnknownCall},
		{"unknown method", signed(charlie, rawCall(accounts.Name, "mint", 1)), types.ErrUnknownCall},
		{"malformed args", signed(charlie, rawCall(accounts.Name, accounts.MethodTransfer, map[string]any{"to": "bob", "amount": 1})), types.ErrMalformedCall},
		{"unknown arg field", signed(charlie, rawCall(accounts.Name, accounts.MethodTransfer, map[string]any{"to": bob[:], "amount": 1, "memo": "x"})), types.ErrMalformedCall},
		{"zero transfer", signed(charlie, rawCall(accounts.Name, accounts.MethodTransfer, accounts.Transfer{To: bob})), types.ErrMalformedCall},
		{"transfer beyond balance", signed(charlie, rawCall(accounts.Name, accounts.MethodTransfer, accounts.Transfer{To: bob, Amount: 2 * accounts.DevBalance})), accounts.ErrInsufficientFunds},
		{"set_balance by non-sudo", signed(charlie, rawCall(accounts.Name, accounts.MethodSetBalance, accounts.SetBalance{Who: bob, Amount: 1})), accounts.ErrNotSudo},
	}

	before := snapshot(t, c, poor)
	h0 := lastHeight(t, c)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := c.Broadcast(ctx, tc.wire)
			var te *client.TxError
			if !errors.As(err, &te) {
				t.Fatalf("got %v, want a rejection", err)
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %s/%d %q, want %s/%d", te.Codespace, te.Code, te.Log, tc.want.Codespace, tc.want.Code)
			}
		})
	}
	// Let blocks pass: nothing may have reached them.
	if _, err := c.VerifiedHeader(ctx, h0+3); err != nil {
		t.Fatal(err)
	}
	if after := snapshot(t, c, poor); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Fatalf("state changed:\nbefore %v\nafter  %v", before, after)
	}
	// Every block changes the app hash (it records its own hash), so look
	// at the blocks themselves: none carries a transaction.
	h1 := lastHeight(t, c)
	for h := h0 + 1; h <= h1; h++ {
		b, err := c.RPC().Block(ctx, &h)
		if err != nil {
			t.Fatal(err)
		}
		if n := len(b.Block.Txs); n != 0 {
			t.Fatalf("block %d carries %d transactions", h, n)
		}
	}
	// The untouched good transaction is still valid afterwards.
	if h, err := c.Broadcast(ctx, goodWire); err != nil {
		t.Fatalf("good tx: %v", err)
	} else if _, err := c.WaitTx(ctx, h); err != nil {
		t.Fatalf("good tx: %v", err)
	}
}

func TestRestartResumesWithSameState(t *testing.T) {
	home := devHome(t)
	n, c := startNode(t, home)
	ctx := ctxT(t)
	sub, err := c.Transfer(ctx, accounts.DevKey("Dave"), accounts.DevAddress("Eve"), 7*accounts.Unit)
	if err != nil {
		t.Fatal(err)
	}
	before := snapshot(t, c)
	if err := n.Stop(); err != nil {
		t.Fatal(err)
	}
	// Read what was committed straight from the stopped node's database.
	db, err := dbm.NewDB("application", dbm.GoLevelDBBackend, home+"/data")
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(db)
	if err != nil {
		t.Fatal(err)
	}
	height, root := st.Version(), st.Root()
	db.Close()
	if height < sub.Height {
		t.Fatalf("committed height %d below the transfer's block %d", height, sub.Height)
	}

	n2, c2 := startNode(t, home)
	if got := n2.Height(); got < height {
		t.Fatalf("restarted at height %d, had %d", got, height)
	}
	// Block height+1 carries the app hash of height: it must be the one the
	// stopped node committed.
	hdr, err := c2.VerifiedHeader(ctx, height+1)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(hdr.AppHash, root) {
		t.Fatalf("app hash at %d: header %X, committed %X", height, hdr.AppHash, root)
	}
	if after := snapshot(t, c2); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Fatalf("balances changed across restart:\nbefore %v\nafter  %v", before, after)
	}
	// The chain goes on.
	if _, err := c2.Transfer(ctx, accounts.DevKey("Eve"), accounts.DevAddress("Dave"), 1); err != nil {
		t.Fatal(err)
	}
}

// BenchmarkTransfers measures transfers per second through broadcast_tx_sync
// on one validator, counting until the last transfer is in a committed
// block. Run with e.g. -bench Transfers -benchtime 2000x.
func BenchmarkTransfers(b *testing.B) {
	_, c := startNode(b, devHome(b))
	ctx := ctxT(b)
	params, err := c.Params(ctx)
	if err != nil {
		b.Fatal(err)
	}
	dest := accounts.DevAddress("Ferdie")
	call, err := accounts.TransferCall(dest, 1)
	if err != nil {
		b.Fatal(err)
	}
	senders := accounts.DevNames[:5]
	nonces := make([]uint64, len(senders))
	var (
		last  [][32]byte
		sent  int
		start = time.Now()
	)
	for b.Loop() {
		i := sent % len(senders)
		wire, err := c.BuildMinFee(accounts.DevKey(senders[i]), nonces[i], params, call)
		if err != nil {
			b.Fatal(err)
		}
		h, err := c.Broadcast(ctx, wire)
		if err != nil {
			b.Fatalf("tx %d: %v", sent, err)
		}
		nonces[i]++
		sent++
		last = append(last, h)
		// Keep the mempool (5000 by default) from filling up.
		if len(last) == 2000 {
			if _, err := c.WaitTx(ctx, last[len(last)-1]); err != nil {
				b.Fatal(err)
			}
			last = last[:0]
		}
	}
	for _, h := range last {
		if _, err := c.WaitTx(ctx, h); err != nil {
			b.Fatal(err)
		}
	}
	elapsed := time.Since(start)
	b.ReportMetric(float64(sent)/elapsed.Seconds(), "transfers/s")
	acc, err := c.Account(ctx, dest)
	if err != nil || acc.Balance != accounts.DevBalance+uint64(sent) {
		b.Fatalf("Ferdie got %d of %d transfers (%v)", acc.Balance-accounts.DevBalance, sent, err)
	}
}

func TestClientTrustRoot(t *testing.T) {
	_, c := startNode(t, devHome(t))
	ctx := ctxT(t)
	com, err := c.RPC().Commit(ctx, ptr(int64(1)))
	if err != nil {
		t.Fatal(err)
	}
	good, err := client.New(ctx, c.RPC().Remote(), client.Options{TrustHeight: 1, TrustHash: com.Hash()})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := good.VerifiedAccount(ctx, accounts.DevAddress("Alice"), 0); err != nil {
		t.Fatalf("trusted root: %v", err)
	}
	wrong := bytes.Clone(com.Hash())
	wrong[0] ^= 1
	bad, err := client.New(ctx, c.RPC().Remote(), client.Options{TrustHeight: 1, TrustHash: wrong})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bad.VerifiedHeader(ctx, 2); err == nil {
		t.Fatal("header verified from a root the node does not have")
	}
}

// The genesis ID the chain records is that of the validator set CometBFT
// puts in the header of the first block, which is what an enclave's light
// client starts from; clients read it proved.
func TestGenesisIDMatchesFirstHeader(t *testing.T) {
	_, c := startNode(t, devHome(t))
	ctx := ctxT(t)
	hdr, err := c.VerifiedHeader(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	id, err := c.GenesisID(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if want := teerex.GenesisID(c.ChainID(), 1, hdr.ValidatorsHash); id != want {
		t.Fatalf("genesis ID %s, want %s from the header of block 1", id, want)
	}
}

func ptr[T any](v T) *T { return &v }
