package faults

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hubd/hubd/core/config"
	"github.com/hubd/hubd/core/server/servertest"
	"github.com/hubd/hubd/internal/testutil"
)

// The real binaries, built once per test run: hubd, and the benchmarks'
// mock single-user server (bench/cmd/mocksu), which is what the child
// hubs spawn.
var bins struct {
	once              sync.Once
	dir, hubd, mocksu string
	err               error
}

func binaries(t testing.TB) (hubd, mocksu string) {
	t.Helper()
	bins.once.Do(func() {
		bins.dir, bins.err = os.MkdirTemp("", "hubtest-faults-bin-")
		if bins.err != nil {
			return
		}
		root, err := filepath.Abs("../..")
		if err != nil {
			bins.err = err
			return
		}
		gobin, err := exec.LookPath("go")
		if err != nil {
			bins.err = fmt.Errorf("these tests build ./cmd/hubd: %w", err)
			return
		}
		bins.hubd, bins.mocksu = filepath.Join(bins.dir, "hubd"), filepath.Join(bins.dir, "mocksu")
		for out, pkg := range map[string]string{bins.hubd: "./cmd/hubd", bins.mocksu: "./bench/cmd/mocksu"} {
			build := exec.Command(gobin, "build", "-o", out, pkg)
			build.Dir = root
			if b, err := build.CombinedOutput(); err != nil {
				bins.err = fmt.Errorf("go build %s: %w\n%s", pkg, err, b)
				return
			}
		}
	})
	if bins.err != nil {
		t.Fatal(bins.err)
	}
	return bins.hubd, bins.mocksu
}

// removeBinaries runs after every test, killing mock servers a crashed
// child hub left behind before their binary goes.
func removeBinaries() {
	if bins.dir == "" {
		return
	}
	for _, pid := range mocksuProcs() {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	os.RemoveAll(bins.dir)
}

// mocksuProcs lists the live mock servers of this run's child hubs.
func mocksuProcs() []int {
	if bins.mocksu == "" {
		return nil
	}
	return testutil.Procs(isMocksu)
}

// isMocksu keeps the mock servers of this run's child hubs.
func isMocksu(p testutil.Proc) bool {
	exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", p.PID))
	return err == nil && exe == bins.mocksu
}

// childHub is the data and configuration of a hub run as `hubd serve`
// child processes, one after another, with an admin token made before
// its first start.
type childHub struct {
	dir, cfgPath string
	cfg          config.Config
	public       string // http://127.0.0.1:port
	token        string
	logs         *os.File
}

func freeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// newChildHub writes the configuration (the local spawner running mocksu,
// no spawn limit, warnings only) and the admin token.
func newChildHub(t testing.TB, tune ...func(*config.Config)) *childHub {
	t.Helper()
	_, mocksu := binaries(t)
	dir := t.TempDir()
	cfg := config.Default()
	cfg.Hub.Listen = freeAddr(t)
	cfg.Hub.InternalListen = freeAddr(t)
	cfg.Hub.LogLevel = "warn"
	cfg.Data.DB = filepath.Join(dir, "data", "hubd.sqlite")
	cfg.Data.CookieSecretFile = filepath.Join(dir, "data", "cookie_secret")
	cfg.Data.LogDir = filepath.Join(dir, "logs")
	cfg.Data.RuntimeDir = filepath.Join(dir, "run")
	cfg.Admin.Socket = filepath.Join(dir, "run", "hubd.sock")
	cfg.Backups.Dir = filepath.Join(dir, "backups")
	cfg.SharedEnv.Enabled = false
	cfg.Spawner.Kind = "local"
	cfg.Spawner.Command = []string{mocksu}
	cfg.Spawner.WorkingDir = dir
	cfg.Spawner.ConcurrentSpawnLimit = 0
	for _, f := range tune {
		f(&cfg)
	}
	for _, d := range []string{"data", "run", "backups"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	h := &childHub{dir: dir, cfgPath: filepath.Join(dir, "hubd.toml"), cfg: cfg, public: "http://" + cfg.Hub.Listen}
	var text strings.Builder
	if err := cfg.Write(&text); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(h.cfgPath, []byte(text.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	h.token = servertest.AdminToken(t, cfg)
	var err error
	if h.logs, err = os.Create(filepath.Join(dir, "hubd.log")); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		h.logs.Close()
		if t.Failed() {
			b, _ := os.ReadFile(h.logs.Name())
			t.Logf("hub log (last 8 KiB):\n%s", tail(b, 8<<10))
			if keep := os.Getenv("HUBD_FAULTS_KEEP_LOGS"); keep != "" {
				_ = os.WriteFile(filepath.Join(keep, t.Name()+"-hubd.log"), b, 0o644)
			}
		}
	})
	return h
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}

// hubProc is one running `hubd serve`.
type hubProc struct {
	cmd  *exec.Cmd
	done chan struct{}
}

// start runs `hubd serve`, behind the command prefix when one is given
// (prlimit), and waits until its API answers.
func (h *childHub) start(t testing.TB, prefix ...string) *hubProc {
	t.Helper()
	hubd, _ := binaries(t)
	argv := append(append([]string{}, prefix...), hubd, "serve", "--config", h.cfgPath)
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = h.logs, h.logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &hubProc{cmd: cmd, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(p.done) }()
	t.Cleanup(func() { p.kill() })
	c := &http.Client{Timeout: 2 * time.Second}
	testutil.WaitFor(t, "the hub to answer", func() bool {
		select {
		case <-p.done:
			t.Fatalf("hubd serve exited: %v", cmd.ProcessState)
		default:
		}
		resp, err := c.Get(h.public + "/hub/api")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return true
	})
	return p
}

func (p *hubProc) pid() int { return p.cmd.Process.Pid }

// kill is kill -9: no cleanup of any kind, as in a crash.
func (p *hubProc) kill() {
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

// stop asks the hub to stop (SIGTERM) and waits.
func (p *hubProc) stop(t testing.TB) {
	t.Helper()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(60 * time.Second):
		t.Error("hubd did not stop within a minute of SIGTERM")
		p.kill()
	}
}

// call sends one API request with the admin token and returns the status
// and body; errors are returned, not fatal, for callers on goroutines.
func (h *childHub) call(c *http.Client, method, path, tok string, body string) (int, []byte, error) {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, h.public+"/hub/api"+path, rd)
	if err != nil {
		return 0, nil, err
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if tok == "" {
		tok = h.token
	}
	req.Header.Set("Authorization", "token "+tok)
	resp, err := c.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

// fds counts the open file descriptors of pid.
func fds(pid int) int {
	ents, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	return len(ents)
}

// rssBytes is the resident set size of pid.
func rssBytes(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			if f := strings.Fields(v); len(f) > 0 {
				kb, _ := strconv.ParseInt(f[0], 10, 64)
				return kb << 10
			}
		}
	}
	return 0
}
