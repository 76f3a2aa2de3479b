package web_test

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/hubd/hubd/core/access"
	"github.com/hubd/hubd/core/config"
	"github.com/hubd/hubd/core/store"
	"github.com/hubd/hubd/core/web"
	"github.com/hubd/hubd/internal/testutil"
)

// named turns named servers on with a limit of two per user.
func named(c *config.Config) {
	c.Spawner.NamedServers = true
	c.Spawner.NamedServerLimitPerUser = 2
}

// twoProfiles gives servers a default profile and another one.
func twoProfiles(c *config.Config) {
	c.Spawner.Profiles = []config.Profile{{Name: "cpu", Default: true}, {Name: "a100"}}
}

func TestNamedServers(t *testing.T) {
	e := newEnv(t, named, twoProfiles)
	tok := e.token(t, "nina")

	e.api(t, http.MethodPost, "/users/nina/servers/gpu", tok, map[string]any{"profile": "a100"}).want(t, http.StatusCreated)
	m := e.api(t, http.MethodGet, "/users/nina", tok, nil).want(t, http.StatusOK).json(t)
	gpu, _ := m["servers"].(map[string]any)["gpu"].(map[string]any)
	if gpu == nil || gpu["url"] != "/user/nina/gpu/" || gpu["ready"] != true ||
		gpu["progress_url"] != "/hub/api/users/nina/servers/gpu/progress" || gpu["full_name"] != "nina/gpu" {
		t.Fatalf("named server model: %v", m["servers"])
	}
	if opts, _ := gpu["user_options"].(map[string]any); opts["profile"] != "a100" {
		t.Errorf("user_options = %v; want the start body back", gpu["user_options"])
	}
	if m["server"] != nil {
		t.Errorf("server (the default one) = %v; want null while only a named server runs", m["server"])
	}
	r := do(t, testutil.NewClient(t), http.MethodGet, e.url+"/user/nina/gpu/lab?x=1", nil).want(t, http.StatusOK)
	if got := string(r.body); got != "mock nina: /user/nina/gpu/lab?x=1" {
		t.Errorf("through the proxy: %q", got)
	}

	t.Run("bad names are refused", func(t *testing.T) {
		for _, name := range []string{"%2E%2E", "x%2Fy", strings.Repeat("a", 300), "-x", "%20"} {
			r := e.api(t, http.MethodPost, "/users/nina/servers/"+name, tok, nil)
			if r.StatusCode != http.StatusBadRequest || !strings.Contains(string(r.body), "invalid server name") {
				t.Errorf("server %.20q: %d %s; want 400 invalid server name", name, r.StatusCode, r.body)
			}
		}
	})

	t.Run("the per-user limit counts stopped servers until they are removed", func(t *testing.T) {
		e.api(t, http.MethodPost, "/users/nina/servers/cpu", tok, nil).want(t, http.StatusCreated)
		e.api(t, http.MethodDelete, "/users/nina/servers/cpu", tok, nil).want(t, http.StatusNoContent)
		r := e.api(t, http.MethodPost, "/users/nina/servers/third", tok, nil).want(t, http.StatusBadRequest)
		if !strings.Contains(string(r.body), "already has the maximum of 2 named servers") {
			t.Errorf("limit answer: %s", r.body)
		}
		// Starting one the user already has is no new server.
		e.api(t, http.MethodPost, "/users/nina/servers/cpu", tok, nil).want(t, http.StatusCreated)
		e.api(t, http.MethodDelete, "/users/nina/servers/cpu", tok, map[string]bool{"remove": true}).want(t, http.StatusNoContent)
		e.api(t, http.MethodPost, "/users/nina/servers/third", tok, nil).want(t, http.StatusCreated)
		e.api(t, http.MethodDelete, "/users/nina/servers/nope", tok, nil).want(t, http.StatusNotFound)
	})

	t.Run("another user cannot start or stop them", func(t *testing.T) {
		other := e.token(t, "otto")
		e.api(t, http.MethodPost, "/users/nina/servers/evil", other, nil).want(t, http.StatusNotFound)
		e.api(t, http.MethodDelete, "/users/nina/servers/gpu", other, nil).want(t, http.StatusNotFound)
	})

	t.Run("the culler stops idle named servers", func(t *testing.T) {
		// Started (and last active) longer ago than the culler's timeout.
		e.skew.Store(-int64(2 * e.cfg.Culler.Timeout.D()))
		e.api(t, http.MethodPost, "/users/nico/servers/old", e.token(t, "nico"), nil).want(t, http.StatusCreated)
		e.skew.Store(0)
		n, err := e.hub.Cull(context.Background())
		if err != nil || n != 1 {
			t.Fatalf("culled %d, %v; want nico/old only", n, err)
		}
		if srv, _ := e.store.Server(context.Background(), e.user(t, "nico").ID, "old"); srv.StoppedBy != "culler" {
			t.Errorf("nico/old stopped by %q; want the culler", srv.StoppedBy)
		}
	})
}

func TestNamedServersOff(t *testing.T) {
	e := newEnv(t)
	r := e.api(t, http.MethodPost, "/users/nina/servers/gpu", e.token(t, "nina"), nil).want(t, http.StatusBadRequest)
	if !strings.Contains(string(r.body), "Named servers are not enabled.") {
		t.Errorf("answer: %s", r.body)
	}
}

// TestNamedServerPages: the home page lists named servers and starts new
// ones; /hub/user/<u>/<server>/ knows them.
func TestNamedServerPages(t *testing.T) {
	e := newEnv(t, named)
	b := e.browser(t).login(t, "nina")
	xsrf := b.cookie("/hub/", web.XSRFCookie)
	r := b.postForm(t, "/hub/spawn", url.Values{"_xsrf": {xsrf}, "server": {"gpu"}}).want(t, http.StatusFound)
	if loc := r.Header.Get("Location"); loc != "/hub/spawn-pending/nina/gpu" {
		t.Fatalf("spawn redirect %q", loc)
	}
	e.hub.Wait()
	r = b.get(t, "/hub/spawn-pending/nina/gpu").want(t, http.StatusFound)
	if loc := r.Header.Get("Location"); loc != "/user/nina/gpu/" {
		t.Errorf("pending page of a ready server sends to %q", loc)
	}
	home := string(b.get(t, "/hub/home").want(t, http.StatusOK).body)
	if !strings.Contains(home, `data-server="gpu"`) || !strings.Contains(home, `href="/user/nina/gpu/"`) {
		t.Errorf("home page does not list the running named server:\n%s", home)
	}
	r = b.postForm(t, "/hub/spawn", url.Values{"_xsrf": {xsrf}, "server": {".."}}).want(t, http.StatusBadRequest)
	if !strings.Contains(string(r.body), "invalid server name") {
		t.Errorf("bad name page: %s", r.body)
	}
	b.postForm(t, "/hub/stop", url.Values{"_xsrf": {xsrf}, "server": {"gpu"}}).want(t, http.StatusFound)
	r = b.get(t, "/hub/user/nina/gpu/tree").want(t, http.StatusFailedDependency)
	if !strings.Contains(string(r.body), `name="server" value="gpu"`) {
		t.Errorf("the not-running page does not offer to start gpu:\n%s", r.body)
	}
	b.postForm(t, "/hub/delete-server", url.Values{"_xsrf": {xsrf}, "server": {"gpu"}}).want(t, http.StatusFound)
	if strings.Contains(string(b.get(t, "/hub/home").body), `data-server="gpu"`) {
		t.Error("a deleted server is still listed")
	}
}

// culler is a configured service with a token file and the scopes the
// idle culler needs.
func culler(dir string) func(*config.Config) {
	return func(c *config.Config) {
		c.Roles = []config.Role{{Name: "idle-culler", Scopes: []string{"list:users", "read:users:activity", "read:servers", "delete:servers"}}}
		c.Services = []config.Service{
			{Name: "culler", APITokenFile: filepath.Join(dir, "culler.token"), Roles: []string{"idle-culler"}},
			{Name: "dash", URL: "http://127.0.0.1:1", Scopes: []string{"read:users:name"}, Display: true},
		}
	}
}

func readToken(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	fi, _ := os.Stat(path)
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("%s has mode %04o; want 0600", path, fi.Mode().Perm())
	}
	return strings.TrimSpace(string(b))
}

func TestServiceTokens(t *testing.T) {
	dir := t.TempDir()
	e := newEnv(t, culler(dir))
	tok := readToken(t, filepath.Join(dir, "culler.token"))
	e.start(t, "ulla")

	self := e.api(t, http.MethodGet, "/user", tok, nil).want(t, http.StatusOK).json(t)
	if self["kind"] != "service" || self["name"] != "culler" || self["session_id"] != nil {
		t.Fatalf("/user for a service token: %v", self)
	}
	scopes := strings.Join(toStrings(self["scopes"]), " ")
	for _, want := range []string{"list:users", "read:servers", "delete:servers", "read:users:activity", "read:services:name!service=culler"} {
		if !regexp.MustCompile(`(^| )` + regexp.QuoteMeta(want) + `( |$)`).MatchString(scopes) {
			t.Errorf("service scopes %q lack %s", scopes, want)
		}
	}
	users := e.api(t, http.MethodGet, "/users?state=ready", tok, nil, "Accept", "application/jupyterhub-pagination+json").want(t, http.StatusOK).json(t)
	if items, _ := users["items"].([]any); len(items) != 1 {
		t.Errorf("ready users seen by the culler: %v", users)
	}
	// What its roles do not grant, it cannot do.
	e.api(t, http.MethodPost, "/users/ulla/server", tok, nil).want(t, http.StatusForbidden)
	e.api(t, http.MethodGet, "/services", tok, nil).want(t, http.StatusForbidden)
	e.api(t, http.MethodDelete, "/users/ulla/server", tok, nil).want(t, http.StatusNoContent)

	t.Run("a token with scopes its roles do not grant", func(t *testing.T) {
		_, _, err := access.New(e.cfg, e.store, nil).Issue(context.Background(), access.TokenRequest{Service: "culler", Scopes: []string{"admin:users"}})
		var ref *access.Refusal
		if !errors.As(err, &ref) || !strings.Contains(ref.Msg, "admin:users") {
			t.Fatalf("issue admin:users to the culler: %v; want a refusal naming the scope", err)
		}
		// One written behind the hub's back is cut to the roles on use.
		bad := e.serviceToken(t, "culler", `["admin:users", "list:users"]`)
		e.api(t, http.MethodPost, "/users", bad, map[string]any{"usernames": []string{"mallory"}}).want(t, http.StatusForbidden)
		got := e.api(t, http.MethodGet, "/user", bad, nil).want(t, http.StatusOK).json(t)
		if s := strings.Join(toStrings(got["scopes"]), " "); strings.Contains(s, "admin:users") || !strings.Contains(s, "list:users") {
			t.Errorf("scopes of an over-wide service token: %s", s)
		}
	})

	t.Run("services API", func(t *testing.T) {
		admin := e.token(t, "admin-ada")
		list := e.api(t, http.MethodGet, "/services", admin, nil).want(t, http.StatusOK).json(t)
		dash, _ := list["dash"].(map[string]any)
		if dash == nil || dash["kind"] != "service" || dash["prefix"] != "/services/dash/" || dash["url"] != "http://127.0.0.1:1" {
			t.Fatalf("services: %v", list)
		}
		one := e.api(t, http.MethodGet, "/services/culler", admin, nil).want(t, http.StatusOK).json(t)
		if roles := toStrings(one["roles"]); len(roles) != 1 || roles[0] != "idle-culler" {
			t.Errorf("culler roles = %v", one["roles"])
		}
		e.api(t, http.MethodGet, "/services/nope", admin, nil).want(t, http.StatusNotFound)
	})
}

func toStrings(v any) []string {
	var out []string
	list, _ := v.([]any)
	for _, x := range list {
		s, _ := x.(string)
		out = append(out, s)
	}
	return out
}

func TestTokenExpiryInThePast(t *testing.T) {
	e := newEnv(t)
	tok := e.token(t, "pat")
	for _, body := range []string{`{"expires_in": -60}`, `{"expires_in": 0}`} {
		r := e.api(t, http.MethodPost, "/users/pat/tokens", tok, body).want(t, http.StatusBadRequest)
		if !strings.Contains(string(r.body), "positive") {
			t.Errorf("%s: %s", body, r.body)
		}
	}
	u := e.user(t, "pat")
	_, _, err := access.New(e.cfg, e.store, nil).Issue(context.Background(), access.TokenRequest{User: &u, ExpiresIn: -1})
	var bad *access.BadRequest
	if !errors.As(err, &bad) || !strings.Contains(bad.Msg, "past") {
		t.Errorf("Issue with a past expiry: %v", err)
	}
}

func TestTokenPage(t *testing.T) {
	e := newEnv(t)
	b := e.browser(t).login(t, "tia")
	page := b.get(t, "/hub/token").want(t, http.StatusOK)
	if !strings.Contains(string(page.body), "You have no API tokens") {
		t.Fatalf("token page:\n%s", page.body)
	}
	xsrf := b.cookie("/hub/", web.XSRFCookie)
	b.postForm(t, "/hub/token", url.Values{"action": {"create"}, "note": {"laptop"}}).want(t, http.StatusForbidden)
	r := b.postForm(t, "/hub/token", url.Values{"_xsrf": {xsrf}, "action": {"create"}, "note": {"laptop"},
		"expires_in": {"3600"}, "scopes": {"read:users!user"}}).want(t, http.StatusOK)
	m := regexp.MustCompile(`<code class="token" id="new-token">([0-9a-f]{32})</code>`).FindSubmatch(r.body)
	if m == nil {
		t.Fatalf("no new token on the page:\n%s", r.body)
	}
	tok := string(m[1])
	self := e.api(t, http.MethodGet, "/user", tok, nil).want(t, http.StatusOK).json(t)
	if self["name"] != "tia" {
		t.Fatalf("the page's token is %v's", self["name"])
	}
	e.api(t, http.MethodPost, "/users/tia/server", tok, nil).want(t, http.StatusForbidden)
	listed := string(b.get(t, "/hub/token").body)
	if !strings.Contains(listed, "laptop") || strings.Contains(listed, tok) {
		t.Errorf("the list shows the note and never the token again:\n%s", listed)
	}
	r = b.postForm(t, "/hub/token", url.Values{"_xsrf": {xsrf}, "action": {"create"}, "scopes": {"admin:users"}}).want(t, http.StatusForbidden)
	if !strings.Contains(string(r.body), "admin:users") {
		t.Errorf("refusal page: %s", r.body)
	}
	id := regexp.MustCompile(`data-token="(\d+)"`).FindStringSubmatch(listed)
	if id == nil {
		t.Fatalf("no token row:\n%s", listed)
	}
	b.postForm(t, "/hub/token", url.Values{"_xsrf": {xsrf}, "action": {"revoke"}, "id": {id[1]}}).want(t, http.StatusSeeOther)
	e.api(t, http.MethodGet, "/user", tok, nil).want(t, http.StatusForbidden)
}

func TestGroupsAPI(t *testing.T) {
	e := newEnv(t, func(c *config.Config) {
		c.Roles = []config.Role{{Name: "gpu-leads", Scopes: []string{"admin:servers!group=gpu", "list:users"}, Groups: []string{"leads"}}}
	})
	admin := e.token(t, "admin-ada")
	for _, n := range []string{"gus", "gail", "leo", "olga"} {
		e.user(t, n)
	}
	g := e.api(t, http.MethodPost, "/groups/gpu", admin, map[string]any{"users": []string{"gus"}}).want(t, http.StatusCreated).json(t)
	if g["kind"] != "group" || strings.Join(toStrings(g["users"]), ",") != "gus" {
		t.Fatalf("created group: %v", g)
	}
	e.api(t, http.MethodPost, "/groups/gpu", admin, nil).want(t, http.StatusConflict)
	e.api(t, http.MethodPost, "/groups", admin, map[string]any{"groups": []string{"leads"}, "users": []string{"leo"}}).want(t, http.StatusCreated)
	e.api(t, http.MethodPost, "/groups/gpu/users", admin, map[string]any{"users": []string{"gail"}}).want(t, http.StatusOK)
	e.api(t, http.MethodPost, "/groups/gpu/users", admin, map[string]any{"users": []string{"nobody"}}).want(t, http.StatusBadRequest)
	p := e.api(t, http.MethodPut, "/groups/gpu/properties", admin, map[string]any{"quota": 2}).want(t, http.StatusOK).json(t)
	if props, _ := p["properties"].(map[string]any); props["quota"] != float64(2) {
		t.Errorf("properties: %v", p)
	}
	list := e.api(t, http.MethodGet, "/groups", admin, nil, "Accept", "application/jupyterhub-pagination+json").want(t, http.StatusOK).json(t)
	if pg, _ := list["_pagination"].(map[string]any); pg["total"] != float64(2) {
		t.Errorf("groups page: %v", list)
	}
	u := e.api(t, http.MethodGet, "/users/gail", admin, nil).want(t, http.StatusOK).json(t)
	if strings.Join(toStrings(u["groups"]), ",") != "gpu" {
		t.Errorf("gail's groups: %v", u["groups"])
	}

	t.Run("a role given to a group, filtered by another group", func(t *testing.T) {
		leo := e.token(t, "leo")
		lu := e.api(t, http.MethodGet, "/users/leo", leo, nil).want(t, http.StatusOK).json(t)
		if !strings.Contains(strings.Join(toStrings(lu["roles"]), ","), "gpu-leads") {
			t.Errorf("leo's roles: %v", lu["roles"])
		}
		e.start(t, "gus")
		e.start(t, "olga")
		e.api(t, http.MethodDelete, "/users/olga/server", leo, nil).want(t, http.StatusNotFound)
		e.api(t, http.MethodDelete, "/users/gus/server", leo, nil).want(t, http.StatusNoContent)
		e.api(t, http.MethodDelete, "/groups/gpu/users", admin, map[string]any{"users": []string{"gus"}}).want(t, http.StatusOK)
		e.start(t, "gus")
		e.api(t, http.MethodDelete, "/users/gus/server", leo, nil).want(t, http.StatusNotFound)
	})

	e.api(t, http.MethodGet, "/groups", e.token(t, "olga"), nil).want(t, http.StatusForbidden)
	e.api(t, http.MethodDelete, "/groups/gpu", admin, nil).want(t, http.StatusNoContent)
	e.api(t, http.MethodGet, "/groups/gpu", admin, nil).want(t, http.StatusNotFound)
}

// serviceToken writes a token for a configured service straight into the
// database, with the given scopes (JSON), as a hand-edited row would be.
func (e *env) serviceToken(t *testing.T, service, scopes string) string {
	t.Helper()
	sv, err := e.store.ServiceByName(context.Background(), service)
	if err != nil {
		t.Fatal(err)
	}
	tok := web.NewToken()
	if _, err := e.store.CreateToken(context.Background(), store.Token{ServiceID: sv.ID, Hash: store.HashToken(tok),
		Prefix: tok[:4], Kind: store.TokenAPI, Scopes: scopes, Note: "test"}); err != nil {
		t.Fatal(err)
	}
	return tok
}
