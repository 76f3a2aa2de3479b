package identity

import (
	"errors"

	"github.com/hubd/hubd/core/loginerr"
)

// Kinds of refusal. Every error Admit returns is an *Error whose Kind is
// one of these (errors.Is works on the *Error).
var (
	// ErrBadName: the method's user name cannot become a Linux user name.
	ErrBadName = errors.New("user name not usable")
	// ErrNotAllowed: no allow rule covers the person, or the name is
	// root, a system account or (for dynamic users) a Linux account.
	ErrNotAllowed = errors.New("user not allowed on this hub")
	// ErrNameTaken: the name belongs to another identity, or the identity
	// to another name.
	ErrNameTaken = errors.New("user name belongs to someone else")
	// ErrNoLinuxAccount: account mode existing, and there is no Linux
	// account of that name.
	ErrNoLinuxAccount = errors.New("no Linux account")
	// ErrNotMember: the Linux account is not in the members group.
	ErrNotMember = errors.New("account not in the members group")
	// ErrUnavailable: the user database, the state database or account
	// creation failed.
	ErrUnavailable = errors.New("login service unavailable")
)

// Error is a refused login (see loginerr.Error); its Kind is one of the
// Err* values above.
type Error = loginerr.Error

func refuse(kind error, public string, cause error) *Error {
	return loginerr.New(kind, public, cause)
}

func asError(err error) *Error {
	return loginerr.As(err, ErrUnavailable, msgUnavailable)
}

// The sentences shown to the person, in one place so the web layer and
// tests agree. Names in them passed the name rules (or are quoted).
const (
	msgEmptyName      = "Your login did not say who you are (no user name). Ask an administrator to check the hub's username_claim."
	msgBadName        = "Your user name %s cannot be used on this server: %v. Ask an administrator to map it to a valid name (username_map)."
	msgRootRefused    = "The root account cannot log in to the hub. Log in as your own user."
	msgSystemAccount  = "System accounts cannot log in to the hub. Log in as your own user."
	msgNotInGroup     = "You are not a member of group %q. Ask an administrator to add you."
	msgNotInGroups    = "%s is not in any of the groups allowed on this hub. Ask an administrator to add you to one."
	msgNotListed      = "You are not on this hub's list of allowed users. Ask an administrator to add you."
	msgNameTaken      = "The user name %s already belongs to another login on this hub, so this login cannot use it. Ask an administrator."
	msgIdentityMoved  = "Your login is linked to another user name on this hub than the one it now maps to. Ask an administrator."
	msgNoLinuxAccount = "There is no Linux account named %s on this server. Ask an administrator to create it."
	msgNotMember      = "The Linux account %s is not in the group %q of this hub's members. Ask an administrator to add it."
	msgNameIsLinux    = "The user name %s belongs to a Linux account on this server, so it cannot be used for a login without one. Ask an administrator."
	msgCreateFailed   = "The hub could not create the Linux account %s. Try again in a minute, and tell the administrator if it keeps failing."
	msgUnavailable    = "The login service is not working right now. Try again in a minute, and tell the administrator if it keeps failing."
)
