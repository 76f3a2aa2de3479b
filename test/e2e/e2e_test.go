package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
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

	"github.com/coder/websocket"
	"golang.org/x/sys/unix"
)

// browser is one person's HTTP client with its own cookie jar.
type browser struct {
	t      testing.TB
	base   string // the hub's public URL
	client *http.Client
	jar    *cookiejar.Jar
	// auth, when set, is sent as the Authorization header of every
	// request (a token instead of cookies).
	auth string
}

func newBrowser(t testing.TB) *browser { return newBrowserAt(t, env.public) }

func newBrowserAt(t testing.TB, base string) *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{t: t, base: base, jar: jar, client: &http.Client{Jar: jar, Timeout: 60 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

func (b *browser) cookie(path, name string) string {
	u, _ := url.Parse(b.base + path)
	for _, c := range b.jar.Cookies(u) {
		if c.Name == name {
			return c.Value
		}
	}
	return ""
}

func (b *browser) do(method, path string, body io.Reader, hdr map[string]string) *http.Response {
	b.t.Helper()
	req, err := http.NewRequest(method, b.base+path, body)
	if err != nil {
		b.t.Fatal(err)
	}
	if b.auth != "" {
		req.Header.Set("Authorization", b.auth)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := b.client.Do(req)
	if err != nil {
		b.t.Fatalf("%s %s: %v", method, path, err)
	}
	return resp
}

func readAll(r *http.Response) string {
	defer r.Body.Close()
	b, _ := io.ReadAll(r.Body)
	return string(b)
}

var xsrfField = regexp.MustCompile(`name="_xsrf" value="([^"]+)"`)

// login does what a person (or hubtraf) does: GET the form, POST it.
func (b *browser) login(name, pw string) *http.Response {
	b.t.Helper()
	page := readAll(b.do("GET", "/hub/login", nil, nil))
	m := xsrfField.FindStringSubmatch(page)
	if m == nil {
		b.t.Fatalf("login form has no _xsrf field:\n%s", page)
	}
	form := url.Values{"username": {name}, "password": {pw}, "_xsrf": {m[1]}}
	return b.do("POST", "/hub/login", strings.NewReader(form.Encode()), map[string]string{"Content-Type": "application/x-www-form-urlencoded"})
}

// follow GETs path and follows redirects (the OAuth dance), returning the
// final response and URL path.
func (b *browser) follow(path string) (*http.Response, string) {
	b.t.Helper()
	for i := 0; i < 10; i++ {
		resp := b.do("GET", path, nil, nil)
		if resp.StatusCode < 300 || resp.StatusCode >= 400 {
			return resp, path
		}
		resp.Body.Close()
		loc, _ := resp.Location()
		path = loc.RequestURI()
	}
	b.t.Fatalf("too many redirects ending at %s", path)
	return nil, ""
}

// startServer logs in, requests a spawn and waits until the server answers
// through the proxy.
func startServer(t *testing.T, b *browser, name, pw string) {
	t.Helper()
	if b.cookie("/hub/", "jupyterhub-hub-login") == "" {
		resp := b.login(name, pw)
		readAll(resp)
		if resp.StatusCode != http.StatusFound {
			t.Fatalf("login %s: status %d", name, resp.StatusCode)
		}
	}
	readAll(b.do("GET", "/hub/spawn", nil, nil))
	err := waitFor(90*time.Second, func() error {
		r := b.do("GET", "/user/"+name+"/api", nil, nil)
		body := readAll(r)
		if r.StatusCode != 200 || !strings.Contains(body, "version") {
			return fmt.Errorf("status %d: %.200s", r.StatusCode, body)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("%s's server never answered through the proxy: %v\nhub log:\n%s", name, err, hubLog())
	}
}

func hubLog() string { return env.hub.logTail() }

// logTail is the end of the hub's log.
func (p *hubProcess) logTail() string {
	b, _ := os.ReadFile(p.log)
	s := string(b)
	if len(s) > 6000 {
		s = s[len(s)-6000:]
	}
	return s
}

// serverPIDs lists the jupyterhub-singleuser processes of a user.
func serverPIDs(t *testing.T, name string) []int {
	t.Helper()
	u, err := user.Lookup(name)
	if err != nil {
		t.Fatal(err)
	}
	out, _ := exec.Command("pgrep", "-u", u.Uid, "-f", "jupyterhub-singleuser").Output()
	var pids []int
	for _, f := range strings.Fields(string(out)) {
		if p, err := strconv.Atoi(f); err == nil {
			pids = append(pids, p)
		}
	}
	return pids
}

func procUID(pid int) string {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "Uid:"); ok {
			return strings.Fields(rest)[0]
		}
	}
	return ""
}

// serverAPI calls the single-user server's API the way the Notebook page
// does: cookie auth plus the server's own _xsrf cookie in X-XSRFToken.
func (b *browser) serverAPI(method, name, path string, body string) (*http.Response, string) {
	b.t.Helper()
	hdr := map[string]string{"X-XSRFToken": b.cookie("/user/"+name+"/", "_xsrf"), "Content-Type": "application/json"}
	resp := b.do(method, "/user/"+name+path, strings.NewReader(body), hdr)
	return resp, readAll(resp)
}

// execute runs code in a kernel over the kernel's websocket, through the
// proxy, and returns the text/plain result.
func (b *browser) execute(ctx context.Context, name, kernel, code string) (string, error) {
	wsURL := "ws" + strings.TrimPrefix(b.base, "http") + "/user/" + name + "/api/kernels/" + kernel + "/channels"
	u, _ := url.Parse(b.base + "/user/" + name + "/")
	var cookies []string
	for _, c := range b.jar.Cookies(u) {
		cookies = append(cookies, c.Name+"="+c.Value)
	}
	hdr := http.Header{"Cookie": {strings.Join(cookies, "; ")}}
	if b.auth != "" {
		hdr.Set("Authorization", b.auth)
	}
	conn, resp, err := websocket.Dial(ctx, wsURL, &websocket.DialOptions{HTTPHeader: hdr, HTTPClient: b.client})
	if err != nil {
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		return "", fmt.Errorf("websocket dial (status %d): %w", status, err)
	}
	defer conn.CloseNow()
	conn.SetReadLimit(16 << 20)
	msgID := fmt.Sprintf("hubtest-%d", time.Now().UnixNano())
	req := map[string]any{
		"header": map[string]any{"msg_id": msgID, "username": name, "session": "hubtest", "msg_type": "execute_request",
			"version": "5.3", "date": time.Now().UTC().Format(time.RFC3339)},
		"parent_header": map[string]any{}, "metadata": map[string]any{}, "channel": "shell", "buffers": []any{},
		"content": map[string]any{"code": code, "silent": false, "store_history": false, "user_expressions": map[string]any{},
			"allow_stdin": false, "stop_on_error": true},
	}
	msg, _ := json.Marshal(req)
	if err := conn.Write(ctx, websocket.MessageText, msg); err != nil {
		return "", err
	}
	for {
		_, data, err := conn.Read(ctx)
		if err != nil {
			return "", err
		}
		var m struct {
			MsgType      string `json:"msg_type"`
			ParentHeader struct {
				MsgID string `json:"msg_id"`
			} `json:"parent_header"`
			Content struct {
				Data  map[string]any `json:"data"`
				Ename string         `json:"ename"`
			} `json:"content"`
		}
		if json.Unmarshal(data, &m) != nil || m.ParentHeader.MsgID != msgID {
			continue
		}
		switch m.MsgType {
		case "execute_result":
			s, _ := m.Content.Data["text/plain"].(string)
			return s, nil
		case "error":
			return "", fmt.Errorf("kernel error %s", m.Content.Ename)
		}
	}
}

// memberWithServer logs name in with a fresh browser and starts their
// server, which is stopped again when the test ends: every test that
// needs a running server has its own, so one failure names one capability.
func memberWithServer(t *testing.T, name, pw string) *browser {
	t.Helper()
	b := newBrowser(t)
	startServer(t, b, name, pw)
	t.Cleanup(func() { stopServer(t, b, name) })
	return b
}

// stopServer stops name's server through the API and waits until its
// process is gone.
func stopServer(t *testing.T, b *browser, name string) {
	t.Helper()
	r := b.do("DELETE", "/hub/api/users/"+name+"/server", nil, map[string]string{"X-XSRFToken": b.cookie("/hub/", "_xsrf")})
	body := readAll(r)
	if r.StatusCode != http.StatusNoContent {
		t.Fatalf("stop: %d %s", r.StatusCode, body)
	}
	if err := waitFor(15*time.Second, func() error {
		if p := serverPIDs(t, name); len(p) > 0 {
			return fmt.Errorf("still running: %v", p)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

// openTree visits the server's notebook tree; the first visit does the
// OAuth round trip that gives the browser its cookie for the server.
func openTree(t *testing.T, b *browser, name string) {
	t.Helper()
	resp, final := b.follow("/user/" + name + "/tree")
	page := readAll(resp)
	if resp.StatusCode != 200 || !strings.HasPrefix(final, "/user/"+name+"/tree") || !strings.Contains(page, "notebook_list") {
		t.Fatalf("tree: %d at %s", resp.StatusCode, final)
	}
}

// startKernel starts a python3 kernel on name's server and returns its id.
func startKernel(t *testing.T, b *browser, name string) string {
	t.Helper()
	resp, body := b.serverAPI("POST", name, "/api/kernels", `{"name": "python3"}`)
	if resp.StatusCode != 201 {
		t.Fatalf("start kernel: %d %s", resp.StatusCode, body)
	}
	var k struct{ ID string }
	_ = json.Unmarshal([]byte(body), &k)
	return k.ID
}

func TestSpawnRunsAsTheMember(t *testing.T) {
	need(t)
	memberWithServer(t, alice, alicePW)
	pids := serverPIDs(t, alice)
	if len(pids) != 1 {
		t.Fatalf("want one server process of %s, got %v", alice, pids)
	}
	u, _ := user.Lookup(alice)
	if got := procUID(pids[0]); got != u.Uid {
		t.Fatalf("server runs as uid %s, want %s", got, u.Uid)
	}
	if sid, _ := unix.Getsid(pids[0]); sid != pids[0] {
		t.Errorf("server is not in its own session (sid %d, pid %d)", sid, pids[0])
	}
	hub, _ := user.Lookup(hubUser)
	if procUID(env.hub.cmd.Process.Pid) != hub.Uid {
		t.Errorf("hubd is not running as %s", hubUser)
	}
}

func TestNotebookThroughProxy(t *testing.T) {
	need(t)
	b := memberWithServer(t, alice, alicePW)
	openTree(t, b, alice)
	resp, body := b.serverAPI("GET", alice, "/api/status", "")
	if resp.StatusCode != 200 || !strings.Contains(body, "kernels") {
		t.Fatalf("/api/status: %d %s", resp.StatusCode, body)
	}
}

func TestKernelOverWebsocket(t *testing.T) {
	need(t)
	b := memberWithServer(t, alice, alicePW)
	openTree(t, b, alice)
	kernel := startKernel(t, b, alice)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	got, err := b.execute(ctx, alice, kernel, "1+1")
	if err != nil || got != "2" {
		t.Fatalf("execute 1+1 = %q, %v", got, err)
	}
	got, err = b.execute(ctx, alice, kernel, "import os; os.getuid()")
	u, _ := user.Lookup(alice)
	if err != nil || got != u.Uid {
		t.Fatalf("kernel uid = %q, %v; want %s", got, err, u.Uid)
	}
}

func TestOtherMemberCannotReachTheServer(t *testing.T) {
	need(t)
	memberWithServer(t, alice, alicePW)
	bobs := newBrowser(t)
	resp := bobs.login(bob, bobPW)
	readAll(resp)
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("bob's login: %d", resp.StatusCode)
	}
	resp, final := bobs.follow("/user/" + alice + "/tree")
	readAll(resp)
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("bob reached %s with status %d; want 403 at the hub's authorize step", final, resp.StatusCode)
	}
	r := bobs.do("GET", "/user/"+alice+"/api/contents", nil, nil)
	readAll(r)
	if r.StatusCode != http.StatusForbidden {
		t.Errorf("bob's request to alice's contents API: %d; want 403", r.StatusCode)
	}
	r = bobs.do("DELETE", "/hub/api/users/"+alice+"/server", nil, map[string]string{"X-XSRFToken": bobs.cookie("/hub/", "_xsrf")})
	readAll(r)
	if r.StatusCode != http.StatusNotFound {
		t.Errorf("bob stopping alice's server: %d; want 404", r.StatusCode)
	}
	if len(serverPIDs(t, alice)) != 1 {
		t.Error("alice's server is gone after bob's attempt")
	}
}

func TestRefusedLogins(t *testing.T) {
	need(t)
	for _, c := range []struct{ name, pw, want string }{
		{alice, "wrong", "Wrong user name or password"},
		{carol, carolPW, "not a member"},
		{"-rf", "x", "not a valid user name"},
		{"root", "x", ""},
	} {
		b := newBrowser(t)
		resp := b.login(c.name, c.pw)
		body := readAll(resp)
		if resp.StatusCode == http.StatusFound || b.cookie("/hub/", "jupyterhub-hub-login") != "" {
			t.Errorf("%s logged in", c.name)
		}
		if c.want != "" && !strings.Contains(body, c.want) {
			t.Errorf("%s: page does not say %q", c.name, c.want)
		}
	}
}

func TestHubKill9ReattachesTheServer(t *testing.T) {
	need(t)
	b := memberWithServer(t, alice, alicePW)
	openTree(t, b, alice)
	kernel := startKernel(t, b, alice)
	before := serverPIDs(t, alice)
	env.hub.kill9()
	if err := env.hub.start(); err != nil {
		t.Fatalf("restart: %v\n%s", err, hubLog())
	}
	after := serverPIDs(t, alice)
	if fmt.Sprint(before) != fmt.Sprint(after) {
		t.Fatalf("server pids changed across the hub crash: %v → %v", before, after)
	}
	// Same cookies, same kernel: nothing lost.
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	got, err := b.execute(ctx, alice, kernel, "40+2")
	if err != nil || got != "42" {
		t.Fatalf("after restart, execute = %q, %v", got, err)
	}
}

func TestStopRemovesServerAndRoute(t *testing.T) {
	need(t)
	b := memberWithServer(t, alice, alicePW)
	stopServer(t, b, alice)
	r := b.do("GET", "/user/"+alice+"/api/status", nil, nil)
	readAll(r)
	if r.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("status after stop: %d; want 503", r.StatusCode)
	}
}

func TestServerKilledBehindTheHubsBackIsNoticed(t *testing.T) {
	need(t)
	b := memberWithServer(t, alice, alicePW)
	for _, p := range serverPIDs(t, alice) {
		_ = syscall.Kill(p, syscall.SIGKILL)
	}
	err := waitFor(20*time.Second, func() error {
		r := b.do("GET", "/hub/api/users/"+alice, nil, nil)
		var m struct {
			Server  *string
			Servers map[string]any
		}
		_ = json.Unmarshal([]byte(readAll(r)), &m)
		if m.Server != nil || len(m.Servers) != 0 {
			return fmt.Errorf("still listed as running")
		}
		return nil
	})
	if err != nil {
		t.Fatalf("the hub did not notice the dead server: %v", err)
	}
	r := b.do("GET", "/user/"+alice+"/api/status", nil, nil)
	readAll(r)
	if r.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("request to the dead server: %d; want 503", r.StatusCode)
	}
}

func TestHostileRequestsGetClearAnswers(t *testing.T) {
	need(t)
	b := newBrowser(t)
	r := b.do("GET", "/hub/login", nil, map[string]string{"X-Big": strings.Repeat("x", 1<<20)})
	readAll(r)
	if r.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("1 MiB header: %d; want 431", r.StatusCode)
	}
	page := readAll(b.do("GET", "/hub/login", nil, nil))
	m := xsrfField.FindStringSubmatch(page)
	form := url.Values{"username": {alice}, "password": {alicePW}, "_xsrf": {m[1]}}
	r = b.do("POST", "/hub/login?next="+url.QueryEscape("//evil.example/steal"), strings.NewReader(form.Encode()),
		map[string]string{"Content-Type": "application/x-www-form-urlencoded"})
	readAll(r)
	if loc := r.Header.Get("Location"); r.StatusCode != http.StatusFound || strings.Contains(loc, "evil") || !strings.HasPrefix(loc, "/hub/") {
		t.Errorf("login with an off-site next: %d → %q; want a local redirect", r.StatusCode, loc)
	}
	r = newBrowser(t).do("POST", "/hub/login", strings.NewReader(form.Encode()), map[string]string{"Content-Type": "application/x-www-form-urlencoded"})
	readAll(r)
	if r.StatusCode != http.StatusForbidden {
		t.Errorf("login POST without the _xsrf cookie: %d; want 403", r.StatusCode)
	}
	r = b.do("POST", "/hub/api/users/"+alice+"/tokens", strings.NewReader(strings.Repeat("[", 2<<20)),
		map[string]string{"Content-Type": "application/json", "X-XSRFToken": b.cookie("/hub/", "_xsrf")})
	readAll(r)
	if r.StatusCode != http.StatusBadRequest && r.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("2 MiB body: %d; want 400 or 413", r.StatusCode)
	}
}

func TestChromiumLogsInAndShowsTheTree(t *testing.T) {
	need(t)
	script := filepath.Join(repoRoot(), "test/browser/hub-login.js")
	if _, err := os.Stat(filepath.Join(repoRoot(), "test/browser/node_modules/playwright-core")); err != nil {
		t.Fatalf("playwright-core is not installed: run `scripts/deps.sh test`")
	}
	shot := filepath.Join(repoRoot(), "test-artifacts", "e2e-notebook-tree.png")
	_ = os.MkdirAll(filepath.Dir(shot), 0o755)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "node", script, env.public, bob, bobPW, shot).CombinedOutput()
	if err != nil || !strings.Contains(string(out), `"ok":true`) {
		t.Fatalf("browser login: %v\n%s\nhub log:\n%s", err, out, hubLog())
	}
	if fi, err := os.Stat(shot); err != nil || fi.Size() < 1000 {
		t.Fatalf("no screenshot at %s", shot)
	}
	// The script started bob's server; stop it so no test depends on it.
	b := newBrowser(t)
	readAll(b.login(bob, bobPW))
	stopServer(t, b, bob)
}
