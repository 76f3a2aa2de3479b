// Package identity turns whoever a login method vouched for into a hub
// user, the same way for every method.
//
// The boundary: a login method only establishes an External identity. A
// password method (PAM; LDAP) checks a typed name and password in
// core/auth, with its throttle, worker pool and timing padding; a redirect
// method (OpenID Connect) checks the provider's signed answer in
// core/web. Either hands the External to Admitter.Admit, which alone
// decides who that is on this hub:
//
//  1. the name: the method's username, normalised by the method's rules
//     (lowercase, an @domain stripped, characters a Linux name cannot hold
//     replaced) and then through its username_map; root and names that
//     break the Linux rules (names.Check) are refused;
//  2. the binding: a hub user belongs to one identity (method, subject).
//     A second identity whose name maps onto an existing user is refused,
//     never merged;
//  3. the rules: allowed and admin by user name and by group. Which
//     groups the rules read is the method's: the Linux groups of the
//     account for PAM, the groups the method reported otherwise (an OIDC
//     groups claim, LDAP groups);
//  4. the account the servers run as, by the method's account mode: an
//     existing Linux account, one created on the first login, or none (a
//     systemd dynamic user);
//  5. the binding and the user's row are written in one transaction.
//
// Admit returns the Account; the web layer then creates the session, in
// one place for every method. Every refusal is an *Error whose Public
// sentence says why and what to do; none of the steps runs before the
// method's credential check, so refusals tell nothing to a person who
// could not log in.
package identity

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/hubd/hubd/core/names"
	"github.com/hubd/hubd/core/store"
)

// Login methods. A method's name is also the identities' method column.
const (
	MethodPAM = "pam"
)

// External is what a login method established about a person.
type External struct {
	// Method is the login method's name, e.g. MethodPAM.
	Method string
	// Subject identifies the person at the method for good (PAM: the
	// Linux name; OIDC: issuer and sub).
	Subject string
	// Name is the user name as the method has it, before normalisation.
	Name string
	// Email, when the method knows it (for the users list).
	Email string
	// Groups are the groups the method reported (OIDC claim, LDAP); nil
	// for methods whose rules read the Linux account's groups.
	Groups []string
}

// AccountMode says what a method's users' servers run as.
type AccountMode string

// Account modes.
const (
	// Existing: the Linux account of the mapped name, which must exist.
	Existing AccountMode = "existing"
	// Create: that Linux account, created on the first login.
	Create AccountMode = "create"
	// Dynamic: no Linux account; a systemd dynamic user.
	Dynamic AccountMode = "dynamic"
)

// Policy is one login method's rules.
type Policy struct {
	// Names turns the method's user name into a hub name.
	Names NameRules
	// AllowedUsers and AdminUsers are hub names (after mapping).
	AllowedUsers, AdminUsers []string
	// AllowedGroups and AdminGroups are groups the rules read (see
	// LinuxGroups). Admins are allowed even outside the allowed groups.
	AllowedGroups, AdminGroups []string
	// LinuxGroups makes the group rules read the Linux account's groups
	// (primary included) instead of External.Groups.
	LinuxGroups bool
	// AllowedHubGroups and AdminHubGroups are hub groups (managed with
	// the groups API, whatever the login method), read from the database.
	AllowedHubGroups, AdminHubGroups []string
	// Settings name the configuration keys of AdminUsers, AdminGroups and
	// AdminHubGroups, so that admins see which one made a user an admin.
	Settings AdminSettings
	// OwnAccount: the method checked the Linux account's own credential
	// (PAM). Otherwise an existing Linux account must be in the members
	// group before a login may use it.
	OwnAccount bool
	// Accounts is the account mode.
	Accounts AccountMode
	// SessionMaxAge bounds a hub session of this method (0: the hub's
	// cookie_max_age alone).
	SessionMaxAge time.Duration
}

// AdminSettings are the configuration keys of a Policy's admin rules,
// e.g. "auth.oidc.admin_groups".
type AdminSettings struct {
	Users, Groups, HubGroups string
}

// Account is an admitted login.
type Account struct {
	// User is the hub's row, as written by Admit (zero from Check).
	User store.User
	// Name is the hub user name.
	Name string
	// Admin: the login rules make the user an admin (AdminRule says
	// which); User.Admin also counts an admin flag granted by hand.
	Admin     bool
	AdminRule string
	Method    string
	// Dynamic: no Linux account; UID, GID and Home are then zero.
	Dynamic  bool
	UID, GID int
	Home     string
	// SessionMaxAge is the method's bound on the session (0: none).
	SessionMaxAge time.Duration
}

// Options build an Admitter.
type Options struct {
	// Policies by method name.
	Policies map[string]Policy
	// MembersGroup is the Linux group of the hub's members: accounts made
	// by Create are put in it, existing accounts of a method that does not
	// own them must be in it, dynamic users get it as a supplementary
	// group.
	MembersGroup string
	// MinUID refuses system accounts whatever the rules say.
	MinUID int
	Store  *store.Store
	// Accounts is the Linux user database (System in production).
	Accounts Accounts
	Logger   *slog.Logger
}

// Admitter decides who a login is.
type Admitter struct {
	o   Options
	log *slog.Logger
}

// New builds an Admitter.
func New(o Options) *Admitter {
	return &Admitter{o: o, log: o.Logger.With("component", "identity")}
}

// Admit maps, checks and provisions ext and records the login. Refusals
// are *Error values.
func (a *Admitter) Admit(ctx context.Context, ext External) (Account, error) {
	acct, err := a.admit(ctx, ext, true)
	a.report(ext, acct, err)
	return acct, err
}

// Check runs the name, rule and account steps of Admit without writing
// anything: no binding, no account created (for hubd doctor).
func (a *Admitter) Check(ctx context.Context, ext External) (Account, error) {
	return a.admit(ctx, ext, false)
}

func (a *Admitter) admit(ctx context.Context, ext External, write bool) (Account, error) {
	p, ok := a.o.Policies[ext.Method]
	if !ok {
		return Account{}, refuse(ErrUnavailable, msgUnavailable, fmt.Errorf("login method %s is not configured", names.Quote(ext.Method)))
	}
	name, err := p.Names.HubName(ext.Name)
	if err != nil {
		return Account{}, err
	}
	acct := Account{Name: name, Method: ext.Method, SessionMaxAge: p.SessionMaxAge}
	if p.Accounts == Dynamic {
		acct.Dynamic = true
		if _, err := a.o.Accounts.Lookup(name); err == nil {
			// systemd would run the "dynamic" user as this account.
			return Account{}, refuse(ErrNotAllowed, fmt.Sprintf(msgNameIsLinux, name), fmt.Errorf("%s is a Linux account; dynamic users must not share its name", names.Quote(name)))
		} else if !errors.Is(err, ErrNoAccount) {
			return Account{}, refuse(ErrUnavailable, msgUnavailable, err)
		}
	}
	var linux LinuxAccount
	missing := false
	if !acct.Dynamic {
		if linux, missing, err = a.linuxAccount(p, name); err != nil {
			return Account{}, err
		}
	}
	groups := ext.Groups
	if p.LinuxGroups {
		groups = linux.Groups
	}
	hubGroups := a.hubGroups(ctx, p, name)
	acct.AdminRule = adminRule(p, name, groups, hubGroups)
	acct.Admin = acct.AdminRule != ""
	if !acct.Admin && !slices.Contains(p.AllowedUsers, name) && !intersects(p.AllowedGroups, groups) && !intersects(p.AllowedHubGroups, hubGroups) {
		return Account{}, a.notAllowed(p, name)
	}
	acct.UID, acct.GID, acct.Home = linux.UID, linux.GID, linux.Home
	if !write {
		return acct, nil
	}
	if missing {
		if linux, err = a.create(ctx, p, name); err != nil {
			return Account{}, err
		}
		a.log.Info("created a Linux account for a login", "user", name, "method", ext.Method, "group", a.o.MembersGroup, "uid", linux.UID)
		acct.UID, acct.GID, acct.Home = linux.UID, linux.GID, linux.Home
	}
	kind := store.AccountLinux
	if acct.Dynamic {
		kind = store.AccountDynamic
	}
	acct.User, err = a.o.Store.BindLogin(ctx, store.Login{Name: name, AdminRule: acct.AdminRule, Account: kind,
		Method: ext.Method, Subject: ext.Subject, Email: ext.Email})
	switch {
	case errors.Is(err, store.ErrNameBound):
		// The log tells the admin the way out; the person sees the page.
		return Account{}, refuse(ErrNameTaken, fmt.Sprintf(msgNameTaken, name),
			fmt.Errorf("%w: `hubd user unlink %s` lets the next login take the name", err, name))
	case errors.Is(err, store.ErrIdentityBound):
		return Account{}, refuse(ErrNameTaken, msgIdentityMoved,
			fmt.Errorf("%w: `hubd user unlink` of that user lets this login take %s", err, names.Quote(name)))
	case err != nil:
		return Account{}, refuse(ErrUnavailable, msgUnavailable, fmt.Errorf("record the login of %s: %w", names.Quote(name), err))
	}
	return acct, nil
}

// adminRule names the rule of p that makes name an admin: the setting,
// and for a group rule the group ("auth.oidc.admin_groups: lab-admins");
// "" when none does.
func adminRule(p Policy, name string, groups, hubGroups []string) string {
	if slices.Contains(p.AdminUsers, name) {
		return cmp.Or(p.Settings.Users, "admin_users")
	}
	for _, rule := range []struct {
		setting      string
		admin, their []string
	}{{cmp.Or(p.Settings.Groups, "admin_groups"), p.AdminGroups, groups}, {cmp.Or(p.Settings.HubGroups, "admin_hub_groups"), p.AdminHubGroups, hubGroups}} {
		if i := slices.IndexFunc(rule.admin, func(g string) bool { return slices.Contains(rule.their, g) }); i >= 0 {
			return rule.setting + ": " + rule.admin[i]
		}
	}
	return ""
}

// hubGroups are the hub groups of name, when p has hub group rules (a
// user who never logged in may already be in some).
func (a *Admitter) hubGroups(ctx context.Context, p Policy, name string) []string {
	if (len(p.AllowedHubGroups) == 0 && len(p.AdminHubGroups) == 0) || a.o.Store == nil {
		return nil
	}
	g, err := a.o.Store.GroupsOfName(ctx, name)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		a.log.Error("hub groups cannot be read; counting nobody as a member", "user", name, "err", err)
	}
	return g
}

// linuxAccount finds the Linux account name and checks that logins of p
// may use it. missing reports an account that does not exist yet and that
// p's Create mode will make once the rules allowed the login.
func (a *Admitter) linuxAccount(p Policy, name string) (acct LinuxAccount, missing bool, err error) {
	acct, err = a.o.Accounts.Lookup(name)
	switch {
	case errors.Is(err, ErrNoAccount) && p.Accounts == Create:
		return LinuxAccount{Name: name}, true, nil
	case errors.Is(err, ErrNoAccount) && p.OwnAccount:
		// The method accepted a credential of an account the user
		// database does not know: a broken NSS setup, not a refusal.
		return LinuxAccount{}, false, refuse(ErrUnavailable, msgUnavailable, fmt.Errorf("the login method accepted %s but the user database does not know it: %w", names.Quote(name), err))
	case errors.Is(err, ErrNoAccount):
		return LinuxAccount{}, false, refuse(ErrNoLinuxAccount, fmt.Sprintf(msgNoLinuxAccount, name), err)
	case err != nil:
		return LinuxAccount{}, false, refuse(ErrUnavailable, msgUnavailable, err)
	}
	return acct, false, a.usable(p, acct)
}

// usable refuses root, system accounts and, for methods that do not own
// the account, accounts outside the members group.
func (a *Admitter) usable(p Policy, acct LinuxAccount) error {
	switch {
	case acct.UID == 0:
		return refuse(ErrNotAllowed, msgRootRefused, fmt.Errorf("%s has uid 0", names.Quote(acct.Name)))
	case acct.UID < a.o.MinUID:
		return refuse(ErrNotAllowed, msgSystemAccount, fmt.Errorf("uid %d is below auth.min_uid %d", acct.UID, a.o.MinUID))
	case !p.OwnAccount && !slices.Contains(acct.Groups, a.o.MembersGroup):
		return refuse(ErrNotMember, fmt.Sprintf(msgNotMember, acct.Name, a.o.MembersGroup),
			fmt.Errorf("the Linux account %s is not in the members group %q", names.Quote(acct.Name), a.o.MembersGroup))
	}
	return nil
}

// create makes the Linux account of a Create-mode login and checks it
// like any other.
func (a *Admitter) create(ctx context.Context, p Policy, name string) (LinuxAccount, error) {
	if err := a.o.Accounts.Create(ctx, name, a.o.MembersGroup); err != nil {
		return LinuxAccount{}, refuse(ErrUnavailable, fmt.Sprintf(msgCreateFailed, name), err)
	}
	acct, err := a.o.Accounts.Lookup(name)
	if err != nil {
		return LinuxAccount{}, refuse(ErrUnavailable, fmt.Sprintf(msgCreateFailed, name), fmt.Errorf("look up the new account: %w", err))
	}
	return acct, a.usable(p, acct)
}

// notAllowed is the refusal for a person no allow rule covers.
func (a *Admitter) notAllowed(p Policy, name string) *Error {
	switch {
	case len(p.AllowedGroups) == 1 && p.LinuxGroups:
		g := p.AllowedGroups[0]
		if !a.o.Accounts.GroupExists(g) {
			// Nobody is in a group the system does not have; the
			// operator needs to hear about it.
			a.log.Error("configured group does not exist; nobody counts as a member until it does", "group", names.Quote(g), "fix", "groupadd "+g)
		}
		return refuse(ErrNotAllowed, fmt.Sprintf(msgNotInGroup, g), fmt.Errorf("not in the allowed group %q nor the allowed users", g))
	case len(p.AllowedGroups) > 0:
		return refuse(ErrNotAllowed, fmt.Sprintf(msgNotInGroups, name), fmt.Errorf("in none of the allowed groups %q nor the allowed users", p.AllowedGroups))
	}
	return refuse(ErrNotAllowed, msgNotListed, fmt.Errorf("%s is not in the allowed users", names.Quote(name)))
}

// report logs the outcome. Names come from outside, so they are quoted.
func (a *Admitter) report(ext External, acct Account, err error) {
	log := a.log.With("method", ext.Method, "name", names.Quote(ext.Name))
	if err == nil {
		log.Info("login admitted", "user", acct.Name, "admin", acct.Admin, "dynamic", acct.Dynamic, "uid", acct.UID)
		return
	}
	e := asError(err)
	if e.Kind == ErrUnavailable {
		log.Error("login failed because of a problem on the hub", "err", e.Err)
		return
	}
	log.Info("login refused", "outcome", e.Kind.Error(), "err", e.Err)
}

func intersects(a, b []string) bool {
	return slices.ContainsFunc(a, func(g string) bool { return slices.Contains(b, g) })
}
