package web_test

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/hubd/hubd/core/web"
	"github.com/hubd/hubd/internal/testutil"
)

func TestLoginPage(t *testing.T) {
	e := newEnv(t)
	b := e.browser(t)
	r := b.get(t, "/hub/login").want(t, http.StatusOK)
	xsrf := b.cookie("/hub/", web.XSRFCookie)
	if xsrf == "" {
		t.Fatal("no _xsrf cookie")
	}
	for _, s := range []string{`name="_xsrf" value="` + xsrf + `"`, `id="username_input"`, `id="password_input"`, `id="login_submit"`} {
		if !strings.Contains(string(r.body), s) {
			t.Errorf("login page lacks %s", s)
		}
	}
	if csp := r.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "frame-ancestors 'self'") {
		t.Errorf("CSP %q", csp)
	}
	// Reloading keeps the same token.
	b.get(t, "/hub/login").want(t, http.StatusOK)
	if b.cookie("/hub/", web.XSRFCookie) != xsrf {
		t.Error("the _xsrf cookie changed on reload")
	}
}

func TestLoginXSRF(t *testing.T) {
	e := newEnv(t)
	creds := url.Values{"username": {"alice"}, "password": {"pw-alice"}}
	with := func(xsrf string) url.Values {
		v := url.Values{"_xsrf": {xsrf}}
		for k, vs := range creds {
			v[k] = vs
		}
		return v
	}
	// No token, or no cookie at all.
	b := e.browser(t)
	_, own := b.loginForm(t, "")
	b.postForm(t, "/hub/login", creds).want(t, http.StatusForbidden)
	e.browser(t).postForm(t, "/hub/login", with(own)).want(t, http.StatusForbidden)
	// Another browser's token.
	_, other := e.browser(t).loginForm(t, "")
	r := b.postForm(t, "/hub/login", with(other)).want(t, http.StatusForbidden)
	if b.cookie("/hub/", web.LoginCookie) != "" || len(r.Header.Values("Set-Cookie")) != 0 && strings.Contains(strings.Join(r.Header.Values("Set-Cookie"), ";"), web.LoginCookie) {
		t.Error("a refused login set the login cookie")
	}
	// A forged one.
	b.postForm(t, "/hub/login", with("x."+strings.Repeat("A", 43))).want(t, http.StatusForbidden)
	// The right one, in the form or in the header.
	r = b.postForm(t, "/hub/login", with(own)).want(t, http.StatusFound)
	if loc := r.Header.Get("Location"); loc != "/hub/spawn" {
		t.Errorf("after login: %q", loc)
	}
	if b.cookie("/hub/", web.LoginCookie) == "" || b.cookie("/", web.SessionCookie) == "" {
		t.Error("no login cookies")
	}
	for _, c := range r.Cookies() {
		if c.Name == web.LoginCookie && (!c.HttpOnly || c.Path != "/hub/") {
			t.Errorf("login cookie attributes: %+v", c)
		}
	}
	// The token minted for the logged-out browser no longer serves API
	// changes: the new session has its own.
	if b.cookie("/hub/", web.XSRFCookie) == own {
		t.Error("the _xsrf token was not renewed at login")
	}
}

func TestLoginNext(t *testing.T) {
	e := newEnv(t)
	e.user(t, "alice")
	for next, want := range map[string]string{
		"":                                 "/hub/spawn",
		"/hub/home":                        "/hub/home",
		"/user/alice/tree?x=1&y=2#frag":    "/user/alice/tree?x=1&y=2#frag",
		"//evil.com":                       "/hub/spawn",
		"///evil.com":                      "/hub/spawn",
		"https://evil.com":                 "/hub/spawn",
		"https://evil.com/hub/home":        "/hub/spawn",
		`/\evil.com`:                       "/hub/spawn",
		`\/evil.com`:                       "/hub/spawn",
		"javascript:alert(1)":              "/hub/spawn",
		"%2F%2Fevil.com":                   "/hub/spawn",
		"/%2F/evil.com":                    "/%2F/evil.com", // a local path to browsers
		"/\t/evil.com":                     "/hub/spawn",
		"evil.com":                         "/hub/spawn",
		"/hub/home\r\nSet-Cookie: x=y":     "/hub/spawn",
		"/@evil.com":                       "/@evil.com",
		strings.Repeat("/a", 2000):         "/hub/spawn",
		`/hub/"><script>alert(1)</script>`: `/hub/"><script>alert(1)</script>`, // a header, not HTML
	} {
		b := e.browser(t)
		action, xsrf := b.loginForm(t, next)
		r := b.postForm(t, action, url.Values{"username": {"alice"}, "password": {"pw-alice"}, "_xsrf": {xsrf}}).want(t, http.StatusFound)
		loc := r.Header.Get("Location")
		if strings.Contains(string(r.body), "<script>") {
			t.Errorf("next=%q: redirect body reflects it unescaped: %s", next, r.body)
		}
		if loc != want {
			t.Errorf("next=%q: Location %q, want %q", next, loc, want)
		}
		if u, err := url.Parse(loc); err != nil || u.Host != "" || u.Scheme != "" || strings.HasPrefix(loc, "//") {
			t.Errorf("next=%q: off-site Location %q", next, loc)
		}
		// Logged in already: GET /hub/login?next= redirects at once, with
		// the same rules.
		r = b.get(t, "/hub/login?next="+url.QueryEscape(next)).want(t, http.StatusFound)
		if got := r.Header.Get("Location"); got != want {
			t.Errorf("logged in, next=%q: Location %q, want %q", next, got, want)
		}
	}
}

func TestHTMLEscaping(t *testing.T) {
	e := newEnv(t)
	const evil = `"><script>alert(1)</script>`
	b := e.browser(t)
	for _, p := range []string{
		"/hub/login?next=" + url.QueryEscape("/hub/"+evil),
		"/hub/login?next=" + url.QueryEscape(url.QueryEscape("/hub/"+evil)),
		"/hub/" + url.PathEscape(evil),
	} {
		r := b.get(t, p)
		if strings.Contains(string(r.body), "<script>alert") {
			t.Errorf("%s: reflected unescaped:\n%s", p, r.body)
		}
	}
	// In the failed login page (user name and next).
	action, xsrf := b.loginForm(t, "/hub/"+evil)
	r := b.postForm(t, action, url.Values{"username": {evil}, "password": {"x"}, "_xsrf": {xsrf}}).want(t, http.StatusForbidden)
	// The hostile name is not even echoed back into the form.
	if strings.Contains(string(r.body), "<script>alert") || strings.Contains(string(r.body), "&#34;&gt;&lt;script&gt;alert") {
		t.Errorf("failed login page:\n%s", r.body)
	}
}

func TestLoginFailures(t *testing.T) {
	e := newEnv(t)
	b := e.browser(t)
	action, xsrf := b.loginForm(t, "/hub/home")
	r := b.postForm(t, action, url.Values{"username": {"alice"}, "password": {"wrong"}, "_xsrf": {xsrf}}).want(t, http.StatusForbidden)
	if !strings.Contains(string(r.body), publicWrongPassword) || !strings.Contains(string(r.body), `value="alice"`) {
		t.Errorf("wrong password page:\n%s", r.body)
	}
	if b.cookie("/hub/", web.LoginCookie) != "" || b.cookie("/", web.SessionCookie) != "" {
		t.Error("a failed login set login cookies")
	}
	// The page's form still works, with its next.
	action, xsrf = mustForm(t, r.body), b.cookie("/hub/", web.XSRFCookie)
	r = b.postForm(t, action, url.Values{"username": {"alice"}, "password": {"pw-alice"}, "_xsrf": {xsrf}}).want(t, http.StatusFound)
	if loc := r.Header.Get("Location"); loc != "/hub/home" {
		t.Errorf("retry after a failure: Location %q", loc)
	}

	b = e.browser(t)
	action, xsrf = b.loginForm(t, "")
	r = b.postForm(t, action, url.Values{"username": {"throttled"}, "password": {"pw-throttled"}, "_xsrf": {xsrf}}).want(t, http.StatusTooManyRequests)
	if r.Header.Get("Retry-After") != "42" || !strings.Contains(string(r.body), "Try again in 42s.") {
		t.Errorf("throttled: Retry-After %q\n%s", r.Header.Get("Retry-After"), r.body)
	}
}

// TestLoginRefusedByIdentity: a right password of a person the identity
// step refuses gives the login page with the reason (not a 500) and no
// cookies; the admin group decides the admin flag at each login.
func TestLoginRefusedByIdentity(t *testing.T) {
	e := newEnv(t)
	b := e.browser(t)
	action, xsrf := b.loginForm(t, "")
	r := b.postForm(t, action, url.Values{"username": {"outsider"}, "password": {"pw-outsider"}, "_xsrf": {xsrf}}).want(t, http.StatusForbidden)
	if !strings.Contains(string(r.body), "You are not a member of group &#34;jupyterhub&#34;.") {
		t.Errorf("refusal page:\n%s", r.body)
	}
	if b.cookie("/hub/", web.LoginCookie) != "" {
		t.Error("a refused login set the login cookie")
	}
	e.browser(t).login(t, "admin-ann")
	if u := e.user(t, "admin-ann"); !u.Admin || u.Method != "pam" {
		t.Errorf("admin-ann after login: %+v; want an admin bound to pam", u)
	}
}

func mustForm(t *testing.T, body []byte) string {
	t.Helper()
	m := formAction.FindSubmatch(body)
	if m == nil {
		t.Fatalf("no form in:\n%s", body)
	}
	return htmlUnescape(string(m[1]))
}

// hubtraf's stop phase: cookies plus X-XSRFToken, no token.
func TestCookieAPIXSRF(t *testing.T) {
	e := newEnv(t)
	e.start(t, "alice")
	b := e.browser(t).login(t, "alice")
	xsrf := b.cookie("/hub/", web.XSRFCookie)
	del := e.url + "/hub/api/users/alice/server"
	do(t, b.c, http.MethodDelete, del, nil).want(t, http.StatusForbidden)
	do(t, b.c, http.MethodDelete, del, nil, "X-XSRFToken", xsrf+"x").want(t, http.StatusForbidden)
	do(t, b.c, http.MethodDelete, del, nil, "Sec-Fetch-Mode", "no-cors", "Sec-Fetch-Site", "cross-site").want(t, http.StatusForbidden)
	// Another browser's token (valid for its own session only).
	other := e.browser(t).login(t, "alice")
	do(t, b.c, http.MethodDelete, del, nil, "X-XSRFToken", other.cookie("/hub/", web.XSRFCookie)).want(t, http.StatusForbidden)
	// A form-encoded cross-site POST with cookies.
	do(t, b.c, http.MethodPost, e.url+"/hub/api/users/alice/server", strings.NewReader("a=b"), "Content-Type", "text/plain").want(t, http.StatusForbidden)
	if s := e.server(t, "alice"); s.State != "running" {
		t.Fatalf("refused calls changed the server: %s", s.State)
	}
	do(t, b.c, http.MethodDelete, del, nil, "X-XSRFToken", xsrf, "Referer", e.url+"/hub/").want(t, http.StatusNoContent)
	// GETs need no token; token auth is not XSRF-checked.
	b.get(t, "/hub/api/users/alice").want(t, http.StatusOK)
	e.api(t, http.MethodPost, "/users/alice/server", e.token(t, "alice"), nil).want(t, http.StatusCreated)
}

func TestAuthorizationHeader(t *testing.T) {
	e := newEnv(t)
	good := e.token(t, "alice")
	revoked := e.token(t, "alice")
	ctx := context.Background()
	toks, _ := e.store.Tokens(ctx, e.user(t, "alice").ID)
	if err := e.store.DeleteToken(ctx, e.user(t, "alice").ID, toks[len(toks)-1].ID); err != nil {
		t.Fatal(err)
	}
	gone := e.token(t, "bob")
	if err := e.store.DeleteUser(ctx, "bob"); err != nil {
		t.Fatal(err)
	}
	prefixTwin := good[:4] + strings.Repeat("0", len(good)-4)

	// Handler-level, so the values reach the hub exactly as written.
	call := func(q string, hdr ...string) int {
		req := httptest.NewRequest(http.MethodGet, "/hub/api/user"+q, nil)
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header[hdr[i]] = []string{hdr[i+1]}
		}
		rec := httptest.NewRecorder()
		e.handler.ServeHTTP(rec, req)
		return rec.Code
	}
	if c := call("", "Authorization", "token "+good); c != http.StatusOK {
		t.Fatalf("good token: %d", c)
	}
	for _, h := range []string{"Bearer " + good, "bearer " + good, "TOKEN " + good, "token  " + good} {
		if c := call("", "Authorization", h); c != http.StatusOK {
			t.Errorf("%q: %d", h, c)
		}
	}
	for name, h := range map[string]string{
		"bogus token":       "token X",
		"bogus bearer":      "Bearer X",
		"empty":             "",
		"scheme only":       "token",
		"short":             "token " + good[:7],
		"trailing space":    "token " + good + " ",
		"trailing newline":  "token " + good + "\n",
		"other scheme":      "Basic " + good,
		"no scheme":         good,
		"prefix twin":       "token " + prefixTwin,
		"revoked":           "token " + revoked,
		"deleted user":      "token " + gone,
		"two tokens":        "token " + good + " " + good,
		"huge":              "token " + strings.Repeat("a", 100000),
		"control character": "token \x1b[31m" + good,
	} {
		if c := call("", "Authorization", h); c != http.StatusForbidden {
			t.Errorf("%s (%q): status %d, want 403", name, h, c)
		}
	}
	// On the wire, whitespace around a header value is not part of it
	// (RFC 9110): net/http drops it, so the token is the same credential;
	// whitespace inside the value still refuses it.
	raw := func(value string) string {
		conn, err := net.Dial("tcp", strings.TrimPrefix(e.url, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		fmt.Fprintf(conn, "GET /hub/api/user HTTP/1.1\r\nHost: x\r\nAuthorization: %s\r\nConnection: close\r\n\r\n", value)
		line, err := bufio.NewReader(conn).ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(line)
	}
	if got := raw("token " + good + " \t "); got != "HTTP/1.1 200 OK" {
		t.Errorf("token with whitespace after the header value: %q, want 200", got)
	}
	if got := raw("token " + good[:10] + " " + good[10:]); got != "HTTP/1.1 403 Forbidden" {
		t.Errorf("token with a space inside: %q, want 403", got)
	}
	if c := call("?token=" + good); c != http.StatusForbidden {
		t.Errorf("?token=: status %d, want 403", c)
	}
	r := do(t, testutil.NewClient(t), http.MethodGet, e.url+"/hub/api/users/alice?token="+good, nil).want(t, http.StatusForbidden)
	for _, c := range r.Cookies() {
		t.Errorf("?token= set cookie %s", c.Name)
	}
}

func TestLogout(t *testing.T) {
	e := newEnv(t)
	b := e.browser(t).login(t, "alice")
	other := e.browser(t).login(t, "alice")
	b.get(t, "/hub/home").want(t, http.StatusOK)
	old := b.cookie("/hub/", web.LoginCookie)
	r := b.get(t, "/hub/logout").want(t, http.StatusFound)
	cleared := map[string]bool{}
	for _, c := range r.Cookies() {
		if c.MaxAge < 0 {
			cleared[c.Name+" "+c.Path] = true
		}
	}
	for _, want := range []string{web.LoginCookie + " /hub/", web.SessionCookie + " /", web.XSRFCookie + " /hub/"} {
		if !cleared[want] {
			t.Errorf("logout did not clear %s (cookies %v)", want, r.Header.Values("Set-Cookie"))
		}
	}
	if loc := b.get(t, "/hub/home").want(t, http.StatusFound).Header.Get("Location"); !strings.HasPrefix(loc, "/hub/login") {
		t.Errorf("after logout, home redirects to %q", loc)
	}
	// The old cookie, replayed, no longer works: the session is gone.
	do(t, testutil.NewClient(t), http.MethodGet, e.url+"/hub/home", nil, "Cookie", web.LoginCookie+"="+old).want(t, http.StatusFound)
	// The other login is untouched.
	other.get(t, "/hub/home").want(t, http.StatusOK)
	// Logging out twice, or without a login, is harmless.
	b.get(t, "/hub/logout").want(t, http.StatusFound)
}
