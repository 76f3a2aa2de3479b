package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"text/template"
	"time"

	"github.com/hubd/hubd/internal/testlab/oidclab"
)

// ssoHub is a second hub, next to the shared one, that offers PAM and
// single sign-on through a real provider (Hydra) with account mode mode.
// It runs as the unprivileged hub account with the sudo spawner, like the
// shared hub; the test stops it, and its users' accounts (with their
// servers) go with the test's host cleanup.
func ssoHub(t *testing.T, idp *oidclab.Provider, mode string) *hubProcess {
	t.Helper()
	c := newHubConfig(t, "hubtest-e2e-sso-")
	secret := filepath.Join(c.dir, "oidc-secret")
	if err := os.WriteFile(secret, []byte(idp.Client.Secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(secret, env.hub.uid, env.hub.gid); err != nil {
		t.Fatal(err)
	}
	c.base = []byte(withSSO(string(c.base), idp, secret, mode))
	if mode == "create" {
		installAccountHelperRule(t, c.path())
	}
	return c.start("sso")
}

// withSSO turns a configuration as `hubd config show` prints it into one
// that also offers single sign-on with idp (members of hubtest-users) and
// the account mode.
func withSSO(cfg string, idp *oidclab.Provider, secret, mode string) string {
	return strings.NewReplacer(
		`methods = ["pam"]`, `methods = ["pam", "oidc"]`,
		`name = "single sign-on"`, `name = "Hydra"`,
		`issuer = ""`, `issuer = "`+idp.Issuer+`"`,
		`client_id = ""`, `client_id = "`+idp.Client.ID+`"`,
		`client_secret_file = ""`, `client_secret_file = "`+secret+`"`,
		`scopes = ["openid", "profile", "email"]`, `scopes = ["openid", "profile", "email", "groups"]`,
		`allowed_groups = []`, `allowed_groups = ["hubtest-users"]`,
		`account_mode = "existing"`, `account_mode = "`+mode+`"`,
	).Replace(cfg)
}

// installAccountHelperRule installs the sudoers file hubd setup writes for
// account_mode = "create" (the shipped template, checked by visudo first)
// and removes it when the test ends.
func installAccountHelperRule(t *testing.T, configPath string) {
	t.Helper()
	tmpl, err := template.ParseFiles(filepath.Join(repoRoot(), "core/host/templates/sudoers-hubd"))
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := tmpl.Execute(&buf, map[string]any{"HubUser": hubUser, "Group": group, "HelperPath": helperBin,
		"ConfigPath": configPath, "CreateAccounts": true}); err != nil {
		t.Fatal(err)
	}
	tmp := filepath.Join(t.TempDir(), "sudoers")
	if err := os.WriteFile(tmp, buf.Bytes(), 0o440); err != nil {
		t.Fatal(err)
	}
	if err := run("visudo", "-cf", tmp); err != nil {
		t.Fatalf("the account helper rule does not validate: %v", err)
	}
	const file = "/etc/sudoers.d/hubtest-e2e-sso"
	if err := os.WriteFile(file, buf.Bytes(), 0o440); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove(file) })
}

func readFile(p string) string {
	b, _ := os.ReadFile(p)
	return string(b)
}

// cellResult is what test/browser/sso-login.js reports.
type cellResult struct {
	OK    bool   `json:"ok"`
	Error string `json:"error"`
	UID   int    `json:"uid"`
	Home  string `json:"home"`
	Lines int    `json:"lines"`
}

// signInAndRunCell drives Chromium through the hub's "Sign in with"
// button and the provider's form to the notebook, and runs a cell there.
func signInAndRunCell(t *testing.T, hub *hubProcess, providerUser, password, hubUserName, file string) cellResult {
	t.Helper()
	script := filepath.Join(repoRoot(), "test/browser/sso-login.js")
	shot := filepath.Join(repoRoot(), "test-artifacts", "e2e-sso-"+hubUserName+".png")
	_ = os.MkdirAll(filepath.Dir(shot), 0o755)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	args := []string{script, hub.public, providerUser, password, hubUserName, shot}
	if file != "" {
		args = append(args, file)
	}
	out, err := exec.CommandContext(ctx, "node", args...).Output()
	var r cellResult
	if jerr := json.Unmarshal(bytes.TrimSpace(out), &r); jerr != nil || err != nil || !r.OK {
		t.Fatalf("browser: %v\n%s\nhub log:\n%s", err, out, readFile(hub.log))
	}
	return r
}

// TestChromiumSignsInWithSSO: a person signs in at the provider, lands on
// the notebook and runs a cell, which runs as the Linux account the
// account mode gives: an existing member's, then one created at the first
// sign-in.
func TestChromiumSignsInWithSSO(t *testing.T) {
	need(t)
	if _, err := os.Stat(filepath.Join(repoRoot(), "test/browser/node_modules/playwright-core")); err != nil {
		t.Fatalf("playwright-core is not installed: run `scripts/deps.sh test`")
	}
	idp := oidclab.Start(t, oidclab.Options{EnforcePKCE: true})

	t.Run("existing", func(t *testing.T) {
		const name = "hubtest-e2e-sso1"
		if err := env.host.User(name, "", group); err != nil {
			t.Fatal(err)
		}
		idp.AddUser(oidclab.User{Username: "sso-one", Password: "sso-one-pw", Groups: []string{"hubtest-users"},
			Claims: map[string]any{"preferred_username": name}})
		hub := ssoHub(t, idp, "existing")
		r := signInAndRunCell(t, hub, "sso-one", "sso-one-pw", name, "")
		u, _ := user.Lookup(name)
		if strconv.Itoa(r.UID) != u.Uid || r.Home != u.HomeDir {
			t.Errorf("the cell runs as uid %d with home %s; want %s's %s, %s", r.UID, r.Home, name, u.Uid, u.HomeDir)
		}
	})

	t.Run("create", func(t *testing.T) {
		const name = "hubtest-e2e-new"
		if err := env.host.Adopt(name); err != nil {
			t.Fatal(err)
		}
		if _, err := user.Lookup(name); err == nil {
			t.Fatalf("%s exists before its first sign-in", name)
		}
		idp.AddUser(oidclab.User{Username: "sso-new", Password: "sso-new-pw", Groups: []string{"hubtest-users"},
			Claims: map[string]any{"preferred_username": name}})
		hub := ssoHub(t, idp, "create")
		r := signInAndRunCell(t, hub, "sso-new", "sso-new-pw", name, "")
		u, err := user.Lookup(name)
		if err != nil {
			t.Fatalf("no account after the first sign-in: %v", err)
		}
		if strconv.Itoa(r.UID) != u.Uid || r.UID < 1000 {
			t.Errorf("the cell runs as uid %d; want the new account's %s", r.UID, u.Uid)
		}
		g, _ := user.LookupGroup(group)
		if gids, _ := u.GroupIds(); g == nil || !slices.Contains(gids, g.Gid) {
			t.Errorf("the new account is in %v, not in %s", gids, group)
		}
	})
}

// TestChromiumSignsInWithSSODynamic: with account_mode = "dynamic" the hub
// (as root, systemd spawner, inside systemd booted in namespaces) runs
// the server as a systemd dynamic user: the cell runs as a uid no Linux
// account has, in the persistent state directory, and the file it wrote
// is still there after the server was stopped, the person signed in again
// and the server started anew.
func TestChromiumSignsInWithSSODynamic(t *testing.T) {
	need(t)
	const name = "hubtest-e2e-dyn"
	idp := oidclab.Start(t, oidclab.Options{EnforcePKCE: true})
	idp.AddUser(oidclab.User{Username: "sso-dyn", Password: "sso-dyn-pw", Groups: []string{"hubtest-users"},
		Claims: map[string]any{"preferred_username": name}})
	n := startNSHub(t)
	secret := filepath.Join(n.dir, "oidc-secret")
	if err := os.WriteFile(secret, []byte(idp.Client.Secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	n.configs["dynamic"] = withSSO(n.configs["systemd"], idp, secret, "dynamic")
	n.useConfig("dynamic")
	t.Cleanup(func() {
		for _, p := range []string{"/var/lib/private/hubd-users/" + name, "/var/lib/hubd-users/" + name} {
			os.RemoveAll(p)
		}
		os.Remove("/var/lib/hubd-users")
		os.Remove("/var/lib/private/hubd-users")
	})
	n.exec("systemctl", "start", nsUnit)
	hub := &hubProcess{public: n.public, log: filepath.Join(n.dir, "journal.log")}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("hub journal:\n%s", n.log())
		}
	})

	first := signInAndRunCell(t, hub, "sso-dyn", "sso-dyn-pw", name, "kept")
	if _, err := user.LookupId(strconv.Itoa(first.UID)); err == nil || first.UID == 0 {
		t.Errorf("the cell runs as uid %d, a Linux account; want a dynamic user", first.UID)
	}
	if first.Home != "/var/lib/hubd-users/"+name || first.Lines != 1 {
		t.Errorf("first run: home %s, %d lines; want the state directory and 1 line", first.Home, first.Lines)
	}

	// The server stops (behind the hub's back: the poller notices), the
	// person signs in again in a fresh browser, and the server starts anew.
	unit := n.exec("systemctl", "list-units", "--plain", "--no-legend", "hubtest-e2e-srv-*")
	if unit == "" {
		t.Fatal("no unit for the dynamic user's server")
	}
	n.exec("systemctl", "stop", strings.Fields(unit)[0])
	if err := waitFor(30*time.Second, func() error {
		if out := n.query("systemctl", "list-units", "--plain", "--no-legend", "hubtest-e2e-srv-*"); out != "" {
			return fmt.Errorf("still listed: %s", out)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	second := signInAndRunCell(t, hub, "sso-dyn", "sso-dyn-pw", name, "kept")
	if second.Lines != 2 || second.Home != first.Home {
		t.Errorf("second run: home %s, %d lines in the file; want the first run's line kept (2 lines)", second.Home, second.Lines)
	}
	n.exec("systemctl", "stop", nsUnit)
}
