package web_test

import (
	"context"
	"errors"
	"maps"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hubd/hubd/core/config"
	"github.com/hubd/hubd/core/hub"
	"github.com/hubd/hubd/core/server"
	"github.com/hubd/hubd/core/spawner"
	"github.com/hubd/hubd/internal/testutil"
)

// profiles: a default, a big one, and one for the hub group "gpu-users"
// only.
func profiles(c *config.Config) {
	c.Spawner.Profiles = []config.Profile{
		{Name: "small", DisplayName: "CPU, 4 GB", Description: "Notebooks and small data", Default: true},
		{Name: "big", DisplayName: "CPU, 64 GB"},
		{Name: "gpu", Description: "For the GPU group", Groups: []string{"gpu-users"}},
	}
}

func TestProfilesThroughTheAPI(t *testing.T) {
	e := newEnv(t, profiles)
	tok := e.token(t, "paula")
	opts := func(name string) map[string]any {
		m := e.api(t, http.MethodGet, "/users/"+name, e.token(t, name), nil).want(t, http.StatusOK).json(t)
		srv, _ := m["servers"].(map[string]any)[""].(map[string]any)
		o, _ := srv["user_options"].(map[string]any)
		return o
	}

	e.api(t, http.MethodPost, "/users/paula/server", tok, map[string]any{"profile": "big"}).want(t, http.StatusCreated)
	if o := opts("paula"); o["profile"] != "big" || len(o) != 1 {
		t.Errorf("user_options %v; want the chosen profile", o)
	}
	e.api(t, http.MethodDelete, "/users/paula/server", tok, nil).want(t, http.StatusNoContent)
	// No body: the default profile, recorded as chosen.
	e.api(t, http.MethodPost, "/users/paula/server", tok, nil).want(t, http.StatusCreated)
	if o := opts("paula"); o["profile"] != "small" {
		t.Errorf("user_options %v; want the default profile", o)
	}
	e.api(t, http.MethodDelete, "/users/paula/server", tok, nil).want(t, http.StatusNoContent)

	for _, c := range []struct {
		body   any
		status int
		want   string
	}{
		{map[string]any{"profile": "nope"}, http.StatusBadRequest, `no profile named \"nope\"; choose one of: small, big`},
		{map[string]any{"profile": "gpu"}, http.StatusForbidden, "not available to you"},
		{map[string]any{"profile": 5}, http.StatusBadRequest, "must be a string"},
		{map[string]any{"profile": nil}, http.StatusBadRequest, "must be a string"},
		{map[string]any{"profile": "small", "image": "evil:latest"}, http.StatusBadRequest, `unknown server option \"image\"`},
		{map[string]any{"__proto__": map[string]any{"admin": true}}, http.StatusBadRequest, "unknown server option"},
		{map[string]any{"profile": "<script>alert(1)</script>"}, http.StatusBadRequest, "no profile named"},
		{map[string]any{"profile": strings.Repeat("x", 5000)}, http.StatusBadRequest, "no profile named"},
		{`["small"]`, http.StatusBadRequest, "one JSON object"},
		{`{"profile": "small"} {"profile": "big"}`, http.StatusBadRequest, "invalid JSON"},
	} {
		r := e.api(t, http.MethodPost, "/users/paula/server", tok, c.body)
		if r.StatusCode != c.status || !strings.Contains(string(r.body), c.want) {
			t.Errorf("start with %v: %d %s; want %d %q", c.body, r.StatusCode, r.body, c.status, c.want)
		}
		if r.Header.Get("Content-Type") != "application/json" {
			t.Errorf("start with %v answered %s", c.body, r.Header.Get("Content-Type"))
		}
	}
	if len(serverProcs("paula")) != 0 {
		t.Error("a refused start started a server")
	}

	// Joining the group opens the profile.
	if err := e.store.CreateGroup(context.Background(), "gpu-users", []string{"paula"}); err != nil {
		t.Fatal(err)
	}
	e.api(t, http.MethodPost, "/users/paula/server", tok, map[string]any{"profile": "gpu"}).want(t, http.StatusCreated)
	if o := opts("paula"); o["profile"] != "gpu" {
		t.Errorf("user_options %v", o)
	}
}

var radio = regexp.MustCompile(`<input type="radio" name="profile" value="([a-z0-9-]+)"( checked)?>`)

func TestSpawnForm(t *testing.T) {
	e := newEnv(t, profiles)
	b := e.browser(t).login(t, "quinn")
	page := b.get(t, "/hub/spawn").want(t, http.StatusOK)
	var offered []string
	checked := ""
	for _, m := range radio.FindAllStringSubmatch(string(page.body), -1) {
		offered = append(offered, m[1])
		if m[2] != "" {
			checked = m[1]
		}
	}
	if strings.Join(offered, ",") != "small,big" || checked != "small" {
		t.Fatalf("the form offers %v with %q checked; want small,big with small (gpu is not quinn's)", offered, checked)
	}
	for _, want := range []string{"CPU, 4 GB", "Notebooks and small data", "CPU, 64 GB"} {
		if !strings.Contains(string(page.body), want) {
			t.Errorf("the form lacks %q", want)
		}
	}
	xsrf := b.cookie("/hub/", "_xsrf")
	r := b.postForm(t, "/hub/spawn", url.Values{"_xsrf": {xsrf}, "profile": {"big"}}).want(t, http.StatusFound)
	if loc := r.Header.Get("Location"); loc != "/hub/spawn-pending/quinn" {
		t.Errorf("after the form: %s", loc)
	}
	testutil.WaitFor(t, "quinn's server runs", func() bool { return e.server(t, "quinn").State == "running" })
	home := b.get(t, "/hub/home").want(t, http.StatusOK)
	if !strings.Contains(string(home.body), "(profile CPU, 64 GB)") {
		t.Errorf("the home page does not name the profile:\n%s", home.body)
	}
	// A profile that is not the user's, posted by hand.
	e.api(t, http.MethodDelete, "/users/quinn/server", e.token(t, "quinn"), nil).want(t, http.StatusNoContent)
	r = b.postForm(t, "/hub/spawn", url.Values{"_xsrf": {xsrf}, "profile": {"gpu"}})
	if r.StatusCode != http.StatusForbidden || !strings.Contains(string(r.body), "not available to you") {
		t.Errorf("the gpu profile by hand: %d %s", r.StatusCode, r.body)
	}
	// With one profile to choose there is no form.
	e2 := newEnv(t, func(c *config.Config) { c.Spawner.Profiles = []config.Profile{{Name: "only"}} })
	b2 := e2.browser(t).login(t, "quinn")
	b2.get(t, "/hub/spawn").want(t, http.StatusFound)
	testutil.WaitFor(t, "the only profile's server runs", func() bool { return e2.server(t, "quinn").State == "running" })
}

// placer stands in for the Slurm spawner: it runs the local spawner's
// server on a port of its own choosing, tells the hub nothing of it, and
// accepts only a report of exactly that address.
type placer struct {
	*spawner.Local
	mu    sync.Mutex
	ports map[string]int // by user
}

func (p *placer) Start(ctx context.Context, r spawner.Request) (spawner.State, error) {
	if r.Port != 0 || r.Env["JUPYTERHUB_SERVICE_URL"] != "" || r.Env[spawner.AddressURLEnv] == "" {
		return spawner.State{}, errors.New("the hub placed a server its spawner places")
	}
	port, err := spawner.FreePort()
	if err != nil {
		return spawner.State{}, err
	}
	p.mu.Lock()
	p.ports[r.User] = port
	p.mu.Unlock()
	env := maps.Clone(r.Env)
	env["JUPYTERHUB_SERVICE_URL"] = "http://127.0.0.1:" + strconv.Itoa(port) + env["JUPYTERHUB_SERVICE_PREFIX"]
	r.Env, r.Host, r.Port = env, "127.0.0.1", port
	st, err := p.Local.Start(ctx, r)
	st.Kind, st.Host, st.Port, st.JobID = spawner.KindSlurm, "", 0, "1"
	return st, err
}

func (p *placer) Place(ctx context.Context, user string, st spawner.State, reports <-chan spawner.AddressReport, progress func(string)) (spawner.State, error) {
	progress("Job 1 is queued")
	p.mu.Lock()
	port := p.ports[user]
	p.mu.Unlock()
	for {
		select {
		case <-ctx.Done():
			return st, ctx.Err()
		case rep := <-reports:
			if rep.Host != "127.0.0.1" || rep.Port != port {
				rep.Reply <- errors.New("not where the job runs")
				continue
			}
			rep.Reply <- nil
			st.Host, st.Port = rep.Host, rep.Port
			return st, nil
		}
	}
}

func (p *placer) local(st spawner.State) spawner.State {
	st.Kind, st.JobID = spawner.KindLocal, ""
	return st
}

func (p *placer) Poll(ctx context.Context, user string, st spawner.State) (spawner.Status, error) {
	return p.Local.Poll(ctx, user, p.local(st))
}

func (p *placer) Stop(ctx context.Context, user string, st spawner.State, timeout time.Duration) error {
	return p.Local.Stop(ctx, user, p.local(st), timeout)
}

// A server whose spawner places it reports its address with its own token
// while the start waits; nobody else may, and a wrong address is refused.
func TestAddressReport(t *testing.T) {
	local := spawner.NewLocal(spawner.LocalOptions{})
	sp := &placer{Local: local, ports: map[string]int{}}
	e := newEnvWith(t, server.Options{Password: fakeAuth{}, Accounts: fakeAccounts{},
		Spawners: map[string]spawner.Spawner{spawner.KindLocal: local, spawner.KindSlurm: sp}},
		func(c *config.Config) {
			c.Spawner.Profiles = []config.Profile{{Name: "here", Default: true}, {Name: "cluster", Kind: spawner.KindSlurm}}
		})
	tok := e.token(t, "rita")
	report := func(tok string, host string, port int) reply {
		return do(t, testutil.NewClient(t), http.MethodPost, e.internal+"/hub/api/users/rita/server/address",
			strings.NewReader(`{"ip": "`+host+`", "port": `+strconv.Itoa(port)+`}`), "Content-Type", "application/json", "Authorization", "token "+tok)
	}

	started := make(chan reply, 1)
	go func() {
		started <- e.api(t, http.MethodPost, "/users/rita/server", tok, map[string]any{"profile": "cluster"})
	}()
	testutil.WaitFor(t, "rita's server process", func() bool { return len(serverProcs("rita")) == 1 })
	srvTok := serverToken(t, "rita")
	sp.mu.Lock()
	port := sp.ports["rita"]
	sp.mu.Unlock()

	if r := report(tok, "127.0.0.1", port); r.StatusCode != http.StatusForbidden {
		t.Errorf("a report with the user's own API token: %d %s; want 403", r.StatusCode, r.body)
	}
	if r := report(e.token(t, "admin-ann"), "127.0.0.1", port); r.StatusCode != http.StatusForbidden {
		t.Errorf("a report with an admin's token: %d %s; want 403", r.StatusCode, r.body)
	}
	for _, bad := range []struct {
		host string
		port int
	}{{"127.0.0.2", port}, {"127.0.0.1", 0}, {"127.0.0.1/evil", port}, {"", port}} {
		if r := report(srvTok, bad.host, bad.port); r.StatusCode != http.StatusBadRequest {
			t.Errorf("report %q:%d: %d %s; want 400", bad.host, bad.port, r.StatusCode, r.body)
		}
	}
	report(srvTok, "127.0.0.1", port).want(t, http.StatusNoContent)
	if r := <-started; r.StatusCode != http.StatusCreated {
		t.Fatalf("start: %d %s", r.StatusCode, r.body)
	}
	r := do(t, testutil.NewClient(t), http.MethodGet, e.url+"/user/rita/api", nil).want(t, http.StatusOK)
	if string(r.body) != "mock rita: /user/rita/api" {
		t.Errorf("through the proxy: %s", r.body)
	}
	if st := hub.StateOf(e.server(t, "rita")); st.Port != port || st.Host != "127.0.0.1" || st.Kind != spawner.KindSlurm {
		t.Errorf("recorded state %+v", st)
	}
	// Once placed, the server has nothing more to report.
	if r := report(srvTok, "127.0.0.1", port); r.StatusCode != http.StatusConflict {
		t.Errorf("a report after the start: %d %s; want 409", r.StatusCode, r.body)
	}
	events := e.events(t, "rita", tok)
	if !strings.Contains(events[len(events)-1].Message, "ready") {
		t.Errorf("events %+v", events)
	}
}
