// Package ldaplab runs a real LDAP directory for tests: an OpenLDAP slapd of
// its own (configuration, certificates and database in a temporary
// directory) on free ports of 127.0.0.1, with plain LDAP + StartTLS on one
// port and LDAPS on another, and a tree of posix users and groups. With
// Options.NSS the host also resolves and logs in the directory's users
// through nslcd, libnss-ldapd and libpam-ldapd (see nss.go).
//
// The tree under dc=hubtest,dc=local:
//
//	ou=people    uid=hubtest-ldap1 (uidNumber 20001, password ldap1-pw-123)
//	             uid=hubtest-ldap2 (20002, ldap2-pw-456)
//	             uid=hubtest-ldap3 (20003, ldap3-pw-789; in no group)
//	             inetOrgPerson + posixAccount + shadowAccount, gidNumber 100
//	             (the local group users), home /home/<uid>, mail <uid>@example.test,
//	             memberOf: the ou=roles groups (memberof overlay)
//	ou=groups    posixGroup cn=hubtest-ldapgrp (gidNumber 20100, memberUid ldap1, ldap2)
//	             posixGroup cn=hubtest-ldapadm (20101, memberUid ldap1): the admin group
//	ou=roles     groupOfNames of the same names with member DNs
//	ou=services  cn=hubtest-bind: the service account (random password per run)
//
// Anonymous clients can only bind; bound ones read everything but
// userPassword. The admin (rootdn) writes.
package ldaplab

import (
	"crypto/rand"
	"crypto/sha1"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"

	"github.com/hubd/hubd/internal/testlab"
	"github.com/hubd/hubd/internal/testutil"
)

// BaseDN is the suffix of every directory.
const BaseDN = "dc=hubtest,dc=local"

// Options configure a directory.
type Options struct {
	// NSS points the host's name service and a PAM service at the directory
	// for the test's duration (root; one such directory on the host at a
	// time).
	NSS bool
}

// User is a posix account of the directory.
type User struct {
	Name     string
	UID      int
	Password string
	// GID is the primary group's gidNumber; 100 (users) when zero.
	GID int
	// Groups are names of the directory's groups (hubtest-ldapgrp,
	// hubtest-ldapadm) the user is a member of, both as memberUid of the
	// posixGroup and as member of the groupOfNames.
	Groups []string
	// Attrs are added to or replace the entry's attributes, e.g.
	// {"mail": {"x@example.test"}, "homeDirectory": {"/nonexistent"}}.
	Attrs map[string][]string
}

// DefaultUsers are the users every directory starts with.
func DefaultUsers() []User {
	return []User{
		{Name: "hubtest-ldap1", UID: 20001, Password: "ldap1-pw-123", Groups: []string{"hubtest-ldapgrp", "hubtest-ldapadm"}},
		{Name: "hubtest-ldap2", UID: 20002, Password: "ldap2-pw-456", Groups: []string{"hubtest-ldapgrp"}},
		{Name: "hubtest-ldap3", UID: 20003, Password: "ldap3-pw-789"},
	}
}

// groups are the directory's groups: name and gidNumber.
var groups = []struct {
	name string
	gid  int
}{{"hubtest-ldapgrp", 20100}, {"hubtest-ldapadm", 20101}}

// Directory is a running slapd.
type Directory struct {
	// URL is plain LDAP, where StartTLS works; LDAPSURL is LDAP over TLS.
	URL, LDAPSURL string
	// CAFile is the PEM file of the CA that signed the server's
	// certificate (for 127.0.0.1 and localhost).
	CAFile string
	// PeopleDN, GroupsDN (posixGroup) and RolesDN (groupOfNames) hold the
	// users and groups.
	PeopleDN, GroupsDN, RolesDN string
	// AdminDN and AdminPassword are the rootdn's.
	AdminDN, AdminPassword string
	// BindDN and BindPassword are the service account's, for searches.
	BindDN, BindPassword string
	// PAMService is the PAM service that logs in the directory's users
	// (and local ones), with Options.NSS.
	PAMService string

	dir   string
	slapd *testlab.Daemon
}

// Start runs a directory until the test ends.
func Start(t testing.TB, opt Options) *Directory {
	t.Helper()
	_, err := os.Stat("/usr/sbin/slapd")
	testutil.Require(t, err == nil, "slapd is not installed")
	d := &Directory{
		dir:      t.TempDir(),
		PeopleDN: "ou=people," + BaseDN, GroupsDN: "ou=groups," + BaseDN, RolesDN: "ou=roles," + BaseDN,
		AdminDN: "cn=admin," + BaseDN, AdminPassword: testlab.RandomHex(12),
		BindDN: "cn=hubtest-bind,ou=services," + BaseDN, BindPassword: testlab.RandomHex(12),
	}
	d.CAFile = filepath.Join(d.dir, "ca.pem")
	if err := writeCerts(d.dir); err != nil {
		t.Fatalf("ldaplab: %v", err)
	}
	if err := os.WriteFile(filepath.Join(d.dir, "slapd.conf"), d.slapdConf(), 0o600); err != nil {
		t.Fatal(err)
	}
	// slapd cannot take a listening socket from us: pick free ports and
	// try again when another process takes one first.
	for attempt := 1; ; attempt++ {
		err = d.startSlapd(t)
		if err == nil {
			break
		}
		if attempt == 3 || d.slapd == nil || !d.slapd.PortTaken() {
			t.Fatalf("ldaplab: %v", err)
		}
	}
	if err := d.load(); err != nil {
		t.Fatalf("ldaplab: %v", err)
	}
	if opt.NSS {
		d.startNSS(t)
	}
	return d
}

func (d *Directory) startSlapd(t testing.TB) error {
	ports, err := testlab.FreePorts(2)
	if err != nil {
		return err
	}
	d.URL = "ldap://127.0.0.1:" + strconv.Itoa(ports[0])
	d.LDAPSURL = "ldaps://127.0.0.1:" + strconv.Itoa(ports[1])
	data := filepath.Join(d.dir, "data")
	if err := os.RemoveAll(data); err != nil {
		return err
	}
	if err := os.Mkdir(data, 0o700); err != nil {
		return err
	}
	// -d keeps slapd in the foreground (our child, stopped by pid); "stats"
	// logs connections and operations to the log.
	cmd := exec.Command("/usr/sbin/slapd", "-d", "stats", "-f", filepath.Join(d.dir, "slapd.conf"),
		"-h", d.URL+"/ "+d.LDAPSURL+"/")
	d.slapd, err = testlab.StartDaemon(t, "slapd", filepath.Join(d.dir, "slapd.log"), cmd)
	if err != nil {
		return err
	}
	return d.slapd.WaitReady(10*time.Second, func() error {
		c, err := d.adminConn()
		if err == nil {
			c.Close()
		}
		return err
	})
}

func (d *Directory) slapdConf() []byte {
	return fmt.Appendf(nil, `# slapd of hubd's LDAP test lab (internal/testlab/ldaplab)
include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/nis.schema
include /etc/ldap/schema/inetorgperson.schema
modulepath /usr/lib/ldap
moduleload back_mdb
moduleload memberof
pidfile %[1]s/slapd.pid
argsfile %[1]s/slapd.args
TLSCACertificateFile %[1]s/ca.pem
TLSCertificateFile %[1]s/server.pem
TLSCertificateKeyFile %[1]s/server.key

database mdb
suffix "%[2]s"
rootdn "%[3]s"
rootpw %[4]s
directory %[1]s/data
index objectClass,uid,memberUid,member,cn eq
overlay memberof
memberof-group-oc groupOfNames
memberof-member-ad member
memberof-memberof-ad memberOf
memberof-refint TRUE
access to dn.base="" by * read
access to dn.base="cn=Subschema" by * read
access to attrs=userPassword by self write by anonymous auth by * none
access to * by users read by * none
`, d.dir, BaseDN, d.AdminDN, ssha(d.AdminPassword))
}

// ssha is the {SSHA} userPassword form of pw, as slappasswd writes it.
func ssha(pw string) string {
	salt := make([]byte, 8)
	rand.Read(salt)
	sum := sha1.Sum(append([]byte(pw), salt...))
	return "{SSHA}" + base64.StdEncoding.EncodeToString(append(sum[:], salt...))
}

func (d *Directory) adminConn() (*ldap.Conn, error) {
	c, err := ldap.DialURL(d.URL, ldap.DialWithDialer(&net.Dialer{Timeout: 2 * time.Second}))
	if err != nil {
		return nil, err
	}
	c.SetTimeout(10 * time.Second)
	if err := c.Bind(d.AdminDN, d.AdminPassword); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// UserDN is the DN of the user named name.
func (d *Directory) UserDN(name string) string {
	return "uid=" + ldap.EscapeDN(name) + "," + d.PeopleDN
}

// load adds the tree through slapd, so that the memberof overlay sees it.
func (d *Directory) load() error {
	c, err := d.adminConn()
	if err != nil {
		return err
	}
	defer c.Close()
	add := func(dn string, attrs map[string][]string) error {
		r := ldap.NewAddRequest(dn, nil)
		for k, v := range attrs {
			r.Attribute(k, v)
		}
		if err := c.Add(r); err != nil {
			return fmt.Errorf("add %s: %w", dn, err)
		}
		return nil
	}
	oc := func(cls ...string) []string { return cls }
	if err := add(BaseDN, map[string][]string{"objectClass": oc("dcObject", "organization"), "dc": {"hubtest"}, "o": {"hubtest"}}); err != nil {
		return err
	}
	for _, ou := range []string{"people", "groups", "roles", "services"} {
		if err := add("ou="+ou+","+BaseDN, map[string][]string{"objectClass": oc("organizationalUnit"), "ou": {ou}}); err != nil {
			return err
		}
	}
	if err := add(d.BindDN, map[string][]string{"objectClass": oc("organizationalRole", "simpleSecurityObject"),
		"cn": {"hubtest-bind"}, "userPassword": {ssha(d.BindPassword)}}); err != nil {
		return err
	}
	users := DefaultUsers()
	for _, u := range users {
		if err := add(d.UserDN(u.Name), userAttrs(u)); err != nil {
			return err
		}
	}
	for _, g := range groups {
		var uids, dns []string
		for _, u := range users {
			if slices.Contains(u.Groups, g.name) {
				uids, dns = append(uids, u.Name), append(dns, d.UserDN(u.Name))
			}
		}
		if err := add("cn="+g.name+","+d.GroupsDN, map[string][]string{"objectClass": oc("posixGroup"),
			"cn": {g.name}, "gidNumber": {strconv.Itoa(g.gid)}, "memberUid": uids}); err != nil {
			return err
		}
		if err := add("cn="+g.name+","+d.RolesDN, map[string][]string{"objectClass": oc("groupOfNames"),
			"cn": {g.name}, "member": dns}); err != nil {
			return err
		}
	}
	return nil
}

func userAttrs(u User) map[string][]string {
	gid := u.GID
	if gid == 0 {
		gid = 100
	}
	a := map[string][]string{
		"objectClass":   {"inetOrgPerson", "posixAccount", "shadowAccount"},
		"uid":           {u.Name},
		"cn":            {u.Name},
		"sn":            {u.Name},
		"uidNumber":     {strconv.Itoa(u.UID)},
		"gidNumber":     {strconv.Itoa(gid)},
		"homeDirectory": {"/home/" + u.Name},
		"loginShell":    {"/bin/bash"},
		"mail":          {u.Name + "@example.test"},
		"userPassword":  {ssha(u.Password)},
	}
	for k, v := range u.Attrs {
		a[k] = v
	}
	return a
}

// AddUser adds a user and makes it a member of its Groups.
func (d *Directory) AddUser(t testing.TB, u User) {
	t.Helper()
	c, err := d.adminConn()
	if err != nil {
		t.Fatalf("ldaplab: %v", err)
	}
	defer c.Close()
	r := ldap.NewAddRequest(d.UserDN(u.Name), nil)
	for k, v := range userAttrs(u) {
		r.Attribute(k, v)
	}
	if err := c.Add(r); err != nil {
		t.Fatalf("ldaplab: add user %q: %v", u.Name, err)
	}
	for _, g := range u.Groups {
		for _, m := range []struct{ dn, attr, value string }{
			{"cn=" + g + "," + d.GroupsDN, "memberUid", u.Name},
			{"cn=" + g + "," + d.RolesDN, "member", d.UserDN(u.Name)},
		} {
			mr := ldap.NewModifyRequest(m.dn, nil)
			mr.Add(m.attr, []string{m.value})
			if err := c.Modify(mr); err != nil {
				t.Fatalf("ldaplab: add %q to %s: %v", u.Name, m.dn, err)
			}
		}
	}
}

// TLSConfig trusts the directory's CA, for StartTLS and LDAPS.
func (d *Directory) TLSConfig(t testing.TB) *tls.Config {
	t.Helper()
	pem, err := os.ReadFile(d.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		t.Fatalf("ldaplab: no certificate in %s", d.CAFile)
	}
	return &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"}
}

// WriteBindPassword writes the service account's password to path (0600),
// as an operator would for hubd.
func (d *Directory) WriteBindPassword(path string) error {
	return os.WriteFile(path, []byte(d.BindPassword+"\n"), 0o600)
}

// Freeze stops slapd (SIGSTOP): connections are accepted but never
// answered, as with a directory that hangs. Thaw undoes it.
func (d *Directory) Freeze(t testing.TB) {
	t.Helper()
	d.slapd.Freeze(t)
}

// Thaw lets a frozen directory answer again.
func (d *Directory) Thaw(t testing.TB) {
	t.Helper()
	d.slapd.Thaw(t)
}

// Stop ends slapd before the test ends: connections are then refused. With
// Options.NSS the host keeps asking nslcd, which waits for the directory.
func (d *Directory) Stop(t testing.TB) {
	t.Helper()
	if err := d.slapd.Stop(); err != nil {
		t.Error(err)
	}
}
