package web_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/hubd/hubd/core/config"
	"github.com/hubd/hubd/core/store"
	"github.com/hubd/hubd/core/web"
	"github.com/hubd/hubd/internal/testutil"
)

func TestAPIVersionOnEveryResponse(t *testing.T) {
	e := newEnv(t)
	for _, p := range []string{"/hub/api", "/hub/api/"} {
		r := do(t, testutil.NewClient(t), http.MethodGet, e.url+p, nil).want(t, http.StatusOK)
		if diff := cmp.Diff(map[string]any{"version": "3.0.0"}, r.json(t)); diff != "" {
			t.Errorf("GET %s (-want +got):\n%s", p, diff)
		}
		if ct := r.Header.Get("Content-Type"); ct != "application/json" {
			t.Errorf("GET %s: Content-Type %q", p, ct)
		}
	}
	// Errors, redirects, pages and the internal listener carry it too.
	c := testutil.NewClient(t)
	for _, tc := range []struct {
		method, url string
		status      int
	}{
		{"GET", e.url + "/hub/api/users", http.StatusForbidden},
		{"GET", e.url + "/", http.StatusFound},
		{"GET", e.url + "/hub/home", http.StatusFound},
		{"GET", e.url + "/hub/nope", http.StatusNotFound},
		{"GET", e.url + "/hub/login", http.StatusOK},
		{"GET", e.url + "/user/alice/tree", http.StatusFound},
		{"POST", e.url + "/hub/login", http.StatusForbidden},
		{"GET", e.internal + "/hub/api", http.StatusOK},
		{"GET", e.internal + "/hub/health", http.StatusOK},
	} {
		r := do(t, c, tc.method, tc.url, nil)
		if r.StatusCode != tc.status {
			t.Errorf("%s %s: status %d, want %d", tc.method, tc.url, r.StatusCode, tc.status)
		}
		if v := r.Header.Get("X-JupyterHub-Version"); v != "3.0.0" {
			t.Errorf("%s %s: X-JupyterHub-Version %q", tc.method, tc.url, v)
		}
	}
}

func scopesOf(t *testing.T, m map[string]any) []string {
	t.Helper()
	raw, ok := m["scopes"].([]any)
	if !ok {
		t.Fatalf("no scopes list in %v", m)
	}
	out := make([]string, len(raw))
	for i, s := range raw {
		out[i] = s.(string)
	}
	return out
}

func TestAPISelf(t *testing.T) {
	e := newEnv(t)
	e.start(t, "alice")

	// The server's own token: exactly JupyterHub 3.0.0's list.
	r := e.api(t, http.MethodGet, "/user", serverToken(t, "alice"), nil).want(t, http.StatusOK)
	m := r.json(t)
	want := []string{"access:servers!user=alice", "read:users:activity!user=alice", "read:users:groups!user=alice",
		"read:users:name!user=alice", "users:activity!user=alice"}
	if diff := cmp.Diff(want, scopesOf(t, m)); diff != "" {
		t.Errorf("server token scopes (-want +got):\n%s", diff)
	}
	for k, v := range map[string]any{"name": "alice", "kind": "user", "admin": false, "session_id": nil} {
		if got, ok := m[k]; !ok || got != v {
			t.Errorf("server token: %s = %v (present %v), want %v", k, got, ok, v)
		}
	}
	if _, ok := m["last_activity"]; !ok {
		t.Error("server token: no last_activity")
	}

	// An API token with the owner's rights.
	m = e.api(t, http.MethodGet, "/user", e.token(t, "alice"), nil).want(t, http.StatusOK).json(t)
	if m["name"] != "alice" || !slices.Contains(scopesOf(t, m), "servers!user=alice") {
		t.Errorf("api token: %v", m)
	}
	// A token with one narrow scope gets it plus the identify scopes.
	m = e.api(t, http.MethodGet, "/user", e.token(t, "alice", "read:servers!user=alice"), nil).want(t, http.StatusOK).json(t)
	if diff := cmp.Diff([]string{"read:servers!user=alice", "read:users:groups!user=alice", "read:users:name!user=alice"}, scopesOf(t, m)); diff != "" {
		t.Errorf("narrow token scopes (-want +got):\n%s", diff)
	}

	// A cookie login.
	b := e.browser(t).login(t, "alice")
	m = b.get(t, "/hub/api/user").want(t, http.StatusOK).json(t)
	if m["name"] != "alice" || m["session_id"] != b.cookie("/", web.SessionCookie) || m["session_id"] == "" {
		t.Errorf("cookie: %v (session cookie %q)", m, b.cookie("/", web.SessionCookie))
	}

	// No credentials.
	e.api(t, http.MethodGet, "/user", "", nil).want(t, http.StatusForbidden)
}

func userNames(t *testing.T, items []any) []string {
	t.Helper()
	var out []string
	for _, it := range items {
		out = append(out, it.(map[string]any)["name"].(string))
	}
	return out
}

func TestUsersList(t *testing.T) {
	e := newEnv(t)
	admin := e.token(t, "admin")
	for _, n := range []string{"alice", "bob", "car_ol", "dave"} {
		e.user(t, n)
	}
	all := []string{"admin", "alice", "bob", "car_ol", "dave"}
	list := func(query string, hdr ...string) reply {
		return e.api(t, http.MethodGet, "/users"+query, admin, nil, hdr...)
	}
	bare := func(query string) []string {
		t.Helper()
		r := list(query).want(t, http.StatusOK)
		var items []any
		if err := json.Unmarshal(r.body, &items); err != nil {
			t.Fatalf("GET /users%s: not a bare list: %v: %s", query, err, r.body)
		}
		return userNames(t, items)
	}
	page := func(query string, host string) ([]string, map[string]any) {
		t.Helper()
		hdr := []string{"Accept", "application/json, application/jupyterhub-pagination+json"}
		if host != "" {
			hdr = append(hdr, "Host", host)
		}
		m := list(query, hdr...).want(t, http.StatusOK).json(t)
		items, ok := m["items"].([]any)
		if !ok {
			t.Fatalf("GET /users%s: no items: %v", query, m)
		}
		return userNames(t, items), m["_pagination"].(map[string]any)
	}

	if got := bare(""); !slices.Equal(got, all) {
		t.Errorf("bare list: %v", got)
	}
	got, pg := page("", "")
	if !slices.Equal(got, all) || pg["limit"] != 50.0 || pg["offset"] != 0.0 || pg["total"] != 5.0 || pg["next"] != nil {
		t.Errorf("envelope: %v %v", got, pg)
	}

	// next.url is absolute, built from the Host the client used; following
	// it verbatim walks the whole list.
	var walked []string
	got, pg = page("?limit=2", "hub.example.org:8443")
	walked = append(walked, got...)
	for pg["next"] != nil {
		next := pg["next"].(map[string]any)
		u, err := url.Parse(next["url"].(string))
		if err != nil || u.Scheme != "http" || u.Host != "hub.example.org:8443" || u.Path != "/hub/api/users" {
			t.Fatalf("next.url %q", next["url"])
		}
		got, pg = page("?"+u.RawQuery, u.Host)
		walked = append(walked, got...)
		if len(walked) > 10 {
			t.Fatal("pagination does not end")
		}
	}
	if !slices.Equal(walked, all) {
		t.Errorf("walking next.url: %v", walked)
	}

	// limit and offset edge cases.
	for q, n := range map[string]int{"?limit=-1": 1, "?limit=0": 1, "?limit=1000000000": 5, "?offset=9223372036854775807": 0, "?offset=4": 1} {
		if got := bare(q); len(got) != n {
			t.Errorf("GET /users%s: %d users, want %d", q, len(got), n)
		}
	}
	for _, q := range []string{"?limit=1e9", "?offset=-1", "?offset=9223372036854775808", "?limit=x", "?sort=bogus"} {
		list(q).want(t, http.StatusBadRequest)
	}

	// name_filter: substring, case-insensitive, LIKE wildcards are literal.
	for q, want := range map[string][]string{"?name_filter=AL": {"alice"}, "?name_filter=_": {"car_ol"},
		"?name_filter=%25": nil, "?name_filter=a%25e": nil, "?name_filter=a_i": nil} {
		if got := bare(q); !slices.Equal(got, want) {
			t.Errorf("GET /users%s: %v, want %v", q, got, want)
		}
	}

	// state filters.
	r := list("?state=bogus").want(t, http.StatusBadRequest)
	if m := r.json(t); !strings.HasPrefix(fmt.Sprint(m["message"]), "Unrecognized state filter") || m["status"] != 400.0 {
		t.Errorf("state=bogus: %v", m)
	}
	e.start(t, "bob")
	for q, want := range map[string][]string{"?state=active": {"bob"}, "?state=ready": {"bob"},
		"?state=inactive": {"admin", "alice", "car_ol", "dave"}} {
		got, _ := page(q, "")
		if !slices.Equal(got, want) {
			t.Errorf("GET /users%s: %v, want %v", q, got, want)
		}
	}

	// Listing needs list:users.
	e.api(t, http.MethodGet, "/users", e.token(t, "alice"), nil).want(t, http.StatusForbidden)
}

// The idle culler's token (its README's scopes) must see every field the
// culler reads (name, admin, last_activity, servers and theirs).
func TestUserModelForCuller(t *testing.T) {
	e := newEnv(t)
	e.start(t, "alice")
	culler := e.token(t, "admin-culler", "list:users", "read:users:activity", "read:servers", "delete:servers")
	r := e.api(t, http.MethodGet, "/users?state=ready", culler, nil, "Accept", "application/jupyterhub-pagination+json").want(t, http.StatusOK)
	items := r.json(t)["items"].([]any)
	if len(items) != 1 {
		t.Fatalf("state=ready: %v", items)
	}
	u := items[0].(map[string]any)
	for _, k := range []string{"name", "admin", "last_activity", "servers"} {
		if _, ok := u[k]; !ok {
			t.Errorf("user model lacks %q: %v", k, u)
		}
	}
	s, ok := u["servers"].(map[string]any)[""].(map[string]any)
	if !ok {
		t.Fatalf("no default server in %v", u)
	}
	for _, k := range []string{"name", "url", "ready", "pending", "started", "last_activity", "progress_url"} {
		if _, ok := s[k]; !ok {
			t.Errorf("server model lacks %q: %v", k, s)
		}
	}
	if s["ready"] != true || s["pending"] != nil || s["url"] != "/user/alice/" || s["name"] != "" {
		t.Errorf("server model: %v", s)
	}
	for _, k := range []string{"started", "last_activity"} {
		if _, err := time.Parse(time.RFC3339Nano, fmt.Sprint(s[k])); err != nil || !strings.HasSuffix(fmt.Sprint(s[k]), "Z") {
			t.Errorf("%s = %v: not an RFC 3339 UTC time", k, s[k])
		}
	}

	// The full model with an admin's token.
	m := e.api(t, http.MethodGet, "/users/alice", e.token(t, "admin"), nil).want(t, http.StatusOK).json(t)
	for _, k := range []string{"name", "admin", "created", "last_activity", "servers", "server", "pending", "kind", "groups", "roles"} {
		if _, ok := m[k]; !ok {
			t.Errorf("admin view lacks %q: %v", k, m)
		}
	}
	if m["server"] != "/user/alice/" {
		t.Errorf("server = %v", m["server"])
	}
}

func TestStartStopAPI(t *testing.T) {
	e := newEnv(t)
	tok := e.token(t, "alice")
	r := e.api(t, http.MethodPost, "/users/alice/server", tok, nil)
	if r.StatusCode != http.StatusCreated && r.StatusCode != http.StatusAccepted {
		t.Fatalf("start: %d %s", r.StatusCode, r.body)
	}
	testutil.WaitFor(t, "alice's server to be ready", func() bool { return e.server(t, "alice").State == store.StateRunning })
	if _, ok := e.routes.Lookup("/user/alice/"); !ok {
		t.Error("no route after start")
	}
	r = e.api(t, http.MethodPost, "/users/alice/server", tok, nil).want(t, http.StatusBadRequest)
	if msg := r.json(t)["message"]; msg != "alice is already running" {
		t.Errorf("second start: %v", msg)
	}
	// The route really reaches the server.
	if r := do(t, testutil.NewClient(t), http.MethodGet, e.url+"/user/alice/tree", nil).want(t, http.StatusOK); string(r.body) != "mock alice: /user/alice/tree" {
		t.Errorf("through the proxy: %q", r.body)
	}
	if n := len(serverProcs("alice")); n != 1 {
		t.Fatalf("%d server processes", n)
	}

	e.api(t, http.MethodDelete, "/users/alice/server", tok, nil).want(t, http.StatusNoContent)
	if left := serverProcs("alice"); len(left) != 0 {
		t.Errorf("process still there after 204: %v", left)
	}
	if _, ok := e.routes.Lookup("/user/alice/"); ok {
		t.Error("route left after stop")
	}
	if s := e.server(t, "alice"); s.State != store.StateStopped {
		t.Errorf("state %s", s.State)
	}
	// Stopping a stopped server is fine; stopping another user's is not.
	e.api(t, http.MethodDelete, "/users/alice/server", tok, nil).want(t, http.StatusNoContent)
	e.user(t, "bob")
	e.api(t, http.MethodDelete, "/users/bob/server", tok, nil).want(t, http.StatusNotFound)
	e.api(t, http.MethodPost, "/users/bob/server", tok, nil).want(t, http.StatusNotFound)
	e.api(t, http.MethodPost, "/users/alice/servers/named", tok, nil).want(t, http.StatusBadRequest)
}

func TestConcurrentSpawnLimit(t *testing.T) {
	e := newEnv(t, func(c *config.Config) {
		c.Spawner.ConcurrentSpawnLimit = 2
		c.Spawner.HTTPTimeout = config.Duration(time.Minute)
	})
	ctx := context.Background()
	// One start in flight: below the limit, alice may start.
	if _, err := e.hub.Start(ctx, e.user(t, "sleep1"), ""); err != nil {
		t.Fatal(err)
	}
	e.start(t, "alice")
	// Two in flight: exactly at the limit, bob is refused.
	if _, err := e.hub.Start(ctx, e.user(t, "sleep2"), ""); err != nil {
		t.Fatal(err)
	}
	r := e.api(t, http.MethodPost, "/users/bob/server", e.token(t, "bob"), nil).want(t, http.StatusTooManyRequests)
	if s, err := strconv.Atoi(r.Header.Get("Retry-After")); err != nil || s <= 0 {
		t.Errorf("Retry-After %q", r.Header.Get("Retry-After"))
	}
	if _, err := e.store.Server(ctx, e.user(t, "bob").ID, ""); err == nil {
		t.Error("a refused start left a server row")
	}
	// A slot frees up when a start ends.
	e.api(t, http.MethodDelete, "/users/sleep1/server", e.token(t, "sleep1"), nil).want(t, http.StatusNoContent)
	e.start(t, "bob")
}

func TestActivity(t *testing.T) {
	e := newEnv(t)
	e.start(t, "alice")
	tok := serverToken(t, "alice")
	ts := time.Now().Add(time.Minute).UTC().Format("2006-01-02T15:04:05.000000Z")
	body := fmt.Sprintf(`{"servers": {"": {"last_activity": %q}}, "last_activity": %q}`, ts, ts)
	r := e.api(t, http.MethodPost, "/users/alice/activity", tok, body).want(t, http.StatusOK)
	if len(r.body) != 0 || r.Header.Get("Content-Length") != "0" {
		t.Errorf("activity answer has a body: %q (Content-Length %q)", r.body, r.Header.Get("Content-Length"))
	}
	if got := store.FormatTime(e.server(t, "alice").LastActivity); got != ts {
		t.Errorf("server last_activity %s, want %s", got, ts)
	}
	if got := store.FormatTime(e.user(t, "alice").LastActivity); got != ts {
		t.Errorf("user last_activity %s, want %s", got, ts)
	}
	// Activity never moves back.
	old := time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)
	e.api(t, http.MethodPost, "/users/alice/activity", tok, fmt.Sprintf(`{"servers": {"": {"last_activity": %q}}}`, old)).want(t, http.StatusOK)
	if got := store.FormatTime(e.server(t, "alice").LastActivity); got != ts {
		t.Errorf("activity moved back to %s", got)
	}

	for _, tc := range []struct{ body, msg string }{
		{`{"servers": {"nope": {"last_activity": "2026-01-01T00:00:00Z"}}}`, "No such server"},
		{fmt.Sprintf(`{"last_activity": %q}`, time.Now().Add(2*time.Hour).UTC().Format(time.RFC3339)), "Rejecting activity from more than an hour in the future"},
		{`{}`, "body must contain at least one of"},
		{`{"last_activity": "yesterday"}`, "invalid timestamp"},
		{`{"servers": {"": {}}}`, "missing last_activity"},
		{`[1, 2]`, "invalid JSON"},
	} {
		r := e.api(t, http.MethodPost, "/users/alice/activity", tok, tc.body).want(t, http.StatusBadRequest)
		if msg := fmt.Sprint(r.json(t)["message"]); !strings.Contains(msg, tc.msg) {
			t.Errorf("%s: message %q, want %q", tc.body, msg, tc.msg)
		}
	}
	// Another user's token: 404, as JupyterHub.
	r = e.api(t, http.MethodPost, "/users/alice/activity", e.token(t, "bob"), body).want(t, http.StatusNotFound)
	if msg := r.json(t)["message"]; msg != "No access to resources or resources not found" {
		t.Errorf("bob: %v", msg)
	}
}

func TestTokensAPI(t *testing.T) {
	e := newEnv(t)
	tok := e.token(t, "alice")
	r := e.api(t, http.MethodPost, "/users/alice/tokens", tok, map[string]any{"note": "console", "expires_in": 3600}).want(t, http.StatusCreated)
	m := r.json(t)
	secret, id := fmt.Sprint(m["token"]), fmt.Sprint(m["id"])
	if len(secret) != 32 || !strings.HasPrefix(id, "a") || m["note"] != "console" || m["user"] != "alice" || m["expires_at"] == nil {
		t.Fatalf("created: %v", m)
	}
	e.api(t, http.MethodGet, "/user", secret, nil).want(t, http.StatusOK)

	list := e.api(t, http.MethodGet, "/users/alice/tokens", tok, nil).want(t, http.StatusOK).json(t)["api_tokens"].([]any)
	var ids []string
	for _, it := range list {
		tm := it.(map[string]any)
		if _, leaked := tm["token"]; leaked {
			t.Errorf("the list shows a token's secret: %v", tm)
		}
		ids = append(ids, fmt.Sprint(tm["id"]))
	}
	if !slices.Contains(ids, id) {
		t.Errorf("new token %s not in %v", id, ids)
	}
	g := e.api(t, http.MethodGet, "/users/alice/tokens/"+id, tok, nil).want(t, http.StatusOK).json(t)
	if g["id"] != id || g["note"] != "console" {
		t.Errorf("get: %v", g)
	}
	// Other users see nothing; bad ids are 404.
	bob := e.token(t, "bob")
	e.api(t, http.MethodGet, "/users/alice/tokens", bob, nil).want(t, http.StatusNotFound)
	e.api(t, http.MethodGet, "/users/bob/tokens/"+id, bob, nil).want(t, http.StatusNotFound)
	e.api(t, http.MethodDelete, "/users/bob/tokens/"+id, bob, nil).want(t, http.StatusNotFound)
	e.api(t, http.MethodGet, "/users/alice/tokens/zzz", tok, nil).want(t, http.StatusNotFound)
	// A token cannot carry more than its creator holds.
	e.api(t, http.MethodPost, "/users/alice/tokens", tok, map[string]any{"scopes": []string{"admin:users"}}).want(t, http.StatusForbidden)
	e.api(t, http.MethodPost, "/users/alice/tokens", tok, map[string]any{"scopes": []string{"read:users!user=bob"}}).want(t, http.StatusForbidden)
	e.api(t, http.MethodPost, "/users/bob/tokens", tok, nil).want(t, http.StatusNotFound)
	e.api(t, http.MethodPost, "/users/alice/tokens", tok, map[string]any{"expires_in": -5}).want(t, http.StatusBadRequest)
	e.api(t, http.MethodPost, "/users/alice/tokens", tok, map[string]any{"note": strings.Repeat("n", 1001)}).want(t, http.StatusBadRequest)
	// A narrowed token works for what it holds only.
	narrow := e.api(t, http.MethodPost, "/users/alice/tokens", tok, map[string]any{"scopes": []string{"read:users!user=alice"}}).
		want(t, http.StatusCreated).json(t)["token"].(string)
	e.api(t, http.MethodGet, "/users/alice", narrow, nil).want(t, http.StatusOK)
	e.api(t, http.MethodPost, "/users/alice/server", narrow, nil).want(t, http.StatusForbidden)

	e.api(t, http.MethodDelete, "/users/alice/tokens/"+id, tok, nil).want(t, http.StatusNoContent)
	e.api(t, http.MethodGet, "/user", secret, nil).want(t, http.StatusForbidden)
	e.api(t, http.MethodDelete, "/users/alice/tokens/"+id, tok, nil).want(t, http.StatusNotFound)

	// An expired token is refused and purged from the list.
	short := e.api(t, http.MethodPost, "/users/alice/tokens", tok, map[string]any{"expires_in": 60}).want(t, http.StatusCreated).json(t)
	e.api(t, http.MethodGet, "/user", short["token"].(string), nil).want(t, http.StatusOK)
	e.skew.Store(int64(2 * time.Minute))
	e.api(t, http.MethodGet, "/user", short["token"].(string), nil).want(t, http.StatusForbidden)
	list = e.api(t, http.MethodGet, "/users/alice/tokens", tok, nil).want(t, http.StatusOK).json(t)["api_tokens"].([]any)
	for _, it := range list {
		if it.(map[string]any)["id"] == short["id"] {
			t.Error("an expired token is still listed")
		}
	}
}

// A token never holds more than its owner: an admin cannot mint admin
// powers for a member, and a demoted admin's explicit-scope token loses
// them at once, as in JupyterHub (scopes are intersected on every use).
func TestTokenPowersBoundedByOwner(t *testing.T) {
	e := newEnv(t)
	root := e.token(t, "admin-root")
	e.user(t, "alice")
	e.api(t, http.MethodPost, "/users/alice/tokens", root, map[string]any{"scopes": []string{"admin:users", "list:users"}}).
		want(t, http.StatusForbidden)
	e.api(t, http.MethodPost, "/users/alice/tokens", root, map[string]any{"scopes": []string{"read:users!user=alice"}}).
		want(t, http.StatusCreated)

	// A token stored with more than its owner holds (issued by an older
	// hub, or written behind the API's back) grants only the overlap.
	wide := e.token(t, "alice", "admin:users", "list:users", "read:users!user=alice")
	e.api(t, http.MethodGet, "/users", wide, nil).want(t, http.StatusForbidden)
	e.api(t, http.MethodPost, "/users/hubtest-nobody", wide, nil).want(t, http.StatusForbidden)
	e.api(t, http.MethodDelete, "/users/admin-root", wide, nil).want(t, http.StatusForbidden)
	e.api(t, http.MethodGet, "/users/alice", wide, nil).want(t, http.StatusOK)
	self := e.api(t, http.MethodGet, "/user", wide, nil).want(t, http.StatusOK).json(t)
	for _, s := range self["scopes"].([]any) {
		if strings.HasPrefix(s.(string), "admin:") || s == "list:users" {
			t.Errorf("/user reports scope %v that alice does not hold", s)
		}
	}

	// An admin's own explicit admin token works until the admin is demoted.
	e.user(t, "admin-demoted")
	own := e.api(t, http.MethodPost, "/users/admin-demoted/tokens", e.token(t, "admin-demoted"),
		map[string]any{"scopes": []string{"admin:users", "list:users"}}).want(t, http.StatusCreated).json(t)["token"].(string)
	e.api(t, http.MethodGet, "/users", own, nil).want(t, http.StatusOK)
	e.api(t, http.MethodPatch, "/users/admin-demoted", root, map[string]any{"admin": false}).want(t, http.StatusOK)
	e.api(t, http.MethodGet, "/users", own, nil).want(t, http.StatusForbidden)
	e.api(t, http.MethodPost, "/users/hubtest-other", own, nil).want(t, http.StatusForbidden)
	e.api(t, http.MethodDelete, "/users/alice", own, nil).want(t, http.StatusForbidden)
}

func TestProgressStream(t *testing.T) {
	e := newEnv(t)
	tok := e.token(t, "alice")
	e.api(t, http.MethodGet, "/users/alice/server/progress", tok, nil).want(t, http.StatusBadRequest)
	if _, err := e.hub.Start(context.Background(), e.user(t, "alice"), ""); err != nil {
		t.Fatal(err)
	}
	evs := e.events(t, "alice", tok)
	last := evs[len(evs)-1]
	if !last.Ready || last.Failed || last.Progress != 100 || last.URL != "/user/alice/" || last.Message != "Server ready at /user/alice/" {
		t.Errorf("last event %+v", last)
	}
	progress := []int{}
	for _, ev := range evs {
		progress = append(progress, ev.Progress)
	}
	if !sort.IntsAreSorted(progress) {
		t.Errorf("progress goes back: %v", progress)
	}
	// Once running, the stream is the single ready event.
	if evs := e.events(t, "alice", tok); len(evs) != 1 || !evs[0].Ready {
		t.Errorf("after ready: %+v", evs)
	}
	e.api(t, http.MethodGet, "/users/alice/server/progress", e.token(t, "bob"), nil).want(t, http.StatusNotFound)
}
