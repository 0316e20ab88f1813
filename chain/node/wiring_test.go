package node_test

import (
	"bytes"
	"crypto/x509"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/integritee-go/integritee/attestation"
	"github.com/integritee-go/integritee/chain/accounts"
	"github.com/integritee-go/integritee/chain/bridge"
	"github.com/integritee-go/integritee/chain/devnet"
	"github.com/integritee-go/integritee/chain/node"
	"github.com/integritee-go/integritee/chain/sidechain"
	"github.com/integritee-go/integritee/chain/teerex"
	"github.com/integritee-go/integritee/chain/tx"
	"github.com/integritee-go/integritee/chain/types"
	"github.com/integritee-go/integritee/client"
	"github.com/integritee-go/integritee/tee/sim"
)

func teerexEntry(t *testing.T, home string) teerex.GenesisState {
	t.Helper()
	gen, err := node.Genesis(home)
	if err != nil {
		t.Fatal(err)
	}
	st, err := node.AppState(gen)
	if err != nil {
		t.Fatal(err)
	}
	raw, ok := st.Modules[teerex.Name]
	if !ok {
		t.Fatalf("genesis of %s has no teerex entry", home)
	}
	var g teerex.GenesisState
	if err := json.Unmarshal(raw, &g); err != nil {
		t.Fatal(err)
	}
	return g
}

func TestGenesisTeerexEntry(t *testing.T) {
	genesisTime := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	pki, err := sim.NewPKI([]byte(sim.DefaultSeed))
	if err != nil {
		t.Fatal(err)
	}

	dev := t.TempDir()
	if err := node.Init(dev, node.InitOptions{Dev: true, GenesisTime: genesisTime}); err != nil {
		t.Fatal(err)
	}
	g := teerexEntry(t, dev)
	p := g.Policy
	if !p.AllowDebug || !p.AllowAnyMRENCLAVE || len(p.DCAPRoots) != 1 || len(p.TCBInfos) != 1 || p.QEIdentity == nil {
		t.Fatalf("dev policy: debug %v, any MRENCLAVE %v, %d roots, %d TCB infos", p.AllowDebug, p.AllowAnyMRENCLAVE, len(p.DCAPRoots), len(p.TCBInfos))
	}
	// The root is the sim dev root (its key; each issue has other
	// signature bytes).
	root, err := x509.ParseCertificate(p.DCAPRoots[0])
	if err != nil || !bytes.Equal(root.RawSubjectPublicKeyInfo, pki.Root().RawSubjectPublicKeyInfo) {
		t.Fatalf("dev root is not the sim dev root (%v)", err)
	}
	// The dev collateral outlives Intel's 30 days by far.
	if err := p.Validate(true, genesisTime.Add(devnet.CollateralValidity-time.Hour)); err != nil {
		t.Errorf("dev collateral near the end of its validity: %v", err)
	}
	if err := p.Validate(true, genesisTime.Add(devnet.CollateralValidity+time.Second)); err == nil {
		t.Error("dev collateral valid after DevCollateralValidity")
	}

	prod := t.TempDir()
	if err := node.Init(prod, node.InitOptions{}); err != nil {
		t.Fatal(err)
	}
	pg := teerexEntry(t, prod)
	got, err := json.Marshal(pg)
	if err != nil {
		t.Fatal(err)
	}
	want, err := json.Marshal(teerex.ProductionGenesis())
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("production teerex genesis %s, want %s", got, want)
	}

	// A testnet's collateral is made once: every home has the same genesis.
	// (Its ports are only written, never opened.)
	homes, err := node.Testnet(t.TempDir(), 3, node.TestnetOptions{Dev: true, BasePort: 30000, GenesisTime: genesisTime})
	if err != nil {
		t.Fatal(err)
	}
	first, err := os.ReadFile(filepath.Join(homes[0], "config", "genesis.json"))
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range homes[1:] {
		b, err := os.ReadFile(filepath.Join(h, "config", "genesis.json"))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(b, first) {
			t.Fatalf("genesis of %s differs from %s", h, homes[0])
		}
	}
	if g := teerexEntry(t, homes[0]); len(g.Policy.TCBInfos) != 1 || !g.Policy.AllowAnyMRENCLAVE {
		t.Fatalf("testnet teerex genesis %+v", g.Policy)
	}
}

// After a restart the app has committed state but has seen no block; CheckTx
// must still verify a registration at the last block's time. The restarted
// node waits an hour before its next block, so the registration is checked
// before any block could tell the app the time.
func TestRestartRestoresCheckTxTime(t *testing.T) {
	home := devHome(t)
	n, c0 := startNode(t, home)
	// Read before the restart: the restarted node makes no block that
	// could prove it.
	genesis, err := c0.GenesisID(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Stop(); err != nil {
		t.Fatal(err)
	}
	cfg, err := node.LoadConfig(home)
	if err != nil {
		t.Fatal(err)
	}
	cfg.TimeoutCommit = node.Duration(time.Hour)
	if err := node.SaveConfig(home, cfg); err != nil {
		t.Fatal(err)
	}
	n2, err := node.Start(home, node.StartOptions{Modules: node.Modules()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := n2.Stop(); err != nil {
			t.Errorf("stop: %v", err)
		}
	})
	height := n2.Height()
	ctx := ctxT(t)
	c, err := client.New(ctx, n2.RPCAddress(), client.Options{})
	if err != nil {
		t.Fatal(err)
	}

	m := [32]byte{1}
	b, err := sim.New(sim.Config{Measurement: &m})
	if err != nil {
		t.Fatal(err)
	}
	dave := accounts.DevAddress("Dave")
	q, err := b.Quote(teerex.ReportData(dave, []byte("k"), genesis))
	if err != nil {
		t.Fatal(err)
	}
	call, err := teerex.RegisterEnclaveCall(teerex.Evidence{Kind: attestation.KindDCAP, Quote: q}, []byte("k"), "")
	if err != nil {
		t.Fatal(err)
	}
	params, err := c.Params(ctx)
	if err != nil {
		t.Fatal(err)
	}
	acc, err := c.Account(ctx, dave)
	if err != nil {
		t.Fatal(err)
	}
	wire, err := c.BuildMinFee(accounts.DevKey("Dave"), acc.Nonce, params, call)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Broadcast(ctx, wire); err != nil {
		t.Fatalf("CheckTx of a registration right after restart: %v", err)
	}
	if got := n2.Height(); got != height {
		t.Fatalf("a block was made (height %d -> %d): the test proves nothing", height, got)
	}
}

// The node's runtime has the sidechain module: its query path is served
// (a shard without confirmations is proved absent) and its call executes,
// refusing a sender that is no registered enclave. The bridge is built
// with the sidechain's blocks: an unwired bridge would answer its
// unshield_funds with an internal error, not with ErrNotActive.
func TestSidechainWired(t *testing.T) {
	_, c := startNode(t, devHome(t))
	ctx := ctxT(t)
	shard := types.Hash{7}
	conf, _, err := c.SidechainLatest(ctx, shard)
	if err != nil || conf != nil {
		t.Fatalf("latest of an unknown shard: %+v, %v", conf, err)
	}
	if conf, _, err := c.SidechainBlock(ctx, shard, 1); err != nil || conf != nil {
		t.Fatalf("block 1 of an unknown shard: %+v, %v", conf, err)
	}
	u := sidechain.Unshield{Beneficiary: accounts.DevAddress("Dave"), Amount: 1, CallHash: types.Hash{1}}
	root, proofs := sidechain.UnshieldsRoot([]sidechain.Unshield{u})
	confirm, err := sidechain.ConfirmCall(sidechain.Header{Shard: shard, Number: 1, UnshieldsRoot: root})
	if err != nil {
		t.Fatal(err)
	}
	unshield, err := sidechain.UnshieldCall(shard, 1, u, proofs[0])
	if err != nil {
		t.Fatal(err)
	}
	params, err := c.Params(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		call tx.Call
		want error
	}{
		{"confirm_sidechain_block", confirm, sidechain.ErrNotActive},
		{"unshield_funds", unshield, bridge.ErrNotActive},
	} {
		acc, err := c.Account(ctx, accounts.DevAddress("Dave"))
		if err != nil {
			t.Fatal(err)
		}
		wire, err := c.BuildMinFee(accounts.DevKey("Dave"), acc.Nonce, params, tc.call)
		if err != nil {
			t.Fatal(err)
		}
		h, err := c.Broadcast(ctx, wire)
		if err == nil {
			_, err = c.WaitTx(ctx, h)
		}
		if !errors.Is(err, tc.want) {
			t.Fatalf("%s by a plain account: %v, want %v", tc.name, err, tc.want)
		}
	}
}
