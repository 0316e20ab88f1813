package trusted

// ReasonStaleNonce lets the tests check the copy against
// protocol.ReasonStaleNonce.
const ReasonStaleNonce = reasonStaleNonce
