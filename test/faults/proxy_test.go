package faults

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/hubd/hubd/core/config"
	"github.com/hubd/hubd/internal/testutil"
)

// seenBy reads the mock server's report from an answer.
func seenBy(t *testing.T, r reply) seen {
	t.Helper()
	var s seen
	r.json(t, &s)
	return s
}

// requests asks user's server how many requests it has had (this one
// included).
func (h *hub) requests(t *testing.T, user string) int {
	t.Helper()
	return seenBy(t, do(t, testutil.NewClient(t), http.MethodGet, h.url+"/user/"+user+"/count", nil).want(t, http.StatusOK)).Request
}

// Item 13: the route lookup uses exactly the path that is forwarded, on
// whole segments, and nothing under one user's prefix reaches another
// user's server.
func TestProxyPathConfusion(t *testing.T) {
	h := startHub(t, hubOptions{})
	h.start(t, "alice")
	h.start(t, "bob")
	bobBefore := h.requests(t, "bob")
	long := "/user/alice/" + strings.Repeat("a", 9000)
	for _, path := range []string{
		"/user/alice/../bob/x", "/user/alice/%2e%2e/bob/x", "/user/alice/%2E%2e/bob/x", "/user/alice/..%2Fbob/x",
		"/user/alice%2F..%2Fbob/x", "/user/alice/%252e%252e/bob/x", "/user/alice/.%2e/bob/x", "/user/alice/./x",
		"/user/alicex/", "/user/alice%00/x", "/user/alice/x%00", "/user/./bob/x", "/user/bob/%2e%2e/alice/x",
		"/user/alice//bob/x", "/user/Alice/x", "/user/alice;bob/x", "/user/alice/x?../../bob", "/user/alice/x#/../bob",
		"/user/alice/%2fuser%2fbob", "/user/alice\\..\\bob/x", long,
	} {
		r := h.raw(t, "GET "+path+" HTTP/1.1\r\nHost: hub\r\nConnection: close\r\n\r\n")
		switch {
		case r.StatusCode == http.StatusOK:
			s := seenBy(t, r)
			want, _, _ := strings.Cut(strings.TrimPrefix(path, "/user/"), "/")
			if s.User != want || s.Path != strings.Split(path, "?")[0] {
				t.Errorf("%.60s reached %s's server as %.60q", path, s.User, s.Path)
			}
		case r.StatusCode >= 500:
			t.Errorf("%.60s: status %d", path, r.StatusCode)
		}
		if path == long && r.StatusCode != http.StatusBadRequest && r.StatusCode != http.StatusRequestURITooLong {
			t.Errorf("a %d-byte path: status %d, want 400 or 414", len(path), r.StatusCode)
		}
	}
	// Of all that, nothing reached bob's server.
	if n := h.requests(t, "bob"); n != bobBefore+1 {
		t.Errorf("bob's server had %d requests meant for alice", n-bobBefore-1)
	}
}

// Item 14: naming the forwarding headers in Connection does not strip
// what the proxy sets, and what a client claims in X-Forwarded-* or
// Forwarded is not passed on as the truth.
func TestForwardedHeadersNotTrusted(t *testing.T) {
	h := startHub(t, hubOptions{})
	h.start(t, "alice")
	r := do(t, testutil.NewClient(t), http.MethodGet, h.url+"/user/alice/x", nil,
		"Connection", "X-Forwarded-For, X-Forwarded-Host, X-Forwarded-Proto",
		"X-Forwarded-For", "6.6.6.6", "X-Forwarded-Host", "evil.example", "X-Forwarded-Proto", "https",
		"Forwarded", "for=6.6.6.6;host=evil.example").want(t, http.StatusOK)
	hd := seenBy(t, r).Header
	if got := hd.Values("X-Forwarded-For"); len(got) != 1 || got[0] != "127.0.0.1" {
		t.Errorf("X-Forwarded-For %q, want the peer only", got)
	}
	if hd.Get("X-Forwarded-Proto") != "http" || hd.Get("X-Forwarded-Host") == "evil.example" || hd.Get("Forwarded") != "" {
		t.Errorf("client-supplied forwarding headers passed on: %v", hd)
	}
}

// Item 15: only websocket upgrades pass, never to the hub's own paths,
// and a websocket reaches the server with exactly the credentials and
// Origin an HTTP request would have: the server authenticates both alike.
func TestUpgradeSmuggling(t *testing.T) {
	h := startHub(t, hubOptions{})
	h.start(t, "alice")
	before := h.requests(t, "alice")
	for name, req := range map[string]string{
		"h2c":           "GET /user/alice/x HTTP/1.1\r\nHost: hub\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n",
		"h2c alone":     "GET /user/alice/x HTTP/1.1\r\nHost: hub\r\nUpgrade: h2c\r\n\r\n",
		"two protocols": "GET /user/alice/x HTTP/1.1\r\nHost: hub\r\nConnection: Upgrade\r\nUpgrade: websocket, h2c\r\n\r\n",
		"websocket to the hub API": "GET /hub/api/users HTTP/1.1\r\nHost: hub\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n" +
			"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
		"websocket to the login page": "GET /hub/login HTTP/1.1\r\nHost: hub\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n" +
			"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
	} {
		if r := h.raw(t, req); r.StatusCode != http.StatusBadRequest {
			t.Errorf("%s: status %d, want 400", name, r.StatusCode)
		}
	}
	if n := h.requests(t, "alice"); n != before+1 {
		t.Errorf("alice's server saw %d refused upgrades", n-before-1)
	}

	hdr := http.Header{"Origin": {"http://evil.example"}, "Cookie": {"jupyterhub-session-id=x"}}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, _, err := h.dialWS(ctx, "/user/alice/api/kernels/k/channels", hdr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	_, first, err := c.Read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var s seen
	if err := json.Unmarshal(first, &s); err != nil {
		t.Fatal(err)
	}
	if s.Header.Get("Origin") != "http://evil.example" || s.Header.Get("Cookie") != "jupyterhub-session-id=x" || s.Path != "/user/alice/api/kernels/k/channels" {
		t.Errorf("the server saw the upgrade as %+v", s)
	}
}

// Item 16: requests that could be parsed two ways are refused or passed
// on re-serialised (so the server parses exactly what the hub parsed);
// huge headers get 431, huge API bodies 413 without the hub reading them.
func TestRequestSmuggling(t *testing.T) {
	h := startHub(t, hubOptions{})
	h.start(t, "alice")
	h.start(t, "bob")
	// Pipelined on the client's own connection, the second request is the
	// client's own business; what must never happen is the hub and alice's
	// server disagreeing on where a request ends, so that alice's server
	// sees a request the hub did not route to it.
	smuggled := "GET /user/bob/smuggled HTTP/1.1\r\nHost: hub\r\n\r\n"
	n := strconv.Itoa(len(smuggled))
	for name, req := range map[string]string{
		"CL and TE": "POST /user/alice/x HTTP/1.1\r\nHost: hub\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n" +
			"0\r\n\r\n" + smuggled,
		"TE and CL": "POST /user/alice/x HTTP/1.1\r\nHost: hub\r\nTransfer-Encoding: chunked\r\nContent-Length: 50\r\n\r\n" +
			"0\r\n\r\n" + smuggled,
		"two CLs":     "POST /user/alice/x HTTP/1.1\r\nHost: hub\r\nContent-Length: 0\r\nContent-Length: " + n + "\r\n\r\n" + smuggled,
		"TE identity": "POST /user/alice/x HTTP/1.1\r\nHost: hub\r\nTransfer-Encoding: identity\r\nContent-Length: " + n + "\r\n\r\n" + smuggled,
		"obs-fold":    "POST /user/alice/x HTTP/1.1\r\nHost: hub\r\nContent-Length: 0\r\nX-A: a\r\n b\r\n\r\n" + smuggled,
		"bare LF":     "POST /user/alice/x HTTP/1.1\nHost: hub\nContent-Length: " + n + "\n\n" + smuggled,
		"TE chunked, space": "POST /user/alice/x HTTP/1.1\r\nHost: hub\r\nTransfer-Encoding : chunked\r\n\r\n" +
			"0\r\n\r\n" + smuggled,
	} {
		r := h.raw(t, req)
		if r.StatusCode != http.StatusBadRequest && r.StatusCode != http.StatusOK && r.StatusCode != http.StatusNotImplemented {
			t.Errorf("%s: status %d", name, r.StatusCode)
		}
		t.Logf("%s: %d", name, r.StatusCode)
	}
	for _, user := range []string{"alice", "bob"} {
		r := do(t, testutil.NewClient(t), http.MethodGet, h.url+"/user/"+user+"/count", nil).want(t, http.StatusOK)
		for _, p := range seenBy(t, r).Paths {
			if !strings.HasPrefix(p, "/user/"+user+"/") {
				t.Errorf("%s's server was asked for %q", user, p)
			}
		}
	}

	big := "GET /hub/api HTTP/1.1\r\nHost: hub\r\nX-Big: " + strings.Repeat("a", 1<<20) + "\r\n\r\n"
	if r := h.raw(t, big); r.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("1 MB of headers: status %d, want 431", r.StatusCode)
	}
	var lines strings.Builder
	for i := range 10000 {
		fmt.Fprintf(&lines, "X-H%d: v\r\n", i)
	}
	if r := h.raw(t, "GET /user/alice/x HTTP/1.1\r\nHost: hub\r\n"+lines.String()+"\r\n"); r.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("10k header lines: status %d, want 431", r.StatusCode)
	}

	// A 100 MB JSON body announced to the API: 413 after the first MB,
	// while the client is still sending.
	conn, err := net.Dial("tcp", strings.TrimPrefix(h.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST /hub/api/users HTTP/1.1\r\nHost: hub\r\nAuthorization: token %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n{\"usernames\": [\"",
		h.token(t, "admin"), 100<<20)
	answered := make(chan string, 1)
	go func() {
		b := make([]byte, 64)
		n, _ := io.ReadAtLeast(conn, b, 12)
		answered <- string(b[:n])
	}()
	chunk := []byte(strings.Repeat("a", 64<<10))
	sent := 0
	for sent < 100<<20 {
		if _, err := conn.Write(chunk); err != nil {
			break // the hub answered and closed
		}
		sent += len(chunk)
		select {
		case got := <-answered:
			if !strings.HasPrefix(got, "HTTP/1.1 413") {
				t.Errorf("100 MB body: answer %q", got)
			}
			if sent > 8<<20 {
				t.Errorf("the hub read %d MB before answering", sent>>20)
			}
			return
		default:
		}
	}
	select {
	case got := <-answered:
		if !strings.HasPrefix(got, "HTTP/1.1 413") {
			t.Errorf("100 MB body: answer %q", got)
		}
	case <-time.After(20 * time.Second):
		t.Error("no answer to a 100 MB body")
	}
}

// Item 18: a dead, silent or resetting server gets a prompt answer from
// the hub (503 page, 504, a truncated body), and none of it leaves a
// connection or goroutine behind in the hub.
func TestUpstreamFaults(t *testing.T) {
	h := startHub(t, hubOptions{}, func(c *config.Config) {
		c.Proxy.ResponseHeaderTimeout = config.Duration(500 * time.Millisecond)
	})
	h.start(t, "alice")
	h.start(t, "dora")
	tr := &http.Transport{}
	c := &http.Client{Transport: tr, Timeout: 20 * time.Second}
	get := func(path string) (int, int, error) {
		resp, err := c.Get(h.url + path)
		if err != nil {
			return 0, 0, err
		}
		defer resp.Body.Close()
		n, err := io.Copy(io.Discard, resp.Body)
		return resp.StatusCode, int(n), err
	}
	// Warm up, then count this process's open files (the hub's included).
	for range 3 {
		if code, _, err := get("/user/alice/x"); err != nil || code != http.StatusOK {
			t.Fatalf("warm-up: %d %v", code, err)
		}
	}
	tr.CloseIdleConnections()
	before := fds(os.Getpid())
	for range 30 {
		if code, _, _ := get("/user/alice/hang"); code != http.StatusServiceUnavailable && code != http.StatusGatewayTimeout {
			t.Fatalf("a server that never answers: status %d, want the hub's 503 or 504 after proxy.response_header_timeout", code)
		}
		code, n, err := get("/user/alice/reset")
		if code != http.StatusOK || err == nil || n >= 1<<20 {
			t.Fatalf("a server that resets mid-body: status %d, %d bytes, %v; want a truncated body and an error", code, n, err)
		}
	}
	// A server that died behind the hub's back: the hub's error page.
	for _, pid := range serverProcs("dora") {
		if p, err := os.FindProcess(pid); err == nil {
			_ = p.Kill()
		}
	}
	testutil.WaitFor(t, "dora's server to die", func() bool { return len(serverProcs("dora")) == 0 })
	resp, err := c.Get(h.url + "/user/dora/tree")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable && resp.StatusCode != http.StatusFound {
		t.Errorf("a dead server: status %d: %s", resp.StatusCode, body)
	}
	tr.CloseIdleConnections()
	testutil.WaitFor(t, "the hub's connections to close", func() bool { return fds(os.Getpid()) <= before+2 })
}

// Item 19 (c): a browser that vanishes mid-websocket (no close frame)
// takes the server's side of the websocket down with it.
func TestVanishingClientClosesUpstream(t *testing.T) {
	h := startHub(t, hubOptions{})
	h.start(t, "alice")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, _, err := h.dialWS(ctx, "/user/alice/api/kernels/k/channels", nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.Read(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.Write(ctx, websocket.MessageText, []byte("hello")); err != nil {
		t.Fatal(err)
	}
	if _, got, err := c.Read(ctx); err != nil || string(got) != "hello" {
		t.Fatalf("echo: %q %v", got, err)
	}
	c.CloseNow() // TCP close, no websocket close handshake
	log := filepath.Join(h.cfg.Data.LogDir, "alice.log")
	testutil.WaitFor(t, "the server's websocket to end", func() bool {
		b, _ := os.ReadFile(log)
		return strings.Contains(string(b), "websocket ended")
	})
}

// Item 19 (a, b): a websocket aimed at a stopped server, or at one that
// died before the hub noticed, gets a prompt 503 and a closed connection.
func TestWebsocketToGoneServer(t *testing.T) {
	h := startHub(t, hubOptions{})
	h.start(t, "alice")
	h.start(t, "bob")
	h.api(t, http.MethodDelete, "/users/alice/server", h.token(t, "alice"), nil).want(t, http.StatusNoContent)
	for _, pid := range serverProcs("bob") {
		if p, err := os.FindProcess(pid); err == nil {
			_ = p.Kill()
		}
	}
	testutil.WaitFor(t, "bob's server to die", func() bool { return len(serverProcs("bob")) == 0 })
	for _, user := range []string{"alice", "bob"} {
		conn, err := net.Dial("tcp", strings.TrimPrefix(h.url, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
		fmt.Fprintf(conn, "GET /user/%s/api/kernels/k/channels HTTP/1.1\r\nHost: hub\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"+
			"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n", user)
		all, err := io.ReadAll(conn) // ends only when the hub closes
		conn.Close()
		if err != nil || !strings.HasPrefix(string(all), "HTTP/1.1 503 ") {
			t.Errorf("websocket to %s's gone server: %q %v", user, firstLine(all), err)
		}
	}
}

func firstLine(b []byte) string {
	s, _, _ := strings.Cut(string(b), "\r\n")
	return s
}

// Item 1: every redirect the hub builds from a path or a next parameter
// stays on the hub: a local path with exactly one leading slash.
func TestRedirectsStayLocal(t *testing.T) {
	h := startHub(t, hubOptions{})
	h.start(t, "alice")
	b := h.browser(t)
	b.login(t, "alice", "pw-alice").want(t, http.StatusFound)
	local := func(what, loc string) {
		t.Helper()
		// Browsers read a backslash as a slash.
		asRead := strings.ReplaceAll(loc, "\\", "/")
		u, err := url.Parse(asRead)
		if err != nil || u.Scheme != "" || u.Host != "" || !strings.HasPrefix(asRead, "/") || strings.HasPrefix(asRead, "//") {
			t.Errorf("%s: redirect to %q", what, loc)
		}
	}
	for _, p := range []string{"//evil.example/x", "/%2F%2Fevil.example", "/\\evil.example", "/%5Cevil.example", "/../../evil", "//%09/evil.example"} {
		for _, path := range []string{"/user/carol" + p, "/hub/user/alice" + p, "/hub/user-redirect" + p, "/hub/login?next=" + url.QueryEscape(p)} {
			r := do(t, b.c, http.MethodGet, h.url+path, nil)
			if loc := r.Header.Get("Location"); loc != "" {
				local(path, loc)
			}
		}
	}
	// After a login too (the form's next).
	for _, next := range []string{"//evil.example", "https://evil.example/", "/\\evil.example", "\\\\evil.example"} {
		fresh := h.browser(t)
		page := fresh.get(t, "/hub/login?next="+url.QueryEscape(next)).want(t, http.StatusOK)
		m := formAction.FindSubmatch(page.body)
		if m == nil {
			t.Fatal("no login form")
		}
		form := url.Values{"username": {"alice"}, "password": {"pw-alice"}, "_xsrf": {fresh.cookie("/hub/", "_xsrf")}}
		r := do(t, fresh.c, http.MethodPost, h.url+strings.ReplaceAll(string(m[1]), "&amp;", "&"), strings.NewReader(form.Encode()),
			"Content-Type", "application/x-www-form-urlencoded").want(t, http.StatusFound)
		local("login next="+next, r.Header.Get("Location"))
	}
}

// Item 2: text an attacker controls (paths, names, next) is HTML-escaped
// in every page that shows it.
func TestHostileTextEscaped(t *testing.T) {
	h := startHub(t, hubOptions{})
	const evil = `"><script>alert(1)</script>`
	admin := h.browser(t)
	admin.login(t, "admin", "pw-admin").want(t, http.StatusFound)
	for _, path := range []string{
		"/hub/" + url.PathEscape(evil),
		"/hub/user/" + url.PathEscape(evil) + "/tree",
		"/hub/spawn-pending/" + url.PathEscape(evil),
		"/user/" + url.PathEscape(evil) + "/tree",
		"/hub/login?next=" + url.QueryEscape("/hub/"+evil),
		"/hub/api/users/" + url.PathEscape(evil),
	} {
		for _, c := range []*http.Client{admin.c, testutil.NewClient(t)} {
			r := do(t, c, http.MethodGet, h.url+path, nil)
			if strings.Contains(string(r.body), "<script>alert") {
				t.Errorf("%s: reflected unescaped (%d):\n%.300s", path, r.StatusCode, r.body)
			}
		}
	}
	b := h.browser(t)
	r := b.login(t, evil, "x")
	if strings.Contains(string(r.body), "<script>alert") {
		t.Errorf("failed login page reflects the name unescaped:\n%.300s", r.body)
	}
}
