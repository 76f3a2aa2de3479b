package host

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hubd/hubd/core/config"
	"github.com/hubd/hubd/core/hub"
	"github.com/hubd/hubd/core/spawner"
	"github.com/hubd/hubd/core/store"
)

// appStartTimeout bounds how long the trial server may take to answer.
const appStartTimeout = 90 * time.Second

// runningLine is what the Jupyter apps log once they serve:
// "Jupyter Server 1.23.3 is running at:", "Jupyter Notebook 6.4.12 is
// running at:".
var runningLine = regexp.MustCompile(`(Jupyter Server|Jupyter Notebook) ([0-9][0-9A-Za-z.+-]*) is running at`)

// checkSingleUserApp starts the configured single-user server as a member,
// with the environment a spawn gives it, against a stand-in for the hub's
// API, and reports which app came up and whether the page users land on
// (spawner.app's or spawner.default_url) exists there: a 404 there is the
// broken page members would see right after logging in.
func (o Options) checkSingleUserApp(ctx context.Context, member string) Finding {
	cfg := o.Config
	s := cfg.Spawner
	check := fmt.Sprintf("single-user app %q", s.AppName)
	if member == "" {
		return o.noMember(check)
	}
	if f, bad := o.memberProblem(check, member); bad {
		return f
	}
	trial, err := startTrialServer(ctx, cfg, member)
	if errors.Is(err, errNoHome) {
		return Finding{Check: check, Level: Fail, Message: err.Error(),
			Fix: "set spawner.create_home = true in " + o.ConfigPath + " (and run `" + o.SetupCommand() + "`), or create it: mkhomedir_helper " + member}
	}
	if err != nil {
		return Finding{Check: check, Level: Fail, Message: err.Error(),
			Fix: "run the command by hand as " + member + " to see why, or choose another spawner.app in " + o.ConfigPath}
	}
	defer trial.stop()
	app := trial.app()
	if trial.tempHome != "" {
		// A directory user before their first start: the hub makes the
		// home then (spawner.create_home); doctor changes nothing.
		app += " (in a temporary home: " + member + "'s is created at their first start)"
	}
	landing := s.LandingURL()
	if landing == "" {
		return Finding{Check: check, Level: OK, Message: fmt.Sprintf("runs %s as %s; spawner.default_url is empty, so users land on the app's own page", app, member)}
	}
	code, err := trial.get(ctx, strings.TrimPrefix(landing, "/"))
	if err != nil {
		return Finding{Check: check, Level: Fail, Message: fmt.Sprintf("runs %s as %s, but %s did not answer: %v", app, member, landing, err), Fix: o.appFix()}
	}
	if code == http.StatusNotFound {
		return Finding{Check: check, Level: Fail,
			Message: fmt.Sprintf("runs %s as %s, but the page users land on, %s, does not exist there (404): they would see a broken page right after logging in", app, member, landing),
			Fix:     o.appFix()}
	}
	return Finding{Check: check, Level: OK, Message: fmt.Sprintf("runs %s as %s; the landing page %s exists (%d)", app, member, landing, code)}
}

func (o Options) appFix() string {
	return `set spawner.app = "notebook" (classic Notebook, /tree) in ` + o.ConfigPath +
		`, or install the UI the app needs (JupyterLab for /lab, nbclassic or Notebook 7 for /tree on Jupyter Server)`
}

// trialServer is a single-user server doctor started.
type trialServer struct {
	// tempHome, when set, stood in for a home directory that does not
	// exist yet, and goes with the server.
	tempHome string
	runtime  string // JUPYTER_RUNTIME_DIR, which goes with the server
	cmd      *exec.Cmd
	done     chan struct{}
	out      *lockedBuffer
	hub      *http.Server
	base     string // http://127.0.0.1:<port><prefix>
	client   *http.Client
}

// startTrialServer runs the single-user server as member (setpriv, the
// member's groups, home and a clean environment, as the spawners do) and
// waits until it answers its API.
func startTrialServer(ctx context.Context, cfg config.Config, member string) (*trialServer, error) {
	u, err := user.Lookup(member)
	if err != nil {
		return nil, err
	}
	home, tempHome, err := trialHome(u, cfg.Spawner.CreateHome)
	if err != nil {
		return nil, err
	}
	// The app's runtime files (its server info, kernel connection
	// files) go in a directory of the trial's own: a trial stopped
	// before it cleans up leaves nothing in the member's home.
	runtime, err := memberTempDir(u, "hubd-doctor-runtime-")
	if err != nil {
		removeTemp(tempHome)
		return nil, err
	}
	hubAPI, hubSrv, err := standInHub(cfg.Hub.JupyterHubVersion)
	if err != nil {
		removeTemp(tempHome, runtime)
		return nil, err
	}
	port, err := spawner.FreePort()
	if err != nil {
		hubSrv.Close()
		removeTemp(tempHome, runtime)
		return nil, err
	}
	path := cfg.Spawner.Path
	if cfg.SharedEnv.Enabled {
		path = filepath.Join(cfg.SharedEnv.Path, "bin") + ":" + path
	}
	env := hub.ServerEnv(cfg, hubAPI, member, "", store.RandomID(16), net.JoinHostPort(spawner.DefaultHost, strconv.Itoa(port)))
	env["PATH"], env["HOME"], env["USER"], env["SHELL"] = path, home, member, "/bin/sh"
	env["JUPYTER_RUNTIME_DIR"] = runtime
	argv := append([]string{"--reuid=" + u.Uid, "--regid=" + u.Gid, "--init-groups", "--"}, cfg.Spawner.Command...)
	argv = append(argv, cfg.Spawner.Args...)
	cmd := exec.Command("setpriv", argv...)
	cmd.Dir = home
	keys := make([]string, 0, len(env))
	for k := range env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		cmd.Env = append(cmd.Env, k+"="+env[k])
	}
	out := &lockedBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		hubSrv.Close()
		removeTemp(tempHome, runtime)
		return nil, fmt.Errorf("start %s as %s: %w", cfg.Spawner.Command[0], member, err)
	}
	t := &trialServer{tempHome: tempHome, runtime: runtime, cmd: cmd, done: make(chan struct{}), out: out, hub: hubSrv,
		base:   fmt.Sprintf("http://127.0.0.1:%d%s", port, hub.ServerPrefix(cfg.Hub.BaseURL, member, "")),
		client: &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
	go func() { _ = cmd.Wait(); close(t.done) }()
	if err := t.waitReady(ctx); err != nil {
		t.stop()
		return nil, err
	}
	return t, nil
}

// standInHub answers the calls jupyterhub-singleuser makes to its hub
// while it starts (the version check, activity reports).
func standInHub(version string) (string, *http.Server, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-JupyterHub-Version", version)
		w.Header().Set("Content-Type", "application/json")
		if strings.TrimSuffix(r.URL.Path, "/") == "/hub/api" {
			_ = json.NewEncoder(w).Encode(map[string]string{"version": version})
			return
		}
		_, _ = io.WriteString(w, "{}")
	})}
	go func() { _ = srv.Serve(ln) }()
	return "http://" + ln.Addr().String() + "/hub/api", srv, nil
}

func (t *trialServer) waitReady(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, appStartTimeout)
	defer cancel()
	var answered time.Time
	for {
		// Ready once it answers and has logged what it is (the app logs
		// its "is running at" line about when it starts answering); an
		// app that never logs it is given a few seconds.
		if code, err := t.get(ctx, "api"); err == nil && code == http.StatusOK {
			if answered.IsZero() {
				answered = time.Now()
			}
			if runningLine.MatchString(t.out.String()) || time.Since(answered) > 5*time.Second {
				return nil
			}
		}
		select {
		case <-t.done:
			return fmt.Errorf("it exited before answering (%s): %s", t.cmd.ProcessState, t.out.tail(3))
		case <-ctx.Done():
			return fmt.Errorf("it did not answer within %s: %s", appStartTimeout, t.out.tail(3))
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func (t *trialServer) get(ctx context.Context, rel string) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, t.base+rel, nil)
	if err != nil {
		return 0, err
	}
	resp, err := t.client.Do(req)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

// app names what runs, from the server's own log line, with the version
// its API reports as a fallback.
func (t *trialServer) app() string {
	log := t.out.String()
	name := "an unknown Jupyter app"
	if m := runningLine.FindStringSubmatch(log); m != nil {
		name = m[1] + " " + m[2]
	}
	if strings.Contains(log, "JupyterLab extension loaded") || strings.Contains(log, "JupyterLab application directory") {
		name += " with JupyterLab"
	}
	return name
}

// stop ends the trial server's whole process group.
func (t *trialServer) stop() {
	pgid := t.cmd.Process.Pid
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	select {
	case <-t.done:
	case <-time.After(10 * time.Second):
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		<-t.done
	}
	_ = t.hub.Close()
	removeTemp(t.tempHome, t.runtime)
}

// errNoHome: the member has no home, and the hub will not make one.
var errNoHome = errors.New("no home directory")

// trialHome is where the trial server runs: the member's home, or, when
// that does not exist yet and the hub creates it at the first start, a
// temporary one of theirs (tempHome, to remove afterwards).
func trialHome(u *user.User, createHome bool) (home, tempHome string, err error) {
	if _, err := os.Stat(u.HomeDir); !errors.Is(err, fs.ErrNotExist) {
		return u.HomeDir, "", err
	}
	if !createHome {
		return "", "", fmt.Errorf("%w: %s of %s does not exist, and spawner.create_home is off, so %s's server cannot start", errNoHome, u.HomeDir, u.Username, u.Username)
	}
	tmp, err := memberTempDir(u, "hubd-doctor-home-")
	return tmp, tmp, err
}

// memberTempDir makes a private temporary directory owned by u.
func memberTempDir(u *user.User, prefix string) (string, error) {
	tmp, err := os.MkdirTemp("", prefix)
	if err != nil {
		return "", err
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	if err := os.Chown(tmp, uid, gid); err != nil {
		os.RemoveAll(tmp)
		return "", err
	}
	return tmp, nil
}

// removeTemp removes the temporary directories of a trial server.
func removeTemp(dirs ...string) {
	for _, dir := range dirs {
		if dir != "" {
			os.RemoveAll(dir)
		}
	}
}

// lockedBuffer collects a child's output from two pipes.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// tail is the last n non-empty lines, joined.
func (l *lockedBuffer) tail(n int) string {
	var lines []string
	for _, s := range strings.Split(strings.TrimSpace(l.String()), "\n") {
		if s = strings.TrimSpace(s); s != "" {
			lines = append(lines, s)
		}
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	if len(lines) == 0 {
		return "no output"
	}
	return strconv.Quote(strings.Join(lines, " | "))
}
