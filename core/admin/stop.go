package admin

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/hubd/hubd/core/admin/wire"
	"github.com/hubd/hubd/core/names"
	"github.com/hubd/hubd/core/store"
)

// stopParallel bounds concurrent stops of a bulk stop: each may wait up to
// spawner.stop_timeout for a server to exit.
const stopParallel = 8

// stopOne stops one user's server (the default one unless the body names
// another).
func (s *Server) stopOne(w http.ResponseWriter, r *http.Request, who identity) error {
	name := r.PathValue("user")
	if err := names.Check(name); err != nil {
		return errorf(http.StatusBadRequest, "user %s: %v", names.Quote(name), err)
	}
	var req wire.StopOneRequest
	if err := decodeBody(w, r, &req); err != nil {
		return err
	}
	u, err := s.store.UserByName(r.Context(), name)
	if errors.Is(err, store.ErrNotFound) {
		return errorf(http.StatusNotFound, "no user %s in the hub: the sessions list shows who has a server", name)
	}
	if err != nil {
		return err
	}
	res := s.stopServers(r.Context(), who, []target{{u, req.Server}}, req.Reason)
	s.audit(r.Context(), who, "server.stop", label(target{u, req.Server}), stopDetail(res, req.Reason))
	writeJSON(w, http.StatusOK, res)
	return nil
}

// stopMany stops the servers of a list of users, or every running server
// idle for longer than a duration.
func (s *Server) stopMany(w http.ResponseWriter, r *http.Request, who identity) error {
	var req wire.StopRequest
	if err := decodeBody(w, r, &req); err != nil {
		return err
	}
	ctx := r.Context()
	given := 0
	for _, set := range []bool{len(req.Users) > 0, len(req.Servers) > 0, req.IdleFor != ""} {
		if set {
			given++
		}
	}
	if given != 1 {
		return errorf(http.StatusBadRequest, `give one of "users" (user names), "servers" ("user" or "user/server") or "idle_for" (a duration such as "2h")`)
	}
	var (
		targets []target
		res     wire.StopResult
		what    string
	)
	if req.IdleFor != "" {
		d, err := time.ParseDuration(req.IdleFor)
		if err != nil || d <= 0 {
			return errorf(http.StatusBadRequest, "idle_for %q: use a positive duration such as 90m or 2h", req.IdleFor)
		}
		what = "idle>" + d.String()
		if targets, err = s.idleServers(ctx, d); err != nil {
			return err
		}
	} else {
		// Users name default servers; Servers name "user" or "user/server".
		wanted := append(append([]string{}, req.Users...), req.Servers...)
		what = strings.Join(wanted, ",")
		for i, l := range wanted {
			name, server := l, ""
			if i >= len(req.Users) {
				name, server, _ = strings.Cut(l, "/")
			}
			if err := names.Check(name); err != nil {
				res.Failed = append(res.Failed, wire.StopFailure{User: l, Error: err.Error()})
				continue
			}
			u, err := s.store.UserByName(ctx, name)
			if errors.Is(err, store.ErrNotFound) {
				res.Failed = append(res.Failed, wire.StopFailure{User: l, Error: "no such user in the hub"})
				continue
			}
			if err != nil {
				return err
			}
			targets = append(targets, target{u, server})
		}
	}
	got := s.stopServers(ctx, who, targets, req.Reason)
	res.Stopped, res.NotRunning = got.Stopped, got.NotRunning
	res.Failed = append(res.Failed, got.Failed...)
	s.audit(ctx, who, "server.stop-many", truncate(what, 200), stopDetail(res, req.Reason))
	writeJSON(w, http.StatusOK, res)
	return nil
}

// target is one server to stop: a user's default one or a named one.
type target struct {
	user   store.User
	server string
}

// label names a server in results: the user, or user/server.
func label(t target) string {
	if t.server == "" {
		return t.user.Name
	}
	return t.user.Name + "/" + t.server
}

// idleServers returns the running servers (named ones too) idle for
// longer than d, judged by the culler's notion of activity.
func (s *Server) idleServers(ctx context.Context, d time.Duration) ([]target, error) {
	servers, err := s.store.ActiveServers(ctx)
	if err != nil {
		return nil, err
	}
	cutoff := s.now().Add(-d)
	var out []target
	for _, srv := range servers {
		if srv.State != store.StateRunning || !lastActive(srv, s.cfg.Culler.Activity).Before(cutoff) {
			continue
		}
		u, err := s.store.UserByID(ctx, srv.UserID)
		if err != nil {
			return nil, err
		}
		out = append(out, target{u, srv.Name})
	}
	return out, nil
}

// lastActive is when the server was last active: reported by the server,
// seen by the proxy, or the later of both (culler.activity), and never
// before it started.
func lastActive(srv store.Server, mode string) time.Time {
	var t time.Time
	switch mode {
	case "proxy":
		t = srv.ProxyActivity
	case "both":
		t = srv.LastActivity
		if srv.ProxyActivity.After(t) {
			t = srv.ProxyActivity
		}
	default:
		t = srv.LastActivity
	}
	if srv.Started.After(t) {
		t = srv.Started
	}
	return t
}

// stopServers stops the servers, a few at a time. The stops are carried
// through even when the caller hangs up: a server half stopped helps
// nobody. Results name servers as "user" or "user/server".
func (s *Server) stopServers(ctx context.Context, who identity, targets []target, reason string) wire.StopResult {
	if reason == "" {
		reason = fmt.Sprintf("stopped by %s (uid %d) through the admin socket", who.actor(), who.uid)
	}
	reason = truncate(reason, 200)
	ctx = context.WithoutCancel(ctx)
	var (
		mu  sync.Mutex
		res = wire.StopResult{Stopped: []string{}}
		wg  sync.WaitGroup
		sem = make(chan struct{}, stopParallel)
	)
	for _, t := range targets {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			srv, err := s.store.Server(ctx, t.user.ID, t.server)
			running := err == nil && srv.Active()
			if err == nil || errors.Is(err, store.ErrNotFound) {
				err = s.hub.Stop(ctx, t.user, t.server, reason, who.actor())
			}
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err != nil:
				res.Failed = append(res.Failed, wire.StopFailure{User: label(t), Error: err.Error()})
			case running:
				res.Stopped = append(res.Stopped, label(t))
			default:
				res.NotRunning = append(res.NotRunning, label(t))
			}
		}()
	}
	wg.Wait()
	slices.Sort(res.Stopped)
	slices.Sort(res.NotRunning)
	slices.SortFunc(res.Failed, func(a, b wire.StopFailure) int { return strings.Compare(a.User, b.User) })
	return res
}

func stopDetail(res wire.StopResult, reason string) string {
	d := fmt.Sprintf("stopped %d, not running %d, failed %d", len(res.Stopped), len(res.NotRunning), len(res.Failed))
	if len(res.Failed) > 0 {
		d += " (first: " + res.Failed[0].User + ": " + res.Failed[0].Error + ")"
	}
	if reason != "" {
		d += "; reason: " + reason
	}
	return truncate(d, 500)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
