package auth

import (
	"context"
	"errors"
	"fmt"

	"github.com/hubd/hubd/core/config"
	"github.com/hubd/hubd/core/identity"
	"github.com/hubd/hubd/core/ldapdir"
	"github.com/hubd/hubd/internal/fsutil"
)

// msgDirectoryDown is the login page's answer when the directory does not
// answer within auth.ldap.timeout.
const msgDirectoryDown = "The directory that checks passwords is not answering. Try again in a minute, and tell the administrator if it keeps failing."

// ldapChecker checks a password by binding to an LDAP directory as the
// user (core/ldapdir), which bounds every wait by auth.ldap.timeout.
type ldapChecker struct {
	dir *ldapdir.Directory
}

// newLDAPChecker binds through the directory of auth.ldap. It reads the
// service account's password file now, so a wrong one fails the hub's
// start.
func newLDAPChecker(l config.LDAP) (*ldapChecker, error) {
	dc, err := LDAPDirectoryConfig(l)
	if err != nil {
		return nil, err
	}
	dir, err := ldapdir.New(dc)
	if err != nil {
		return nil, fmt.Errorf("auth.ldap: %w", err)
	}
	return &ldapChecker{dir: dir}, nil
}

// LDAPDirectoryConfig turns auth.ldap into the directory's settings,
// reading the CA and the service account's password from their files.
func LDAPDirectoryConfig(l config.LDAP) (ldapdir.Config, error) {
	tlsCfg, err := ldapdir.TLSConfig(l.CAFile)
	if err != nil {
		return ldapdir.Config{}, fmt.Errorf("auth.ldap.ca_file: %w", err)
	}
	var pw string
	if l.BindDN != "" {
		if pw, err = fsutil.ReadSecret("auth.ldap.bind_password_file", l.BindPasswordFile); err != nil {
			return ldapdir.Config{}, err
		}
	}
	return ldapdir.Config{
		Dialer:         ldapdir.Dialer{URLs: l.URLs, StartTLS: l.StartTLS, TLS: tlsCfg, DialTimeout: l.Timeout.D(), Timeout: l.Timeout.D()},
		UserDNTemplate: l.UserDNTemplate,
		BindDN:         l.BindDN, BindPassword: pw,
		UserBase: l.UserSearchBase, UserFilter: l.UserFilter, NameAttr: l.UsernameAttribute,
		Membership: ldapdir.Membership(l.GroupMembership), GroupBase: l.GroupSearchBase,
		Connections: l.Connections, Timeout: l.Timeout.D(),
	}, nil
}

// check returns the directory's account: its user name as the subject
// (the name people log in with, which the directory keeps unique), and
// each group by name and by DN, so that allowed and admin groups may be
// written either way.
func (c *ldapChecker) check(username, password string) (identity.External, error) {
	e, err := c.authenticate(username, password)
	if err != nil {
		return identity.External{}, err
	}
	groups := make([]string, 0, 2*len(e.Groups))
	for _, g := range e.Groups {
		groups = append(groups, g.Name, g.DN)
	}
	return identity.External{Method: config.MethodLDAP, Subject: e.Name, Name: e.Name, Email: e.Email, Groups: groups}, nil
}

// authenticate binds as the user and sorts the outcome into the login
// kinds: a wrong password and an unknown user alike, a directory that
// does not answer as such (never as a wrong password).
func (c *ldapChecker) authenticate(username, password string) (ldapdir.Entry, error) {
	// Not the request's context: like a PAM transaction, a bind that was
	// started finishes (and counts in the throttle) even when the client
	// stops waiting; the directory's timeout bounds it.
	e, err := c.dir.Authenticate(context.Background(), username, password)
	switch {
	case err == nil:
		return e, nil
	case errors.Is(err, ldapdir.ErrInvalidCredentials):
		return e, newError(ErrInvalidCredentials, msgInvalidCredentials, err)
	case errors.Is(err, ldapdir.ErrRefused):
		return e, newError(ErrAccountUnavailable, msgAccountRefused, err)
	case errors.Is(err, ldapdir.ErrUnavailable):
		return e, newError(ErrUnavailable, msgDirectoryDown, err)
	}
	return e, newError(ErrUnavailable, msgUnavailable, err)
}
