package hub

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/hubd/hubd/core/store"
	"github.com/hubd/hubd/internal/tick"
)

// LastActivity is when a server was last active, by the configured
// source: "server" (what the server reports; busy kernels count, open tabs
// do not), "proxy" (traffic the proxy saw; an open tab counts) or "both".
// Zero when there was none.
func LastActivity(s store.Server, source string) time.Time {
	t := time.Time{}
	if source != "proxy" {
		t = s.LastActivity
	}
	if source != "server" && s.ProxyActivity.After(t) {
		t = s.ProxyActivity
	}
	return t
}

// IdleSince is LastActivity, or the start time for a server that never
// reported any (as jupyterhub-idle-culler does).
func IdleSince(s store.Server, source string) time.Time {
	if t := LastActivity(s, source); !t.IsZero() {
		return t
	}
	return s.Started
}

// cullReason says why a server should be culled now, or "" to keep it.
func (h *Hub) cullReason(s store.Server, now time.Time) string {
	c := h.cfg.Culler
	if s.State != store.StateRunning || h.Pending(s.User, s.Name) != nil {
		return ""
	}
	if idle := now.Sub(IdleSince(s, c.Activity)); idle >= c.Timeout.D() {
		return fmt.Sprintf("idle for %s (no %s activity since %s)", idle.Round(time.Second), c.Activity,
			IdleSince(s, c.Activity).UTC().Format(time.RFC3339))
	}
	if c.MaxAge > 0 && !s.Started.IsZero() {
		if age := now.Sub(s.Started); age >= c.MaxAge.D() {
			return fmt.Sprintf("running for %s, longer than culler.max_age %s", age.Round(time.Second), c.MaxAge.D())
		}
	}
	return ""
}

// Cull stops every running server that is idle longer than culler.timeout
// (or older than culler.max_age), at most culler.concurrency at a time,
// recording "culler" and the reason. It returns how many it stopped.
func (h *Hub) Cull(ctx context.Context) (int, error) {
	servers, err := h.store.ActiveServers(ctx)
	if err != nil {
		return 0, fmt.Errorf("list servers to cull: %w", err)
	}
	now := h.now()
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		stopped int
		sem     = make(chan struct{}, max(h.cfg.Culler.Concurrency, 1))
	)
	for _, s := range servers {
		reason := h.cullReason(s, now)
		if reason == "" {
			continue
		}
		u, err := h.store.UserByID(ctx, s.UserID)
		if err != nil {
			continue
		}
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if err := h.Stop(ctx, u, s.Name, reason, "culler"); err != nil {
				h.log.Warn("cull", "user", u.Name, "err", err)
				return
			}
			mu.Lock()
			stopped++
			mu.Unlock()
		}()
	}
	wg.Wait()
	return stopped, nil
}

// RunCuller culls every culler.interval until ctx ends; it does nothing
// unless culler.enabled.
func (h *Hub) RunCuller(ctx context.Context) {
	if !h.cfg.Culler.Enabled {
		return
	}
	h.log.Info("idle culler on", "timeout", h.cfg.Culler.Timeout.D(), "interval", h.cfg.Culler.Interval.D(),
		"activity", h.cfg.Culler.Activity, "max_age", h.cfg.Culler.MaxAge.D())
	tick.Every(ctx, h.cfg.Culler.Interval.D(), func() {
		if n, err := h.Cull(ctx); err != nil {
			h.log.Warn("cull", "err", err)
		} else if n > 0 {
			h.log.Info("culled idle servers", "count", n)
		}
	})
}
