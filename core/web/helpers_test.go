package web_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/hubd/hubd/internal/testutil"

	"github.com/hubd/hubd/core/auth"
	"github.com/hubd/hubd/core/config"
	"github.com/hubd/hubd/core/hub"
	"github.com/hubd/hubd/core/identity"
	"github.com/hubd/hubd/core/proxy"
	"github.com/hubd/hubd/core/server"
	"github.com/hubd/hubd/core/server/servertest"
	"github.com/hubd/hubd/core/store"
	"github.com/hubd/hubd/core/web"
)

// The test binary doubles as the single-user server the local spawner
// starts (selected by envRole). spawner.environment gives every server
// envMode = its user name, so the user name picks the server's behaviour:
// "exit…" exits at once with status 3, "sleep…" never listens, "slow…"
// takes a second before it listens (a start with a window to interrupt),
// "oldie" claims JupyterHub 2.3.1, anyone else serves. envRun marks this run's
// servers so TestMain can prove none is left behind.
const (
	envRole = "HUBD_WEB_TEST_ROLE"
	envMode = "HUBD_WEB_TEST_MODE"
	envRun  = "HUBD_WEB_TEST_RUN"
)

var runID = strconv.Itoa(os.Getpid())

func TestMain(m *testing.M) {
	if os.Getenv(envRole) == "server" {
		os.Exit(mockServer())
	}
	code := m.Run()
	if left := serverProcs(""); len(left) > 0 {
		fmt.Fprintf(os.Stderr, "web tests: mock servers left running: %v\n", left)
		for _, pid := range left {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		code = 1
	}
	os.Exit(code)
}

// mockServer stands in for jupyterhub-singleuser: it answers every path
// under its prefix with the user and the path, and sends a JupyterHub
// version header like the real one.
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
	case strings.HasPrefix(mode, "slow"):
		time.Sleep(time.Second)
	}
	version := "3.0.0"
	if mode == "oldie" {
		version = "2.3.1"
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
	prefix := os.Getenv("JUPYTERHUB_SERVICE_PREFIX")
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-JupyterHub-Version", version)
		if !strings.HasPrefix(r.URL.Path, prefix) {
			http.NotFound(w, r)
			return
		}
		fmt.Fprintf(w, "mock %s: %s", os.Getenv("JUPYTERHUB_USER"), r.URL.RequestURI())
	})}
	go func() { <-ctx.Done(); srv.Close() }()
	if err := srv.Serve(l); !errors.Is(err, http.ErrServerClosed) {
		fmt.Fprintln(os.Stderr, "mock server:", err)
		return 1
	}
	return 0
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

// serverToken reads a running server's API token from its environment,
// as the single-user server itself has it.
func serverToken(t *testing.T, user string) string {
	t.Helper()
	pids := serverProcs(user)
	if len(pids) != 1 {
		t.Fatalf("want one server process for %s, found %v", user, pids)
	}
	if tok := testutil.Environ(pids[0])["JUPYTERHUB_API_TOKEN"]; tok != "" {
		return tok
	}
	t.Fatalf("no JUPYTERHUB_API_TOKEN in %s's server environment", user)
	return ""
}

// fakeAuth accepts "pw-<name>" for anyone and "throttled" is always
// throttled.
type fakeAuth struct{}

const publicWrongPassword = "Wrong user name or password. Check both and try again."

func (fakeAuth) Check(_ context.Context, username, password, _ string) (identity.External, error) {
	switch {
	case username == "throttled":
		return identity.External{}, &auth.Error{Kind: auth.ErrThrottled, Public: "Too many failed logins. Try again in 42s.", RetryAfter: 42 * time.Second}
	case password != "pw-"+username:
		return identity.External{}, &auth.Error{Kind: auth.ErrInvalidCredentials, Public: publicWrongPassword}
	}
	return identity.External{Method: identity.MethodPAM, Subject: username, Name: username}, nil
}

// fakeAccounts is a user database where every name is a member's account
// and "admin…" accounts are also in the admin group; "outsider" is in no
// group.
type fakeAccounts struct{}

const fakeAdminGroup = "hubtest-web-admins"

func (fakeAccounts) Lookup(name string) (identity.LinuxAccount, error) {
	a := identity.LinuxAccount{Name: name, UID: 5000, GID: 5000, Home: "/home/" + name, Groups: []string{config.Default().Auth.AllowedGroup}}
	switch {
	case name == "outsider":
		a.Groups = nil
	case strings.HasPrefix(name, "admin"):
		a.Groups = append(a.Groups, fakeAdminGroup)
	}
	return a, nil
}

func (fakeAccounts) GroupExists(string) bool { return true }

func (fakeAccounts) Create(context.Context, string, string) error {
	return errors.New("fakeAccounts: every account exists")
}

// env is one hub, started through core/server as `hubd serve` starts
// it, with fakeAuth for PAM, fakeAccounts for the user database and a
// clock the test can move.
type env struct {
	cfg      config.Config
	store    *store.Store
	hub      *hub.Hub
	routes   *proxy.Table
	handler  http.Handler // the public handler, for handler-level tests
	url      string       // public base URL, http://127.0.0.1:<port>
	internal string       // internal base URL
	logs     *testutil.LogBuffer
	skew     atomic.Int64 // added to the hub's clock
}

func newEnv(t *testing.T, tune ...func(*config.Config)) *env {
	t.Helper()
	return newEnvWith(t, server.Options{Password: fakeAuth{}, Accounts: fakeAccounts{}}, tune...)
}

// newEnvWith is newEnv with other seams: a nil Password is the real one
// the configuration asks for (LDAP against a lab directory).
func newEnvWith(t *testing.T, opts server.Options, tune ...func(*config.Config)) *env {
	t.Helper()
	cfg := servertest.Config(t, map[string]string{envRole: "server", envRun: runID, envMode: "{username}"})
	for _, f := range tune {
		f(&cfg)
	}
	e := &env{}
	now := func() time.Time { return time.Now().Add(time.Duration(e.skew.Load())) }
	cfg.Auth.AdminGroup = fakeAdminGroup
	opts.Now = now
	h := servertest.Start(t, cfg, opts)
	e.cfg, e.store, e.hub, e.routes, e.handler = h.Config, h.Store(), h.Hub(), h.Routes(), h.Handler()
	e.url, e.internal, e.logs = h.URL, h.Internal, h.Logs
	// Runs before the hub's own cleanup (which stops every server).
	t.Cleanup(func() {
		h.StopAll(t)
		if left := serverProcs(""); len(left) > 0 && !t.Failed() {
			t.Errorf("servers still running after cleanup: %v", left)
		}
	})
	return e
}

// user returns the user, creating it ("admin…" as an admin).
func (e *env) user(t *testing.T, name string) store.User {
	t.Helper()
	u, err := e.store.UserByName(context.Background(), name)
	if errors.Is(err, store.ErrNotFound) {
		u, err = e.store.CreateUser(context.Background(), name, strings.HasPrefix(name, "admin"))
	}
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// token creates an API token for name (created if missing) with the
// given scopes, or "inherit" (the owner's full rights) when none.
func (e *env) token(t *testing.T, name string, scopes ...string) string {
	t.Helper()
	u := e.user(t, name)
	if len(scopes) == 0 {
		scopes = []string{"inherit"}
	}
	raw, _ := json.Marshal(scopes)
	tok := web.NewToken()
	if _, err := e.store.CreateToken(context.Background(), store.Token{UserID: u.ID, Hash: store.HashToken(tok),
		Prefix: tok[:4], Kind: store.TokenAPI, Scopes: string(raw), Note: "test"}); err != nil {
		t.Fatal(err)
	}
	return tok
}

// reply is a finished response with its body read.
type reply struct {
	*http.Response
	body []byte
}

func (r reply) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("%s %s: body is not a JSON object: %v\n%s", r.Request.Method, r.Request.URL, err, r.body)
	}
	return m
}

func (r reply) want(t *testing.T, status int) reply {
	t.Helper()
	if r.StatusCode != status {
		t.Fatalf("%s %s: status %d, want %d; body: %.500s", r.Request.Method, r.Request.URL, r.StatusCode, status, r.body)
	}
	return r
}

// do sends a request and reads the answer (testutil.Do).
func do(t *testing.T, c *http.Client, method, u string, body io.Reader, hdr ...string) reply {
	t.Helper()
	resp, b := testutil.Do(t, c, method, u, body, hdr...)
	return reply{resp, b}
}

// api calls the hub API at path with a token ("" for none) and a JSON body
// (nil for none; a string or []byte is sent as is).
func (e *env) api(t *testing.T, method, path, tok string, body any, hdr ...string) reply {
	t.Helper()
	rd, hdr := testutil.APIRequest(tok, body, hdr...)
	return do(t, testutil.NewClient(t), method, e.url+"/hub/api"+path, rd, hdr...)
}

// browser is a person with a cookie jar.
type browser struct {
	e *env
	c *http.Client
}

func (e *env) browser(t *testing.T) *browser { return &browser{e: e, c: testutil.NewClient(t)} }

func (b *browser) get(t *testing.T, path string, hdr ...string) reply {
	t.Helper()
	return do(t, b.c, http.MethodGet, b.e.url+path, nil, hdr...)
}

// cookie returns the value of the jar's cookie for path.
func (b *browser) cookie(path, name string) string {
	u, _ := url.Parse(b.e.url + path)
	for _, c := range b.c.Jar.Cookies(u) {
		if c.Name == name {
			return c.Value
		}
	}
	return ""
}

var formAction = regexp.MustCompile(`<form method="post" action="([^"]*)"`)

// loginForm loads the login page (with next, if given) and returns the
// form's action and its _xsrf value.
func (b *browser) loginForm(t *testing.T, next string) (action, xsrf string) {
	t.Helper()
	path := "/hub/login"
	if next != "" {
		path += "?next=" + url.QueryEscape(next)
	}
	r := b.get(t, path).want(t, http.StatusOK)
	m := formAction.FindSubmatch(r.body)
	if m == nil {
		t.Fatalf("no form on the login page:\n%s", r.body)
	}
	return htmlUnescape(string(m[1])), b.cookie("/hub/", web.XSRFCookie)
}

func htmlUnescape(s string) string {
	return strings.NewReplacer("&amp;", "&", "&#43;", "+", "&lt;", "<", "&gt;", ">", "&#34;", `"`, "&#39;", "'").Replace(s)
}

// postForm posts a form to path (relative to the hub's URL).
func (b *browser) postForm(t *testing.T, path string, form url.Values) reply {
	t.Helper()
	return do(t, b.c, http.MethodPost, b.e.url+path, strings.NewReader(form.Encode()),
		"Content-Type", "application/x-www-form-urlencoded")
}

// login logs the browser in as name through the login form.
func (b *browser) login(t *testing.T, name string) *browser {
	t.Helper()
	action, xsrf := b.loginForm(t, "")
	b.postForm(t, action, url.Values{"username": {name}, "password": {"pw-" + name}, "_xsrf": {xsrf}}).want(t, http.StatusFound)
	return b
}

// start starts name's server through the API and waits until it is ready.
func (e *env) start(t *testing.T, name string) {
	t.Helper()
	e.api(t, http.MethodPost, "/users/"+name+"/server", e.token(t, name), nil).want(t, http.StatusCreated)
}

// server returns name's default server row.
func (e *env) server(t *testing.T, name string) store.Server {
	t.Helper()
	u := e.user(t, name)
	s, err := e.store.Server(context.Background(), u.ID, "")
	if err != nil {
		t.Fatalf("server of %s: %v", name, err)
	}
	return s
}

// events reads a progress stream to its end.
func (e *env) events(t *testing.T, name, tok string) []hub.Event {
	t.Helper()
	r := e.api(t, http.MethodGet, "/users/"+name+"/server/progress", tok, nil).want(t, http.StatusOK)
	if ct := r.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("progress Content-Type %q", ct)
	}
	var out []hub.Event
	for _, line := range strings.Split(string(r.body), "\n") {
		data, ok := strings.CutPrefix(line, "data: ")
		if !ok {
			continue
		}
		var ev hub.Event
		if err := json.Unmarshal([]byte(data), &ev); err != nil {
			t.Fatalf("bad event %q: %v", data, err)
		}
		out = append(out, ev)
	}
	if len(out) == 0 {
		t.Fatalf("empty progress stream: %q", r.body)
	}
	return out
}
