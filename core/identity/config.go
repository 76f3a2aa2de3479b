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
		p[MethodPAM] = pamPolicy(cfg.Auth)
	}
	if cfg.Auth.HasMethod(config.MethodOIDC) {
		oidc := oidcPolicy(cfg.Auth.OIDC)
		// Hub groups are the hub's own, the same for every method.
		oidc.AllowedHubGroups, oidc.AdminHubGroups = cfg.Auth.AllowedHubGroups, cfg.Auth.AdminHubGroups
		p[config.MethodOIDC] = oidc
	}
	return p
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
		// Hub groups are the hub's own, the same for every method.
		AllowedHubGroups: a.AllowedHubGroups,
		AdminHubGroups:   a.AdminHubGroups,
		OwnAccount:       true,
		Accounts:         Existing,
		Settings:         AdminSettings{Users: "auth.admin_users", Groups: "auth.admin_group", HubGroups: "auth.admin_hub_groups"},
	}
}

func nonEmpty(s string) []string {
	if s == "" {
		return nil
	}
	return []string{s}
}
