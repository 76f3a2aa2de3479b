package admin

import (
	"context"
	"fmt"
	"net"
	"os/user"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/hubd/hubd/core/admin/wire"
	"github.com/hubd/hubd/core/config"
)

// identity is the peer of one connection and what it may do. role ""
// means refused; why explains the decision for logs and answers.
type identity struct {
	uid  int
	pid  int
	name string // "" when the uid has no account
	role wire.Role
	why  string
}

// actor names the peer in the audit log and in stop records.
func (id identity) actor() string {
	if id.name != "" {
		return id.name
	}
	return "uid:" + strconv.Itoa(id.uid)
}

type identityKey struct{}

// identityOf returns the identity ConnContext stored; a request that
// somehow has none is refused.
func identityOf(ctx context.Context) identity {
	if id, ok := ctx.Value(identityKey{}).(identity); ok {
		return id
	}
	return identity{uid: -1, why: "the connection's peer is unknown"}
}

func withIdentity(ctx context.Context, id identity) context.Context {
	return context.WithValue(ctx, identityKey{}, id)
}

// connContext decides the peer's role once per connection, from the
// kernel's record of who connected; lookups of a new group member take
// effect on the next connection.
func (s *Server) connContext(ctx context.Context, c net.Conn) context.Context {
	cred, err := peerCred(c)
	if err != nil {
		s.log.Warn("admin connection without peer credentials; refusing it", "err", err)
		return withIdentity(ctx, identity{uid: -1, why: "the peer's credentials could not be read"})
	}
	id := decide(s.cfg.Auth, s.hubUID, int(cred.Uid), lookupAccount, lookupGroupID)
	id.pid = int(cred.Pid)
	s.log.Debug("admin connection", "uid", id.uid, "pid", id.pid, "user", id.name, "role", id.role, "why", id.why)
	return withIdentity(ctx, id)
}

func peerCred(c net.Conn) (*unix.Ucred, error) {
	uc, ok := c.(*net.UnixConn)
	if !ok {
		return nil, fmt.Errorf("not a unix socket connection (%T)", c)
	}
	raw, err := uc.SyscallConn()
	if err != nil {
		return nil, err
	}
	var cred *unix.Ucred
	var credErr error
	if err := raw.Control(func(fd uintptr) {
		cred, credErr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil {
		return nil, err
	}
	return cred, credErr
}

// account is what decide needs to know about a uid.
type account struct {
	name string
	gids []string // every group, the primary one included
}

func lookupAccount(uid int) (account, error) {
	u, err := user.LookupId(strconv.Itoa(uid))
	if err != nil {
		return account{}, err
	}
	gids, err := u.GroupIds()
	if err != nil {
		return account{name: u.Username, gids: []string{u.Gid}}, err
	}
	return account{name: u.Username, gids: append(gids, u.Gid)}, nil
}

func lookupGroupID(name string) (string, error) {
	g, err := user.LookupGroup(name)
	if err != nil {
		return "", err
	}
	return g.Gid, nil
}

// decide applies the admin socket's policy to uid. It uses the group
// database, as the login policy does, rather than the peer process's own
// group list: an admin added to the group gets in on the next connection.
func decide(cfg config.Auth, hubUID, uid int, accountOf func(int) (account, error), gidOf func(string) (string, error)) identity {
	id := identity{uid: uid}
	switch uid {
	case 0:
		id.role, id.why = wire.RoleAdmin, "uid 0 (root)"
		id.name = "root"
		return id
	case hubUID:
		// Whoever runs as the hub's account can edit its database anyway.
		id.role, id.why = wire.RoleAdmin, "the hub's own uid"
	}
	acct, err := accountOf(uid)
	id.name = acct.name
	if id.role != "" {
		return id
	}
	if acct.name == "" {
		id.why = fmt.Sprintf("uid %d has no account in the user database (%v)", uid, err)
		return id
	}
	inGroup := func(group string) bool {
		if group == "" {
			return false
		}
		gid, err := gidOf(group)
		return err == nil && slices.Contains(acct.gids, gid)
	}
	switch {
	case slices.Contains(cfg.AdminUsers, acct.name):
		id.role, id.why = wire.RoleAdmin, "listed in auth.admin_users"
	case inGroup(cfg.AdminGroup):
		id.role, id.why = wire.RoleAdmin, "in auth.admin_group "+cfg.AdminGroup
	case slices.Contains(cfg.AllowedUsers, acct.name):
		id.role, id.why = wire.RoleMember, "listed in auth.allowed_users"
	case inGroup(cfg.AllowedGroup):
		id.role, id.why = wire.RoleMember, "in auth.allowed_group "+cfg.AllowedGroup
	default:
		id.why = fmt.Sprintf("%s (uid %d) is neither an admin nor a member of the hub", acct.name, uid)
	}
	return id
}

// refusal is the answer to a peer that may not use the socket at all.
func refusal(cfg config.Auth, id identity) string {
	var admins, members []string
	admins = append(admins, "root")
	if cfg.AdminGroup != "" {
		admins = append(admins, "group "+cfg.AdminGroup)
	}
	if len(cfg.AdminUsers) > 0 {
		admins = append(admins, "auth.admin_users")
	}
	if cfg.AllowedGroup != "" {
		members = append(members, "group "+cfg.AllowedGroup)
	}
	if len(cfg.AllowedUsers) > 0 {
		members = append(members, "auth.allowed_users")
	}
	msg := "access denied: " + id.why + ". Admins are " + strings.Join(admins, ", ")
	if len(members) > 0 {
		msg += "; members are " + strings.Join(members, ", ")
	}
	hint := "ask an admin to add you to the members group"
	if cfg.AllowedGroup != "" {
		hint = "ask an admin to add you to group " + cfg.AllowedGroup
	}
	return msg + ": " + hint + "."
}
