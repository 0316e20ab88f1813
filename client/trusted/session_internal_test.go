package trusted

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"math"
	"testing"

	"github.com/integritee-go/integritee/worker/rpc/api"
)

// TestAppendCallRequest: the appended request is byte for byte what
// json.Marshal makes of it.
func TestAppendCallRequest(t *testing.T) {
	shard := bytes.Repeat([]byte{0xab}, 32)
	for _, tc := range []struct {
		id int64
		ct []byte
	}{
		{1, []byte{0, 1, 2, 0xff}},
		{math.MaxInt64, bytes.Repeat([]byte{'"', '\\', '<'}, 100)},
		{-7, nil},
	} {
		want, err := json.Marshal(rpcRequest{JSONRPC: api.Version, ID: tc.id, Method: api.MethodSubmitTrustedCall,
			Params: api.CallParams{Shard: hex.EncodeToString(shard), Call: hex.EncodeToString(tc.ct)}})
		if err != nil {
			t.Fatal(err)
		}
		if got := appendCallRequest([]byte("x"), tc.id, shard, tc.ct); string(got) != "x"+string(want) {
			t.Errorf("id %d:\n got %s\nwant x%s", tc.id, got, want)
		}
	}
}
