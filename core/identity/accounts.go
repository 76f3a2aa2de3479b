package identity

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"os/user"
	"strconv"
	"strings"

	"github.com/hubd/hubd/core/names"
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

// UserAdd creates a member account the way Debian's adduser does for a
// person: a home from /etc/skel, a group of its own, the members group as
// a supplementary group, /bin/bash, and no password (locked), so nobody
// logs in to it but through the hub. An account that appeared meanwhile
// (a concurrent login) is not an error. It needs root.
func UserAdd(ctx context.Context, name, group string) error {
	if err := names.Check(name); err != nil || name == "root" {
		return fmt.Errorf("refusing to create the account %s: not a user name this hub accepts (%v)", names.Quote(name), err)
	}
	cmd := exec.CommandContext(ctx, "useradd", "--create-home", "--user-group", "--groups", group,
		"--shell", "/bin/bash", "--comment", "hubd single sign-on user", "--", name)
	out, err := cmd.CombinedOutput()
	if ee, ok := errors.AsType[*exec.ExitError](err); ok && ee.ExitCode() == useraddNameInUse {
		return nil
	}
	if err != nil {
		return fmt.Errorf("useradd %s: %w: %s", name, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// useraddNameInUse is useradd's exit status for an existing user name.
const useraddNameInUse = 9

// SudoCreator creates accounts through `sudo -n <helper> account-helper
// --config <configPath>`, for a hub that does not run as root: the one
// sudoers rule `hubd setup` installs for account_mode = "create" allows
// exactly that command, and the helper checks the name again and takes the
// group from the configuration. The name travels on stdin.
func SudoCreator(sudoPath, helperPath, configPath string) func(ctx context.Context, name, group string) error {
	return func(ctx context.Context, name, _ string) error {
		cmd := exec.CommandContext(ctx, sudoPath, "-n", helperPath, "account-helper", "--config", configPath)
		cmd.Stdin = strings.NewReader(name + "\n")
		out, err := cmd.CombinedOutput()
		if err != nil {
			return fmt.Errorf("%s account-helper (through sudo): %w: %s", helperPath, err, strings.TrimSpace(string(out)))
		}
		return nil
	}
}
