package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hubd/hubd/core/config"
	"github.com/hubd/hubd/core/server"
	"github.com/hubd/hubd/core/server/servertest"
	"github.com/hubd/hubd/core/store"
)

// envServe makes the test binary run `hubd serve` with the config it
// names, as a separate process a test can kill -9.
const envServe = "HUBD_CMD_TEST_SERVE"

func TestMain(m *testing.M) {
	if cfg := os.Getenv(envServe); cfg != "" {
		ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
		code := run(ctx, []string{"serve", "--config", cfg}, os.Stdin, os.Stdout, os.Stderr, os.Getenv)
		stop()
		os.Exit(code)
	}
	os.Exit(m.Run())
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// hubEnv is a configuration for a hub in a temporary directory, with an
// admin API token that exists before the hub first starts.
type hubEnv struct {
	dir, cfgPath, token, public string
	cfg                         config.Config
}

func newHubEnv(t *testing.T) *hubEnv {
	t.Helper()
	dir := t.TempDir()
	e := &hubEnv{dir: dir, cfgPath: filepath.Join(dir, "hubd.toml"), public: freeAddr(t)}
	body := fmt.Sprintf(`[hub]
listen = %q
internal_listen = %q
[data]
db = %q
cookie_secret_file = %q
log_dir = %q
runtime_dir = %q
[spawner]
kind = "local"
[admin]
socket = %q
[backups]
dir = %q
[shared_env]
enabled = false
`, e.public, freeAddr(t), filepath.Join(dir, "hubd.sqlite"), filepath.Join(dir, "cookie_secret"), filepath.Join(dir, "logs"),
		dir, filepath.Join(dir, "hubd.sock"), filepath.Join(dir, "backups"))
	if err := os.WriteFile(e.cfgPath, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "backups"), 0o700); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(e.cfgPath, true)
	if err != nil {
		t.Fatal(err)
	}
	e.cfg = cfg
	e.token = servertest.AdminToken(t, cfg)
	return e
}

// startProcess runs `hubd serve` as a child process and waits until it answers.
func (e *hubEnv) startProcess(t *testing.T) *exec.Cmd {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), envServe+"="+e.cfgPath)
	var logs strings.Builder
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("hub log:\n%s", logs.String())
		}
	})
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get("http://" + e.public + "/hub/api")
		if err == nil {
			resp.Body.Close()
			return cmd
		}
		if time.Now().After(deadline) {
			t.Fatalf("the hub did not answer: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (e *hubEnv) api(t *testing.T, method, path string) int {
	t.Helper()
	req, _ := http.NewRequest(method, "http://"+e.public+"/hub/api"+path, nil)
	req.Header.Set("Authorization", "token "+e.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// A hub killed with acknowledged writes in its write-ahead log, whose log
// is then deleted, must not start as if nothing happened; nor may a data
// directory that was used get a fresh, empty database.
func TestLostDataIsNeverSilent(t *testing.T) {
	e := newHubEnv(t)
	db := e.cfg.Data.DB
	hub := e.startProcess(t)
	if code := e.api(t, http.MethodPost, "/users/hubtest-bob"); code != http.StatusCreated {
		t.Fatalf("create user: %d", code)
	}
	if err := hub.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = hub.Wait()
	for _, f := range []string{db + "-wal", db + "-shm"} {
		if _, err := os.Stat(f); err != nil {
			t.Fatalf("after kill -9: %v", err)
		}
	}
	if err := os.Remove(db + "-wal"); err != nil {
		t.Fatal(err)
	}
	code, _, stderr := hubd(t, "", "serve", "--config", e.cfgPath)
	if code == 0 || !strings.Contains(stderr, "-wal is missing") || !strings.Contains(stderr, "hubd backup restore") {
		t.Fatalf("serve after the log was lost: code %d, stderr %q", code, stderr)
	}

	// The database gone as a whole: a used data directory is never a new hub.
	for _, f := range []string{db, db + "-shm"} {
		if err := os.Remove(f); err != nil {
			t.Fatal(err)
		}
	}
	code, _, stderr = hubd(t, "", "serve", "--config", e.cfgPath)
	if code == 0 || !strings.Contains(stderr, "is empty, but this hub has run here before") || !strings.Contains(stderr, "hubd backup restore") {
		t.Fatalf("serve on a lost database: code %d, stderr %q", code, stderr)
	}
	code, _, stderr = hubd(t, "", "upgrade-db", "--config", e.cfgPath)
	if code == 0 || !strings.Contains(stderr, "is empty, but this hub has run here before") {
		t.Fatalf("upgrade-db on a lost database: code %d, stderr %q", code, stderr)
	}
	if fi, err := os.Stat(db); err == nil && fi.Size() > 0 {
		t.Errorf("a refused start left a %d-byte database", fi.Size())
	}
}

// A clean stop leaves every write in the main file: nothing depends on the
// -wal file afterwards.
func TestCleanStopCheckpoints(t *testing.T) {
	e := newHubEnv(t)
	hub := e.startProcess(t)
	if code := e.api(t, http.MethodPost, "/users/hubtest-carl"); code != http.StatusCreated {
		t.Fatalf("create user: %d", code)
	}
	if err := hub.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := hub.Wait(); err != nil {
		t.Fatalf("hub exit: %v", err)
	}
	for _, f := range []string{e.cfg.Data.DB + "-wal", e.cfg.Data.DB + "-shm"} {
		if _, err := os.Stat(f); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s after a clean stop: %v", f, err)
		}
	}
	st, err := store.Open(context.Background(), e.cfg.Data.DB, store.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, err := st.UserByName(context.Background(), "hubtest-carl"); err != nil {
		t.Errorf("the user created before the stop: %v", err)
	}
}

// While a hub runs, `hubd backup create` and `prune` go through its admin
// socket (its one-backup lock, its audit log); with the hub stopped they
// take the hub's lock themselves.
func TestBackupCommandsGoThroughARunningHub(t *testing.T) {
	e := newHubEnv(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	srv, err := server.New(ctx, server.Options{Config: e.cfg})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(ctx); err != nil {
		t.Fatal(err)
	}
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			if err := srv.Shutdown(context.Background()); err != nil {
				t.Error(err)
			}
		}
	}
	defer stop()
	code, out, stderr := hubd(t, "", "backup", "create", "--config", e.cfgPath, "--label", "live")
	if code != 0 || !strings.Contains(out, "by the running hub") {
		t.Fatalf("backup create beside a running hub: %d %q %q", code, out, stderr)
	}
	code, out, stderr = hubd(t, "", "backup", "prune", "--config", e.cfgPath, "--keep", "5")
	if code != 0 || !strings.Contains(out, "removed 0 backup(s)") {
		t.Fatalf("backup prune beside a running hub: %d %q %q", code, out, stderr)
	}
	code, _, stderr = hubd(t, "", "backup", "create", "--config", e.cfgPath, "--dir", t.TempDir())
	if code == 0 || !strings.Contains(stderr, "is running and works on its own backups.dir") {
		t.Fatalf("backup create --dir elsewhere beside a running hub: %d %q", code, stderr)
	}
	events, err := srv.Store().Events(context.Background(), store.EventFilter{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	var audited []string
	for _, ev := range events {
		if ev.Source == "admin" {
			audited = append(audited, ev.Action)
		}
	}
	if !slices.Contains(audited, "backup.create") || !slices.Contains(audited, "backup.prune") {
		t.Errorf("admin audit events %v lack the CLI's backup and prune", audited)
	}
	stop()
	code, out, stderr = hubd(t, "", "backup", "create", "--config", e.cfgPath, "--label", "offline")
	if code != 0 || strings.Contains(out, "by the running hub") {
		t.Fatalf("backup create with the hub stopped: %d %q %q", code, out, stderr)
	}
}
