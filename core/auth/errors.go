package auth

import (
	"errors"
	"fmt"
	"time"

	"github.com/hubd/hubd/core/loginerr"
)

// Kinds of login failure. Every error Login returns is an *Error whose Kind
// is one of these, so callers can use errors.Is(err, auth.ErrThrottled) and
// friends, and errors.As to reach the user-facing text.
var (
	// ErrBadUsername: the name breaks the username rules (names.Check) and
	// never reached PAM.
	ErrBadUsername = errors.New("invalid user name")
	// ErrInvalidCredentials: wrong password, unknown user or a locked
	// password; deliberately one kind so the caller cannot tell them apart.
	ErrInvalidCredentials = errors.New("wrong user name or password")
	// ErrAccountUnavailable: the password was right (or was never asked
	// for) but the account may not log in: expired, password expired,
	// refused by an account module, or logins disabled by /etc/nologin.
	ErrAccountUnavailable = errors.New("account unavailable")
	// ErrNotAllowed: root, refused before PAM is asked (the hub's other
	// rules are core/identity's).
	ErrNotAllowed = errors.New("user not allowed on this hub")
	// ErrThrottled: too many recent failures from this address, or for
	// this user from this address; see Error.RetryAfter.
	ErrThrottled = errors.New("too many failed logins")
	// ErrBusy: the request gave up (its context ended) before PAM answered.
	ErrBusy = errors.New("login not completed")
	// ErrCannotVerify: the hub's own account may not read /etc/shadow, so
	// PAM cannot check anybody else's password. An operator problem.
	ErrCannotVerify = errors.New("hub cannot verify other users' passwords")
	// ErrUnavailable: PAM failed in some other way.
	ErrUnavailable = errors.New("login service unavailable")
)

// Reason is a short name for the kind of a login failure, for metrics
// labels: "invalid-credentials", "throttled", … ("unavailable" for an
// error that is not a login failure).
func Reason(err error) string {
	for _, k := range []struct {
		kind error
		slug string
	}{
		{ErrBadUsername, "bad-username"}, {ErrInvalidCredentials, "invalid-credentials"},
		{ErrAccountUnavailable, "account-unavailable"}, {ErrNotAllowed, "not-allowed"},
		{ErrThrottled, "throttled"}, {ErrBusy, "busy"}, {ErrCannotVerify, "cannot-verify"},
	} {
		if errors.Is(err, k.kind) {
			return k.slug
		}
	}
	return "unavailable"
}

// Error is a failed login (see loginerr.Error); its Kind is one of the
// Err* values above.
type Error = loginerr.Error

// The user-facing sentences, in one place so the web layer and tests agree.
const (
	msgBadUsername        = "That is not a valid user name. Use your Linux login name: lowercase letters, digits, '.', '_' or '-', starting with a letter."
	msgInvalidCredentials = "Wrong user name or password. Check both and try again."
	msgAccountExpired     = "Your account has expired or is locked. Ask an administrator to re-enable it."
	msgPasswordExpired    = "Your password has expired. Log in with ssh to set a new one, then try again."
	msgAccountRefused     = "Your account may not log in here. Ask an administrator."
	msgLoginsDisabled     = "Logins are disabled on this server right now. Try again later."
	msgRootRefused        = "The root account cannot log in to the hub. Log in as your own user."
	msgThrottled          = "Too many failed logins. Try again in %s."
	msgBusy               = "The hub is busy checking other logins. Try again in a moment."
	msgCannotVerify       = "The hub is misconfigured and cannot check passwords. Please tell the administrator."
	msgUnavailable        = "The login service is not working right now. Try again in a minute, and tell the administrator if it keeps failing."
)

func newError(kind error, public string, cause error) *Error {
	return loginerr.New(kind, public, cause)
}

// throttled builds the ErrThrottled answer; wait is rounded up to whole
// seconds so the page never says "try again in 0s".
func throttled(wait time.Duration) *Error {
	if rest := wait % time.Second; rest != 0 {
		wait += time.Second - rest
	}
	return &Error{Kind: ErrThrottled, Public: fmt.Sprintf(msgThrottled, wait), RetryAfter: wait}
}
