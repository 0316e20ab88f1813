package trusted

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
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

// sameEnvelope fails t unless, where envelopeAnswer takes b with a result
// that is valid JSON, json.Unmarshal reads b as it does (a result that is
// not valid JSON fails the answer's verification later); it reports
// whether it took b.
func sameEnvelope(t *testing.T, b []byte) bool {
	t.Helper()
	r, ok := envelopeAnswer(b)
	if !ok {
		return false
	}
	if !json.Valid(r.Result) {
		return true
	}
	var slow rpcResponse
	if err := json.Unmarshal(b, &slow); err != nil {
		t.Fatalf("%q: result %q is valid, json.Unmarshal of the answer: %v", b, r.Result, err)
	}
	if !bytes.Equal(slow.ID, r.ID) || !bytes.Equal(slow.Result, r.Result) || slow.Error != nil || slow.Method != "" {
		t.Fatalf("%q: envelope %+v, json.Unmarshal %+v", b, r, slow)
	}
	return true
}

func TestEnvelopeAnswer(t *testing.T) {
	for _, tt := range []struct {
		in     string
		taken  bool
		result string
	}{
		{`{"jsonrpc":"2.0","id":12,"result":{"status":"executed","proof":{"aunts":["00","11"]}}}`, true, `{"status":"executed","proof":{"aunts":["00","11"]}}`},
		{" {\"jsonrpc\" : \"2.0\" , \"id\" : \"x\" , \"result\" : [1, 2] \n} \r\n", true, `[1, 2]`},
		// Taken, and failing later: the result is not one JSON value
		// (json.Unmarshal would take the second of two results).
		{`{"jsonrpc":"2.0","id":1,"result":{"a":}}`, true, `{"a":}`},
		{`{"jsonrpc":"2.0","id":1,"result":1,"result":2}`, true, `1,"result":2`},
		{`{"jsonrpc":"2.0","id":1,"result":1}}`, true, `1}`},
		// Declined: another shape, which decodeAnswer reads.
		{`{"jsonrpc":"2.0","id":1,"result":}`, false, ``},
		{`{"jsonrpc":"2.0","id":1,"result":1}x`, false, ``},
		{`{"jsonrpc":"2.0","id":1,"error":{"code":1,"message":"m"}}`, false, ``},
		{`{"jsonrpc":"2.0","method":"author_trustedCallStatus","params":{}}`, false, ``},
		{`{"id":1,"jsonrpc":"2.0","result":1}`, false, ``},
		{`{"jsonrpc":"2.0","id":null,"result":1}`, false, ``},
		{`{"jsonrpc":"2.0","ID":1,"result":1}`, false, ``},
		{`{"jsonrpc":nul,"id":1,"result":1}`, false, ``},
		{`{"jsonrpc":"2.0","id":1,"result":1`, false, ``},
	} {
		r, ok := envelopeAnswer([]byte(tt.in))
		if ok != tt.taken || string(r.Result) != tt.result {
			t.Errorf("%q: taken %v with result %q, want %v with %q", tt.in, ok, r.Result, tt.taken, tt.result)
		}
		sameEnvelope(t, []byte(tt.in))
	}
}

// An answer taken by its envelope whose result is not one JSON value
// fails its verification: nothing is taken from it unvalidated.
func TestEnvelopeResultVerified(t *testing.T) {
	for _, in := range []string{
		`{"jsonrpc":"2.0","id":1,"result":{"status":"executed",}}`,
		`{"jsonrpc":"2.0","id":1,"result":{"status":"executed"},"result":{"status":"executed"}}`,
	} {
		r, ok := envelopeAnswer([]byte(in))
		if !ok {
			t.Fatalf("%q declined", in)
		}
		if _, err := (&Client{}).VerifySubmission([]byte("ct"), &Submission{answer: r.Result}); err == nil || !strings.Contains(err.Error(), "call result") {
			t.Fatalf("%q: verification %v, want the result refused", in, err)
		}
	}
}

// FuzzEnvelopeAnswer: where envelopeAnswer takes an answer with a valid
// result, json.Unmarshal reads the same.
func FuzzEnvelopeAnswer(f *testing.F) {
	for _, s := range []string{
		`{"jsonrpc":"2.0","id":12,"result":{"status":"executed","block":{"header":{"number":3}},"proof":{"aunts":["00","11"]}}}`,
		`{"jsonrpc":"2.0","id":"7","result":"x\u0041"}`,
		`{"jsonrpc":"2.0","id":1,"result":[1,{"a":"b"}]} `,
		`{"jsonrpc":"2.0","id":1,"result":{"a":"}"}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) { sameEnvelope(t, b) })
}

// A call out is taken (its callback to be called) once, and only for its
// own number: a reader that matched an earlier call's answer, or an
// earlier Send whose write failed, never takes the next call's.
func TestSessionTakeOnlyItsCall(t *testing.T) {
	s := &Session{}
	s.pending, s.call = func(*Submission, error) {}, 2
	if s.take(1) || s.pending == nil {
		t.Fatal("call 1's take cleared call 2")
	}
	if !s.take(2) || s.pending != nil {
		t.Fatal("call 2 not taken")
	}
	if s.take(2) {
		t.Fatal("call 2 taken twice")
	}
}
