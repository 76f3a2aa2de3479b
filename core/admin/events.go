package admin

import (
	"context"
	"net/http"
	"strconv"

	"github.com/hubd/hubd/core/admin/wire"
	"github.com/hubd/hubd/core/store"
)

const (
	defaultEventPage = 100
	maxEventPage     = 1000
)

// events pages the audit log backwards, newest first.
func (s *Server) events(w http.ResponseWriter, r *http.Request, _ identity) error {
	q := r.URL.Query()
	f := store.EventFilter{Action: q.Get("action"), Target: q.Get("target")}
	var err error
	if f.Limit, err = queryInt(r, "limit", defaultEventPage, 1, maxEventPage); err != nil {
		return err
	}
	if v := q.Get("before"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 1 {
			return errorf(http.StatusBadRequest, "before=%q: give the next_before of the previous page", v)
		}
		f.BeforeID = n
	}
	list, err := s.store.Events(r.Context(), f)
	if err != nil {
		return err
	}
	out := wire.Events{Events: make([]wire.Event, 0, len(list))}
	for _, e := range list {
		out.Events = append(out.Events, wire.Event{ID: e.ID, Time: e.Time.UTC(), Actor: e.Actor, ActorUID: e.ActorUID,
			Source: e.Source, Action: e.Action, Target: e.Target, Detail: e.Detail})
	}
	if len(list) == f.Limit {
		out.NextBefore = list[len(list)-1].ID
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// audit records a mutating call with the peer's uid. It runs even when
// the caller hung up; a failed write is logged, never hidden.
func (s *Server) audit(ctx context.Context, who identity, action, target, detail string) {
	err := s.store.AddEvent(context.WithoutCancel(ctx), store.Event{
		Actor: who.actor(), ActorUID: who.uid, Source: "admin", Action: action, Target: target, Detail: detail,
	})
	if err != nil {
		s.log.Error("audit log write failed", "action", action, "target", target, "uid", who.uid, "err", err)
	}
}
