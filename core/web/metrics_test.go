package web_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/hubd/hubd/internal/testutil"
)

// /hub/metrics is JupyterHub 5's: only callers holding read:metrics (admins,
// or a token with just that scope) get the scrape.
func TestMetricsNeedReadMetrics(t *testing.T) {
	e := newEnv(t)
	e.user(t, "alice")
	scrape := e.token(t, "admin-prom", "read:metrics")
	for _, c := range []struct {
		name, path, token string
		want              int
	}{
		{"no credentials", "/hub/metrics", "", http.StatusForbidden},
		{"a member's token", "/hub/metrics", e.token(t, "alice"), http.StatusForbidden},
		{"an admin's token without the scope", "/hub/metrics", e.token(t, "admin-ops", "read:users"), http.StatusForbidden},
		{"an admin's read:metrics token", "/hub/metrics", scrape, http.StatusOK},
		{"the API path", "/hub/api/metrics", scrape, http.StatusOK},
		{"a member's read:metrics token is cut to the member's role", "/hub/metrics", e.token(t, "alice", "read:metrics"), http.StatusForbidden},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := e.scrape(t, c.path, c.token).want(t, c.want)
			if c.want == http.StatusOK && !strings.Contains(string(r.body), "jupyterhub_total_users") {
				t.Errorf("scrape has no jupyterhub_total_users:\n%.500s", r.body)
			}
		})
	}

	// An admin's browser session may read it too.
	b := e.browser(t).login(t, "admin-web")
	b.get(t, "/hub/metrics").want(t, http.StatusOK)
}

// The hub's own requests, logins and spawns show up under JupyterHub's
// names; proxied user traffic is not counted as hub requests.
func TestMetricsRecordRequestsLoginsAndSpawns(t *testing.T) {
	e := newEnv(t)
	b := e.browser(t).login(t, "alice")
	bad := e.browser(t)
	action, xsrf := bad.loginForm(t, "")
	bad.postForm(t, action, map[string][]string{"username": {"bob"}, "password": {"wrong"}, "_xsrf": {xsrf}}).want(t, http.StatusForbidden)
	e.start(t, "alice")
	b.get(t, "/user/alice/x").want(t, http.StatusOK)

	body := string(e.scrape(t, "/hub/metrics", e.token(t, "admin")).want(t, http.StatusOK).body)
	for _, want := range []string{
		`jupyterhub_request_duration_seconds_count{code="200",handler="GET /hub/login",method="GET"}`,
		`jupyterhub_server_spawn_duration_seconds_count{status="success"} 1`,
		`jupyterhub_server_spawn_duration_seconds_bucket{status="success",le="600"} 1`,
		`jupyterhub_server_spawn_duration_seconds_count{status="failure"} 0`,
		`jupyterhub_running_servers 1`,
		`jupyterhub_total_users 2`,
		`hubd_login_failures_total{reason="invalid-credentials"} 1`,
		`hubd_logins_total 1`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("scrape lacks %s", want)
		}
	}
	if strings.Contains(body, `handler="/user/`) || strings.Contains(body, "unmatched") {
		t.Errorf("proxied traffic was counted as hub requests:\n%s", grepLines(body, "jupyterhub_request_duration_seconds_count"))
	}
	if t.Failed() {
		t.Logf("scrape:\n%s", grepLines(body, "jupyterhub_", "hubd_"))
	}
}

// scrape GETs a metrics path as Prometheus does, with a token ("" for none).
func (e *env) scrape(t *testing.T, path, tok string) reply {
	t.Helper()
	var hdr []string
	if tok != "" {
		hdr = []string{"Authorization", "Bearer " + tok}
	}
	return do(t, testutil.NewClient(t), http.MethodGet, e.url+path, nil, hdr...)
}

func grepLines(s string, prefixes ...string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		for _, p := range prefixes {
			if strings.HasPrefix(l, p) {
				out = append(out, l)
				break
			}
		}
	}
	return strings.Join(out, "\n")
}
