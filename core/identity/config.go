package identity

import (
	"log/slog"

	"github.com/hubd/hubd/core/config"
	"github.com/hubd/hubd/core/store"
)

// FromConfig is the Admitter of a validated configuration. st may be nil
// for an Admitter that only Checks (hubd doctor).
func FromConfig(cfg config.Config, st *store.Store, accounts Accounts, logger *slog.Logger) *Admitter {
	return New(Options{
		Policies:     policies(cfg),
		MembersGroup: cfg.Auth.AllowedGroup,
		MinUID:       cfg.Auth.MinUID,
		Store:        st,
		Accounts:     accounts,
		Logger:       logger,
	})
}

// policies are the rules of every login method the configuration enables.
func policies(cfg config.Config) map[string]Policy {
	p := map[string]Policy{}
	if cfg.Auth.HasMethod(config.MethodPAM) {
		p[MethodPAM] = withHubGroups(pamPolicy(cfg.Auth), cfg.Auth)
	}
	if cfg.Auth.HasMethod(config.MethodOIDC) {
		p[config.MethodOIDC] = withHubGroups(oidcPolicy(cfg.Auth.OIDC), cfg.Auth)
	}
	if cfg.Auth.HasMethod(config.MethodLDAP) {
		p[config.MethodLDAP] = withHubGroups(ldapPolicy(cfg.Auth.LDAP), cfg.Auth)
	}
	return p
}

// withHubGroups adds the hub groups' rules: they are the hub's own, the
// same for every method.
func withHubGroups(p Policy, a config.Auth) Policy {
	p.AllowedHubGroups, p.AdminHubGroups = a.AllowedHubGroups, a.AdminHubGroups
	return p
}

// ldapPolicy: the directory vouched for the person by their password; the
// group rules read the directory's groups (by name and by DN, as the
// method reports both), and the account is what account_mode says. An
// existing Linux account of the same name must be in the members group:
// the bind proved the directory account, not the Linux one.
func ldapPolicy(l config.LDAP) Policy {
	return Policy{
		Names:         NameRules{Lowercase: true},
		AllowedUsers:  l.AllowedUsers,
		AdminUsers:    l.AdminUsers,
		AllowedGroups: l.AllowedGroups,
		AdminGroups:   l.AdminGroups,
		Accounts:      AccountMode(l.AccountMode),
		Settings:      AdminSettings{Users: "auth.ldap.admin_users", Groups: "auth.ldap.admin_groups", HubGroups: "auth.admin_hub_groups"},
	}
}

// oidcPolicy: the provider names the person; its groups claim is what
// the group rules read, and the account is what account_mode says.
func oidcPolicy(o config.OIDC) Policy {
	return Policy{
		Names: NameRules{Lowercase: o.Lowercase, StripDomains: o.StripDomains, Replace: o.ReplaceInvalid,
			UsernameMap: o.UsernameMap},
		AllowedUsers:  o.AllowedUsers,
		AdminUsers:    o.AdminUsers,
		AllowedGroups: o.AllowedGroups,
		AdminGroups:   o.AdminGroups,
		Accounts:      AccountMode(o.AccountMode),
		SessionMaxAge: o.SessionMaxAge.D(),
		Settings:      AdminSettings{Users: "auth.oidc.admin_users", Groups: "auth.oidc.admin_groups", HubGroups: "auth.admin_hub_groups"},
	}
}

// pamPolicy: PAM checked the Linux account's own password, so the name is
// the account's, the group rules read its Linux groups, and the account
// must exist.
func pamPolicy(a config.Auth) Policy {
	return Policy{
		Names:         NameRules{Lowercase: true},
		AllowedUsers:  a.AllowedUsers,
		AdminUsers:    a.AdminUsers,
		AllowedGroups: nonEmpty(a.AllowedGroup),
		AdminGroups:   nonEmpty(a.AdminGroup),
		LinuxGroups:   true,
		OwnAccount:    true,
		Accounts:      Existing,
		Settings:      AdminSettings{Users: "auth.admin_users", Groups: "auth.admin_group", HubGroups: "auth.admin_hub_groups"},
	}
}

func nonEmpty(s string) []string {
	if s == "" {
		return nil
	}
	return []string{s}
}
