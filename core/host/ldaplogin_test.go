package host

import (
	"os"
	"os/user"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hubd/hubd/core/config"
	"github.com/hubd/hubd/internal/testlab/ldaplab"
)

// doctor's look at the LDAP login: the password file (the hub's alone),
// the directory answering, the service account binding; each fault named
// with its fix.
func TestCheckLDAPLogin(t *testing.T) {
	d := ldaplab.Start(t, ldaplab.Options{})
	me, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	pwFile := filepath.Join(t.TempDir(), "bindpw")
	if err := d.WriteBindPassword(pwFile); err != nil {
		t.Fatal(err)
	}
	o := Options{Config: config.Default(), ConfigPath: "/etc/hubd/hubd.toml", HubUser: me.Username}
	o.Config.Auth.Methods = []string{config.MethodPAM, config.MethodLDAP}
	l := &o.Config.Auth.LDAP
	l.URLs, l.StartTLS, l.CAFile, l.BindDN, l.BindPasswordFile = []string{d.LDAPSURL}, false, d.CAFile, d.BindDN, pwFile
	l.UserSearchBase, l.GroupSearchBase, l.Timeout = d.PeopleDN, d.GroupsDN, config.Duration(time.Second)
	check := func() (secret, dir Finding) {
		t.Helper()
		fs := o.checkLDAPLogin(t.Context())
		if len(fs) == 1 {
			return fs[0], Finding{}
		}
		if len(fs) != 2 {
			t.Fatalf("findings %+v", fs)
		}
		return fs[0], fs[1]
	}
	secret, dir := check()
	if secret.Level != OK || dir.Level != OK || !strings.Contains(dir.Message, "the service account "+d.BindDN+" binds") {
		t.Errorf("a working setup: %+v %+v", secret, dir)
	}

	// The groups the rules name: by cn and by DN, one misspelt.
	l.AllowedGroups = []string{"hubtest-ldapgrp", "hubtest-ldapgrq"}
	l.AdminGroups = []string{"cn=hubtest-ldapadm," + d.GroupsDN}
	fs := o.checkLDAPLogin(t.Context())
	if len(fs) != 3 || fs[2].Level != Fail || !strings.Contains(fs[2].Message, "not in the directory: hubtest-ldapgrq (") ||
		!strings.Contains(fs[2].Fix, "a group's cn under "+d.GroupsDN) {
		t.Errorf("a misspelt allowed group: %+v", fs)
	}
	l.AllowedGroups = l.AllowedGroups[:1]
	if fs := o.checkLDAPLogin(t.Context()); len(fs) != 3 || fs[2].Level != OK || fs[2].Message != "2 of 2 found" {
		t.Errorf("groups that exist: %+v", fs)
	}
	l.AllowedGroups, l.AdminGroups = nil, nil

	o.HubUser = "nobody"
	if secret, _ := check(); secret.Level != Fail || !strings.Contains(secret.Message, "the hub (nobody) cannot read it") {
		t.Errorf("password file of another account: %+v", secret)
	}
	o.HubUser = me.Username
	if err := os.Chmod(pwFile, 0o640); err != nil {
		t.Fatal(err)
	}
	if secret, _ := check(); secret.Level != Fail || !strings.Contains(secret.Fix, "chmod 600 "+pwFile) {
		t.Errorf("group-readable password file: %+v", secret)
	}
	if err := os.Chmod(pwFile, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(pwFile, []byte("not-the-password\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, dir := check(); dir.Level != Fail || !strings.Contains(dir.Fix, "auth.ldap.bind_dn and the password in "+pwFile) {
		t.Errorf("wrong service password: %+v", dir)
	}
	if err := d.WriteBindPassword(pwFile); err != nil {
		t.Fatal(err)
	}
	d.Stop(t)
	if _, dir := check(); dir.Level != Fail || !strings.Contains(dir.Message, "did not answer") || !strings.Contains(dir.Fix, "start the directory server") {
		t.Errorf("directory stopped: %+v", dir)
	}
	o.Config.Auth.Methods = []string{config.MethodPAM}
	if fs := o.checkLDAPLogin(t.Context()); len(fs) != 0 {
		t.Errorf("without the ldap method: %+v", fs)
	}
}
