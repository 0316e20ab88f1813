package trusted

import (
	"encoding/json"
	"reflect"
	"testing"
)

// sameAnswer fails t unless fastAnswer, where it takes b, reads it as
// json.Unmarshal does; it reports whether it took b.
func sameAnswer(t *testing.T, b []byte) bool {
	t.Helper()
	fast, ok := fastAnswer(b)
	if !ok {
		if !reflect.DeepEqual(fast, rpcResponse{}) {
			t.Fatalf("%q: declined with %+v", b, fast)
		}
		return false
	}
	var slow rpcResponse
	if err := json.Unmarshal(b, &slow); err != nil {
		t.Fatalf("%q: taken, json.Unmarshal: %v", b, err)
	}
	if !reflect.DeepEqual(fast, slow) {
		t.Fatalf("%q: fast %+v, json.Unmarshal %+v", b, fast, slow)
	}
	return true
}

func TestFastAnswer(t *testing.T) {
	for _, tt := range []struct {
		in   string
		fast bool
	}{
		{`{"jsonrpc":"2.0","id":12,"result":{"status":"executed","hash":"ab","block":{"header":{"number":3,"reason":"a\"b\u00e9"}},"proof":{"aunts":["00","11"]}}}`, true},
		{` {"id":"x","result":null} `, true},
		{`{"result":[1,2.5,true],"id":-3,"jsonrpc":7}`, true},
		{`{"jsonrpc":"2.0","result":"0xab"}`, true},
		// Declined: json.Unmarshal decides.
		{`{"jsonrpc":"2.0","id":1}`, false},
		{`{"jsonrpc":"2.0","id":1,"error":{"code":1,"message":"m"}}`, false},
		{`{"jsonrpc":"2.0","method":"author_trustedCallStatus","params":{}}`, false},
		{`{"jsonrpc":"2.0","id":null,"result":1}`, false},
		{`{"jsonrpc":"2.0","id":1.0,"result":1}`, false},
		{`{"jsonrpc":"2.0","ID":1,"result":1}`, false},
		{`{"jsonrpc":"2.0","id":1,"Result":1}`, false},
		{`{"jsonrpc":"2.0","id":1,"result":1,"result":2}`, false},
		{`{"jsonrpc":"2.0","id":1,"result":{"a":}}`, false},
		{`{"jsonrpc":"2.0","id":1,"result":1}x`, false},
		{`[{"id":1,"result":1}]`, false},
	} {
		if got := sameAnswer(t, []byte(tt.in)); got != tt.fast {
			t.Errorf("%q: taken %v, want %v", tt.in, got, tt.fast)
		}
	}
}

// FuzzFastAnswer: wherever fastAnswer takes an answer, json.Unmarshal
// reads the same.
func FuzzFastAnswer(f *testing.F) {
	for _, s := range []string{
		`{"jsonrpc":"2.0","id":12,"result":{"status":"executed","block":{"header":{"number":3}},"proof":{"aunts":["00","11"]}}}`,
		`{"jsonrpc":"2.0","id":"7","result":"x\u0041"}`,
		`{"jsonrpc":"2.0","id":1,"error":{"code":-32000,"message":"m","data":{"reason":"r"}}}`,
		`{"jsonrpc":"2.0","method":"author_trustedCallStatus","params":{"subscription":"s","result":{"status":"executed"}}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) { sameAnswer(t, b) })
}
