// Package faults sends hostile input and faults to whole hubs and checks
// the rule hubd holds for each (docs/faults.md lists them with their
// tests). Most tests start a hub in this process through core/server, the
// way `hubd serve` does, with the local spawner running this test binary as
// the single-user server; the crash loop, the soak and the file-descriptor
// test run the real hubd binary as a child process instead, so they can
// kill it or limit it.
package faults

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/hubd/hubd/core/auth"
	"github.com/hubd/hubd/core/config"
	"github.com/hubd/hubd/core/identity"
	"github.com/hubd/hubd/core/names"
	"github.com/hubd/hubd/core/server"
	"github.com/hubd/hubd/core/server/servertest"
	"github.com/hubd/hubd/core/spawner"
	"github.com/hubd/hubd/core/store"
	"github.com/hubd/hubd/internal/testutil"
)

// The test binary doubles as the single-user server (envRole). The local
// spawner gives every server envMode = its user name, which picks its
// behaviour: "exit…" exits at once, "sleep…" never listens, anyone else
// serves. envRun marks this run's servers so TestMain can prove none is
// left behind.
const (
	envRole = "HUBD_FAULTS_TEST_ROLE"
	envMode = "HUBD_FAULTS_TEST_MODE"
	envRun  = "HUBD_FAULTS_TEST_RUN"
)

var runID = strconv.Itoa(os.Getpid())

func TestMain(m *testing.M) {
	if os.Getenv(envRole) == "server" {
		os.Exit(mockServer())
	}
	code := m.Run()
	if left := serverProcs(""); len(left) > 0 {
		fmt.Fprintf(os.Stderr, "faults tests: mock servers left running: %v\n", left)
		for _, pid := range left {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		code = 1
	}
	removeBinaries()
	os.Exit(code)
}

// seen is what the mock server reports about a request it received.
type seen struct {
	User    string      `json:"user"`
	Path    string      `json:"path"` // as received, escaped
	Host    string      `json:"host"`
	Header  http.Header `json:"header"`
	Body    int         `json:"body"` // bytes of request body read
	Request int         `json:"request"`
	// Paths are all the paths this server was asked for so far.
	Paths []string `json:"paths"`
}

// mockServer stands in for jupyterhub-singleuser: every request is answered
// with what the server saw, as JSON, except paths ending in /hang (no
// answer until the client goes) and /reset (half a body, then a reset);
// a websocket gets what the server saw as its first message, then an echo
// of each message. "stubborn…" servers ignore SIGTERM.
func mockServer() int {
	mode := os.Getenv(envMode)
	switch {
	case strings.HasPrefix(mode, "exit"):
		fmt.Fprintln(os.Stderr, "mock server: configured to fail at startup")
		return 3
	case strings.HasPrefix(mode, "sleep"):
		ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
		defer stop()
		<-ctx.Done()
		return 0
	}
	u, err := url.Parse(os.Getenv("JUPYTERHUB_SERVICE_URL"))
	if err != nil {
		fmt.Fprintln(os.Stderr, "mock server:", err)
		return 2
	}
	l, err := net.Listen("tcp", u.Host)
	if err != nil {
		fmt.Fprintln(os.Stderr, "mock server:", err)
		return 1
	}
	user := os.Getenv("JUPYTERHUB_USER")
	var (
		mu    sync.Mutex
		paths []string
	)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	if strings.HasPrefix(mode, "stubborn") {
		signal.Ignore(syscall.SIGTERM)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		paths = append(paths, r.URL.EscapedPath())
		s := seen{User: user, Path: r.URL.EscapedPath(), Host: r.Host, Header: r.Header, Request: len(paths), Paths: slices.Clone(paths)}
		mu.Unlock()
		body, _ := io.Copy(io.Discard, r.Body)
		s.Body = int(body)
		switch {
		case strings.EqualFold(r.Header.Get("Upgrade"), "websocket"):
			echoWebsocket(w, r, s)
		case strings.HasSuffix(r.URL.Path, "/hang"):
			<-r.Context().Done()
		case strings.HasSuffix(r.URL.Path, "/reset"):
			w.Header().Set("Content-Length", strconv.Itoa(1<<20))
			_, _ = w.Write(make([]byte, 64<<10))
			rc := http.NewResponseController(w)
			_ = rc.Flush()
			if c, _, err := rc.Hijack(); err == nil {
				c.(*net.TCPConn).SetLinger(0)
				c.Close()
			}
		default:
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(s)
		}
	})}
	go func() { <-ctx.Done(); srv.Close() }()
	if err := srv.Serve(l); !errors.Is(err, http.ErrServerClosed) {
		fmt.Fprintln(os.Stderr, "mock server:", err)
		return 1
	}
	return 0
}

// echoWebsocket reports what the server saw, then sends every message back
// until the peer goes, and says so in the server's log. Origins are not
// checked here: the hub passes them on, and what the server does with them
// is the server's business (docs/faults.md, item 15).
func echoWebsocket(w http.ResponseWriter, r *http.Request, s seen) {
	c, err := websocket.Accept(w, r, &websocket.AcceptOptions{InsecureSkipVerify: true})
	if err != nil {
		return
	}
	defer func() {
		c.CloseNow()
		fmt.Println("mock server: websocket ended")
	}()
	first, _ := json.Marshal(s)
	if err := c.Write(r.Context(), websocket.MessageText, first); err != nil {
		return
	}
	for {
		typ, b, err := c.Read(r.Context())
		if err != nil {
			return
		}
		if err := c.Write(r.Context(), typ, b); err != nil {
			return
		}
	}
}

// serverProcs lists the pids of this run's mock servers, of one user or
// (user "") of all.
func serverProcs(user string) []int {
	want := []string{envRun + "=" + runID}
	if user != "" {
		want = append(want, "JUPYTERHUB_USER="+user)
	}
	return testutil.Procs(testutil.WithEnv(want...))
}

// fakeAuth stands in for PAM where PAM is not what a test is about: any
// valid name logs in with the password "pw-<name>".
type fakeAuth struct{}

func (fakeAuth) Check(_ context.Context, username, password, _ string) (identity.External, error) {
	name := names.Normalize(username)
	if names.Check(name) != nil || password != "pw-"+name {
		return identity.External{}, &auth.Error{Kind: auth.ErrInvalidCredentials, Public: "Wrong user name or password."}
	}
	return identity.External{Method: identity.MethodPAM, Subject: name, Name: name}, nil
}

// fakeAccounts is a user database where every name is a member's account
// and "admin…" accounts are in the admin group too.
type fakeAccounts struct{}

const fakeAdminGroup = "hubtest-faults-admins"

func (fakeAccounts) Lookup(name string) (identity.LinuxAccount, error) {
	a := identity.LinuxAccount{Name: name, UID: 5000, GID: 5000, Home: "/home/" + name, Groups: []string{config.Default().Auth.AllowedGroup}}
	if strings.HasPrefix(name, "admin") {
		a.Groups = append(a.Groups, fakeAdminGroup)
	}
	return a, nil
}

func (fakeAccounts) GroupExists(string) bool { return true }

func (fakeAccounts) Create(context.Context, string, string) error {
	return errors.New("fakeAccounts: every account exists")
}

// hub is one hub started through core/server in this process.
type hub struct {
	srv      *server.Server
	cfg      config.Config
	url      string // public base URL
	internal string // internal base URL
	logs     *testutil.LogBuffer
	down     bool // shut down already
}

// hubOptions change what startHub builds.
type hubOptions struct {
	pam      bool                       // the real PAM login and user database (default: fakeAuth, fakeAccounts)
	now      func() time.Time           // nil: time.Now
	spawners map[string]spawner.Spawner // nil: from the configuration
}

// hubConfig is servertest's hub, with this package's mock server and
// without the shared environment (servers get exactly spawner.path).
func hubConfig(t *testing.T) config.Config {
	t.Helper()
	cfg := servertest.Config(t, map[string]string{envRole: "server", envRun: runID, envMode: "{username}"})
	cfg.SharedEnv.Enabled = false
	cfg.Auth.AdminGroup = fakeAdminGroup
	return cfg
}

// startHub starts a hub as `hubd serve` would and stops it, and every
// server it started, when the test ends.
func startHub(t *testing.T, o hubOptions, tune ...func(*config.Config)) *hub {
	t.Helper()
	cfg := hubConfig(t)
	for _, f := range tune {
		f(&cfg)
	}
	return runHub(t, cfg, o)
}

// runHub starts a hub on cfg (a second hub on the state of a first one
// that was shut down, for instance).
func runHub(t *testing.T, cfg config.Config, o hubOptions) *hub {
	t.Helper()
	so := server.Options{Config: cfg, Now: o.now, Spawners: o.spawners}
	if !o.pam {
		so.Password, so.Accounts = fakeAuth{}, fakeAccounts{}
	}
	h := &hub{cfg: cfg, logs: &testutil.LogBuffer{}}
	ctx := context.Background()
	so.Logger = slog.New(slog.NewTextHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	srv, err := server.New(ctx, so)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(ctx); err != nil {
		srv.Close()
		t.Fatal(err)
	}
	h.srv = srv
	h.url, h.internal = "http://"+srv.Addr(server.Public), "http://"+srv.Addr(server.Internal)
	t.Cleanup(func() {
		if !h.down {
			users, _, err := srv.Store().ListUsers(ctx, store.UserFilter{Limit: 10000})
			if err != nil {
				t.Errorf("cleanup: %v", err)
			}
			for _, u := range users {
				if err := srv.Hub().Stop(ctx, u, "", "test cleanup", "test"); err != nil {
					t.Errorf("cleanup: stop %s: %v", u.Name, err)
				}
			}
			h.shutdown(t)
		}
		if t.Failed() {
			t.Logf("hub log:\n%s", h.logs.String())
		}
	})
	return h
}

// shutdown stops the hub as `hubd serve` does on SIGTERM: its servers
// keep running.
func (h *hub) shutdown(t *testing.T) {
	t.Helper()
	h.down = true
	if err := h.srv.Shutdown(context.Background()); err != nil {
		t.Errorf("shutdown: %v", err)
	}
}

// user returns the user, creating it ("admin…" as an admin).
func (h *hub) user(t *testing.T, name string) store.User {
	t.Helper()
	ctx := context.Background()
	u, err := h.srv.Store().UserByName(ctx, name)
	if errors.Is(err, store.ErrNotFound) {
		u, err = h.srv.Store().CreateUser(ctx, name, strings.HasPrefix(name, "admin"))
	}
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// token creates an API token for name (created if missing) with the given
// scopes, or the owner's full rights when none.
func (h *hub) token(t *testing.T, name string, scopes ...string) string {
	t.Helper()
	u := h.user(t, name)
	if len(scopes) == 0 {
		scopes = []string{"inherit"}
	}
	raw, _ := json.Marshal(scopes)
	tok := store.RandomID(16)
	if _, err := h.srv.Store().CreateToken(context.Background(), store.Token{UserID: u.ID, Hash: store.HashToken(tok),
		Prefix: tok[:4], Kind: store.TokenAPI, Scopes: string(raw), Note: "test"}); err != nil {
		t.Fatal(err)
	}
	return tok
}

// start starts name's server through the API and waits until it answers.
func (h *hub) start(t *testing.T, name string) {
	t.Helper()
	h.api(t, http.MethodPost, "/users/"+name+"/server", h.token(t, name), nil).want(t, http.StatusCreated)
}

// reply is a finished response with its body read.
type reply struct {
	*http.Response
	body []byte
}

func (r reply) want(t *testing.T, status ...int) reply {
	t.Helper()
	for _, s := range status {
		if r.StatusCode == s {
			return r
		}
	}
	t.Fatalf("%s %s: status %d, want %v; body: %.500s", r.Request.Method, r.Request.URL, r.StatusCode, status, r.body)
	return r
}

func (r reply) json(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("%s %s: body is not JSON: %v\n%.500s", r.Request.Method, r.Request.URL, err, r.body)
	}
}

// do sends a request and reads the answer (testutil.Do).
func do(t *testing.T, c *http.Client, method, u string, body io.Reader, hdr ...string) reply {
	t.Helper()
	resp, b := testutil.Do(t, c, method, u, body, hdr...)
	return reply{resp, b}
}

// api calls the hub API with a token ("" for none) and a JSON body (nil
// for none; a string is sent as it is).
func (h *hub) api(t *testing.T, method, path, tok string, body any, hdr ...string) reply {
	t.Helper()
	rd, hdr := testutil.APIRequest(tok, body, hdr...)
	return do(t, testutil.NewClient(t), method, h.url+"/hub/api"+path, rd, hdr...)
}

// raw writes req verbatim to the public port and reads one answer, for
// requests a Go client would refuse or rewrite.
func (h *hub) raw(t *testing.T, req string) reply {
	t.Helper()
	c, err := net.Dial("tcp", strings.TrimPrefix(h.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.SetDeadline(time.Now().Add(20 * time.Second)); err != nil {
		t.Fatal(err)
	}
	// The hub may answer before reading all of a refused request.
	_, _ = io.WriteString(c, req)
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("answer to %.80q: %v", req, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return reply{resp, b}
}

var formAction = regexp.MustCompile(`<form method="post" action="([^"]*)"`)

// browser is a person with a cookie jar.
type browser struct {
	h *hub
	c *http.Client
}

func (h *hub) browser(t *testing.T) *browser { return &browser{h: h, c: testutil.NewClient(t)} }

func (b *browser) get(t *testing.T, path string, hdr ...string) reply {
	t.Helper()
	return do(t, b.c, http.MethodGet, b.h.url+path, nil, hdr...)
}

// cookie returns the jar's cookie name for path.
func (b *browser) cookie(path, name string) string {
	u, _ := url.Parse(b.h.url + path)
	for _, c := range b.c.Jar.Cookies(u) {
		if c.Name == name {
			return c.Value
		}
	}
	return ""
}

// login posts the login form as a person would (GET, then POST with the
// form's _xsrf) and returns the answer.
func (b *browser) login(t *testing.T, name, password string) reply {
	t.Helper()
	page := b.get(t, "/hub/login").want(t, http.StatusOK)
	m := formAction.FindSubmatch(page.body)
	if m == nil {
		t.Fatalf("no form on the login page:\n%s", page.body)
	}
	action := strings.ReplaceAll(string(m[1]), "&amp;", "&")
	form := url.Values{"username": {name}, "password": {password}, "_xsrf": {b.cookie("/hub/", "_xsrf")}}
	return do(t, b.c, http.MethodPost, b.h.url+action, strings.NewReader(form.Encode()),
		"Content-Type", "application/x-www-form-urlencoded")
}

// dialWS opens a websocket through the hub's public port.
func (h *hub) dialWS(ctx context.Context, path string, hdr http.Header) (*websocket.Conn, *http.Response, error) {
	return websocket.Dial(ctx, "ws"+strings.TrimPrefix(h.url, "http")+path, &websocket.DialOptions{HTTPHeader: hdr})
}
