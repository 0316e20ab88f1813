package rpc_test

import (
	"context"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/integritee-go/integritee/worker/rpc"
)

// wireGolden are requests and the responses clients receive, byte for
// byte, in order (the fake's block numbers count up): the wire format is
// a contract with every client built on package api, so a change to it
// must be deliberate and show here.
var wireGolden = []struct{ name, request, response string }{
	{"version",
		`{"id":1,"jsonrpc":"2.0","method":"system_version"}`,
		`{"jsonrpc":"2.0","id":1,"result":{"version":"9.9.9"}}`},
	{"methods",
		`{"id":2,"jsonrpc":"2.0","method":"rpc_methods"}`,
		`{"jsonrpc":"2.0","id":2,"result":{"methods":["author_getShieldingKey","author_submitAndWatchTrustedCall","author_submitTrustedCall","author_unwatchTrustedCall","rpc_methods","state_executeGetter","state_getNonce","system_health","system_version"]}}`},
	{"shielding key",
		`{"id":3,"jsonrpc":"2.0","method":"author_getShieldingKey"}`,
		`{"jsonrpc":"2.0","id":3,"result":{"shielding_key":"736869656c64696e67206b6579","signer":"0101010101010101010101010101010101010101010101010101010101010101","mrenclave":"5a00000000000000000000000000000000000000000000000000000000000000","shard":"5a00000000000000000000000000000000000000000000000000000000000000"}}`},
	{"executed",
		`{"id":4,"jsonrpc":"2.0","method":"author_submitTrustedCall","params":{"call":"6f6b2031","shard":"5a00000000000000000000000000000000000000000000000000000000000000"}}`,
		`{"jsonrpc":"2.0","id":4,"result":{"hash":"c57b302165cbadbbd5af8d0926a7aeb5d8109160171954d75312cacc4dfe1273","status":"executed","result":{"success":true},"block":{"header":{"shard":"5a00000000000000000000000000000000000000000000000000000000000000","number":1,"parent_hash":"0000000000000000000000000000000000000000000000000000000000000000","chain_height":0,"calls_root":"70090c21e8ed6284460e39ae5c69ef8cfd2d7255a23d76a4813b604a239cac38","state_hash":"0000000000000000000000000000000000000000000000000000000000000000","unshields_root":"0000000000000000000000000000000000000000000000000000000000000000","timestamp":0,"author":"0000000000000000000000000000000000000000000000000000000000000000"},"header_hash":"3809c2917b7eaa58b2fdf04e3cc3a446b86889ae3e46752d055265a3677d7ce9","signature":"","proof":{"index":0,"total":1,"aunts":null}}}}`},
	{"failed",
		`{"id":5,"jsonrpc":"2.0","method":"author_submitTrustedCall","params":{"call":"6661696c2031","shard":"5a00000000000000000000000000000000000000000000000000000000000000"}}`,
		`{"jsonrpc":"2.0","id":5,"result":{"hash":"d0ba5955cd7486320aa6b89960278b23db72e1622b0b59ff5377f852f857d7d0","status":"executed","result":{"success":false,"error":"balances: insufficient funds"},"block":{"header":{"shard":"5a00000000000000000000000000000000000000000000000000000000000000","number":2,"parent_hash":"0000000000000000000000000000000000000000000000000000000000000000","chain_height":0,"calls_root":"f3472d18010a1fd9c11010996be192d00302ae06e98441907deb98825c39093f","state_hash":"0000000000000000000000000000000000000000000000000000000000000000","unshields_root":"0000000000000000000000000000000000000000000000000000000000000000","timestamp":0,"author":"0000000000000000000000000000000000000000000000000000000000000000"},"header_hash":"795359e7a3005f4596d068ea6028cfaf8f5d2dba9abf7dec3b7cbb1f1f24e7fc","signature":"","proof":{"index":0,"total":1,"aunts":null}}}}`},
	{"invalid",
		`{"id":6,"jsonrpc":"2.0","method":"author_submitTrustedCall","params":{"call":"6261642031","shard":"5a00000000000000000000000000000000000000000000000000000000000000"}}`,
		`{"jsonrpc":"2.0","id":6,"error":{"code":1010,"message":"invalid trusted call: bad signature","data":{"hash":"ae4a287ce3c93f36b4d938edea29b1ced3180f4b67dee1d8382e8c88d73cf886","status":"invalid","reason":"bad signature"}}}`},
	{"getter",
		`{"id":7,"jsonrpc":"2.0","method":"state_executeGetter","params":{"request":"676574","shard":"5a00000000000000000000000000000000000000000000000000000000000000"}}`,
		`{"jsonrpc":"2.0","id":7,"result":{"response":"656e633a676574"}}`},
	{"health",
		`{"id":8,"jsonrpc":"2.0","method":"system_health"}`,
		`{"jsonrpc":"2.0","id":8,"result":{"height":7,"state_root":"0100000000000000000000000000000000000000000000000000000000000000","shard_block":2,"confirmed_shard_block":0,"limits":{"rate":200,"burst":400,"max_batch":64,"max_conns":1024,"max_conns_per_ip":64,"max_in_flight":256,"call_queue":8192,"calls_per_round":1024,"getters":4,"getter_queue":256,"max_request_bytes":262144}}}`},
	{"unknown method",
		`{"id":9,"jsonrpc":"2.0","method":"nope"}`,
		`{"jsonrpc":"2.0","id":9,"error":{"code":-32601,"message":"method not found: nope"}}`},
	{"parse error",
		`{"jsonrpc":"2.0","id":10,"method":`,
		`{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"parse error"}}`},
	{"wrong shard",
		`{"id":11,"jsonrpc":"2.0","method":"state_getNonce","params":{"request":"00","shard":"00"}}`,
		`{"jsonrpc":"2.0","id":11,"error":{"code":1040,"message":"this worker serves shard 5a00000000000000000000000000000000000000000000000000000000000000"}}`},
}

// wireWatch is a subscription as a WebSocket client sees it: the
// subscription ID, then the executed and confirmed statuses.
var wireWatch = []string{
	`{"jsonrpc":"2.0","id":1,"result":"1"}`,
	`{"jsonrpc":"2.0","method":"author_trustedCallStatus","params":{"subscription":"1","result":{"hash":"946ba1d122abafe05dc1db3ab7a2cfcc1b9c046dd7223970cb4bd1bade313e84","status":"submitted"}}}`,
	`{"jsonrpc":"2.0","method":"author_trustedCallStatus","params":{"subscription":"1","result":{"hash":"946ba1d122abafe05dc1db3ab7a2cfcc1b9c046dd7223970cb4bd1bade313e84","status":"executed","result":{"success":true},"block":{"header":{"shard":"5a00000000000000000000000000000000000000000000000000000000000000","number":3,"parent_hash":"0000000000000000000000000000000000000000000000000000000000000000","chain_height":0,"calls_root":"3a07505c43eb49efdfb40ccb0fa8c4b25166b6eda826827b1a8373f0ca32bf2b","state_hash":"0000000000000000000000000000000000000000000000000000000000000000","unshields_root":"0000000000000000000000000000000000000000000000000000000000000000","timestamp":0,"author":"0000000000000000000000000000000000000000000000000000000000000000"},"header_hash":"90a238d7c0ee23babf7705caa878cfb8cfc161f152b11735460612c33cb5becb","signature":"","proof":{"index":0,"total":1,"aunts":null}}}}}`,
	`{"jsonrpc":"2.0","method":"author_trustedCallStatus","params":{"subscription":"1","result":{"hash":"946ba1d122abafe05dc1db3ab7a2cfcc1b9c046dd7223970cb4bd1bade313e84","status":"confirmed","result":{"success":true},"block":{"header":{"shard":"5a00000000000000000000000000000000000000000000000000000000000000","number":3,"parent_hash":"0000000000000000000000000000000000000000000000000000000000000000","chain_height":0,"calls_root":"3a07505c43eb49efdfb40ccb0fa8c4b25166b6eda826827b1a8373f0ca32bf2b","state_hash":"0000000000000000000000000000000000000000000000000000000000000000","unshields_root":"0000000000000000000000000000000000000000000000000000000000000000","timestamp":0,"author":"0000000000000000000000000000000000000000000000000000000000000000"},"header_hash":"90a238d7c0ee23babf7705caa878cfb8cfc161f152b11735460612c33cb5becb","signature":"","proof":{"index":0,"total":1,"aunts":null}}}}}`,
}

func TestWireFormat(t *testing.T) {
	srv, url, wsURL := newServer(t, newFake(), rpc.Options{Version: "9.9.9"})
	for _, tc := range wireGolden {
		if _, got := post(t, url, tc.request); string(got) != tc.response {
			t.Errorf("%s:\n got %s\nwant %s", tc.name, got, tc.response)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ws := dialWS(t, wsURL)
	if err := ws.conn.Write(ctx, websocket.MessageText, []byte(`{"jsonrpc":"2.0","id":1,"method":"author_submitAndWatchTrustedCall","params":{"shard":"`+shardHex+`","call":"6f6b2032"}}`)); err != nil {
		t.Fatal(err)
	}
	var got []string
	for i := range 4 {
		if i == 3 {
			srv.Confirmed(3)
		}
		_, b, err := ws.conn.Read(ctx)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, string(b))
	}
	for i := range min(len(got), len(wireWatch)) {
		if got[i] != wireWatch[i] {
			t.Errorf("watch message %d:\n got %s\nwant %s", i, got[i], wireWatch[i])
		}
	}
	if len(got) != len(wireWatch) {
		t.Errorf("watch: %d messages, want %d", len(got), len(wireWatch))
	}
}
