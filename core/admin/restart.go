package admin

import (
	"context"
	"net/http"
	"strings"
	"time"

	"github.com/hubd/hubd/core/admin/wire"
	"github.com/hubd/hubd/core/store"
)

// restartRequested begins the audit detail of a restart that went ahead.
const restartRequested = "requested"

// restart asks the Restarter for a graceful restart, at most once per
// admin.restart_min_interval, so a member's `restart-hub` in a loop
// cannot keep the hub restarting.
func (s *Server) restart(w http.ResponseWriter, r *http.Request, who identity) error {
	var req wire.RestartRequest
	if err := decodeBody(w, r, &req); err != nil {
		return err
	}
	if s.restarter == nil {
		return errorf(http.StatusNotImplemented, "this hub cannot restart itself: ask root to run `systemctl restart hubd` (user servers keep running)")
	}
	now := s.now()
	s.restartMu.Lock()
	if !s.restartSeeded {
		// The last restart was most likely what started this process: the
		// interval counts from it, or a loop of restart-hub would get one
		// restart through after every re-exec.
		s.lastRestart, s.restartSeeded = s.lastRecordedRestart(r.Context()), true
	}
	wait := s.lastRestart.Add(s.cfg.Admin.RestartMinInterval.D()).Sub(now)
	if !s.lastRestart.IsZero() && wait > 0 {
		s.restartMu.Unlock()
		return &httpError{status: http.StatusTooManyRequests, retryAfter: wait,
			msg: "the hub was restarted moments ago: try again in " + wait.Round(1e9).String()}
	}
	s.lastRestart = now
	s.restartMu.Unlock()

	detail := restartRequested
	if req.Reason != "" {
		detail += "; reason: " + truncate(req.Reason, 200)
	}
	// The restart must not depend on the caller staying connected.
	err := s.restarter.Restart(context.WithoutCancel(r.Context()), who.actor())
	if err != nil {
		// Nothing restarted, so nothing to rate-limit: the admin may try
		// again at once after fixing the cause.
		s.restartMu.Lock()
		if s.lastRestart.Equal(now) {
			s.lastRestart = time.Time{}
		}
		s.restartMu.Unlock()
		s.audit(r.Context(), who, "hub.restart", "hub", "failed: "+err.Error())
		return err
	}
	s.audit(r.Context(), who, "hub.restart", "hub", detail)
	s.log.Info("restart requested", "by", who.actor(), "uid", who.uid, "reason", req.Reason)
	writeJSON(w, http.StatusAccepted, wire.RestartResult{Message: "the hub is restarting; user servers keep running"})
	return nil
}

// lastRecordedRestart is when the audit log last records a restart that
// went ahead (the zero time when it has none or cannot be read).
func (s *Server) lastRecordedRestart(ctx context.Context) time.Time {
	events, err := s.store.Events(ctx, store.EventFilter{Action: "hub.restart", Limit: 20})
	if err != nil {
		s.log.Warn("cannot read the last restart from the audit log", "err", err)
		return time.Time{}
	}
	for _, e := range events {
		if strings.HasPrefix(e.Detail, restartRequested) {
			return e.Time
		}
	}
	return time.Time{}
}
