package web_test

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hubd/hubd/core/config"
	"github.com/hubd/hubd/core/proxy"
	"github.com/hubd/hubd/core/store"
	"github.com/hubd/hubd/internal/testutil"
)

func TestRequestBodies(t *testing.T) {
	e := newEnv(t)
	admin := e.token(t, "admin")
	e.user(t, "bob")
	huge := `{"usernames": ["` + strings.Repeat("a", 2<<20) + `"]}`
	bobToken := e.token(t, "bob")
	before, _ := e.store.Tokens(context.Background(), e.user(t, "bob").ID)
	for _, tc := range []struct {
		name, method, path, body string
		want                     int
		hdr                      []string
	}{
		{"2 MB body", "POST", "/users", huge, http.StatusRequestEntityTooLarge, nil},
		{"text/plain", "POST", "/users", `{"usernames": ["carol"]}`, http.StatusBadRequest, []string{"Content-Type", "text/plain"}},
		{"form", "POST", "/users", `usernames=carol`, http.StatusBadRequest, []string{"Content-Type", "application/x-www-form-urlencoded"}},
		{"invalid UTF-8 name", "POST", "/users", "{\"usernames\": [\"\xff\xfe\"]}", http.StatusBadRequest, nil},
		{"invalid UTF-8 note", "POST", "/users/bob/tokens", "{\"note\": \"\xff\xfe\"}", http.StatusBadRequest, nil},
		{"null body", "POST", "/users/bob/tokens", `null`, http.StatusBadRequest, nil},
		{"list body", "POST", "/users/bob/tokens", `[]`, http.StatusBadRequest, nil},
		{"invalid JSON", "POST", "/users", `{"usernames": [`, http.StatusBadRequest, nil},
		{"trailing data", "POST", "/users", `{"usernames": ["carol"]} {}`, http.StatusBadRequest, nil},
		{"unknown field", "POST", "/users", `{"usernames": ["carol"], "extra": 1}`, http.StatusBadRequest, nil},
		{"admin as a string", "PATCH", "/users/bob", `{"admin": "true"}`, http.StatusBadRequest, nil},
		{"deep nesting", "POST", "/users/bob/server", strings.Repeat("[", 100000) + strings.Repeat("]", 100000), http.StatusBadRequest, nil},
		{"activity 2 MB", "POST", "/users/bob/activity", `{"last_activity": "` + strings.Repeat("1", 2<<20) + `"}`, http.StatusRequestEntityTooLarge, nil},
		{"activity trailing data", "POST", "/users/bob/activity", `{"last_activity": "2026-01-01T00:00:00Z"} x`, http.StatusBadRequest, nil},
		{"activity unknown field", "POST", "/users/bob/activity", `{"last_activity": "2026-01-01T00:00:00Z", "extra": 1}`, http.StatusBadRequest, nil},
		{"activity null", "POST", "/users/bob/activity", `null`, http.StatusBadRequest, nil},
	} {
		tok := admin
		if strings.Contains(tc.path, "/tokens") {
			tok = bobToken
		}
		r := e.api(t, tc.method, tc.path, tok, tc.body, tc.hdr...)
		if r.StatusCode != tc.want {
			t.Errorf("%s: status %d, want %d: %.200s", tc.name, r.StatusCode, tc.want, r.body)
		}
		if len(r.body) > 4096 {
			t.Errorf("%s: %d-byte error answer", tc.name, len(r.body))
		}
	}
	if after, _ := e.store.Tokens(context.Background(), e.user(t, "bob").ID); len(after) != len(before) {
		t.Errorf("refused bodies created %d tokens", len(after)-len(before))
	}
	if u := e.user(t, "bob"); u.Admin {
		t.Error("bob became an admin")
	}
	if _, err := e.store.UserByName(context.Background(), "carol"); err == nil {
		t.Error("a refused body created carol")
	}
	e.api(t, http.MethodGet, "/", "", nil).want(t, http.StatusOK)
}

// CVE-2024-41942: admin:users without being an admin does not make admins.
func TestNoSelfPromotion(t *testing.T) {
	e := newEnv(t)
	tok := e.token(t, "bob", "admin:users", "tokens")
	e.api(t, http.MethodPatch, "/users/bob", tok, map[string]any{"admin": true}).want(t, http.StatusForbidden)
	e.api(t, http.MethodPost, "/users", tok, map[string]any{"usernames": []string{"mallory"}, "admin": true}).want(t, http.StatusForbidden)
	e.api(t, http.MethodPost, "/users/mallory", tok, map[string]any{"admin": true}).want(t, http.StatusForbidden)
	e.api(t, http.MethodPost, "/users/bob/tokens", tok, map[string]any{"scopes": []string{"admin:servers"}}).want(t, http.StatusForbidden)
	if e.user(t, "bob").Admin {
		t.Fatal("bob made himself an admin")
	}
	if _, err := e.store.UserByName(context.Background(), "mallory"); err == nil {
		t.Error("mallory was created")
	}
	// A real admin can.
	e.api(t, http.MethodPatch, "/users/bob", e.token(t, "admin"), map[string]any{"admin": true}).want(t, http.StatusOK)
	if !e.user(t, "bob").Admin {
		t.Error("an admin could not make bob an admin")
	}
}

func TestUnsafeNamesInPaths(t *testing.T) {
	e := newEnv(t)
	admin := e.token(t, "admin")
	e.user(t, "alice")
	long := strings.Repeat("x", 1<<20)
	for _, name := range []string{"-x", "ALICE", "%2E%2E", "a%00b", "a%0Ab", "%1B%5B31m", "%20alice", "nobody", long} {
		for _, method := range []string{"GET", "POST", "DELETE", "PATCH"} {
			path := "/hub/api/users/" + name
			if method == "POST" || method == "DELETE" {
				path += "/server"
			}
			req := httptest.NewRequest(method, path, strings.NewReader("{}"))
			req.Header.Set("Authorization", "token "+admin)
			req.Header.Set("Content-Type", "application/json")
			rec := httptest.NewRecorder()
			e.handler.ServeHTTP(rec, req)
			if rec.Code != http.StatusNotFound && rec.Code != http.StatusBadRequest {
				t.Errorf("%s %.40s: status %d, want 404 or 400", method, path, rec.Code)
			}
			if rec.Body.Len() > 4096 || strings.Contains(rec.Body.String(), "\x1b") {
				t.Errorf("%s %.40s: answer echoes the name: %.100q", method, path, rec.Body.String())
			}
		}
	}
	// Creating users with such names is refused, without echoing them raw.
	for _, name := range []string{"-x", "ALICE", "..", "a\nb", "\x1b[31m", " alice", long[:1000]} {
		r := e.api(t, http.MethodPost, "/users", admin, map[string]any{"usernames": []string{name}}).want(t, http.StatusBadRequest)
		if bytes.Contains(r.body, []byte("\x1b")) || len(r.body) > 1024 {
			t.Errorf("create %.20q: answer %.100q", name, r.body)
		}
	}
	logs := e.logs.String()
	if strings.Contains(logs, "\x1b") || strings.Contains(logs, strings.Repeat("x", 1000)) {
		t.Error("the hub log carries a raw control character or a huge name")
	}
}

func TestUserFallback(t *testing.T) {
	e := newEnv(t)
	c := testutil.NewClient(t)
	// No route: browsers go to the hub, which can see their login cookie.
	r := do(t, c, http.MethodGet, e.url+"/user/alice/tree/x?y=1", nil).want(t, http.StatusFound)
	if loc := r.Header.Get("Location"); loc != "/hub/user/alice/tree/x?y=1" {
		t.Errorf("fallback redirect %q", loc)
	}
	// API calls and websockets get an answer they can use, at once.
	for _, hdr := range [][]string{nil, {"Connection", "Upgrade", "Upgrade", "websocket", "Sec-WebSocket-Version", "13", "Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="}} {
		r := do(t, c, http.MethodGet, e.url+"/user/alice/api/kernels/1/channels", nil, hdr...).want(t, http.StatusServiceUnavailable)
		if r.Header.Get("Content-Type") != "application/json" {
			t.Errorf("api fallback Content-Type %q", r.Header.Get("Content-Type"))
		}
		// A websocket that can never upgrade is not left open.
		if upgrade := hdr != nil; upgrade != r.Close {
			t.Errorf("websocket %v: connection closed %v", upgrade, r.Close)
		}
	}
	do(t, c, http.MethodGet, e.url+"/user/-x/tree", nil).want(t, http.StatusNotFound)

	// Stopped server: 424 with a start button, and nothing is started.
	b := e.browser(t).login(t, "alice")
	r = b.get(t, "/hub/user/alice/tree").want(t, http.StatusFailedDependency)
	if !strings.Contains(string(r.body), `id="start"`) {
		t.Errorf("424 page has no start button:\n%s", r.body)
	}
	if _, err := e.store.Server(context.Background(), e.user(t, "alice").ID, ""); err == nil {
		t.Error("visiting /hub/user/alice/ started a server")
	}
	// Someone else's server.
	b.get(t, "/hub/user/bob/tree").want(t, http.StatusForbidden)
	// Not logged in: to the login page.
	if loc := do(t, c, http.MethodGet, e.url+"/hub/user/alice/tree", nil).want(t, http.StatusFound).Header.Get("Location"); !strings.HasPrefix(loc, "/hub/login?next=") {
		t.Errorf("not logged in: %q", loc)
	}
}

func TestRedirectLoop(t *testing.T) {
	e := newEnv(t)
	e.start(t, "oldie")
	b := e.browser(t).login(t, "oldie")
	// The route exists, yet the browser came back: one more try...
	r := b.get(t, "/hub/user/oldie/tree?redirects=1").want(t, http.StatusFound)
	if loc := r.Header.Get("Location"); loc != "/user/oldie/tree?redirects=2" {
		t.Errorf("redirect %q", loc)
	}
	// ...until the cap, then an error naming both versions.
	r = b.get(t, "/hub/user/oldie/tree?redirects=4")
	if r.StatusCode < 400 || !strings.Contains(string(r.body), "3.0.0") || !strings.Contains(string(r.body), "2.3.1") {
		t.Errorf("redirect loop: status %d\n%s", r.StatusCode, r.body)
	}
}

func TestDeadRoute(t *testing.T) {
	e := newEnv(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := l.Addr().String()
	l.Close()
	if err := e.routes.Set(proxy.Route{Prefix: "/user/bob/", Target: "http://" + dead, User: "bob"}); err != nil {
		t.Fatal(err)
	}
	r := do(t, testutil.NewClient(t), http.MethodGet, e.url+"/user/bob/tree", nil).want(t, http.StatusServiceUnavailable)
	if !strings.Contains(string(r.body), "not responding") || !strings.HasPrefix(r.Header.Get("Content-Type"), "text/html") {
		t.Errorf("dead route page: %s", r.body)
	}
	do(t, testutil.NewClient(t), http.MethodGet, e.url+"/user/bob/api/status", nil).want(t, http.StatusServiceUnavailable)
}

func TestSpawnExitsAtOnce(t *testing.T) {
	e := newEnv(t)
	tok := e.token(t, "exiter")
	r := e.api(t, http.MethodPost, "/users/exiter/server", tok, nil)
	if r.StatusCode < 400 {
		t.Fatalf("start of a crashing server: %d", r.StatusCode)
	}
	evs := e.events(t, "exiter", tok)
	last := evs[len(evs)-1]
	if !last.Failed || last.Ready || !strings.Contains(last.Message, "exit status 3") || !strings.Contains(last.Message, "configured to fail") {
		t.Errorf("progress: %+v", evs)
	}
	if s := e.server(t, "exiter"); s.State != store.StateFailed || !strings.Contains(s.StopReason, "exit status 3") {
		t.Errorf("server row: %s %q", s.State, s.StopReason)
	}
	if e.routes.Len() != 0 {
		t.Error("a route for a failed server")
	}
	home := e.browser(t).login(t, "exiter").get(t, "/hub/home").want(t, http.StatusOK)
	if !strings.Contains(string(home.body), "exit status 3") {
		t.Errorf("home page does not show the failure:\n%s", home.body)
	}
	m := e.api(t, http.MethodGet, "/users/exiter", tok, nil).want(t, http.StatusOK).json(t)
	if m["server"] != nil || m["pending"] != nil || len(m["servers"].(map[string]any)) != 0 {
		t.Errorf("model of a failed server: %v", m)
	}
}

func TestSpawnNeverListens(t *testing.T) {
	e := newEnv(t, func(c *config.Config) { c.Spawner.HTTPTimeout = config.Duration(2 * time.Second) })
	tok := e.token(t, "sleeper")
	op, err := e.hub.Start(context.Background(), e.user(t, "sleeper"), "")
	if err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, "the server process", func() bool { return len(serverProcs("sleeper")) == 1 })
	m := e.api(t, http.MethodGet, "/users/sleeper", tok, nil).want(t, http.StatusOK).json(t)
	s := m["servers"].(map[string]any)[""].(map[string]any)
	if s["pending"] != "spawn" || s["ready"] != false || m["server"] != nil {
		t.Errorf("while starting: %v", m)
	}
	evs := e.events(t, "sleeper", tok)
	last := evs[len(evs)-1]
	if !last.Failed || !strings.Contains(last.Message, "did not answer") {
		t.Errorf("progress: %+v", evs)
	}
	if err := op.Wait(context.Background()); err == nil {
		t.Error("the start succeeded")
	}
	if left := serverProcs("sleeper"); len(left) != 0 {
		t.Errorf("process left: %v", left)
	}
	if e.routes.Len() != 0 {
		t.Error("route left")
	}
	if s := e.server(t, "sleeper"); s.State != store.StateFailed {
		t.Errorf("state %s", s.State)
	}
}

func TestStartStopRace(t *testing.T) {
	e := newEnv(t)
	tok := e.token(t, "slowpoke")
	for i := range 4 {
		var wg sync.WaitGroup
		codes := make([]int, 2)
		for j, method := range []string{http.MethodPost, http.MethodDelete} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if j == 1 {
					// Stop at a different point of the start each round.
					switch i {
					case 1:
						testutil.WaitFor(t, "the start to begin", func() bool { return e.hub.Pending("slowpoke", "") != nil })
					case 2:
						testutil.WaitFor(t, "the process", func() bool { return len(serverProcs("slowpoke")) == 1 })
					case 3:
						testutil.WaitFor(t, "the server to run", func() bool {
							s, err := e.store.Server(context.Background(), e.user(t, "slowpoke").ID, "")
							return err == nil && s.State == store.StateRunning
						})
					}
				}
				req, _ := http.NewRequest(method, e.url+"/hub/api/users/slowpoke/server", nil)
				req.Header.Set("Authorization", "token "+tok)
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Error(err)
					return
				}
				resp.Body.Close()
				codes[j] = resp.StatusCode
			}()
		}
		wg.Wait()
		if codes[1] != http.StatusNoContent {
			t.Errorf("round %d: stop answered %d", i, codes[1])
		}
		// Whatever the start answered, the stop came last: nothing runs.
		e.api(t, http.MethodDelete, "/users/slowpoke/server", tok, nil).want(t, http.StatusNoContent)
		s := e.server(t, "slowpoke")
		if s.State != store.StateStopped {
			t.Errorf("round %d: state %s after stop", i, s.State)
		}
		if left := serverProcs("slowpoke"); len(left) != 0 {
			t.Errorf("round %d: process left: %v", i, left)
		}
		if e.routes.Len() != 0 {
			t.Errorf("round %d: route left", i)
		}
		if e.hub.Pending("slowpoke", "") != nil {
			t.Errorf("round %d: op left", i)
		}
		m := e.api(t, http.MethodGet, "/users/slowpoke", tok, nil).want(t, http.StatusOK).json(t)
		if m["server"] != nil || m["pending"] != nil {
			t.Errorf("round %d: model %v (start %d, stop %d, reason %q)", i, m, codes[0], codes[1], s.StopReason)
		}
		t.Logf("round %d: start %d, stop %d, final %s %q", i, codes[0], codes[1], s.State, s.StopReason)
	}
}

// A server that died behind the hub's back: the proxy's error nudges the
// poller, which records it gone and drops the route.
func TestDeadServerNoticed(t *testing.T) {
	e := newEnv(t)
	e.start(t, "alice")
	for _, pid := range serverProcs("alice") {
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
	}
	testutil.WaitFor(t, "the process to die", func() bool { return len(serverProcs("alice")) == 0 })
	r := do(t, testutil.NewClient(t), http.MethodGet, e.url+"/user/alice/tree", nil)
	if r.StatusCode != http.StatusServiceUnavailable && r.StatusCode != http.StatusFound {
		t.Fatalf("dead server: status %d", r.StatusCode)
	}
	testutil.WaitFor(t, "the hub to notice", func() bool { return e.server(t, "alice").State == store.StateFailed })
	if e.routes.Len() != 0 {
		t.Error("route left")
	}
}

// A start that a stop cancels is answered as stopped (409), not as a
// server error, and recorded as stopped rather than failed.
func TestStopDuringStartAnswersConflict(t *testing.T) {
	e := newEnv(t)
	tok := e.token(t, "sleepy") // never listens: the start waits for it
	start := make(chan reply, 1)
	go func() { start <- e.api(t, http.MethodPost, "/users/sleepy/server", tok, nil) }()
	testutil.WaitFor(t, "the server process", func() bool { return len(serverProcs("sleepy")) == 1 })
	e.api(t, http.MethodDelete, "/users/sleepy/server", tok, nil).want(t, http.StatusNoContent)
	r := (<-start).want(t, http.StatusConflict)
	if msg := r.json(t)["message"]; !strings.Contains(fmt.Sprint(msg), "stopped while it was starting") {
		t.Errorf("message %q", msg)
	}
	if s := e.server(t, "sleepy"); s.State != store.StateStopped || s.StopReason != "stopped while starting" {
		t.Errorf("server recorded as %s %q", s.State, s.StopReason)
	}
}
