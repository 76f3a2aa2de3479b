package ldaplab_test

import (
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"maps"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"

	"github.com/hubd/hubd/internal/testlab/ldaplab"
	"github.com/hubd/hubd/internal/testutil"
)

func dial(t *testing.T, u string, opts ...ldap.DialOpt) *ldap.Conn {
	t.Helper()
	c, err := ldap.DialURL(u, append(opts, ldap.DialWithDialer(&net.Dialer{Timeout: 2 * time.Second}))...)
	if err != nil {
		t.Fatal(err)
	}
	c.SetTimeout(5 * time.Second)
	t.Cleanup(func() { c.Close() })
	return c
}

// search returns the values of attr of the entries filter finds under base.
func search(t *testing.T, c *ldap.Conn, base, filter, attr string) []string {
	t.Helper()
	res, err := c.Search(ldap.NewSearchRequest(base, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases, 0, 5, false,
		filter, []string{attr}, nil))
	if err != nil {
		t.Fatalf("search %s under %s: %v", filter, base, err)
	}
	var vals []string
	for _, e := range res.Entries {
		vals = append(vals, e.GetAttributeValues(attr)...)
	}
	slices.Sort(vals)
	return vals
}

func TestDirectory(t *testing.T) {
	start := time.Now()
	d := ldaplab.Start(t, ldaplab.Options{})
	t.Logf("directory up in %s at %s and %s", time.Since(start).Round(time.Millisecond), d.URL, d.LDAPSURL)

	t.Run("bind", func(t *testing.T) {
		c := dial(t, d.URL)
		if err := c.Bind(d.UserDN("hubtest-ldap1"), "ldap1-pw-123"); err != nil {
			t.Errorf("bind with the right password: %v", err)
		}
		if err := c.Bind(d.UserDN("hubtest-ldap1"), "wrong"); !ldap.IsErrorWithCode(err, ldap.LDAPResultInvalidCredentials) {
			t.Errorf("bind with a wrong password: %v, want invalid credentials", err)
		}
		// Anonymous clients do not even see the base entry.
		_, err := dial(t, d.URL).Search(ldap.NewSearchRequest(ldaplab.BaseDN, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases,
			0, 5, false, "(uid=hubtest-ldap1)", []string{"uid"}, nil))
		if !ldap.IsErrorWithCode(err, ldap.LDAPResultNoSuchObject) {
			t.Errorf("anonymous search: %v, want no such object", err)
		}
	})

	t.Run("starttls", func(t *testing.T) {
		c := dial(t, d.URL)
		if err := c.StartTLS(&tls.Config{ServerName: "127.0.0.1"}); err == nil {
			t.Error("StartTLS without the lab's CA succeeded")
		}
		c = dial(t, d.URL)
		if err := c.StartTLS(d.TLSConfig(t)); err != nil {
			t.Fatal(err)
		}
		if err := c.Bind(d.UserDN("hubtest-ldap2"), "ldap2-pw-456"); err != nil {
			t.Errorf("bind after StartTLS: %v", err)
		}
	})

	t.Run("ldaps search as the service account", func(t *testing.T) {
		pwFile := filepath.Join(t.TempDir(), "bindpw")
		if err := d.WriteBindPassword(pwFile); err != nil {
			t.Fatal(err)
		}
		pw, err := os.ReadFile(pwFile)
		if fi, _ := os.Stat(pwFile); err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("bind password file: %v, mode %v", err, fi.Mode())
		}
		c := dial(t, d.LDAPSURL, ldap.DialWithTLSConfig(d.TLSConfig(t)))
		if err := c.Bind(d.BindDN, strings.TrimSpace(string(pw))); err != nil {
			t.Fatal(err)
		}
		want := []string{"cn=hubtest-ldapadm," + d.RolesDN, "cn=hubtest-ldapgrp," + d.RolesDN}
		if got := search(t, c, d.PeopleDN, "(uid=hubtest-ldap1)", "memberOf"); !slices.Equal(got, want) {
			t.Errorf("memberOf %q, want %q", got, want)
		}
		if got := search(t, c, d.GroupsDN, "(&(objectClass=posixGroup)(cn=hubtest-ldapgrp))", "memberUid"); !slices.Equal(got, []string{"hubtest-ldap1", "hubtest-ldap2"}) {
			t.Errorf("memberUid %q", got)
		}
		if got := search(t, c, d.PeopleDN, "(uid=hubtest-ldap3)", "memberOf"); len(got) != 0 {
			t.Errorf("hubtest-ldap3 is a member of %q, want no group", got)
		}
		if got := search(t, c, d.PeopleDN, "(uid=hubtest-ldap1)", "userPassword"); len(got) != 0 {
			t.Error("the service account reads userPassword")
		}
	})

	t.Run("added user", func(t *testing.T) {
		d.AddUser(t, ldaplab.User{Name: "hubtest-ldap4", UID: 20004, Password: "ldap4-pw", Groups: []string{"hubtest-ldapgrp"},
			Attrs: map[string][]string{"cn": {"Ünïcode Nämé"}}})
		c := dial(t, d.URL)
		if err := c.Bind(d.UserDN("hubtest-ldap4"), "ldap4-pw"); err != nil {
			t.Fatal(err)
		}
		if got := search(t, c, d.RolesDN, "(member="+ldap.EscapeFilter(d.UserDN("hubtest-ldap4"))+")", "cn"); !slices.Equal(got, []string{"hubtest-ldapgrp"}) {
			t.Errorf("groupOfNames with hubtest-ldap4: %q", got)
		}
	})

	t.Run("freeze", func(t *testing.T) {
		c := dial(t, d.URL)
		d.Freeze(t)
		c.SetTimeout(300 * time.Millisecond)
		err := c.Bind(d.UserDN("hubtest-ldap1"), "ldap1-pw-123")
		if !ldap.IsErrorWithCode(err, ldap.ErrorNetwork) {
			t.Errorf("bind against a frozen directory: %v, want a timeout", err)
		}
		d.Thaw(t)
		if err := dial(t, d.URL).Bind(d.UserDN("hubtest-ldap1"), "ldap1-pw-123"); err != nil {
			t.Errorf("after Thaw: %v", err)
		}
	})

	t.Run("stop", func(t *testing.T) {
		d.Stop(t)
		for _, raw := range []string{d.URL, d.LDAPSURL} {
			u, _ := url.Parse(raw)
			l, err := net.Listen("tcp", u.Host)
			if err != nil {
				t.Errorf("port of %s still taken after Stop: %v", raw, err)
				continue
			}
			l.Close()
		}
	})
}

// hostFiles are checksums of the host files that the NSS mode changes or
// must not change.
func hostFiles(t *testing.T) map[string]string {
	t.Helper()
	files := []string{"/etc/nsswitch.conf", "/etc/nslcd.conf", "/etc/pam.d/hubtest-ldap"}
	// The host's own PAM files; other test packages running meanwhile add
	// and remove hubtest-* services of their own.
	pam, err := filepath.Glob("/etc/pam.d/*")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range pam {
		if !strings.HasPrefix(filepath.Base(f), "hubtest") {
			files = append(files, f)
		}
	}
	sums := map[string]string{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if errors.Is(err, os.ErrNotExist) {
			sums[f] = "absent"
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		s := sha256.Sum256(b)
		sums[f] = hex.EncodeToString(s[:])
	}
	return sums
}

func output(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Errorf("%s %s: %v: %s", name, strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

func pamLogin(service, user, password string) error {
	cmd := exec.Command("pamtester", service, user, "authenticate", "acct_mgmt")
	cmd.Stdin = strings.NewReader(password + "\n")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return errors.New(strings.TrimSpace(string(out)))
	}
	return nil
}

func TestDirectoryNSS(t *testing.T) {
	testutil.NeedRoot(t)
	before := hostFiles(t)
	t.Run("host", func(t *testing.T) {
		start := time.Now()
		d := ldaplab.Start(t, ldaplab.Options{NSS: true})
		t.Logf("directory with NSS and PAM up in %s", time.Since(start).Round(time.Millisecond))
		if got, want := output(t, "id", "hubtest-ldap1"),
			"uid=20001(hubtest-ldap1) gid=100(users) groups=100(users),20100(hubtest-ldapgrp),20101(hubtest-ldapadm)"; got != want {
			t.Errorf("id hubtest-ldap1:\n got %s\nwant %s", got, want)
		}
		if got, want := output(t, "getent", "group", "hubtest-ldapgrp"), "hubtest-ldapgrp:*:20100:hubtest-ldap1,hubtest-ldap2"; got != want {
			t.Errorf("getent group: %q, want %q", got, want)
		}
		if got := output(t, "getent", "passwd", "root"); !strings.HasPrefix(got, "root:x:0:0:") {
			t.Errorf("getent passwd root: %q", got)
		}
		if err := pamLogin(d.PAMService, "hubtest-ldap1", "ldap1-pw-123"); err != nil {
			t.Errorf("PAM login of hubtest-ldap1: %v", err)
		}
		if err := pamLogin(d.PAMService, "hubtest-ldap1", "wrong"); err == nil {
			t.Error("PAM login of hubtest-ldap1 with a wrong password succeeded")
		}
	})
	after := hostFiles(t)
	if !maps.Equal(before, after) {
		for f := range maps.Keys(after) {
			if before[f] != after[f] {
				t.Errorf("%s changed", f)
			}
		}
		for f := range maps.Keys(before) {
			if _, ok := after[f]; !ok {
				t.Errorf("%s is gone", f)
			}
		}
	}
	if err := exec.Command("getent", "passwd", "hubtest-ldap1").Run(); err == nil {
		t.Error("hubtest-ldap1 still resolves after the test")
	}
}
