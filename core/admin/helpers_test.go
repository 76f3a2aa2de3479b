package admin

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hubd/hubd/internal/testutil"

	"github.com/hubd/hubd/core/admin/client"
	"github.com/hubd/hubd/core/admin/wire"
	"github.com/hubd/hubd/core/config"
	"github.com/hubd/hubd/core/hub"
	"github.com/hubd/hubd/core/proxy"
	"github.com/hubd/hubd/core/spawner"
	"github.com/hubd/hubd/core/store"
)

// The test binary also plays other parts, chosen by envRole: "server" is
// the single-user server the local spawner starts, "client" makes one
// admin call (run as another user through setpriv) and prints the outcome
// as JSON, "listen" is an admin server run as the unprivileged hub
// account. envRun marks this run's servers so TestMain can prove none is
// left behind.
const (
	envRole   = "HUBD_ADMIN_TEST_ROLE"
	envSocket = "HUBD_ADMIN_TEST_SOCKET"
	envOp     = "HUBD_ADMIN_TEST_OP"
	envRun    = "HUBD_ADMIN_TEST_RUN"
	envGroups = "HUBD_ADMIN_TEST_GROUPS"
)

var runID = strconv.Itoa(os.Getpid())

func TestMain(m *testing.M) {
	switch os.Getenv(envRole) {
	case "server":
		os.Exit(testutil.TinyServer())
	case "client":
		os.Exit(clientHelper())
	case "listen":
		os.Exit(listenHelper())
	case "stall":
		os.Exit(stallHelper())
	}
	code := m.Run()
	if left := serverProcs(); len(left) > 0 {
		fmt.Fprintf(os.Stderr, "admin tests: servers left running: %v\n", left)
		for _, pid := range left {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		code = 1
	}
	if err := users.teardown(); err != nil {
		fmt.Fprintln(os.Stderr, "admin tests: cleanup:", err)
		code = 1
	}
	os.Exit(code)
}

// serverProcs lists this run's single-user servers still alive.
func serverProcs() []int {
	mark := []byte(envRun + "=" + runID + "\x00")
	dirs, _ := os.ReadDir("/proc")
	var out []int
	for _, d := range dirs {
		pid, err := strconv.Atoi(d.Name())
		if err != nil {
			continue
		}
		env, err := os.ReadFile(filepath.Join("/proc", d.Name(), "environ"))
		if err != nil || !bytes.Contains(env, mark) {
			continue
		}
		if stat, err := os.ReadFile(filepath.Join("/proc", d.Name(), "stat")); err == nil && bytes.Contains(stat, []byte(") Z ")) {
			continue
		}
		out = append(out, pid)
	}
	return out
}

// helperResult is what the client helper prints.
type helperResult struct {
	Kind    string `json:"kind"` // ok, access-denied, not-running, socket-permission, api, other
	Status  int    `json:"status,omitempty"`
	Message string `json:"message,omitempty"`
	Role    string `json:"role,omitempty"`
	Groups  string `json:"groups,omitempty"`
}

// clientHelper makes the call named by envOp ("whoami", "status",
// "sessions", "backups", "restart", "events", "stop:<user>",
// "log:<user>") on envSocket.
func clientHelper() int {
	c := &client.Client{Socket: os.Getenv(envSocket)}
	ctx := context.Background()
	op, arg, _ := strings.Cut(os.Getenv(envOp), ":")
	var res helperResult
	var err error
	switch op {
	case "whoami":
		var me wire.WhoAmI
		me, err = c.WhoAmI(ctx)
		res.Role = string(me.Role)
	case "status":
		_, err = c.Status(ctx)
	case "sessions":
		_, err = c.Sessions(ctx, arg)
	case "backups":
		_, err = c.Backups(ctx)
	case "restart":
		_, err = c.Restart(ctx, "test")
	case "events":
		_, err = c.Events(ctx, client.EventsQuery{})
	case "stop":
		_, err = c.StopServer(ctx, arg, "")
	case "log":
		_, err = c.ServerLog(ctx, arg, 10)
	default:
		err = fmt.Errorf("unknown op %q", op)
	}
	res.Kind = "ok"
	if err != nil {
		res.Message = err.Error()
		res.Kind = "other"
		if e, ok := errors.AsType[*client.AccessDeniedError](err); ok {
			res.Kind, res.Message = "access-denied", e.Message
		} else if _, ok := errors.AsType[*client.NotRunningError](err); ok {
			res.Kind = "not-running"
		} else if e, ok := errors.AsType[*client.SocketPermissionError](err); ok {
			res.Kind, res.Groups = "socket-permission", strings.Join(e.Groups, ",")
		} else if e, ok := errors.AsType[*client.APIError](err); ok {
			res.Kind, res.Status = "api", e.Status
		}
	}
	_ = json.NewEncoder(os.Stdout).Encode(res)
	return 0
}

// stallHelper announces a 100-byte body on envSocket and sends none,
// printing "sent" once the headers are out and then the status line the
// hub finally answers with.
func stallHelper() int {
	conn, err := net.Dial("unix", os.Getenv(envSocket))
	if err != nil {
		fmt.Println("dial:", err)
		return 1
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST /v1/restart HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n", wire.Host)
	fmt.Println("sent")
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		fmt.Println("read:", err)
		return 1
	}
	fmt.Println(strings.TrimSpace(line))
	return 0
}

// listenHelper runs an admin server without a store (only whoami answers)
// on envSocket, giving access to the groups in envGroups
// ("admin,members"), until its stdin closes.
func listenHelper() int {
	cfg := config.Default()
	cfg.Admin.Socket = os.Getenv(envSocket)
	cfg.Auth.AdminGroup, cfg.Auth.AllowedGroup, _ = strings.Cut(os.Getenv(envGroups), ",")
	s := NewServer(Options{Config: cfg, Logger: slog.New(slog.NewTextHandler(os.Stderr, nil))})
	if err := s.Listen(); err != nil {
		fmt.Fprintln(os.Stderr, "listen helper:", err)
		return 1
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve(context.Background()) }()
	fmt.Println("listening")
	_, _ = io.Copy(io.Discard, os.Stdin)
	if err := s.Close(); err != nil {
		fmt.Fprintln(os.Stderr, "listen helper: close:", err)
		return 1
	}
	if err := <-done; err != nil {
		fmt.Fprintln(os.Stderr, "listen helper:", err)
		return 1
	}
	return 0
}

// testEnv is a hub on a temporary store with the local spawner, and an
// admin Server on it (not listening until a test asks).
type testEnv struct {
	cfg   config.Config
	store *store.Store
	hub   *hub.Hub
	srv   *Server
	logs  *testutil.LogBuffer
	dir   string
}

func newTestEnv(t testing.TB, tune ...func(*config.Config)) *testEnv {
	t.Helper()
	dir := t.TempDir()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cfg := config.Default()
	cfg.Data.DB = filepath.Join(dir, "hubd.sqlite")
	cfg.Data.LogDir = filepath.Join(dir, "logs")
	cfg.Data.RuntimeDir = dir
	cfg.Backups.Dir = filepath.Join(dir, "backups")
	cfg.Admin.Socket = filepath.Join(dir, "hubd.sock")
	cfg.Spawner.Kind = "local"
	cfg.Spawner.Command = []string{exe}
	cfg.Spawner.WorkingDir = dir
	cfg.Spawner.Environment = map[string]string{envRole: "server", envRun: runID}
	cfg.Spawner.StartTimeout = config.Duration(10 * time.Second)
	cfg.Spawner.HTTPTimeout = config.Duration(10 * time.Second)
	cfg.Spawner.StopTimeout = config.Duration(5 * time.Second)
	cfg.Auth.AdminGroup = "hubtest-adm"
	cfg.Auth.AllowedGroup = "hubtest-adm-members"
	for _, d := range []string{cfg.Data.LogDir, cfg.Backups.Dir} {
		if err := os.MkdirAll(d, 0o750); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range tune {
		f(&cfg)
	}
	e := &testEnv{cfg: cfg, logs: &testutil.LogBuffer{}, dir: dir}
	log := slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	ctx := context.Background()
	st, err := store.Open(ctx, cfg.Data.DB, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.CreateOrCheck(ctx); err != nil {
		t.Fatal(err)
	}
	spawners := map[string]spawner.Spawner{spawner.KindLocal: spawner.NewLocal(spawner.LocalOptions{Logger: log})}
	h := hub.New(hub.Options{Config: cfg, Store: st, Spawners: spawners, Routes: proxy.NewTable(), Logger: log})
	e.store, e.hub = st, h
	e.srv = NewServer(Options{Config: cfg, Store: st, Hub: h, Logger: log, Restarter: &fakeRestarter{},
		Listeners: []wire.Listener{{Name: "public", Addr: "127.0.0.1:8000"}}})
	t.Cleanup(func() {
		st.Close()
		if t.Failed() {
			t.Logf("hub log:\n%s", e.logs.String())
		}
	})
	// Runs first: no test leaves a server or the socket behind.
	t.Cleanup(func() {
		e.srv.Close()
		list, _, err := st.ListUsers(ctx, store.UserFilter{Limit: 10000})
		if err != nil {
			t.Errorf("cleanup: %v", err)
		}
		for _, u := range list {
			if err := h.Stop(ctx, u, "", "test cleanup", "test"); err != nil {
				t.Errorf("cleanup: stop %s: %v", u.Name, err)
			}
		}
		h.Wait()
	})
	return e
}

// serve opens the socket and serves until the test ends.
func (e *testEnv) serve(t testing.TB) {
	t.Helper()
	if err := e.srv.Listen(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- e.srv.Serve(context.Background()) }()
	t.Cleanup(func() {
		e.srv.Close()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
}

func (e *testEnv) user(t testing.TB, name string) store.User {
	t.Helper()
	u, err := e.store.EnsureUser(context.Background(), name, false)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// start starts a user's server through the hub and waits until it runs.
func (e *testEnv) start(t testing.TB, name string) {
	t.Helper()
	op, err := e.hub.Start(context.Background(), e.user(t, name), "")
	if err != nil {
		t.Fatal(err)
	}
	if err := op.Wait(context.Background()); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
}

// do sends one request straight to the handler as who.
func (e *testEnv) do(who identity, method, path, body string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, "http://"+wire.Host+path, strings.NewReader(body))
	req = req.WithContext(withIdentity(req.Context(), who))
	rec := httptest.NewRecorder()
	e.srv.ServeHTTP(rec, req)
	return rec
}

// adminEvents counts the audit events written by the admin socket.
func (e *testEnv) adminEvents(t testing.TB) []store.Event {
	t.Helper()
	list, err := e.store.Events(context.Background(), store.EventFilter{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	var out []store.Event
	for _, ev := range list {
		if ev.Source == "admin" {
			out = append(out, ev)
		}
	}
	return out
}

// fakeRestarter records restarts.
type fakeRestarter struct {
	mu  sync.Mutex
	by  []string
	err error
}

func (f *fakeRestarter) Restart(_ context.Context, by string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.by = append(f.by, by)
	return f.err
}

// The identities of the handler tests; the uids are made up, the names
// are users of the store.
var (
	idRoot     = identity{uid: 0, name: "root", role: wire.RoleAdmin, why: "uid 0 (root)"}
	idAdmin    = identity{uid: 990001, name: "hubtest-adm-admin", role: wire.RoleAdmin, why: "in auth.admin_group hubtest-adm"}
	idMember   = identity{uid: 990002, name: "hubtest-adm-member", role: wire.RoleMember, why: "in auth.allowed_group hubtest-adm-members"}
	idOutsider = identity{uid: 990003, name: "hubtest-adm-outsider", why: "hubtest-adm-outsider (uid 990003) is neither an admin nor a member of the hub"}
)

// jsonBody decodes a recorded answer, failing on a non-2xx status.
func jsonBody(rec *httptest.ResponseRecorder, v any) error {
	if rec.Code/100 != 2 {
		return fmt.Errorf("status %d: %s", rec.Code, rec.Body)
	}
	return json.Unmarshal(rec.Body.Bytes(), v)
}
