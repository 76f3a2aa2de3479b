// Package access decides what users and services may do: the scopes of
// their roles (built in, configured, through hub groups) and the tokens
// they are issued, which never hold more than their owner.
package access

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/hubd/hubd/core/config"
	"github.com/hubd/hubd/core/scopes"
	"github.com/hubd/hubd/core/store"
)

// Access resolves roles against the configuration and the database.
type Access struct {
	cfg   config.Config
	store *store.Store
	now   func() time.Time
}

// New builds an Access; now is the clock (time.Now when nil).
func New(cfg config.Config, st *store.Store, now func() time.Time) *Access {
	if now == nil {
		now = time.Now
	}
	return &Access{cfg: cfg, store: st, now: now}
}

// userRaw lists the raw scopes of a user's roles: "self", the admin role
// for admins, and every configured role given to the user, to one of
// their groups, or to everyone (a role named "user").
func (a *Access) userRaw(u store.User, groups []string) []string {
	raw := []string{"self"}
	if u.Admin {
		raw = append(raw, scopes.Admin...)
	}
	for _, r := range a.cfg.Roles {
		if r.Name == "user" || slices.Contains(r.Users, u.Name) || shares(r.Groups, groups) {
			raw = append(raw, r.Scopes...)
		}
	}
	return raw
}

func shares(a, b []string) bool {
	return slices.ContainsFunc(a, func(g string) bool { return slices.Contains(b, g) })
}

// UserScopes are the scopes a user holds now, with the user's groups.
func (a *Access) UserScopes(ctx context.Context, u store.User) (scopes.Set, []string, error) {
	groups, err := a.store.GroupsOf(ctx, u.ID)
	if err != nil {
		return nil, nil, err
	}
	return scopes.Expand(a.userRaw(u, groups), scopes.Owner{User: u.Name}), groups, nil
}

// UserRoles are the names of a user's roles, for the user model.
func (a *Access) UserRoles(u store.User, groups []string) []string {
	out := []string{"user"}
	if u.Admin {
		out = []string{"admin", "user"}
	}
	for _, r := range a.cfg.Roles {
		if r.Name != "user" && (slices.Contains(r.Users, u.Name) || shares(r.Groups, groups)) {
			out = append(out, r.Name)
		}
	}
	return out
}

// GroupRoles are the configured roles given to a group.
func (a *Access) GroupRoles(group string) []string {
	out := []string{}
	for _, r := range a.cfg.Roles {
		if slices.Contains(r.Groups, group) {
			out = append(out, r.Name)
		}
	}
	return out
}

// Service finds a configured service.
func (a *Access) Service(name string) (config.Service, bool) {
	i := slices.IndexFunc(a.cfg.Services, func(s config.Service) bool { return s.Name == name })
	if i < 0 {
		return config.Service{}, false
	}
	return a.cfg.Services[i], true
}

// ServiceRoles are the roles a service has: those it names, those naming
// it, and admin.
func (a *Access) ServiceRoles(sv config.Service) []string {
	out := []string{}
	if sv.Admin || slices.Contains(sv.Roles, "admin") {
		out = append(out, "admin")
	}
	for _, r := range a.cfg.Roles {
		if (slices.Contains(sv.Roles, r.Name) || slices.Contains(r.Services, sv.Name)) && !slices.Contains(out, r.Name) {
			out = append(out, r.Name)
		}
	}
	return out
}

// ServiceScopes are the scopes a service holds: its roles' and its own.
func (a *Access) ServiceScopes(sv config.Service) scopes.Set {
	raw := append([]string{}, sv.Scopes...)
	for _, name := range a.ServiceRoles(sv) {
		if name == "admin" {
			raw = append(raw, scopes.Admin...)
			continue
		}
		for _, r := range a.cfg.Roles {
			if r.Name == name {
				raw = append(raw, r.Scopes...)
			}
		}
	}
	return scopes.Expand(raw, scopes.Owner{Service: sv.Name})
}

// Memberships answers group membership questions, asking the database
// once per user; make one per request.
func (a *Access) Memberships(ctx context.Context) scopes.InGroup {
	cache := map[string][]string{}
	return func(user, group string) bool {
		g, ok := cache[user]
		if !ok {
			g, _ = a.store.GroupsOfName(ctx, user)
			cache[user] = g
		}
		return slices.Contains(g, group)
	}
}

// TokenScopes are what a token may do now: its own scopes ("inherit" for
// all of the owner's) within the owner's current ones, so a token never
// outlives a demotion or grants more than its owner holds, whatever it
// was issued with.
func TokenScopes(raw []string, owner scopes.Set, who scopes.Owner, in scopes.InGroup) scopes.Set {
	if slices.Contains(raw, "inherit") {
		return owner
	}
	return scopes.Expand(raw, who).Intersect(owner, in)
}

// DecodeScopes reads a token's stored scope list.
func DecodeScopes(js string) []string {
	var out []string
	_ = json.Unmarshal([]byte(js), &out)
	return out
}

// Refusal is a token request that asks for something it may not have
// (answered 403); BadRequest one that is malformed (400).
type Refusal struct{ Msg string }

func (e *Refusal) Error() string { return e.Msg }

// BadRequest is a malformed token request.
type BadRequest struct{ Msg string }

func (e *BadRequest) Error() string { return e.Msg }

// maxTokenLife bounds expires_in: ten years is "never" in practice and
// keeps the arithmetic far from overflowing.
const maxTokenLife = 10 * 365 * 24 * time.Hour

// TokenRequest asks for a new API token for a user or a service.
type TokenRequest struct {
	User    *store.User // the owner, or
	Service string      // the owning service's name
	// Scopes the token carries; empty means all of the owner's
	// ("inherit").
	Scopes []string
	// ExpiresIn is the token's life; 0 means it never expires. A
	// negative one (an expiry in the past) is refused.
	ExpiresIn time.Duration
	Note      string
	// Creator holds the scopes of whoever asks (nil: the hub's own admin
	// socket, bounded by the owner only). CreatorIsOwner lets an owner
	// ask for all their rights; CreatorAdmin lets an admin do that for
	// someone else.
	Creator        scopes.Set
	CreatorIsOwner bool
	CreatorAdmin   bool
}

// Issue checks a token request and stores the token; it returns the row
// and the token itself, shown once.
func (a *Access) Issue(ctx context.Context, req TokenRequest) (store.Token, string, error) {
	if len(req.Note) > 1000 {
		return store.Token{}, "", &BadRequest{"note is longer than 1000 characters"}
	}
	if req.ExpiresIn < 0 {
		return store.Token{}, "", &BadRequest{"the expiry is in the past: give a positive number of seconds, or none for a token that does not expire"}
	}
	if req.ExpiresIn > maxTokenLife {
		return store.Token{}, "", &BadRequest{"the expiry is more than ten years away: give none for a token that does not expire"}
	}
	var owner scopes.Set
	var who scopes.Owner
	tok := store.Token{Kind: store.TokenAPI, Note: req.Note}
	switch {
	case req.User != nil:
		set, _, err := a.UserScopes(ctx, *req.User)
		if err != nil {
			return store.Token{}, "", err
		}
		owner, who, tok.UserID = set, scopes.Owner{User: req.User.Name}, req.User.ID
	case req.Service != "":
		sv, ok := a.Service(req.Service)
		if !ok {
			return store.Token{}, "", &BadRequest{fmt.Sprintf("no service named %q in the configuration", req.Service)}
		}
		row, err := a.store.ServiceByName(ctx, sv.Name)
		if err != nil {
			return store.Token{}, "", err
		}
		owner, who, tok.ServiceID = a.ServiceScopes(sv), scopes.Owner{Service: sv.Name}, row.ID
	default:
		return store.Token{}, "", errors.New("token request without an owner")
	}
	raw := req.Scopes
	if len(raw) == 0 {
		raw = []string{"inherit"}
	}
	in := a.Memberships(ctx)
	if slices.Contains(raw, "inherit") {
		if len(raw) > 1 {
			return store.Token{}, "", &BadRequest{`"inherit" stands alone: it means all of the owner's scopes`}
		}
		if req.Creator != nil && !req.CreatorIsOwner && !req.CreatorAdmin {
			return store.Token{}, "", &Refusal{"only admins may create tokens with another owner's full rights"}
		}
	} else {
		for _, r := range raw {
			if err := scopes.Check(r); err != nil {
				return store.Token{}, "", &BadRequest{err.Error()}
			}
		}
		for _, s := range scopes.Expand(raw, who) {
			if req.Creator != nil && !req.Creator.Covers(s, in) {
				return store.Token{}, "", &Refusal{fmt.Sprintf("Not assigning requested scope %s: you do not hold it yourself", s)}
			}
			if !owner.Covers(s, in) {
				return store.Token{}, "", &Refusal{fmt.Sprintf("Not assigning requested scope %s not held by %s", s, ownerName(who))}
			}
		}
	}
	if req.ExpiresIn > 0 {
		tok.ExpiresAt = a.now().Add(req.ExpiresIn)
	}
	js, _ := json.Marshal(raw)
	tok.Scopes = string(js)
	secret := store.RandomID(16)
	tok.Hash, tok.Prefix = store.HashToken(secret), secret[:4]
	t, err := a.store.CreateToken(ctx, tok)
	if err != nil {
		return store.Token{}, "", err
	}
	t.User, t.Service = ownerUser(req), req.Service
	return t, secret, nil
}

func ownerUser(req TokenRequest) string {
	if req.User != nil {
		return req.User.Name
	}
	return ""
}

func ownerName(who scopes.Owner) string {
	if who.Service != "" {
		return "service " + who.Service
	}
	return "user " + who.User
}
