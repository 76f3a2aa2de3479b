package admin_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/hubd/hubd/backups"
	"github.com/hubd/hubd/core/admin"
	"github.com/hubd/hubd/core/admin/wire"
)

// permEnv is a hub with what every endpoint needs to succeed: the
// member's user and server log, an admin's user, and one backup.
func permEnv(t *testing.T) (*testEnv, string) {
	e := newTestEnv(t)
	e.user(t, idMember.Name())
	e.user(t, idAdmin.Name())
	if err := os.WriteFile(filepath.Join(e.cfg.Data.LogDir, idMember.Name()+".log"), []byte("line 1\nline 2\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(e.cfg.Data.LogDir, idAdmin.Name()+".log"), []byte("admin's server\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	info, err := e.store.Backup(context.Background(), backups.CreateOptions{Dir: e.cfg.Backups.Dir, Label: "fixture"})
	if err != nil {
		t.Fatal(err)
	}
	return e, filepath.Base(info.Path)
}

// permCase is one call of TestPermissions and its status per role.
type permCase struct {
	method, path, body  string
	root, admin, member int
	mutating            bool
}

// TestPermissions calls every endpoint as root, an admin, a member and an
// outsider and checks the status, and that each allowed mutating call is
// in the audit log with the caller's uid.
func TestPermissions(t *testing.T) {
	e, archive := permEnv(t)
	m := idMember.Name()
	const (
		ok        = http.StatusOK
		forbidden = http.StatusForbidden
	)
	cases := []permCase{
		{"GET", "/v1/whoami", "", ok, ok, ok, false},
		{"GET", "/v1/status", "", ok, ok, ok, false},
		{"GET", "/v1/sessions", "", ok, ok, ok, false},
		{"GET", "/v1/sessions?user=" + m, "", ok, ok, ok, false},
		{"GET", "/v1/sessions?user=" + idAdmin.Name(), "", ok, ok, forbidden, false},
		{"POST", "/v1/sessions/stop", `{"users":["` + m + `"]}`, ok, ok, forbidden, true},
		{"POST", "/v1/sessions/stop", `{"idle_for":"1h"}`, ok, ok, forbidden, true},
		{"POST", "/v1/sessions/" + m + "/stop", "", ok, ok, forbidden, true},
		{"GET", "/v1/sessions/" + m + "/log", "", ok, ok, ok, false},
		{"GET", "/v1/sessions/" + idAdmin.Name() + "/log", "", ok, ok, forbidden, false},
		{"GET", "/v1/backups", "", ok, ok, forbidden, false},
		{"POST", "/v1/backups", `{"label":"perm"}`, ok, ok, forbidden, true},
		{"POST", "/v1/backups/prune", `{"keep": 100}`, ok, ok, forbidden, true},
		{"POST", "/v1/backups/" + archive + "/verify", "", ok, ok, forbidden, false},
		{"POST", "/v1/backups/" + archive + "/restore", "", http.StatusConflict, http.StatusConflict, forbidden, true},
		{"GET", "/v1/upgrade/plan", "", ok, ok, forbidden, false},
		{"POST", "/v1/upgrade/run", "", ok, ok, forbidden, true},
		{"POST", "/v1/restart", "", http.StatusAccepted, http.StatusAccepted, http.StatusAccepted, true},
		{"GET", "/v1/events", "", ok, ok, forbidden, false},
		{"GET", "/v1/tokens", "", ok, ok, ok, false},
		{"GET", "/v1/tokens?user=" + idAdmin.Name(), "", ok, ok, forbidden, false},
		{"POST", "/v1/tokens", `{"user":"` + m + `","note":"perm"}`, http.StatusCreated, http.StatusCreated, http.StatusCreated, true},
		{"POST", "/v1/tokens", `{"user":"` + idAdmin.Name() + `"}`, http.StatusCreated, http.StatusCreated, forbidden, true},
		{"DELETE", "/v1/tokens/a999999", "", http.StatusNotFound, http.StatusNotFound, http.StatusNotFound, false},
		{"GET", "/v1/sharedenv", "", ok, ok, forbidden, false},
		{"GET", "/v1/users", "", ok, ok, forbidden, false},
		{"GET", "/v1/users?limit=1&offset=1&name=adm", "", ok, ok, forbidden, false},
		{"POST", "/v1/users/" + m + "/admin", `{"admin":false}`, ok, ok, forbidden, true},
		// The member has logged in through no method yet: nothing to unlink.
		{"POST", "/v1/users/" + m + "/unlink", "", http.StatusConflict, http.StatusConflict, forbidden, false},
		// A successful delete is in TestDeleteUser: here the user must stay.
		{"DELETE", "/v1/users/hubtest-adm-nobody", "", http.StatusNotFound, http.StatusNotFound, forbidden, false},
		// Shares: the hub under test runs as root; a refused name is 400
		// (the shares package's own tests make real ones).
		{"GET", "/v1/shares", "", ok, ok, forbidden, false},
		{"POST", "/v1/shares", `{"name":"Not A Name"}`, http.StatusBadRequest, http.StatusBadRequest, forbidden, false},
		{"POST", "/v1/shares/" + archive + "/members", `{"add":["` + m + `"]}`, http.StatusBadRequest, http.StatusBadRequest, forbidden, false},
		{"DELETE", "/v1/shares/" + archive, "", http.StatusBadRequest, http.StatusBadRequest, forbidden, false},
		{"POST", "/v1/shares/" + archive + "/check", "", http.StatusBadRequest, http.StatusBadRequest, forbidden, false},
		{"POST", "/v1/shares/" + archive + "/repair", "", http.StatusBadRequest, http.StatusBadRequest, forbidden, false},
		{"GET", "/v1/nope", "", http.StatusNotFound, http.StatusNotFound, http.StatusNotFound, false},
		{"DELETE", "/v1/status", "", http.StatusMethodNotAllowed, http.StatusMethodNotAllowed, http.StatusMethodNotAllowed, false},
	}
	// Every route of the table is covered; {holes} match any segment.
	hole := regexp.MustCompile(`\\\{[a-z]+\\\}`) // as QuoteMeta writes "{user}"
	for _, rt := range admin.Routes() {
		route := regexp.MustCompile("^" + hole.ReplaceAllString(regexp.QuoteMeta(rt), "[^/]+") + "$")
		if !slices.ContainsFunc(cases, func(c permCase) bool { return route.MatchString(c.method + " " + strings.SplitN(c.path, "?", 2)[0]) }) {
			t.Errorf("route %s has no permission case", rt)
		}
	}
	for _, c := range cases {
		for _, who := range []struct {
			id   admin.Identity
			want int
		}{{idRoot, c.root}, {idAdmin, c.admin}, {idMember, c.member}, {idOutsider, forbidden}} {
			t.Run(c.method+" "+c.path+" as "+who.id.Name(), func(t *testing.T) {
				e.srv.ForgetLastRestart() // the rate limit has its own test
				before := len(e.adminEvents(t))
				rec := e.do(who.id, c.method, c.path, c.body)
				if rec.Code != who.want {
					t.Fatalf("status %d, want %d: %s", rec.Code, who.want, rec.Body)
				}
				if rec.Header().Get(wire.VersionHeader) == "" {
					t.Error("no version header")
				}
				if rec.Code >= 400 {
					var body wire.Error
					if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil || body.Error == "" {
						t.Errorf("error body %q is not {\"error\": ...}", rec.Body)
					}
				}
				events := e.adminEvents(t)
				allowed := who.want != forbidden
				switch {
				case c.mutating && allowed:
					if len(events) != before+1 {
						t.Fatalf("%d new audit events, want 1", len(events)-before)
					}
					if ev := events[0]; ev.ActorUID != who.id.UID() || ev.Actor != who.id.Name() {
						t.Errorf("audit event by %s (uid %d), want %s (uid %d)", ev.Actor, ev.ActorUID, who.id.Name(), who.id.UID())
					}
				case len(events) != before:
					t.Errorf("%d audit events for a call that changed nothing", len(events)-before)
				}
			})
		}
	}
}

// TestOutsiderRefusal checks the words an outsider reads.
func TestOutsiderRefusal(t *testing.T) {
	e := newTestEnv(t)
	rec := e.do(idOutsider, "GET", "/v1/whoami", "")
	var body wire.Error
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"access denied", "neither an admin nor a member", "group hubtest-adm-members", "ask an admin"} {
		if !strings.Contains(body.Error, want) {
			t.Errorf("refusal %q lacks %q", body.Error, want)
		}
	}
	// A member asking for an admin action is told why, too.
	rec = e.do(idMember, "GET", "/v1/backups", "")
	if !strings.Contains(rec.Body.String(), "needs an admin") {
		t.Errorf("member refusal: %s", rec.Body)
	}
}

// TestBrowserShapedRefused: any sign of a browser is refused, for every
// role, before the route is even looked at.
func TestBrowserShapedRefused(t *testing.T) {
	e := newTestEnv(t)
	for name, tweak := range map[string]func(*http.Request){
		"origin":       func(r *http.Request) { r.Header.Set("Origin", "http://evil.example") },
		"referer":      func(r *http.Request) { r.Header.Set("Referer", "http://evil.example/x") },
		"fetch-mode":   func(r *http.Request) { r.Header.Set("Sec-Fetch-Mode", "cors") },
		"foreign host": func(r *http.Request) { r.Host = "localhost:8080" },
		"rebound host": func(r *http.Request) { r.Host = "evil.example" },
	} {
		t.Run(name, func(t *testing.T) {
			req, _ := http.NewRequest("POST", "http://"+wire.Host+"/v1/restart", nil)
			tweak(req)
			rec := httptest.NewRecorder()
			e.srv.ServeAs(rec, req, idRoot)
			if rec.Code != http.StatusForbidden || !strings.Contains(rec.Body.String(), "web browser") {
				t.Fatalf("status %d: %s", rec.Code, rec.Body)
			}
			if rec.Header().Get("X-Frame-Options") != "DENY" || rec.Header().Get("Content-Security-Policy") == "" {
				t.Error("missing anti-framing headers")
			}
		})
	}
	if n := len(e.restarts.by); n != 0 {
		t.Fatalf("a browser-shaped request restarted the hub %d times", n)
	}
	// An empty Host (HTTP/1.0 style) is what some clients send: allowed.
	req, _ := http.NewRequest("GET", "http://"+wire.Host+"/v1/whoami", nil)
	req.Host = ""
	rec := httptest.NewRecorder()
	e.srv.ServeAs(rec, req, idRoot)
	if rec.Code != http.StatusOK {
		t.Fatalf("empty Host: %d %s", rec.Code, rec.Body)
	}
}
