package ldapdir_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hubd/hubd/core/ldapdir"
	"github.com/hubd/hubd/internal/testlab/ldaplab"
)

const (
	user1, pw1 = "hubtest-ldap1", "ldap1-pw-123" // hubtest-ldapgrp and hubtest-ldapadm
	user3, pw3 = "hubtest-ldap3", "ldap3-pw-789" // no group
)

// configs are the ways a directory is set up for the hub: a DN template
// over plain LDAP, search-then-bind with StartTLS, and over LDAPS, each
// with one of the three kinds of membership.
func configs(t *testing.T, d *ldaplab.Directory) map[string]ldapdir.Config {
	t.Helper()
	tlsCfg, err := ldapdir.TLSConfig(d.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	base := ldapdir.Dialer{DialTimeout: 2 * time.Second, Timeout: 2 * time.Second}
	plain, starttls, ldaps := base, base, base
	plain.URLs = []string{d.URL}
	starttls.URLs, starttls.StartTLS, starttls.TLS = []string{d.URL}, true, tlsCfg
	ldaps.URLs, ldaps.TLS = []string{d.LDAPSURL}, tlsCfg
	search := func(dialer ldapdir.Dialer, m ldapdir.Membership, groups string) ldapdir.Config {
		return ldapdir.Config{Dialer: dialer, BindDN: d.BindDN, BindPassword: d.BindPassword,
			UserBase: d.PeopleDN, UserFilter: "(&(objectClass=posixAccount)(uid={username}))",
			Membership: m, GroupBase: groups, Connections: 2, Timeout: 5 * time.Second}
	}
	return map[string]ldapdir.Config{
		"template, memberOf": {Dialer: plain, UserDNTemplate: "uid={username}," + d.PeopleDN,
			Membership: ldapdir.MemberOf, Connections: 2, Timeout: 5 * time.Second},
		"search, StartTLS, memberUid": search(starttls, ldapdir.MemberUID, d.GroupsDN),
		"search, LDAPS, member":       search(ldaps, ldapdir.Member, d.RolesDN),
	}
}

func groupNames(e ldapdir.Entry) []string {
	var out []string
	for _, g := range e.Groups {
		out = append(out, g.Name)
	}
	slices.Sort(out)
	return out
}

func TestAuthenticate(t *testing.T) {
	d := ldaplab.Start(t, ldaplab.Options{})
	// Names that need escaping, in a DN and in a filter, belong to real
	// users: their logins work only if both are escaped right.
	odd := []string{"hubtest-ldap+x,y", `hubtest-a\b"c`, "hubtest-ldap(4)*"}
	for i, name := range odd {
		d.AddUser(t, ldaplab.User{Name: name, UID: 20010 + i, Password: "odd-pw", Groups: []string{"hubtest-ldapgrp"}})
	}
	for what, cfg := range configs(t, d) {
		t.Run(what, func(t *testing.T) {
			dir, err := ldapdir.New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer dir.Close()
			ctx := t.Context()
			e, err := dir.Authenticate(ctx, user1, pw1)
			if err != nil {
				t.Fatalf("right password: %v", err)
			}
			if e.DN != d.UserDN(user1) || e.Name != user1 || e.Email != user1+"@example.test" {
				t.Errorf("entry %+v", e)
			}
			if got := groupNames(e); !slices.Equal(got, []string{"hubtest-ldapadm", "hubtest-ldapgrp"}) {
				t.Errorf("groups %q", got)
			}
			if e, err := dir.Authenticate(ctx, user3, pw3); err != nil || len(e.Groups) != 0 {
				t.Errorf("a user in no group: %+v, %v", e, err)
			}
			for _, name := range odd {
				if e, err := dir.Authenticate(ctx, name, "odd-pw"); err != nil || e.Name != name || !slices.Equal(groupNames(e), []string{"hubtest-ldapgrp"}) {
					t.Errorf("user %q: %+v, %v", name, e, err)
				}
			}
			for _, c := range []struct{ what, name, pw string }{
				{"wrong password", user1, "wrong"},
				{"unknown user", "hubtest-nobody", pw1},
				{"another user's password", user3, pw1},
				{"empty password", user1, ""},
				// Injections: each would find or name hubtest-ldap1 (or
				// every user) if the name reached the filter or DN as is.
				{"filter wildcard", "*", pw1},
				{"filter injection", user1 + ")(uid=*", pw1},
				{"filter injection, closing", "*)(objectClass=*", pw1},
				{"NUL", user1 + "\x00", pw1},
				{"escaped NUL", user1 + `\00`, pw1},
				{"DN injection", user1 + "," + d.PeopleDN, pw1},
				{"prefix wildcard", "hubtest-ldap1*", pw1},
			} {
				_, err := dir.Authenticate(ctx, c.name, c.pw)
				if !errors.Is(err, ldapdir.ErrInvalidCredentials) {
					t.Errorf("%s (%q): %v, want wrong credentials", c.what, c.name, err)
				}
			}
		})
	}
}

// An empty password never reaches the directory: as a simple bind it
// would be an unauthenticated one, which servers answer with success.
func TestEmptyPasswordIsNeverSent(t *testing.T) {
	p := startProxy(t, "127.0.0.1:1") // nothing needs to answer
	dir, err := ldapdir.New(ldapdir.Config{Dialer: ldapdir.Dialer{URLs: []string{p.url}, DialTimeout: time.Second, Timeout: time.Second},
		UserDNTemplate: "uid={username},dc=x", Membership: ldapdir.MemberOf, Connections: 1, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dir.Authenticate(t.Context(), user1, ""); !errors.Is(err, ldapdir.ErrInvalidCredentials) {
		t.Errorf("empty password: %v", err)
	}
	if n := p.accepted.Load(); n != 0 {
		t.Errorf("an empty password opened %d connections to the directory", n)
	}
}

func TestNewRefusesIncompleteConfig(t *testing.T) {
	ok := ldapdir.Config{Dialer: ldapdir.Dialer{URLs: []string{"ldap://127.0.0.1"}}, UserDNTemplate: "uid={username},dc=x",
		Membership: ldapdir.MemberOf, Connections: 1, Timeout: time.Second}
	if _, err := ldapdir.New(ok); err != nil {
		t.Fatal(err)
	}
	for what, change := range map[string]func(*ldapdir.Config){
		"no URL":                       func(c *ldapdir.Config) { c.URLs = nil },
		"http URL":                     func(c *ldapdir.Config) { c.URLs = []string{"http://x"} },
		"template without placeholder": func(c *ldapdir.Config) { c.UserDNTemplate = "uid=x,dc=x" },
		"search without service":       func(c *ldapdir.Config) { c.UserDNTemplate, c.UserBase, c.UserFilter = "", "dc=x", "(uid={username})" },
		"filter without placeholder": func(c *ldapdir.Config) {
			c.UserDNTemplate, c.UserBase, c.UserFilter, c.BindDN, c.BindPassword = "", "dc=x", "(uid=x)", "cn=s", "p"
		},
		"service with empty password": func(c *ldapdir.Config) { c.BindDN = "cn=s" },
		"memberUid without base":      func(c *ldapdir.Config) { c.Membership = ldapdir.MemberUID },
		"unknown membership":          func(c *ldapdir.Config) { c.Membership = "uniqueMember" },
		"no connections":              func(c *ldapdir.Config) { c.Connections = 0 },
	} {
		c := ok
		change(&c)
		if _, err := ldapdir.New(c); err == nil {
			t.Errorf("%s: accepted", what)
		}
	}
}

// A directory that is stopped or hangs costs a login at most the
// timeout, and the answer says the directory did not answer, never that
// the password was wrong.
func TestDirectoryDownOrHung(t *testing.T) {
	d := ldaplab.Start(t, ldaplab.Options{})
	cfg := configs(t, d)["search, StartTLS, memberUid"]
	cfg.Timeout = 700 * time.Millisecond
	dir, err := ldapdir.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer dir.Close()
	if _, err := dir.Authenticate(t.Context(), user1, pw1); err != nil {
		t.Fatal(err)
	}
	d.Freeze(t)
	// Both the idle connection and a new one hang.
	for range 2 {
		_, err := dir.Authenticate(context.Background(), user1, pw1)
		if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, ldapdir.ErrUnavailable) || errors.Is(err, ldapdir.ErrInvalidCredentials) {
			t.Errorf("frozen directory: %v, want the timeout", err)
		}
	}
	d.Thaw(t)
	if _, err := dir.Authenticate(t.Context(), user1, pw1); err != nil {
		t.Errorf("after the directory thawed: %v", err)
	}
	d.Stop(t)
	_, err = dir.Authenticate(context.Background(), user1, pw1)
	if !errors.Is(err, ldapdir.ErrUnavailable) || errors.Is(err, ldapdir.ErrInvalidCredentials) || !strings.Contains(err.Error(), d.URL) {
		t.Errorf("stopped directory: %v", err)
	}
}

// proxy forwards TCP connections to a directory, counting them, so a
// test sees how many connections the hub opens and can cut them.
type proxy struct {
	url            string
	accepted, live atomic.Int64
	peak           atomic.Int64
	mu             sync.Mutex
	conns          []net.Conn
}

func startProxy(t *testing.T, target string) *proxy {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	p := &proxy{url: "ldap://" + l.Addr().String()}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			p.accepted.Add(1)
			n := p.live.Add(1)
			for old := p.peak.Load(); n > old && !p.peak.CompareAndSwap(old, n); old = p.peak.Load() {
			}
			up, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				p.live.Add(-1)
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, up)
			p.mu.Unlock()
			go func() {
				go io.Copy(up, c)
				io.Copy(c, up)
				c.Close()
				up.Close()
				p.live.Add(-1)
			}()
		}
	}()
	return p
}

// cut closes every proxied connection, as a directory restart would.
func (p *proxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

// Connections are bounded, reused across logins, and a connection the
// server closed while idle costs a retry, not a failed login.
func TestConnectionPool(t *testing.T) {
	d := ldaplab.Start(t, ldaplab.Options{})
	u, _ := url.Parse(d.URL)
	p := startProxy(t, u.Host)
	cfg := configs(t, d)["search, StartTLS, memberUid"]
	cfg.URLs = []string{p.url}
	cfg.Connections = 3
	dir, err := ldapdir.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer dir.Close()
	var wg sync.WaitGroup
	var failed atomic.Int64
	for i := range 40 {
		wg.Go(func() {
			pw := pw1
			if i%2 == 0 {
				pw = "wrong"
			}
			if _, err := dir.Authenticate(t.Context(), user1, pw); (err != nil) != (pw == "wrong") {
				t.Errorf("login %d: %v", i, err)
				failed.Add(1)
			}
		})
	}
	wg.Wait()
	if peak := p.peak.Load(); peak > 3 || peak < 1 {
		t.Errorf("peak of %d connections open at once, want at most 3", peak)
	}
	if n := p.accepted.Load(); n > 3 {
		t.Errorf("40 logins opened %d connections; the pool keeps at most 3", n)
	}
	p.cut()
	before := p.accepted.Load()
	if _, err := dir.Authenticate(t.Context(), user1, pw1); err != nil {
		t.Errorf("after the server closed the idle connections: %v", err)
	}
	if p.accepted.Load() <= before {
		t.Error("no new connection after the old ones were cut")
	}
}
