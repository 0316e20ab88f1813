package enclave

import (
	"github.com/integritee-go/integritee/enclave/protocol"
	"github.com/integritee-go/integritee/enclave/stf"
)

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
	r := &callRules{targets: e.callTargets(), rule: e.callRule(), keys: e.keys}
	return e.prepareCall(r, r.rule, ct)
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

// Ahead returns the calls batches took prepared ahead, the calls they
// prepared themselves and the calls of notices dropped (ahead.go).
func Ahead(e *Enclave) (hits, misses, dropped uint64) {
	return e.ahead.hits.Load(), e.ahead.misses.Load(), e.ahead.dropped.Load()
}

// PreparedAhead is the number of calls prepared ahead, valid and not
// taken yet.
func PreparedAhead(e *Enclave) int {
	a := &e.ahead
	a.mu.Lock()
	defer a.mu.Unlock()
	n := 0
	for _, m := range []map[[32]byte]*aheadEntry{a.cur, a.old} {
		for _, en := range m {
			select {
			case <-en.done:
				if en.ok {
					n++
				}
			default:
			}
		}
	}
	return n
}

// PublishTargets has notices prepared as if calls were signed for
// targets, as an enclave past an upgrade's enactment prepares them.
func PublishTargets(e *Enclave, targets []stf.Target) {
	r := *e.ahead.rules.Load()
	r.targets = targets
	e.ahead.rules.Store(&r)
}
