package enclave

import (
	"crypto/sha256"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/integritee-go/integritee/enclave/protocol"
	"github.com/integritee-go/integritee/internal/ed25519x"
)

// Direct calls prepared ahead. A batch's calls are decrypted and their
// signatures checked before it is applied (prepareCalls), which was two
// thirds of the enclave's time per batch under load, in the batch's own
// round trip. The host tells the enclave of calls as they come
// (protocol.PrepareCalls, a notice), and the enclave prepares them beside
// the batch it applies, keyed by the hash of the ciphertext, for the
// SubmitCalls that brings them.
//
// This is work done early, never a result taken from the host. A call
// prepared ahead is used only for the same ciphertext (its SHA-256) and
// only if it was prepared under the rules its batch is prepared under
// (callRules: targets, signature rule, keys), which the serial handler
// publishes; a call prepared ahead and one prepared with its batch are the
// same call. Only calls that came out valid are kept: anything else is
// prepared again with its batch. A notice that comes late, or never, or
// for calls never submitted costs the enclave work, as a SubmitCalls of
// the same calls would, and changes no outcome.

const (
	// aheadKeep is the most calls kept prepared (and hashes of calls
	// already taken), in two generations: a few seconds of calls at
	// 10,000/s, a few MiB.
	aheadKeep = 1 << 14
	// maxAheadBytes bounds the ciphertexts of one notice the enclave
	// takes: a notice is a few dozen calls of about a kilobyte.
	maxAheadBytes = 4 << 20
)

// ahead is the enclave's calls prepared ahead. The zero value is ready.
type ahead struct {
	// rules are the rules calls are prepared under now, set by the
	// serial handler (prepareCalls); nil until the first batch.
	rules atomic.Pointer[callRules]
	// running counts notices being prepared: at most one per core, the
	// others are dropped.
	running atomic.Int32

	mu       sync.Mutex
	cur, old map[[32]byte]*aheadEntry
	// tomb marks a hash as taken by a batch: a notice that brings the
	// call later does not prepare it again.
	tomb *aheadEntry

	// hits, misses and dropped count calls taken prepared, calls a batch
	// prepared itself, and calls of notices dropped (tests, metrics).
	hits, misses, dropped atomic.Uint64
}

// aheadEntry is a call being prepared, prepared, or taken (done closed,
// ok false).
type aheadEntry struct {
	done  chan struct{}
	rules *callRules
	// call and ok are set before done is closed; ok means call is valid
	// and may be taken.
	call preparedCall
	ok   bool
}

// Notify takes the host's notices (protocol.Notifier). It returns at once:
// the calls are prepared on a goroutine of their own, or dropped if every
// core already prepares a notice.
func (e *Enclave) Notify(n protocol.Notice) {
	p, ok := n.(*protocol.PrepareCalls)
	if !ok {
		return
	}
	a := &e.ahead
	size := 0
	for _, ct := range p.Calls {
		size += len(ct)
	}
	if len(p.Calls) == 0 || len(p.Calls) > protocol.MaxSubmitCalls || size > maxAheadBytes || a.rules.Load() == nil {
		a.dropped.Add(uint64(len(p.Calls)))
		return
	}
	if a.running.Add(1) > int32(runtime.GOMAXPROCS(0)) {
		a.running.Add(-1)
		a.dropped.Add(uint64(len(p.Calls)))
		return
	}
	go func() {
		defer a.running.Add(-1)
		e.prepareAhead(p.Calls)
	}()
}

// prepareAhead prepares the calls no batch has taken or is preparing,
// under the rules published last, and keeps the valid ones.
func (e *Enclave) prepareAhead(calls [][]byte) {
	a := &e.ahead
	r := a.rules.Load()
	var (
		mine    [][]byte
		entries []*aheadEntry
		out     []preparedCall
	)
	a.mu.Lock()
	for _, ct := range calls {
		h := sha256.Sum256(ct)
		if a.lookup(h) != nil {
			continue // taken, or prepared by another notice
		}
		en := &aheadEntry{done: make(chan struct{}), rules: r}
		a.put(h, en)
		mine, entries = append(mine, ct), append(entries, en)
		out = append(out, preparedCall{CiphertextHash: h})
	}
	a.mu.Unlock()
	if len(mine) == 0 {
		return
	}
	defer func() {
		// A panic leaves the entries not ok: their batch prepares them
		// itself (and meets the panic there, where the server handles
		// it). Waiters are never left hanging.
		if p := recover(); p != nil {
			e.log.Error("preparing calls ahead panicked", "panic", fmt.Sprint(p))
			clear(out)
		}
		for i, en := range entries {
			en.call, en.ok = out[i], out[i].Call != nil
			close(en.done)
		}
	}()
	// One batch per chunk of sigBatch on this goroutine: notices are
	// prepared side by side, one per core, and a notice's calls checked
	// as one batch cost less per signature than split across cores.
	for lo := 0; lo < len(mine); lo += sigBatch {
		hi := min(lo+sigBatch, len(mine))
		if r.rule != ed25519x.Cofactored {
			for i := lo; i < hi; i++ {
				out[i] = e.prepareCall(r, r.rule, mine[i])
			}
			continue
		}
		e.prepareChunk(r, mine[lo:hi], out[lo:hi])
	}
}

// take fills out[i] for each call of calls prepared ahead under r, marks
// every call's hash as taken, and returns the indexes of the calls the
// batch must prepare itself, whose hash it leaves in out. It waits for
// calls being prepared.
func (a *ahead) take(r *callRules, calls [][]byte, out []preparedCall) []int {
	var todo []int
	for i, ct := range calls {
		h := sha256.Sum256(ct)
		out[i].CiphertextHash = h
		a.mu.Lock()
		en := a.lookup(h)
		if a.tomb == nil {
			a.tomb = &aheadEntry{done: make(chan struct{})}
			close(a.tomb.done)
		}
		a.put(h, a.tomb)
		a.mu.Unlock()
		if en != nil {
			<-en.done
			if en.ok && en.rules.equal(r) {
				out[i] = en.call
				a.hits.Add(1)
				continue
			}
		}
		a.misses.Add(1)
		todo = append(todo, i)
	}
	return todo
}

// lookup returns h's entry, if any. a.mu is held.
func (a *ahead) lookup(h [32]byte) *aheadEntry {
	if en, ok := a.cur[h]; ok {
		return en
	}
	return a.old[h]
}

// put sets h's entry in the newer generation, which first becomes the
// older if it is full. a.mu is held.
func (a *ahead) put(h [32]byte, en *aheadEntry) {
	if a.cur == nil || len(a.cur) >= aheadKeep/2 {
		a.old, a.cur = a.cur, make(map[[32]byte]*aheadEntry)
	}
	delete(a.old, h)
	a.cur[h] = en
}
