package rpc

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/integritee-go/integritee/enclave/protocol"
	"github.com/integritee-go/integritee/worker/rpc/api"
)

// slowRequest is parseRequest's encoding/json path.
func slowRequest(raw []byte) (request, error) {
	var r request
	err := json.Unmarshal(raw, &r)
	return r, err
}

// slowParams is params' strict Decoder.
func slowParams(raw []byte, v any) error {
	d := json.NewDecoder(bytes.NewReader(raw))
	d.DisallowUnknownFields()
	return d.Decode(v)
}

// sameAsSlow fails t unless the fast path, where it accepts raw, reads it
// exactly as encoding/json does; it reports whether the fast path took it.
func sameAsSlow(t *testing.T, raw []byte) bool {
	t.Helper()
	fast, ok := fastRequest(raw)
	if !ok {
		if !reflect.DeepEqual(fast, request{}) {
			t.Fatalf("%q: declined with %+v", raw, fast)
		}
		return false
	}
	slow, err := slowRequest(raw)
	if err != nil {
		t.Fatalf("%q: fast path took it, encoding/json: %v", raw, err)
	}
	if !reflect.DeepEqual(fast, slow) {
		t.Fatalf("%q: fast %+v, encoding/json %+v", raw, fast, slow)
	}
	for _, v := range []func() any{func() any { return new(api.CallParams) }, func() any { return new(api.GetterParams) }} {
		f, sl := v(), v()
		if !fastParams(fast.Params, f) {
			if !reflect.ValueOf(f).Elem().IsZero() {
				t.Fatalf("%q: params declined with %+v", fast.Params, f)
			}
			continue
		}
		if err := slowParams(fast.Params, sl); err != nil {
			t.Fatalf("%q: fast params took it, the strict decoder: %v", fast.Params, err)
		}
		if !reflect.DeepEqual(f, sl) {
			t.Fatalf("%q: fast params %+v, the strict decoder %+v", fast.Params, f, sl)
		}
	}
	return true
}

func TestFastRequest(t *testing.T) {
	call := `{"jsonrpc":"2.0","id":7,"method":"author_submitTrustedCall","params":{"shard":"0a0b","call":"c0ffee"}}`
	for _, tt := range []struct {
		raw  string
		fast bool
	}{
		{call, true},
		{" \t\r\n{ \"jsonrpc\" : \"2.0\" ,\n\"method\":\"x\" } \n", true},
		{`{"jsonrpc":"2.0","id":"a b","method":"state_executeGetter","params":{"shard":"00","request":"01"}}`, true},
		{`{"id":-12,"jsonrpc":"2.0","method":"m","params":{}}`, true},
		{`{"id":0,"method":"m"}`, true},
		{`{}`, true},
		{`{"params":{"call":"x"},"method":"m","jsonrpc":"1.0"}`, true},
		{`{"params":{"other":"x"},"method":"m"}`, true}, // the envelope; its params are declined
		{`{"params":{"shard":"x","shard":"y"},"method":"m"}`, true},
		// Declined: encoding/json decides.
		{`{"id":null,"method":"m"}`, false},
		{`{"id":1.5,"method":"m"}`, false},
		{`{"id":1e3,"method":"m"}`, false},
		{`{"id":01,"method":"m"}`, false},
		{`{"id":-,"method":"m"}`, false},
		{`{"id":true,"method":"m"}`, false},
		{`{"id":{},"method":"m"}`, false},
		{`{"method":"m\u0041"}`, false},
		{`{"method":"m\n"}`, false},
		{"{\"method\":\"\xc3\xa9\"}", false},
		{`{"Method":"m"}`, false},
		{`{"method":"m","method":"n"}`, false},
		{`{"method":"m","other":1}`, false},
		{`{"method":"m",}`, false},
		{`{"method":"m"`, false},
		{`{"method":"m"} x`, false},
		{`{"method":"m"}{}`, false},
		{`{"params":[1],"method":"m"}`, false},
		{`{"params":{"a":{"b":"c"}},"method":"m"}`, false},
		{`{"params":{"a":1},"method":"m"}`, false},
		{`["method"]`, false},
		{``, false},
		{`null`, false},
	} {
		if got := sameAsSlow(t, []byte(tt.raw)); got != tt.fast {
			t.Errorf("%q: fast path took it: %v, want %v", tt.raw, got, tt.fast)
		}
	}
	// The message's buffer may be pooled: the fast path copies the ID and
	// the method, which answers use, and leaves the params in the buffer
	// (Server.start clears them once the method started).
	raw := []byte(call)
	r, _ := fastRequest(raw)
	clear(raw)
	if string(r.ID) != "7" || r.Method != api.MethodSubmitTrustedCall {
		t.Fatalf("request changed with its message: %+v", r)
	}
	if len(r.Params) == 0 || strings.Trim(string(r.Params), "\x00") != "" {
		t.Fatalf("params %q, want the message's own (cleared) bytes", r.Params)
	}
}

func TestFastParams(t *testing.T) {
	for _, tt := range []struct {
		raw  string
		fast bool
		want api.CallParams
	}{
		{`{"shard":"aa","call":"bb"}`, true, api.CallParams{Shard: "aa", Call: "bb"}},
		{` { "call" : "bb" } `, true, api.CallParams{Call: "bb"}},
		{`{}`, true, api.CallParams{}},
		{`{"shard":"aa","call":"bb","shard":"cc"}`, false, api.CallParams{}},
		{`{"Shard":"aa"}`, false, api.CallParams{}},
		{`{"call":"bb","request":"cc"}`, false, api.CallParams{}},
		{`{"call":"b\"b"}`, false, api.CallParams{}},
		{`{"call":1}`, false, api.CallParams{}},
		{`{"call":"bb"} {}`, false, api.CallParams{}},
	} {
		var p api.CallParams
		if got := fastParams([]byte(tt.raw), &p); got != tt.fast || p != tt.want {
			t.Errorf("%q: %v %+v, want %v %+v", tt.raw, got, p, tt.fast, tt.want)
		}
		if tt.fast {
			var slow api.CallParams
			if err := slowParams([]byte(tt.raw), &slow); err != nil || slow != p {
				t.Errorf("%q: the strict decoder gives %+v, %v", tt.raw, slow, err)
			}
		}
	}
	var other struct{ A string }
	if fastParams([]byte(`{"A":"x"}`), &other) {
		t.Fatal("fast path for a params type it does not know")
	}
}

// FuzzFastRequest: wherever the fast path takes a request or its params,
// it reads them exactly as encoding/json does.
func FuzzFastRequest(f *testing.F) {
	for _, s := range []string{
		`{"jsonrpc":"2.0","id":7,"method":"author_submitTrustedCall","params":{"shard":"0a0b","call":"c0ffee"}}`,
		`{"jsonrpc":"2.0","id":"x","method":"state_executeGetter","params":{"shard":"00","request":"01"}}`,
		`{"id":-0,"method":"m","params":{"call":"a","shard":"b"}}`,
		`{"id":null,"method":"m\u0041","params":{"Call":"a"}}`,
		`{"jsonrpc":"2.0","id":1,"method":"m","params":{"shard":"x","shard":"y"}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		sameAsSlow(t, raw)
	})
}

// BenchmarkParseCall reads a call request as the load tool sends it (a
// ciphertext of 1,300 bytes, as a shielded call's), on the fast path and
// on encoding/json's.
func BenchmarkParseCall(b *testing.B) {
	raw := fmt.Appendf(nil, `{"jsonrpc":"2.0","id":12345,"method":"author_submitTrustedCall","params":{"shard":"%x","call":"%x"}}`,
		bytes.Repeat([]byte{0xab}, 32), bytes.Repeat([]byte{0xcd}, 1300))
	b.Run("fast", func(b *testing.B) {
		b.SetBytes(int64(len(raw)))
		for b.Loop() {
			r, e := parseRequest(raw)
			var p api.CallParams
			if e != nil || params(r, &p) != nil || len(p.Call) != 2600 {
				b.Fatal("not parsed")
			}
		}
	})
	b.Run("encoding-json", func(b *testing.B) {
		b.SetBytes(int64(len(raw)))
		for b.Loop() {
			r, err := slowRequest(raw)
			var p api.CallParams
			if err != nil || slowParams(r.Params, &p) != nil || len(p.Call) != 2600 {
				b.Fatal("not parsed")
			}
		}
	})
}

// FuzzFastParams: wherever fastParams takes a params object (whatever the
// envelope's path), the strict decoder reads the same, for both types.
func FuzzFastParams(f *testing.F) {
	for _, s := range []string{
		`{"shard":"aa","call":"bb"}`, `{"shard":"aa","request":"bb"}`, `{}`,
		`{"Shard":"aa"}`, `{"call":"b\u0041"}`, `{"call":"x","call":"y"}`, ` {"call" : "x"} `,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		for _, v := range []func() any{func() any { return new(api.CallParams) }, func() any { return new(api.GetterParams) }} {
			fast, slow := v(), v()
			if !fastParams(raw, fast) {
				if !reflect.ValueOf(fast).Elem().IsZero() {
					t.Fatalf("%q: declined with %+v", raw, fast)
				}
				continue
			}
			if err := slowParams(raw, slow); err != nil {
				t.Fatalf("%q: fast params took it, the strict decoder: %v", raw, err)
			}
			if !reflect.DeepEqual(fast, slow) {
				t.Fatalf("%q: fast %+v, the strict decoder %+v", raw, fast, slow)
			}
		}
	})
}

// slowCall is parseCall's path without fastCall: the strict decoder, then
// decodeHex of the shard and of the ciphertext.
func slowCall(raw []byte) (shard, ct []byte, err error) {
	var p api.CallParams
	if err := slowParams(raw, &p); err != nil {
		return nil, nil, err
	}
	shard, e := decodeHex("shard", p.Shard)
	if e != nil {
		return nil, nil, e
	}
	if ct, e = decodeHex("call", p.Call); e != nil {
		return nil, nil, e
	}
	return shard, ct, nil
}

// sameCallAsSlow fails t unless fastCall, where it takes raw, decodes
// exactly what the slow path does, a shard of 32 bytes and a ciphertext
// within the limit; it reports whether fastCall took raw.
func sameCallAsSlow(t *testing.T, raw []byte) bool {
	t.Helper()
	shard, ct, ok := fastCall(raw)
	if !ok {
		if shard != ([32]byte{}) || ct != nil {
			t.Fatalf("%q: declined with %x %x", raw, shard, ct)
		}
		return false
	}
	sh, c, err := slowCall(raw)
	if err != nil {
		t.Fatalf("%q: fastCall took it, the slow path: %v", raw, err)
	}
	if !bytes.Equal(shard[:], sh) || !bytes.Equal(ct, c) || len(ct) == 0 || len(ct) > protocol.MaxCallCiphertext {
		t.Fatalf("%q: fastCall %x %x, the slow path %x %x", raw, shard, ct, sh, c)
	}
	return true
}

func TestFastCall(t *testing.T) {
	shard := strings.Repeat("ab", 32)
	for _, tt := range []struct {
		raw  string
		fast bool
	}{
		{`{"shard":"` + shard + `","call":"c0ffee"}`, true},
		{`{ "call" : "0xC0FFEE" , "shard" : "0x` + shard + `" }`, true},
		{`{"shard":"` + shard + `"}`, false},                                                                     // no call
		{`{"call":"c0ffee"}`, false},                                                                             // no shard
		{`{"shard":"` + shard + `","call":""}`, false},                                                           // empty call
		{`{"shard":"` + shard + `","call":"0x"}`, false},                                                         // empty after the prefix
		{`{"shard":"` + shard + `","call":"c0ffe"}`, false},                                                      // odd length
		{`{"shard":"` + shard + `","call":"c0ffzz"}`, false},                                                     // not hex
		{`{"shard":"abab","call":"c0ffee"}`, false},                                                              // short shard
		{`{"shard":"` + shard + `","call":"c0","call":"ee"}`, false},                                             // a key twice
		{`{"shard":"` + shard + `","call":"c0ffee","x":1}`, false},                                               // another key
		{`{"Shard":"` + shard + `","call":"c0ffee"}`, false},                                                     // another case
		{`{"shard":"` + shard + `","call":"c0\u0066fee"}`, false},                                                // an escape
		{`{"shard":"` + shard + `","call":"c0ffee"} {}`, false},                                                  // trailing
		{`{"shard":"` + shard + `","call":"` + strings.Repeat("00", protocol.MaxCallCiphertext+1) + `"}`, false}, // too large
	} {
		if got := sameCallAsSlow(t, []byte(tt.raw)); got != tt.fast {
			t.Errorf("%.80q: fast path %v, want %v", tt.raw, got, tt.fast)
		}
	}
}

// FuzzFastCall: wherever fastCall takes a call's params, it decodes the
// shard and the ciphertext exactly as the slow path does.
func FuzzFastCall(f *testing.F) {
	shard := strings.Repeat("0a", 32)
	for _, s := range []string{
		`{"shard":"` + shard + `","call":"c0ffee"}`, `{"call":"0xc0","shard":"0x` + shard + `"}`,
		`{"shard":"` + shard + `","call":"c0ff"}`, `{"shard":"` + shard + `","call":"C0"}`, `{}`,
		`{"shard":"` + shard + `","call":"c0","call":"ee"}`, `{"shard":"` + shard + `","call":"c\u0030"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		sameCallAsSlow(t, raw)
	})
}
