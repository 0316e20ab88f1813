package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/integritee-go/integritee/chain/bridge"
	"github.com/integritee-go/integritee/client"
	"github.com/integritee-go/integritee/localnet"
)

// TestTrustedCommands drives the trusted group against a localnet with one
// sim worker: shield, confidential transfers through the chain and
// directly (with and without --watch), unshield, nonces and balances, plus
// the refusals of bad input.
func TestTrustedCommands(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	enclave, err := localnet.BuildEnclave(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	net, err := localnet.Start(ctx, localnet.Config{EnclaveBinary: enclave})
	if err != nil {
		t.Fatal(err)
	}
	defer net.Stop()
	node, w := net.NodeRPC(), net.Workers()[0].RPCAddr()
	c, err := client.New(ctx, node, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	common := []string{"--node", node, "--worker", w, "--keystore", t.TempDir()}
	// The commands sign getters that expire two minutes after the CLI's
	// clock, judged by the localnet's chain time: the real clock, not the
	// fixed cliNow.
	cliJSON := func(t *testing.T, v any, args ...string) { t.Helper(); cliJSONAt(t, time.Now, v, args...) }
	cliFails := func(t *testing.T, want string, args ...string) { t.Helper(); cliFailsAt(t, time.Now, want, args...) }

	var res trustedResult
	cliJSON(t, &res, append([]string{"trusted", "shield", "--from", "Alice", "--amount", "1000", "--to", "Alice//incognito"}, common...)...)
	if res.Height == 0 || res.Shard != net.Workers()[0].Identity().Shard {
		t.Errorf("shield result %+v", res)
	}
	cliJSON(t, &res, append([]string{"trusted", "transfer", "--indirect", "--from", "Alice//incognito", "--to", "Bob//incognito", "--amount", "300"}, common...)...)
	if res.Nonce != 0 {
		t.Errorf("first trusted call has nonce %d", res.Nonce)
	}
	cliJSON(t, &res, append([]string{"trusted", "unshield", "--indirect", "--from", "Bob//incognito", "--to", "Bob", "--amount", "100"}, common...)...)
	unshieldHeight := res.Height

	// Directly to the worker (the default): executed at once, in a shard
	// block.
	var direct directResult
	cliJSON(t, &direct, append([]string{"trusted", "transfer", "--from", "Alice//incognito", "--to", "Bob//incognito", "--amount", "50"}, common...)...)
	if direct.Status != "executed" || direct.Success == nil || !*direct.Success || direct.Block == 0 || direct.Nonce != 1 {
		t.Errorf("direct transfer %+v", direct)
	}
	// --watch prints every status until confirmed on chain.
	code, out, errOut := runCLIAt(t, time.Now, nil, append([]string{"trusted", "transfer", "--watch", "--json", "--from", "Alice//incognito", "--to", "Charlie//incognito", "--amount", "25"}, common...)...)
	if code != 0 {
		t.Fatalf("transfer --watch: exit %d: %s", code, errOut)
	}
	var statuses []string
	dec := json.NewDecoder(strings.NewReader(out))
	for {
		var st directResult
		if err := dec.Decode(&st); err == io.EOF {
			break
		} else if err != nil {
			t.Fatalf("transfer --watch output %q: %v", out, err)
		}
		statuses = append(statuses, st.Status)
		if st.Status != "submitted" && (st.Block <= direct.Block || st.Nonce != 2) {
			t.Errorf("watched status %+v after block %d", st, direct.Block)
		}
	}
	if got := strings.Join(statuses, ","); got != "submitted,executed,confirmed" {
		t.Errorf("watched statuses %s", got)
	}
	var n trustedNonce
	cliJSON(t, &n, append([]string{"trusted", "nonce", "--account", "Alice//incognito"}, common...)...)
	if n.Nonce != 3 {
		t.Errorf("Alice's nonce after three calls: %d", n.Nonce)
	}

	for _, tc := range []struct {
		account     string
		free, nonce uint64
	}{{"Alice//incognito", 625, 3}, {"Bob//incognito", 250, 1}, {"Charlie//incognito", 25, 0}} {
		var b trustedBalance
		cliJSON(t, &b, append([]string{"trusted", "balance", "--account", tc.account}, common...)...)
		if b.Free != tc.free || b.Nonce != tc.nonce {
			t.Errorf("%s: free %d nonce %d, want %d %d", tc.account, b.Free, b.Nonce, tc.free, tc.nonce)
		}
	}
	// --worker takes several workers: a dead first one is skipped.
	var b trustedBalance
	cliJSON(t, &b, append(append([]string{"trusted", "balance", "--account", "Bob//incognito"}, common...), "--worker", "http://127.0.0.1:1, "+w)...)
	if b.Free != 250 {
		t.Errorf("Bob through the second worker of --worker: %+v", b)
	}
	// A worker whose getter answers say stale (here a proxy that marks
	// them, as a minority worker does): balance and nonce are shown with a
	// warning; a call is not signed with a nonce from a stale answer.
	stale := staleProxy(t, w)
	staleArgs := append(append([]string{}, common...), "--worker", stale)
	code, out, errOut = runCLIAt(t, time.Now, nil, append([]string{"trusted", "balance", "--json", "--account", "Bob//incognito"}, staleArgs...)...)
	if err := json.Unmarshal([]byte(out), &b); code != 0 || err != nil || !b.Stale || b.Free != 250 || !strings.Contains(errOut, "warning: worker "+stale) {
		t.Errorf("balance via a stale worker: exit %d %+v %v; stderr %q", code, b, err, errOut)
	}
	code, out, errOut = runCLIAt(t, time.Now, nil, append([]string{"trusted", "nonce", "--json", "--account", "Alice//incognito"}, staleArgs...)...)
	if err := json.Unmarshal([]byte(out), &n); code != 0 || err != nil || !n.Stale || n.Nonce != 3 || !strings.Contains(errOut, "stale") {
		t.Errorf("nonce via a stale worker: exit %d %+v %v; stderr %q", code, n, err, errOut)
	}
	cliFails(t, "no worker gave a fresh answer", append([]string{"trusted", "transfer", "--from", "Alice//incognito", "--to", "Bob//incognito", "--amount", "1"}, staleArgs...)...)

	// The unshield pays once the enclave's unshield_funds is on chain (Bob
	// paid the invoke's fee, far above 100).
	vault := bridge.VaultAddress(net.Shard)
	for {
		v, err := c.Account(ctx, vault)
		if err == nil && v.Balance == 900 {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("unshield of block %d never paid: vault %d", unshieldHeight, v.Balance)
		case <-time.After(100 * time.Millisecond):
		}
	}

	for _, tc := range []struct {
		want string
		args []string
	}{
		{"insufficient funds", []string{"trusted", "transfer", "--from", "Charlie//incognito", "--to", "Bob//incognito", "--amount", "1000"}},
		{"stale nonce", []string{"trusted", "transfer", "--from", "Alice//incognito", "--to", "Bob//incognito", "--amount", "1", "--nonce", "0"}},
		{"--payer pays a chain invoke", []string{"trusted", "transfer", "--from", "Alice//incognito", "--payer", "Alice", "--to", "Bob//incognito", "--amount", "1"}},
		{"cannot be used with --indirect", []string{"trusted", "transfer", "--indirect", "--watch", "--from", "Alice//incognito", "--to", "Bob//incognito", "--amount", "1"}},
		{"--payer is required", []string{"trusted", "transfer", "--indirect", "--from", "Charlie", "--to", "Bob//incognito", "--amount", "1"}},
		{"derived names", []string{"trusted", "balance", "--account", "Nobody//incognito"}},
		{"is an address", []string{"trusted", "balance", "--account", "0000000000000000000000000000000000000000000000000000000000000001"}},
		{"serves shard", []string{"trusted", "balance", "--account", "Bob//incognito", "--shard", "0000000000000000000000000000000000000000000000000000000000000001"}},
		{"--from, --to and --amount are required", []string{"trusted", "shield", "--from", "Alice"}},
	} {
		cliFails(t, tc.want, append(tc.args, common...)...)
	}
	// A clock an hour behind the chain signs getters the enclave finds
	// expired; the refusal reaches the user.
	hourAgo := func() time.Time { return time.Now().Add(-time.Hour) }
	cliFailsAt(t, hourAgo, "getter expired", append([]string{"trusted", "balance", "--account", "Bob//incognito"}, common...)...)
}

func TestWorkerURLs(t *testing.T) {
	got, err := workerURLs(" http://a:1 ,http://b:2,, ")
	if err != nil || strings.Join(got, " ") != "http://a:1 http://b:2" {
		t.Fatalf("%q %v", got, err)
	}
	if _, err := workerURLs(" , "); err == nil {
		t.Fatal("an empty list was accepted")
	}
}

// staleProxy serves worker's JSON-RPC with every getter result marked
// stale, as a worker whose read barrier fails answers; it returns its
// URL.
func staleProxy(t *testing.T, worker string) string {
	t.Helper()
	u, err := url.Parse(worker)
	if err != nil {
		t.Fatal(err)
	}
	p := httputil.NewSingleHostReverseProxy(u)
	p.ModifyResponse = func(r *http.Response) error {
		body, err := io.ReadAll(r.Body)
		r.Body.Close()
		if err != nil {
			return err
		}
		var m map[string]any
		if json.Unmarshal(body, &m) == nil {
			if res, ok := m["result"].(map[string]any); ok && res["response"] != nil {
				res["stale"] = true
				body, _ = json.Marshal(m)
			}
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		r.ContentLength = int64(len(body))
		r.Header.Set("Content-Length", strconv.Itoa(len(body)))
		return nil
	}
	s := httptest.NewServer(p)
	t.Cleanup(s.Close)
	return s.URL
}
