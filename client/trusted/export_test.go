package trusted

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
