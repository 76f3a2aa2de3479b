package web

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/hubd/hubd/core/hub"
	"github.com/hubd/hubd/core/names"
	"github.com/hubd/hubd/core/store"
	"github.com/hubd/hubd/internal/version"
)

// ts renders a timestamp the way JupyterHub does, or null.
func ts(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return store.FormatTime(t)
}

// serverModel is JupyterHub's server model.
func (w *Web) serverModel(s store.Server, admin bool) map[string]any {
	prefix := hub.ServerPrefix(w.base, s.User, s.Name)
	progress := w.hubPrefix + "api/users/" + url.PathEscape(s.User) + "/server/progress"
	if s.Name != "" {
		progress = w.hubPrefix + "api/users/" + url.PathEscape(s.User) + "/servers/" + url.PathEscape(s.Name) + "/progress"
	}
	m := map[string]any{
		"name":          s.Name,
		"full_name":     s.User + "/" + s.Name,
		"last_activity": ts(w.lastActivity(s)),
		"started":       ts(s.Started),
		"pending":       w.pending(s),
		"ready":         s.State == store.StateRunning && w.hub.Pending(s.User, s.Name) == nil,
		"stopped":       !s.Active(),
		"url":           prefix,
		"user_options":  map[string]any{},
		"progress_url":  progress,
	}
	if !s.Active() {
		m["started"], m["last_activity"] = nil, nil
	}
	if admin {
		var state any
		_ = json.Unmarshal([]byte(s.SpawnerState), &state)
		m["state"] = state
	}
	return m
}

// lastActivity is what the culler and the API see (hub.LastActivity with
// the configured source).
func (w *Web) lastActivity(s store.Server) time.Time {
	return hub.LastActivity(s, w.cfg.Culler.Activity)
}

func (w *Web) pending(s store.Server) any {
	if op := w.hub.Pending(s.User, s.Name); op != nil && !op.Done() {
		if op.Kind == "start" {
			return "spawn"
		}
		return "stop"
	}
	switch s.State {
	case store.StateStarting:
		return "spawn"
	case store.StateStopping:
		return "stop"
	}
	return nil
}

// userModel is JupyterHub's user model, filtered by what the caller may read.
func (w *Web) userModel(c *caller, u store.User, servers []store.Server, includeStopped bool) map[string]any {
	roles := []string{"user"}
	if u.Admin {
		roles = []string{"admin", "user"}
	}
	m := map[string]any{"kind": "user", "name": u.Name, "admin": u.Admin}
	// Field visibility per scope as in JupyterHub: the idle culler holds
	// read:users:activity, not read:users, and needs last_activity.
	if c.scopes.has("read:users:activity", u.Name, "") {
		m["last_activity"] = ts(u.LastActivity)
	}
	if c.scopes.has("read:users:groups", u.Name, "") {
		m["groups"] = []string{}
	}
	if c.scopes.has("read:users", u.Name, "") {
		m["created"] = ts(u.Created)
		m["roles"] = roles
		m["server"] = nil
		m["pending"] = nil
	}
	if c.scopes.has("read:servers", u.Name, "") {
		admin := c.scopes.has("admin:server_state", u.Name, "")
		models := map[string]any{}
		for _, s := range servers {
			if s.Name == "" {
				if s.State == store.StateRunning {
					m["server"] = hub.ServerPrefix(w.base, u.Name, "")
				}
				m["pending"] = w.pending(s)
			}
			if s.Active() || includeStopped {
				models[s.Name] = w.serverModel(s, admin)
			}
		}
		m["servers"] = models
	}
	return m
}

func (w *Web) apiInfo(rw http.ResponseWriter, r *http.Request, c *caller) {
	if !c.scopes.has("read:hub", "", "") {
		jsonError(rw, http.StatusForbidden, "Action is not authorized with current scopes; requires any of [read:hub]")
		return
	}
	jsonReply(rw, http.StatusOK, map[string]any{
		"version": w.cfg.Hub.JupyterHubVersion, "hubd_version": version.Version,
		"python": "", "sys_executable": "", "go": runtime.Version(),
		"spawner":       map[string]string{"class": "hubd." + w.cfg.Spawner.Kind, "version": version.Version},
		"authenticator": map[string]string{"class": "hubd.pam", "version": version.Version},
	})
}

// apiSelf is GET /hub/api/user: who the token or cookie belongs to and
// exactly its scopes (jupyterhub-singleuser checks them against its own
// access scopes, jupyterhub-contract.md §1.6).
func (w *Web) apiSelf(rw http.ResponseWriter, r *http.Request, c *caller) {
	scopes := c.scopes
	if c.token != nil {
		// Identity scopes are implied for any token, as in JupyterHub.
		identity := []string{"read:users:name!user", "read:users:groups!user"}
		if c.token.Kind == store.TokenServer {
			identity = append(identity, "read:users:activity!user")
		}
		scopes = scopes.union(parseScopes(identity, c.user.Name))
	}
	m := map[string]any{"kind": "user", "name": c.user.Name, "admin": c.user.Admin, "groups": []string{},
		"session_id": nil, "scopes": scopes.strings()}
	if c.sessionID != "" {
		m["session_id"] = c.sessionID
	}
	if c.token != nil {
		m["token_id"] = "a" + strconv.FormatInt(c.token.ID, 10)
	}
	if scopes.has("read:users:activity", c.user.Name, "") {
		m["last_activity"] = ts(c.user.LastActivity)
	}
	jsonReply(rw, http.StatusOK, m)
}

const paginationType = "application/jupyterhub-pagination+json"

func wantsPagination(r *http.Request) bool {
	for _, part := range strings.Split(r.Header.Get("Accept"), ",") {
		mt := strings.TrimSpace(strings.Split(part, ";")[0])
		if strings.EqualFold(mt, paginationType) {
			return true
		}
	}
	return false
}

// pageParams reads offset and limit (JupyterHub: default 50 with
// pagination, 200 without, clamped to 1..200).
func pageParams(r *http.Request, paginated bool) (offset, limit int, err error) {
	q := r.URL.Query()
	limit = 200
	if paginated {
		limit = 50
	}
	if v := q.Get("offset"); v != "" {
		if offset, err = strconv.Atoi(v); err != nil || offset < 0 {
			return 0, 0, fmt.Errorf("offset must be a whole number ≥ 0, got %q", names.Quote(v))
		}
	}
	if v := q.Get("limit"); v != "" {
		if limit, err = strconv.Atoi(v); err != nil {
			return 0, 0, fmt.Errorf("limit must be a whole number, got %q", names.Quote(v))
		}
	}
	return offset, min(max(limit, 1), 200), nil
}

func (w *Web) apiListUsers(rw http.ResponseWriter, r *http.Request, c *caller) {
	if !c.scopes.has("list:users", "", "") {
		jsonError(rw, http.StatusForbidden, "Action is not authorized with current scopes; requires any of [list:users]")
		return
	}
	q := r.URL.Query()
	state := q.Get("state")
	if state != "" && state != "active" && state != "ready" && state != "inactive" {
		jsonError(rw, http.StatusBadRequest, fmt.Sprintf("Unrecognized state filter: %s", names.Quote(state)))
		return
	}
	if s := q.Get("sort"); s != "" && s != "id" && s != "name" {
		jsonError(rw, http.StatusBadRequest, fmt.Sprintf("sort must be id or name, got %s", names.Quote(s)))
		return
	}
	paginated := wantsPagination(r)
	offset, limit, err := pageParams(r, paginated)
	if err != nil {
		jsonError(rw, http.StatusBadRequest, err.Error())
		return
	}
	users, total, err := w.store.ListUsers(r.Context(), store.UserFilter{State: state, NameFilter: q.Get("name_filter"), Offset: offset, Limit: limit})
	if err != nil {
		w.serverError(rw, err)
		return
	}
	ids := make([]int64, len(users))
	for i, u := range users {
		ids[i] = u.ID
	}
	servers, err := w.store.ServersOf(r.Context(), ids)
	if err != nil {
		w.serverError(rw, err)
		return
	}
	stopped := q.Get("include_stopped_servers") != "" && q.Get("include_stopped_servers") != "false"
	items := make([]map[string]any, 0, len(users))
	for _, u := range users {
		items = append(items, w.userModel(c, u, servers[u.ID], stopped))
	}
	if !paginated {
		jsonReply(rw, http.StatusOK, items)
		return
	}
	var next any
	if offset+len(users) < total {
		nq := r.URL.Query()
		nq.Set("offset", strconv.Itoa(offset+limit))
		nq.Set("limit", strconv.Itoa(limit))
		scheme := "http"
		if w.isHTTPS(r) {
			scheme = "https"
		}
		next = map[string]any{"offset": offset + limit, "limit": limit,
			"url": scheme + "://" + r.Host + r.URL.Path + "?" + nq.Encode()}
	}
	jsonReply(rw, http.StatusOK, map[string]any{"items": items,
		"_pagination": map[string]any{"offset": offset, "limit": limit, "total": total, "next": next}})
}

func (w *Web) apiGetUser(rw http.ResponseWriter, r *http.Request, c *caller) {
	u, ok := w.targetUser(rw, r, c, "read:users", "read:users:name", "read:servers")
	if !ok {
		return
	}
	servers, err := w.store.ServersOf(r.Context(), []int64{u.ID})
	if err != nil {
		w.serverError(rw, err)
		return
	}
	stopped := r.URL.Query().Get("include_stopped_servers") != ""
	jsonReply(rw, http.StatusOK, w.userModel(c, u, servers[u.ID], stopped))
}

// createUsers adds users by name (admin:users). Names must be valid Unix
// user names; the spawner refuses names that are not real accounts.
func (w *Web) createUsers(ctx context.Context, c *caller, list []string, admin bool) ([]store.User, int, error) {
	if !c.scopes.has("admin:users", "", "") {
		//lint:ignore ST1005 JupyterHub's wire text, shown to API clients as is
		return nil, http.StatusForbidden, errors.New("Action is not authorized with current scopes; requires any of [admin:users]")
	}
	if admin && !c.user.Admin {
		return nil, http.StatusForbidden, errors.New("only admins may create admins")
	}
	if len(list) == 0 || len(list) > 1000 {
		return nil, http.StatusBadRequest, errors.New("give between 1 and 1000 user names")
	}
	var out []store.User
	for _, n := range list {
		if err := names.Check(n); err != nil {
			return nil, http.StatusBadRequest, fmt.Errorf("invalid user name %s: %v", names.Quote(n), err)
		}
	}
	for _, n := range list {
		u, err := w.store.CreateUser(ctx, n, admin)
		if errors.Is(err, store.ErrConflict) {
			continue
		}
		if err != nil {
			return nil, http.StatusInternalServerError, err
		}
		out = append(out, u)
		w.auditAPI(ctx, c, "user.create", n, "")
	}
	if len(out) == 0 {
		return nil, http.StatusConflict, errors.New("all those users already exist")
	}
	return out, http.StatusCreated, nil
}

func (w *Web) apiCreateUsers(rw http.ResponseWriter, r *http.Request, c *caller) {
	var body struct {
		Usernames []string `json:"usernames"`
		Admin     bool     `json:"admin"`
	}
	if err := decodeJSON(r, &body); err != nil {
		jsonError(rw, http.StatusBadRequest, err.Error())
		return
	}
	users, code, err := w.createUsers(r.Context(), c, body.Usernames, body.Admin)
	w.replyUsers(rw, c, users, code, err)
}

func (w *Web) apiCreateUser(rw http.ResponseWriter, r *http.Request, c *caller) {
	var body struct {
		Admin bool `json:"admin"`
	}
	if r.ContentLength != 0 {
		if err := decodeJSON(r, &body); err != nil {
			jsonError(rw, http.StatusBadRequest, err.Error())
			return
		}
	}
	users, code, err := w.createUsers(r.Context(), c, []string{r.PathValue("name")}, body.Admin)
	if err == nil {
		jsonReply(rw, code, w.userModel(c, users[0], nil, false))
		return
	}
	w.replyUsers(rw, c, users, code, err)
}

func (w *Web) replyUsers(rw http.ResponseWriter, c *caller, users []store.User, code int, err error) {
	if err != nil {
		if code == http.StatusInternalServerError {
			w.serverError(rw, err)
			return
		}
		jsonError(rw, code, err.Error())
		return
	}
	out := make([]map[string]any, 0, len(users))
	for _, u := range users {
		out = append(out, w.userModel(c, u, nil, false))
	}
	jsonReply(rw, code, out)
}

func (w *Web) apiPatchUser(rw http.ResponseWriter, r *http.Request, c *caller) {
	u, ok := w.targetUser(rw, r, c, "admin:users")
	if !ok {
		return
	}
	var body struct {
		Admin *bool `json:"admin"`
	}
	if err := decodeJSON(r, &body); err != nil {
		jsonError(rw, http.StatusBadRequest, err.Error())
		return
	}
	if body.Admin != nil {
		// Only an admin may grant admin (CVE-2024-41942: admin:users alone
		// must not make its holder an admin).
		if *body.Admin && !c.user.Admin {
			jsonError(rw, http.StatusForbidden, "only admins may make users admins")
			return
		}
		if err := w.store.SetAdmin(r.Context(), u.Name, *body.Admin); err != nil {
			w.serverError(rw, err)
			return
		}
		u.Admin = *body.Admin
		w.auditAPI(r.Context(), c, "user.admin", u.Name, strconv.FormatBool(*body.Admin))
	}
	jsonReply(rw, http.StatusOK, w.userModel(c, u, nil, false))
}

func (w *Web) apiDeleteUser(rw http.ResponseWriter, r *http.Request, c *caller) {
	u, ok := w.targetUser(rw, r, c, "delete:users")
	if !ok {
		return
	}
	if u.ID == c.user.ID {
		jsonError(rw, http.StatusBadRequest, "you cannot delete yourself")
		return
	}
	if err := w.hub.Stop(r.Context(), u, "", "user deleted", c.user.Name); err != nil {
		w.serverError(rw, err)
		return
	}
	if err := w.store.DeleteUser(r.Context(), u.Name); err != nil {
		w.serverError(rw, err)
		return
	}
	w.auditAPI(r.Context(), c, "user.delete", u.Name, "")
	rw.WriteHeader(http.StatusNoContent)
}

// slowSpawn is how long the start API waits before answering 202
// (JupyterHub's slow_spawn_timeout).
const slowSpawn = 10 * time.Second

func (w *Web) apiStartServer(rw http.ResponseWriter, r *http.Request, c *caller) {
	u, ok := w.targetUser(rw, r, c, "servers")
	if !ok {
		return
	}
	if r.ContentLength > 0 {
		var opts map[string]any
		if err := decodeJSON(r, &opts); err != nil {
			jsonError(rw, http.StatusBadRequest, err.Error())
			return
		}
	}
	op, err := w.hub.Start(r.Context(), u, r.PathValue("server"))
	if !w.startError(rw, u, err) {
		return
	}
	w.auditAPI(r.Context(), c, "server.start-request", u.Name, "")
	ctx, cancel := context.WithTimeout(r.Context(), slowSpawn)
	defer cancel()
	if err := op.Wait(ctx); err != nil {
		if ctx.Err() != nil {
			rw.WriteHeader(http.StatusAccepted)
			return
		}
		jsonError(rw, http.StatusInternalServerError, err.Error())
		return
	}
	rw.WriteHeader(http.StatusCreated)
}

// startError answers a refused start and reports whether to go on.
func (w *Web) startError(rw http.ResponseWriter, u store.User, err error) bool {
	var tooMany *hub.TooManyError
	switch {
	case err == nil:
		return true
	case errors.Is(err, hub.ErrAlreadyRunning):
		jsonError(rw, http.StatusBadRequest, u.Name+" is already running")
	case errors.Is(err, hub.ErrPendingStop):
		jsonError(rw, http.StatusBadRequest, u.Name+" is pending stop")
	case errors.Is(err, hub.ErrNamedServers):
		jsonError(rw, http.StatusBadRequest, "Named servers are not enabled.")
	case errors.As(err, &tooMany):
		rw.Header().Set("Retry-After", strconv.Itoa(int(tooMany.RetryAfter.Seconds())))
		jsonError(rw, http.StatusTooManyRequests, err.Error())
	default:
		w.serverError(rw, err)
	}
	return false
}

func (w *Web) apiStopServer(rw http.ResponseWriter, r *http.Request, c *caller) {
	u, ok := w.targetUser(rw, r, c, "delete:servers")
	if !ok {
		return
	}
	server := r.PathValue("server")
	if server != "" {
		jsonError(rw, http.StatusNotFound, fmt.Sprintf("%s has no server named %s", u.Name, names.Quote(server)))
		return
	}
	reason, by := "stopped through the API", c.user.Name
	if c.user.ID == u.ID {
		reason = "stopped by the user"
	}
	done := make(chan error, 1)
	go func() { done <- w.hub.Stop(context.WithoutCancel(r.Context()), u, server, reason, by) }()
	select {
	case err := <-done:
		if err != nil {
			w.serverError(rw, err)
			return
		}
		rw.WriteHeader(http.StatusNoContent)
	case <-time.After(slowSpawn):
		rw.WriteHeader(http.StatusAccepted)
	}
}

// apiProgress is the spawn progress event stream (server-sent events).
func (w *Web) apiProgress(rw http.ResponseWriter, r *http.Request, c *caller) {
	u, ok := w.targetUser(rw, r, c, "read:servers")
	if !ok {
		return
	}
	server := r.PathValue("server")
	op := w.hub.Pending(u.Name, server)
	srv, err := w.store.Server(r.Context(), u.ID, server)
	if op == nil || op.Kind != "start" {
		switch {
		case err == nil && srv.State == store.StateRunning:
			prefix := hub.ServerPrefix(w.base, u.Name, server)
			streamEvents(rw, []hub.Event{{Progress: 100, Ready: true, Message: "Server ready at " + prefix, URL: prefix}})
		case err == nil && srv.State == store.StateFailed:
			streamEvents(rw, []hub.Event{{Progress: 100, Failed: true, Message: "Spawn failed: " + srv.StopReason}})
		default:
			jsonError(rw, http.StatusBadRequest, "server is not starting")
		}
		return
	}
	rw.Header().Set("Content-Type", "text/event-stream")
	rw.Header().Set("Cache-Control", "no-cache")
	rw.WriteHeader(http.StatusOK)
	flusher, _ := rw.(http.Flusher)
	keepalive := time.NewTicker(8 * time.Second)
	defer keepalive.Stop()
	for i := 0; ; {
		events, done, changed := op.Since(i)
		i += len(events)
		writeEvents(rw, events)
		if flusher != nil {
			flusher.Flush()
		}
		if done {
			return
		}
		select {
		case <-r.Context().Done():
			return
		case <-changed:
		case <-keepalive.C:
			fmt.Fprint(rw, "\n")
		}
	}
}

func streamEvents(rw http.ResponseWriter, events []hub.Event) {
	rw.Header().Set("Content-Type", "text/event-stream")
	rw.WriteHeader(http.StatusOK)
	writeEvents(rw, events)
}

func writeEvents(rw http.ResponseWriter, events []hub.Event) {
	for _, e := range events {
		b, _ := json.Marshal(e)
		fmt.Fprintf(rw, "data: %s\n\n", b)
	}
}

// apiActivity records activity a server reports (jupyterhub-contract.md §1.5).
func (w *Web) apiActivity(rw http.ResponseWriter, r *http.Request, c *caller) {
	u, ok := w.targetUser(rw, r, c, "users:activity")
	if !ok {
		return
	}
	var body struct {
		LastActivity *string `json:"last_activity"`
		Servers      map[string]struct {
			LastActivity *string `json:"last_activity"`
		} `json:"servers"`
	}
	dec := json.NewDecoder(r.Body)
	if err := dec.Decode(&body); err != nil {
		jsonError(rw, http.StatusBadRequest, "invalid JSON body: "+err.Error())
		return
	}
	if body.LastActivity == nil && body.Servers == nil {
		jsonError(rw, http.StatusBadRequest, "body must contain at least one of `last_activity` or `servers`")
		return
	}
	limit := w.now().Add(time.Hour)
	parse := func(s *string) (time.Time, error) {
		if s == nil {
			return time.Time{}, errors.New("missing last_activity")
		}
		t, err := parseTimestamp(*s)
		if err != nil {
			return time.Time{}, err
		}
		if t.After(limit) {
			//lint:ignore ST1005 JupyterHub's wire text, shown to API clients as is
			return time.Time{}, fmt.Errorf("Rejecting activity from more than an hour in the future: %s", *s)
		}
		return t, nil
	}
	type update struct {
		id int64
		t  time.Time
	}
	var updates []update
	for name, s := range body.Servers {
		srv, err := w.store.Server(r.Context(), u.ID, name)
		if err != nil {
			jsonError(rw, http.StatusBadRequest, fmt.Sprintf("No such server %s for user %s", names.Quote(name), u.Name))
			return
		}
		t, err := parse(s.LastActivity)
		if err != nil {
			jsonError(rw, http.StatusBadRequest, err.Error())
			return
		}
		updates = append(updates, update{srv.ID, t})
	}
	for _, up := range updates {
		if err := w.store.RecordActivity(r.Context(), up.id, up.t, false); err != nil {
			w.serverError(rw, err)
			return
		}
	}
	if body.LastActivity != nil {
		t, err := parse(body.LastActivity)
		if err != nil {
			jsonError(rw, http.StatusBadRequest, err.Error())
			return
		}
		if err := w.store.TouchUser(r.Context(), u.ID, t); err != nil {
			w.serverError(rw, err)
			return
		}
	}
	rw.WriteHeader(http.StatusOK)
}

// parseTimestamp accepts ISO-8601 / RFC 3339 with or without a zone
// (naive means UTC) and fraction.
func parseTimestamp(s string) (time.Time, error) {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999999", "2006-01-02 15:04:05.999999999"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("invalid timestamp %s", names.Quote(s))
}

func (w *Web) apiProxy(rw http.ResponseWriter, r *http.Request, c *caller) {
	if !c.scopes.has("proxy", "", "") {
		jsonError(rw, http.StatusForbidden, "Action is not authorized with current scopes; requires any of [proxy]")
		return
	}
	servers, err := w.store.ActiveServers(r.Context())
	if err != nil {
		w.serverError(rw, err)
		return
	}
	routes := map[string]any{}
	for _, s := range servers {
		if s.State != store.StateRunning {
			continue
		}
		p := hub.ServerPrefix(w.base, s.User, s.Name)
		routes[p] = map[string]any{"routespec": p, "target": fmt.Sprintf("http://%s:%d", s.IP, s.Port),
			"data": map[string]any{"user": s.User, "server_name": s.Name, "last_activity": ts(w.lastActivity(s))}}
	}
	jsonReply(rw, http.StatusOK, routes)
}

func (w *Web) auditAPI(ctx context.Context, c *caller, action, target, detail string) {
	if err := w.store.AddEvent(ctx, store.Event{Actor: c.user.Name, ActorUID: -1, Source: "api", Action: action, Target: target, Detail: detail}); err != nil {
		w.log.Warn("audit log write failed", "action", action, "err", err)
	}
}
