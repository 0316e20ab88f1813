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
