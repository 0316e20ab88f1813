package protocol

import (
	"errors"
	"fmt"
)

// Code classifies an error reply. Codes are stable: the host matches on them.
type Code string

// Error codes.
const (
	// Frame and envelope errors, answered by the server itself.
	CodeBadFrame           Code = "bad_frame"           // the frame is not a decodable envelope
	CodeFrameTooLarge      Code = "frame_too_large"     // length prefix above the limit
	CodeUnsupportedVersion Code = "unsupported_version" // envelope version is not Version
	CodeUnknownType        Code = "unknown_type"        // no such request type
	CodeBadRequest         Code = "bad_request"         // body does not decode into the request type

	// Handler errors.
	CodeNotInitialized     Code = "not_initialized"     // Init (and Resume after a checkpoint) first
	CodeAlreadyInitialized Code = "already_initialized" // Init twice
	CodeSealing            Code = "sealing"             // a sealed blob is tampered, truncated or for another enclave or shard
	CodeVerification       Code = "verification"        // a block, header or commit failed verification
	CodeState              Code = "state"               // entries or checkpoint inconsistent
	CodeInvalidInput       Code = "invalid_input"       // a well-formed request with unusable arguments
	CodeForbidden          Code = "forbidden"           // not allowed in this mode (e.g. debug outside dev)
	CodeInternal           Code = "internal"            // the enclave failed; not the request's fault
	CodeNoQuorum           Code = "no_quorum"           // replicated: no leader reachable, the call was not ordered
	CodeRetired            Code = "retired"             // the shard moved to another release: the message names its measurement and height
)

// Error is the error variant of every reply.
type Error struct {
	Code    Code   `cbor:"code"`
	Message string `cbor:"message"`
}

func (e *Error) Error() string {
	if e.Message == "" {
		return "enclave: " + string(e.Code)
	}
	return fmt.Sprintf("enclave: %s: %s", e.Code, e.Message)
}

// Is reports whether target is an *Error with the same code, so that
// errors.Is(err, protocol.ErrVerification) matches any verification error.
func (e *Error) Is(target error) bool {
	var t *Error
	return errors.As(target, &t) && t.Code == e.Code && t.Message == ""
}

// Sentinels for errors.Is, one per code.
var (
	ErrBadFrame           = &Error{Code: CodeBadFrame}
	ErrFrameTooLarge      = &Error{Code: CodeFrameTooLarge}
	ErrUnsupportedVersion = &Error{Code: CodeUnsupportedVersion}
	ErrUnknownType        = &Error{Code: CodeUnknownType}
	ErrBadRequest         = &Error{Code: CodeBadRequest}
	ErrNotInitialized     = &Error{Code: CodeNotInitialized}
	ErrAlreadyInitialized = &Error{Code: CodeAlreadyInitialized}
	ErrRetired            = &Error{Code: CodeRetired}
	ErrSealing            = &Error{Code: CodeSealing}
	ErrVerification       = &Error{Code: CodeVerification}
	ErrState              = &Error{Code: CodeState}
	ErrInvalidInput       = &Error{Code: CodeInvalidInput}
	ErrForbidden          = &Error{Code: CodeForbidden}
	ErrInternal           = &Error{Code: CodeInternal}
	ErrNoQuorum           = &Error{Code: CodeNoQuorum}
)

// Errorf returns an *Error with the code and a formatted message.
func Errorf(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// AsError converts a handler error into the error reply: an *Error in the
// chain is kept, anything else becomes CodeInternal with the error's text.
func AsError(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		if e.Message == "" && err.Error() != e.Error() {
			return &Error{Code: e.Code, Message: err.Error()}
		}
		return e
	}
	return &Error{Code: CodeInternal, Message: err.Error()}
}
