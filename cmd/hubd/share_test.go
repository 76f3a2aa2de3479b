package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hubd/hubd/internal/testutil"
)

// shareConfig writes a configuration whose shares live under dir.
func shareConfig(t *testing.T, dir string) string {
	t.Helper()
	p := filepath.Join(dir, "hubd.toml")
	cfg := "[auth]\nallowed_group = \"users\"\n\n[shares]\nroot = \"" + filepath.Join(dir, "shares") + "\"\ngroup_prefix = \"hubtest-clish-\"\n"
	if err := os.WriteFile(p, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestShareCLIUsageAndRefusals(t *testing.T) {
	if code, out, _ := hubd(t, "", "share"); code != 2 || !strings.Contains(out, "check NAME|public") {
		t.Errorf("share: %d\n%s", code, out)
	}
	cfg := shareConfig(t, t.TempDir())
	if code, _, _ := hubd(t, "", "share", "add", "--config", cfg, "proj"); code != 2 {
		t.Errorf("share add without users: %d", code)
	}
	geteuid = func() int { return 1000 }
	t.Cleanup(func() { geteuid = os.Geteuid })
	for _, action := range []string{"create", "add", "remove", "delete", "repair"} {
		code, _, errOut := hubd(t, "", "share", action, "--config", cfg, "proj", "someone")
		if code != 1 || !strings.Contains(errOut, "must run as root: run `sudo hubd share "+action+"`") {
			t.Errorf("%s as non-root: %d %s", action, code, errOut)
		}
	}
	if code, out, _ := hubd(t, "", "share", "list", "--config", cfg); code != 0 || !strings.Contains(out, "no shares yet") {
		t.Errorf("list as non-root: %d %s", code, out)
	}
}

func TestShareCLI(t *testing.T) {
	testutil.NeedRoot(t)
	dir := t.TempDir()
	cfg := shareConfig(t, dir)
	t.Cleanup(func() { exec.Command("groupdel", "hubtest-clish-proj").Run() })
	for _, bad := range []string{"../etc", "a b", strings.Repeat("x", 300)} {
		if code, _, errOut := hubd(t, "", "share", "create", "--config", cfg, bad); code != 1 || !strings.Contains(errOut, "share name") {
			t.Errorf("create %.20q: %d %s", bad, code, errOut)
		}
	}
	if code, _, errOut := hubd(t, "", "share", "create", "--config", cfg, "proj", "hubtest-nobody-here"); code != 1 || !strings.Contains(errOut, "no user") {
		t.Errorf("create with an unknown user: %d %s", code, errOut)
	}
	if code, out, errOut := hubd(t, "", "share", "create", "--config", cfg, "proj", "root"); code != 0 || !strings.Contains(out, "hubtest-clish-proj") {
		t.Fatalf("create: %d %s %s", code, out, errOut)
	}
	moved := filepath.Join(dir, "shares", "proj", "moved.txt")
	if err := os.WriteFile(moved, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, out, _ := hubd(t, "", "share", "check", "--config", cfg, "proj"); code != 1 || !strings.Contains(out, moved) || !strings.Contains(out, "sudo hubd share repair proj") {
		t.Errorf("check: %d %s", code, out)
	}
	if code, out, _ := hubd(t, "", "share", "repair", "--config", cfg, "proj"); code != 0 || !strings.Contains(out, "1 fixed") {
		t.Errorf("repair: %d %s", code, out)
	}
	if code, out, _ := hubd(t, "", "share", "list", "--config", cfg); code != 0 || !strings.Contains(out, "members: root") {
		t.Errorf("list: %d %s", code, out)
	}
	if code, _, errOut := hubd(t, "", "share", "delete", "--config", cfg, "proj"); code != 1 || !strings.Contains(errOut, "--purge") {
		t.Errorf("delete of a share with files: %d %s", code, errOut)
	}
	if code, _, errOut := hubd(t, "", "share", "delete", "--config", cfg, "--purge", "proj"); code != 0 {
		t.Errorf("delete --purge: %d %s", code, errOut)
	}
	if code, out, _ := hubd(t, "", "share", "create", "--config", cfg, "--public"); code != 0 || !strings.Contains(out, "public area ready") {
		t.Errorf("create --public: %d %s", code, out)
	}
	if fi, err := os.Stat(filepath.Join(dir, "shares", "public")); err != nil || fi.Mode()&(os.ModeSticky|os.ModeSetgid) != os.ModeSticky|os.ModeSetgid || fi.Mode().Perm() != 0o775 {
		t.Errorf("the public area: %v %v", fi.Mode(), err)
	}
}
