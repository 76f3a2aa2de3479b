package web

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/hubd/hubd/core/hub"
	"github.com/hubd/hubd/core/names"
	"github.com/hubd/hubd/core/scopes"
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
		"name":              s.Name,
		"full_name":         s.User + "/" + s.Name,
		"last_activity":     ts(w.lastActivity(s)),
		"started":           ts(s.Started),
		"pending":           w.pending(s),
		"ready":             s.State == store.StateRunning && w.hub.Pending(s.User, s.Name) == nil,
		"stopped":           !s.Active(),
		"url":               prefix,
		"user_options":      userOptions(s.UserOptions),
		"progress_url":      progress,
		"full_url":          nil,
		"full_progress_url": nil,
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

// userOptions decodes the options a server was started with.
func userOptions(js string) map[string]any {
	out := map[string]any{}
	_ = json.Unmarshal([]byte(js), &out)
	return out
}

// userModel is JupyterHub's user model, filtered by what the caller may
// read; groups are the user's.
func (w *Web) userModel(c *caller, u store.User, groups []string, servers []store.Server, includeStopped bool) map[string]any {
	m := map[string]any{"kind": "user", "name": u.Name, "admin": u.Admin}
	t := scopes.Target{User: u.Name, Groups: groups}
	// Field visibility per scope as in JupyterHub: the idle culler holds
	// read:users:activity, not read:users, and needs last_activity.
	if c.scopes.Has("read:users:activity", t) {
		m["last_activity"] = ts(u.LastActivity)
	}
	if c.scopes.Has("read:users:groups", t) {
		m["groups"] = groups
	}
	if c.scopes.Has("read:users", t) || c.scopes.Has("read:roles:users", t) {
		m["roles"] = w.access.UserRoles(u, groups)
	}
	if c.scopes.Has("read:users", t) {
		m["created"] = ts(u.Created)
		m["server"] = nil
		m["pending"] = nil
	}
	if c.scopes.Has("read:servers", t) {
		admin := c.scopes.Has("admin:server_state", t)
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

func (w *Web) apiInfo(rw http.ResponseWriter, r *http.Request, c *caller) error {
	if err := c.requireScope("read:hub"); err != nil {
		return err
	}
	jsonReply(rw, http.StatusOK, map[string]any{
		"version": w.cfg.Hub.JupyterHubVersion, "hubd_version": version.Version,
		"python": "", "sys_executable": "", "go": runtime.Version(),
		"spawner":       map[string]string{"class": "hubd." + w.cfg.Spawner.Kind, "version": version.Version},
		"authenticator": map[string]any{"class": "hubd." + strings.Join(w.cfg.Auth.Methods, "+"), "methods": w.cfg.Auth.Methods, "version": version.Version},
	})
	return nil
}

// apiSelf is GET /hub/api/user: who the token or cookie belongs to and
// exactly its scopes (jupyterhub-singleuser checks them against its own
// access scopes, as JupyterHub 3.0.0 does).
func (w *Web) apiSelf(rw http.ResponseWriter, r *http.Request, c *caller) error {
	set := c.scopes
	if c.token != nil {
		// Identity scopes are implied for any token, as in JupyterHub.
		identity := []string{"read:users:name!user", "read:users:groups!user", "read:services:name!service"}
		if c.token.Kind == store.TokenServer {
			identity = append(identity, "read:users:activity!user")
		}
		set = set.Union(scopes.Expand(identity, scopes.Owner{User: c.user.Name, Service: c.service}))
	}
	var m map[string]any
	if c.service != "" {
		sv, _ := w.access.Service(c.service)
		m = w.serviceModel(sv)
	} else {
		m = map[string]any{"kind": "user", "name": c.user.Name, "admin": c.user.Admin, "groups": c.groups,
			"roles": w.access.UserRoles(c.user, c.groups)}
		if set.Has("read:users:activity", scopes.Target{User: c.user.Name}) {
			m["last_activity"] = ts(c.user.LastActivity)
		}
	}
	m["session_id"], m["token_id"], m["scopes"] = nil, nil, set.Strings()
	if c.sessionID != "" {
		m["session_id"] = c.sessionID
	}
	if c.token != nil {
		m["token_id"] = "a" + strconv.FormatInt(c.token.ID, 10)
	}
	jsonReply(rw, http.StatusOK, m)
	return nil
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

func (w *Web) apiListUsers(rw http.ResponseWriter, r *http.Request, c *caller) error {
	if err := c.requireScope("list:users"); err != nil {
		return err
	}
	q := r.URL.Query()
	state := q.Get("state")
	if state != "" && state != "active" && state != "ready" && state != "inactive" {
		return apiErrorf(http.StatusBadRequest, "Unrecognized state filter: %s", names.Quote(state))
	}
	if s := q.Get("sort"); s != "" && s != "id" && s != "name" {
		return apiErrorf(http.StatusBadRequest, "sort must be id or name, got %s", names.Quote(s))
	}
	paginated := wantsPagination(r)
	offset, limit, err := pageParams(r, paginated)
	if err != nil {
		return apiErrorf(http.StatusBadRequest, "%v", err)
	}
	users, total, err := w.store.ListUsers(r.Context(), store.UserFilter{State: state, NameFilter: q.Get("name_filter"), Offset: offset, Limit: limit})
	if err != nil {
		return err
	}
	ids := make([]int64, len(users))
	for i, u := range users {
		ids[i] = u.ID
	}
	servers, err := w.store.ServersOf(r.Context(), ids)
	if err != nil {
		return err
	}
	stopped := q.Get("include_stopped_servers") != "" && q.Get("include_stopped_servers") != "false"
	items := make([]map[string]any, 0, len(users))
	for _, u := range users {
		groups, err := w.store.GroupsOf(r.Context(), u.ID)
		if err != nil {
			return err
		}
		items = append(items, w.userModel(c, u, groups, servers[u.ID], stopped))
	}
	w.replyPage(rw, r, paginated, items, offset, limit, len(users), total)
	return nil
}

// replyPage answers a list: a bare array, or JupyterHub's pagination
// envelope with an absolute next URL (clients fetch it verbatim).
func (w *Web) replyPage(rw http.ResponseWriter, r *http.Request, paginated bool, items any, offset, limit, got, total int) {
	if !paginated {
		jsonReply(rw, http.StatusOK, items)
		return
	}
	var next any
	if offset+got < total {
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

func (w *Web) apiGetUser(rw http.ResponseWriter, r *http.Request, c *caller) error {
	u, err := w.targetUser(r, c, "read:users", "read:users:name", "read:servers")
	if err != nil {
		return err
	}
	jsonReply(rw, http.StatusOK, w.fullUserModel(r.Context(), c, u, r.URL.Query().Get("include_stopped_servers") != ""))
	return nil
}

// fullUserModel reads what the user model shows (servers, groups) and
// builds it; on a read error it shows what it has.
func (w *Web) fullUserModel(ctx context.Context, c *caller, u store.User, includeStopped bool) map[string]any {
	servers, _ := w.store.ServersOf(ctx, []int64{u.ID})
	groups, _ := w.store.GroupsOf(ctx, u.ID)
	return w.userModel(c, u, groups, servers[u.ID], includeStopped)
}

// createUsers adds users by name (admin:users). Names must be valid Unix
// user names; the spawner refuses names that are not real accounts.
func (w *Web) createUsers(ctx context.Context, c *caller, list []string, admin bool) ([]store.User, error) {
	if err := c.requireScope("admin:users"); err != nil {
		return nil, err
	}
	if admin && !c.admin {
		return nil, apiErrorf(http.StatusForbidden, "only admins may create admins")
	}
	if len(list) == 0 || len(list) > 1000 {
		return nil, apiErrorf(http.StatusBadRequest, "give between 1 and 1000 user names")
	}
	var out []store.User
	for _, n := range list {
		if err := names.Check(n); err != nil {
			return nil, apiErrorf(http.StatusBadRequest, "invalid user name %s: %v", names.Quote(n), err)
		}
	}
	for _, n := range list {
		u, err := w.store.CreateUser(ctx, n, admin)
		if errors.Is(err, store.ErrConflict) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, u)
		w.auditAPI(ctx, c, "user.create", n, "")
	}
	if len(out) == 0 {
		return nil, apiErrorf(http.StatusConflict, "all those users already exist")
	}
	return out, nil
}

func (w *Web) apiCreateUsers(rw http.ResponseWriter, r *http.Request, c *caller) error {
	var body struct {
		Usernames []string `json:"usernames"`
		Admin     bool     `json:"admin"`
	}
	if err := decodeJSON(r, &body); err != nil {
		return err
	}
	users, err := w.createUsers(r.Context(), c, body.Usernames, body.Admin)
	if err != nil {
		return err
	}
	out := make([]map[string]any, 0, len(users))
	for _, u := range users {
		out = append(out, w.userModel(c, u, []string{}, nil, false))
	}
	jsonReply(rw, http.StatusCreated, out)
	return nil
}

func (w *Web) apiCreateUser(rw http.ResponseWriter, r *http.Request, c *caller) error {
	var body struct {
		Admin bool `json:"admin"`
	}
	if r.ContentLength != 0 {
		if err := decodeJSON(r, &body); err != nil {
			return err
		}
	}
	users, err := w.createUsers(r.Context(), c, []string{r.PathValue("name")}, body.Admin)
	if err != nil {
		return err
	}
	jsonReply(rw, http.StatusCreated, w.userModel(c, users[0], []string{}, nil, false))
	return nil
}

func (w *Web) apiPatchUser(rw http.ResponseWriter, r *http.Request, c *caller) error {
	u, err := w.targetUser(r, c, "admin:users")
	if err != nil {
		return err
	}
	var body struct {
		Admin *bool `json:"admin"`
	}
	if err := decodeJSON(r, &body); err != nil {
		return err
	}
	if body.Admin != nil {
		// Only an admin may grant admin (CVE-2024-41942: admin:users alone
		// must not make its holder an admin), and only with unlimited
		// admin:users: an admin's token limited to a group must not mint
		// a new admin, who would hold everything.
		if *body.Admin && (!c.admin || c.requireScope("admin:users") != nil) {
			return apiErrorf(http.StatusForbidden, "only admins, with admin:users for every user, may make users admins")
		}
		change, err := w.hub.SetAdmin(r.Context(), u.Name, *body.Admin)
		if err != nil {
			return err
		}
		u.Admin = *body.Admin
		w.auditAPI(r.Context(), c, "user.admin", u.Name, change.AuditDetail())
	}
	jsonReply(rw, http.StatusOK, w.fullUserModel(r.Context(), c, u, false))
	return nil
}

func (w *Web) apiDeleteUser(rw http.ResponseWriter, r *http.Request, c *caller) error {
	u, err := w.targetUser(r, c, "delete:users")
	if err != nil {
		return err
	}
	if c.is(u) {
		return apiErrorf(http.StatusBadRequest, "you cannot delete yourself")
	}
	if err := w.hub.DeleteUser(r.Context(), u, "user deleted", c.name()); err != nil {
		return err
	}
	w.auditAPI(r.Context(), c, "user.delete", u.Name, "")
	rw.WriteHeader(http.StatusNoContent)
	return nil
}

// slowSpawn is how long the start API waits before answering 202
// (JupyterHub's slow_spawn_timeout).
const slowSpawn = 10 * time.Second

func (w *Web) apiStartServer(rw http.ResponseWriter, r *http.Request, c *caller) error {
	u, err := w.targetUser(r, c, "servers")
	if err != nil {
		return err
	}
	// The body, when there is one, is the server's user_options (a
	// JSON object): the hub takes a profile name from it and refuses
	// anything else.
	options := ""
	if r.ContentLength != 0 {
		var opts map[string]any
		if err := decodeOptions(r, &opts); err != nil {
			return err
		}
		b, _ := json.Marshal(opts)
		options = string(b)
	}
	server := r.PathValue("server")
	op, err := w.hub.StartWith(r.Context(), u, server, options)
	if err != nil {
		return startError(u, server, err)
	}
	w.auditAPI(r.Context(), c, "server.start-request", serverLabel(u.Name, server), "")
	ctx, cancel := context.WithTimeout(r.Context(), slowSpawn)
	defer cancel()
	err = op.Wait(ctx)
	switch {
	case err == nil:
		rw.WriteHeader(http.StatusCreated)
	case ctx.Err() != nil:
		rw.WriteHeader(http.StatusAccepted)
	case errors.Is(err, context.Canceled):
		// Only a stop cancels a start.
		return apiErrorf(http.StatusConflict, "%s was stopped while it was starting", serverLabel(u.Name, server))
	default:
		return apiErrorf(http.StatusInternalServerError, "%v", err)
	}
	return nil
}

// decodeOptions reads a JSON object of any fields (user options are the
// spawner's business, not a fixed shape), with decodeJSON's limits.
func decodeOptions(r *http.Request, v *map[string]any) error {
	body, err := io.ReadAll(r.Body)
	if tooBig, ok := errors.AsType[*http.MaxBytesError](err); ok {
		return apiErrorf(http.StatusRequestEntityTooLarge, "request body is larger than %d bytes", tooBig.Limit)
	}
	if err != nil {
		return apiErrorf(http.StatusBadRequest, "read the request body: %v", err)
	}
	if len(bytes.TrimSpace(body)) == 0 {
		*v = map[string]any{}
		return nil
	}
	if err := json.Unmarshal(body, v); err != nil || *v == nil {
		return apiErrorf(http.StatusBadRequest, "invalid JSON body: want one JSON object of server options")
	}
	return nil
}

// serverLabel names a server in messages: the user, or user/server.
func serverLabel(user, server string) string {
	if server == "" {
		return user
	}
	return user + "/" + server
}

// startError is the answer to a start the hub refused.
func startError(u store.User, server string, err error) error {
	label := serverLabel(u.Name, server)
	switch {
	case errors.Is(err, hub.ErrAlreadyRunning):
		return apiErrorf(http.StatusBadRequest, "%s is already running", label)
	case errors.Is(err, hub.ErrPendingStop):
		return apiErrorf(http.StatusBadRequest, "%s is pending stop", label)
	case errors.Is(err, hub.ErrNamedServers):
		return apiErrorf(http.StatusBadRequest, "Named servers are not enabled.")
	}
	if tooMany, ok := errors.AsType[*hub.TooManyError](err); ok {
		return &apiError{status: http.StatusTooManyRequests, msg: err.Error(), retryAfter: tooMany.RetryAfter}
	}
	if _, ok := errors.AsType[*hub.NamedLimitError](err); ok {
		return apiErrorf(http.StatusBadRequest, "%v", err)
	}
	if _, ok := errors.AsType[*hub.OptionsError](err); ok {
		return apiErrorf(http.StatusBadRequest, "%v", err)
	}
	if pe, ok := errors.AsType[*hub.ProfileError](err); ok {
		if pe.Forbidden {
			return apiErrorf(http.StatusForbidden, "%v", err)
		}
		return apiErrorf(http.StatusBadRequest, "%v", err)
	}
	if server != "" && hub.CheckServerName(server) != nil {
		return apiErrorf(http.StatusBadRequest, "%v", err)
	}
	return err
}

func (w *Web) apiStopServer(rw http.ResponseWriter, r *http.Request, c *caller) error {
	u, err := w.targetUser(r, c, "delete:servers")
	if err != nil {
		return err
	}
	var body struct {
		Remove bool `json:"remove"`
	}
	if r.ContentLength != 0 {
		if err := decodeJSON(r, &body); err != nil {
			return err
		}
	}
	server := r.PathValue("server")
	if _, err := w.store.Server(r.Context(), u.ID, server); errors.Is(err, store.ErrNotFound) {
		if server == "" {
			rw.WriteHeader(http.StatusNoContent) // never started: nothing to stop
			return nil
		}
		return apiErrorf(http.StatusNotFound, "%s has no server named %s", u.Name, names.Quote(server))
	} else if err != nil {
		return err
	}
	reason, by := "stopped through the API", c.name()
	if c.is(u) {
		reason = "stopped by the user"
	}
	remove := body.Remove && server != ""
	done := make(chan error, 1)
	go func() {
		ctx := context.WithoutCancel(r.Context())
		err := w.hub.Stop(ctx, u, server, reason, by)
		if err == nil && remove {
			err = w.store.DeleteServer(ctx, u.ID, server)
			if err == nil {
				w.auditAPI(ctx, c, "server.remove", serverLabel(u.Name, server), "")
			}
		}
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			return err
		}
		rw.WriteHeader(http.StatusNoContent)
	case <-time.After(slowSpawn):
		rw.WriteHeader(http.StatusAccepted)
	}
	return nil
}

// addressHostRE is what a reported host may look like: a host name or an
// IPv4 or IPv6 address, nothing that could smuggle a path or a user into a
// URL.
var addressHostRE = regexp.MustCompile(`^[A-Za-z0-9.:-]{1,253}$`)

// apiServerAddress is where a server that finds its own address (a Slurm
// job) reports it while it starts. Only that server's own token may call
// it; the spawner checks the address against where the job runs.
func (w *Web) apiServerAddress(rw http.ResponseWriter, r *http.Request, c *caller) error {
	u, err := w.existingUser(r.Context(), r.PathValue("name"))
	if err != nil {
		return err
	}
	server := r.PathValue("server")
	srv, err := w.store.Server(r.Context(), u.ID, server)
	if err != nil || c.token == nil || c.token.Kind != store.TokenServer || c.token.ServerID != srv.ID || !c.is(u) {
		return apiErrorf(http.StatusForbidden, "only the server's own token may report its address")
	}
	var body struct {
		IP   string `json:"ip"`
		Port int    `json:"port"`
	}
	if err := decodeJSON(r, &body); err != nil {
		return err
	}
	if !addressHostRE.MatchString(body.IP) || body.Port < 1 || body.Port > 65535 {
		return apiErrorf(http.StatusBadRequest, "want {\"ip\": the node's address, \"port\": 1 to 65535}, got ip %s port %d", names.Quote(truncate(body.IP, 64)), body.Port)
	}
	err = w.hub.ReportAddress(r.Context(), u.Name, server, body.IP, body.Port)
	switch {
	case err == nil:
		rw.WriteHeader(http.StatusNoContent)
		return nil
	case errors.Is(err, hub.ErrNotPlacing):
		return apiErrorf(http.StatusConflict, "%v", err)
	}
	if _, ok := errors.AsType[*hub.AddressError](err); ok {
		return apiErrorf(http.StatusBadRequest, "%v", err)
	}
	return err
}

// apiProgress is the spawn progress event stream (server-sent events).
func (w *Web) apiProgress(rw http.ResponseWriter, r *http.Request, c *caller) error {
	u, err := w.targetUser(r, c, "read:servers")
	if err != nil {
		return err
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
			return apiErrorf(http.StatusBadRequest, "server is not starting")
		}
		return nil
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
			return nil
		}
		select {
		case <-r.Context().Done():
			return nil
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

// apiActivity records activity a server reports: its own last activity
// and its user's, never more than an hour in the future.
func (w *Web) apiActivity(rw http.ResponseWriter, r *http.Request, c *caller) error {
	u, err := w.targetUser(r, c, "users:activity")
	if err != nil {
		return err
	}
	var body struct {
		LastActivity *string `json:"last_activity"`
		Servers      map[string]struct {
			LastActivity *string `json:"last_activity"`
		} `json:"servers"`
	}
	if err := decodeJSON(r, &body); err != nil {
		return err
	}
	if body.LastActivity == nil && body.Servers == nil {
		return apiErrorf(http.StatusBadRequest, "body must contain at least one of `last_activity` or `servers`")
	}
	limit := w.now().Add(time.Hour)
	parse := func(s *string) (time.Time, error) {
		if s == nil {
			return time.Time{}, apiErrorf(http.StatusBadRequest, "missing last_activity")
		}
		t, err := parseTimestamp(*s)
		if err != nil {
			return time.Time{}, apiErrorf(http.StatusBadRequest, "%v", err)
		}
		if t.After(limit) {
			return time.Time{}, apiErrorf(http.StatusBadRequest, "Rejecting activity from more than an hour in the future: %s", *s)
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
			return apiErrorf(http.StatusBadRequest, "No such server %s for user %s", names.Quote(name), u.Name)
		}
		t, err := parse(s.LastActivity)
		if err != nil {
			return err
		}
		updates = append(updates, update{srv.ID, t})
	}
	for _, up := range updates {
		if err := w.store.RecordActivity(r.Context(), up.id, up.t, false); err != nil {
			return err
		}
	}
	if body.LastActivity != nil {
		t, err := parse(body.LastActivity)
		if err != nil {
			return err
		}
		if err := w.store.TouchUser(r.Context(), u.ID, t); err != nil {
			return err
		}
	}
	rw.WriteHeader(http.StatusOK)
	return nil
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

func (w *Web) apiProxy(rw http.ResponseWriter, r *http.Request, c *caller) error {
	if err := c.requireScope("proxy"); err != nil {
		return err
	}
	servers, err := w.store.ActiveServers(r.Context())
	if err != nil {
		return err
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
	return nil
}

func (w *Web) auditAPI(ctx context.Context, c *caller, action, target, detail string) {
	if err := w.store.AddEvent(ctx, store.Event{Actor: c.name(), ActorUID: -1, Source: "api", Action: action, Target: target, Detail: detail}); err != nil {
		w.log.Warn("audit log write failed", "action", action, "err", err)
	}
}
