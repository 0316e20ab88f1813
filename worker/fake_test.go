package worker_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"errors"
	"slices"
	"sync"

	"github.com/integritee-go/integritee/attestation"
	"github.com/integritee-go/integritee/chain/bridge"
	"github.com/integritee-go/integritee/chain/codec"
	"github.com/integritee-go/integritee/chain/teerex"
	"github.com/integritee-go/integritee/chain/tx"
	"github.com/integritee-go/integritee/chain/types"
	"github.com/integritee-go/integritee/enclave/protocol"
	"github.com/integritee-go/integritee/tee/sim"
)

// fakeEnclave is a protocol handler standing in for the real enclave in the
// host's unit tests: real quotes (sim backend) and real signatures, but no
// light client and a toy state: every successful bridge invoke of the shard
// stores its ciphertext under sha256(ciphertext). It lets the tests check
// the host's side (persistence, restart, registration, submission) alone.
type fakeEnclave struct {
	backend *sim.Backend
	shard   [32]byte

	mu       sync.Mutex
	key      ed25519.PrivateKey
	shPub    []byte
	chainID  string
	genesis  types.Hash // of the chain it was initialized for
	height   int64
	entries  map[[32]byte][]byte
	awaiting *fakeCheckpoint
	inited   bool
	invokes  int
}

type fakeCheckpoint struct {
	Height int64    `cbor:"height"`
	Root   [32]byte `cbor:"root"`
}

func newFakeEnclave(shard [32]byte) (*fakeEnclave, error) {
	b, err := sim.New(sim.Config{Measurement: &shard})
	if err != nil {
		return nil, err
	}
	return &fakeEnclave{backend: b, shard: shard, entries: map[[32]byte][]byte{}}, nil
}

func (f *fakeEnclave) root() [32]byte {
	keys := make([][32]byte, 0, len(f.entries))
	for k := range f.entries {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b [32]byte) int { return bytes.Compare(a[:], b[:]) })
	h := sha256.New()
	for _, k := range keys {
		h.Write(k[:])
		h.Write(f.entries[k])
	}
	return [32]byte(h.Sum(nil))
}

func (f *fakeEnclave) Handle(_ context.Context, req protocol.Request) (protocol.Reply, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := req.(*protocol.Init); !ok && !f.inited {
		return nil, protocol.ErrNotInitialized
	}
	switch r := req.(type) {
	case *protocol.Init:
		return f.init(r)
	case *protocol.LoadEntries:
		es, err := r.Unpack()
		if err != nil {
			return nil, protocol.Errorf(protocol.CodeInvalidInput, "%v", err)
		}
		for _, e := range es {
			f.entries[e.Key] = bytes.Clone(e.Value)
		}
		return &protocol.LoadEntriesReply{Loaded: uint64(len(f.entries))}, nil
	case *protocol.Resume:
		if f.awaiting == nil || f.root() != f.awaiting.Root {
			return nil, protocol.Errorf(protocol.CodeState, "entries do not match the checkpoint")
		}
		f.height, f.awaiting = f.awaiting.Height, nil
		return &protocol.ResumeReply{Height: f.height, StateRoot: f.root(), Entries: uint64(len(f.entries))}, nil
	case *protocol.SignRegistration:
		pub := f.key.Public().(ed25519.PublicKey)
		q, err := f.backend.Quote(teerex.ReportData(tx.AddressOf(pub), f.shPub, f.genesis))
		if err != nil {
			return nil, err
		}
		call, err := teerex.RegisterEnclaveCall(teerex.Evidence{Kind: attestation.KindDCAP, Quote: q}, f.shPub, r.WorkerURL)
		if err != nil {
			return nil, err
		}
		return f.sign([]tx.Call{call}, r.Params)
	case *protocol.ProcessBlock:
		return f.process(r)
	case *protocol.SignOutgoing:
		calls := make([]tx.Call, len(r.Calls))
		for i, c := range r.Calls {
			if string(c.Tag) != "fake" {
				return nil, protocol.Errorf(protocol.CodeInvalidInput, "bad tag")
			}
			calls[i] = c.Call
		}
		return f.sign(calls, r.Params)
	case *protocol.StateInfo:
		return &protocol.StateInfoReply{Height: f.height, StateRoot: f.root(), Entries: uint64(len(f.entries)), MRENCLAVE: f.shard}, nil
	case *protocol.ReplicaStart:
		// The fake applies blocks as it gets them: a replica of one that
		// orders nothing.
		return &protocol.ReplicaStartReply{Replica: &protocol.ReplicaOutput{Height: f.height, IsLeader: true}}, nil
	case *protocol.ReplicaStep:
		return &protocol.ReplicaStepReply{Replica: &protocol.ReplicaOutput{Height: f.height, IsLeader: true}}, nil
	}
	return nil, protocol.Errorf(protocol.CodeForbidden, "%s not supported by the fake", req.Type())
}

func (f *fakeEnclave) init(r *protocol.Init) (protocol.Reply, error) {
	if f.inited {
		return nil, protocol.ErrAlreadyInitialized
	}
	rep := &protocol.InitReply{MRENCLAVE: f.shard, Height: r.InitialHeight - 1}
	vals, err := protocol.DecodeValidatorSet(r.GenesisValidators)
	if err != nil {
		return nil, protocol.Errorf(protocol.CodeInvalidInput, "genesis validators: %v", err)
	}
	if r.SealedKeys == nil {
		seed := sha256.Sum256(append([]byte("fake enclave "), f.shard[:]...))
		sp := sha256.Sum256(seed[:])
		rep.SealedKeys = protocol.SealedKeys{Signer: append([]byte("sealed:"), seed[:]...), Shielding: sp[:], State: []byte("x")}
		rep.Created = true
	} else {
		if !bytes.HasPrefix(r.SealedKeys.Signer, []byte("sealed:")) || len(r.SealedKeys.Signer) != 39 {
			return nil, protocol.Errorf(protocol.CodeSealing, "tampered")
		}
		rep.SealedKeys = *r.SealedKeys
	}
	f.key = ed25519.NewKeyFromSeed(rep.SealedKeys.Signer[7:])
	f.shPub = rep.SealedKeys.Shielding
	f.chainID = r.ChainID
	f.genesis = teerex.GenesisID(r.ChainID, r.InitialHeight, vals.Hash())
	f.height = rep.Height
	if r.Checkpoint != nil {
		var cp fakeCheckpoint
		if err := codec.Unmarshal(r.Checkpoint, &cp); err != nil {
			return nil, protocol.Errorf(protocol.CodeSealing, "checkpoint: %v", err)
		}
		f.awaiting = &cp
		rep.AwaitingEntries = true
		rep.Height, rep.StateRoot = cp.Height, cp.Root
	}
	rep.SignerPublic = f.key.Public().(ed25519.PublicKey)
	rep.ShieldingPublic = f.shPub
	f.inited = true
	return rep, nil
}

func (f *fakeEnclave) process(r *protocol.ProcessBlock) (protocol.Reply, error) {
	if f.awaiting != nil {
		return nil, protocol.ErrNotInitialized
	}
	sh, err := protocol.DecodeSignedHeader(r.Block.SignedHeader, f.chainID)
	if err != nil {
		return nil, protocol.Errorf(protocol.CodeVerification, "%v", err)
	}
	if sh.Height != f.height+1 {
		return nil, protocol.Errorf(protocol.CodeInvalidInput, "block %d, want %d", sh.Height, f.height+1)
	}
	if len(r.Txs) != len(r.Results) {
		return nil, protocol.Errorf(protocol.CodeInvalidInput, "txs and results differ")
	}
	rep := &protocol.ProcessBlockReply{Height: sh.Height, BlockHash: sh.Hash()}
	for i, raw := range r.Txs {
		if r.Results[i].Code != 0 {
			continue
		}
		stx, err := tx.Decode(raw)
		if err != nil || stx.Body.Call.Module != bridge.Name || stx.Body.Call.Method != bridge.MethodInvoke {
			continue
		}
		var inv bridge.Invoke
		if stx.Body.Call.DecodeArgs(&inv) != nil || inv.Shard != f.shard {
			continue
		}
		rep.Stats.Invokes++
		k := sha256.Sum256(inv.Ciphertext)
		f.entries[k] = inv.Ciphertext
		rep.Changes = append(rep.Changes, protocol.Entry{Key: k, Value: inv.Ciphertext})
		f.invokes++
	}
	f.height = sh.Height
	rep.StateRoot = f.root()
	cp, err := codec.Marshal(fakeCheckpoint{Height: f.height, Root: rep.StateRoot})
	if err != nil {
		return nil, err
	}
	rep.Checkpoint = cp
	var bh types.Hash
	copy(bh[:], rep.BlockHash)
	call, err := tx.NewCall(bridge.Name, bridge.MethodConfirmProcessedBlock, bridge.ConfirmProcessedBlock{
		Shard: f.shard, Height: uint64(sh.Height), BlockHash: bh, StateHash: rep.StateRoot,
	})
	if err != nil {
		return nil, err
	}
	rep.Outgoing = []protocol.Outgoing{{Call: call, Tag: []byte("fake")}}
	return rep, nil
}

func (f *fakeEnclave) sign(calls []tx.Call, p protocol.TxParams) (*protocol.SignedTxs, error) {
	out := &protocol.SignedTxs{NextNonce: p.Nonce}
	for _, c := range calls {
		var wire []byte
		fee := uint64(0)
		for range 8 {
			body := tx.Body{ChainID: p.ChainID, Sender: tx.AddressOf(f.key.Public().(ed25519.PublicKey)), Nonce: out.NextNonce, Fee: fee, Call: c}
			s, err := tx.Sign(body, f.key)
			if err != nil {
				return nil, err
			}
			if wire, err = s.Encode(); err != nil {
				return nil, err
			}
			want := p.BaseFee + p.PerByteFee*uint64(len(wire))
			if want == fee {
				break
			}
			fee = want
		}
		if wire == nil {
			return nil, errors.New("fee did not converge")
		}
		out.Txs = append(out.Txs, wire)
		out.NextNonce++
	}
	return out, nil
}
