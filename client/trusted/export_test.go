package trusted

import "unsafe"

// ReasonStaleNonce lets the tests check the copy against
// protocol.ReasonStaleNonce.
const ReasonStaleNonce = reasonStaleNonce

// The copies of protocol.ReasonUnknownChannel and ReasonUndecryptable.
const (
	ReasonUnknownChannel = reasonUnknownChannel
	ReasonUndecryptable  = reasonUndecryptable
	ReasonBadSignature   = reasonBadSignature
	ReasonFutureNonce    = reasonFutureNonce
)

// InReserve reports whether sub's answer is kept in the space s reserved
// (Session.Reserve).
func InReserve(s *Session, sub *Submission) bool {
	s.spaceMu.Lock()
	defer s.spaceMu.Unlock()
	if cap(s.space) == 0 || len(sub.answer) == 0 {
		return false
	}
	start := uintptr(unsafe.Pointer(unsafe.SliceData(s.space[:cap(s.space)])))
	p := uintptr(unsafe.Pointer(unsafe.SliceData(sub.answer)))
	return p >= start && p+uintptr(len(sub.answer)) <= start+uintptr(cap(s.space))
}

// Answer is sub's answer as the worker sent it.
func Answer(sub *Submission) []byte { return sub.answer }
