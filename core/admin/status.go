package admin

import (
	"context"
	"net/http"
	"os"
	"runtime"

	"github.com/hubd/hubd/core/admin/wire"
	"github.com/hubd/hubd/core/store"
	"github.com/hubd/hubd/internal/version"
)

func (s *Server) whoami(w http.ResponseWriter, _ *http.Request, who identity) error {
	writeJSON(w, http.StatusOK, wire.WhoAmI{UID: who.uid, User: who.name, Role: who.role, Why: who.why})
	return nil
}

// counts are the database's part of the status.
type counts struct {
	schema  int
	users   int
	servers map[string]int
}

func (s *Server) readCounts(ctx context.Context) (counts, error) {
	var c counts
	var err error
	if c.schema, err = s.store.SchemaVersion(ctx); err != nil {
		return c, err
	}
	if c.users, err = s.store.CountUsers(ctx); err != nil {
		return c, err
	}
	c.servers, err = s.store.CountServers(ctx)
	return c, err
}

func (s *Server) status(w http.ResponseWriter, r *http.Request, _ identity) error {
	c, err := s.counts.get(r.Context(), s.readCounts)
	if err != nil {
		return err
	}
	now := s.now()
	listeners := append([]wire.Listener{}, s.listeners...)
	listeners = append(listeners, wire.Listener{Name: "admin", Addr: s.cfg.Admin.Socket})
	writeJSON(w, http.StatusOK, wire.Status{
		Version:       version.Version,
		SchemaVersion: c.schema,
		PID:           os.Getpid(),
		Started:       s.started.UTC(),
		UptimeSeconds: int64(now.Sub(s.started).Seconds()),
		Listeners:     listeners,
		SpawnerKind:   s.cfg.Spawner.Kind,
		Users:         c.users,
		Servers:       c.servers,
		ActiveServers: c.servers[store.StateStarting] + c.servers[store.StateRunning] + c.servers[store.StateStopping],
		Goroutines:    runtime.NumGoroutine(),
	})
	return nil
}
