package auth

import (
	"errors"
	"fmt"
	"log/slog"
	"os/user"
	"slices"
	"strconv"
	"strings"

	"github.com/hubd/hubd/core/config"
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

// policy is the allow/admin part of config.Auth. It is only consulted
// after PAM accepted the password (see the package comment for why).
type policy struct {
	allowedGroup string
	allowedUsers []string
	adminGroup   string
	adminUsers   []string
	minUID       int
	// allowedHub and adminHub are hub groups (auth.allowed_hub_groups,
	// auth.admin_hub_groups); hubGroups looks a user's up (nil: none).
	allowedHub, adminHub []string
	hubGroups            func(name string) ([]string, error)
	log                  *slog.Logger
}

func newPolicy(cfg config.Auth, log *slog.Logger) policy {
	return policy{
		allowedGroup: cfg.AllowedGroup,
		allowedUsers: cfg.AllowedUsers,
		adminGroup:   cfg.AdminGroup,
		adminUsers:   cfg.AdminUsers,
		minUID:       cfg.MinUID,
		allowedHub:   cfg.AllowedHubGroups,
		adminHub:     cfg.AdminHubGroups,
		log:          log,
	}
}

// inHubGroup reports whether name is in one of the hub groups.
func (p policy) inHubGroup(groups []string, name string) bool {
	if len(groups) == 0 || p.hubGroups == nil {
		return false
	}
	mine, err := p.hubGroups(name)
	if err != nil {
		p.log.Error("hub groups cannot be read; counting nobody as a member", "user", names.Quote(name), "err", err)
		return false
	}
	return slices.ContainsFunc(groups, func(g string) bool { return slices.Contains(mine, g) })
}

// authorize decides whether name, whose password PAM accepted, may use the
// hub and whether it is an admin. Admins are allowed even outside the
// allowed group, as in JupyterHub; root and system accounts never are.
func (p policy) authorize(name string) (User, error) {
	u, err := user.Lookup(name)
	if err != nil {
		return User{}, newError(ErrUnavailable, msgUnavailable, fmt.Errorf("PAM accepted %s but the user database does not know it: %w", names.Quote(name), err))
	}
	uid, uerr := strconv.Atoi(u.Uid)
	gid, gerr := strconv.Atoi(u.Gid)
	if err := errors.Join(uerr, gerr); err != nil {
		return User{}, newError(ErrUnavailable, msgUnavailable, fmt.Errorf("non-numeric uid or gid for %s: %w", names.Quote(name), err))
	}
	if uid == 0 {
		return User{}, newError(ErrNotAllowed, msgRootRefused, fmt.Errorf("%s has uid 0", names.Quote(name)))
	}
	if uid < p.minUID {
		return User{}, newError(ErrNotAllowed, msgSystemAccount, fmt.Errorf("uid %d is below auth.min_uid %d", uid, p.minUID))
	}
	gids, err := u.GroupIds()
	if err != nil {
		return User{}, newError(ErrUnavailable, msgUnavailable, fmt.Errorf("groups of %s: %w", names.Quote(name), err))
	}
	// The primary group counts as membership, whatever the lookup returned.
	gids = append(gids, u.Gid)

	admin := slices.Contains(p.adminUsers, name) || p.inGroup(p.adminGroup, gids) || p.inHubGroup(p.adminHub, name)
	if !admin && !slices.Contains(p.allowedUsers, name) && !p.inGroup(p.allowedGroup, gids) && !p.inHubGroup(p.allowedHub, name) {
		if p.allowedGroup != "" {
			return User{}, newError(ErrNotAllowed, fmt.Sprintf(msgNotInGroup, p.allowedGroup), fmt.Errorf("not in auth.allowed_group %q nor auth.allowed_users", p.allowedGroup))
		}
		return User{}, newError(ErrNotAllowed, msgNotListed, errors.New("not in auth.allowed_users"))
	}
	return User{Name: name, UID: uid, GID: gid, Home: u.HomeDir, Admin: admin}, nil
}

// inGroup reports whether group (empty: none configured) is among gids.
func (p policy) inGroup(group string, gids []string) bool {
	if group == "" {
		return false
	}
	g, err := user.LookupGroup(group)
	if err != nil {
		// Config names a group the system does not have: nobody is in it,
		// and the operator needs to hear about it.
		p.log.Error("configured group cannot be looked up; nobody counts as a member until it exists",
			"group", names.Quote(group), "err", err, "fix", "groupadd "+group)
		return false
	}
	return slices.Contains(gids, g.Gid)
}
