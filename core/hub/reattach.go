package hub

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/hubd/hubd/core/proxy"
	"github.com/hubd/hubd/core/spawner"
	"github.com/hubd/hubd/core/store"
	"github.com/hubd/hubd/internal/tick"
)

// ReattachResult counts what Reattach found.
type ReattachResult struct {
	Restored, Stopped int
}

// Reattach runs at startup, before the hub reports ready: every server the
// database says is active is checked (process alive, HTTP answering); live
// ones get their route back, dead ones are recorded as stopped. Checks run
// in parallel, bounded, so a thousand recorded servers take seconds.
func (h *Hub) Reattach(ctx context.Context) (ReattachResult, error) {
	servers, err := h.store.ActiveServers(ctx)
	if err != nil {
		return ReattachResult{}, fmt.Errorf("list servers to re-attach: %w", err)
	}
	var (
		mu  sync.Mutex
		res ReattachResult
		wg  sync.WaitGroup
		sem = make(chan struct{}, 32)
	)
	for _, srv := range servers {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			alive := h.reattachOne(ctx, srv)
			mu.Lock()
			if alive {
				res.Restored++
			} else {
				res.Stopped++
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	h.log.Info("re-attached servers", "restored", res.Restored, "stopped", res.Stopped)
	return res, nil
}

func (h *Hub) reattachOne(ctx context.Context, srv store.Server) bool {
	log := h.log.With("user", srv.User, "server", srv.Name)
	state := StateOf(srv)
	if !state.Started() {
		reason := "the hub stopped before the server had started"
		if h.reclaim(ctx, srv) > 0 {
			reason = "the hub stopped before it had recorded the server, which was then stopped"
		}
		h.markGone(ctx, srv, reason)
		return false
	}
	sp := h.spawners[state.Kind]
	if sp == nil {
		h.markGone(ctx, srv, fmt.Sprintf("started by the %q spawner, which this hub does not run", state.Kind))
		return false
	}
	if state.Port == 0 {
		// Started, but where it listens was never learnt (a batch job that
		// had not reported yet): nothing can reach it, so it goes.
		if err := sp.Stop(ctx, srv.User, state, h.cfg.Spawner.StopTimeout.D()); err != nil {
			log.Warn("re-attach: stop", "err", err)
		}
		h.markGone(ctx, srv, "the hub restarted before the server reported its address")
		return false
	}
	st, err := sp.Poll(ctx, srv.User, state)
	if err != nil || !st.Running {
		reason := "exited while the hub was down"
		if st.Reason != "" {
			reason += ": " + st.Reason
		}
		h.markGone(ctx, srv, reason)
		return false
	}
	prefix := ServerPrefix(h.cfg.Hub.BaseURL, srv.User, srv.Name)
	probeCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	version, err := h.probeUntil(probeCtx, state.Addr(), prefix, nil, nil)
	if err != nil {
		log.Warn("re-attach: process alive but not answering; stopping it", "err", err)
		if err := sp.Stop(ctx, srv.User, state, h.cfg.Spawner.StopTimeout.D()); err != nil {
			log.Warn("re-attach: stop", "err", err)
		}
		h.markGone(ctx, srv, "did not answer after the hub restarted")
		return false
	}
	if err := h.routes.Set(proxy.Route{Prefix: prefix, Target: "http://" + state.Addr(), User: srv.User, Server: srv.Name}); err != nil {
		log.Error("re-attach: add route", "err", err)
		return false
	}
	if srv.State != store.StateRunning || (version != "" && version != srv.Version) {
		if err := h.store.SetRunning(ctx, srv.ID, version); err != nil {
			log.Error("re-attach: record running", "err", err)
		}
	}
	if r, ok := sp.(spawner.Reattacher); ok {
		r.Reattach(state, h.logPath(srv.User, srv.Name))
	}
	log.Debug("re-attached", "addr", state.Addr(), "pid", state.PID, "unit", state.Unit, "container", state.Container, "job", state.JobID)
	return true
}

// reclaim stops a server that a start launched but never recorded (the
// hub was killed in between), so nothing runs that no hub tracks. It
// reports how many processes, units or containers it stopped.
func (h *Hub) reclaim(ctx context.Context, srv store.Server) int {
	r, ok := h.spawners[srv.Spawner].(spawner.Reclaimer)
	if !ok {
		return 0
	}
	env := h.serverEnv(srv.User, srv, "", nil)
	o := spawner.Orphan{User: srv.User, Server: srv.Name, Env: map[string]string{}}
	for _, k := range []string{"JUPYTERHUB_API_URL", "JUPYTERHUB_USER", "JUPYTERHUB_SERVER_NAME", "JUPYTERHUB_SERVICE_URL"} {
		if v, ok := env[k]; ok {
			o.Env[k] = v
		}
	}
	n, err := r.Reclaim(ctx, o, h.cfg.Spawner.StopTimeout.D())
	if err != nil {
		h.log.Warn("re-attach: looking for a server the hub had not recorded", "user", srv.User, "server", srv.Name, "err", err)
	}
	return n
}

// PollServer asks a server's spawner what it knows of a server that has a
// batch job (its Slurm state and node), for the admin; other servers get
// a zero Status without a call.
func (h *Hub) PollServer(ctx context.Context, srv store.Server) (spawner.Status, error) {
	state := StateOf(srv)
	sp := h.spawners[state.Kind]
	if sp == nil || state.JobID == "" {
		return spawner.Status{}, nil
	}
	return sp.Poll(ctx, srv.User, state)
}

// markGone records a server that ended without being asked to (a crash,
// an OOM kill, a kill behind the hub's back) as failed, with the reason.
func (h *Hub) markGone(ctx context.Context, srv store.Server, reason string) {
	// Only while the row is still the one read: a stop or a new start
	// since then owns the row and the route now.
	gone, err := h.store.SetGone(ctx, srv, reason, "hub")
	if err != nil {
		h.log.Error("record stopped server", "user", srv.User, "err", err)
		return
	}
	if !gone {
		h.log.Debug("server changed while it was checked; left alone", "user", srv.User, "server", srv.Name)
		return
	}
	h.routes.Delete(ServerPrefix(h.cfg.Hub.BaseURL, srv.User, srv.Name))
	h.log.Info("server gone", "user", srv.User, "server", srv.Name, "reason", reason)
	h.audit(ctx, "hub", "server.gone", srv.User, reason)
}

// Poll checks every active server once and records the ones that died
// behind the hub's back (OOM, crash, kill).
func (h *Hub) Poll(ctx context.Context) {
	servers, err := h.store.ActiveServers(ctx)
	if err != nil {
		h.log.Warn("poll servers", "err", err)
		return
	}
	for _, srv := range servers {
		if srv.State != store.StateRunning || h.Pending(srv.User, srv.Name) != nil {
			continue
		}
		state := StateOf(srv)
		sp := h.spawners[state.Kind]
		if sp == nil {
			continue
		}
		st, err := sp.Poll(ctx, srv.User, state)
		if err != nil || st.Running {
			continue
		}
		reason := "exited"
		if st.Reason != "" {
			reason += ": " + st.Reason
		}
		h.markGone(ctx, srv, reason)
	}
}

// RunPoller polls every spawner.poll_interval until ctx ends.
func (h *Hub) RunPoller(ctx context.Context) {
	tick.Every(ctx, h.cfg.Spawner.PollInterval.D(), func() { h.Poll(ctx) })
}

// RecordProxyActivity stores traffic the proxy saw for a server. The proxy
// calls it at most once per route per interval, on a request's goroutine,
// so the write happens in the background.
func (h *Hub) RecordProxyActivity(user, server string, t time.Time) {
	h.bg.Add(1)
	go func() {
		defer h.bg.Done()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		u, err := h.store.UserByName(ctx, user)
		if err != nil {
			return
		}
		srv, err := h.store.Server(ctx, u.ID, server)
		if err != nil {
			return
		}
		if err := h.store.RecordActivity(ctx, srv.ID, t, true); err != nil {
			h.log.Debug("record proxy activity", "user", user, "err", err)
		}
	}()
}
