package admin

import (
	"net/http"
	"os"

	"github.com/hubd/hubd/core/admin/wire"
	"github.com/hubd/hubd/core/store"
	"github.com/hubd/hubd/internal/version"
	"github.com/hubd/hubd/upgrade"
)

func (s *Server) whoami(w http.ResponseWriter, _ *http.Request, who identity) error {
	writeJSON(w, http.StatusOK, wire.WhoAmI{UID: who.uid, User: who.name, Role: who.role, Why: who.why})
	return nil
}

func (s *Server) status(w http.ResponseWriter, r *http.Request, _ identity) error {
	ctx := r.Context()
	schema, err := upgrade.Version(ctx, s.store.DB())
	if err != nil {
		return err
	}
	users, err := s.store.CountUsers(ctx)
	if err != nil {
		return err
	}
	servers, err := s.store.CountServers(ctx)
	if err != nil {
		return err
	}
	now := s.now()
	listeners := append([]wire.Listener{}, s.listeners...)
	listeners = append(listeners, wire.Listener{Name: "admin", Addr: s.cfg.Admin.Socket})
	writeJSON(w, http.StatusOK, wire.Status{
		Version:       version.Version,
		SchemaVersion: schema,
		PID:           os.Getpid(),
		Started:       s.started.UTC(),
		UptimeSeconds: int64(now.Sub(s.started).Seconds()),
		Listeners:     listeners,
		SpawnerKind:   s.cfg.Spawner.Kind,
		Users:         users,
		Servers:       servers,
		ActiveServers: servers[store.StateStarting] + servers[store.StateRunning] + servers[store.StateStopping],
	})
	return nil
}
