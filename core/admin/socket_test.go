package admin_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hubd/hubd/core/admin"
	"github.com/hubd/hubd/core/admin/client"
	"github.com/hubd/hubd/core/admin/wire"
	"github.com/hubd/hubd/core/config"
	"github.com/hubd/hubd/core/server"
	"github.com/hubd/hubd/core/store"
	"github.com/hubd/hubd/internal/testutil"
)

// The real-socket tests use real accounts, all named hubtest-adm*.
const (
	grpAdmins  = "hubtest-adm"
	grpMembers = "hubtest-adm-members"
	usrAdmin   = "hubtest-adm-admin"
	usrMember  = "hubtest-adm-member"
	usrOut     = "hubtest-adm-outsider"
	usrHub     = "hubtest-adm-hub" // the unprivileged hub account, in neither group
)

// testUsers creates the accounts once, on first use; TestMain removes
// them whatever the tests did.
type testUsers struct {
	once sync.Once
	err  error
	h    testutil.Host
	dir  string // 0755, holds a copy of the test binary the accounts can run
	bin  string
}

var users testUsers

func (u *testUsers) get(t *testing.T) *testUsers {
	t.Helper()
	testutil.NeedRoot(t)
	if _, err := exec.LookPath("setpriv"); err != nil {
		t.Fatalf("setpriv (util-linux) is needed: %v", err)
	}
	u.once.Do(func() { u.err = u.setup() })
	if u.err != nil {
		t.Fatalf("test accounts: %v", u.err)
	}
	return u
}

func (u *testUsers) setup() error {
	for _, step := range []func() error{
		func() error { return u.h.Group(grpAdmins) },
		func() error { return u.h.Group(grpMembers) },
		func() error { return u.h.User(usrAdmin, "", grpAdmins) },
		func() error { return u.h.User(usrMember, "", grpMembers) },
		func() error { return u.h.User(usrOut, "") },
		func() error { return u.h.SystemUser(usrHub) },
	} {
		if err := step(); err != nil {
			return err
		}
	}
	dir, err := os.MkdirTemp("", "hubtest-adm-")
	if err != nil {
		return err
	}
	u.dir = dir
	if err := os.Chmod(dir, 0o755); err != nil {
		return err
	}
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	data, err := os.ReadFile(exe)
	if err != nil {
		return err
	}
	u.bin = filepath.Join(dir, "admin.test")
	return os.WriteFile(u.bin, data, 0o755)
}

func (u *testUsers) teardown() error {
	u.h.Cleanup()
	if u.dir != "" {
		return os.RemoveAll(u.dir)
	}
	return nil
}

// socketDir makes a directory every test account can reach.
func socketDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "hubtest-adm-sock-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// callAs makes one admin call as the given account (re-executing the
// test binary through setpriv) and returns what the client saw.
func (u *testUsers) callAs(t *testing.T, account, socket, op string) helperResult {
	t.Helper()
	cmd := exec.Command("setpriv", "--reuid="+account, "--regid="+account, "--init-groups", "--", u.bin)
	cmd.Env = append(os.Environ(), envRole+"=client", envSocket+"="+socket, envOp+"="+op)
	out, err := cmd.Output()
	if err != nil {
		var stderr []byte
		if ee, ok := errors.AsType[*exec.ExitError](err); ok {
			stderr = ee.Stderr
		}
		t.Fatalf("client as %s: %v: %s", account, err, stderr)
	}
	var res helperResult
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("client as %s said %q: %v", account, out, err)
	}
	return res
}

// TestSocketPeerCred serves on a real socket and calls it as root, an
// admin, a member and an outsider.
func TestSocketPeerCred(t *testing.T) {
	u := users.get(t)
	sock := filepath.Join(socketDir(t), "hubd.sock")
	e := newTestEnv(t, func(c *config.Config) { c.Admin.Socket = sock })
	e.user(t, usrMember)
	const gone = "hubtest-adm-gone"
	e.user(t, gone)

	root := &client.Client{Socket: sock}
	me, err := root.WhoAmI(context.Background())
	if err != nil || me.Role != wire.RoleAdmin || me.UID != 0 {
		t.Fatalf("root: %+v, %v", me, err)
	}
	cases := []struct {
		account, op string
		kind, role  string
	}{
		{usrAdmin, "whoami", "ok", "admin"},
		{usrAdmin, "backups", "ok", ""},
		{usrAdmin, "stop:" + usrMember, "ok", ""},
		{usrMember, "whoami", "ok", "member"},
		{usrMember, "status", "ok", ""},
		{usrMember, "sessions", "ok", ""},
		{usrMember, "sessions:" + usrAdmin, "access-denied", ""},
		{usrMember, "backups", "access-denied", ""},
		{usrMember, "stop:" + usrMember, "access-denied", ""},
		{usrMember, "restart", "ok", ""},
		{usrMember, "users", "access-denied", ""},
		{usrMember, "admin:" + usrMember, "access-denied", ""},
		{usrMember, "deluser:" + gone, "access-denied", ""},
		{usrAdmin, "users", "ok", ""},
		{usrAdmin, "deluser:" + gone, "ok", ""},
		// The outsider is in no group the socket is open to: the kernel
		// refuses, and the client names the groups to join.
		{usrOut, "whoami", "socket-permission", ""},
	}
	for _, c := range cases {
		res := u.callAs(t, c.account, sock, c.op)
		if res.Kind != c.kind || res.Role != c.role {
			t.Errorf("%s %s: got %+v, want kind %s role %q", c.account, c.op, res, c.kind, c.role)
		}
		if res.Kind == "socket-permission" && res.Groups != grpAdmins+","+grpMembers {
			t.Errorf("%s %s: groups named %q", c.account, c.op, res.Groups)
		}
	}
	// The admin's stop and delete are in the audit log with the admin's
	// real uid; the member's attempts changed nothing.
	uid := lookupUID(t, usrAdmin)
	for _, want := range []struct{ action, target string }{{"server.stop", usrMember}, {"user.delete", gone}} {
		found := false
		for _, ev := range e.adminEvents(t) {
			if ev.Action == want.action && ev.ActorUID == uid && ev.Actor == usrAdmin && ev.Target == want.target {
				found = true
			}
		}
		if !found {
			t.Errorf("no audit event for %s's %s with uid %d: %+v", usrAdmin, want.action, uid, e.adminEvents(t))
		}
	}
	if m, err := e.store.UserByName(context.Background(), usrMember); err != nil || m.Admin {
		t.Errorf("the member after asking to be made an admin: %+v, %v", m, err)
	}
	if _, err := e.store.UserByName(context.Background(), gone); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("%s after the admin's delete: %v", gone, err)
	}
	if by := e.restarts.by; len(by) != 1 || by[0] != usrMember {
		t.Errorf("restarts by %v, want [%s]", by, usrMember)
	}

	// Open the file to everyone: SO_PEERCRED still refuses the outsider,
	// with the hub's own explanation.
	if err := os.Chmod(sock, 0o666); err != nil {
		t.Fatal(err)
	}
	res := u.callAs(t, usrOut, sock, "whoami")
	if res.Kind != "access-denied" || !strings.Contains(res.Message, "neither an admin nor a member") || !strings.Contains(res.Message, "group "+grpMembers) {
		t.Errorf("outsider on an open socket: %+v", res)
	}
}

func lookupUID(t *testing.T, name string) int {
	t.Helper()
	u, err := user.Lookup(name)
	if err != nil {
		t.Fatal(err)
	}
	uid, err := strconv.Atoi(u.Uid)
	if err != nil {
		t.Fatal(err)
	}
	return uid
}

func gidOf(t *testing.T, group string) string {
	t.Helper()
	g, err := user.LookupGroup(group)
	if err != nil {
		t.Fatal(err)
	}
	return g.Gid
}

// TestSocketAsUnprivilegedHub runs the admin server as an account in
// neither group, as production's hub user is: the ACL must still open
// the socket to both groups, and nobody else.
func TestSocketAsUnprivilegedHub(t *testing.T) {
	u := users.get(t)
	dir := socketDir(t)
	if err := os.Chown(dir, lookupUID(t, usrHub), -1); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "hubd.sock")
	cmd := exec.Command("setpriv", "--reuid="+usrHub, "--regid="+usrHub, "--init-groups", "--", u.bin)
	cmd.Env = append(os.Environ(), envRole+"=listen", envSocket+"="+sock, envGroups+"="+grpAdmins+","+grpMembers)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		stdin.Close()
		if err := cmd.Wait(); err != nil {
			t.Errorf("hub helper: %v: %s", err, stderr.String())
		}
	}
	t.Cleanup(stop)
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || line != "listening\n" {
		t.Fatalf("hub helper said %q (%v): %s", line, err, stderr.String())
	}

	fi, err := os.Stat(sock)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode()&os.ModeSocket == 0 || fi.Mode().Perm() != 0o660 {
		t.Errorf("socket mode %v, want socket 0660", fi.Mode())
	}
	out, err := exec.Command("getfacl", "--omit-header", "--numeric", sock).Output()
	if err != nil {
		t.Fatalf("getfacl: %v", err)
	}
	want := []string{"user::rw-", "group::rw-", "group:" + gidOf(t, grpAdmins) + ":rw-", "group:" + gidOf(t, grpMembers) + ":rw-", "mask::rw-", "other::---"}
	if got := strings.Fields(string(out)); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("getfacl: %v, want %v", got, want)
	}

	for account, want := range map[string]helperResult{
		usrAdmin:  {Kind: "ok", Role: "admin"},
		usrMember: {Kind: "ok", Role: "member"},
		usrOut:    {Kind: "socket-permission", Groups: grpAdmins + "," + grpMembers},
	} {
		if got := u.callAs(t, account, sock, "whoami"); got.Kind != want.Kind || got.Role != want.Role || got.Groups != want.Groups {
			t.Errorf("%s: %+v, want %+v", account, got, want)
		}
	}
	stop()
	if _, err := os.Lstat(sock); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("socket still there after the hub closed: %v", err)
	}
}

// TestSocketLifecycle: a second server is refused while the first runs, a
// stale socket is replaced, a non-socket is never removed, and Close
// removes only its own socket.
func TestSocketLifecycle(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "hubd.sock")
	e := newTestEnv(t, func(c *config.Config) { c.Admin.Socket = sock })

	_, err := tryTestEnv(t, testConfig(t, func(c *config.Config) { c.Admin.Socket = sock }), server.Options{}, nil)
	if !errors.Is(err, admin.ErrAlreadyRunning) || !strings.Contains(err.Error(), "systemctl stop hubd") {
		t.Fatalf("second server: %v", err)
	}
	c := &client.Client{Socket: sock}
	if _, err := c.WhoAmI(context.Background()); err != nil {
		t.Fatalf("the first server stopped answering after the refused second: %v", err)
	}

	// A crashed hub leaves its socket file behind.
	stale := filepath.Join(dir, "stale.sock")
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: stale, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	l.SetUnlinkOnClose(false)
	l.Close()
	if _, err := os.Lstat(stale); err != nil {
		t.Fatalf("no stale socket to test with: %v", err)
	}
	if _, err := (&client.Client{Socket: stale}).WhoAmI(context.Background()); !isNotRunning(err) {
		t.Fatalf("client on a stale socket: %v", err)
	}
	third := newTestEnv(t, func(c *config.Config) { c.Admin.Socket = stale })
	if me, err := (&client.Client{Socket: stale}).WhoAmI(context.Background()); err != nil || me.Role != wire.RoleAdmin {
		t.Fatalf("server on a replaced stale socket: %+v, %v", me, err)
	}

	// A regular file where the socket should be is an operator's file.
	plain := filepath.Join(dir, "plain")
	if err := os.WriteFile(plain, []byte("mine"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := tryTestEnv(t, testConfig(t, func(c *config.Config) { c.Admin.Socket = plain }), server.Options{}, nil); err == nil || !strings.Contains(err.Error(), "not a socket") {
		t.Fatalf("listen over a regular file: %v", err)
	}
	if b, _ := os.ReadFile(plain); string(b) != "mine" {
		t.Fatal("the regular file was touched")
	}

	// After a handover the path may hold the next hub's socket: Close
	// leaves a socket it did not create.
	if err := os.Remove(stale); err != nil {
		t.Fatal(err)
	}
	next, err := net.ListenUnix("unix", &net.UnixAddr{Name: stale, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	defer next.Close()
	third.srv.Close()
	if _, err := os.Lstat(stale); err != nil {
		t.Fatalf("Close removed a socket it did not create: %v", err)
	}
	// And its own socket goes with it.
	e.srv.Close()
	if _, err := os.Lstat(sock); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("socket left after Close: %v", err)
	}
	if _, err := c.WhoAmI(context.Background()); !isNotRunning(err) || !strings.Contains(err.Error(), "systemctl status hubd") {
		t.Fatalf("client after the hub stopped: %v", err)
	}
}

func isNotRunning(err error) bool {
	_, ok := errors.AsType[*client.NotRunningError](err)
	return ok
}

// TestSocketWithoutACLSupport serves from ramfs, which stores no ACLs:
// the socket stays 0660, goes to the admin group, and the log says why.
func TestSocketWithoutACLSupport(t *testing.T) {
	users.get(t)
	dir := socketDir(t)
	if out, err := exec.Command("mount", "-t", "ramfs", "ramfs", dir).CombinedOutput(); err != nil {
		t.Fatalf("mount ramfs: %v: %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", dir, err, out)
		}
	})
	sock := filepath.Join(dir, "hubd.sock")
	e := newTestEnv(t, func(c *config.Config) { c.Admin.Socket = sock })
	fi, err := os.Stat(sock)
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	if fi.Mode().Perm() != 0o660 || strconv.Itoa(int(st.Gid)) != gidOf(t, grpAdmins) {
		t.Errorf("socket mode %v, gid %d; want 0660 and group %s", fi.Mode(), st.Gid, grpAdmins)
	}
	if !strings.Contains(e.logs.String(), "POSIX ACLs are not supported") {
		t.Errorf("no warning in the log:\n%s", e.logs.String())
	}
	if me, err := (&client.Client{Socket: sock}).WhoAmI(context.Background()); err != nil || me.Role != wire.RoleAdmin {
		t.Fatalf("whoami: %+v, %v", me, err)
	}
}

// TestSocketHandover plays a graceful restart: the next server gets the
// listening socket as a file, the old one closes without removing the
// socket file, and clients never see it gone.
func TestSocketHandover(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "hubd.sock")
	old := newTestEnv(t, func(c *config.Config) { c.Admin.Socket = sock })
	// What the restart hands to the re-executed binary.
	f, err := old.srv.Listener().(*net.UnixListener).File()
	if err != nil {
		t.Fatal(err)
	}
	next, err := tryTestEnv(t, testConfig(t, func(c *config.Config) { c.Admin.Socket = sock }), server.Options{}, map[string]*os.File{server.Admin: f})
	if err != nil {
		t.Fatal(err)
	}
	old.srv.KeepSocketFile()
	if err := old.srv.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(sock); err != nil {
		t.Fatalf("socket file gone after the handover: %v", err)
	}
	if _, err := (&client.Client{Socket: sock}).Status(context.Background()); err != nil {
		t.Fatalf("the next server does not answer: %v", err)
	}
	// The inherited socket is systemd's or the old hub's to clean up.
	next.srv.Close()
	if _, err := os.Lstat(sock); err != nil {
		t.Fatalf("a server closed a socket file it did not create: %v", err)
	}
}

// A member that announces a body and never sends it holds no slot: root's
// status answers at once, and the member gets 408 when its time is up.
func TestSilentBodyDoesNotFreezeTheSocket(t *testing.T) {
	u := users.get(t)
	sock := filepath.Join(socketDir(t), "hubd.sock")
	if _, err := tryTestEnv(t, testConfig(t, func(c *config.Config) { c.Admin.Socket = sock }), server.Options{AdminBodyTimeout: 5 * time.Second}, nil); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c := &client.Client{Socket: sock}
	testutil.WaitFor(t, "the admin socket", func() bool { _, err := c.Status(ctx); return err == nil })

	stall := exec.Command("setpriv", "--reuid="+usrMember, "--regid="+usrMember, "--init-groups", "--", u.bin)
	stall.Env = append(os.Environ(), envRole+"=stall", envSocket+"="+sock)
	out, err := stall.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := stall.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = stall.Process.Kill(); _ = stall.Wait() })
	lines := bufio.NewScanner(out)
	if !lines.Scan() || lines.Text() != "sent" {
		t.Fatalf("stall helper: %q", lines.Text())
	}
	answered := make(chan string, 1)
	go func() {
		lines.Scan()
		answered <- lines.Text()
	}()
	for range 3 {
		if _, err := c.Status(ctx); err != nil {
			t.Fatalf("root's status while a member stalls: %v", err)
		}
		if _, err := c.Restart(ctx, ""); err != nil && !strings.Contains(err.Error(), "moments ago") {
			t.Fatalf("root's restart while a member stalls: %v", err)
		}
	}
	select {
	case got := <-answered:
		t.Fatalf("the member was answered (%q) before root's requests, which did not wait for it", got)
	default:
	}
	select {
	case got := <-answered:
		if !strings.HasPrefix(got, "HTTP/1.1 408") {
			t.Errorf("the silent member got %q, want 408", got)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the silent member was never answered")
	}
}
