package faults

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/hubd/hubd/core/admin/client"
	"github.com/hubd/hubd/core/config"
	"github.com/hubd/hubd/core/server"
	"github.com/hubd/hubd/core/spawner"
	"github.com/hubd/hubd/core/store"
	"github.com/hubd/hubd/internal/testutil"
)

// Item 8: hostile user names typed into the login form, checked by the
// real PAM authenticator of the hub (the PAM service does not exist, so
// PAM itself refuses whatever gets that far): each gets the same refusal,
// no session, and the hub's log stays one bounded line per event.
func TestLoginNamesThroughRealAuth(t *testing.T) {
	testutil.NeedRoot(t) // PAM reads /etc/shadow
	cfg := hubConfig(t)
	cfg.Auth.PAMService = "hubtest-faults-nosuch"
	cfg.Auth.FailuresPerAddress = 1000
	cfg.Auth.FailuresPerUser = 1000
	h := runHub(t, cfg, hubOptions{pam: true})
	for _, name := range []string{"", "/", " hubtest-nosuch ", "HUBTEST-NOSUCH", "a\x00b", "a\nlevel=ERROR msg=forged", "\x1b[31mred",
		"..", "-x", "--help", "аlice", `DOMAIN\user`, "root", "daemon", strings.Repeat("n", 100<<10), strings.Repeat("m", 2<<20)} {
		b := h.browser(t)
		r := b.login(t, name, "wrong-password")
		if r.StatusCode != http.StatusForbidden && r.StatusCode != http.StatusBadRequest {
			t.Errorf("name %.20q: status %d", name, r.StatusCode)
		}
		if b.cookie("/hub/", "jupyterhub-hub-login") != "" {
			t.Errorf("name %.20q: logged in", name)
		}
		if len(r.body) > 64<<10 || bytes.Contains(r.body, []byte("\x1b")) || bytes.Contains(r.body, []byte(strings.Repeat("n", 1000))) {
			t.Errorf("name %.20q: the page echoes it raw (%d bytes)", name, len(r.body))
		}
	}
	for _, line := range strings.Split(strings.TrimSpace(h.logs.String()), "\n") {
		if !strings.HasPrefix(line, "time=") || len(line) > 4096 || strings.Contains(line, "\x1b") {
			t.Errorf("log line not one bounded, clean event: %.120q", line)
		}
	}
}

// Items 6 and 29: token expiry and login cookies follow the wall clock,
// which may jump: back a day, everything issued stays valid; forward past
// a token's expiry, the token is refused; past the cookie's age, the
// login is. Starting a server is not timed out by a jump (timeouts use
// the monotonic clock).
func TestClockJumps(t *testing.T) {
	var skew atomic.Int64
	now := func() time.Time { return time.Now().Add(time.Duration(skew.Load())) }
	h := startHub(t, hubOptions{now: now})
	b := h.browser(t)
	b.login(t, "alice", "pw-alice").want(t, http.StatusFound)
	var tok struct {
		Token string `json:"token"`
	}
	h.api(t, http.MethodPost, "/users/alice/tokens", h.token(t, "alice"), map[string]any{"expires_in": 3600}).want(t, http.StatusCreated).json(t, &tok)
	check := func(when string, tokenOK, cookieOK bool) {
		t.Helper()
		want := map[bool]int{true: http.StatusOK, false: http.StatusForbidden}[tokenOK]
		if r := h.api(t, http.MethodGet, "/user", tok.Token, nil); r.StatusCode != want {
			t.Errorf("%s: token answer %d, want %d", when, r.StatusCode, want)
		}
		if got := b.get(t, "/hub/home").StatusCode == http.StatusOK; got != cookieOK {
			t.Errorf("%s: login cookie accepted %v, want %v", when, got, cookieOK)
		}
	}
	check("now", true, true)
	skew.Store(int64(-24 * time.Hour))
	check("a day back", true, true)
	h.start(t, "alice") // the start's timeouts do not care
	skew.Store(int64(2 * time.Hour))
	check("two hours on", false, true)
	skew.Store(int64(15 * 24 * time.Hour))
	check("fifteen days on", false, false)
}

// Item 7: admin scopes limited to a group create neither users nor
// groups and make nobody an admin; a member can neither change groups nor
// find a roles API; named servers cannot be renamed, and stopped ones
// count against the limit until they are deleted.
func TestNoEscalationPaths(t *testing.T) {
	h := startHub(t, hubOptions{}, func(c *config.Config) {
		c.Spawner.NamedServers = true
		c.Spawner.NamedServerLimitPerUser = 1
	})
	admin := h.token(t, "admin")
	h.user(t, "bob")
	h.api(t, http.MethodPost, "/groups/staff", admin, nil).want(t, http.StatusCreated)
	h.api(t, http.MethodPost, "/groups/staff/users", admin, map[string]any{"users": []string{"bob"}}).want(t, http.StatusOK)
	var tok struct {
		Token string `json:"token"`
	}
	h.api(t, http.MethodPost, "/users/admin/tokens", admin, map[string]any{"scopes": []string{"admin:users!group=staff", "admin:groups!group=staff"}}).
		want(t, http.StatusCreated).json(t, &tok)
	h.api(t, http.MethodPost, "/users", tok.Token, map[string]any{"usernames": []string{"mallory"}}).want(t, http.StatusForbidden)
	h.api(t, http.MethodPost, "/users/mallory", tok.Token, nil).want(t, http.StatusForbidden)
	h.api(t, http.MethodPost, "/groups/newgroup", tok.Token, nil).want(t, http.StatusForbidden)
	h.api(t, http.MethodPatch, "/users/bob", tok.Token, map[string]any{"admin": true}).want(t, http.StatusForbidden)

	bob := h.token(t, "bob")
	for _, c := range []struct{ method, path string }{
		{http.MethodPost, "/groups/staff/users"}, {http.MethodDelete, "/groups/staff/users"}, {http.MethodPost, "/groups/mine"},
		{http.MethodPut, "/groups/staff/properties"}, {http.MethodGet, "/roles"}, {http.MethodPost, "/roles"},
		{http.MethodPatch, "/users/bob/servers/one"},
	} {
		if r := h.api(t, c.method, c.path, bob, `{"users": ["bob"]}`); r.StatusCode < 400 {
			t.Errorf("%s %s as a member: status %d", c.method, c.path, r.StatusCode)
		}
	}
	h.api(t, http.MethodPost, "/users/bob/servers/one", bob, nil).want(t, http.StatusCreated, http.StatusAccepted)
	h.api(t, http.MethodDelete, "/users/bob/servers/one", bob, nil).want(t, http.StatusNoContent, http.StatusAccepted)
	h.api(t, http.MethodPost, "/users/bob/servers/two", bob, nil).want(t, http.StatusBadRequest)
	if u := h.user(t, "bob"); u.Admin {
		t.Error("bob became an admin")
	}
	if _, err := h.srv.Store().UserByName(context.Background(), "mallory"); err == nil {
		t.Error("mallory was created")
	}
}

// Item 11 (and 4): cookies are host-only (no Domain, whatever Host the
// request names), HttpOnly for the login, Secure only over HTTPS; an
// _xsrf cookie tossed into a browser (another session's token, in cookie
// and header alike) does not authorise a change.
func TestCookieScopingAndTossing(t *testing.T) {
	h := startHub(t, hubOptions{}, func(c *config.Config) { c.Hub.TrustForwardedHeaders = true })
	h.start(t, "alice")
	for _, host := range []string{"hub.example.org", "evil.hub.example.org"} {
		b := h.browser(t)
		page := b.get(t, "/hub/login", "Host", host).want(t, http.StatusOK)
		m, x := formAction.FindSubmatch(page.body), xsrfField.FindSubmatch(page.body)
		if m == nil || x == nil {
			t.Fatalf("no login form:\n%s", page.body)
		}
		form := url.Values{"username": {"alice"}, "password": {"pw-alice"}, "_xsrf": {string(x[1])}}
		r := do(t, b.c, http.MethodPost, h.url+strings.ReplaceAll(string(m[1]), "&amp;", "&"), strings.NewReader(form.Encode()),
			"Content-Type", "application/x-www-form-urlencoded", "Host", host, "X-Forwarded-Proto", "https").want(t, http.StatusFound)
		for _, c := range r.Cookies() {
			if c.Domain != "" || c.SameSite != http.SameSiteLaxMode || !c.Secure || (c.Name == "jupyterhub-hub-login" && !c.HttpOnly) {
				t.Errorf("Host %s: cookie %s: %s", host, c.Name, c.String())
			}
		}
	}
	plain := h.browser(t)
	r := plain.login(t, "alice", "pw-alice").want(t, http.StatusFound)
	for _, c := range r.Cookies() {
		if c.Secure {
			t.Errorf("cookie %s is Secure over plain HTTP: browsers would drop it", c.Name)
		}
	}

	// The attacker's own login gives a valid _xsrf token for the
	// attacker's session; tossed into alice's browser, cookie and header
	// agree, yet it is bound to the wrong session.
	attacker := h.browser(t)
	attacker.login(t, "mallory", "pw-mallory").want(t, http.StatusFound)
	tossed := attacker.cookie("/hub/", "_xsrf")
	victim := h.browser(t)
	victim.login(t, "alice", "pw-alice").want(t, http.StatusFound)
	u, _ := url.Parse(h.url + "/hub/")
	victim.c.Jar.SetCookies(u, []*http.Cookie{{Name: "_xsrf", Value: tossed, Path: "/hub/"}})
	do(t, victim.c, http.MethodDelete, h.url+"/hub/api/users/alice/server", nil, "X-XSRFToken", tossed).want(t, http.StatusForbidden)
	// A forged login cookie is no login at all.
	forged := h.browser(t)
	forged.c.Jar.SetCookies(u, []*http.Cookie{{Name: "jupyterhub-hub-login", Value: "abc|9999999999|forged", Path: "/hub/"}})
	if loc := forged.get(t, "/hub/home").want(t, http.StatusFound).Header.Get("Location"); !strings.HasPrefix(loc, "/hub/login") {
		t.Errorf("forged login cookie: redirect to %q", loc)
	}
	if s := h.api(t, http.MethodGet, "/users/alice", h.token(t, "alice"), nil); !strings.Contains(string(s.body), `"ready":true`) {
		t.Errorf("a refused change stopped alice's server: %s", s.body)
	}
}

var xsrfField = regexp.MustCompile(`name="_xsrf" value="([^"]*)"`)

// Item 23: a server's environment is built from scratch. Nothing a
// request body says (options other than a profile are refused) and
// nothing in the hub's own environment
// (PYTHONPATH, LD_PRELOAD, BASH_ENV) reaches it; PATH is the configured
// one.
func TestServerEnvironmentIsBuilt(t *testing.T) {
	t.Setenv("PYTHONPATH", "/tmp/hubtest-evil")
	t.Setenv("BASH_ENV", "/tmp/hubtest-evil.sh")
	h := startHub(t, hubOptions{})
	// Options other than a profile are refused, and start nothing.
	r := h.api(t, http.MethodPost, "/users/alice/server", h.token(t, "alice"),
		map[string]any{"env": map[string]string{"LD_PRELOAD": "/tmp/hubtest-evil.so", "PYTHONPATH": "/tmp/hubtest-evil"},
			"environment": map[string]string{"PATH": "/tmp"}}).want(t, http.StatusBadRequest)
	if !strings.Contains(string(r.body), "unknown server option") || len(serverProcs("alice")) != 0 {
		t.Errorf("a start with hostile options: %s (servers %v)", r.body, serverProcs("alice"))
	}
	h.api(t, http.MethodPost, "/users/alice/server", h.token(t, "alice"), nil).want(t, http.StatusCreated)
	pids := serverProcs("alice")
	if len(pids) != 1 {
		t.Fatalf("alice's server processes: %v", pids)
	}
	for k, v := range testutil.Environ(pids[0]) {
		switch {
		case k == "PYTHONPATH" || k == "LD_PRELOAD" || k == "BASH_ENV" || strings.Contains(v, "hubtest-evil"):
			t.Errorf("the server got %s=%s", k, v)
		case k == "PATH" && v != h.cfg.Spawner.Path:
			t.Errorf("PATH %q, want the configured %q", v, h.cfg.Spawner.Path)
		}
	}
}

// Item 20: a server that ignores SIGTERM is killed after
// spawner.stop_timeout, and the stop still answers 204.
func TestStubbornServerIsKilled(t *testing.T) {
	h := startHub(t, hubOptions{}, func(c *config.Config) { c.Spawner.StopTimeout = config.Duration(time.Second) })
	h.start(t, "stubborn")
	if len(serverProcs("stubborn")) != 1 {
		t.Fatal("no server process")
	}
	h.api(t, http.MethodDelete, "/users/stubborn/server", h.token(t, "stubborn"), nil).want(t, http.StatusNoContent)
	if left := serverProcs("stubborn"); len(left) != 0 {
		t.Errorf("the server that ignored SIGTERM still runs: %v", left)
	}
}

// hungSpawner stands in for a spawner whose start never comes back (a
// D-Bus call or a helper that hangs): Start waits for its context.
type hungSpawner struct{ spawner.Spawner }

func (hungSpawner) Start(ctx context.Context, _ spawner.Request) (spawner.State, error) {
	<-ctx.Done()
	return spawner.State{}, ctx.Err()
}

// Item 20: a start that never finishes ends at spawner.start_timeout as a
// failed server with the reason, no route and no start left pending; the
// user can start again.
func TestStartTimeout(t *testing.T) {
	h := startHub(t, hubOptions{spawners: map[string]spawner.Spawner{spawner.KindLocal: hungSpawner{spawner.NewLocal(spawner.LocalOptions{})}}},
		func(c *config.Config) { c.Spawner.StartTimeout = config.Duration(time.Second) })
	tok := h.token(t, "alice")
	r := h.api(t, http.MethodPost, "/users/alice/server", tok, nil)
	if r.StatusCode < 400 {
		t.Fatalf("a start that never finished: %d %s", r.StatusCode, r.body)
	}
	ctx := context.Background()
	srv, err := h.srv.Store().Server(ctx, h.user(t, "alice").ID, "")
	if err != nil || srv.State != store.StateFailed || !strings.Contains(srv.StopReason, "start_timeout") {
		t.Errorf("after the start timed out: %s %q %v", srv.State, srv.StopReason, err)
	}
	if h.srv.Hub().Pending("alice", "") != nil {
		t.Error("the start is still pending")
	}
	if r := do(t, testutil.NewClient(t), http.MethodGet, h.url+"/user/alice/api/x", nil); r.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("route after a timed-out start: %d", r.StatusCode)
	}
	t.Logf("answer: %d %s; recorded: %q", r.StatusCode, r.body, srv.StopReason)
}

// Item 21: JSON bodies are bounded in what they may ask for, and a
// repeated key counts once (the last, as JSON decoders agree).
func TestJSONBodiesThroughHub(t *testing.T) {
	h := startHub(t, hubOptions{})
	admin := h.token(t, "admin")
	h.user(t, "bob")
	many := make([]string, 10000)
	for i := range many {
		many[i] = fmt.Sprintf("u%d", i)
	}
	h.api(t, http.MethodPost, "/users", admin, map[string]any{"usernames": many}).want(t, http.StatusBadRequest)
	if n, _ := h.srv.Store().CountUsers(context.Background()); n != 2 {
		t.Errorf("a refused list created users: %d now", n)
	}
	h.api(t, http.MethodPatch, "/users/bob", admin, `{"admin": true, "admin": false}`).want(t, http.StatusOK)
	if h.user(t, "bob").Admin {
		t.Error("the first of two admin keys won")
	}
	for _, body := range []string{"{\"usernames\": [\"\xff\"]}", `{"usernames": "carol"}`, `{"usernames": [["carol"]]}`, `{"usernames": null, "x": 1}`} {
		h.api(t, http.MethodPost, "/users", admin, body).want(t, http.StatusBadRequest)
	}
}

// Item 25: tokens and sessions are stored as hashes only; the database and
// the cookie secret are the hub's alone; a cookie secret others can read
// stops the hub from starting.
func TestSecretsAtRest(t *testing.T) {
	h := newChildHub(t)
	p := h.start(t)
	c := &http.Client{Timeout: 30 * time.Second}
	if code, _, err := h.call(c, http.MethodPost, "/users/alice", "", ""); err != nil || code != http.StatusCreated {
		t.Fatalf("create alice: %d %v", code, err)
	}
	code, body, err := h.call(c, http.MethodPost, "/users/alice/tokens", "", `{"note": "secret test"}`)
	var tok struct {
		Token string `json:"token"`
	}
	if err != nil || code != http.StatusCreated || json.Unmarshal(body, &tok) != nil || tok.Token == "" {
		t.Fatalf("create token: %d %s %v", code, body, err)
	}
	p.stop(t)
	db := h.cfg.Data.DB
	for _, f := range []string{db, db + "-wal"} {
		b, err := os.ReadFile(f)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		for _, secret := range []string{tok.Token, h.token} {
			if bytes.Contains(b, []byte(secret)) {
				t.Errorf("%s holds a token in plain text", f)
			}
		}
	}
	for _, f := range []string{db, h.cfg.Data.CookieSecretFile} {
		if fi, err := os.Stat(f); err != nil || fi.Mode().Perm()&0o077 != 0 {
			t.Errorf("%s: mode %v (%v), want no access for group or others", f, fi.Mode(), err)
		}
	}
	if err := os.Chmod(h.cfg.Data.CookieSecretFile, 0o644); err != nil {
		t.Fatal(err)
	}
	hubd, _ := binaries(t)
	out, err := exec.Command(hubd, "serve", "--config", h.cfgPath).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "chmod 600") {
		t.Errorf("serve with a readable cookie secret: %v\n%s", err, out)
	}
}

// Item 27: a write blocked by another process's write transaction waits
// the busy timeout, then gets 503 with Retry-After (never a hang, never
// a 500), and the hub works again once the lock is gone.
func TestDatabaseLockedIs503(t *testing.T) {
	h := startHub(t, hubOptions{})
	admin := h.token(t, "admin")
	lock, err := testutil.RawDB(t, h.cfg.Data.DB).BeginTx(context.Background(), nil) // BEGIN IMMEDIATE
	if err != nil {
		t.Fatal(err)
	}
	r := h.api(t, http.MethodPost, "/users/carol", admin, nil)
	if r.StatusCode != http.StatusServiceUnavailable || r.Header.Get("Retry-After") == "" {
		t.Errorf("a write under an external lock: %d (Retry-After %q): %s", r.StatusCode, r.Header.Get("Retry-After"), r.body)
	}
	if err := lock.Rollback(); err != nil {
		t.Fatal(err)
	}
	h.api(t, http.MethodPost, "/users/carol", admin, nil).want(t, http.StatusCreated)
}

// Item 27: a full file system fails writes with a 5xx, the hub stays up,
// and once there is room again it works and the database is sound.
func TestDiskFull(t *testing.T) {
	testutil.NeedRoot(t)
	dir := filepath.Join(t.TempDir(), "tiny")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=4m,mode=0700", "hubtest-faults", dir).CombinedOutput(); err != nil {
		t.Fatalf("mount a tiny tmpfs: %v %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("umount", "-l", dir).Run() })
	cfg := hubConfig(t)
	cfg.Data.DB = filepath.Join(dir, "hubd.sqlite")
	h := runHub(t, cfg, hubOptions{})
	admin := h.token(t, "admin")
	filler := filepath.Join(dir, "filler")
	f, err := os.Create(filler)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(f, io.LimitReader(zeros{}, 8<<20)) // until the file system is full
	f.Close()
	failed := 0
	for i := 0; i < 2000 && failed == 0; i++ {
		r := h.api(t, http.MethodPost, "/users", admin, map[string]any{"usernames": []string{fmt.Sprintf("u%d-%s", i, strings.Repeat("x", 20))}})
		switch {
		case r.StatusCode >= 500:
			failed = r.StatusCode
		case r.StatusCode != http.StatusCreated:
			t.Fatalf("create: %d %s", r.StatusCode, r.body)
		}
	}
	if failed == 0 {
		t.Fatal("the file system never filled up")
	}
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	h.api(t, http.MethodPost, "/users/zed", admin, nil).want(t, http.StatusCreated)
	h.api(t, http.MethodGet, "/users/zed", admin, nil).want(t, http.StatusOK)
	h.shutdown(t)
	if res := integrityCheck(t, cfg.Data.DB); res != "ok" {
		t.Errorf("integrity_check after the disk filled up: %s", res)
	}
}

type zeros struct{}

func (zeros) Read(b []byte) (int, error) {
	clear(b)
	return len(b), nil
}

// Item 27: a database whose header is damaged is refused at start and
// left exactly as it was.
func TestDamagedDatabaseRefused(t *testing.T) {
	h := startHub(t, hubOptions{})
	h.user(t, "alice")
	h.shutdown(t)
	f, err := os.OpenFile(h.cfg.Data.DB, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte("this is not sqlite"), 0); err != nil {
		t.Fatal(err)
	}
	f.Close()
	before, _ := os.ReadFile(h.cfg.Data.DB)
	srv, err := server.New(context.Background(), server.Options{Config: h.cfg, Password: fakeAuth{}, Accounts: fakeAccounts{}})
	if err == nil {
		srv.Close()
		t.Fatal("a hub started on a damaged database")
	}
	after, _ := os.ReadFile(h.cfg.Data.DB)
	if !bytes.Equal(before, after) {
		t.Error("the refused start changed the damaged database")
	}
	t.Logf("refusal: %v", err)
}

// Item 30: a hub started while servers run re-attaches the live ones
// (routes rebuilt from the database), records the dead ones, and never
// signals a process whose pid no longer belongs to the server (pid
// reuse: same pid, another start time).
func TestRestartReattaches(t *testing.T) {
	first := startHub(t, hubOptions{})
	for _, u := range []string{"alice", "bob", "carol"} {
		first.start(t, u)
	}
	first.shutdown(t)
	bob, carol := serverProcs("bob"), serverProcs("carol")
	if len(bob) != 1 || len(carol) != 1 {
		t.Fatalf("server processes after the hub stopped: bob %v carol %v", bob, carol)
	}
	t.Cleanup(func() { _ = syscall.Kill(carol[0], syscall.SIGKILL) })
	if err := syscall.Kill(bob[0], syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, "bob's server to die", func() bool { return len(serverProcs("bob")) == 0 })
	// carol's recorded process now "belongs to someone else".
	raw := testutil.RawDB(t, first.cfg.Data.DB)
	var state string
	if err := raw.QueryRow(`SELECT spawner_state FROM servers s JOIN users u ON u.id = s.user_id WHERE u.name = 'carol'`).Scan(&state); err != nil {
		t.Fatal(err)
	}
	var st spawner.State
	if err := json.Unmarshal([]byte(state), &st); err != nil {
		t.Fatal(err)
	}
	st.PIDStart++
	b, _ := json.Marshal(st)
	if _, err := raw.Exec(`UPDATE servers SET spawner_state = ? WHERE user_id = (SELECT id FROM users WHERE name = 'carol')`, string(b)); err != nil {
		t.Fatal(err)
	}
	raw.Close()

	second := runHub(t, first.cfg, hubOptions{})
	if r := do(t, testutil.NewClient(t), http.MethodGet, second.url+"/user/alice/x", nil).want(t, http.StatusOK); seenBy(t, r).User != "alice" {
		t.Errorf("alice's route after the restart: %s", r.body)
	}
	ctx := context.Background()
	for _, u := range []string{"bob", "carol"} {
		srv, err := second.srv.Store().Server(ctx, second.user(t, u).ID, "")
		if err != nil || srv.State != store.StateFailed {
			t.Errorf("%s's server after the restart: %s %q %v", u, srv.State, srv.StopReason, err)
		}
		if r := do(t, testutil.NewClient(t), http.MethodGet, second.url+"/user/"+u+"/api/x", nil); r.StatusCode != http.StatusServiceUnavailable {
			t.Errorf("%s's route after the restart: %d", u, r.StatusCode)
		}
	}
	if len(serverProcs("carol")) != 1 {
		t.Error("the process at carol's recorded pid was signalled, though its start time differs")
	}
}

// Item 31: walking the paginated user list while users are being created
// sees every user that existed before the walk exactly once.
func TestPaginationWhileCreating(t *testing.T) {
	h := startHub(t, hubOptions{})
	admin := h.token(t, "admin")
	before := map[string]bool{"admin": true}
	for i := range 300 {
		name := fmt.Sprintf("b%03d", i)
		h.user(t, name)
		before[name] = true
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		c := &http.Client{Timeout: 30 * time.Second}
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			for _, name := range []string{fmt.Sprintf("a%04d", i), fmt.Sprintf("z%04d", i)} {
				req, _ := http.NewRequest(http.MethodPost, h.url+"/hub/api/users/"+name, nil)
				req.Header.Set("Authorization", "token "+admin)
				if resp, err := c.Do(req); err == nil {
					resp.Body.Close()
				}
			}
		}
	})
	seen := map[string]int{}
	next := "/users?limit=20"
	for next != "" {
		var page struct {
			Items []struct {
				Name string `json:"name"`
			} `json:"items"`
			Pagination struct {
				Next *struct {
					URL string `json:"url"`
				} `json:"next"`
			} `json:"_pagination"`
		}
		h.api(t, http.MethodGet, next, admin, nil, "Accept", "application/jupyterhub-pagination+json").want(t, http.StatusOK).json(t, &page)
		for _, it := range page.Items {
			seen[it.Name]++
		}
		next = ""
		if page.Pagination.Next != nil {
			u, err := url.Parse(page.Pagination.Next.URL)
			if err != nil {
				t.Fatal(err)
			}
			next = "/users?" + u.RawQuery
		}
	}
	close(stop)
	wg.Wait()
	for name := range before {
		if seen[name] != 1 {
			t.Errorf("user %s seen %d times", name, seen[name])
		}
	}
	for name, n := range seen {
		if n > 1 {
			t.Errorf("user %s seen %d times", name, n)
		}
	}
}

// Item 26: a hundred admin-socket connections sending garbage, huge lines,
// half requests or nothing, and status calls, while the public API keeps
// answering; afterwards the socket works as before.
func TestAdminFloodKeepsHTTPServing(t *testing.T) {
	h := startHub(t, hubOptions{})
	tok := h.token(t, "alice")
	sock := h.cfg.Admin.Socket
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	for i := range 100 {
		wg.Go(func() {
			c := &client.Client{Socket: sock}
			for ctx.Err() == nil {
				switch i % 4 {
				case 0:
					_, _ = c.Status(ctx)
				default:
					conn, err := net.Dial("unix", sock)
					if err != nil {
						continue
					}
					switch i % 4 {
					case 1:
						_, _ = conn.Write(bytes.Repeat([]byte{0xff, 0x00, '\n'}, 4096))
					case 2:
						_, _ = conn.Write([]byte("GET /v1/status?" + strings.Repeat("a", 1<<20)))
					case 3:
						_, _ = conn.Write([]byte("POST /v1/sessions/stop HTTP/1.1\r\nHost: hubd.sock\r\nContent-Length: 100\r\n\r\n{"))
					}
					_ = conn.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
					_, _ = io.Copy(io.Discard, conn)
					conn.Close()
				}
			}
		})
	}
	for range 50 {
		h.api(t, http.MethodGet, "/users/alice", tok, nil).want(t, http.StatusOK)
	}
	cancel()
	wg.Wait()
	if _, err := (&client.Client{Socket: sock}).Status(context.Background()); err != nil {
		t.Errorf("the admin socket after the flood: %v", err)
	}
}

// Item 17: thousands of half-open connections sending their headers slowly
// are cut at proxy.read_header_timeout, and the hub answers others
// meanwhile.
func TestSlowHeadersAreCut(t *testing.T) {
	h := startHub(t, hubOptions{}, func(c *config.Config) { c.Proxy.ReadHeaderTimeout = config.Duration(2 * time.Second) })
	tok := h.token(t, "alice")
	var closed atomic.Int64
	var conns []net.Conn
	t.Cleanup(func() {
		for _, c := range conns {
			c.Close()
		}
	})
	for i := range 3000 {
		addr := strings.TrimPrefix(h.url, "http://")
		if i%5 == 0 {
			addr = strings.TrimPrefix(h.internal, "http://")
		}
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
		conns = append(conns, c)
		if _, err := io.WriteString(c, "GET /hub/api HTTP/1.1\r\nHost: hub\r\nX-Slow: "); err != nil {
			t.Fatal(err)
		}
		go func() {
			_ = c.SetReadDeadline(time.Now().Add(60 * time.Second))
			_, _ = io.Copy(io.Discard, c) // ends when the hub closes it
			closed.Add(1)
		}()
	}
	h.api(t, http.MethodGet, "/users/alice", tok, nil).want(t, http.StatusOK)
	testutil.WaitFor(t, "the hub to cut the slow connections", func() bool { return closed.Load() == int64(len(conns)) })
}

// Item 17: at its open-file limit the hub keeps running and recovers once
// files are free again (a hubd process under prlimit --nofile).
func TestFileLimitRecovers(t *testing.T) {
	h := newChildHub(t, func(c *config.Config) { c.Proxy.ReadHeaderTimeout = config.Duration(time.Minute) })
	p := h.start(t, "prlimit", "--nofile=96:96", "--")
	c := &http.Client{Timeout: 60 * time.Second}
	if code, _, err := h.call(c, http.MethodPost, "/users/u1", "", ""); err != nil || code != http.StatusCreated {
		t.Fatalf("create u1: %d %v", code, err)
	}
	startServer(t, h, c, "u1")
	var hold []net.Conn
	for range 150 {
		conn, err := net.Dial("tcp", strings.TrimPrefix(h.public, "http://"))
		if err != nil {
			break
		}
		_, _ = io.WriteString(conn, "GET /hub/api HTTP/1.1\r\n")
		hold = append(hold, conn)
	}
	testutil.WaitFor(t, "the hub to reach its file limit", func() bool { return fds(p.pid()) >= 94 })
	done := make(chan int, 1)
	go func() {
		resp, err := c.Get(h.public + "/user/u1/x")
		if err != nil {
			done <- 0
			return
		}
		resp.Body.Close()
		done <- resp.StatusCode
	}()
	if err := syscall.Kill(p.pid(), 0); err != nil {
		t.Fatalf("the hub died at its file limit: %v", err)
	}
	for _, conn := range hold {
		conn.Close()
	}
	if code := <-done; code != http.StatusOK && code != http.StatusServiceUnavailable {
		t.Errorf("a request made at the limit: %d, want it answered (200, or 503 if the proxy could not dial)", code)
	}
	testutil.WaitFor(t, "the hub to serve again", func() bool {
		resp, err := c.Get(h.public + "/user/u1/x")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	logs, _ := os.ReadFile(h.logs.Name())
	if !bytes.Contains(logs, []byte("too many open files")) {
		t.Error("the hub never hit its file limit (no EMFILE in its log)")
	}
	if code, _, err := h.call(c, http.MethodDelete, "/users/u1/server", "", ""); err != nil || code != http.StatusNoContent {
		t.Errorf("stop u1: %d %v", code, err)
	}
	p.stop(t)
}
