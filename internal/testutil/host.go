// Package testutil has helpers for tests that use real host components:
// Linux users and groups created with the shadow tools, always named
// hubtest*, created idempotently and removed again.
package testutil

import (
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"strings"
	"testing"
)

// IsRoot reports whether the tests run as root.
func IsRoot() bool { return os.Geteuid() == 0 }

// NeedRoot stops a test that needs root. CI runs as root, so there the
// absence of root is a failure, not a reason to skip.
func NeedRoot(t testing.TB) {
	t.Helper()
	if IsRoot() {
		return
	}
	if os.Getenv("CI") != "" {
		t.Fatal("this test needs root and CI runs as root: run `make test` as root")
	}
	t.Skip("needs root (CI runs it as root)")
}

// Host creates users and groups and remembers them for Cleanup.
type Host struct {
	users  []string
	groups []string
}

func checkName(name string) error {
	if !strings.HasPrefix(name, "hubtest") {
		return fmt.Errorf("test accounts must be named hubtest*, got %q", name)
	}
	return nil
}

func run(name string, args ...string) error {
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// Group creates a group (or adopts an existing one).
func (h *Host) Group(name string) error {
	if err := checkName(name); err != nil {
		return err
	}
	h.groups = append(h.groups, name)
	if _, err := user.LookupGroup(name); err == nil {
		return nil
	}
	return run("groupadd", name)
}

// User creates a login user with a home directory, a password (none when
// empty) and supplementary groups. An existing user is reset to that state.
func (h *Host) User(name, password string, groups ...string) error {
	if err := checkName(name); err != nil {
		return err
	}
	h.users = append(h.users, name)
	if _, err := user.Lookup(name); err != nil {
		if err := run("useradd", "--create-home", "--shell", "/bin/bash", "--user-group", name); err != nil {
			return err
		}
	}
	if err := run("usermod", "--groups", strings.Join(groups, ","), name); err != nil {
		return err
	}
	if err := run("usermod", "--expiredate", "", "--unlock", name); err != nil && password != "" {
		// --unlock refuses accounts without a password; that is fine.
		_ = err
	}
	if password == "" {
		return run("passwd", "--delete", name)
	}
	cmd := exec.Command("chpasswd")
	cmd.Stdin = strings.NewReader(name + ":" + password + "\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("chpasswd %s: %w: %s", name, err, out)
	}
	return nil
}

// SystemUser creates a no-login system account (like the hub's own user).
func (h *Host) SystemUser(name string, groups ...string) error {
	if err := checkName(name); err != nil {
		return err
	}
	h.users = append(h.users, name)
	if _, err := user.Lookup(name); err != nil {
		if err := run("useradd", "--system", "--user-group", "--home-dir", "/var/lib/"+name,
			"--create-home", "--shell", "/usr/sbin/nologin", name); err != nil {
			return err
		}
	}
	return run("usermod", "--groups", strings.Join(groups, ","), name)
}

// Adopt makes Cleanup remove a user that the code under test creates. A
// leftover of the same name (from a run that was killed before its
// cleanup) is removed first, so the code under test starts from nothing.
func (h *Host) Adopt(name string) error {
	if err := checkName(name); err != nil {
		return err
	}
	h.users = append(h.users, name)
	if _, err := user.Lookup(name); err != nil {
		return nil
	}
	_ = exec.Command("pkill", "-KILL", "-u", name).Run()
	// userdel complains (and fails) about a missing home or mail spool;
	// what matters is that the account is gone.
	err := run("userdel", "--remove", "--force", name)
	if _, lerr := user.Lookup(name); lerr == nil {
		return fmt.Errorf("removing the leftover account %s: %w", name, err)
	}
	return nil
}

// Cleanup removes every user (with its home and mail) and group it created.
// It kills the users' leftover processes first so userdel cannot refuse.
func (h *Host) Cleanup() {
	for _, u := range h.users {
		_ = exec.Command("pkill", "-KILL", "-u", u).Run()
		_ = exec.Command("userdel", "--remove", "--force", u).Run()
	}
	for _, g := range h.groups {
		_ = exec.Command("groupdel", g).Run()
	}
	h.users, h.groups = nil, nil
}

// Require stops a test that lacks a component CI installs (a package, a
// tool): under CI a missing component is a failure — an install step is
// missing — and elsewhere a skip.
func Require(t testing.TB, ok bool, format string, args ...any) {
	t.Helper()
	if ok {
		return
	}
	msg := fmt.Sprintf(format, args...)
	if os.Getenv("CI") != "" {
		t.Fatalf("%s: CI installs it (scripts/deps.sh test)", msg)
	}
	t.Skip(msg)
}
