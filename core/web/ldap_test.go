package web_test

import (
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hubd/hubd/core/config"
	"github.com/hubd/hubd/core/server"
	"github.com/hubd/hubd/internal/testlab/ldaplab"
)

// The login form with the LDAP method against a real directory (slapd,
// ldaplab): search-then-bind over LDAPS with the lab's CA, groups from
// groupOfNames, the allowed group named by cn and the admin group by DN;
// accounts are the fake user database's (account_mode "existing").
func TestLoginLDAP(t *testing.T) {
	d := ldaplab.Start(t, ldaplab.Options{})
	pwFile := filepath.Join(t.TempDir(), "bindpw")
	if err := d.WriteBindPassword(pwFile); err != nil {
		t.Fatal(err)
	}
	e := newEnvWith(t, server.Options{Accounts: fakeAccounts{}}, func(c *config.Config) {
		c.Auth.Methods = []string{config.MethodLDAP}
		l := &c.Auth.LDAP
		l.URLs, l.CAFile, l.BindDN, l.BindPasswordFile = []string{d.LDAPSURL}, d.CAFile, d.BindDN, pwFile
		l.UserSearchBase, l.GroupMembership, l.GroupSearchBase = d.PeopleDN, "member", d.RolesDN
		l.AllowedGroups, l.AdminGroups = []string{"hubtest-ldapgrp"}, []string{"cn=hubtest-ldapadm," + d.RolesDN}
		l.Timeout = config.Duration(time.Second)
	})
	login := func(name, password string) (reply, *browser) {
		t.Helper()
		b := e.browser(t)
		action, xsrf := b.loginForm(t, "")
		return b.postForm(t, action, url.Values{"username": {name}, "password": {password}, "_xsrf": {xsrf}}), b
	}
	for name, pw := range map[string]string{"hubtest-ldap1": "ldap1-pw-123", "hubtest-ldap2": "ldap2-pw-456"} {
		r, b := login(name, pw)
		r.want(t, http.StatusFound)
		u := b.get(t, "/hub/api/users/"+name).want(t, http.StatusOK).json(t)
		if admin := u["admin"] == true; admin != (name == "hubtest-ldap1") {
			t.Errorf("%s: admin %v", name, u["admin"])
		}
	}
	for _, c := range []struct{ what, name, pw, says string }{
		{"outside the allowed groups", "hubtest-ldap3", "ldap3-pw-789", "is not in any of the groups allowed on this hub"},
		{"wrong password", "hubtest-ldap1", "wrong", publicWrongPassword},
		{"unknown user", "hubtest-nobody", "ldap1-pw-123", publicWrongPassword},
		{"empty password", "hubtest-ldap1", "", publicWrongPassword},
		{"filter injection", "hubtest-ldap1)(uid=*", "ldap1-pw-123", "not a valid user name"},
		{"wildcard", "*", "ldap1-pw-123", "not a valid user name"},
		{"NUL", "hubtest-ldap1\x00", "ldap1-pw-123", "not a valid user name"},
	} {
		r, b := login(c.name, c.pw)
		if r.StatusCode == http.StatusFound || b.cookie("/hub/", "jupyterhub-hub-login") != "" {
			t.Errorf("%s: logged in", c.what)
		}
		if page := htmlUnescape(string(r.body)); !strings.Contains(page, c.says) {
			t.Errorf("%s: the page does not say %q:\n%.400s", c.what, c.says, page)
		}
	}

	// A directory that hangs: the answer comes within auth.ldap.timeout
	// (the client's own timeout is far longer) and says what is wrong.
	d.Freeze(t)
	r, _ := login("hubtest-ldap2", "ldap2-pw-456")
	if r.StatusCode == http.StatusFound || !strings.Contains(htmlUnescape(string(r.body)), "The directory that checks passwords is not answering") {
		t.Errorf("frozen directory: %d %.400s", r.StatusCode, r.body)
	}
	d.Thaw(t)
	r, _ = login("hubtest-ldap2", "ldap2-pw-456")
	r.want(t, http.StatusFound)
}
