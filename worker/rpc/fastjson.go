package rpc

import (
	"bytes"
	"encoding/hex"
	"encoding/json"

	"github.com/integritee-go/integritee/enclave/protocol"
	"github.com/integritee-go/integritee/internal/jsonscan"
	"github.com/integritee-go/integritee/worker/rpc/api"
)

// The fast path reads the requests that clients send under load (a
// request object of the four JSON-RPC members, params of plain strings)
// without reflection, in one pass: encoding/json scanned such a message
// four times (validation and decoding of the envelope, then of the params
// through a strict Decoder), a ninth of the worker's CPU per call. It
// accepts only what it reads exactly as encoding/json does and declines
// everything else (escapes, other keys, keys in another case, a key twice,
// ids other than plain strings and integers), which then takes the
// encoding/json path as before. FuzzFastRequest holds it to that.

// fastRequest reads raw as parseRequest's json.Unmarshal would, if raw is
// a request of the common shape; ok is false otherwise. raw may be a
// pooled buffer: the request's ID and method are copies, but its Params
// are raw's own bytes, read only while the method starts (Server.start
// clears them then): a copy of every call's params was a tenth of the
// worker's allocated bytes under load.
func fastRequest(raw []byte) (r request, ok bool) {
	s := jsonscan.Scanner{B: raw}
	var seen jsonscan.Members
	ok = s.Object(func(key []byte) bool {
		switch string(key) {
		case "jsonrpc":
			v, ok := s.Plain()
			r.JSONRPC = string(v)
			return ok && seen.First(0)
		case "id":
			v, ok := s.ID()
			r.ID = append(json.RawMessage(nil), v...)
			return ok && seen.First(1)
		case "method":
			v, ok := s.Plain()
			r.Method = string(v)
			return ok && seen.First(2)
		case "params":
			s.Space()
			start := s.I
			ok := s.Object(func([]byte) bool { _, ok := s.Plain(); return ok })
			r.Params = s.B[start:s.I:s.I]
			return ok && seen.First(3)
		}
		return false
	})
	if !ok || !s.End() {
		return request{}, false
	}
	return r, true
}

// fastParams decodes raw, a params object, into v as params' strict
// Decoder would, for the params of the calls and getters; ok is false if
// it cannot.
func fastParams(raw []byte, v any) (ok bool) {
	var names [2]string
	var dst [2]*string
	switch p := v.(type) {
	case *api.CallParams:
		names, dst = [2]string{"shard", "call"}, [2]*string{&p.Shard, &p.Call}
	case *api.GetterParams:
		names, dst = [2]string{"shard", "request"}, [2]*string{&p.Shard, &p.Request}
	default:
		return false
	}
	s := jsonscan.Scanner{B: raw}
	var seen jsonscan.Members
	ok = s.Object(func(key []byte) bool {
		for i, name := range names {
			if string(key) == name && seen.First(i) {
				v, ok := s.Plain()
				*dst[i] = string(v)
				return ok
			}
		}
		return false
	})
	if !ok || !s.End() {
		*dst[0], *dst[1] = "", ""
		return false
	}
	return true
}

// fastCall reads the params of a submitted call, its shard and ciphertext
// in hex, and decodes both straight from raw: params and decodeHex made
// two string copies of the ciphertext's hex and a slice of the shard's,
// about a kilobyte per call, an eighth of what the worker allocated for
// it. It takes only what fastParams takes into an api.CallParams and
// decodeHex decodes into a shard of 32 bytes and a ciphertext of 1 to
// protocol.MaxCallCiphertext bytes, to the same bytes (FuzzFastCall); ok
// is false otherwise, and the slow path gives the error.
func fastCall(raw []byte) (shard [32]byte, ct []byte, ok bool) {
	var sh, call []byte
	s := jsonscan.Scanner{B: raw}
	var seen jsonscan.Members
	ok = s.Object(func(key []byte) bool {
		var ok bool
		switch string(key) {
		case "shard":
			if seen.First(0) {
				sh, ok = s.Plain()
			}
		case "call":
			if seen.First(1) {
				call, ok = s.Plain()
			}
		}
		return ok
	})
	if !ok || !s.End() || !seen.Has(0) || !seen.Has(1) {
		return [32]byte{}, nil, false
	}
	sh, call = bytes.TrimPrefix(sh, []byte("0x")), bytes.TrimPrefix(call, []byte("0x"))
	if len(sh) != 2*len(shard) || len(call) == 0 || len(call)%2 != 0 || len(call) > 2*protocol.MaxCallCiphertext {
		return [32]byte{}, nil, false
	}
	if _, err := hex.Decode(shard[:], sh); err != nil {
		return [32]byte{}, nil, false
	}
	ct = make([]byte, len(call)/2)
	if _, err := hex.Decode(ct, call); err != nil {
		return [32]byte{}, nil, false
	}
	return shard, ct, true
}
