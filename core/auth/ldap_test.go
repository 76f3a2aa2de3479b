package auth

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hubd/hubd/core/config"
	"github.com/hubd/hubd/core/identity"
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
		a.Methods = []string{config.MethodLDAP}
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
	l, err := New(cfg, newLogger(&logBuffer{}), nil)
	if err != nil {
		t.Fatal(err)
	}
	if l.pool.perAddr != perAddrShare(cfg.LDAP.Connections) || cap(l.pool.workers) != cfg.LDAP.Connections {
		t.Errorf("LDAP alone: %d workers, want auth.ldap.connections (%d)", cap(l.pool.workers), cfg.LDAP.Connections)
	}
	ext, err := l.Check(t.Context(), "HubTest-LDAP1", "ldap1-pw-123", "192.0.2.1")
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(ext.Groups)
	want := []string{"cn=hubtest-ldapadm," + d.GroupsDN, "cn=hubtest-ldapgrp," + d.GroupsDN, "hubtest-ldapadm", "hubtest-ldapgrp"}
	if ext.Method != config.MethodLDAP || ext.Name != "hubtest-ldap1" || ext.Subject != "hubtest-ldap1" ||
		ext.Email != "hubtest-ldap1@example.test" || !slices.Equal(ext.Groups, want) {
		t.Errorf("identity %+v, want groups %q", ext, want)
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
	l, err := New(cfg, newLogger(&logBuffer{}), nil)
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
	if _, err := New(cfg, newLogger(&logBuffer{}), nil); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Errorf("world-readable password file: %v", err)
	}
	cfg = ldapConfig(t, d)
	cfg.LDAP.CAFile = cfg.LDAP.BindPasswordFile
	if _, err := New(cfg, newLogger(&logBuffer{}), nil); err == nil || !strings.Contains(err.Error(), "no PEM certificate") {
		t.Errorf("CA file without a certificate: %v", err)
	}
	cfg = ldapConfig(t, d)
	cfg.LDAP.BindPasswordFile = filepath.Join(t.TempDir(), "missing")
	if _, err := New(cfg, newLogger(&logBuffer{}), nil); err == nil || !strings.Contains(err.Error(), "auth.ldap.bind_password_file") {
		t.Errorf("missing password file: %v", err)
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

// firstOf: the first source that accepts the password wins, later ones
// are not asked; when none does, the most telling failure is the answer.
func TestFirstOf(t *testing.T) {
	ok := func(method string) passwordChecker {
		return checkerFunc(func(name, _ string) (identity.External, error) {
			return identity.External{Method: method, Name: name}, nil
		})
	}
	fail := func(kind error) passwordChecker {
		return checkerFunc(func(string, string) (identity.External, error) { return identity.External{}, newError(kind, "X.", nil) })
	}
	never := checkerFunc(func(string, string) (identity.External, error) {
		t.Error("a later source was asked after an earlier one accepted")
		return identity.External{}, nil
	})
	if ext, err := (firstOf{ok("pam"), never}).check("a", "p"); err != nil || ext.Method != "pam" {
		t.Errorf("first accepts: %+v %v", ext, err)
	}
	if ext, err := (firstOf{fail(ErrInvalidCredentials), ok("ldap")}).check("a", "p"); err != nil || ext.Method != "ldap" {
		t.Errorf("second accepts: %+v %v", ext, err)
	}
	for _, c := range []struct {
		chain firstOf
		want  error
	}{
		{firstOf{fail(ErrInvalidCredentials), fail(ErrInvalidCredentials)}, ErrInvalidCredentials},
		{firstOf{fail(ErrInvalidCredentials), fail(ErrUnavailable)}, ErrUnavailable},
		{firstOf{fail(ErrUnavailable), fail(ErrInvalidCredentials)}, ErrUnavailable},
		{firstOf{fail(ErrAccountUnavailable), fail(ErrUnavailable)}, ErrAccountUnavailable},
		{firstOf{fail(ErrCannotVerify), fail(ErrInvalidCredentials)}, ErrCannotVerify},
	} {
		if _, err := c.chain.check("a", "p"); !errors.Is(err, c.want) {
			t.Errorf("chain: %v, want %v", err, c.want)
		}
	}
}

type checkerFunc func(name, password string) (identity.External, error)

func (f checkerFunc) check(name, password string) (identity.External, error) {
	return f(name, password)
}

// benchLDAP is a LDAP-only login whose throttle never stops anyone, so
// the directory and the pool are what is measured.
func benchLDAP(b *testing.B) *Login {
	b.Helper()
	cfg := ldapConfig(b, ldaplab.Start(b, ldaplab.Options{}))
	cfg.FailuresPerUser, cfg.FailuresPerAddress = 1<<30, 1<<30
	l, err := New(cfg, slog.New(slog.DiscardHandler), nil)
	if err != nil {
		b.Fatal(err)
	}
	return l
}

// BenchmarkLoginLDAP: correct-password logins through the LDAP method
// (search-then-bind over StartTLS, groups by memberUid) against slapd, as
// many at once as auth.ldap.connections (4) allows.
func BenchmarkLoginLDAP(b *testing.B) {
	l := benchLDAP(b)
	var client atomic.Int64
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		addr := fmt.Sprintf("192.0.2.%d", client.Add(1))
		for pb.Next() {
			if _, err := l.Check(context.Background(), "hubtest-ldap1", "ldap1-pw-123", addr); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "logins/s")
}

// BenchmarkLoginLDAPUnderWrongPasswords: one person's correct logins, one
// after another, while 50 clients (each from its own address, none
// throttled) send wrong passwords as fast as they are answered. Reports
// the correct logins' median and 99th percentile.
func BenchmarkLoginLDAPUnderWrongPasswords(b *testing.B) {
	l := benchLDAP(b)
	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var wrong atomic.Int64
	for i := range 50 {
		wg.Go(func() {
			addr := fmt.Sprintf("198.51.100.%d", i+1)
			for ctx.Err() == nil {
				if _, err := l.Check(ctx, "hubtest-ldap2", "wrong", addr); errors.Is(err, ErrInvalidCredentials) {
					wrong.Add(1)
				}
			}
		})
	}
	took := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for range b.N {
		start := time.Now()
		if _, err := l.Check(context.Background(), "hubtest-ldap1", "ldap1-pw-123", "203.0.113.1"); err != nil {
			b.Fatal(err)
		}
		took = append(took, time.Since(start))
	}
	b.StopTimer()
	elapsed := b.Elapsed()
	stop()
	wg.Wait()
	slices.Sort(took)
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	b.ReportMetric(ms(took[len(took)/2]), "p50-ms")
	b.ReportMetric(ms(took[(len(took)*99)/100]), "p99-ms")
	b.ReportMetric(float64(wrong.Load())/elapsed.Seconds(), "wrong/s")
}
