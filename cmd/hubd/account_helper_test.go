package main

import (
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/hubd/hubd/internal/testutil"
)

// TestAccountHelper: as root, with account_mode = "create", the helper
// creates a member account without a password and with a home from
// /etc/skel; it refuses bad names and a configuration that does not create
// accounts, and leaves an existing account alone.
func TestAccountHelper(t *testing.T) {
	testutil.NeedRoot(t)
	const group, name = "hubtest-ah", "hubtest-ah-new"
	var h testutil.Host
	t.Cleanup(h.Cleanup)
	if err := h.Group(group); err != nil {
		t.Fatal(err)
	}
	if err := h.Adopt(name); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	write := func(file, mode string) string {
		p := filepath.Join(dir, file)
		body := "[auth]\nallowed_group = \"" + group + "\"\nmethods = [\"pam\", \"oidc\"]\n[auth.oidc]\n" +
			"issuer = \"https://sso.example.org\"\nclient_id = \"hubd\"\nclient_secret_file = \"/etc/hubd/oidc-secret\"\n" +
			"allowed_groups = [\"lab\"]\naccount_mode = \"" + mode + "\"\n"
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	create, existing := write("create.toml", "create"), write("existing.toml", "existing")

	for _, bad := range []string{"../root", "-rf", "root", strings.Repeat("a", 40), "Alice"} {
		if code, _, errs := hubd(t, bad+"\n", "account-helper", "--config", create); code == 0 || !strings.Contains(errs, "refusing the account name") {
			t.Errorf("name %q: exit %d, %s", bad, code, errs)
		}
	}
	if code, _, errs := hubd(t, name+"\n", "account-helper", "--config", existing); code == 0 || !strings.Contains(errs, "does not create accounts") {
		t.Errorf("existing mode: exit %d, %s", code, errs)
	}
	if _, err := user.Lookup(name); err == nil {
		t.Fatal("an account was created before the helper was allowed to")
	}
	for range 2 { // the second run finds the account and leaves it
		if code, _, errs := hubd(t, name+"\n", "account-helper", "--config", create); code != 0 {
			t.Fatalf("create: exit %d, %s", code, errs)
		}
	}
	u, err := user.Lookup(name)
	if err != nil {
		t.Fatal(err)
	}
	gids, _ := u.GroupIds()
	g, _ := user.LookupGroup(group)
	if g == nil || !slices.Contains(gids, g.Gid) {
		t.Errorf("%s is in groups %v, want %s among them", name, gids, group)
	}
	if _, err := os.Stat(filepath.Join(u.HomeDir, ".bashrc")); err != nil {
		t.Errorf("home not made from /etc/skel: %v", err)
	}
	out, _ := exec.Command("getent", "shadow", name).Output()
	if fields := strings.Split(string(out), ":"); len(fields) < 2 || !strings.HasPrefix(fields[1], "!") {
		t.Errorf("the account has a usable password: %q", out)
	}
}
