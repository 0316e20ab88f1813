package trusted

import (
	"encoding/json"

	"github.com/integritee-go/integritee/internal/jsonscan"
)

// decodeAnswer decodes a worker's answer b as json.Unmarshal does. An
// answer of the common shape, {"jsonrpc": …, "id": N, "result": …}, is
// read in one pass without reflection (json.Unmarshal validated the
// whole answer, a block header and a Merkle proof, then decoded it: a
// fifth of the load generator's CPU per call); anything else takes
// json.Unmarshal. The result aliases b, which the caller gives up.
func decodeAnswer(b []byte) (rpcResponse, error) {
	if r, ok := fastAnswer(b); ok {
		return r, nil
	}
	var r rpcResponse
	err := json.Unmarshal(b, &r)
	return r, err
}

// fastAnswer reads b if it is an answer of the common shape; ok is false
// for anything it might read otherwise than json.Unmarshal (an error, a
// notification, a null or fractional id, keys in another case or twice).
func fastAnswer(b []byte) (r rpcResponse, ok bool) {
	s := jsonscan.Scanner{B: b}
	var seen jsonscan.Members
	ok = s.Object(func(key []byte) bool {
		switch string(key) {
		case "jsonrpc": // no field of rpcResponse: json.Unmarshal only validates it
			_, ok := s.Value()
			return ok && seen.First(0)
		case "id":
			v, ok := s.ID()
			r.ID = v
			return ok && seen.First(1)
		case "result":
			v, ok := s.Value()
			r.Result = v
			return ok && seen.First(2)
		}
		return false
	})
	if !ok || !s.End() || !seen.Has(2) {
		return rpcResponse{}, false
	}
	return r, true
}

// envelopeAnswer reads the envelope of an answer in the worker's own
// shape, {"jsonrpc": …, "id": N, "result": …} with the result last: the
// result is the rest of the message up to its closing brace, taken
// without validating it. It is for answers whose result is decoded whole
// before anything is taken from it (a Submission: VerifySubmission
// unmarshals it), where a result that is not one valid JSON value fails;
// where it is one, json.Unmarshal reads the same ID and result from b
// (FuzzEnvelopeAnswer). Validating
// the result, a block header and a proof, was nine tenths of a load
// generator's decoding of an answer. ok is false for any other shape.
func envelopeAnswer(b []byte) (r rpcResponse, ok bool) {
	s := jsonscan.Scanner{B: b}
	key := func(k string) bool {
		got, ok := s.Plain()
		return ok && string(got) == k && s.Next(':')
	}
	if !s.Next('{') || !key("jsonrpc") {
		return r, false
	}
	if _, ok := s.Value(); !ok || !s.Next(',') || !key("id") {
		return r, false
	}
	id, ok := s.ID()
	if !ok || !s.Next(',') || !key("result") {
		return r, false
	}
	s.Space()
	end := trimSpace(b, s.I, len(b))
	if end == s.I || b[end-1] != '}' {
		return r, false
	}
	end = trimSpace(b, s.I, end-1)
	if end == s.I {
		return r, false
	}
	return rpcResponse{ID: id, Result: b[s.I:end]}, true
}

// trimSpace returns end moved back over JSON white space, not below start.
func trimSpace(b []byte, start, end int) int {
	for end > start {
		switch b[end-1] {
		case ' ', '\t', '\n', '\r':
			end--
		default:
			return end
		}
	}
	return end
}
