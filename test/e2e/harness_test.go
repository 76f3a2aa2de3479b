// Package e2e runs the real hubd binary against real components: Linux
// users and PAM, the shipped PAM service file and sudoers rule (validated
// with visudo before it is installed), the real sudo, Debian's
// jupyterhub-singleuser with the classic Notebook UI, and hubd running as an
// unprivileged account in group shadow. It needs root (CI runs as root).
package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hubd/hubd/core/config"
	"github.com/hubd/hubd/core/host"
	"github.com/hubd/hubd/core/spawner"
	"github.com/hubd/hubd/internal/testutil"
)

// Names of everything the tests create on the host.
const (
	group     = "hubtest-e2e"
	hubUser   = "hubtest-e2e-hub"
	alice     = "hubtest-e2e-alice"
	bob       = "hubtest-e2e-bob"
	carol     = "hubtest-e2e-carol" // not a member
	alicePW   = "alice-pw-123"
	bobPW     = "bob-pw-456"
	carolPW   = "carol-pw-789"
	pamName   = "hubtest-e2e"
	sudoers   = "/etc/sudoers.d/hubtest-e2e"
	binDir    = "/usr/local/libexec/hubtest-e2e"
	helperBin = binDir + "/hubd"
	// sharePrefix starts the groups of the shares tests make.
	sharePrefix = "hubtest-e2s-"
)

// env is the shared fixture: built once in TestMain.
var env struct {
	ready    bool
	setupErr error
	dataDir  string
	config   string
	public   string // http://127.0.0.1:PORT
	hub      *hubProcess
	host     testutil.Host
}

func repoRoot() string {
	wd, _ := os.Getwd()
	return filepath.Dir(filepath.Dir(wd))
}

func TestMain(m *testing.M) {
	code := 0
	if testutil.IsRoot() {
		cleanupHost() // leftovers of a crashed run
		env.setupErr = setup()
		env.ready = env.setupErr == nil
		code = m.Run()
		teardown()
	} else {
		code = m.Run()
	}
	os.Exit(code)
}

// need skips (locally) or fails (CI) without root, and fails when setup did.
func need(t *testing.T) {
	t.Helper()
	testutil.NeedRoot(t)
	if !env.ready {
		t.Fatalf("end-to-end setup failed: %v", env.setupErr)
	}
}

func run(name string, args ...string) error {
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, out)
	}
	return nil
}

func setup() error {
	h := &env.host
	if err := h.Group(group); err != nil {
		return err
	}
	for _, u := range []struct{ name, pw string }{{alice, alicePW}, {bob, bobPW}} {
		if err := h.User(u.name, u.pw, group); err != nil {
			return err
		}
	}
	if err := h.User(carol, carolPW); err != nil {
		return err
	}
	if err := h.SystemUser(hubUser, "shadow"); err != nil {
		return err
	}
	root := repoRoot()
	if err := os.MkdirAll(binDir, 0o755); err != nil {
		return err
	}
	build := exec.Command("go", "build", "-o", helperBin, "./cmd/hubd")
	build.Dir = root
	build.Env = append(os.Environ(), "CGO_ENABLED=1")
	if out, err := build.CombinedOutput(); err != nil {
		return fmt.Errorf("build hubd: %w: %s", err, out)
	}
	if err := installPAM(); err != nil {
		return err
	}
	if err := installSudoers(); err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "hubtest-e2e-")
	if err != nil {
		return err
	}
	env.dataDir = dir
	uid, gid, err := makeHubDirs(dir)
	if err != nil {
		return err
	}
	cfg, err := writeConfig(dir)
	if err != nil {
		return err
	}
	env.config = cfg
	env.hub = &hubProcess{config: cfg, log: filepath.Join(dir, "hubd.log"), uid: uid, gid: gid}
	return env.hub.start()
}

// makeHubDirs creates a hub's data, log, backup and runtime directories
// under dir, owned by the hub account, and returns that account's ids.
func makeHubDirs(dir string) (uid, gid int, err error) {
	hub, err := user.Lookup(hubUser)
	if err != nil {
		return 0, 0, err
	}
	uid, _ = strconv.Atoi(hub.Uid)
	gid, _ = strconv.Atoi(hub.Gid)
	for _, d := range []string{dir, dir + "/data", dir + "/logs", dir + "/backups", dir + "/run"} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return 0, 0, err
		}
		if err := os.Chown(d, uid, gid); err != nil {
			return 0, 0, err
		}
		// Members read the config (as /etc/hubd/hubd.toml is world-readable).
		if err := os.Chmod(d, 0o755); err != nil {
			return 0, 0, err
		}
	}
	return uid, gid, nil
}

// sharedHost names the shared hub's system files as `hubd setup` would.
func sharedHost() host.Options {
	c := config.Default()
	c.Auth.PAMService, c.Auth.AllowedGroup, c.Spawner.HelperPath = pamName, group, helperBin
	return host.Options{Name: pamName, HubUser: hubUser, Config: c, Etc: "/etc"}
}

// installPAM writes the shipped login service and sudo's spawn service.
func installPAM() error {
	o := sharedHost()
	for path, render := range map[string]func() ([]byte, error){o.PAMFile(): o.RenderPAMService, o.SpawnPAMFile(): o.RenderSpawnPAMService} {
		data, err := render()
		if err != nil {
			return err
		}
		if err := os.WriteFile(path, data, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// installSudoers renders the shipped rule and installs it only after visudo
// accepted it: a broken drop-in would disable sudo for the whole machine.
func installSudoers() error {
	data, err := sharedHost().RenderSudoers()
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp("", "hubtest-e2e-sudoers-")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		return err
	}
	tmp.Close()
	if err := os.Chmod(tmp.Name(), 0o440); err != nil {
		return err
	}
	if err := run("visudo", "-cf", tmp.Name()); err != nil {
		return fmt.Errorf("the shipped sudoers rule does not validate: %w", err)
	}
	return os.WriteFile(sudoers, data, 0o440)
}

// writeConfig builds the shared hub's config from `hubd config show`, as
// scripts do.
func writeConfig(dir string) (string, error) {
	path, public, err := writeHubConfig(dir)
	env.public = "http://" + public
	return path, err
}

// writeHubConfig writes the config of a hub in dir on free loopback ports,
// with extra old, new replacements (which win over the shared ones), and
// returns its path and public address.
func writeHubConfig(dir string, extra ...string) (path, public string, err error) {
	// An empty file means "the defaults": the host's /etc/hubd/hubd.toml
	// (if any) must not leak into the test.
	empty := filepath.Join(dir, "empty.toml")
	if err := os.WriteFile(empty, nil, 0o644); err != nil {
		return "", "", err
	}
	out, err := exec.Command(helperBin, "config", "show", "--config", empty).Output()
	if err != nil {
		return "", "", fmt.Errorf("hubd config show: %w", err)
	}
	pub, _ := spawner.FreePort()
	internal, _ := spawner.FreePort()
	public = fmt.Sprintf("127.0.0.1:%d", pub)
	// The first pair for a string wins: extra goes first.
	repl := strings.NewReplacer(append(extra,
		`listen = ":8000"`, fmt.Sprintf(`listen = "127.0.0.1:%d"`, pub),
		`internal_listen = "127.0.0.1:8081"`, fmt.Sprintf(`internal_listen = "127.0.0.1:%d"`, internal),
		`db = "/var/lib/hubd/hubd.sqlite"`, `db = "`+dir+`/data/hubd.sqlite"`,
		`cookie_secret_file = "/var/lib/hubd/cookie_secret"`, `cookie_secret_file = "`+dir+`/data/cookie_secret"`,
		`log_dir = "/var/log/hubd"`, `log_dir = "`+dir+`/logs"`,
		`runtime_dir = "/run/hubd"`, `runtime_dir = "`+dir+`/run"`,
		`socket = "/run/hubd/hubd.sock"`, `socket = "`+dir+`/run/hubd.sock"`,
		`restart_min_interval = "10s"`, `restart_min_interval = "1s"`,
		`pam_service = "hubd"`, `pam_service = "`+pamName+`"`,
		`allowed_group = "jupyterhub"`, `allowed_group = "`+group+`"`,
		`helper_path = "/usr/local/bin/hubd"`, `helper_path = "`+helperBin+`"`,
		`dir = "/var/backups/hubd"`, `dir = "`+dir+`/backups"`,
		`log_level = "info"`, `log_level = "debug"`,
		`poll_interval = "30s"`, `poll_interval = "1s"`,
		`root = "/srv/hubd/shares"`, `root = "`+dir+`/shares"`,
		`group_prefix = "share-"`, `group_prefix = "`+sharePrefix+`"`,
	)...)
	// The classic Notebook is chosen on purpose (spawner.app's default):
	// with python3-jupyter-server installed, jupyterhub-singleuser would
	// otherwise pick Jupyter Server, which has no /tree.
	if !strings.Contains(string(out), `app = "notebook"`) {
		return "", "", fmt.Errorf("hubd config show does not select the Notebook app:\n%s", out)
	}
	path = filepath.Join(dir, "hubd.toml")
	if err := os.WriteFile(path, []byte(repl.Replace(string(out))), 0o644); err != nil {
		return "", "", err
	}
	if out, err := exec.Command(helperBin, "config", "check", "--config", path).CombinedOutput(); err != nil {
		return "", "", fmt.Errorf("generated config invalid: %s", out)
	}
	return path, public, nil
}

// hubConfig is the configuration of a hub of its own beside the shared
// one: the shared hub's file moved to a fresh directory (owned by the hub
// account) and fresh loopback ports, changed with set, drop and add before
// start writes it.
type hubConfig struct {
	t           testing.TB
	dir, public string
	base        []byte
}

func newHubConfig(t testing.TB, prefix string, subdirs ...string) *hubConfig {
	t.Helper()
	dir, err := os.MkdirTemp("", prefix)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if _, _, err := makeHubDirs(dir); err != nil {
		t.Fatal(err)
	}
	for _, d := range subdirs {
		p := filepath.Join(dir, d)
		if err := os.MkdirAll(p, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(p, env.hub.uid, env.hub.gid); err != nil {
			t.Fatal(err)
		}
	}
	base, err := os.ReadFile(env.config)
	if err != nil {
		t.Fatal(err)
	}
	pub, _ := spawner.FreePort()
	internal, _ := spawner.FreePort()
	// Every path of the shared hub's file lies under its data directory.
	c := &hubConfig{t: t, dir: dir, public: fmt.Sprintf("http://127.0.0.1:%d", pub), base: bytes.ReplaceAll(base, []byte(env.dataDir), []byte(dir))}
	c.set("listen", fmt.Sprintf(`"127.0.0.1:%d"`, pub))
	c.set("internal_listen", fmt.Sprintf(`"127.0.0.1:%d"`, internal))
	return c
}

// set replaces the "key = ..." line (the first of that key).
func (c *hubConfig) set(key, value string) {
	c.t.Helper()
	re := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(key) + ` = .*$`)
	loc := re.FindIndex(c.base)
	if loc == nil {
		c.t.Fatalf("the shared config has no %s line", key)
	}
	c.base = append(c.base[:loc[0]:loc[0]], append([]byte(key+" = "+value), c.base[loc[1]:]...)...)
}

// drop removes a "key = []" line that [[key]] tables replace.
func (c *hubConfig) drop(key string) {
	c.base = regexp.MustCompile(`(?m)^`+regexp.QuoteMeta(key)+` = \[\]$`).ReplaceAll(c.base, nil)
}

// add appends tables.
func (c *hubConfig) add(text string) { c.base = append(c.base, []byte(text)...) }

// path is where start writes the configuration.
func (c *hubConfig) path() string { return filepath.Join(c.dir, "hubd.toml") }

// socket is the hub's admin socket.
func (c *hubConfig) socket() string { return filepath.Join(c.dir, "run", "hubd.sock") }

// start checks and writes the configuration and starts the hub as the
// hub account; the hub stops when the test ends, and a failed test logs
// the end of its log.
func (c *hubConfig) start(name string) *hubProcess {
	c.t.Helper()
	path := c.path()
	if err := os.WriteFile(path, c.base, 0o644); err != nil {
		c.t.Fatal(err)
	}
	if out, err := exec.Command(helperBin, "config", "check", "--config", path).CombinedOutput(); err != nil {
		c.t.Fatalf("%s hub config: %s", name, out)
	}
	h := &hubProcess{config: path, log: filepath.Join(c.dir, "hubd.log"), uid: env.hub.uid, gid: env.hub.gid, public: c.public}
	if err := h.start(); err != nil {
		c.t.Fatalf("start the %s hub: %v\n%s", name, err, h.logTail())
	}
	c.t.Cleanup(func() {
		h.stop()
		if c.t.Failed() {
			c.t.Logf("%s hub log:\n%s", name, h.logTail())
		}
	})
	return h
}

// hubProcess is hubd serve running as the unprivileged hub account with
// supplementary group shadow, as in production.
type hubProcess struct {
	config, log string
	uid, gid    int
	cmd         *exec.Cmd
	// public is the hub's public URL; "" is the shared hub's (env.public).
	public string
	client *http.Client // nil: http.DefaultClient
}

func (p *hubProcess) start() error {
	shadow, err := user.LookupGroup("shadow")
	if err != nil {
		return err
	}
	sg, _ := strconv.Atoi(shadow.Gid)
	logf, err := os.OpenFile(p.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	cmd := exec.Command(helperBin, "serve", "--config", p.config)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Dir = "/"
	cmd.Env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C.UTF-8"}
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Credential: &syscall.Credential{Uid: uint32(p.uid), Gid: uint32(p.gid), Groups: []uint32{uint32(p.gid), uint32(sg)}},
		Setpgid:    true,
	}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return err
	}
	logf.Close()
	p.cmd = cmd
	go cmd.Wait()
	public := p.public
	if public == "" {
		public = env.public
	}
	client := p.client
	if client == nil {
		client = http.DefaultClient
	}
	return waitFor(30*time.Second, func() error {
		resp, err := client.Get(public + "/hub/api")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			return fmt.Errorf("status %d", resp.StatusCode)
		}
		return nil
	})
}

// api calls the hub's REST API with a token.
func (h *hubProcess) api(t testing.TB, method, path, token string, body any) (int, []byte) {
	t.Helper()
	var rd *bytes.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	} else {
		rd = bytes.NewReader(nil)
	}
	req, _ := http.NewRequest(method, h.public+"/hub/api"+path, rd)
	req.Header.Set("Authorization", "token "+token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	_, _ = buf.ReadFrom(resp.Body)
	return resp.StatusCode, buf.Bytes()
}

// kill9 kills the hub like a crash would: no cleanup of any kind.
func (p *hubProcess) kill9() {
	if p.cmd != nil && p.cmd.Process != nil {
		_ = p.cmd.Process.Signal(syscall.SIGKILL)
		_ = waitFor(10*time.Second, func() error {
			if err := p.cmd.Process.Signal(syscall.Signal(0)); err == nil {
				return fmt.Errorf("still running")
			}
			return nil
		})
	}
}

func (p *hubProcess) stop() {
	if p.cmd != nil && p.cmd.Process != nil {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		if waitFor(10*time.Second, func() error {
			if err := p.cmd.Process.Signal(syscall.Signal(0)); err == nil {
				return fmt.Errorf("still running")
			}
			return nil
		}) != nil {
			p.kill9()
		}
	}
}

// hubd runs a hubd command as root against this hub's configuration
// (an admin of its socket, and root for `hubd share`).
func (h *hubProcess) hubd(args ...string) (string, error) {
	var out, errb bytes.Buffer
	cmd := exec.Command(helperBin, append(args, "--config", h.config)...)
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if err != nil {
		return out.String(), fmt.Errorf("%w: %s", err, errb.String())
	}
	return out.String(), nil
}

// waitFor polls f until it succeeds or the deadline passes.
func waitFor(d time.Duration, f func() error) error { return testutil.Poll(d, f) }

func teardown() {
	if env.hub != nil {
		env.hub.stop()
		if env.ready {
			// Keep the hub's log for the CI artifacts.
			_ = os.MkdirAll(filepath.Join(repoRoot(), "test-artifacts"), 0o755)
			if b, err := os.ReadFile(env.hub.log); err == nil {
				_ = os.WriteFile(filepath.Join(repoRoot(), "test-artifacts", "e2e-hubd.log"), b, 0o644)
			}
		}
	}
	cleanupHost()
	env.host.Cleanup()
	if env.dataDir != "" {
		os.RemoveAll(env.dataDir)
	}
}

// cleanupHost removes the privileged files first (sudoers before anything
// else), then processes of the test users.
func cleanupHost() {
	os.Remove(sudoers)
	os.Remove("/etc/pam.d/" + pamName)
	os.Remove("/etc/pam.d/" + pamName + "-spawn")
	removeLDAPLeftovers()
	os.RemoveAll(binDir)
	for _, u := range []string{alice, bob, carol, hubUser} {
		_ = exec.Command("pkill", "-KILL", "-u", u).Run()
	}
	// The groups of the shares tests made, even when one failed midway.
	out, _ := exec.Command("getent", "group").Output()
	for line := range strings.SplitSeq(string(out), "\n") {
		if g, _, _ := strings.Cut(line, ":"); strings.HasPrefix(g, sharePrefix) {
			_ = exec.Command("groupdel", g).Run()
		}
	}
}
