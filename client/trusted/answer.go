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
