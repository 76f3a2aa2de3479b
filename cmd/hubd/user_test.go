package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hubd/hubd/core/server"
	"github.com/hubd/hubd/core/server/servertest"
	"github.com/hubd/hubd/core/store"
)

// TestUserCommands runs hubd user against a running hub's admin socket:
// the list says where each admin flag comes from, admin and --revoke
// change it (the revoke names the rule that decides at the next login),
// unlink frees a name from its login, and delete changes nothing without
// --yes.
func TestUserCommands(t *testing.T) {
	cfg := servertest.Config(t, nil)
	h := servertest.Start(t, cfg, server.Options{})
	ctx := context.Background()
	if _, err := h.Store().BindLogin(ctx, store.Login{Name: "carol", AdminRule: "auth.oidc.admin_groups: lab-admins",
		Account: store.AccountDynamic, Method: "oidc", Subject: "https://idp.example#c-1"}); err != nil {
		t.Fatal(err)
	}
	if _, err := h.Store().CreateUser(ctx, "bob", false); err != nil {
		t.Fatal(err)
	}
	// The commands need only the socket from the configuration.
	path := filepath.Join(t.TempDir(), "hubd.toml")
	if err := os.WriteFile(path, []byte("[admin]\nsocket = \""+h.Config.Admin.Socket+"\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	hubd := func(wantCode int, args ...string) (string, string) {
		t.Helper()
		var stdout, stderr bytes.Buffer
		code := run(ctx, append(append([]string{}, args...), "--config", path), strings.NewReader(""), &stdout, &stderr, func(string) string { return "" })
		if code != wantCode {
			t.Fatalf("hubd %s: exit %d, want %d\n%s%s", strings.Join(args, " "), code, wantCode, stdout.String(), stderr.String())
		}
		return stdout.String(), stderr.String()
	}

	out, _ := hubd(0, "user", "list")
	for _, want := range []string{"NAME", "carol  oidc   yes, by auth.oidc.admin_groups: lab-admins  dynamic", "bob    -      no"} {
		if !strings.Contains(out, want) {
			t.Errorf("user list lacks %q:\n%s", want, out)
		}
	}
	if out, _ := hubd(0, "user", "admin", "bob"); out != "bob is an admin (by hand)\n" {
		t.Errorf("user admin bob: %q", out)
	}
	out, errOut := hubd(0, "user", "admin", "--revoke", "carol")
	if out != "carol is no longer an admin\n" || !strings.Contains(errOut, "note: auth.oidc.admin_groups: lab-admins made carol an admin") {
		t.Errorf("user admin --revoke carol: %q %q", out, errOut)
	}
	// Unlink frees carol's name from her SSO subject (audited), once;
	// bob never logged in, so there is nothing to unlink.
	if out, _ := hubd(0, "user", "unlink", "carol"); !strings.HasPrefix(out, "carol is no longer linked to a login; the next login as carol, through any login method the hub offers (oidc included)") {
		t.Errorf("user unlink carol: %q", out)
	}
	if ev, err := h.Store().Events(ctx, store.EventFilter{Action: "user.unlink"}); err != nil || len(ev) != 1 || ev[0].Target != "carol" || ev[0].Detail != "unlinked from their oidc login" {
		t.Errorf("audit of the unlink: %+v %v", ev, err)
	}
	if _, errOut := hubd(1, "user", "unlink", "carol"); !strings.Contains(errOut, "carol is not linked to a login") {
		t.Errorf("a second unlink: %q", errOut)
	}
	if out, _ := hubd(0, "user", "list"); !strings.Contains(out, "carol  -      ") {
		t.Errorf("user list after the unlink:\n%s", out)
	}
	if _, errOut := hubd(2, "user", "delete", "bob"); !strings.Contains(errOut, "would stop 0 active servers") || !strings.Contains(errOut, "--yes") {
		t.Errorf("delete without --yes: %q", errOut)
	}
	if _, err := h.Store().UserByName(ctx, "bob"); err != nil {
		t.Fatalf("bob after a delete without --yes: %v", err)
	}
	if out, _ := hubd(0, "user", "delete", "bob", "--yes"); out != "deleted the user bob\n" {
		t.Errorf("user delete bob --yes: %q", out)
	}
	if _, err := h.Store().UserByName(ctx, "bob"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("bob after the delete: %v", err)
	}
	if _, errOut := hubd(1, "user", "delete", "nobody-here", "--yes"); !strings.Contains(errOut, "no user nobody-here") {
		t.Errorf("delete of an unknown user: %q", errOut)
	}
}
