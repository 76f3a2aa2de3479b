package auth

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hubd/hubd/core/config"
	"github.com/hubd/hubd/core/ldapdir"
	"github.com/hubd/hubd/internal/testlab/ldaplab"
)

// ldapConfig is the auth section of a hub using the lab's directory by
// search-then-bind over StartTLS, with the service account's password in
// a 0600 file.
func ldapConfig(t testing.TB, d *ldaplab.Directory) config.Auth {
	t.Helper()
	pwFile := filepath.Join(t.TempDir(), "bindpw")
	if err := d.WriteBindPassword(pwFile); err != nil {
		t.Fatal(err)
	}
	return testConfig(func(a *config.Auth) {
		a.LDAP.URLs, a.LDAP.StartTLS, a.LDAP.CAFile = []string{d.URL}, true, d.CAFile
		a.LDAP.BindDN, a.LDAP.BindPasswordFile = d.BindDN, pwFile
		a.LDAP.UserSearchBase, a.LDAP.GroupSearchBase = d.PeopleDN, d.GroupsDN
		a.LDAP.Timeout = config.Duration(2 * time.Second)
	})
}

// The LDAP method reuses the password machinery: names are refused before
// the directory is asked (LDAP injections among them), a wrong password
// and an unknown user get the same answer and count in the throttle, and
// the bind is the directory's.
func TestLDAPLogin(t *testing.T) {
	d := ldaplab.Start(t, ldaplab.Options{})
	cfg := ldapConfig(t, d)
	l, err := NewLDAP(cfg, newLogger(&logBuffer{}))
	if err != nil {
		t.Fatal(err)
	}
	checker := l.checker.(*ldapChecker)
	e, err := checker.authenticate("hubtest-ldap1", "ldap1-pw-123")
	if err != nil {
		t.Fatal(err)
	}
	var groups []string
	for _, g := range e.Groups {
		groups = append(groups, g.Name)
	}
	slices.Sort(groups)
	if e.Name != "hubtest-ldap1" || !slices.Equal(groups, []string{"hubtest-ldapadm", "hubtest-ldapgrp"}) {
		t.Errorf("entry %+v", e)
	}

	for _, c := range []struct {
		what, name, pw string
		kind           error
	}{
		{"wrong password", "hubtest-ldap1", "wrong", ErrInvalidCredentials},
		{"unknown user", "hubtest-nobody", "ldap1-pw-123", ErrInvalidCredentials},
		{"empty password", "hubtest-ldap1", "", ErrInvalidCredentials},
		{"filter wildcard", "*", "ldap1-pw-123", ErrBadUsername},
		{"filter injection", "hubtest-ldap1)(uid=*", "ldap1-pw-123", ErrBadUsername},
		{"NUL", "hubtest-ldap1\x00", "ldap1-pw-123", ErrBadUsername},
		{"escaped NUL", `hubtest-ldap1\00`, "ldap1-pw-123", ErrBadUsername},
		{"DN injection", "hubtest-ldap1," + d.PeopleDN, "ldap1-pw-123", ErrBadUsername},
	} {
		_, err := l.Check(t.Context(), c.name, c.pw, "192.0.2.1")
		wantKind(t, err, c.kind)
	}
	if wait := l.throttle.wait("hubtest-someone", "192.0.2.1"); wait != 0 {
		t.Errorf("three failures throttle the address already (%v)", wait)
	}
	if l.throttle.users["hubtest-ldap1"] == nil || l.throttle.users["hubtest-nobody"] == nil {
		t.Error("wrong credentials from the directory were not counted by the throttle")
	}

}

// A directory that hangs or is gone answers within auth.ldap.timeout,
// as a service problem, never as a wrong password.
func TestLDAPDirectoryDown(t *testing.T) {
	d := ldaplab.Start(t, ldaplab.Options{})
	cfg := ldapConfig(t, d)
	cfg.LDAP.Timeout = config.Duration(500 * time.Millisecond)
	l, err := NewLDAP(cfg, newLogger(&logBuffer{}))
	if err != nil {
		t.Fatal(err)
	}
	d.Freeze(t)
	_, err = l.Check(context.Background(), "hubtest-ldap1", "ldap1-pw-123", "192.0.2.1")
	e := wantKind(t, err, ErrUnavailable)
	if e.Public != msgDirectoryDown || !errors.Is(err, ldapdir.ErrUnavailable) {
		t.Errorf("frozen directory: %q, %v", e.Public, err)
	}
	d.Thaw(t)
	d.Stop(t)
	_, err = l.Check(context.Background(), "hubtest-ldap1", "ldap1-pw-123", "192.0.2.1")
	if e := wantKind(t, err, ErrUnavailable); e.Public != msgDirectoryDown {
		t.Errorf("stopped directory: %q", e.Public)
	}
	if l.throttle.users["hubtest-ldap1"] != nil {
		t.Error("a directory that did not answer counted as a wrong password")
	}
}

// The service account's password file must be the hub's alone, and the
// CA file must hold a certificate: both fail the hub's start.
func TestLDAPConfigFiles(t *testing.T) {
	d := ldaplab.Start(t, ldaplab.Options{})
	cfg := ldapConfig(t, d)
	if err := os.Chmod(cfg.LDAP.BindPasswordFile, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := NewLDAP(cfg, newLogger(&logBuffer{})); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Errorf("world-readable password file: %v", err)
	}
	cfg = ldapConfig(t, d)
	cfg.LDAP.CAFile = cfg.LDAP.BindPasswordFile
	if _, err := NewLDAP(cfg, newLogger(&logBuffer{})); err == nil || !strings.Contains(err.Error(), "no PEM certificate") {
		t.Errorf("CA file without a certificate: %v", err)
	}
	cfg = ldapConfig(t, d)
	dc, err := LDAPDirectoryConfig(cfg.LDAP)
	if err != nil {
		t.Fatal(err)
	}
	if dc.BindPassword != d.BindPassword || dc.Membership != ldapdir.MemberUID || dc.Timeout != 2*time.Second {
		t.Errorf("directory config %+v", dc)
	}
}
