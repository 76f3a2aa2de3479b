package web

import (
	"encoding/json"
	"slices"
	"sort"
	"strings"

	"github.com/hubd/hubd/core/store"
)

// A scope is a JupyterHub permission name with an optional filter:
// "" (everything), "user=<name>" or "server=<user>/<server>".
type scope struct{ name, filter string }

func (s scope) String() string {
	if s.filter == "" {
		return s.name
	}
	return s.name + "!" + s.filter
}

// scopeSet is an expanded list of scopes (implied scopes included).
type scopeSet []scope

// implied lists what a scope grants besides itself (JupyterHub's scope
// hierarchy, trimmed to what hubd serves).
var implied = map[string][]string{
	"admin:users":   {"users", "delete:users", "list:users"},
	"users":         {"read:users", "users:activity"},
	"read:users":    {"read:users:name", "read:users:groups", "read:users:activity"},
	"admin:servers": {"servers", "admin:server_state"},
	"servers":       {"read:servers", "delete:servers"},
	"tokens":        {"read:tokens"},
}

// userRole is what a member may do: everything about themselves.
func userRole(name string) []string {
	f := "!user=" + name
	return []string{"users" + f, "servers" + f, "tokens" + f, "access:servers" + f, "read:users" + f}
}

// adminRole is what an admin may do: everything, for everyone.
var adminRole = []string{"admin:users", "admin:servers", "tokens", "access:servers", "read:hub", "proxy", "list:users"}

// roleScopes are the scopes of a user acting with their full rights
// (cookie logins and tokens created with "inherit").
func roleScopes(name string, admin bool) []string {
	if admin {
		return append(append([]string{}, adminRole...), userRole(name)...)
	}
	return userRole(name)
}

// parseScopes expands raw scope strings; "!user" without a name means the
// owner, as in JupyterHub.
func parseScopes(raw []string, owner string) scopeSet {
	var out scopeSet
	seen := map[scope]bool{}
	var add func(name, filter string)
	add = func(name, filter string) {
		s := scope{name, filter}
		if seen[s] {
			return
		}
		seen[s] = true
		out = append(out, s)
		for _, sub := range implied[name] {
			add(sub, filter)
		}
	}
	for _, r := range raw {
		name, filter, _ := strings.Cut(strings.TrimSpace(r), "!")
		if filter == "user" {
			filter = "user=" + owner
		}
		if name != "" {
			add(name, filter)
		}
	}
	return out
}

// has reports whether the set grants name on the given user (and server;
// pass server = "" for user-level permissions).
func (ss scopeSet) has(name, user, server string) bool {
	for _, s := range ss {
		if s.name != name {
			continue
		}
		switch {
		case s.filter == "":
			return true
		case s.filter == "user="+user:
			return true
		case server != "" && s.filter == "server="+user+"/"+server:
			return true
		case server == "" && name == "access:servers" && s.filter == "server="+user+"/":
			return true
		}
	}
	return false
}

// hasAny reports whether the set grants name for anyone (used to tell 403
// "wrong scope" from 404 "not yours").
func (ss scopeSet) hasAny(name string) bool {
	for _, s := range ss {
		if s.name == name {
			return true
		}
	}
	return false
}

// narrower returns the narrower of two filters of the same scope name when
// one contains the other: "" holds everything, "user=u" holds u's servers.
// ok is false for filters that do not overlap (two different users).
func narrower(a, b string) (f string, ok bool) {
	switch {
	case a == b, b == "":
		return a, true
	case a == "":
		return b, true
	}
	for _, p := range [][2]string{{a, b}, {b, a}} {
		user, isUser := strings.CutPrefix(p[0], "user=")
		server, isServer := strings.CutPrefix(p[1], "server=")
		if isUser && isServer && strings.HasPrefix(server, user+"/") {
			return p[1], true
		}
	}
	return "", false
}

// intersect keeps what both sets grant, each scope narrowed to the smaller
// filter. A token's scopes are intersected with its owner's current ones on
// every use, so a token never outlives a demotion or grants more than its
// owner holds, whatever it was issued with.
func (ss scopeSet) intersect(other scopeSet) scopeSet {
	var out scopeSet
	seen := map[scope]bool{}
	for _, a := range ss {
		for _, b := range other {
			if a.name != b.name {
				continue
			}
			if f, ok := narrower(a.filter, b.filter); ok && !seen[scope{a.name, f}] {
				seen[scope{a.name, f}] = true
				out = append(out, scope{a.name, f})
			}
		}
	}
	return out
}

// union is both sets, each scope once.
func (ss scopeSet) union(other scopeSet) scopeSet {
	out := append(scopeSet{}, ss...)
	for _, s := range other {
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

// covers reports whether the set grants all of s (same name, an equal or
// wider filter).
func (ss scopeSet) covers(s scope) bool {
	for _, o := range ss {
		if o.name != s.name {
			continue
		}
		if f, ok := narrower(o.filter, s.filter); ok && f == s.filter {
			return true
		}
	}
	return false
}

// tokenScopes are what a token may do now: its own scopes ("inherit" for
// the owner's full rights) within the owner's current role.
func tokenScopes(raw []string, owner store.User) scopeSet {
	role := parseScopes(roleScopes(owner.Name, owner.Admin), owner.Name)
	if len(raw) == 1 && raw[0] == "inherit" {
		return role
	}
	return parseScopes(raw, owner.Name).intersect(role)
}

// strings lists the scopes sorted, for /hub/api/user.
func (ss scopeSet) strings() []string {
	out := make([]string, 0, len(ss))
	for _, s := range ss {
		out = append(out, s.String())
	}
	sort.Strings(out)
	return out
}

func decodeScopes(js string) []string {
	var out []string
	_ = json.Unmarshal([]byte(js), &out)
	return out
}
