package admin

import (
	"errors"
	"testing"

	"github.com/hubd/hubd/core/admin/wire"
	"github.com/hubd/hubd/core/config"
)

// TestDecide covers the role policy with made-up accounts.
func TestDecide(t *testing.T) {
	cfg := config.Default().Auth
	cfg.AdminGroup, cfg.AllowedGroup = "hubadmin", "jupyterhub"
	cfg.AdminUsers, cfg.AllowedUsers = []string{"carol"}, []string{"dave"}
	accounts := map[int]account{
		1001: {name: "alice", gids: []string{"1001", "500"}}, // in hubadmin
		1002: {name: "bob", gids: []string{"1002", "600"}},   // in jupyterhub
		1003: {name: "carol", gids: []string{"1003"}},
		1004: {name: "dave", gids: []string{"1004"}},
		1005: {name: "eve", gids: []string{"1005"}},
		999:  {name: "hub", gids: []string{"999"}},
	}
	accountOf := func(uid int) (account, error) {
		if a, ok := accounts[uid]; ok {
			return a, nil
		}
		return account{}, errors.New("unknown uid")
	}
	gidOf := func(g string) (string, error) {
		switch g {
		case "hubadmin":
			return "500", nil
		case "jupyterhub":
			return "600", nil
		}
		return "", errors.New("no such group")
	}
	for uid, want := range map[int]wire.Role{0: wire.RoleAdmin, 999: wire.RoleAdmin, 1001: wire.RoleAdmin, 1002: wire.RoleMember,
		1003: wire.RoleAdmin, 1004: wire.RoleMember, 1005: "", 4242: ""} {
		id := decide(cfg, 999, uid, accountOf, gidOf)
		if id.role != want || id.why == "" {
			t.Errorf("uid %d: role %q (%s), want %q", uid, id.role, id.why, want)
		}
	}
	// A configured group the system lacks makes nobody a member.
	cfg.AllowedGroup = "missing"
	if id := decide(cfg, 999, 1002, accountOf, gidOf); id.role != "" {
		t.Errorf("member of a missing group: %q", id.role)
	}
}
