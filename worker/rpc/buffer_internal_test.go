package rpc

import (
	"bytes"
	"context"
	"encoding/hex"
	"strings"
	"testing"

	"github.com/integritee-go/integritee/enclave/protocol"
)

// gatedBackend holds SubmitCalls and ExecuteGetter until gate closes.
type gatedBackend struct{ gate chan struct{} }

var bufShard = [32]byte{0x5a}

func (b *gatedBackend) ShieldingKey(context.Context) (*Identity, error) {
	return &Identity{ShieldingKey: []byte("k"), Signer: make([]byte, 32), Shard: bufShard}, nil
}
func (b *gatedBackend) SubmitCalls(ctx context.Context, calls [][]byte) ([]Outcome, error) {
	<-b.gate
	out := make([]Outcome, len(calls))
	for i, c := range calls {
		out[i] = Outcome{Status: protocol.CallInvalid, Reason: "got:" + string(c)}
	}
	return out, nil
}
func (b *gatedBackend) ExecuteGetter(ctx context.Context, r []byte) ([]byte, bool, error) {
	<-b.gate
	return append([]byte("enc:"), r...), false, nil
}
func (b *gatedBackend) Health(context.Context) (*Health, error) {
	<-b.gate
	return &Health{Height: 1}, nil
}

type noObserver struct{}

func (noObserver) Request(string, int) {}

// TestRequestsOutliveTheirBuffer: a message is parsed in a pooled buffer
// (WebSocket and HTTP), which is overwritten once its requests are
// started; the answers, collected after that, must be those of an
// untouched buffer, for every request shape, fast and slow parses,
// getters, errors that echo the id, and batches. (Contributed by a review.)
func TestRequestsOutliveTheirBuffer(t *testing.T) {
	sh := hex.EncodeToString(bufShard[:])
	ct := hex.EncodeToString([]byte("secret-call-AAAA"))
	msgs := []string{
		`{"jsonrpc":"2.0","id":"fast-id","method":"author_submitTrustedCall","params":{"shard":"` + sh + `","call":"` + ct + `"}}`,
		`{"jsonrpc":"2.0","id":"slow\u0041id","method":"author_submitTrustedCall","params":{"shard":"` + sh + `","call":"0x` + ct + `"},"x":null}`,
		`{"id":12345678901234567890,"jsonrpc":"2.0","method":"author_submitTrustedCall","params":{"call":"` + ct + `","shard":"0x` + sh + `"}}`,
		`{"jsonrpc":"2.0","id":"g1","method":"state_executeGetter","params":{"shard":"` + sh + `","request":"` + ct + `"}}`,
		`{"jsonrpc":"2.0","id":"g2","method":"state_getNonce","params":{"request":"` + ct + `", "shard":"` + sh + `"}}`,
		`{"jsonrpc":"2.0","id":{"k":"objectid-data"},"method":"system_health"}`,
		`{"jsonrpc":"2.0","id":["arr"],"method":"system_health"}`,
		`{"jsonrpc":"2.0","id":"h1","method":"system_health"}`,
		`{"jsonrpc":"2.0","id":"m1","method":"no_such_method_\u00e9xyz"}`,
		`{"jsonrpc":"2.0","id":"p1","method":"author_submitTrustedCall","params":{"shard":"` + sh + `","call":"zz","unknownfieldname":1}}`,
		`{"jsonrpc":"2.0","id":"p2","method":"author_submitTrustedCall","params":{"shard":"` + sh + `","call":"zzzz"}}`,
		`{"jsonrpc":"1.0","id":"v1","method":"system_health"}`,
		`{"jsonrpc":"2.0","id":"w1","method":"author_submitAndWatchTrustedCall","params":{"shard":"` + sh + `","call":"` + ct + `"}}`,
		`{"jsonrpc":"2.0","id":"u1","method":"author_unwatchTrustedCall","params":{"subscription":"sub-x"}}`,
	}
	var all []string
	all = append(all, msgs...)
	all = append(all, "["+strings.Join(msgs, ",")+"]")
	all = append(all, " [ "+strings.Join(msgs[:3], " , ")+" ] ")
	run := func(m string, clobber bool) string {
		b := &gatedBackend{gate: make(chan struct{})}
		s := New(b, Options{Observer: noObserver{}, QueueSize: 100})
		defer s.Close()
		buf := bytes.NewBufferString(m)
		raws, batch, e := s.splitMessage(buf.Bytes())
		if e != nil {
			t.Fatalf("%s: %v", m, e)
		}
		ps := s.startAll(context.Background(), raws, batch, nil)
		if clobber {
			bb := buf.Bytes()
			for i := range bb {
				bb[i] = 'X'
			}
		}
		close(b.gate)
		return string(collect(nil, ps, batch))
	}
	for _, m := range all {
		want, got := run(m, false), run(m, true)
		if want != got {
			t.Errorf("message %.80s:\n got %s\nwant %s", m, got, want)
		}
	}
}
