package e2e

import (
	"bytes"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"text/template"
	"time"

	"github.com/hubd/hubd/core/spawner"
	"github.com/hubd/hubd/internal/testlab"
)

// nsHub is a second hubd, running as a systemd service (Type=notify, the
// shipped unit) inside a real systemd booted in private namespaces. The
// network is shared, so the test reaches it on loopback.
type nsHub struct {
	t       *testing.T
	script  string
	dir     string
	config  string
	public  string
	flag    string // names the user whose next server is the memory eater
	configs map[string]string
}

const nsUnit = "hubtest-hubd"

func (n *nsHub) exec(args ...string) string {
	n.t.Helper()
	out, err := exec.Command(n.script, append([]string{"exec"}, args...)...).CombinedOutput()
	if err != nil {
		n.t.Fatalf("in the namespace, %v: %v\n%s\nhub log:\n%s", args, err, out, n.log())
	}
	return strings.TrimSpace(string(out))
}

// query runs a systemctl-style query whose exit status is part of the
// answer (is-active says "activating" with status 3): only its output
// counts.
func (n *nsHub) query(args ...string) string {
	out, _ := exec.Command(n.script, append([]string{"exec"}, args...)...).Output()
	return strings.TrimSpace(string(out))
}

func (n *nsHub) log() string {
	out, _ := exec.Command(n.script, "exec", "journalctl", "-u", nsUnit, "-n", "60", "--no-pager", "-o", "cat").CombinedOutput()
	return string(out)
}

func (n *nsHub) mainPID() string {
	return n.exec("systemctl", "show", "-p", "MainPID", "--value", nsUnit)
}

// useConfig switches the config file to one of the prepared variants.
func (n *nsHub) useConfig(kind string) {
	n.t.Helper()
	if err := os.WriteFile(n.config, []byte(n.configs[kind]), 0o644); err != nil {
		n.t.Fatal(err)
	}
}

func (n *nsHub) answers() error {
	resp, err := http.Get(n.public + "/hub/api")
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		return fmt.Errorf("status %d", resp.StatusCode)
	}
	return nil
}

func startNSHub(t *testing.T) *nsHub {
	t.Helper()
	root := repoRoot()
	n := &nsHub{t: t, script: filepath.Join(root, "scripts/systemd-in-ns.sh"), configs: map[string]string{}}
	testlab.Lock(t, testlab.CgroupsLock)
	if out, err := exec.Command(n.script, "start").CombinedOutput(); err != nil {
		t.Fatalf("boot systemd in namespaces: %v\n%s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command(n.script, "stop").CombinedOutput(); err != nil {
			t.Errorf("stop the namespaced systemd: %v\n%s", err, out)
		}
	})
	dir, err := os.MkdirTemp("", "hubtest-e2e-ns-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	n.dir = dir
	for _, d := range []string{"data", "logs", "backups", "run"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	os.Chmod(dir, 0o755)
	for _, f := range []string{"eater.py", "singleuser.sh"} {
		data, err := os.ReadFile(filepath.Join(root, "test/e2e/testdata", f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(binDir, f), data, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	n.flag = filepath.Join(dir, "eat-flag")

	// The config: the outer hub's, moved to other ports and directories,
	// running the wrapper command, with a memory limit for systemd units.
	base, err := os.ReadFile(env.config)
	if err != nil {
		t.Fatal(err)
	}
	pub, _ := spawner.FreePort()
	internal, _ := spawner.FreePort()
	n.public = fmt.Sprintf("http://127.0.0.1:%d", pub)
	cfg := strings.ReplaceAll(string(base), env.dataDir, dir)
	cfg = regexp.MustCompile(`(?m)^listen = .*$`).ReplaceAllString(cfg, fmt.Sprintf(`listen = "127.0.0.1:%d"`, pub))
	cfg = regexp.MustCompile(`(?m)^internal_listen = .*$`).ReplaceAllString(cfg, fmt.Sprintf(`internal_listen = "127.0.0.1:%d"`, internal))
	cfg = strings.NewReplacer(
		`command = ["/usr/bin/jupyterhub-singleuser"]`, `command = ["`+filepath.Join(binDir, "singleuser.sh")+`"]`,
		`memory_max = "0"`, `memory_max = "300M"`,
		`unit_prefix = "hubd-server"`, `unit_prefix = "hubtest-e2e-srv"`,
		"[spawner.environment]", "[spawner.environment]\nHUBTEST_EAT_FLAG = \""+n.flag+"\"",
	).Replace(cfg)
	n.configs["sudo"] = cfg
	n.configs["systemd"] = strings.Replace(cfg, `kind = "sudo"`, `kind = "systemd"`, 1)
	n.config = filepath.Join(dir, "hubd.toml")
	n.useConfig("sudo")

	// The shipped unit, as root (the systemd spawner needs root).
	tmpl, err := template.ParseFiles(filepath.Join(root, "core/host/templates/hubd.service"))
	if err != nil {
		t.Fatal(err)
	}
	var unit bytes.Buffer
	if err := tmpl.Execute(&unit, map[string]any{"User": "root", "Group": "root", "SupplementaryGroups": "",
		"Binary": helperBin, "Config": n.config, "BindLowPorts": false}); err != nil {
		t.Fatal(err)
	}
	unitFile := filepath.Join(dir, nsUnit+".service")
	if err := os.WriteFile(unitFile, unit.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	// /run is private to the namespace: the unit exists only there.
	n.exec("cp", unitFile, "/run/systemd/system/"+nsUnit+".service")
	n.exec("systemctl", "daemon-reload")
	return n
}

func TestHubUnderSystemd(t *testing.T) {
	need(t)
	n := startNSHub(t)

	t.Run("READY only once the hub answers", func(t *testing.T) {
		// Type=notify: `systemctl start` returns when hubd sent READY=1.
		n.exec("systemctl", "start", nsUnit)
		if err := n.answers(); err != nil {
			t.Fatalf("systemd had READY=1 but the hub does not answer: %v", err)
		}
		if st := n.exec("systemctl", "show", "-p", "StatusText", "--value", nsUnit); !strings.Contains(st, "servers running") {
			t.Errorf("STATUS= not sent: %q", st)
		}
	})

	bobs, alices := newBrowserAt(t, n.public), newBrowserAt(t, n.public)
	var bobPIDs string
	t.Run("a server of the sudo spawner", func(t *testing.T) {
		startServer(t, bobs, bob, bobPW)
		bobPIDs = fmt.Sprint(serverPIDs(t, bob))
		if bobPIDs == "[]" {
			t.Fatal("no server process for bob")
		}
	})

	t.Run("systemctl restart keeps it; a server of the systemd spawner", func(t *testing.T) {
		n.useConfig("systemd")
		n.exec("systemctl", "restart", nsUnit)
		if got := fmt.Sprint(serverPIDs(t, bob)); got != bobPIDs {
			t.Fatalf("bob's sudo server changed across systemctl restart: %s → %s", bobPIDs, got)
		}
		r := bobs.do("GET", "/user/"+bob+"/api", nil, nil)
		readAll(r)
		if r.StatusCode != 200 {
			t.Fatalf("bob's server after restart: %d", r.StatusCode)
		}
		startServer(t, alices, alice, alicePW)
		units := n.exec("systemctl", "list-units", "--plain", "--no-legend", "hubtest-e2e-srv-*")
		if !strings.Contains(units, "running") {
			t.Fatalf("alice's server is not a running transient unit:\n%s", units)
		}
		unit := strings.Fields(units)[0]
		if show := n.exec("systemctl", "show", unit); strings.Contains(show, "JUPYTERHUB_API_TOKEN") {
			t.Error("the API token is visible in systemctl show")
		}
	})

	both := func(t *testing.T) {
		t.Helper()
		for _, c := range []struct {
			b    *browser
			name string
		}{{bobs, bob}, {alices, alice}} {
			r := c.b.do("GET", "/user/"+c.name+"/api", nil, nil)
			readAll(r)
			if r.StatusCode != 200 {
				t.Errorf("%s's server: %d", c.name, r.StatusCode)
			}
		}
		if got := fmt.Sprint(serverPIDs(t, bob)); got != bobPIDs {
			t.Errorf("bob's server pids changed: %s → %s", bobPIDs, got)
		}
	}

	t.Run("kill -9 of hubd: systemd restarts it and both are re-attached", func(t *testing.T) {
		before := n.mainPID()
		units := n.exec("systemctl", "list-units", "--plain", "--no-legend", "hubtest-e2e-srv-*")
		n.exec("systemctl", "kill", "--kill-whom=main", "--signal=SIGKILL", nsUnit)
		if err := waitFor(60*time.Second, func() error {
			pid := n.mainPID()
			if pid == before || pid == "0" || pid == "" || n.query("systemctl", "is-active", nsUnit+".service") != "active" {
				return fmt.Errorf("not back yet (main pid %s)", pid)
			}
			return n.answers()
		}); err != nil {
			t.Fatalf("%v\n%s", err, n.log())
		}
		both(t)
		if after := n.exec("systemctl", "list-units", "--plain", "--no-legend", "hubtest-e2e-srv-*"); after != units {
			t.Errorf("the transient units changed across the crash:\n%s\n→\n%s", units, after)
		}
	})

	t.Run("systemctl reload restarts in place", func(t *testing.T) {
		before := n.mainPID()
		n.exec("systemctl", "reload", nsUnit)
		if err := waitFor(30*time.Second, n.answers); err != nil {
			t.Fatal(err)
		}
		if after := n.mainPID(); after != before {
			t.Errorf("reload changed the main pid %s → %s; want an in-place restart", before, after)
		}
		both(t)
	})

	t.Run("a server above MemoryMax is killed and reported with the reason", func(t *testing.T) {
		r := bobs.do("DELETE", "/hub/api/users/"+bob+"/server", nil, map[string]string{"X-XSRFToken": bobs.cookie("/hub/", "_xsrf")})
		readAll(r)
		if r.StatusCode != http.StatusNoContent {
			t.Fatalf("stop bob's sudo server: %d", r.StatusCode)
		}
		if err := os.WriteFile(n.flag, []byte(bob), 0o644); err != nil {
			t.Fatal(err)
		}
		readAll(bobs.do("GET", "/hub/spawn", nil, nil))
		if err := waitFor(60*time.Second, func() error {
			r := bobs.do("GET", "/user/"+bob+"/", nil, nil)
			body := readAll(r)
			if !strings.Contains(body, "eater") {
				return fmt.Errorf("status %d", r.StatusCode)
			}
			return nil
		}); err != nil {
			t.Fatalf("the eater never answered: %v\n%s", err, n.log())
		}
		// This request makes the server allocate until the kernel kills it.
		if r, err := bobs.client.Get(n.public + "/user/" + bob + "/eat"); err == nil {
			readAll(r)
		}
		var home string
		if err := waitFor(60*time.Second, func() error {
			home = readAll(bobs.do("GET", "/hub/home", nil, nil))
			if !strings.Contains(home, "Your server stopped") {
				return fmt.Errorf("not reported yet")
			}
			return nil
		}); err != nil {
			t.Fatalf("%v\nhome page:\n%s\n%s", err, home, n.log())
		}
		t.Logf("home page: %s", regexp.MustCompile(`Your server stopped:[^<]*`).FindString(home))
		if !strings.Contains(home, "SIGKILL") && !strings.Contains(strings.ToLower(home), "memory") {
			t.Errorf("the home page does not say the server was killed at its memory limit:\n%s", home)
		}
	})

	n.exec("systemctl", "stop", nsUnit)
}
