package enclave

import "github.com/integritee-go/integritee/enclave/protocol"

// Decryptions is the number of direct calls e decrypted.
func Decryptions(e *Enclave) uint64 { return e.decryptions.Load() }

// PrepareCalls is what the enclave a direct batch is sent to does once:
// decrypt and authenticate its calls.
func PrepareCalls(e *Enclave, cts [][]byte) []preparedCall { return e.prepareCalls(cts) }

// ApplyPrepared is what every enclave of the shard does with a logged
// batch: apply its calls as one shard block.
func ApplyPrepared(e *Enclave, calls []preparedCall, hostTime int64) (*protocol.SubmitCallsReply, error) {
	return e.applyDirect(calls, hostTime, e.signerAddress())
}

// Decapsulations is the number of HPKE decapsulations among them.
func Decapsulations(e *Enclave) uint64 { return e.decapsulations.Load() }

// PrepareCallAlone prepares one call on the path that checks its signature
// by itself (prepareCall), which batches must agree with.
func PrepareCallAlone(e *Enclave, ct []byte) preparedCall {
	return e.prepareCall(e.callTargets(), e.callRule(), ct)
}

// DecodedBatches is the number of direct batches e decoded from the
// shard's log rather than took from its own proposal.
func DecodedBatches(e *Enclave) uint64 { return e.repl.decodedBatches.Load() }

// ProposedAndLogged returns the direct command e would propose for cts and
// that command as the shard's log gives it to every other enclave:
// encoded and decoded.
func ProposedAndLogged(e *Enclave, cts [][]byte) (proposed, logged any, err error) {
	cmd := command{Direct: &directCommand{ID: [16]byte{1}, Proposer: e.signerAddress(), Time: 7, Calls: e.prepareCalls(cts)}}
	b, err := protocol.Marshal(&cmd)
	if err != nil {
		return nil, nil, err
	}
	d, err := decodeCommand(b)
	return cmd, d, err
}

// SignerKeys is the number of signers' expanded keys e keeps, each for
// the channel its call came on.
func SignerKeys(e *Enclave) int { return e.signers.Len() }

// SignerExpansions is the number of signers' keys e expanded for its
// cache: each a key the cache did not have.
func SignerExpansions(e *Enclave) uint64 { return e.signers.Expansions() }
