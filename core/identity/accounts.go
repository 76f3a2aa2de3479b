package identity

import (
	"context"
	"errors"
	"fmt"
	"os/user"
	"strconv"
)

// ErrNoAccount is Accounts.Lookup's answer for a name the user database
// does not know.
var ErrNoAccount = errors.New("no such Linux account")

// LinuxAccount is an account of the system's user database.
type LinuxAccount struct {
	Name     string
	UID, GID int
	Home     string
	// Groups are the names of the account's groups, primary included.
	Groups []string
}

// Accounts is the Linux user database: System, or a fake in unit tests.
type Accounts interface {
	// Lookup finds an account; ErrNoAccount (wrapped) when there is none.
	Lookup(name string) (LinuxAccount, error)
	// GroupExists reports whether the group is known.
	GroupExists(group string) bool
	// Create makes a member account: no password, in group, home from
	// /etc/skel. An account that appeared meanwhile is not an error.
	Create(ctx context.Context, name, group string) error
}

// System is the machine's user database through NSS; Creator makes
// accounts (nil: creating is not configured).
type System struct {
	Creator func(ctx context.Context, name, group string) error
}

var _ Accounts = System{}

// Lookup implements Accounts.
func (System) Lookup(name string) (LinuxAccount, error) {
	u, err := user.Lookup(name)
	if _, ok := errors.AsType[user.UnknownUserError](err); ok {
		return LinuxAccount{}, fmt.Errorf("%w: %s", ErrNoAccount, name)
	}
	if err != nil {
		return LinuxAccount{}, fmt.Errorf("look up %s: %w", name, err)
	}
	uid, uerr := strconv.Atoi(u.Uid)
	gid, gerr := strconv.Atoi(u.Gid)
	if err := errors.Join(uerr, gerr); err != nil {
		return LinuxAccount{}, fmt.Errorf("non-numeric uid or gid for %s: %w", name, err)
	}
	gids, err := u.GroupIds()
	if err != nil {
		return LinuxAccount{}, fmt.Errorf("groups of %s: %w", name, err)
	}
	acct := LinuxAccount{Name: name, UID: uid, GID: gid, Home: u.HomeDir}
	seen := map[string]bool{}
	// The primary group counts as membership, whatever the lookup returned.
	for _, id := range append(gids, u.Gid) {
		if seen[id] {
			continue
		}
		seen[id] = true
		if g, err := user.LookupGroupId(id); err == nil {
			acct.Groups = append(acct.Groups, g.Name)
		}
	}
	return acct, nil
}

// GroupExists implements Accounts.
func (System) GroupExists(group string) bool {
	_, err := user.LookupGroup(group)
	return err == nil
}

// Create implements Accounts.
func (s System) Create(ctx context.Context, name, group string) error {
	if s.Creator == nil {
		return errors.New("this hub does not create Linux accounts (account_mode is not \"create\")")
	}
	return s.Creator(ctx, name, group)
}
