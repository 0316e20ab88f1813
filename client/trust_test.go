package client

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/integritee-go/integritee/chain/accounts"
	"github.com/integritee-go/integritee/chain/node"
	"github.com/integritee-go/integritee/chain/node/nodetest"
	"github.com/integritee-go/integritee/chain/types"
)

// startNode runs an in-process dev node whose genesis (and so block 1) is
// at genesisTime, and waits for its block 3.
func startNode(t *testing.T, genesisTime time.Time) string {
	t.Helper()
	return nodetest.StartDev(t, genesisTime, 3).RPCAddress()
}

func newClient(t *testing.T, addr string, opts Options) *Client {
	t.Helper()
	opts.PollInterval = 20 * time.Millisecond
	c, err := New(context.Background(), addr, opts)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func readTrustFile(t *testing.T, path string) trustFile {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var f trustFile
	if err := json.Unmarshal(b, &f); err != nil {
		t.Fatal(err)
	}
	return f
}

// TestMonthsOldChain runs a chain whose block 1 is three months old. The
// old client trusted block 1 at every start and verified forward from it
// by time.Now, so every proved query failed with "old header has expired";
// it kept nothing between clients and had no clock to inject.
func TestMonthsOldChain(t *testing.T) {
	genesis := time.Now().Add(-90 * 24 * time.Hour).UTC()
	addr := startNode(t, genesis)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	alice := accounts.DevAddress("Alice")
	store := FileTrustStore{Dir: filepath.Join(t.TempDir(), "trust")}
	path := store.Path(node.DevChainID)

	// First use: the node's newest block is the root, and the newest
	// verified header is stored with the chain's genesis ID.
	c := newClient(t, addr, Options{TrustStore: store})
	acc, h, err := c.VerifiedAccount(ctx, alice, 0)
	if err != nil {
		t.Fatalf("first use on a months-old chain: %v", err)
	}
	if acc.Balance != accounts.DevBalance {
		t.Fatalf("Alice %+v", acc)
	}
	if c.light.rootFrom != "trusted on first use" {
		t.Fatalf("root %q", c.light.rootFrom)
	}
	first := readTrustFile(t, path)
	g, err := c.GenesisID(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if first.Height < h+1 || first.ChainID != node.DevChainID || first.GenesisID != g {
		t.Fatalf("stored %+v after a query at %d of genesis %s", first, h, g)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("trust file mode: %v %v", fi, err)
	}
	if ents, _ := os.ReadDir(store.Dir); len(ents) != 1 {
		t.Fatalf("trust dir holds %d entries, want the record only", len(ents))
	}
	// Block 1 itself cannot be a root any more: the error says so and
	// what to do.
	b1, err := c.VerifiedHeader(ctx, 1)
	if err != nil {
		t.Fatalf("block 1 by hash links: %v", err)
	}
	if !b1.Time.Equal(genesis) {
		t.Fatalf("block 1 at %s, genesis %s", b1.Time, genesis)
	}
	_, _, err = newClient(t, addr, Options{TrustHeight: 1, TrustHash: b1.Hash()}).VerifiedAccount(ctx, alice, 0)
	if !errors.Is(err, ErrTrustExpired) || !strings.Contains(err.Error(), "set a recent block") {
		t.Fatalf("block 1 as the root: %v", err)
	}

	// A later client verifies forward from the stored header and moves
	// it on.
	c2 := newClient(t, addr, Options{TrustStore: store})
	if _, _, err := c2.VerifiedAccount(ctx, alice, 0); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(c2.light.rootFrom, "stored in "+path) {
		t.Fatalf("second client's root %q", c2.light.rootFrom)
	}
	second := readTrustFile(t, path)
	if second.Height <= first.Height {
		t.Fatalf("stored height %d, then %d", first.Height, second.Height)
	}

	// Fifteen days later the stored header has expired: a clear error,
	// and the record is left as it was.
	later := func() time.Time { return time.Now().Add(15 * 24 * time.Hour) }
	_, _, err = newClient(t, addr, Options{TrustStore: store, Now: later}).VerifiedAccount(ctx, alice, 0)
	if !errors.Is(err, ErrTrustExpired) || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "set a recent block") {
		t.Fatalf("expired stored root: %v", err)
	}
	if readTrustFile(t, path).Height != second.Height {
		t.Fatal("an expired record was overwritten")
	}

	// An explicit root takes precedence over the store; a wrong hash is
	// refused.
	recent, err := c2.VerifiedHeader(ctx, second.Height)
	if err != nil {
		t.Fatal(err)
	}
	c3 := newClient(t, addr, Options{TrustStore: store, TrustHeight: recent.Height, TrustHash: recent.Hash()})
	if _, _, err := c3.VerifiedAccount(ctx, alice, 0); err != nil {
		t.Fatal(err)
	}
	if c3.light.rootFrom != "set in the options" {
		t.Fatalf("root %q", c3.light.rootFrom)
	}
	bad := append([]byte(nil), recent.Hash()...)
	bad[0] ^= 1
	_, _, err = newClient(t, addr, Options{TrustStore: store, TrustHeight: recent.Height, TrustHash: bad}).VerifiedAccount(ctx, alice, 0)
	if !errors.Is(err, ErrChainMismatch) {
		t.Fatalf("wrong trust hash: %v", err)
	}
	if _, err := New(ctx, addr, Options{TrustHeight: 5}); err == nil {
		t.Fatal("a trust height without a hash was accepted")
	}
}

// TestBadTrustRecords: a record that is truncated, edited or of another
// chain is an error, never "no record" (which would trust the node anew).
// The old client had no records; a test client there trusted any node.
func TestBadTrustRecords(t *testing.T) {
	addr := startNode(t, time.Now().UTC())
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	alice := accounts.DevAddress("Alice")
	dir := t.TempDir()
	store := FileTrustStore{Dir: dir}
	path := store.Path(node.DevChainID)
	if _, _, err := newClient(t, addr, Options{TrustStore: store}).VerifiedAccount(ctx, alice, 0); err != nil {
		t.Fatal(err)
	}
	good, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var rec map[string]any
	if err := json.Unmarshal(good, &rec); err != nil {
		t.Fatal(err)
	}
	edit := func(k string, v any) []byte {
		m := map[string]any{}
		for k, v := range rec {
			m[k] = v
		}
		m[k] = v
		b, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	lb := rec["light_block"].(string)
	tests := []struct {
		name string
		data []byte
		want error
	}{
		{"truncated", good[:len(good)/2], ErrTrustRecord},
		{"empty", nil, ErrTrustRecord},
		{"height edited", edit("height", rec["height"].(float64)-1), ErrTrustRecord},
		{"header cut", edit("light_block", lb[:len(lb)-8]), ErrTrustRecord},
		{"other chain", edit("chain_id", "other"), ErrTrustRecord},
		{"other genesis", edit("genesis_id", types.Hash{1}.String()), ErrChainMismatch},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := os.WriteFile(path, tc.data, 0o600); err != nil {
				t.Fatal(err)
			}
			_, _, err := newClient(t, addr, Options{TrustStore: store}).VerifiedAccount(ctx, alice, 0)
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			if got, _ := os.ReadFile(path); string(got) != string(tc.data) {
				t.Fatal("the bad record was replaced")
			}
		})
	}
}

// TestAnotherChainOfTheSameID: a chain started anew under the same chain
// ID (new validators) does not follow from the stored header. The old
// client had no stored header and trusted whichever chain the node had.
func TestAnotherChainOfTheSameID(t *testing.T) {
	first := startNode(t, time.Now().UTC())
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	alice := accounts.DevAddress("Alice")
	store := FileTrustStore{Dir: t.TempDir()}
	if _, _, err := newClient(t, first, Options{TrustStore: store}).VerifiedAccount(ctx, alice, 0); err != nil {
		t.Fatal(err)
	}
	second := startNode(t, time.Now().UTC())
	c := newClient(t, second, Options{TrustStore: store})
	// Past the stored height, so that the chains differ there rather
	// than the second being merely behind.
	if err := c.waitHeight(ctx, readTrustFile(t, store.Path(node.DevChainID)).Height+1); err != nil {
		t.Fatal(err)
	}
	_, _, err := c.VerifiedAccount(ctx, alice, 0)
	if !errors.Is(err, ErrChainMismatch) {
		t.Fatalf("another chain of the same ID: %v", err)
	}
}
