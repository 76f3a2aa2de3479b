package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"time"
)

// hubArm is a started hub of either kind, for the startup and API runs.
type hubArm struct {
	name   string
	start  func() (*proc, time.Duration, error)
	api    func() *apiClient
	rssKB  func(p *proc) float64
	restor func() error
	stop   func(*proc)
}

// benchStartupAPI is P8 (startup time and RSS with 10k users and 1k
// recorded servers, half dead; then 50k users) and P6 (API latency on the
// 10k-user hub), alternating hubd and JupyterHub + CHP.
func benchStartupAPI(ctx context.Context, o *opts, r *report) error {
	bp, bport, err := backend(o, "backend-startup")
	if err != nil {
		return err
	}
	dead, err := deadPID()
	if err != nil {
		return err
	}
	s10 := seed{users: 10000, servers: 1000, livePID: bp.pid(), port: bport, deadPID: dead}
	s50 := seed{users: 50000, livePID: bp.pid(), port: bport}
	mk := func(tag string, s seed) (hubArm, hubArm, error) {
		h, err := newHubd(o, filepath.Join(o.work, "hubd-"+tag))
		if err != nil {
			return hubArm{}, hubArm{}, err
		}
		if err := h.seedDB(ctx, s); err != nil {
			return hubArm{}, hubArm{}, err
		}
		if err := h.saveDB(); err != nil {
			return hubArm{}, hubArm{}, err
		}
		j, err := newJH(o, filepath.Join(o.work, "jh-"+tag), "dummy")
		if err != nil {
			return hubArm{}, hubArm{}, err
		}
		if err := j.seedDB(s); err != nil {
			return hubArm{}, hubArm{}, err
		}
		if err := j.saveDB(); err != nil {
			return hubArm{}, hubArm{}, err
		}
		ha := hubArm{name: "hubd", restor: h.restoreDB, stop: func(p *proc) { p.stop(30 * time.Second) },
			start: func() (*proc, time.Duration, error) { return h.start(o.hubd, "hubd-"+tag) },
			api:   func() *apiClient { return newAPI(h.base(), h.token) },
			rssKB: func(p *proc) float64 { return rssKB(p.pid()) }}
		ja := hubArm{name: "JupyterHub 3.0 + CHP", restor: j.restoreDB, stop: j.stop,
			start: func() (*proc, time.Duration, error) { return j.start("jupyterhub-" + tag) },
			api:   func() *apiClient { return newAPI(j.base(), j.token) },
			rssKB: func(p *proc) float64 { return rssKB(p.pid()) + rssKB(j.proxyPID()) }}
		return ha, ja, nil
	}
	h10, j10, err := mk("10k", s10)
	if err != nil {
		return err
	}
	h50, j50, err := mk("50k", s50)
	if err != nil {
		return err
	}
	arms := []string{"hubd", "JupyterHub 3.0 + CHP"}
	ratio := [2]string{"hubd", "JupyterHub 3.0 + CHP"}
	st := r.table("P8: startup and footprint",
		"Time from exec to `GET /hub/api` answering (JupyterHub: through CHP), with synthetic databases written before start: 10,000 users of whom u1–u1000 have a server recorded as running (odd ones: a live mock server; even ones: a pid that has exited), then 50,000 users and no servers. hubd's DB is written with core/store, JupyterHub's with its own ORM (bench/jh_seed.py); each start gets a fresh copy. RSS: hubd alone; JupyterHub + CHP summed. Goals: ready ≤ 1 s (10k) and ≤ 2 s (50k); RSS ≤ 40 MB at 10k users and 1k routes.",
		arms, ratio)
	api := r.table("P6: hub API latency (10,000 users, 500 of them with a running server)",
		"Sequential requests with an admin token on the 10k-user hub right after startup, keep-alive. Single user: `GET /hub/api/users/u5000`; list: `GET /hub/api/users?limit=200`; active: `GET /hub/api/users?state=active`; walk: every page of `?offset=N&limit=200` in turn. Goals: single p50 ≤ 1 ms and p99 ≤ 5 ms; list p50 ≤ 20 ms.",
		arms, ratio)
	n, d := 300, 5*time.Second
	if o.quick {
		n, d = 50, time.Second
	}
	for run := 0; run < o.runs; run++ {
		for _, a := range []hubArm{h10, j10} {
			if err := a.restor(); err != nil {
				return err
			}
			p, ready, err := a.start()
			if err != nil {
				return fmt.Errorf("%s 10k: %w", a.name, err)
			}
			st.add("10k users + 1k servers: ready s", a.name, ready.Seconds())
			st.add("10k users + 1k servers: RSS MB at ready", a.name, a.rssKB(p)/1024)
			c := a.api()
			err = apiLatency(api, a.name, c, n, d)
			st.add("10k users + 1k servers: RSS MB after the API runs", a.name, a.rssKB(p)/1024)
			a.stop(p)
			if err != nil {
				return fmt.Errorf("%s API: %w", a.name, err)
			}
		}
		for _, a := range []hubArm{h50, j50} {
			if err := a.restor(); err != nil {
				return err
			}
			p, ready, err := a.start()
			if err != nil {
				return fmt.Errorf("%s 50k: %w", a.name, err)
			}
			st.add("50k users: ready s", a.name, ready.Seconds())
			st.add("50k users: RSS MB at ready", a.name, a.rssKB(p)/1024)
			a.stop(p)
		}
	}
	return nil
}

func apiLatency(t *table, arm string, c *apiClient, n int, d time.Duration) error {
	get := func(path string) func() error {
		return func() error { _, _, err := c.do(http.MethodGet, path, nil, http.StatusOK); return err }
	}
	// Reconciliation check: 500 live servers kept, 500 dead ones dropped.
	active, _, err := walk(c, "state=active&")
	if err != nil {
		return err
	}
	t.add("active users after startup (500 expected)", arm, float64(active))
	for _, m := range []struct{ name, path string }{
		{"single user", "/hub/api/users/u5000"},
		{"list limit=200", "/hub/api/users?limit=200"},
		{"state=active", "/hub/api/users?state=active"},
	} {
		p50, p99, err := latencies(n, d, get(m.path))
		if err != nil {
			return err
		}
		t.add(m.name+" p50 ms", arm, p50)
		t.add(m.name+" p99 ms", arm, p99)
	}
	_, took, err := walk(c, "")
	if err != nil {
		return err
	}
	t.add("walk of all 10k users ms", arm, float64(took)/1e6)
	return nil
}

// walk reads every page of /hub/api/users?<filter>offset=N&limit=200 in
// turn and returns the number of users and the time it took.
func walk(c *apiClient, filter string) (int, time.Duration, error) {
	t0 := time.Now()
	n := 0
	for off := 0; ; off += 200 {
		_, b, err := c.do(http.MethodGet, fmt.Sprintf("/hub/api/users?%soffset=%d&limit=200", filter, off), nil, http.StatusOK)
		if err != nil {
			return 0, 0, err
		}
		var page []json.RawMessage
		if err := json.Unmarshal(b, &page); err != nil {
			return 0, 0, fmt.Errorf("walk: %w", err)
		}
		n += len(page)
		if len(page) < 200 {
			return n, time.Since(t0), nil
		}
	}
}
