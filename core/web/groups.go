package web

import (
	"encoding/json"
	"errors"
	"net/http"

	"github.com/hubd/hubd/core/names"
	"github.com/hubd/hubd/core/scopes"
	"github.com/hubd/hubd/core/store"
)

// groupModel is JupyterHub's group model, filtered by what the caller
// may read.
func (w *Web) groupModel(c *caller, g store.Group) map[string]any {
	t := scopes.Target{Group: g.Name}
	m := map[string]any{"kind": "group", "name": g.Name}
	if c.scopes.Has("read:groups", t) {
		props := map[string]any{}
		_ = json.Unmarshal([]byte(g.Properties), &props)
		users := g.Users
		if users == nil {
			users = []string{}
		}
		m["users"], m["properties"] = users, props
	}
	if c.scopes.Has("read:groups", t) || c.scopes.Has("read:roles:groups", t) {
		m["roles"] = w.access.GroupRoles(g.Name)
	}
	return m
}

func (w *Web) apiListGroups(rw http.ResponseWriter, r *http.Request, c *caller) error {
	if !c.scopes.HasAny("list:groups") {
		return notAuthorized("list:groups")
	}
	paginated := wantsPagination(r)
	offset, limit, err := pageParams(r, paginated)
	if err != nil {
		return apiErrorf(http.StatusBadRequest, "%v", err)
	}
	groups, total, err := w.store.ListGroups(r.Context(), offset, limit)
	if err != nil {
		return err
	}
	items := make([]map[string]any, 0, len(groups))
	for _, g := range groups {
		if c.scopes.Has("list:groups", scopes.Target{Group: g.Name}) {
			items = append(items, w.groupModel(c, g))
		}
	}
	w.replyPage(rw, r, paginated, items, offset, limit, len(groups), total)
	return nil
}

// targetGroup checks the caller may act on the group {name} with one of
// the scopes (403 / 404 as for users) and returns it.
func (w *Web) targetGroup(r *http.Request, c *caller, scopeNames ...string) (store.Group, error) {
	name := r.PathValue("name")
	if err := w.allowedOn(r.Context(), c, scopes.Target{Group: name}, scopeNames...); err != nil {
		return store.Group{}, err
	}
	g, err := w.store.GroupByName(r.Context(), name)
	if errors.Is(err, store.ErrNotFound) {
		return store.Group{}, apiErrorf(http.StatusNotFound, "No such group: %s", names.Quote(name))
	}
	return g, err
}

func (w *Web) apiGetGroup(rw http.ResponseWriter, r *http.Request, c *caller) error {
	g, err := w.targetGroup(r, c, "read:groups", "read:groups:name", "read:roles:groups")
	if err != nil {
		return err
	}
	jsonReply(rw, http.StatusOK, w.groupModel(c, g))
	return nil
}

// usersBody is the body of the group endpoints that take users.
type usersBody struct {
	Users *[]string `json:"users"`
}

// groupError maps store errors of group changes to answers.
func groupError(err error) error {
	if missing, ok := errors.AsType[*store.MissingUserError](err); ok {
		return apiErrorf(http.StatusBadRequest, "No such user: %s", names.Quote(missing.Name))
	}
	if errors.Is(err, store.ErrConflict) {
		return apiErrorf(http.StatusConflict, "%v", err)
	}
	return err
}

// createGroup makes one group (admin:groups); users must exist.
func (w *Web) createGroup(r *http.Request, c *caller, name string, users []string) (store.Group, error) {
	if err := c.requireScope("admin:groups"); err != nil {
		return store.Group{}, err
	}
	if err := names.Check(name); err != nil {
		return store.Group{}, apiErrorf(http.StatusBadRequest, "invalid group name %s: %v", names.Quote(name), err)
	}
	if _, err := w.store.GroupByName(r.Context(), name); err == nil {
		return store.Group{}, apiErrorf(http.StatusConflict, "Group %s already exists", name)
	}
	if err := w.store.CreateGroup(r.Context(), name, users); err != nil {
		return store.Group{}, groupError(err)
	}
	w.auditAPI(r.Context(), c, "group.create", name, "")
	return w.store.GroupByName(r.Context(), name)
}

// apiCreateGroups is POST /groups with {"groups": [...], "users": [...]}.
func (w *Web) apiCreateGroups(rw http.ResponseWriter, r *http.Request, c *caller) error {
	var body struct {
		Groups []string `json:"groups"`
		Users  []string `json:"users"`
	}
	if err := decodeJSON(r, &body); err != nil {
		return err
	}
	if len(body.Groups) == 0 {
		return apiErrorf(http.StatusBadRequest, "Must specify at least one group to create")
	}
	out := []map[string]any{}
	for _, name := range body.Groups {
		g, err := w.createGroup(r, c, name, body.Users)
		if err != nil {
			return err
		}
		out = append(out, w.groupModel(c, g))
	}
	jsonReply(rw, http.StatusCreated, out)
	return nil
}

func (w *Web) apiCreateGroup(rw http.ResponseWriter, r *http.Request, c *caller) error {
	var body usersBody
	if r.ContentLength != 0 {
		if err := decodeJSON(r, &body); err != nil {
			return err
		}
	}
	var users []string
	if body.Users != nil {
		users = *body.Users
	}
	g, err := w.createGroup(r, c, r.PathValue("name"), users)
	if err != nil {
		return err
	}
	jsonReply(rw, http.StatusCreated, w.groupModel(c, g))
	return nil
}

func (w *Web) apiDeleteGroup(rw http.ResponseWriter, r *http.Request, c *caller) error {
	g, err := w.targetGroup(r, c, "delete:groups")
	if err != nil {
		return err
	}
	if err := w.store.DeleteGroup(r.Context(), g.Name); err != nil {
		return err
	}
	w.auditAPI(r.Context(), c, "group.delete", g.Name, "")
	rw.WriteHeader(http.StatusNoContent)
	return nil
}

// apiGroupUsers is POST (add) and DELETE (remove) /groups/{name}/users.
func (w *Web) apiGroupUsers(rw http.ResponseWriter, r *http.Request, c *caller) error {
	g, err := w.targetGroup(r, c, "groups")
	if err != nil {
		return err
	}
	var body usersBody
	if err := decodeJSON(r, &body); err != nil {
		return err
	}
	if body.Users == nil {
		return apiErrorf(http.StatusBadRequest, "Must specify users to add or remove")
	}
	for _, u := range *body.Users {
		if _, err := w.store.UserByName(r.Context(), u); err != nil {
			return apiErrorf(http.StatusBadRequest, "No such user: %s", names.Quote(u))
		}
	}
	action := "group.add-users"
	if r.Method == http.MethodDelete {
		action, err = "group.remove-users", w.store.RemoveGroupMembers(r.Context(), g.Name, *body.Users)
	} else {
		err = w.store.AddGroupMembers(r.Context(), g.Name, *body.Users)
	}
	if err != nil {
		return groupError(err)
	}
	w.auditAPI(r.Context(), c, action, g.Name, truncate(joinNames(*body.Users), 200))
	if g, err = w.store.GroupByName(r.Context(), g.Name); err != nil {
		return err
	}
	jsonReply(rw, http.StatusOK, w.groupModel(c, g))
	return nil
}

func joinNames(list []string) string {
	b, _ := json.Marshal(list)
	return string(b)
}

// apiGroupProperties is PUT /groups/{name}/properties: the body replaces
// the group's properties.
func (w *Web) apiGroupProperties(rw http.ResponseWriter, r *http.Request, c *caller) error {
	g, err := w.targetGroup(r, c, "groups")
	if err != nil {
		return err
	}
	var props map[string]any
	if err := decodeOptions(r, &props); err != nil {
		return err
	}
	b, _ := json.Marshal(props)
	if err := w.store.SetGroupProperties(r.Context(), g.Name, string(b)); err != nil {
		return err
	}
	w.auditAPI(r.Context(), c, "group.properties", g.Name, truncate(string(b), 200))
	g.Properties = string(b)
	jsonReply(rw, http.StatusOK, w.groupModel(c, g))
	return nil
}
