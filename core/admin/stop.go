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

// stopOne stops one user's default server.
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
	res := s.stopUsers(r.Context(), who, []store.User{u}, req.Reason)
	s.audit(r.Context(), who, "server.stop", name, stopDetail(res, req.Reason))
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
	if (len(req.Users) > 0) == (req.IdleFor != "") {
		return errorf(http.StatusBadRequest, `give either "users" (a list of user names) or "idle_for" (a duration such as "2h"), not both or neither`)
	}
	var (
		users  []store.User
		res    wire.StopResult
		target string
	)
	if req.IdleFor != "" {
		d, err := time.ParseDuration(req.IdleFor)
		if err != nil || d <= 0 {
			return errorf(http.StatusBadRequest, "idle_for %q: use a positive duration such as 90m or 2h", req.IdleFor)
		}
		target = "idle>" + d.String()
		if users, err = s.idleUsers(ctx, d); err != nil {
			return err
		}
	} else {
		target = strings.Join(req.Users, ",")
		for _, name := range req.Users {
			if err := names.Check(name); err != nil {
				res.Failed = append(res.Failed, wire.StopFailure{User: name, Error: err.Error()})
				continue
			}
			u, err := s.store.UserByName(ctx, name)
			if errors.Is(err, store.ErrNotFound) {
				res.Failed = append(res.Failed, wire.StopFailure{User: name, Error: "no such user in the hub"})
				continue
			}
			if err != nil {
				return err
			}
			users = append(users, u)
		}
	}
	got := s.stopUsers(ctx, who, users, req.Reason)
	res.Stopped, res.NotRunning = got.Stopped, got.NotRunning
	res.Failed = append(res.Failed, got.Failed...)
	s.audit(ctx, who, "server.stop-many", truncate(target, 200), stopDetail(res, req.Reason))
	writeJSON(w, http.StatusOK, res)
	return nil
}

// idleUsers returns the users whose running server has been idle for
// longer than d, judged by the culler's notion of activity.
func (s *Server) idleUsers(ctx context.Context, d time.Duration) ([]store.User, error) {
	servers, err := s.store.ActiveServers(ctx)
	if err != nil {
		return nil, err
	}
	cutoff := s.now().Add(-d)
	var out []store.User
	for _, srv := range servers {
		if srv.State != store.StateRunning || srv.Name != "" || !lastActive(srv, s.cfg.Culler.Activity).Before(cutoff) {
			continue
		}
		u, err := s.store.UserByID(ctx, srv.UserID)
		if err != nil {
			return nil, err
		}
		out = append(out, u)
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

// stopUsers stops the users' default servers, a few at a time. The stops
// are carried through even when the caller hangs up: a server half
// stopped helps nobody.
func (s *Server) stopUsers(ctx context.Context, who identity, users []store.User, reason string) wire.StopResult {
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
	for _, u := range users {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			srv, err := s.store.Server(ctx, u.ID, "")
			running := err == nil && srv.Active()
			if err == nil || errors.Is(err, store.ErrNotFound) {
				err = s.hub.Stop(ctx, u, "", reason, who.actor())
			}
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err != nil:
				res.Failed = append(res.Failed, wire.StopFailure{User: u.Name, Error: err.Error()})
			case running:
				res.Stopped = append(res.Stopped, u.Name)
			default:
				res.NotRunning = append(res.NotRunning, u.Name)
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
