package admin

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/hubd/hubd/core/access"
	"github.com/hubd/hubd/core/admin/wire"
	"github.com/hubd/hubd/core/names"
	"github.com/hubd/hubd/core/store"
)

func wireToken(t store.Token) wire.Token {
	scopes := access.DecodeScopes(t.Scopes)
	if scopes == nil {
		scopes = []string{}
	}
	return wire.Token{ID: "a" + strconv.FormatInt(t.ID, 10), User: t.User, Service: t.Service, Kind: t.Kind,
		Scopes: scopes, Note: t.Note, Created: t.Created.UTC(), ExpiresAt: t.ExpiresAt.UTC(), LastActivity: t.LastActivity.UTC()}
}

// listTokens lists API tokens (of people and scripts, and services'
// tokens from the configuration; not servers' or browsers' OAuth tokens).
// Members see only their own; ?user= and ?service= narrow the list.
func (s *Server) listTokens(w http.ResponseWriter, r *http.Request, who identity) error {
	ctx := r.Context()
	q := r.URL.Query()
	f := store.TokenFilter{Kinds: []string{store.TokenAPI, store.TokenService}}
	user, service := q.Get("user"), q.Get("service")
	if who.role != wire.RoleAdmin {
		if service != "" || (user != "" && user != who.name) {
			return errorf(http.StatusForbidden, "members may only list their own tokens; %s is a member", who.actor())
		}
		user = who.name
	}
	if user != "" {
		u, err := s.store.UserByName(ctx, user)
		if errors.Is(err, store.ErrNotFound) {
			writeJSON(w, http.StatusOK, wire.Tokens{Tokens: []wire.Token{}})
			return nil
		}
		if err != nil {
			return err
		}
		f.UserID = u.ID
	}
	if service != "" {
		sv, err := s.store.ServiceByName(ctx, service)
		if errors.Is(err, store.ErrNotFound) {
			return errorf(http.StatusNotFound, "no service %s in the configuration", names.Quote(service))
		}
		if err != nil {
			return err
		}
		f.ServiceID = sv.ID
	}
	tokens, err := s.store.ListTokens(ctx, f)
	if err != nil {
		return err
	}
	out := wire.Tokens{Tokens: []wire.Token{}}
	for _, t := range tokens {
		out.Tokens = append(out.Tokens, wireToken(t))
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// createToken issues a token for a user or a service. Members may create
// tokens for themselves only; admins for anyone and any service. The
// token never holds more than its owner (see access.Issue).
func (s *Server) createToken(w http.ResponseWriter, r *http.Request, who identity) error {
	ctx := r.Context()
	var req wire.TokenRequest
	if err := decodeBody(w, r, &req); err != nil {
		return err
	}
	if (req.User == "") == (req.Service == "") {
		return errorf(http.StatusBadRequest, `give the token's owner: "user" or "service", not both`)
	}
	if who.role != wire.RoleAdmin && (req.Service != "" || req.User != who.name) {
		return errorf(http.StatusForbidden, "members may only create tokens for themselves; %s is a member", who.actor())
	}
	ir := access.TokenRequest{Service: req.Service, Scopes: req.Scopes, Note: req.Note,
		ExpiresIn: time.Duration(req.ExpiresInSeconds) * time.Second}
	if req.ExpiresInSeconds < 0 {
		ir.ExpiresIn = -1
	}
	owner := req.Service
	if req.User != "" {
		if err := names.Check(req.User); err != nil {
			return errorf(http.StatusBadRequest, "user %s: %v", names.Quote(req.User), err)
		}
		u, err := s.store.UserByName(ctx, req.User)
		if errors.Is(err, store.ErrNotFound) {
			return errorf(http.StatusNotFound, "no user %s in the hub: a user exists once they have logged in (or an admin created them through the API)", req.User)
		}
		if err != nil {
			return err
		}
		ir.User, owner = &u, u.Name
	} else {
		owner = "service:" + owner
	}
	t, secret, err := s.access.Issue(ctx, ir)
	if ref, ok := errors.AsType[*access.Refusal](err); ok {
		return errorf(http.StatusForbidden, "%s", ref.Msg)
	}
	if bad, ok := errors.AsType[*access.BadRequest](err); ok {
		return errorf(http.StatusBadRequest, "%s", bad.Msg)
	}
	if err != nil {
		return err
	}
	s.audit(ctx, who, "token.create", owner, truncate(strings.TrimSpace(req.Note+" "+strings.Join(req.Scopes, " ")), 200))
	writeJSON(w, http.StatusCreated, wire.NewToken{Token: wireToken(t), Secret: secret})
	return nil
}

// revokeToken deletes a token by id ("a12" or "12"). Members may revoke
// their own only.
func (s *Server) revokeToken(w http.ResponseWriter, r *http.Request, who identity) error {
	ctx := r.Context()
	id, err := strconv.ParseInt(strings.TrimPrefix(r.PathValue("id"), "a"), 10, 64)
	if err != nil || id <= 0 {
		return errorf(http.StatusBadRequest, "token ids look like a123 (see `hubd token list`)")
	}
	t, err := s.store.TokenByID(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return errorf(http.StatusNotFound, "no token a%d", id)
	}
	if err != nil {
		return err
	}
	if who.role != wire.RoleAdmin && (t.ServiceID != 0 || t.User != who.name) {
		return errorf(http.StatusForbidden, "members may only revoke their own tokens; %s is a member", who.actor())
	}
	if err := s.store.RevokeToken(ctx, id); err != nil {
		return err
	}
	owner := t.User
	if t.ServiceID != 0 {
		owner = "service:" + t.Service
	}
	s.audit(ctx, who, "token.revoke", owner, "a"+strconv.FormatInt(id, 10))
	writeJSON(w, http.StatusOK, wireToken(t))
	return nil
}
