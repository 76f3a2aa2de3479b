package auth

import (
	"errors"
	"strings"

	"github.com/hubd/hubd/core/names"
)

// maxPasswordLen is PAM_MAX_RESP_SIZE: PAM would not take more anyway.
const maxPasswordLen = 512

// precheck refuses, before PAM and before any account lookup, what can be
// refused without learning anything about the account: unsafe names, root
// (everyone knows it exists, and its password must not be guessable
// through the hub), and passwords PAM could not get right. name is already
// normalised.
func precheck(name, password string) *Error {
	if err := names.Check(name); err != nil {
		return newError(ErrBadUsername, msgBadUsername, err)
	}
	if name == "root" {
		return newError(ErrNotAllowed, msgRootRefused, errors.New("root is never allowed; PAM not asked"))
	}
	// A NUL would cut the password short on its way into C, so a password
	// with one is not what the person typed; an empty one is never right.
	if password == "" || len(password) > maxPasswordLen || strings.IndexByte(password, 0) >= 0 {
		return newError(ErrInvalidCredentials, msgInvalidCredentials, errors.New("empty, over-long or NUL-containing password; PAM not asked"))
	}
	return nil
}
