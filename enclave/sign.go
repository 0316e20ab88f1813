package enclave

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"math/bits"

	"github.com/integritee-go/integritee/attestation"
	"github.com/integritee-go/integritee/chain/sidechain"
	"github.com/integritee-go/integritee/chain/teerex"
	"github.com/integritee-go/integritee/chain/tx"
	"github.com/integritee-go/integritee/chain/types"
	"github.com/integritee-go/integritee/enclave/protocol"
)

// tagDomain separates outgoing-call tags from any other use of the key.
const tagDomain = "integritee/enclave/v1/outgoing"

// maxOutgoingPerRequest bounds SignOutgoing.
const maxOutgoingPerRequest = 4096

func (e *Enclave) signerAddress() tx.Address { return tx.AddressOf(e.keys.SignerPublic()) }

func (e *Enclave) tagInput(c tx.Call) ([]byte, error) {
	b, err := protocol.Marshal(c)
	if err != nil {
		return nil, err
	}
	return append([]byte(tagDomain), b...), nil
}

// outgoing tags a call this enclave produced.
func (e *Enclave) outgoing(c tx.Call) (protocol.Outgoing, error) {
	in, err := e.tagInput(c)
	if err != nil {
		return protocol.Outgoing{}, err
	}
	return protocol.Outgoing{Call: c, Tag: e.keys.Tag(in)}, nil
}

// fee returns BaseFee + PerByteFee*size, or an error on overflow.
func fee(p *protocol.TxParams, size int) (uint64, error) {
	hi, lo := bits.Mul64(p.PerByteFee, uint64(size))
	sum, carry := bits.Add64(lo, p.BaseFee, 0)
	if hi != 0 || carry != 0 {
		return 0, errors.New("fee overflows")
	}
	return sum, nil
}

// signCall signs call with nonce, paying the fee its own encoded size
// requires. The size depends on the fee's encoding, so the fee is iterated
// to a fixed point (it grows monotonically and settles within a few
// rounds) on the encoding with a placeholder signature of the same fixed
// size, and the body is signed once, at the end: a signature is most of
// the cost of a vote, and every shard block takes one per enclave.
func (e *Enclave) signCall(p *protocol.TxParams, nonce uint64, call tx.Call) ([]byte, error) {
	body := tx.Body{ChainID: p.ChainID, Sender: e.signerAddress(), Nonce: nonce, Call: call}
	var placeholder [ed25519.SignatureSize]byte
	for range 8 {
		raw, err := (&tx.SignedTx{Body: body, Signature: placeholder[:]}).Encode()
		if err != nil {
			return nil, err
		}
		need, err := fee(p, len(raw))
		if err != nil {
			return nil, err
		}
		if body.Fee < need {
			body.Fee = need
			continue
		}
		if len(raw) > tx.MaxTxBytes {
			return nil, fmt.Errorf("transaction of %d bytes exceeds %d", len(raw), tx.MaxTxBytes)
		}
		digest, err := body.SignBytes()
		if err != nil {
			return nil, err
		}
		signed, err := (&tx.SignedTx{Body: body, Signature: e.keys.Sign(digest)}).Encode()
		if err != nil {
			return nil, err
		}
		if len(signed) != len(raw) {
			return nil, fmt.Errorf("signed transaction of %d bytes, %d expected", len(signed), len(raw))
		}
		return signed, nil
	}
	return nil, errors.New("fee did not converge")
}

func (e *Enclave) signAll(p *protocol.TxParams, calls []tx.Call) (*protocol.SignedTxs, error) {
	if p.ChainID != e.chainID {
		return nil, protocol.Errorf(protocol.CodeInvalidInput, "chain ID %q, enclave follows %q", p.ChainID, e.chainID)
	}
	out := &protocol.SignedTxs{NextNonce: p.Nonce}
	for _, c := range calls {
		raw, err := e.signCall(p, out.NextNonce, c)
		if err != nil {
			return nil, protocol.Errorf(protocol.CodeInvalidInput, "sign %s.%s: %v", c.Module, c.Method, err)
		}
		out.Txs = append(out.Txs, raw)
		out.NextNonce++
	}
	return out, nil
}

func (e *Enclave) signOutgoing(r *protocol.SignOutgoing) (protocol.Reply, error) {
	if len(r.Calls) > maxOutgoingPerRequest {
		return nil, protocol.Errorf(protocol.CodeInvalidInput, "%d calls, at most %d", len(r.Calls), maxOutgoingPerRequest)
	}
	calls := make([]tx.Call, len(r.Calls))
	for i, o := range r.Calls {
		in, err := e.tagInput(o.Call)
		if err != nil {
			return nil, protocol.Errorf(protocol.CodeInvalidInput, "call %d: %v", i, err)
		}
		if !e.keys.CheckTag(in, o.Tag) {
			return nil, protocol.Errorf(protocol.CodeForbidden, "call %d (%s.%s) was not produced by this enclave", i, o.Call.Module, o.Call.Method)
		}
		calls[i] = o.Call
	}
	merged, covers, err := voteRuns(calls)
	if err != nil {
		return nil, protocol.Errorf(protocol.CodeInvalidInput, "%v", err)
	}
	out, err := e.signAll(&r.Params, merged)
	if err != nil {
		return nil, err
	}
	if len(merged) < len(calls) {
		out.Covers = covers
	}
	return out, nil
}

// voteRuns takes each run of consecutive confirm_sidechain_block calls
// whose headers follow one another (one shard, each extending the one
// before) as one confirm_sidechain_blocks of up to
// sidechain.MaxConfirmHeaders headers, so that a shard block costs the
// chain a share of a transaction rather than one. covers says how many of
// calls each returned call carries.
func voteRuns(calls []tx.Call) (out []tx.Call, covers []uint32, err error) {
	var run []sidechain.Header
	var last types.Hash
	flush := func() error {
		switch len(run) {
		case 0:
			return nil
		case 1:
			c, err := sidechain.ConfirmCall(run[0])
			out, covers = append(out, c), append(covers, 1)
			run = run[:0]
			return err
		}
		c, err := sidechain.ConfirmBlocksCall(run)
		out, covers = append(out, c), append(covers, uint32(len(run)))
		run = nil
		return err
	}
	for _, c := range calls {
		var m sidechain.ConfirmSidechainBlock
		if c.Module != sidechain.Name || c.Method != sidechain.MethodConfirmSidechainBlock || c.DecodeArgs(&m) != nil {
			if err := flush(); err != nil {
				return nil, nil, err
			}
			out, covers = append(out, c), append(covers, 1)
			continue
		}
		h := m.Header
		if n := len(run); n > 0 && (n == sidechain.MaxConfirmHeaders || h.Shard != run[n-1].Shard ||
			h.Number == 0 || h.Number != run[n-1].Number+1 || h.ParentHash != last) {
			if err := flush(); err != nil {
				return nil, nil, err
			}
		}
		if last, err = h.Hash(); err != nil {
			return nil, nil, err
		}
		run = append(run, h)
	}
	if err := flush(); err != nil {
		return nil, nil, err
	}
	return out, covers, nil
}

// reportData is what the quote commits to: exactly what teerex checks for
// the registration's sender and shielding key on the chain the enclave
// follows.
func (e *Enclave) reportData() [64]byte {
	return teerex.ReportData(e.signerAddress(), e.keys.ShieldingPublic(), types.Hash(e.genesis))
}

func (e *Enclave) attest() (protocol.Reply, error) {
	rd := e.reportData()
	q, err := e.cfg.Backend.Quote(rd)
	if err != nil {
		return nil, fmt.Errorf("quote: %w", err)
	}
	return &protocol.AttestReply{Quote: q, ReportData: rd}, nil
}

func (e *Enclave) signRegistration(r *protocol.SignRegistration) (protocol.Reply, error) {
	if r.KeepAlive {
		// Only a running enclave signs it (a failed one answers nothing,
		// Handle): an enclave that stopped for good falls silent and leaves
		// its shard's membership after the liveness period.
		call, err := tx.NewCall(teerex.Name, teerex.MethodKeepAlive, teerex.KeepAlive{})
		if err != nil {
			return nil, err
		}
		return e.signAll(&r.Params, []tx.Call{call})
	}
	q, err := e.cfg.Backend.Quote(e.reportData())
	if err != nil {
		return nil, fmt.Errorf("quote: %w", err)
	}
	call, err := teerex.RegisterEnclaveCall(teerex.Evidence{Kind: attestation.KindDCAP, Quote: q}, e.keys.ShieldingPublic(), r.WorkerURL)
	if err != nil {
		return nil, protocol.Errorf(protocol.CodeInvalidInput, "%v", err)
	}
	return e.signAll(&r.Params, []tx.Call{call})
}
