package admin_test

import (
	"bufio"
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
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/hubd/hubd/internal/testutil"

	"github.com/hubd/hubd/core/admin"
	"github.com/hubd/hubd/core/admin/client"
	"github.com/hubd/hubd/core/admin/wire"
	"github.com/hubd/hubd/core/config"
	"github.com/hubd/hubd/core/hub"
	"github.com/hubd/hubd/core/server"
	"github.com/hubd/hubd/core/server/servertest"
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
func serverProcs() []int { return testutil.Procs(testutil.WithEnv(envRun + "=" + runID)) }

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
// "log:<user>", "users", "admin:<user>", "deluser:<user>") on envSocket.
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
		_, err = c.ServerLog(ctx, arg, "", 10)
	case "users":
		_, err = c.AllUsers(ctx, "")
	case "admin":
		_, err = c.SetAdmin(ctx, arg, true)
	case "deluser":
		_, err = c.DeleteUser(ctx, arg)
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
	s := admin.NewServer(admin.Options{Config: cfg, Logger: slog.New(slog.NewTextHandler(os.Stderr, nil))})
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

// testEnv is a hub started through core/server, as `hubd serve` starts
// it, with the local spawner, its admin server serving on the socket, and
// a restarter that only records who asked.
type testEnv struct {
	cfg      config.Config
	store    *store.Store
	hub      *hub.Hub
	srv      *admin.Server
	url      string // the public listener
	logs     *testutil.LogBuffer
	restarts *fakeRestarter
	frozen   atomic.Pointer[time.Time] // the hub's clock, when set
}

// testConfig is the configuration of a test hub, tune applied.
func testConfig(t testing.TB, tune ...func(*config.Config)) config.Config {
	t.Helper()
	cfg := servertest.Config(t, map[string]string{envRole: "server", envRun: runID})
	cfg.Auth.AdminGroup = "hubtest-adm"
	cfg.Auth.AllowedGroup = "hubtest-adm-members"
	cfg.SharedEnv.Path = filepath.Join(t.TempDir(), "env") // none until a test makes one
	for _, f := range tune {
		f(&cfg)
	}
	return cfg
}

func newTestEnv(t testing.TB, tune ...func(*config.Config)) *testEnv {
	t.Helper()
	e, err := tryTestEnv(t, testConfig(t, tune...), server.Options{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// tryTestEnv starts a hub that may refuse to start (see servertest.TryStart).
func tryTestEnv(t testing.TB, cfg config.Config, o server.Options, handed map[string]*os.File) (*testEnv, error) {
	t.Helper()
	e := &testEnv{restarts: &fakeRestarter{}}
	o.Now = func() time.Time {
		if at := e.frozen.Load(); at != nil {
			return *at
		}
		return time.Now()
	}
	h, err := servertest.TryStart(t, cfg, o, handed)
	if err != nil {
		return nil, err
	}
	e.cfg, e.store, e.hub, e.srv, e.url, e.logs = h.Config, h.Store(), h.Hub(), h.Admin(), h.URL, h.Logs
	e.srv.SetRestarter(e.restarts)
	return e, nil
}

// freeze stops the hub's clock at at.
func (e *testEnv) freeze(at time.Time) { e.frozen.Store(&at) }

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
func (e *testEnv) do(who admin.Identity, method, path, body string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, "http://"+wire.Host+path, strings.NewReader(body))
	rec := httptest.NewRecorder()
	e.srv.ServeAs(rec, req, who)
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
	idRoot     = admin.NewIdentity(0, "root", wire.RoleAdmin, "uid 0 (root)")
	idAdmin    = admin.NewIdentity(990001, "hubtest-adm-admin", wire.RoleAdmin, "in auth.admin_group hubtest-adm")
	idMember   = admin.NewIdentity(990002, "hubtest-adm-member", wire.RoleMember, "in auth.allowed_group hubtest-adm-members")
	idOutsider = admin.NewIdentity(990003, "hubtest-adm-outsider", "", "hubtest-adm-outsider (uid 990003) is neither an admin nor a member of the hub")
)

// jsonBody decodes a recorded answer, failing on a non-2xx status.
func jsonBody(rec *httptest.ResponseRecorder, v any) error {
	if rec.Code/100 != 2 {
		return fmt.Errorf("status %d: %s", rec.Code, rec.Body)
	}
	return json.Unmarshal(rec.Body.Bytes(), v)
}
