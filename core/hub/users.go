package hub

import (
	"context"
	"fmt"
	"strconv"

	"github.com/hubd/hubd/core/store"
)

// DeleteUser stops every server of u, then deletes the user with their
// tokens, sessions and identity (files and Linux accounts stay). Servers
// are stopped first so that none outlives its row. The REST API and the
// admin socket both delete users through here, and audit it themselves.
func (h *Hub) DeleteUser(ctx context.Context, u store.User, reason, by string) error {
	if err := h.StopUser(ctx, u, reason, by); err != nil {
		return fmt.Errorf("stop %s's servers before deleting the user: %w", u.Name, err)
	}
	return h.store.DeleteUser(ctx, u.Name)
}

// AdminChange is what making or unmaking an admin by hand did: the user
// before the change and the flag asked for.
type AdminChange struct {
	Before store.User
	Admin  bool
}

// SetAdmin grants or revokes admin by hand (see store.SetAdmin): a grant
// survives logins; a revocation takes effect at once, and a login rule
// that made the user an admin decides again at their next login.
func (h *Hub) SetAdmin(ctx context.Context, name string, admin bool) (AdminChange, error) {
	before, err := h.store.SetAdmin(ctx, name, admin)
	return AdminChange{Before: before, Admin: admin}, err
}

// Note tells the admin what the login rules will do about the change, ""
// when they change nothing.
func (c AdminChange) Note() string {
	rule, name := c.Before.AdminRule, c.Before.Name
	switch {
	case rule == "":
		return ""
	case !c.Admin:
		return fmt.Sprintf("%s made %s an admin at their last login and will again at their next login: change that rule to make this stick", rule, name)
	case !c.Before.AdminGrant:
		return fmt.Sprintf("%s was already an admin by %s; now also by hand, so they stay one whatever the login rules say", name, rule)
	}
	return ""
}

// AuditDetail is the audit log's detail of the change.
func (c AdminChange) AuditDetail() string {
	d := strconv.FormatBool(c.Admin)
	if c.Before.AdminRule != "" {
		d += " (by the login rules before: " + c.Before.AdminRule + ")"
	}
	return d
}
