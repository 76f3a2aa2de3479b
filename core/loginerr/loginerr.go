// Package loginerr is the error of a failed or refused login, shared by
// the login methods (core/auth) and the identity step (core/identity), so
// the login page shows either the same way.
package loginerr

import (
	"errors"
	"fmt"
	"time"
)

// Error is a failed login: the kind, the sentence to show on the login
// page, and the cause for the log.
type Error struct {
	// Kind is one of the Err* values of the package that failed the login,
	// so callers can use errors.Is(err, auth.ErrThrottled) and friends.
	Kind error
	// Public is safe to show to the person logging in and says what to do
	// next. It never names the cause for wrong credentials.
	Public string
	// RetryAfter, when set, is when another attempt may work.
	RetryAfter time.Duration
	// Err is the underlying cause (a PAM error, a lookup error); may be nil.
	Err error
}

// New is an Error without RetryAfter.
func New(kind error, public string, cause error) *Error {
	return &Error{Kind: kind, Public: public, Err: cause}
}

func (e *Error) Error() string {
	if e.Err == nil {
		return e.Kind.Error()
	}
	return fmt.Sprintf("%v: %v", e.Kind, e.Err)
}

// Is makes errors.Is(err, kind) work for the Kind.
func (e *Error) Is(target error) bool { return target == e.Kind }

// Unwrap exposes the cause, e.g. context.DeadlineExceeded.
func (e *Error) Unwrap() error { return e.Err }

// As makes any error an *Error; one that is not becomes unavailable, with
// the public sentence given.
func As(err error, unavailable error, public string) *Error {
	if e, ok := errors.AsType[*Error](err); ok {
		return e
	}
	return New(unavailable, public, err)
}
