package runtime

import (
	"errors"
	"fmt"
)

// Error is a rejection with a stable ABCI code. Codespace names who defines
// the code: CodespaceApp for the table in codes.go, otherwise the module name.
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

// ABCIInfo returns the codespace, code and log for any error. Errors that are
// no *Error are internal and get ErrInternal's code.
func ABCIInfo(err error) (codespace string, code uint32, log string) {
	var e *Error
	if errors.As(err, &e) {
		return e.Codespace, e.Code, err.Error()
	}
	return ErrInternal.Codespace, ErrInternal.Code, fmt.Sprintf("%s: %v", ErrInternal.Msg, err)
}
