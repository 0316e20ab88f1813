package sidechain

import (
	"crypto/sha256"
	"errors"
	"fmt"

	"github.com/cometbft/cometbft/crypto/merkle"

	"github.com/integritee-go/integritee/chain/bridge"
	"github.com/integritee-go/integritee/chain/codec"
	"github.com/integritee-go/integritee/chain/tx"
	"github.com/integritee-go/integritee/chain/types"
	"github.com/integritee-go/integritee/internal/ed25519x"
)

// HeaderDomain separates header hashes from every other hash an enclave
// signs.
const HeaderDomain = "integritee-sidechain-header-v1"

// Header is the header of a shard block: one step of the shard's single
// sequence of state transitions. A direct block holds the direct calls an
// enclave executed in one batch (Author is that enclave); a chain block
// holds the shard's calls of chain block ChainHeight (Author is zero, so
// every enclave of the shard derives the same header). Blocks are
// numbered from 1 and hash-chained by ParentHash (zero for block 1); the
// chain confirms them in order with confirm_sidechain_block, and pays an
// unshield only with a Merkle proof into the UnshieldsRoot of a confirmed
// block, so a state the chain has not confirmed (a rolled-back enclave's
// fork) can never pay.
type Header struct {
	Shard  types.Hash `cbor:"shard" json:"shard"`
	Number uint64     `cbor:"number" json:"number"`
	// ParentHash is the hash of block Number-1's header.
	ParentHash types.Hash `cbor:"parent_hash" json:"parent_hash"`
	// ChainHeight is the last chain block whose indirect calls were applied
	// before this block: the block sits between ChainHeight and
	// ChainHeight+1 in the shard's one order of state transitions.
	ChainHeight int64 `cbor:"chain_height" json:"chain_height"`
	// CallsRoot is the Merkle root (RFC 6962, as CometBFT's data hash) of
	// CallLeaf of each call of the block, in execution order.
	CallsRoot types.Hash `cbor:"calls_root" json:"calls_root"`
	// StateHash is the shard's state hash after the block.
	StateHash types.Hash `cbor:"state_hash" json:"state_hash"`
	// UnshieldsRoot is the Merkle root (RFC 6962) of UnshieldLeaf of each
	// unshield the block's calls made, in order.
	UnshieldsRoot types.Hash `cbor:"unshields_root" json:"unshields_root"`
	// Timestamp is Unix milliseconds: for a direct block the host's clock,
	// made monotonic by the enclave and never before the last verified
	// chain header; for a chain block the chain header's time (never
	// before the parent's).
	Timestamp int64 `cbor:"timestamp" json:"timestamp"`
	// Author is the enclave signer that produced and signed a direct
	// block; zero for a chain block.
	Author tx.Address `cbor:"author" json:"author"`
}

// Direct reports whether the block holds direct calls (it has an author).
func (h *Header) Direct() bool { return h.Author != tx.Address{} }

// Hash returns the header hash: sha256(HeaderDomain || CBOR(header)).
func (h *Header) Hash() (types.Hash, error) {
	b, err := codec.Marshal(h)
	if err != nil {
		return types.Hash{}, fmt.Errorf("sidechain: encode header: %w", err)
	}
	s := sha256.New()
	s.Write([]byte(HeaderDomain))
	s.Write(b)
	return types.Hash(s.Sum(nil)), nil
}

// SignedHeader is a header with its author's ed25519 signature over the
// header hash.
type SignedHeader struct {
	Header    Header `cbor:"header" json:"header"`
	Signature []byte `cbor:"signature" json:"signature"`
}

// ErrBadHeaderSignature means a header is not signed by its author.
var ErrBadHeaderSignature = errors.New("sidechain: header signature does not verify under its author")

// Verify checks the signature under Header.Author and returns the hash.
func (s *SignedHeader) Verify() (types.Hash, error) {
	h, err := s.Header.Hash()
	if err != nil {
		return h, err
	}
	if !ed25519x.Verify(s.Header.Author[:], h[:], s.Signature) {
		return h, ErrBadHeaderSignature
	}
	return h, nil
}

// Call status bytes committed to by CallLeaf.
const (
	// LeafExecuted: the call ran and its effects are in the block.
	LeafExecuted byte = 1
	// LeafFailed: the call was authentic and fresh but the STF refused it;
	// only its nonce was consumed.
	LeafFailed byte = 2
)

// Unshield is an unshield a shard block's calls made: pay Amount from the
// shard's vault to Beneficiary, once per CallHash.
type Unshield struct {
	Beneficiary tx.Address `cbor:"beneficiary" json:"beneficiary"`
	Amount      uint64     `cbor:"amount" json:"amount"`
	CallHash    types.Hash `cbor:"call_hash" json:"call_hash"`
}

// UnshieldLeaf is an unshield's leaf of Header.UnshieldsRoot
// (bridge.UnshieldLeaf, which the bridge checks proofs against).
func UnshieldLeaf(u Unshield) []byte { return bridge.UnshieldLeaf(u.Beneficiary, u.Amount, u.CallHash) }

// UnshieldCall returns the unshield_funds call of the unshield at index i
// of block number (whose unshields have the given proofs).
func UnshieldCall(shard types.Hash, number uint64, u Unshield, p *merkle.Proof) (tx.Call, error) {
	return tx.NewCall(bridge.Name, bridge.MethodUnshieldFunds, bridge.UnshieldFunds{
		Shard: shard, Beneficiary: u.Beneficiary, Amount: u.Amount, CallHash: u.CallHash, Block: number,
		Proof: bridge.UnshieldProof{Index: uint64(p.Index), Total: uint64(p.Total), Aunts: p.Aunts},
	})
}

// UnshieldsRoot returns the Merkle root of the unshields' leaves and each
// one's proof (CometBFT's RFC 6962 tree, as for the data hash).
func UnshieldsRoot(us []Unshield) (types.Hash, []*merkle.Proof) {
	leaves := make([][]byte, len(us))
	for i, u := range us {
		leaves[i] = UnshieldLeaf(u)
	}
	root, proofs := merkle.ProofsFromByteSlices(leaves)
	return types.Hash(root), proofs
}

// CallLeaf is a call's leaf of the calls root: the SHA-256 of its
// ciphertext (as the client sent it) and its status, so that a client
// holding the signed header and a Merkle proof knows what became of its
// call on the enclave's word, not the host's.
func CallLeaf(ciphertextHash [32]byte, status byte) []byte {
	return append(ciphertextHash[:], status)
}
