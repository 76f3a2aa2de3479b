package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"html"
	"net/http"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hubd/hubd/core/host"
	"github.com/hubd/hubd/internal/testlab/ldaplab"
	"github.com/hubd/hubd/internal/testutil"
)

// The LDAP tests run a second hub on a host whose accounts live in a real
// directory (ldaplab: slapd, with nslcd behind the host's NSS and PAM), as
// a lab whose people are all in LDAP has it: `hubd setup` installs it (and
// must notice the directory), the hub runs as its own unprivileged
// account, and the directory's users log in with their directory password
// and get servers running as their directory uid.
const (
	ldapName   = "hubtest-e2el"
	ldapHub    = "hubtest-e2el-hub"
	ldapBinDir = "/usr/local/libexec/hubtest-e2el"
	ldapAdmin  = "hubtest-ldap1" // in hubtest-ldapgrp and hubtest-ldapadm
	ldapMember = "hubtest-ldap2" // in hubtest-ldapgrp
	ldapOther  = "hubtest-ldap3" // in no group
	ldapAdmPW  = "ldap1-pw-123"
	ldapMemPW  = "ldap2-pw-456"
	ldapOthPW  = "ldap3-pw-789"
)

// ldapHost is the second hub and its installation.
type ldapHost struct {
	hub    *hubProcess
	config string
}

// ldapSystemFiles are what setup installs for it outside its directory,
// the sudoers rule first.
var ldapSystemFiles = []string{"/etc/sudoers.d/" + ldapName, "/etc/pam.d/" + ldapName, "/etc/pam.d/" + ldapName + "-spawn",
	"/etc/profile.d/" + ldapName + ".sh", "/etc/systemd/system/" + ldapName + ".service"}

// ldapHomes are the directory users' home directories, which the hub
// creates at their first start.
var ldapHomes = []string{"/home/" + ldapAdmin, "/home/" + ldapMember, "/home/" + ldapOther}

// removeLDAPLeftovers undoes what the LDAP hub leaves on the host, before
// (after a crashed run) and after the test.
func removeLDAPLeftovers() {
	for _, f := range ldapSystemFiles {
		os.Remove(f)
	}
	os.RemoveAll(ldapBinDir)
	if _, err := user.Lookup(ldapHub); err == nil {
		_ = exec.Command("pkill", "-KILL", "-u", ldapHub).Run()
		_ = exec.Command("userdel", ldapHub).Run()
	}
	for _, h := range ldapHomes {
		os.RemoveAll(h)
	}
}

// startLDAPHub writes the hub's configuration, runs `hubd setup` on it,
// and starts the hub as its account. Everything is undone when the test
// ends, before the directory goes.
func startLDAPHub(t *testing.T) *ldapHost {
	t.Helper()
	removeLDAPLeftovers()
	root, err := os.MkdirTemp("", "hubtest-e2el-")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(root, 0o755); err != nil {
		t.Fatal(err)
	}
	lh := &ldapHost{}
	t.Cleanup(func() {
		if lh.hub != nil {
			lh.hub.stop()
			if t.Failed() {
				t.Logf("LDAP hub log:\n%s", lh.hub.logTail())
			}
		}
		for _, u := range []string{ldapAdmin, ldapMember, ldapOther} {
			_ = exec.Command("pkill", "-KILL", "-u", u).Run()
		}
		if out, err := exec.Command(helperBin, "uninstall", "--purge", "--config", lh.config).CombinedOutput(); err != nil {
			t.Errorf("hubd uninstall --purge: %v\n%s", err, out)
		}
		removeLDAPLeftovers()
		os.RemoveAll(root)
	})
	var public string
	lh.config, public, err = writeHubConfig(root,
		`pam_service = "hubd"`, `pam_service = "`+ldapName+`"`,
		`allowed_group = "jupyterhub"`, `allowed_group = "hubtest-ldapgrp"`,
		`admin_group = ""`, `admin_group = "hubtest-ldapadm"`,
		// A local account, for logins while the directory is down.
		`allowed_users = []`, `allowed_users = ["`+alice+`"]`,
		`helper_path = "/usr/local/bin/hubd"`, `helper_path = "`+ldapBinDir+`/hubd"`,
		`enabled = true`, `enabled = false`, // no shared environment: not what this test is about
	)
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(helperBin, "setup", "--config", lh.config, "--name", ldapName, "--hub-user", ldapHub).CombinedOutput()
	if err != nil {
		t.Fatalf("hubd setup: %v\n%s", err, out)
	}
	pam, err := os.ReadFile("/etc/pam.d/" + ldapName)
	if err != nil || !strings.Contains(string(pam), "pam_ldap.so minimum_uid=1000 use_first_pass") {
		t.Fatalf("setup on a host whose NSS uses LDAP wrote a PAM service without pam_ldap (%v):\n%s\nsetup said:\n%s", err, pam, out)
	}
	hub, err := user.Lookup(ldapHub)
	if err != nil {
		t.Fatalf("setup did not create the hub account: %v", err)
	}
	uid, _ := strconv.Atoi(hub.Uid)
	gid, _ := strconv.Atoi(hub.Gid)
	lh.hub = &hubProcess{config: lh.config, public: "http://" + public, log: filepath.Join(root, "hubd.log"), uid: uid, gid: gid}
	if err := lh.hub.start(); err != nil {
		t.Fatalf("start the LDAP hub: %v\n%s", err, lh.hub.logTail())
	}
	return lh
}

// doctor runs `hubd doctor --json` (logging user in when given) and
// returns its exit code and findings by check.
func (lh *ldapHost) doctor(t *testing.T, userName, password string) (int, map[string]host.Finding) {
	t.Helper()
	args := []string{"doctor", "--config", lh.config, "--json"}
	if userName != "" {
		args = append(args, "--user", userName)
	}
	cmd := exec.Command(helperBin, args...)
	cmd.Stdin = strings.NewReader(password + "\n")
	out, err := cmd.Output()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	var list []host.Finding
	if err := json.Unmarshal(out, &list); err != nil {
		t.Fatalf("doctor --json: %v\n%s", err, out)
	}
	found := map[string]host.Finding{}
	for _, f := range list {
		found[f.Check] = f
	}
	return code, found
}

// findingOf is the one finding whose check starts with prefix.
func findingOf(t *testing.T, found map[string]host.Finding, prefix string) host.Finding {
	t.Helper()
	for check, f := range found {
		if strings.HasPrefix(check, prefix) {
			return f
		}
	}
	t.Fatalf("doctor has no check %q; it has %v", prefix, slices.Sorted(func(yield func(string) bool) {
		for k := range found {
			if !yield(k) {
				return
			}
		}
	}))
	return host.Finding{}
}

// loginError is the login page's sentence about a refused login.
var loginError = regexp.MustCompile(`<p class="error"[^>]*>[^<]*</p>`)

// procGroups is the supplementary group list of a process.
func procGroups(pid int) []string {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	for l := range strings.Lines(string(b)) {
		if rest, ok := strings.CutPrefix(l, "Groups:"); ok {
			return strings.Fields(rest)
		}
	}
	return nil
}

func TestLDAPThroughNSSAndPAM(t *testing.T) {
	need(t)
	dir := ldaplab.Start(t, ldaplab.Options{NSS: true})
	lh := startLDAPHub(t)

	t.Run("doctor is clean", func(t *testing.T) {
		code, found := lh.doctor(t, ldapAdmin, ldapAdmPW)
		for check, f := range found {
			switch {
			case strings.HasPrefix(check, "backups"):
				if f.Level == host.Fail {
					t.Errorf("%s: %s %s", check, f.Level, f.Message)
				}
			case f.Level != host.OK:
				t.Errorf("%s: %s %s (fix: %s)", check, f.Level, f.Message, f.Fix)
			}
		}
		if code != 0 {
			t.Errorf("doctor exit %d", code)
		}
		if f := findingOf(t, found, "user directory (ldap in /etc/nsswitch.conf"); !strings.Contains(f.Message, dir.URL) {
			t.Errorf("the directory finding does not name the directory %s: %s", dir.URL, f.Message)
		}
		if f := findingOf(t, found, "members group hubtest-ldapgrp through NSS"); !strings.Contains(f.Message, "gid 20100 from the directory, 2 members (hubtest-ldap1, hubtest-ldap2)") ||
			!strings.Contains(f.Message, "a lookup of hubtest-ldap1") {
			t.Errorf("members group: %s", f.Message)
		}
		findingOf(t, found, "admin group hubtest-ldapadm through NSS")
		if f := findingOf(t, found, "PAM login of "+ldapAdmin); !strings.Contains(f.Message, "uid 20001") || !strings.Contains(f.Message, "admin") {
			t.Errorf("PAM login: %s", f.Message)
		}
	})

	t.Run("a member spawns as their directory uid, with their directory groups and a new home", func(t *testing.T) {
		b := newBrowserAt(t, lh.hub.public)
		startServer(t, b, ldapMember, ldapMemPW)
		t.Cleanup(func() { stopServer(t, b, ldapMember) })
		pids := serverPIDs(t, ldapMember)
		if len(pids) != 1 {
			t.Fatalf("want one server of %s, got %v", ldapMember, pids)
		}
		if uid := procUID(pids[0]); uid != "20002" {
			t.Errorf("server runs as uid %s, want 20002 (the directory's uidNumber)", uid)
		}
		if g := procGroups(pids[0]); !slices.Contains(g, "20100") || !slices.Contains(g, "100") {
			t.Errorf("server's groups %v lack the directory group 20100 or the primary group 100", g)
		}
		fi, err := os.Stat("/home/" + ldapMember)
		if err != nil {
			t.Fatalf("the member's home was not created: %v", err)
		}
		if st := fi.Sys().(*syscall.Stat_t); st.Uid != 20002 || fi.Mode().Perm() != 0o700 {
			t.Errorf("home: owner %d, mode %v; want 20002, 0700", st.Uid, fi.Mode().Perm())
		}
		if _, err := os.Stat("/home/" + ldapMember + "/.profile"); err != nil {
			t.Errorf("home not copied from /etc/skel: %v", err)
		}
		openTree(t, b, ldapMember)
		kernel := startKernel(t, b, ldapMember)
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		for code, want := range map[string]string{
			"import os; os.getuid()":             "20002",
			"import os; 20100 in os.getgroups()": "True",
			"import os; os.getcwd()":             "'/home/" + ldapMember + "'",
			"import os; os.environ['SHELL']":     "'/bin/bash'", // the directory's loginShell
		} {
			if got, err := b.execute(ctx, ldapMember, kernel, code); err != nil || got != want {
				t.Errorf("%s = %q, %v; want %s", code, got, err, want)
			}
		}
	})

	t.Run("admins come from the directory's admin group", func(t *testing.T) {
		for name, pw := range map[string]string{ldapAdmin: ldapAdmPW, ldapMember: ldapMemPW} {
			b := newBrowserAt(t, lh.hub.public)
			resp := b.login(name, pw)
			readAll(resp)
			if resp.StatusCode != http.StatusFound {
				t.Fatalf("login %s: %d", name, resp.StatusCode)
			}
			var u struct{ Admin bool }
			if err := json.Unmarshal([]byte(readAll(b.do("GET", "/hub/api/users/"+name, nil, nil))), &u); err != nil {
				t.Fatal(err)
			}
			if u.Admin != (name == ldapAdmin) {
				t.Errorf("%s: admin %v", name, u.Admin)
			}
		}
	})

	t.Run("refused", func(t *testing.T) {
		for _, c := range []struct{ name, pw, want string }{
			{ldapOther, ldapOthPW, "You are not a member of group"},
			{ldapMember, "wrong", "Wrong user name or password"},
			{"hubtest-ldapnobody", "x", "Wrong user name or password"},
		} {
			b := newBrowserAt(t, lh.hub.public)
			resp := b.login(c.name, c.pw)
			body := readAll(resp)
			if resp.StatusCode == http.StatusFound || b.cookie("/hub/", "jupyterhub-hub-login") != "" {
				t.Errorf("%s logged in", c.name)
			}
			if !strings.Contains(body, c.want) {
				t.Errorf("%s: the page does not say %q", c.name, c.want)
			}
		}
		if _, err := os.Stat("/home/" + ldapOther); err == nil {
			t.Error("a refused user got a home directory")
		}
	})

	t.Run("directory down", func(t *testing.T) {
		dir.Stop(t)
		code, found := lh.doctor(t, "", "")
		if code != 1 {
			t.Errorf("doctor exit %d with the directory down, want 1", code)
		}
		f := findingOf(t, found, "user directory (ldap")
		if f.Level != host.Fail || !strings.Contains(f.Message, dir.URL) || !strings.Contains(f.Message, "does not answer") ||
			!strings.Contains(f.Fix, "start the directory server") {
			t.Errorf("directory finding with slapd stopped: %+v", f)
		}
		if f := findingOf(t, found, "members group hubtest-ldapgrp through NSS"); f.Level != host.Fail {
			t.Errorf("members group with slapd stopped: %+v", f)
		}
		// A local user still logs in; a directory user learns that the
		// service is down, not that the password is wrong.
		b := newBrowserAt(t, lh.hub.public)
		resp := b.login(alice, alicePW)
		readAll(resp)
		if resp.StatusCode != http.StatusFound {
			t.Errorf("local user %s with the directory down: %d\n%s", alice, resp.StatusCode, lh.hub.logTail())
		}
		resp = newBrowserAt(t, lh.hub.public).login(ldapMember, ldapMemPW)
		if body := readAll(resp); resp.StatusCode == http.StatusFound || !strings.Contains(body, "The login service is not working right now") {
			t.Errorf("directory user with the directory down: %d, page without the service message", resp.StatusCode)
		}
	})
}

// TestLDAPNativeBind: the "ldap" login method next to PAM, as JupyterHub's
// ldapauthenticator does it. The host knows nothing of the directory: its
// accounts hubtest-ldap1/2/3 are local ones (account_mode "existing", in
// the members group) with local passwords of their own, and
// the hub checks the directory password by binding as the user over
// StartTLS with the lab's CA, after a service account's search; the
// directory's groups decide who is allowed and who is an admin.
func TestLDAPNativeBind(t *testing.T) {
	need(t)
	dir := ldaplab.Start(t, ldaplab.Options{})
	h := &testutil.Host{}
	t.Cleanup(h.Cleanup)
	// All three local accounts are members: only the directory's groups
	// tell hubtest-ldap3 apart.
	for _, name := range []string{ldapAdmin, ldapMember, ldapOther} {
		if err := h.User(name, "local-pw-"+name, group); err != nil {
			t.Fatal(err)
		}
	}
	// The CA for the hub to read, and the service account's password for
	// the hub alone.
	// (t.TempDir's parent is private to root.)
	files, err := os.MkdirTemp("", "hubtest-e2e-ldapfiles-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(files) })
	if err := os.Chmod(files, 0o755); err != nil {
		t.Fatal(err)
	}
	ca, bindpw := filepath.Join(files, "ca.pem"), filepath.Join(files, "bindpw")
	pem, err := os.ReadFile(dir.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(ca, pem, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := dir.WriteBindPassword(bindpw); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(bindpw, env.hub.uid, env.hub.gid); err != nil {
		t.Fatal(err)
	}
	hub := startExtraHub(t, false,
		`methods = ["pam"]`, `methods = ["pam", "ldap"]`,
		`urls = []`, `urls = ["`+dir.URL+`"]`,
		`start_tls = false`, `start_tls = true`,
		`ca_file = ""`, `ca_file = "`+ca+`"`,
		`bind_dn = ""`, `bind_dn = "`+dir.BindDN+`"`,
		`bind_password_file = ""`, `bind_password_file = "`+bindpw+`"`,
		`user_search_base = ""`, `user_search_base = "`+dir.PeopleDN+`"`,
		`group_search_base = ""`, `group_search_base = "`+dir.GroupsDN+`"`,
		`allowed_groups = []`, `allowed_groups = ["hubtest-ldapgrp"]`,
		`admin_groups = []`, `admin_groups = ["hubtest-ldapadm"]`,
		"\ntimeout = \"5s\"", "\ntimeout = \"2s\"",
	)
	login := func(name, pw string) (*browser, int, string) {
		t.Helper()
		b := hub.browser(t)
		resp := b.login(name, pw)
		return b, resp.StatusCode, readAll(resp)
	}

	t.Run("directory users log in with the directory's password and spawn", func(t *testing.T) {
		b := hub.memberWithServer(t, ldapMember, ldapMemPW)
		u, _ := user.Lookup(ldapMember)
		pids := serverPIDs(t, ldapMember)
		if len(pids) != 1 || procUID(pids[0]) != u.Uid {
			t.Fatalf("%s's server: %v, want one running as the local uid %s", ldapMember, pids, u.Uid)
		}
		openTree(t, b, ldapMember)
		kernel := startKernel(t, b, ldapMember)
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		if got, err := b.execute(ctx, ldapMember, kernel, "import os; os.getuid()"); err != nil || got != u.Uid {
			t.Errorf("kernel uid %q, %v; want %s", got, err, u.Uid)
		}
		for name, pw := range map[string]string{ldapAdmin: ldapAdmPW, ldapMember: ldapMemPW} {
			b, status, _ := login(name, pw)
			if status != http.StatusFound {
				t.Fatalf("%s: %d", name, status)
			}
			var m struct{ Admin bool }
			_ = json.Unmarshal([]byte(readAll(b.do("GET", "/hub/api/users/"+name, nil, nil))), &m)
			if m.Admin != (name == ldapAdmin) {
				t.Errorf("%s: admin %v (the directory's admin group has only %s)", name, m.Admin, ldapAdmin)
			}
		}
	})

	t.Run("local users still log in through PAM", func(t *testing.T) {
		if _, status, body := login(alice, alicePW); status != http.StatusFound {
			t.Errorf("%s: %d\n%.300s", alice, status, body)
		}
	})

	t.Run("refused", func(t *testing.T) {
		for _, c := range []struct{ what, name, pw, says string }{
			{"outside the directory's allowed group", ldapOther, ldapOthPW, "is not in any of the groups allowed on this hub"},
			{"wrong password", ldapMember, "wrong", "Wrong user name or password"},
			{"unknown user", "hubtest-ldapnobody", ldapMemPW, "Wrong user name or password"},
			{"empty password", ldapMember, "", "Wrong user name or password"},
			{"filter wildcard", "*", ldapMemPW, "not a valid user name"},
			{"filter injection", ldapMember + ")(uid=*", ldapMemPW, "not a valid user name"},
			{"escaped NUL", ldapMember + `\00`, ldapMemPW, "not a valid user name"},
		} {
			b, status, body := login(c.name, c.pw)
			if status == http.StatusFound || b.cookie("/hub/", "jupyterhub-hub-login") != "" {
				t.Errorf("%s: logged in", c.what)
			}
			if !strings.Contains(html.UnescapeString(body), c.says) {
				t.Errorf("%s: the page does not say %q:\n%s", c.what, c.says, loginError.FindString(body))
			}
		}
	})

	t.Run("directory hung, then down", func(t *testing.T) {
		for _, fault := range []string{"hung", "down"} {
			if fault == "hung" {
				dir.Freeze(t)
			} else {
				dir.Thaw(t)
				dir.Stop(t)
			}
			if _, status, body := login(ldapMember, ldapMemPW); status == http.StatusFound ||
				!strings.Contains(body, "The directory that checks passwords is not answering") {
				t.Errorf("directory %s: %d, the page does not say the directory is not answering", fault, status)
			}
			if _, status, _ := login(alice, alicePW); status != http.StatusFound {
				t.Errorf("directory %s: local user %s: %d", fault, alice, status)
			}
		}
	})
}
