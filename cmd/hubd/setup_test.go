package main

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/hubd/hubd/core/host"
	"github.com/hubd/hubd/internal/testutil"
)

// The names and paths of this test's installation: system files are named
// hubtest-hs, never hubd, so the product's real files are never touched.
const (
	hsName   = "hubtest-hs"
	hsHub    = "hubtest-hs-hub"
	hsGroup  = "hubtest-hs"
	hsMember = "hubtest-hs-alice"
	hsPass   = "alice-pw-123"
)

var hsSystemFiles = []string{ // the sudoers rule first: it is the one privilege
	"/etc/sudoers.d/" + hsName, "/etc/pam.d/" + hsName, "/etc/pam.d/" + hsName + "-spawn", "/etc/profile.d/" + hsName + ".sh",
	"/etc/systemd/system/" + hsName + ".service",
}

// hsInstall is a temporary root for every configurable path, with the
// cleanup of everything setup may create on the real system.
func hsInstall(t *testing.T) (root string, args []string) {
	t.Helper()
	testutil.NeedRoot(t)
	h := &testutil.Host{}
	t.Cleanup(func() {
		for _, f := range hsSystemFiles {
			os.Remove(f)
			tmps, _ := filepath.Glob(filepath.Join(filepath.Dir(f), "."+filepath.Base(f)+".tmp-*"))
			for _, tmp := range tmps {
				os.Remove(tmp)
			}
		}
		// Hand what setup created to testutil, which removes it.
		if _, err := user.Lookup(hsHub); err == nil {
			_ = h.SystemUser(hsHub)
		}
		for _, g := range []string{hsGroup, hsHub} {
			if _, err := user.LookupGroup(g); err == nil {
				_ = h.Group(g)
			}
		}
		h.Cleanup()
	})
	if err := h.User(hsMember, hsPass); err != nil {
		t.Fatal(err)
	}
	root = t.TempDir()
	// Members must reach the shared environment under the root.
	for _, d := range []string{root, filepath.Dir(root)} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	args = []string{"--config", filepath.Join(root, "etc/hubd.toml"), "--name", hsName, "--hub-user", hsHub, "--group", hsGroup,
		"--data-dir", filepath.Join(root, "var/lib/hubd"), "--log-dir", filepath.Join(root, "var/log/hubd"),
		"--backup-dir", filepath.Join(root, "var/backups/hubd"), "--runtime-dir", filepath.Join(root, "run/hubd"),
		"--env-dir", filepath.Join(root, "opt/hubd/env"), "--kernel-dir", filepath.Join(root, "kernels"),
		"--helper-path", filepath.Join(root, "usr/local/bin/hubd")}
	return root, args
}

// listing describes every path setup touches (mode, owner, sha256 of
// files) and the accounts it manages, for before/after comparisons.
func listing(t *testing.T, root string) string {
	t.Helper()
	var b strings.Builder
	add := func(p string, fi fs.FileInfo) {
		st := fi.Sys().(*syscall.Stat_t)
		fmt.Fprintf(&b, "%s %v %d:%d", p, fi.Mode(), st.Uid, st.Gid)
		switch {
		case fi.Mode().IsRegular():
			data, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			fmt.Fprintf(&b, " %x", sha256.Sum256(data))
		case fi.Mode()&fs.ModeSymlink != 0:
			target, _ := os.Readlink(p)
			b.WriteString(" -> " + target)
		}
		b.WriteByte('\n')
	}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		add(p, fi)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range hsSystemFiles {
		if fi, err := os.Lstat(f); err == nil {
			add(f, fi)
		}
	}
	for _, q := range [][]string{{"passwd", hsHub}, {"group", hsGroup, hsHub, "shadow"}} {
		out, _ := exec.Command("getent", q...).Output()
		b.Write(out)
	}
	return b.String()
}

func findingsOf(t *testing.T, out string) map[string]host.Finding {
	t.Helper()
	var list []host.Finding
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		t.Fatalf("doctor --json: %v\n%s", err, out)
	}
	m := map[string]host.Finding{}
	for _, f := range list {
		m[f.Check] = f
	}
	return m
}

func TestSetupDoctorUninstall(t *testing.T) {
	root, args := hsInstall(t)
	cfg := filepath.Join(root, "etc/hubd.toml")
	env := filepath.Join(root, "opt/hubd/env")
	db := filepath.Join(root, "var/lib/hubd/hubd.sqlite")
	setupCmd := "hubd setup --config " + cfg + " --name " + hsName + " --hub-user " + hsHub

	before := listing(t, root)
	code, out, errs := hubd(t, "", append([]string{"setup", "--dry-run", "--add-member", hsMember}, args...)...)
	if code != 0 || !strings.Contains(out, "would change  sudoers rule /etc/sudoers.d/"+hsName) || !strings.Contains(out, "nothing was changed") {
		t.Fatalf("dry run: %d\n%s%s", code, out, errs)
	}
	if after := listing(t, root); after != before {
		t.Fatalf("dry run changed the host:\nbefore:\n%s\nafter:\n%s", before, after)
	}

	if code, out, errs = hubd(t, "", append([]string{"setup", "--add-member", hsMember}, args...)...); code != 0 {
		t.Fatalf("setup: %d\n%s%s", code, out, errs)
	}
	first := listing(t, root)
	for _, want := range []string{
		filepath.Join(root, "var/lib/hubd") + " drwxr-x---", filepath.Join(root, "run/hubd") + " drwxr-xr-x",
		"/etc/sudoers.d/" + hsName + " -r--r----- 0:0", filepath.Join(root, "usr/local/bin/hubd") + " -rwxr-xr-x 0:0",
	} {
		if !strings.Contains(first, want) {
			t.Errorf("after setup, the listing lacks %q:\n%s", want, first)
		}
	}

	// Again, from the record alone: every step unchanged, nothing touched.
	if code, out, errs = hubd(t, "", "setup", "--config", cfg); code != 0 || !strings.Contains(out, "nothing to do: all") {
		t.Fatalf("second setup: %d\n%s%s", code, out, errs)
	}
	for _, l := range strings.Split(out, "\n") {
		if l != "" && !strings.HasPrefix(l, " ") && !strings.HasPrefix(l, "unchanged") && !strings.HasPrefix(l, "nothing to do") {
			t.Errorf("second setup line %q is not \"unchanged\"", l)
		}
	}
	if second := listing(t, root); second != first {
		t.Errorf("second setup changed the host:\nfirst:\n%s\nsecond:\n%s", first, second)
	}
	if code, _, errs = hubd(t, "", "setup", "--config", cfg, "--group", "hubtest-other"); code != 1 || !strings.Contains(errs, "--group disagree") {
		t.Errorf("setup with a flag contradicting the config: %d %s", code, errs)
	}

	// Doctor on the fresh install, logging the member in through PAM.
	code, out, errs = hubd(t, hsPass+"\n", "doctor", "--config", cfg, "--json", "--user", hsMember)
	found := findingsOf(t, out)
	for check, f := range found {
		switch {
		case strings.HasPrefix(check, "admin socket"), strings.HasPrefix(check, "backups"):
			if f.Level == host.Fail {
				t.Errorf("%s: %s %s", check, f.Level, f.Message)
			}
		case strings.HasPrefix(check, "port "):
			// Another program on this machine may hold the port; then the
			// finding must name it.
			if f.Level != host.OK && !strings.Contains(f.Message, "in use by") {
				t.Errorf("%s: %s %s", check, f.Level, f.Message)
			}
		case f.Level != host.OK:
			t.Errorf("%s: %s %s (fix: %s)", check, f.Level, f.Message, f.Fix)
		}
	}
	for _, check := range []string{"PAM login of " + hsMember + " (service " + hsName + ")", "sudo rule (as " + hsMember + ")",
		"password checks", "single-user server /usr/bin/jupyterhub-singleuser", "shared environment " + env, "database schema " + db} {
		if _, ok := found[check]; !ok {
			t.Errorf("doctor did not check %q; it checked %v", check, found)
		}
	}
	if t.Failed() {
		t.Fatalf("doctor on a fresh install: exit %d\n%s%s", code, out, errs)
	}

	// Inject faults; doctor names each with its fix.
	for _, c := range [][]string{{"gpasswd", "--delete", hsHub, "shadow"}, {"chmod", "0700", env}, {"cp", "../../upgrade/testdata/schema-v1.sqlite", db}} {
		if out, err := exec.Command(c[0], c[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%v: %v %s", c, err, out)
		}
	}
	if err := os.Remove(hsSystemFiles[0]); err != nil {
		t.Fatal(err)
	}
	code, out, _ = hubd(t, "", "doctor", "--config", cfg, "--json")
	found = findingsOf(t, out)
	if code != 1 {
		t.Errorf("doctor exit %d with faults, want 1", code)
	}
	for check, fix := range map[string]string{
		"hub user " + hsHub:                "usermod --append --groups shadow " + hsHub,
		"password checks":                  "usermod -aG shadow " + hsHub,
		"sudoers rule " + hsSystemFiles[0]: setupCmd,
		"sudo rule (as " + hsMember + ")":  setupCmd,
		"shared environment " + env:        "hubd env repair --config " + cfg,
		"database schema " + db:            "hubd upgrade-db --config " + cfg,
	} {
		if f := found[check]; f.Level != host.Fail || !strings.Contains(f.Fix, fix) {
			t.Errorf("%s: %s %q fix %q, want FAIL with fix %q", check, f.Level, f.Message, f.Fix, fix)
		}
	}

	// Setup repairs all but the schema, which is upgrade-db's job.
	if code, out, errs = hubd(t, "", "setup", "--config", cfg); code != 0 {
		t.Fatalf("repairing setup: %d\n%s%s", code, out, errs)
	}
	if err := os.Remove(db); err != nil {
		t.Fatal(err)
	}
	if code, out, _ = hubd(t, "", "doctor", "--config", cfg); code != 0 || strings.Contains(out, "FAIL ") {
		t.Errorf("doctor after the repair: exit %d\n%s", code, out)
	}

	// Uninstall keeps data and accounts; --purge removes them.
	if code, out, errs = hubd(t, "", "uninstall", "--config", cfg); code != 0 {
		t.Fatalf("uninstall: %d\n%s%s", code, out, errs)
	}
	for _, f := range hsSystemFiles {
		if _, err := os.Lstat(f); err == nil {
			t.Errorf("uninstall left %s", f)
		}
	}
	for _, p := range []string{filepath.Join(root, "var/lib/hubd"), filepath.Join(root, "var/backups/hubd"), env, cfg} {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("uninstall without --purge removed %s: %v", p, err)
		}
	}
	if _, err := user.Lookup(hsHub); err != nil {
		t.Errorf("uninstall without --purge removed the hub user: %v", err)
	}
	if code, out, errs = hubd(t, "", "uninstall", "--config", cfg, "--purge"); code != 0 {
		t.Fatalf("uninstall --purge: %d\n%s%s", code, out, errs)
	}
	if left, _ := filepath.Glob(filepath.Join(root, "*")); len(left) != 0 {
		t.Errorf("purge left %v", left)
	}
	for _, g := range []string{hsGroup, hsHub} {
		if _, err := user.LookupGroup(g); err == nil {
			t.Errorf("purge kept group %s", g)
		}
	}
	if _, err := user.Lookup(hsHub); err == nil {
		t.Errorf("purge kept the hub user")
	}
	if _, err := user.Lookup(hsMember); err != nil {
		t.Errorf("purge removed the member, whom setup did not create: %v", err)
	}
}
