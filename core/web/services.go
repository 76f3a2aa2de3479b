package web

import (
	"net/http"

	"github.com/hubd/hubd/core/config"
	"github.com/hubd/hubd/core/scopes"
	"github.com/hubd/hubd/core/services"
)

// ServiceProcs reports the pid of a running hub-managed service (0 when
// it is not running or not managed); the service supervisor implements it.
type ServiceProcs interface {
	PID(name string) int
}

// serviceModel is JupyterHub's service model.
func (w *Web) serviceModel(sv config.Service) map[string]any {
	prefix, pid := "", 0
	if sv.URL != "" {
		prefix = services.Prefix(w.base, sv.Name)
	}
	if w.procs != nil {
		pid = w.procs.PID(sv.Name)
	}
	command := sv.Command
	if command == nil {
		command = []string{}
	}
	return map[string]any{"kind": "service", "name": sv.Name, "admin": sv.Admin,
		"roles": w.access.ServiceRoles(sv), "url": sv.URL, "prefix": prefix, "command": command,
		"pid": pid, "info": map[string]any{}, "display": sv.Display}
}

// filteredServiceModel keeps the fields the caller may read, as
// JupyterHub filters them.
func (w *Web) filteredServiceModel(c *caller, sv config.Service) map[string]any {
	m := w.serviceModel(sv)
	t := scopes.Target{Service: sv.Name}
	if c.scopes.Has("read:services", t) {
		return m
	}
	keep := map[string]bool{"kind": true, "name": true, "admin": true}
	if c.scopes.Has("read:roles:services", t) {
		keep["roles"] = true
	}
	for k := range m {
		if !keep[k] {
			delete(m, k)
		}
	}
	return m
}

// apiListServices is GET /hub/api/services: an object of the services
// the caller may list, by name (what JupyterHub answers; its OpenAPI
// document says a list).
func (w *Web) apiListServices(rw http.ResponseWriter, r *http.Request, c *caller) error {
	if !c.scopes.HasAny("list:services") {
		return notAuthorized("list:services")
	}
	out := map[string]any{}
	for _, sv := range w.cfg.Services {
		if c.scopes.Has("list:services", scopes.Target{Service: sv.Name}) {
			out[sv.Name] = w.filteredServiceModel(c, sv)
		}
	}
	jsonReply(rw, http.StatusOK, out)
	return nil
}

func (w *Web) apiGetService(rw http.ResponseWriter, r *http.Request, c *caller) error {
	name := r.PathValue("service")
	sv, ok := w.access.Service(name)
	t := scopes.Target{Service: name}
	if err := w.allowedOn(r.Context(), c, t, "read:services", "read:services:name", "read:roles:services"); err != nil {
		return err
	}
	if !ok {
		return apiErrorf(http.StatusNotFound, "No such service: %s", name)
	}
	jsonReply(rw, http.StatusOK, w.filteredServiceModel(c, sv))
	return nil
}
