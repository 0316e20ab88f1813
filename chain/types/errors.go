package types

import (
	"errors"
	"fmt"
	"strings"
)

// Error is a rejection with a stable ABCI code. Codespace names who defines
// the code: CodespaceApp for the table below, otherwise the module name.
// Errors are compared by identity, so wrap them (fmt.Errorf("...: %w", Err))
// and test with errors.Is.
type Error struct {
	Codespace string
	Code      uint32
	Msg       string
}

// NewError declares an error; declare each once as a package variable.
func NewError(codespace string, code uint32, msg string) *Error {
	return &Error{Codespace: codespace, Code: code, Msg: msg}
}

func (e *Error) Error() string { return e.Msg }

// Wrap returns err classified as kind: errors.Is matches both, and
// ABCIInfo reports kind's code. The message is err's when err already
// begins with kind's text (a lower layer's error of the same meaning, such
// as tx.ErrMalformed under ErrTxMalformed), so that it is not repeated
// ("malformed transaction: malformed transaction: …"); otherwise it is
// "kind: err".
func Wrap(kind *Error, err error) error {
	return &wrapped{kind: kind, err: err}
}

type wrapped struct {
	kind *Error
	err  error
}

func (w *wrapped) Error() string {
	msg := w.err.Error()
	if msg == w.kind.Msg || strings.HasPrefix(msg, w.kind.Msg+": ") {
		return msg
	}
	return w.kind.Msg + ": " + msg
}

func (w *wrapped) Unwrap() []error { return []error{w.kind, w.err} }

// ABCIInfo returns the codespace, code and log for any error. Errors that are
// no *Error are internal and get ErrInternal's code.
func ABCIInfo(err error) (codespace string, code uint32, log string) {
	var e *Error
	if errors.As(err, &e) {
		return e.Codespace, e.Code, err.Error()
	}
	return ErrInternal.Codespace, ErrInternal.Code, fmt.Sprintf("%s: %v", ErrInternal.Msg, err)
}

// CodespaceApp is the codespace of the transaction validation codes below.
// Modules use their own name as codespace for the errors of their calls.
const CodespaceApp = "integritee"

// Stable ABCI codes of transaction validation. A transaction rejected with one
// of these changes no state and pays no fee. Never renumber: clients match on
// (codespace, code).
//
//	code  error                meaning
//	   1  ErrInternal          the node failed; not the transaction's fault
//	   2  ErrTxTooLarge        encoded transaction exceeds tx.MaxTxBytes
//	   3  ErrTxMalformed       not the canonical CBOR of a SignedTx
//	   4  ErrBadSignature      signature does not verify under the sender key
//	   5  ErrWrongChainID      body.chain_id is not this chain's
//	   6  ErrStaleNonce        body.nonce below the sender's next nonce
//	   7  ErrFutureNonce       body.nonce above the sender's next nonce
//	   8  ErrInsufficientFee   body.fee below base fee + per-byte fee * size
//	   9  ErrUnaffordableFee   sender balance below body.fee
//	  10  ErrUnknownCall       no such module or method
//	  11  ErrMalformedCall     call arguments do not decode
//	  12  ErrBadQuery          abci_query path not understood
//	  13  ErrHeightUnavailable abci_query height never committed
//	  14  ErrPanic             the node's code panicked on the transaction (a
//	                           bug, logged); the transaction is dropped whole
var (
	ErrInternal          = NewError(CodespaceApp, 1, "internal error")
	ErrTxTooLarge        = NewError(CodespaceApp, 2, "transaction too large")
	ErrTxMalformed       = NewError(CodespaceApp, 3, "malformed transaction")
	ErrBadSignature      = NewError(CodespaceApp, 4, "bad signature")
	ErrWrongChainID      = NewError(CodespaceApp, 5, "wrong chain id")
	ErrStaleNonce        = NewError(CodespaceApp, 6, "stale nonce")
	ErrFutureNonce       = NewError(CodespaceApp, 7, "future nonce")
	ErrInsufficientFee   = NewError(CodespaceApp, 8, "fee below minimum")
	ErrUnaffordableFee   = NewError(CodespaceApp, 9, "balance cannot pay fee")
	ErrUnknownCall       = NewError(CodespaceApp, 10, "unknown call")
	ErrMalformedCall     = NewError(CodespaceApp, 11, "malformed call")
	ErrBadQuery          = NewError(CodespaceApp, 12, "bad query")
	ErrHeightUnavailable = NewError(CodespaceApp, 13, "height not available")
	ErrPanic             = NewError(CodespaceApp, 14, "transaction handling panicked")
)
