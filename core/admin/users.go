package admin

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"

	"github.com/hubd/hubd/core/admin/wire"
	"github.com/hubd/hubd/core/names"
	"github.com/hubd/hubd/core/store"
)

const (
	defaultUserPage = 200
	maxUserPage     = 1000
)

// listUsers pages the hub's users with how each logs in, whether they
// are an admin and why, what their servers run as, when they were last
// seen and their servers' state.
func (s *Server) listUsers(w http.ResponseWriter, r *http.Request, _ identity) error {
	ctx := r.Context()
	f := store.UserFilter{NameFilter: r.URL.Query().Get("name")}
	var err error
	if f.Limit, err = queryInt(r, "limit", defaultUserPage, 1, maxUserPage); err != nil {
		return err
	}
	if f.Offset, err = queryInt(r, "offset", 0, 0, math.MaxInt); err != nil {
		return err
	}
	users, total, err := s.store.ListUsers(ctx, f)
	if err != nil {
		return err
	}
	ids := make([]int64, len(users))
	for i, u := range users {
		ids[i] = u.ID
	}
	servers, err := s.store.ServersOf(ctx, ids)
	if err != nil {
		return err
	}
	out := wire.Users{Users: make([]wire.User, 0, len(users)), Total: total}
	for _, u := range users {
		out.Users = append(out.Users, s.wireUser(u, servers[u.ID]))
	}
	if next := f.Offset + len(users); len(users) > 0 && next < total {
		out.NextOffset = next
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) wireUser(u store.User, servers []store.Server) wire.User {
	out := wire.User{Name: u.Name, Method: u.Method, Admin: u.Admin, AdminByHand: u.AdminGrant, AdminRule: u.AdminRule,
		Account: u.Account, Created: u.Created.UTC(), LastSeen: u.LastActivity.UTC()}
	for _, srv := range servers {
		if srv.Active() {
			out.ActiveServers++
		}
		if srv.Name == "" {
			out.Server = srv.State
		}
	}
	if op := s.hub.Pending(u.Name, ""); op != nil {
		out.Pending = op.Kind
	}
	return out
}

// targetUser reads the user named in the path.
func (s *Server) targetUser(ctx context.Context, r *http.Request) (store.User, []store.Server, error) {
	name := r.PathValue("user")
	if err := names.Check(name); err != nil {
		return store.User{}, nil, errorf(http.StatusBadRequest, "user %s: %v", names.Quote(name), err)
	}
	u, err := s.store.UserByName(ctx, name)
	if errors.Is(err, store.ErrNotFound) {
		return store.User{}, nil, errorf(http.StatusNotFound, "no user %s in the hub: `hubd user list` shows who is", name)
	}
	if err != nil {
		return store.User{}, nil, err
	}
	servers, err := s.store.ServersOf(ctx, []int64{u.ID})
	return u, servers[u.ID], err
}

// setAdmin grants or revokes admin by hand. The answer's note says what
// the login rules will do at the user's next login.
func (s *Server) setAdmin(w http.ResponseWriter, r *http.Request, who identity) error {
	ctx := r.Context()
	var req wire.AdminRequest
	if err := decodeBody(w, r, &req); err != nil {
		return err
	}
	u, _, err := s.targetUser(ctx, r)
	if err != nil {
		return err
	}
	change, err := s.hub.SetAdmin(ctx, u.Name, req.Admin)
	if err != nil {
		return err
	}
	s.audit(ctx, who, "user.admin", u.Name, change.AuditDetail())
	u, servers, err := s.targetUser(ctx, r)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, wire.AdminResult{User: s.wireUser(u, servers), Note: change.Note()})
	return nil
}

// unlinkUser unbinds the user from the login (method and subject) they
// are bound to, so the next login that maps to their name, through any
// method, takes it: how a user moves from PAM to single sign-on.
func (s *Server) unlinkUser(w http.ResponseWriter, r *http.Request, who identity) error {
	ctx := r.Context()
	if err := decodeBody(w, r, &struct{}{}); err != nil {
		return err
	}
	u, servers, err := s.targetUser(ctx, r)
	if err != nil {
		return err
	}
	method, err := s.store.Unbind(ctx, u.ID)
	if errors.Is(err, store.ErrNotFound) {
		return errorf(http.StatusConflict, "%s is not linked to a login: their next login links it", u.Name)
	}
	if err != nil {
		return err
	}
	s.audit(ctx, who, "user.unlink", u.Name, "unlinked from their "+method+" login")
	u.Method = ""
	writeJSON(w, http.StatusOK, wire.AdminResult{User: s.wireUser(u, servers),
		Note: fmt.Sprintf("the next login as %s, through any login method the hub offers (%s included), links the name again", u.Name, method)})
	return nil
}

// deleteUser stops the user's servers, then deletes the user, as the REST
// API's delete does. It is carried through even when the caller hangs up.
func (s *Server) deleteUser(w http.ResponseWriter, r *http.Request, who identity) error {
	ctx := context.WithoutCancel(r.Context())
	u, servers, err := s.targetUser(ctx, r)
	if err != nil {
		return err
	}
	res := wire.DeletedUser{User: s.wireUser(u, servers), Stopped: []string{}}
	for _, srv := range servers {
		if srv.Active() {
			res.Stopped = append(res.Stopped, label(target{u, srv.Name}))
		}
	}
	reason := fmt.Sprintf("user deleted by %s (uid %d) through the admin socket", who.actor(), who.uid)
	if err := s.hub.DeleteUser(ctx, u, reason, who.actor()); err != nil {
		return err
	}
	s.audit(ctx, who, "user.delete", u.Name, fmt.Sprintf("stopped %d %s first", len(res.Stopped), plural(len(res.Stopped), "server", "servers")))
	writeJSON(w, http.StatusOK, res)
	return nil
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
