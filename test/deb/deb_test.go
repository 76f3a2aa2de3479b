// Package deb tests the hubd Debian package the way an admin uses it: it
// builds two versions with `make deb`, checks them with lintian, and
// installs, upgrades, removes and purges them with the real apt and dpkg
// on this machine. dpkg runs inside a real systemd booted in private
// namespaces (scripts/systemd-in-ns.sh), so the maintainer scripts'
// systemctl and deb-systemd-invoke talk to a live systemd that starts the
// hub from the package's unit, while the files, accounts and dpkg database
// are this machine's. The package creates the product's real names (user
// hub, group jupyterhub, /etc/hubd, /var/lib/hubd, …): the test refuses to
// run where any of them exists, and checks that it leaves the machine as it
// found it. It needs root and takes a few minutes.
package deb

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/hubd/hubd/core/admin/client"
	"github.com/hubd/hubd/core/admin/wire"
	"github.com/hubd/hubd/core/host"
	"github.com/hubd/hubd/core/spawner"
	"github.com/hubd/hubd/internal/testlab"
	"github.com/hubd/hubd/internal/testutil"
)

// The test's own account: a member who logs in and runs a server.
const (
	member   = "hubtest-deb-alice"
	memberPW = "alice-pw-123"
	public   = "http://127.0.0.1:8000" // hub.listen of the configuration the package writes
)

// productPaths are what the package and `hubd setup --packaged` create
// with the default configuration; none may exist before the test.
var productPaths = []string{
	"/usr/bin/hubd", "/usr/bin/hubtui", "/lib/systemd/system/hubd.service", "/etc/hubd", "/etc/pam.d/hubd",
	"/etc/profile.d/hubd.sh", "/etc/sudoers.d/hubd", "/etc/systemd/system/hubd.service",
	"/etc/systemd/system/multi-user.target.wants/hubd.service", "/var/lib/hubd", "/var/log/hubd",
	"/var/backups/hubd", "/opt/hubd", "/usr/local/share/jupyter/kernels/hubd-shared", "/usr/local/bin/hubd",
	"/usr/share/doc/hubd", "/usr/share/man/man8/hubd.8.gz", "/usr/share/man/man1/hubtui.1.gz",
	"/usr/share/bash-completion/completions/hubd", "/usr/share/lintian/overrides/hubd", "/run/hubd",
}

func repoRoot() string {
	wd, _ := os.Getwd()
	return filepath.Dir(filepath.Dir(wd))
}

func TestPackage(t *testing.T) {
	testutil.NeedRoot(t)
	for _, tool := range []string{"lintian", "apt-get", "dpkg-deb", "visudo", "sqlite3", "jupyterhub-singleuser"} {
		_, err := exec.LookPath(tool)
		testutil.Require(t, err == nil, "%s is not installed", tool)
	}
	refuseIfPresent(t)
	root := repoRoot()
	work := t.TempDir()
	if err := os.Chmod(work, 0o755); err != nil { // the hub account reads the hand-made configs in here
		t.Fatal(err)
	}

	// Two builds of this checkout: the second is a later version, as an
	// upgrade is.
	v1 := strings.TrimSpace(mustRun(t, filepath.Join(root, "scripts/version.sh")))
	v2 := v1 + "+hubtest.2"
	if strings.Contains(v1, "+") {
		v2 = v1 + ".hubtest.2"
	}
	mustRun(t, "dpkg", "--compare-versions", v2, "gt", v1)
	deb1, deb2 := makeDeb(t, root, work, v1), makeDeb(t, root, work, v2)

	t.Run("lintian", func(t *testing.T) {
		// -I -E --pedantic: every tag, info and pedantic ones included.
		// Each override in scripts/deb/lintian-overrides says why.
		out, err := exec.Command("lintian", "--allow-root", "-I", "-E", "--pedantic", "--show-overrides", deb1).CombinedOutput()
		t.Logf("lintian -I -E --pedantic --show-overrides %s:\n%s", filepath.Base(deb1), out)
		var tags []string
		for _, l := range strings.Split(string(out), "\n") {
			if len(l) > 2 && l[1] == ':' && !strings.HasPrefix(l, "N:") && !strings.HasPrefix(l, "O:") {
				tags = append(tags, l)
			}
		}
		if err != nil || len(tags) > 0 {
			t.Errorf("lintian is not clean (%v): %s", err, strings.Join(tags, "\n"))
		}
	})

	before := takeSnapshot(t)
	h := &testutil.Host{}
	t.Cleanup(h.Cleanup)
	if err := h.User(member, memberPW); err != nil {
		t.Fatal(err)
	}
	n := bootSystemd(t, work)
	t.Cleanup(func() { n.purgeLeftovers(t) })

	// Each part ends with a purge; after a failed one the rest would start
	// from a half-known state, so the cleanups purge instead.
	if !t.Run("install, upgrade in place, remove, reinstall, purge", func(t *testing.T) {
		mainFlow(t, n, deb1, deb2, v1, v2)
	}) || !t.Run("a hand-made configuration is kept", func(t *testing.T) {
		handMadeConfig(t, n, deb1)
	}) || !t.Run("a sudoers rule that does not validate is never installed", func(t *testing.T) {
		badSudoers(t, n, work, deb1)
	}) || !t.Run("without systemd: told how to start the hub, upgraded in place, stopped by the purge", func(t *testing.T) {
		withoutSystemd(t, deb1, deb2, v2)
	}) {
		return
	}

	h.Cleanup()
	n.stop(t)
	if after := takeSnapshot(t); !t.Failed() {
		before.compare(t, after)
	}
}

func mainFlow(t *testing.T, n *nsSystemd, deb1, deb2, v1, v2 string) {
	var serverPID int
	var browser *hubClient

	if !t.Run("install: the package starts the hub", func(t *testing.T) {
		n.apt(t, "install", "-y", "--no-install-recommends", deb1)
		if st := n.query("systemctl", "is-active", "hubd"); st != "active" {
			t.Fatalf("hubd.service is %q after the install\n%s", st, n.journal())
		}
		if st := n.status(t); st.Version != v1 {
			t.Errorf("the hub runs version %q, want %q", st.Version, v1)
		}
		out := n.exec(t, "hubd", "version")
		if !regexp.MustCompile(`^hubd ` + regexp.QuoteMeta(v1) + ` \(commit [0-9a-f]{12}, schema \d+, go1\.`).MatchString(out) {
			t.Errorf("hubd version: %q", out)
		}
	}) {
		return
	}

	if !t.Run("doctor: all OK once a member is added and a backup taken", func(t *testing.T) {
		// What setup's summary tells the admin to do next.
		n.exec(t, "usermod", "-aG", "jupyterhub", member)
		findings := n.doctor(t)
		for _, f := range findings {
			// A fresh hub has nothing backed up yet; doctor says how to.
			if f.Level != host.OK && !(f.Level == host.Warn && strings.HasPrefix(f.Check, "backups in") && strings.Contains(f.Fix, "hubd backup create")) {
				t.Errorf("%s %s: %s (fix: %s)", f.Level, f.Check, f.Message, f.Fix)
			}
		}
		n.exec(t, "hubd", "backup", "create")
		for _, f := range n.doctor(t) {
			if f.Level != host.OK {
				t.Errorf("after the backup: %s %s: %s (fix: %s)", f.Level, f.Check, f.Message, f.Fix)
			}
		}
		if t.Failed() {
			t.Logf("doctor:\n%s", n.execStdin(t, memberPW+"\n", "hubd", "doctor", "--user", member))
		}
	}) {
		return
	}

	if !t.Run("a member logs in and reaches their server", func(t *testing.T) {
		browser = newHubClient(t)
		serverPID = browser.startServer(t, n)
		if uid := procUID(serverPID); uid != lookupUID(t, member) {
			t.Errorf("the server runs as uid %s, want %s's", uid, member)
		}
	}) {
		return
	}

	if !t.Run("upgrade restarts the hub in place under load", func(t *testing.T) {
		hubPID := n.mainPID(t)
		stop := make(chan struct{})
		l := startLoad(browser, stop)
		out := n.apt(t, "install", "-y", "--no-install-recommends", deb2)
		// Keep the load on a moment after the upgrade, then stop it.
		target := l.ok.Load() + 20
		_ = testutil.Poll(10*time.Second, func() error {
			if l.ok.Load() < target {
				return errors.New("waiting for requests")
			}
			return nil
		})
		close(stop)
		l.wg.Wait()
		t.Logf("%d requests during the upgrade, %d failed", l.ok.Load()+l.failed.Load(), l.failed.Load())
		if l.failed.Load() != 0 {
			t.Errorf("%d requests failed during the upgrade; first: %v", l.failed.Load(), l.errors())
		}
		if l.ok.Load() < 50 {
			t.Errorf("only %d requests went through; the load was not steady", l.ok.Load())
		}
		if !strings.Contains(out, "hub restarted: version "+v2) {
			t.Errorf("the postinst did not report the restart into %s:\n%s", v2, out)
		}
		if st := n.status(t); st.Version != v2 {
			t.Errorf("the hub runs %q after the upgrade, want %q", st.Version, v2)
		}
		if pid := n.mainPID(t); pid != hubPID {
			t.Errorf("the hub's pid changed %s → %s: not restarted in place", hubPID, pid)
		}
		if pids := serverPIDs(t, member); !slices.Equal(pids, []int{serverPID}) {
			t.Errorf("the member's server is %v after the upgrade, want the same pid %d", pids, serverPID)
		}
		r, body := browser.get(t, "/user/"+member+"/api")
		if r.StatusCode != 200 {
			t.Errorf("the member's server after the upgrade: %d %s", r.StatusCode, body)
		}
	}) {
		return
	}

	if !t.Run("remove: servers stopped, data and accounts kept", func(t *testing.T) {
		runtimeFile := jupyterRuntimeFile(t, serverPID)
		out := n.apt(t, "remove", "-y", "hubd")
		if !strings.Contains(out, "stopped the servers of "+member) {
			t.Errorf("prerm did not stop the member's server:\n%s", out)
		}
		if processAlive(serverPID) {
			t.Errorf("the member's server (pid %d) still runs after the removal", serverPID)
		}
		// jupyter_server deletes its runtime file when it shuts down on
		// SIGTERM; a killed server leaves it.
		if _, err := os.Stat(runtimeFile); err == nil {
			t.Errorf("%s is still there: the server did not shut down cleanly", runtimeFile)
		}
		if st := n.query("systemctl", "is-active", "hubd"); st == "active" {
			t.Errorf("hubd.service is still active after the removal")
		}
		for _, gone := range []string{"/usr/bin/hubd", "/usr/bin/hubtui", "/etc/sudoers.d/hubd", "/lib/systemd/system/hubd.service"} {
			if _, err := os.Lstat(gone); err == nil {
				t.Errorf("%s is still there after the removal", gone)
			}
		}
		for _, kept := range []string{"/etc/hubd/hubd.toml", "/var/lib/hubd/hubd.sqlite", "/var/log/hubd/" + member + ".log", "/opt/hubd/env/bin/python3"} {
			if _, err := os.Stat(kept); err != nil {
				t.Errorf("the removal did not keep %s: %v", kept, err)
			}
		}
		if backups, _ := filepath.Glob("/var/backups/hubd/hubd-*.tar.gz"); len(backups) != 1 {
			t.Errorf("the removal did not keep the backup: %v", backups)
		}
		for _, acct := range [][]string{{"passwd", "hub"}, {"group", "jupyterhub"}} {
			if err := exec.Command("getent", acct...).Run(); err != nil {
				t.Errorf("the removal deleted %s %s", acct[0], acct[1])
			}
		}
		state := mustRun(t, "sqlite3", "/var/lib/hubd/hubd.sqlite", "SELECT s.state || ' ' || s.stop_reason || ' ' || s.stopped_by FROM servers s JOIN users u ON u.id = s.user_id WHERE u.name = '"+member+"'")
		if strings.TrimSpace(state) != "stopped hubd was uninstalled root" {
			t.Errorf("the database records the member's server as %q", state)
		}
		mustRun(t, "visudo", "-c")
	}) {
		return
	}

	if !t.Run("reinstall: the hub comes back with its data", func(t *testing.T) {
		n.apt(t, "install", "-y", "--no-install-recommends", deb2)
		if st := n.status(t); st.Version != v2 {
			t.Errorf("the hub runs %q, want %q", st.Version, v2)
		}
		browser = newHubClient(t)
		serverPID = browser.startServer(t, n)
		if users := mustRun(t, "sqlite3", "/var/lib/hubd/hubd.sqlite", "SELECT count(*) FROM servers"); strings.TrimSpace(users) != "1" {
			t.Errorf("the database was not kept: %s servers rows", users)
		}
	}) {
		return
	}

	t.Run("purge while a server runs: stopped cleanly, everything the package made is gone, homes untouched", func(t *testing.T) {
		home := homeDir(t, member)
		runtimeFile := jupyterRuntimeFile(t, serverPID)
		homeBefore := treeListing(t, home, filepath.Dir(runtimeFile))
		out := n.apt(t, "purge", "-y", "hubd")
		if !strings.Contains(out, "stopped the servers of "+member) {
			t.Errorf("the purge did not stop the member's server first:\n%s", out)
		}
		if processAlive(serverPID) {
			t.Errorf("the member's server (pid %d) still runs after the purge", serverPID)
		}
		if _, err := os.Stat(runtimeFile); err == nil {
			t.Errorf("%s is still there: the server did not shut down cleanly", runtimeFile)
		}
		if homeAfter := treeListing(t, home, filepath.Dir(runtimeFile)); homeAfter != homeBefore {
			t.Errorf("the purge changed %s:\nbefore:\n%s\nafter:\n%s", home, homeBefore, homeAfter)
		}
		for _, p := range productPaths {
			if _, err := os.Lstat(p); err == nil {
				t.Errorf("%s is still there after the purge", p)
			}
		}
		for _, acct := range [][]string{{"passwd", "hub"}, {"group", "hub"}, {"group", "jupyterhub"}} {
			if err := exec.Command("getent", acct...).Run(); err == nil {
				t.Errorf("%s %s is still there after the purge", acct[0], acct[1])
			}
		}
		if out, err := exec.Command("dpkg-query", "-W", "hubd").CombinedOutput(); err == nil {
			t.Errorf("dpkg still knows hubd after the purge: %s", out)
		}
	})
}

// handMadeConfig: an admin who wrote /etc/hubd/hubd.toml before installing
// keeps it byte for byte, without a prompt (stdin is /dev/null), and the
// hub runs with it; a purge leaves it (the package did not make it).
func handMadeConfig(t *testing.T, n *nsSystemd, deb string) {
	port, err := spawner.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	mine := fmt.Sprintf("# my hub, written by hand\n[hub]\nlisten = \"127.0.0.1:%d\"\n", port)
	if err := os.MkdirAll("/etc/hubd", 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll("/etc/hubd") })
	if err := os.WriteFile("/etc/hubd/hubd.toml", []byte(mine), 0o644); err != nil {
		t.Fatal(err)
	}
	n.apt(t, "install", "-y", "--no-install-recommends", deb)
	if got, _ := os.ReadFile("/etc/hubd/hubd.toml"); string(got) != mine {
		t.Errorf("the install changed the hand-made configuration:\n%s", got)
	}
	if err := testutil.Poll(30*time.Second, func() error { return answers(fmt.Sprintf("http://127.0.0.1:%d", port)) }); err != nil {
		t.Errorf("the hub does not answer on the hand-made listen address: %v\n%s", err, n.journal())
	}
	// helper_path is not in the file, so the default /usr/local/bin/hubd
	// applies: setup put a copy there for the sudo rule.
	if _, err := os.Stat("/usr/local/bin/hubd"); err != nil {
		t.Errorf("no spawn helper at the configured default path: %v", err)
	}
	n.apt(t, "purge", "-y", "hubd")
	if got, _ := os.ReadFile("/etc/hubd/hubd.toml"); string(got) != mine {
		t.Errorf("the purge removed or changed the hand-made configuration (%q)", got)
	}
	for _, gone := range []string{"/usr/local/bin/hubd", "/etc/hubd/hubd.setup.json", "/etc/hubd/hubd.purge-plan", "/var/lib/hubd"} {
		if _, err := os.Lstat(gone); err == nil {
			t.Errorf("%s is still there after the purge", gone)
		}
	}
}

// badSudoers: a configuration whose helper path sudoers would misread (a
// ':' in a directory name) is refused by hubd's own validation before any
// sudoers rule is written (visudo's refusal behind it is setup's unit
// test): sudo keeps working, the package stays half-configured with the
// explanation, and a purge still cleans up although the configuration is
// invalid.
func badSudoers(t *testing.T, n *nsSystemd, work, deb string) {
	helper := filepath.Join(work, "hub:bad", "hubd")
	port, err := spawner.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	cfg := fmt.Sprintf("[hub]\nlisten = \"127.0.0.1:%d\"\n[spawner]\nhelper_path = %q\n", port, helper)
	if err := os.MkdirAll("/etc/hubd", 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll("/etc/hubd") })
	if err := os.WriteFile("/etc/hubd/hubd.toml", []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := n.run("apt-get", "-q", "-o", "DPkg::Lock::Timeout=600", "install", "-y", "--no-install-recommends", deb)
	t.Logf("apt-get install (fails: %v):\n%s", err, out)
	if err == nil {
		t.Fatalf("the install succeeded with a helper path sudoers would misread:\n%s", out)
	}
	if !strings.Contains(out, "spawner.helper_path") || !strings.Contains(out, "sudoers would read as syntax") {
		t.Errorf("the install does not explain the refused setting:\n%s", out)
	}
	if _, err := os.Lstat("/etc/sudoers.d/hubd"); err == nil {
		t.Errorf("/etc/sudoers.d/hubd was installed")
	}
	if tmps, _ := filepath.Glob("/etc/sudoers.d/.hubd*"); len(tmps) > 0 {
		t.Errorf("temporary files left in /etc/sudoers.d: %v", tmps)
	}
	mustRun(t, "visudo", "-c")
	mustRun(t, "sudo", "-n", "-u", member, "true")
	if st := strings.TrimSpace(mustRun(t, "dpkg-query", "-W", "-f", "${db:Status-Abbrev}", "hubd")); st != "iF" {
		t.Errorf("package state %q, want iF (half-configured)", st)
	}
	if out := n.apt(t, "purge", "-y", "hubd"); !strings.Contains(out, "uninstalling with the default settings") {
		t.Errorf("the purge does not say it ignored the invalid configuration:\n%s", out)
	}
	for _, gone := range []string{helper, filepath.Dir(helper), "/etc/hubd/hubd.setup.json", "/var/lib/hubd"} {
		if _, err := os.Lstat(gone); err == nil {
			t.Errorf("%s is still there after the purge", gone)
		}
	}
}

// withoutSystemd: the package on a machine without systemd (dpkg runs on
// the host with /run/systemd hidden, so the test means the same on a host
// booted with systemd). The install does not fail and says how to start
// the hub; the hub started that way is restarted in place by an upgrade
// and stopped (SIGTERM through its lock file) by the purge.
func withoutSystemd(t *testing.T, deb1, deb2, v2 string) {
	apt := func(args ...string) string {
		t.Helper()
		cmd := exec.Command("unshare", append([]string{"--mount", "--propagation", "private", "sh", "-c",
			`mount -t tmpfs -o size=1m tmpfs /run/systemd 2>/dev/null; exec "$@"`, "sh",
			"apt-get", "-q", "-o", "DPkg::Lock::Timeout=600"}, args...)...)
		cmd.Env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL=C", "DEBIAN_FRONTEND=noninteractive"}
		out, err := cmd.CombinedOutput()
		t.Logf("apt-get %s (no systemd):\n%s", strings.Join(args, " "), out)
		if err != nil {
			t.Fatalf("apt-get %s: %v", strings.Join(args, " "), err)
		}
		return string(out)
	}
	out := apt("install", "-y", "--no-install-recommends", deb1)
	start := "runuser -u hub -- /usr/bin/hubd serve"
	if !strings.Contains(out, "start the hub with `"+start+"` (this machine does not run systemd)") {
		t.Fatalf("the install does not say how to start the hub without systemd")
	}
	hub := exec.Command("runuser", "-u", "hub", "--", "/usr/bin/hubd", "serve")
	hub.Env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C.UTF-8"}
	hub.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var log bytes.Buffer
	hub.Stdout, hub.Stderr = &log, &log
	if err := hub.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = hub.Wait(); close(exited) }()
	t.Cleanup(func() {
		select {
		case <-exited:
		default:
			_ = syscall.Kill(-hub.Process.Pid, syscall.SIGKILL)
			<-exited
		}
	})
	if err := testutil.Poll(30*time.Second, func() error { return answers(public) }); err != nil {
		t.Fatalf("the hub started as told does not answer: %v\n%s", err, log.String())
	}
	c := &client.Client{Socket: "/run/hubd/hubd.sock"}
	before, err := c.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	out = apt("install", "-y", "--no-install-recommends", deb2)
	after, err := c.Status(context.Background())
	if err != nil || after.Version != v2 || after.PID != before.PID || !strings.Contains(out, "hub restarted: version "+v2) {
		t.Errorf("after the upgrade: %+v, %v; want version %s in the same process %d", after, err, v2, before.PID)
	}
	out = apt("purge", "-y", "hubd")
	if !strings.Contains(out, fmt.Sprintf("stopped the hub (pid %d)", before.PID)) {
		t.Errorf("the purge did not stop the hub")
	}
	select {
	case <-exited:
	case <-time.After(10 * time.Second):
		t.Errorf("the hub still runs after the purge")
	}
	for _, p := range productPaths {
		if _, err := os.Lstat(p); err == nil {
			t.Errorf("%s is still there after the purge", p)
		}
	}
}

// --- building --------------------------------------------------------------

func makeDeb(t *testing.T, root, work, version string) string {
	t.Helper()
	dir := filepath.Join(work, "build-"+version)
	cmd := exec.Command("make", "-s", "-C", root, "deb", "VERSION="+version, "BIN="+filepath.Join(dir, "bin"), "DIST="+dir)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("make deb VERSION=%s: %v\n%s", version, err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	deb := lines[len(lines)-1]
	if filepath.Base(deb) != "hubd_"+version+"_"+strings.TrimSpace(mustRun(t, "dpkg", "--print-architecture"))+".deb" {
		t.Fatalf("make deb built %q", deb)
	}
	return deb
}

// --- the namespaced systemd --------------------------------------------------

type nsSystemd struct {
	script string
	pid    string // the namespace's systemd, as the host sees it
	up     bool
}

func bootSystemd(t *testing.T, work string) *nsSystemd {
	t.Helper()
	n := &nsSystemd{script: filepath.Join(repoRoot(), "scripts/systemd-in-ns.sh")}
	testlab.Lock(t, testlab.CgroupsLock)
	out, err := exec.Command(n.script, "start").CombinedOutput()
	if err != nil {
		t.Fatalf("boot systemd in namespaces: %v\n%s", err, out)
	}
	n.pid, n.up = strings.TrimSpace(string(out)), true
	t.Cleanup(func() { n.stop(t) })
	// A container image's policy-rc.d (exit 101) forbids maintainer
	// scripts to start services. A server has none: hide it inside the
	// namespace only (its mounts are private), leaving the host's alone.
	if _, err := os.Stat("/usr/sbin/policy-rc.d"); err == nil {
		allow := filepath.Join(work, "policy-rc.d")
		if err := os.WriteFile(allow, []byte("#!/bin/sh\nexit 0\n"), 0o755); err != nil {
			t.Fatal(err)
		}
		n.exec(t, "mount", "--bind", allow, "/usr/sbin/policy-rc.d")
	}
	return n
}

func (n *nsSystemd) stop(t *testing.T) {
	if !n.up {
		return
	}
	n.up = false
	if out, err := exec.Command(n.script, "stop").CombinedOutput(); err != nil {
		t.Errorf("stop the namespaced systemd: %v\n%s", err, out)
	}
}

// run runs a command inside the namespaces as apt runs there: no
// terminal, no questions.
func (n *nsSystemd) run(args ...string) (string, error) {
	return n.runStdin("", args...)
}

func (n *nsSystemd) runStdin(stdin string, args ...string) (string, error) {
	cmd := exec.Command(n.script, append([]string{"exec"}, args...)...)
	cmd.Env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL=C", "DEBIAN_FRONTEND=noninteractive"}
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func (n *nsSystemd) exec(t *testing.T, args ...string) string {
	t.Helper()
	return n.execStdin(t, "", args...)
}

func (n *nsSystemd) execStdin(t *testing.T, stdin string, args ...string) string {
	t.Helper()
	out, err := n.runStdin(stdin, args...)
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(out)
}

// query returns the output of a command whose exit status is part of the
// answer (systemctl is-active).
func (n *nsSystemd) query(args ...string) string {
	out, _ := n.run(args...)
	return strings.TrimSpace(out)
}

func (n *nsSystemd) apt(t *testing.T, args ...string) string {
	t.Helper()
	out := n.exec(t, append([]string{"apt-get", "-q", "-o", "DPkg::Lock::Timeout=600"}, args...)...)
	t.Logf("apt-get %s:\n%s", strings.Join(args, " "), out)
	return out
}

func (n *nsSystemd) journal() string {
	return n.query("journalctl", "-u", "hubd", "-n", "40", "--no-pager", "-o", "cat")
}

func (n *nsSystemd) mainPID(t *testing.T) string {
	t.Helper()
	return n.exec(t, "systemctl", "show", "-p", "MainPID", "--value", "hubd")
}

// status asks the hub over its admin socket, in the namespace's /run.
func (n *nsSystemd) status(t *testing.T) wire.Status {
	t.Helper()
	c := &client.Client{Socket: "/proc/" + n.pid + "/root/run/hubd/hubd.sock"}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := c.Status(ctx)
	if err != nil {
		t.Fatalf("hub status: %v\n%s", err, n.journal())
	}
	return st
}

// doctor runs `hubd doctor --user member` as the admin would, the
// member's password on stdin.
func (n *nsSystemd) doctor(t *testing.T) []host.Finding {
	t.Helper()
	out, _ := n.runStdin(memberPW+"\n", "hubd", "doctor", "--json", "--user", member)
	var fs []host.Finding
	if err := json.Unmarshal([]byte(out), &fs); err != nil || len(fs) < 20 {
		t.Fatalf("doctor --json (%v):\n%s", err, out)
	}
	return fs
}

// purgeLeftovers purges the package if a failed test left it installed,
// so the machine is left as it was even then.
func (n *nsSystemd) purgeLeftovers(t *testing.T) {
	if exec.Command("dpkg-query", "-W", "hubd").Run() != nil {
		return
	}
	run := exec.Command("apt-get", "purge", "-y", "-q", "hubd")
	if n.up {
		run = exec.Command(n.script, "exec", "apt-get", "purge", "-y", "-q", "hubd")
	}
	run.Env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "DEBIAN_FRONTEND=noninteractive"}
	if out, err := run.CombinedOutput(); err != nil {
		t.Errorf("purge the package left by the test: %v\n%s", err, out)
	}
}

// --- the member's browser ----------------------------------------------------

type hubClient struct {
	http *http.Client
}

func newHubClient(t *testing.T) *hubClient {
	jar, _ := cookiejar.New(nil)
	return &hubClient{http: &http.Client{Jar: jar, Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

func (c *hubClient) get(t *testing.T, path string) (*http.Response, string) {
	t.Helper()
	r, err := c.http.Get(public + path)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer r.Body.Close()
	b, _ := io.ReadAll(r.Body)
	return r, string(b)
}

var xsrfField = regexp.MustCompile(`name="_xsrf" value="([^"]+)"`)

// startServer logs the member in with the login form, asks for their
// server and waits until it answers through the hub; it returns its pid.
func (c *hubClient) startServer(t *testing.T, n *nsSystemd) int {
	t.Helper()
	_, page := c.get(t, "/hub/login")
	m := xsrfField.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no _xsrf field in the login form:\n%s", page)
	}
	form := url.Values{"username": {member}, "password": {memberPW}, "_xsrf": {m[1]}}
	r, err := c.http.PostForm(public+"/hub/login", form)
	if err != nil {
		t.Fatal(err)
	}
	r.Body.Close()
	if r.StatusCode != http.StatusFound {
		t.Fatalf("login: status %d", r.StatusCode)
	}
	c.get(t, "/hub/spawn")
	if err := testutil.Poll(90*time.Second, func() error {
		r, body := c.get(t, "/user/"+member+"/api")
		if r.StatusCode != 200 || !strings.Contains(body, "version") {
			return fmt.Errorf("status %d: %.200s", r.StatusCode, body)
		}
		return nil
	}); err != nil {
		t.Fatalf("the member's server never answered through the hub: %v\n%s", err, n.journal())
	}
	pids := serverPIDs(t, member)
	if len(pids) != 1 {
		t.Fatalf("%s runs %d single-user servers: %v", member, len(pids), pids)
	}
	return pids[0]
}

// load sends requests through the proxy to the member's server and to the
// hub's API until stop is closed, counting failures. Go's client retries
// an idempotent request on a kept-alive connection the server closed, as
// browsers do.
type load struct {
	ok, failed atomic.Int64
	wg         sync.WaitGroup
	mu         sync.Mutex
	errs       []string
}

func startLoad(c *hubClient, stop <-chan struct{}) *load {
	l := &load{}
	paths := []string{"/user/" + member + "/api", "/hub/api"}
	for i := range 4 {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			for n := i; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				r, err := c.http.Get(public + paths[n%2])
				if err == nil {
					_, _ = io.Copy(io.Discard, r.Body)
					r.Body.Close()
					if r.StatusCode == 200 {
						l.ok.Add(1)
						continue
					}
					err = fmt.Errorf("status %d", r.StatusCode)
				}
				l.failed.Add(1)
				l.mu.Lock()
				if len(l.errs) < 5 {
					l.errs = append(l.errs, paths[n%2]+": "+err.Error())
				}
				l.mu.Unlock()
			}
		}()
	}
	return l
}

func (l *load) errors() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.errs)
}

func answers(base string) error {
	r, err := http.Get(base + "/hub/api")
	if err != nil {
		return err
	}
	r.Body.Close()
	if r.StatusCode != 200 {
		return fmt.Errorf("status %d", r.StatusCode)
	}
	return nil
}

// --- processes and files -----------------------------------------------------

func serverPIDs(t *testing.T, name string) []int {
	t.Helper()
	out, _ := exec.Command("pgrep", "-u", lookupUID(t, name), "-f", "jupyterhub-singleuser").Output()
	var pids []int
	for _, f := range strings.Fields(string(out)) {
		if p, err := strconv.Atoi(f); err == nil {
			pids = append(pids, p)
		}
	}
	return pids
}

func lookupUID(t *testing.T, name string) string {
	t.Helper()
	u, err := user.Lookup(name)
	if err != nil {
		t.Fatal(err)
	}
	return u.Uid
}

func homeDir(t *testing.T, name string) string {
	t.Helper()
	u, err := user.Lookup(name)
	if err != nil {
		t.Fatal(err)
	}
	return u.HomeDir
}

func procUID(pid int) string {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "Uid:"); ok {
			return strings.Fields(rest)[0]
		}
	}
	return ""
}

// processAlive: a zombie counts as gone.
func processAlive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	fields := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	return len(fields) > 0 && fields[0] != "Z"
}

// jupyterRuntimeFile is the server-info file the single-user server
// (Notebook's nbserver-, jupyter_server's jpserver-<pid>.json) keeps in the
// member's home while it runs.
func jupyterRuntimeFile(t *testing.T, pid int) string {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(homeDir(t, member), ".local/share/jupyter/runtime/*server-*.json"))
	if len(files) != 1 {
		t.Fatalf("the running server (pid %d) has %d runtime files: %v", pid, len(files), files)
	}
	return files[0]
}

// treeListing lists every path under dir (mode, owner, size, sha256),
// except below skip.
func treeListing(t *testing.T, dir, skip string) string {
	t.Helper()
	var b strings.Builder
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == skip {
			return filepath.SkipDir
		}
		b.WriteString(describe(p) + "\n")
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// describe is a path's type, mode, owner and content (sha256 of a file,
// target of a link); not its times, which reads and rewrites change.
func describe(p string) string {
	return describeContent(p, func(b []byte) []byte { return b })
}

// describeContent is describe with the sha256 of view(the file's content).
func describeContent(p string, view func([]byte) []byte) string {
	fi, err := os.Lstat(p)
	if err != nil {
		return p + " " + err.Error()
	}
	st := fi.Sys().(*syscall.Stat_t)
	s := fmt.Sprintf("%s %s %d:%d", p, fi.Mode(), st.Uid, st.Gid)
	switch {
	case fi.Mode().IsRegular():
		data, err := os.ReadFile(p)
		if err != nil {
			return s + " " + err.Error()
		}
		s += fmt.Sprintf(" %x", sha256.Sum256(view(data)))
	case fi.Mode()&fs.ModeSymlink != 0:
		target, _ := os.Readlink(p)
		s += " → " + target
	}
	return s
}

func mustRun(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// --- the machine before and after ----------------------------------------------

// refuseIfPresent stops the test where the product is already installed
// or set up: it would install over it and purge it.
func refuseIfPresent(t *testing.T) {
	t.Helper()
	// A CI machine that kept the package of a run killed midway (a
	// build of this test, by its version) gets it purged first; anywhere
	// else an installed hubd is someone's and refused below.
	if v, err := exec.Command("dpkg-query", "-W", "-f", "${Version}", "hubd").Output(); err == nil && os.Getenv("CI") != "" &&
		(strings.Contains(string(v), "~dev.") || strings.Contains(string(v), "hubtest")) {
		t.Logf("CI: purging hubd %s, left by an earlier run of this test", v)
		(&nsSystemd{}).purgeLeftovers(t)
	}
	var found []string
	for _, p := range productPaths {
		if _, err := os.Lstat(p); err == nil {
			found = append(found, p)
		}
	}
	for _, acct := range [][]string{{"passwd", "hub"}, {"group", "hub"}, {"group", "jupyterhub"}} {
		if exec.Command("getent", acct...).Run() == nil {
			found = append(found, acct[0]+" entry "+acct[1])
		}
	}
	if exec.Command("dpkg-query", "-W", "hubd").Run() == nil {
		found = append(found, "the hubd package (dpkg-query -W hubd)")
	}
	for _, addr := range []string{"127.0.0.1:8000", "127.0.0.1:8081"} {
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			found = append(found, "a listener on "+addr)
		}
	}
	if len(found) > 0 {
		t.Fatalf("refusing to run: this test installs and purges the real hubd package, and this machine already has %s. "+
			"Run it on a machine without hubd (CI's is fresh), or remove them first (`apt purge hubd`, `hubd uninstall --purge`).",
			strings.Join(found, "; "))
	}
}

// snapshot is what the package may touch, before and after.
type snapshot struct {
	accounts string // passwd and group entries
	etc      string // every path under /etc
	paths    string // the product's paths outside /etc
	dpkg     string // every package's version and state
	helper   string // deb-systemd-helper's state
}

// shadowBackups are the backup copies the shadow tools rewrite at every
// account change, also for the test's own member.
var shadowBackups = []string{"/etc/passwd-", "/etc/group-", "/etc/shadow-", "/etc/gshadow-", "/etc/subuid-", "/etc/subgid-"}

// accountFiles are compared entry by entry, without other tests' accounts.
var accountFiles = []string{"/etc/passwd", "/etc/group", "/etc/shadow", "/etc/gshadow", "/etc/subuid", "/etc/subgid"}

// ourAccounts drops the entries (and group memberships) of other tests'
// hubtest* accounts from an account database: tests that do not share
// this machine's host lock may create and remove them meanwhile. The
// product's accounts and this test's own hubtest-deb-* are all kept.
func ourAccounts(db string) string {
	foreign := func(name string) bool {
		return strings.HasPrefix(name, "hubtest") && !strings.HasPrefix(name, "hubtest-deb")
	}
	var out []string
	for _, line := range strings.Split(db, "\n") {
		fields := strings.Split(line, ":")
		if foreign(fields[0]) {
			continue
		}
		for i := 1; i < len(fields); i++ {
			names := strings.Split(fields[i], ",")
			fields[i] = strings.Join(slices.DeleteFunc(names, foreign), ",")
		}
		out = append(out, strings.Join(fields, ":"))
	}
	return strings.Join(out, "\n")
}

func takeSnapshot(t *testing.T) snapshot {
	t.Helper()
	var s snapshot
	s.accounts = ourAccounts(mustRun(t, "getent", "passwd") + mustRun(t, "getent", "group"))
	var etc strings.Builder
	err := filepath.WalkDir("/etc", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		switch {
		case slices.Contains(shadowBackups, p):
		case slices.Contains(accountFiles, p):
			etc.WriteString(describeContent(p, func(b []byte) []byte { return []byte(ourAccounts(string(b))) }) + "\n")
		default:
			etc.WriteString(describe(p) + "\n")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	s.etc = etc.String()
	var paths strings.Builder
	for _, p := range productPaths {
		if !strings.HasPrefix(p, "/etc/") {
			paths.WriteString(describe(p) + "\n")
		}
	}
	infos, _ := filepath.Glob("/var/lib/dpkg/info/hubd.*")
	paths.WriteString(fmt.Sprint("dpkg info files ", infos, "\n"))
	s.paths = paths.String()
	s.dpkg = mustRun(t, "dpkg-query", "-W", "-f", "${binary:Package} ${Version} ${db:Status-Abbrev}\n")
	for _, d := range []string{"/var/lib/systemd/deb-systemd-helper-enabled", "/var/lib/systemd/deb-systemd-helper-masked"} {
		_ = filepath.WalkDir(d, func(p string, _ fs.DirEntry, err error) error {
			if err == nil {
				s.helper += describe(p) + "\n"
			}
			return nil
		})
	}
	return s
}

func (s snapshot) compare(t *testing.T, after snapshot) {
	t.Helper()
	for _, c := range []struct{ what, before, after string }{
		{"passwd and group entries", s.accounts, after.accounts},
		{"/etc", s.etc, after.etc},
		{"the product's paths", s.paths, after.paths},
		{"dpkg's packages", s.dpkg, after.dpkg},
		{"deb-systemd-helper's state", s.helper, after.helper},
	} {
		if c.before != c.after {
			t.Errorf("the test left %s changed:\n%s", c.what, lineDiff(c.before, c.after))
		}
	}
}

// lineDiff lists the lines only before (-) and only after (+).
func lineDiff(before, after string) string {
	b, a := strings.Split(before, "\n"), strings.Split(after, "\n")
	var out []string
	for _, l := range b {
		if !slices.Contains(a, l) {
			out = append(out, "- "+l)
		}
	}
	for _, l := range a {
		if !slices.Contains(b, l) {
			out = append(out, "+ "+l)
		}
	}
	return strings.Join(out, "\n")
}

func TestOurAccountsIgnoresOtherTests(t *testing.T) {
	db := "root:x:0:0::/root:/bin/bash\nhubtest-e2e-bob:x:1002:1003::/home/b:/bin/bash\n" +
		"shadow:x:42:hub,hubtest-e2e-hub\nhubtest-e2e:x:1001:hubtest-e2e-alice\njupyterhub:x:1009:hubtest-deb-alice,hubtest-e2e-bob"
	want := "root:x:0:0::/root:/bin/bash\nshadow:x:42:hub\njupyterhub:x:1009:hubtest-deb-alice"
	if got := ourAccounts(db); got != want {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}
}
