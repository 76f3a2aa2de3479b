package identity_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/hubd/hubd/core/config"
	"github.com/hubd/hubd/core/identity"
	"github.com/hubd/hubd/core/store"
	"github.com/hubd/hubd/core/store/storetest"
)

// sso is the policy of a redirect method in the tests: names from a claim,
// group rules on the claim's groups.
const sso = "hubtest-sso"

// fakeAccounts is a user database of a few accounts; Create adds one.
type fakeAccounts struct {
	mu      sync.Mutex
	byName  map[string]identity.LinuxAccount
	created []string
}

func newFakeAccounts() *fakeAccounts {
	return &fakeAccounts{byName: map[string]identity.LinuxAccount{
		"alice":   {Name: "alice", UID: 1001, GID: 1001, Home: "/home/alice", Groups: []string{"alice", "jupyterhub"}},
		"bob":     {Name: "bob", UID: 1002, GID: 1002, Home: "/home/bob", Groups: []string{"bob"}},
		"backup":  {Name: "backup", UID: 34, GID: 34, Home: "/var/backups", Groups: []string{"backup", "jupyterhub"}},
		"toor":    {Name: "toor", UID: 0, GID: 0, Home: "/root", Groups: []string{"root", "jupyterhub"}},
		"charlie": {Name: "charlie", UID: 1003, GID: 1003, Home: "/home/charlie", Groups: []string{"charlie", "jupyterhub"}},
	}}
}

func (f *fakeAccounts) Lookup(name string) (identity.LinuxAccount, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if a, ok := f.byName[name]; ok {
		return a, nil
	}
	return identity.LinuxAccount{}, identity.ErrNoAccount
}

func (f *fakeAccounts) GroupExists(g string) bool { return g == "jupyterhub" }

func (f *fakeAccounts) Create(_ context.Context, name, group string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.created = append(f.created, name)
	f.byName[name] = identity.LinuxAccount{Name: name, UID: 2000 + len(f.created), GID: 100, Home: "/home/" + name, Groups: []string{"users", group}}
	return nil
}

type fixture struct {
	admit    *identity.Admitter
	store    *store.Store
	accounts *fakeAccounts
	logs     *bytes.Buffer
}

// newFixture is an Admitter with the PAM policy of config.Default and the
// sso policy p, on a fresh database and fake accounts.
func newFixture(t *testing.T, p identity.Policy) fixture {
	t.Helper()
	f := fixture{store: storetest.New(t), accounts: newFakeAccounts(), logs: &bytes.Buffer{}}
	f.admit = identity.New(identity.Options{
		Policies: map[string]identity.Policy{
			identity.MethodPAM: {Names: identity.NameRules{Lowercase: true}, AllowedGroups: []string{"jupyterhub"},
				LinuxGroups: true, OwnAccount: true, Accounts: identity.Existing},
			sso: p,
		},
		MembersGroup: "jupyterhub", MinUID: 1000, Store: f.store, Accounts: f.accounts,
		Logger: slog.New(slog.NewTextHandler(f.logs, nil)),
	})
	return f
}

func ssoPolicy(change func(*identity.Policy)) identity.Policy {
	p := identity.Policy{
		Names:         identity.NameRules{Lowercase: true, StripDomains: []string{"example.test"}, Replace: "-"},
		AllowedGroups: []string{"lab"},
		AdminGroups:   []string{"lab-admins"},
		Accounts:      identity.Existing,
	}
	if change != nil {
		change(&p)
	}
	return p
}

func ext(name string, groups ...string) identity.External {
	return identity.External{Method: sso, Subject: "sub-" + name, Name: name, Groups: groups}
}

// wantRefused fails unless err is an *identity.Error of kind whose public
// sentence contains has.
func wantRefused(t *testing.T, err, kind error, has string) {
	t.Helper()
	e, ok := errors.AsType[*identity.Error](err)
	if !ok || !errors.Is(err, kind) {
		t.Fatalf("got %v, want an *identity.Error of kind %q", err, kind)
	}
	if !strings.Contains(e.Public, has) || !strings.HasSuffix(e.Public, ".") {
		t.Errorf("public sentence %q does not contain %q or is not a sentence", e.Public, has)
	}
}

// TestRules: allowed and admin by user and by the method's groups; admins
// are allowed outside the allowed groups; the refusal says why.
func TestRules(t *testing.T) {
	for _, c := range []struct {
		name   string
		change func(*identity.Policy)
		ext    identity.External
		kind   error
		has    string
		admin  string // the rule that makes alice an admin
	}{
		{name: "allowed by group", ext: ext("alice", "lab")},
		{name: "admin by group", ext: ext("alice", "lab", "lab-admins"), admin: "admin_groups: lab-admins"},
		{name: "refused by group", ext: ext("alice", "other"), kind: identity.ErrNotAllowed, has: "alice is not in any of the groups"},
		{name: "no groups claim", ext: ext("alice"), kind: identity.ErrNotAllowed, has: "not in any of the groups"},
		{name: "allowed by user", change: func(p *identity.Policy) { p.AllowedUsers = []string{"alice"} }, ext: ext("alice")},
		{name: "admin by user", change: func(p *identity.Policy) { p.AdminUsers = []string{"alice"} }, ext: ext("alice"), admin: "admin_users"},
		{name: "admin by user, named setting", change: func(p *identity.Policy) {
			p.AdminUsers, p.Settings.Users = []string{"alice"}, "auth.oidc.admin_users"
		}, ext: ext("alice", "lab-admins"), admin: "auth.oidc.admin_users"},
		{name: "not listed", change: func(p *identity.Policy) { p.AllowedGroups = nil }, ext: ext("alice", "lab"), kind: identity.ErrNotAllowed, has: "list of allowed users"},
		{name: "a group named like the user is no match", ext: ext("alice", "alice"), kind: identity.ErrNotAllowed},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t, ssoPolicy(c.change))
			acct, err := f.admit.Admit(t.Context(), c.ext)
			if c.kind != nil {
				wantRefused(t, err, c.kind, c.has)
				if n, _ := f.store.CountUsers(t.Context()); n != 0 {
					t.Errorf("a refused login left %d users", n)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			admin := c.admin != ""
			if acct.Name != "alice" || acct.Admin != admin || acct.AdminRule != c.admin || acct.UID != 1001 || acct.User.Name != "alice" ||
				acct.User.Admin != admin || acct.User.AdminRule != c.admin || acct.User.Method != sso {
				t.Errorf("got %+v, want alice (uid 1001) with admin rule %q", acct, c.admin)
			}
		})
	}
}

// TestAdminFollowsEachLogin: groups are read at every login, so a person
// removed from the admin group is no admin at the next one, and one
// removed from every allowed group is refused.
func TestAdminFollowsEachLogin(t *testing.T) {
	f := newFixture(t, ssoPolicy(nil))
	if a, err := f.admit.Admit(t.Context(), ext("alice", "lab-admins")); err != nil || !a.Admin {
		t.Fatalf("first login: %+v, %v", a, err)
	}
	if a, err := f.admit.Admit(t.Context(), ext("alice", "lab")); err != nil || a.Admin || a.User.Admin {
		t.Fatalf("second login without the admin group: %+v, %v", a, err)
	}
	// An admin by hand stays one whatever the rules say at the next login.
	if _, err := f.store.SetAdmin(t.Context(), "alice", true); err != nil {
		t.Fatal(err)
	}
	if a, err := f.admit.Admit(t.Context(), ext("alice", "lab")); err != nil || a.Admin || !a.User.Admin || !a.User.AdminGrant {
		t.Fatalf("login of an admin by hand: %+v, %v", a, err)
	}
	_, err := f.admit.Admit(t.Context(), ext("alice", "other"))
	wantRefused(t, err, identity.ErrNotAllowed, "not in any of the groups")
}

// TestNames: what claims can hold, and what becomes of it.
func TestNames(t *testing.T) {
	rules := identity.NameRules{Lowercase: true, StripDomains: []string{"example.test"}, Replace: "-",
		UsernameMap: map[string]string{"alice.smith": "alice", "evil": "root"}}
	strict := identity.NameRules{Lowercase: true}
	for _, c := range []struct {
		name, raw string
		rules     identity.NameRules
		want      string
		kind      error
	}{
		{name: "plain", raw: "alice", rules: rules, want: "alice"},
		{name: "case and spaces", raw: "  Alice ", rules: rules, want: "alice"},
		{name: "email of the stripped domain", raw: "Bob@Example.TEST", rules: rules, want: "bob"},
		{name: "email of another domain", raw: "bob@elsewhere.test", rules: rules, want: "bob-elsewhere.test"},
		{name: "map after normalising", raw: "Alice.Smith@example.test", rules: rules, want: "alice"},
		{name: "map onto root", raw: "evil", rules: rules, kind: identity.ErrNotAllowed},
		{name: "root", raw: "ROOT", rules: rules, kind: identity.ErrNotAllowed},
		{name: "root by its domain", raw: "root@example.test", rules: rules, kind: identity.ErrNotAllowed},
		{name: "path", raw: "../root", rules: rules, kind: identity.ErrBadName},
		{name: "path without replacing", raw: "../root", rules: strict, kind: identity.ErrBadName},
		{name: "option", raw: "-rf", rules: rules, kind: identity.ErrBadName},
		{name: "option without replacing", raw: "--help", rules: strict, kind: identity.ErrBadName},
		{name: "10 KB", raw: strings.Repeat("a", 10<<10), rules: rules, kind: identity.ErrBadName},
		{name: "33 characters", raw: strings.Repeat("a", 33), rules: rules, kind: identity.ErrBadName},
		{name: "Cyrillic a", raw: "\u0430lice", rules: strict, kind: identity.ErrBadName},
		{name: "Cyrillic a replaced", raw: "\u0430lice", rules: rules, kind: identity.ErrBadName},
		{name: "Cyrillic o inside, replaced", raw: "b\u043eb", rules: rules, want: "b-b"},
		{name: "fullwidth root", raw: "\uff52\uff4f\uff4f\uff54", rules: rules, kind: identity.ErrBadName},
		{name: "fullwidth root strict", raw: "\uff52\uff4f\uff4f\uff54", rules: strict, kind: identity.ErrBadName},
		{name: "newline", raw: "alice\nroot", rules: strict, kind: identity.ErrBadName},
		{name: "NUL", raw: "alice\x00", rules: strict, kind: identity.ErrBadName},
		{name: "invalid UTF-8", raw: "al\xffice", rules: rules, kind: identity.ErrBadName},
		{name: "empty", raw: "", rules: rules, kind: identity.ErrBadName},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := c.rules.HubName(c.raw)
			if c.kind != nil {
				wantRefused(t, err, c.kind, "")
				if e, _ := errors.AsType[*identity.Error](err); len(e.Public) > 400 {
					t.Errorf("public sentence of %d bytes; a hostile name must be cut", len(e.Public))
				}
				return
			}
			if err != nil || got != c.want {
				t.Errorf("HubName(%q) = %q, %v; want %q", c.raw, got, err, c.want)
			}
		})
	}
}

// TestBinding: a user belongs to one identity. A second identity mapping
// to an existing name is refused, not merged; the same identity logs in
// again; a user created through the API is bound by the first login.
func TestBinding(t *testing.T) {
	f := newFixture(t, ssoPolicy(nil))
	ctx := t.Context()
	first, err := f.admit.Admit(ctx, identity.External{Method: sso, Subject: "s-1", Name: "alice", Groups: []string{"lab"}})
	if err != nil {
		t.Fatal(err)
	}
	again, err := f.admit.Admit(ctx, identity.External{Method: sso, Subject: "s-1", Name: "Alice@example.test", Groups: []string{"lab"}})
	if err != nil || again.User.ID != first.User.ID {
		t.Fatalf("the same identity again: %+v, %v", again, err)
	}
	_, err = f.admit.Admit(ctx, identity.External{Method: sso, Subject: "s-2", Name: "alice@example.test", Groups: []string{"lab"}})
	wantRefused(t, err, identity.ErrNameTaken, "alice already belongs to another login")
	_, err = f.admit.Admit(ctx, identity.External{Method: identity.MethodPAM, Subject: "alice", Name: "alice"})
	wantRefused(t, err, identity.ErrNameTaken, "alice already belongs")
	_, err = f.admit.Admit(ctx, identity.External{Method: sso, Subject: "s-1", Name: "charlie", Groups: []string{"lab"}})
	wantRefused(t, err, identity.ErrNameTaken, "linked to another user name")
	if n, _ := f.store.CountUsers(ctx); n != 1 {
		t.Errorf("%d users after the refusals; want 1", n)
	}

	if _, err := f.store.CreateUser(ctx, "charlie", false); err != nil {
		t.Fatal(err)
	}
	c, err := f.admit.Admit(ctx, identity.External{Method: identity.MethodPAM, Subject: "charlie", Name: "charlie"})
	if err != nil || c.User.Method != identity.MethodPAM {
		t.Fatalf("first login of a user created through the API: %+v, %v", c, err)
	}
}

// TestAccountModes: existing needs a member account; create makes one only
// for an allowed person and never takes over an account outside the
// members group; dynamic never shares a Linux account's name.
func TestAccountModes(t *testing.T) {
	mode := func(m identity.AccountMode) func(*identity.Policy) {
		return func(p *identity.Policy) { p.Accounts = m }
	}
	for _, c := range []struct {
		name    string
		mode    identity.AccountMode
		user    string
		groups  []string
		kind    error
		has     string
		created bool
		dynamic bool
	}{
		{name: "existing member", mode: identity.Existing, user: "alice", groups: []string{"lab"}},
		{name: "existing, no account", mode: identity.Existing, user: "dora", groups: []string{"lab"}, kind: identity.ErrNoLinuxAccount, has: "no Linux account named dora"},
		{name: "existing, not a member", mode: identity.Existing, user: "bob", groups: []string{"lab"}, kind: identity.ErrNotMember, has: "bob is not in the group \"jupyterhub\""},
		{name: "existing, system account", mode: identity.Existing, user: "backup", groups: []string{"lab"}, kind: identity.ErrNotAllowed, has: "System accounts"},
		{name: "existing, uid 0", mode: identity.Existing, user: "toor", groups: []string{"lab"}, kind: identity.ErrNotAllowed, has: "root account"},
		{name: "create", mode: identity.Create, user: "dora", groups: []string{"lab"}, created: true},
		{name: "create, refused by group", mode: identity.Create, user: "dora", groups: []string{"other"}, kind: identity.ErrNotAllowed},
		{name: "create, existing member", mode: identity.Create, user: "alice", groups: []string{"lab"}},
		{name: "create, existing non-member", mode: identity.Create, user: "bob", groups: []string{"lab"}, kind: identity.ErrNotMember},
		{name: "create, system account", mode: identity.Create, user: "backup", groups: []string{"lab"}, kind: identity.ErrNotAllowed},
		{name: "dynamic", mode: identity.Dynamic, user: "dora", groups: []string{"lab"}, dynamic: true},
		{name: "dynamic, name of a Linux account", mode: identity.Dynamic, user: "bob", groups: []string{"lab"}, kind: identity.ErrNotAllowed, has: "bob belongs to a Linux account"},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t, ssoPolicy(mode(c.mode)))
			acct, err := f.admit.Admit(t.Context(), ext(c.user, c.groups...))
			if created := len(f.accounts.created) > 0; created != c.created {
				t.Errorf("accounts created: %v, want %v", f.accounts.created, c.created)
			}
			if c.kind != nil {
				wantRefused(t, err, c.kind, c.has)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			wantAccount := store.AccountLinux
			if c.dynamic {
				wantAccount = store.AccountDynamic
			}
			if acct.Dynamic != c.dynamic || acct.User.Account != wantAccount || (acct.UID == 0) != c.dynamic {
				t.Errorf("got %+v, want dynamic %v", acct, c.dynamic)
			}
		})
	}
}

// TestCheckWritesNothing: Check decides like Admit but binds and creates
// nothing.
func TestCheckWritesNothing(t *testing.T) {
	f := newFixture(t, ssoPolicy(func(p *identity.Policy) { p.Accounts = identity.Create }))
	acct, err := f.admit.Check(t.Context(), ext("dora", "lab-admins"))
	if err != nil || !acct.Admin || acct.Name != "dora" {
		t.Fatalf("check: %+v, %v", acct, err)
	}
	if n, _ := f.store.CountUsers(t.Context()); n != 0 || len(f.accounts.created) != 0 {
		t.Errorf("check wrote %d users and created %v", n, f.accounts.created)
	}
	// An existing account is reported with its uid (hubd doctor prints it).
	f = newFixture(t, ssoPolicy(nil))
	if acct, err := f.admit.Check(t.Context(), ext("alice", "lab")); err != nil || acct.UID != 1001 || acct.Home != "/home/alice" {
		t.Errorf("check of an existing account: %+v, %v", acct, err)
	}
}

// TestPAMPolicy: the rules of config.Auth for PAM logins, on accounts
// every Debian system has: nobody (uid 65534, primary group nogroup) and
// daemon (uid 1).
func TestPAMPolicy(t *testing.T) {
	for _, c := range []struct {
		name   string
		cfg    func(*config.Auth)
		user   string
		kind   error
		admin  bool
		has    string
		logHas string
	}{
		{name: "primary group counts", cfg: func(a *config.Auth) { a.AllowedGroup = "nogroup" }, user: "nobody"},
		{name: "listed user", cfg: func(a *config.Auth) { a.AllowedGroup = ""; a.AllowedUsers = []string{"nobody"} }, user: "nobody"},
		{name: "admin by list is allowed", cfg: func(a *config.Auth) { a.AllowedGroup = "hubtest-id-nosuchgroup"; a.AdminUsers = []string{"nobody"} }, user: "nobody", admin: true},
		{name: "admin by group", cfg: func(a *config.Auth) { a.AllowedGroup = "nogroup"; a.AdminGroup = "nogroup" }, user: "nobody", admin: true},
		{name: "not in group", cfg: func(a *config.Auth) { a.AllowedGroup = "hubtest-id-nosuchgroup" }, user: "nobody",
			kind: identity.ErrNotAllowed, has: `not a member of group "hubtest-id-nosuchgroup"`, logHas: `fix="groupadd hubtest-id-nosuchgroup"`},
		{name: "not listed, no group", cfg: func(a *config.Auth) { a.AllowedGroup = ""; a.AllowedUsers = []string{"someone"} }, user: "nobody",
			kind: identity.ErrNotAllowed, has: "list of allowed users"},
		{name: "system account even when listed", cfg: func(a *config.Auth) { a.AllowedUsers = []string{"daemon"}; a.AdminUsers = []string{"daemon"} }, user: "daemon",
			kind: identity.ErrNotAllowed, has: "System accounts"},
		{name: "min_uid above the user", cfg: func(a *config.Auth) { a.AllowedGroup = "nogroup"; a.MinUID = 65535 }, user: "nobody",
			kind: identity.ErrNotAllowed, has: "System accounts"},
		{name: "password accepted but no such account", user: "hubtest-id-nosuchuser",
			kind: identity.ErrUnavailable, logHas: "does not know it"},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := config.Default()
			if c.cfg != nil {
				c.cfg(&cfg.Auth)
			}
			logs := &bytes.Buffer{}
			admit := identity.FromConfig(cfg, storetest.New(t), identity.System{}, slog.New(slog.NewTextHandler(logs, nil)))
			acct, err := admit.Admit(t.Context(), identity.External{Method: identity.MethodPAM, Subject: c.user, Name: c.user})
			if c.kind != nil {
				wantRefused(t, err, c.kind, c.has)
			} else if err != nil || acct.Name != c.user || acct.Admin != c.admin {
				t.Errorf("got %+v, %v; want %s with admin %v", acct, err, c.user, c.admin)
			} else if c.admin && acct.AdminRule != "auth.admin_users" && acct.AdminRule != "auth.admin_group: nogroup" {
				t.Errorf("admin rule %q does not name the setting", acct.AdminRule)
			}
			if !strings.Contains(logs.String(), c.logHas) {
				t.Errorf("log does not contain %q:\n%s", c.logHas, logs)
			}
		})
	}
}

// TestHubGroups: members of auth.allowed_hub_groups may log in and of
// auth.admin_hub_groups are admins, as the hub's groups say, whatever the
// method's own groups.
func TestHubGroups(t *testing.T) {
	for _, c := range []struct {
		name           string
		allowed, admin []string
		wantErr, adm   bool
	}{
		{name: "in an allowed hub group", allowed: []string{"lab"}},
		{name: "in an admin hub group", allowed: []string{"other"}, admin: []string{"leads"}, adm: true},
		{name: "in neither", allowed: []string{"other"}, wantErr: true},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t, ssoPolicy(func(p *identity.Policy) {
				p.AllowedGroups, p.AllowedHubGroups, p.AdminHubGroups = []string{"hubtest-none"}, c.allowed, c.admin
			}))
			for _, g := range []string{"lab", "leads"} {
				if err := f.store.CreateGroup(t.Context(), g, nil); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := f.store.CreateUser(t.Context(), "alice", false); err != nil {
				t.Fatal(err)
			}
			for _, g := range []string{"lab", "leads"} {
				if err := f.store.AddGroupMembers(t.Context(), g, []string{"alice"}); err != nil {
					t.Fatal(err)
				}
			}
			u, err := f.admit.Admit(t.Context(), ext("alice", "elsewhere"))
			if (err != nil) != c.wantErr || (err == nil && u.Admin != c.adm) {
				t.Errorf("login: %+v, %v; want error %v, admin %v", u, err, c.wantErr, c.adm)
			}
		})
	}
}
