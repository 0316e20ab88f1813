package rpc

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"

	"github.com/cometbft/cometbft/crypto/merkle"

	"github.com/integritee-go/integritee/chain/sidechain"
	"github.com/integritee-go/integritee/chain/types"
	"github.com/integritee-go/integritee/enclave/protocol"
	"github.com/integritee-go/integritee/worker/rpc/api"
)

// Outcome is what became of one submitted call.
type Outcome struct {
	Status protocol.CallStatus
	// Reason classifies a failure or invalidity.
	Reason string
	// Block is the shard block holding an executed or failed call, and
	// Proof the Merkle proof of the call's leaf under its CallsRoot. The
	// block is shared by the block's outcomes and its answers' encoding
	// was made from it (blockRef): replace it, never change it in place.
	Block *sidechain.SignedHeader
	Proof *merkle.Proof
	// blockRef is what the call's answer says of its block besides the
	// proof, made once per block (Outcomes): every call of a block shares
	// it.
	blockRef *blockRef
}

// blockRef is the part of api.BlockRef that all calls of a block share.
type blockRef struct {
	hash      types.Hash
	signature string
	// json is the encoding of the header, header_hash and signature
	// members of the block's api.BlockRef, made once for all its calls'
	// answers (executedAnswer) from header of.
	json []byte
	of   *sidechain.SignedHeader
}

func newBlockRef(b *sidechain.SignedHeader) (*blockRef, error) {
	h, err := b.Header.Hash()
	if err != nil {
		return nil, err
	}
	ref := &blockRef{hash: h, signature: hex.EncodeToString(b.Signature), of: b}
	if ref.json, err = blockRefJSON(&b.Header, h, ref.signature); err != nil {
		return nil, err
	}
	return ref, nil
}

// blockRefJSON encodes the header, header_hash and signature members of
// an api.BlockRef.
func blockRefJSON(header *sidechain.Header, hash types.Hash, signature string) ([]byte, error) {
	hj, err := json.Marshal(header)
	if err != nil {
		return nil, err
	}
	hashj, err := json.Marshal(hash)
	if err != nil {
		return nil, err
	}
	b := append(append(append([]byte(`"header":`), hj...), `,"header_hash":`...), hashj...)
	return append(append(append(b, `,"signature":"`...), signature...), '"'), nil
}

// Outcomes turns an enclave reply into one Outcome per submitted call.
func Outcomes(rep *protocol.SubmitCallsReply) ([]Outcome, error) {
	var (
		proofs []*merkle.Proof
		ref    *blockRef
	)
	if rep.Block != nil {
		var root []byte
		root, proofs = blockProofs(rep.Leaves)
		if string(root) != string(rep.Block.Header.CallsRoot[:]) {
			return nil, errors.New("rpc: enclave reply's leaves do not hash to the block's calls root")
		}
		var err error
		if ref, err = newBlockRef(rep.Block); err != nil {
			return nil, err
		}
	}
	out := make([]Outcome, len(rep.Results))
	for i, r := range rep.Results {
		out[i] = Outcome{Status: r.Status, Reason: r.Reason}
		if r.Status == protocol.CallInvalid {
			continue
		}
		if rep.Block == nil || int(r.Index) >= len(proofs) {
			return nil, fmt.Errorf("rpc: call %d executed outside the reply's block", i)
		}
		out[i].Block, out[i].Proof, out[i].blockRef = rep.Block, proofs[r.Index], ref
	}
	return out, nil
}

// callResult builds the client's view of an outcome.
func callResult(hash [32]byte, o *Outcome) (*api.CallResult, error) {
	r := &api.CallResult{Hash: hex.EncodeToString(hash[:])}
	if o.Status == protocol.CallInvalid {
		r.Status, r.Reason = api.StatusInvalid, o.Reason
		return r, nil
	}
	r.Status = api.StatusExecuted
	r.Result = &api.ExecResult{Success: o.Status == protocol.CallExecuted}
	if !r.Result.Success {
		r.Result.Error = o.Reason
	}
	if o.Block == nil || o.Proof == nil || o.blockRef == nil {
		return nil, errors.New("executed call without its block")
	}
	r.Block = &api.BlockRef{Header: o.Block.Header, HeaderHash: o.blockRef.hash, Signature: o.blockRef.signature, Proof: api.NewProofJSON(o.Proof)}
	return r, nil
}

// executedAnswer is the answer to an executed call (success or failure):
// it encodes as the api.CallResult callResult makes, byte for byte, but
// with its block's shared part encoded once per block and the proof's
// aunts hex-encoded in place, where reflection encoded a dozen hashes for
// every call.
type executedAnswer struct {
	hash [32]byte
	o    *Outcome
}

// newExecutedAnswer is the answer to executed (or failed) outcome o of
// the call with ciphertext hash hash.
func newExecutedAnswer(hash [32]byte, o *Outcome) (*executedAnswer, error) {
	if o.Status == protocol.CallInvalid {
		return nil, errors.New("invalid call answered as executed")
	}
	if o.Block == nil || o.Proof == nil || o.blockRef == nil {
		return nil, errors.New("executed call without its block")
	}
	return &executedAnswer{hash: hash, o: o}, nil
}

func (a *executedAnswer) MarshalJSON() ([]byte, error) { return a.appendJSON(nil) }

// appendJSON appends the answer's encoding to dst: compact, and with the
// only string from outside (the failure's reason) encoded by
// json.Marshal, so a response may splice it as it is (collect).
func (a *executedAnswer) appendJSON(dst []byte) ([]byte, error) {
	o, p := a.o, a.o.Proof
	shared := o.blockRef.json
	if o.Block != o.blockRef.of {
		// Not the header the shared part was made from (a test's
		// backend altered it): encoded as callResult would.
		var err error
		if shared, err = blockRefJSON(&o.Block.Header, o.blockRef.hash, o.blockRef.signature); err != nil {
			return nil, err
		}
	}
	b := slices.Grow(dst, 256+len(shared)+70*len(p.Aunts))
	b = append(b, `{"hash":"`...)
	b = hex.AppendEncode(b, a.hash[:])
	b = append(b, `","status":"`+api.StatusExecuted+`","result":{"success":`...)
	if o.Status == protocol.CallExecuted {
		b = append(b, "true"...)
	} else {
		b = append(b, "false"...)
		if o.Reason != "" {
			reason, err := json.Marshal(o.Reason)
			if err != nil {
				return nil, err
			}
			b = append(append(b, `,"error":`...), reason...)
		}
	}
	b = append(append(b, `},"block":{`...), shared...)
	b = append(b, `,"proof":{"index":`...)
	b = strconv.AppendInt(b, p.Index, 10)
	b = append(b, `,"total":`...)
	b = strconv.AppendInt(b, p.Total, 10)
	b = append(b, `,"aunts":`...)
	if len(p.Aunts) == 0 {
		b = append(b, "null"...)
	} else {
		for i, aunt := range p.Aunts {
			if i == 0 {
				b = append(b, `["`...)
			} else {
				b = append(b, `","`...)
			}
			b = hex.AppendEncode(b, aunt)
		}
		b = append(b, `"]`...)
	}
	return append(b, "}}}"...), nil
}
