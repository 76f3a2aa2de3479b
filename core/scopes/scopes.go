// Package scopes is JupyterHub's permission model as hubd speaks it:
// scope names with their subscopes, filters (!user=, !server=, !group=,
// !service=), expansion for an owner, and the set operations that keep a
// token within what its owner may do. Names and the hierarchy follow
// JupyterHub 5, so role definitions written for JupyterHub carry over.
package scopes

import (
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strings"
)

// subscopes is JupyterHub's scope hierarchy: what each scope grants besides
// itself. Scopes without an entry grant only themselves.
var subscopes = map[string][]string{
	"admin:users":    {"admin:auth_state", "users", "read:roles:users", "delete:users"},
	"users":          {"read:users", "list:users", "users:activity"},
	"list:users":     {"read:users:name"},
	"read:users":     {"read:users:name", "read:users:groups", "read:users:activity"},
	"read:roles":     {"read:roles:users", "read:roles:services", "read:roles:groups"},
	"users:activity": {"read:users:activity"},
	"admin:servers":  {"admin:server_state", "servers"},
	"servers":        {"read:servers", "start:servers", "delete:servers"},
	"read:servers":   {"read:users:name"},
	"tokens":         {"read:tokens"},
	"admin:groups":   {"groups", "read:roles:groups", "delete:groups"},
	"groups":         {"read:groups", "list:groups"},
	"list:groups":    {"read:groups:name"},
	"read:groups":    {"read:groups:name"},
	"admin:services": {"list:services", "read:services", "read:roles:services"},
	"list:services":  {"read:services:name"},
	"read:services":  {"read:services:name"},
}

// leaves are the scopes that grant nothing but themselves.
var leaves = []string{
	"admin-ui", "admin:auth_state", "delete:users", "read:users:name", "read:users:groups",
	"read:users:activity", "read:roles:users", "read:roles:services", "read:roles:groups",
	"admin:server_state", "start:servers", "delete:servers", "read:tokens", "read:groups:name",
	"delete:groups", "read:services:name", "read:hub", "access:servers", "access:services",
	"proxy", "shutdown", "read:metrics",
}

// Known reports whether name is a JupyterHub scope hubd understands.
func Known(name string) bool {
	_, ok := subscopes[name]
	return ok || slices.Contains(leaves, name)
}

// Self is what JupyterHub's "self" metascope gives a user: their own
// user model, servers and tokens.
func Self(user string) []string {
	f := "!user=" + user
	return []string{"read:users" + f, "users:activity" + f, "servers" + f, "tokens" + f, "access:servers" + f}
}

// Admin is JupyterHub's admin role: everything, for everyone.
var Admin = []string{"admin-ui", "admin:users", "admin:servers", "admin:services", "tokens", "admin:groups",
	"list:services", "read:services", "read:hub", "proxy", "shutdown", "access:services", "access:servers",
	"read:roles", "read:metrics"}

// Scope is a scope name with an optional filter: "" (everything),
// "user=<name>", "server=<user>/<server>", "group=<name>" or
// "service=<name>".
type Scope struct{ Name, Filter string }

func (s Scope) String() string {
	if s.Filter == "" {
		return s.Name
	}
	return s.Name + "!" + s.Filter
}

// Set is an expanded list of scopes (subscopes included, metascopes and
// bare filters resolved).
type Set []Scope

// Owner is whom bare filters (!user, !service) and "self" refer to: a
// user or a service.
type Owner struct {
	User    string
	Service string
}

var filterRE = regexp.MustCompile(`^(user|group|service)=[^/!]{1,255}$|^server=[^/!]{1,255}/[^/!]{0,255}$`)

// Check reports what is wrong with a raw scope as written in a role or a
// token request; "self" and "inherit" are accepted (their meaning depends
// on where they are used).
func Check(raw string) error {
	name, filter, hasFilter := strings.Cut(strings.TrimSpace(raw), "!")
	if name == "self" || name == "inherit" {
		if hasFilter {
			return fmt.Errorf("scope %q takes no filter", raw)
		}
		return nil
	}
	if !Known(name) {
		return fmt.Errorf("unknown scope %q", name)
	}
	if hasFilter && filter != "user" && filter != "service" && !filterRE.MatchString(filter) {
		return fmt.Errorf("scope %q: the filter must be !user=<name>, !server=<user>/<server>, !group=<name> or !service=<name>", raw)
	}
	return nil
}

// Expand resolves raw scopes for an owner: subscopes are added, "self"
// becomes Self for a user (nothing for a service), and the bare filters
// !user and !service name the owner. "inherit" and unknown or malformed
// scopes expand to nothing: callers decide what inherit means and check
// what they accept.
func Expand(raw []string, owner Owner) Set {
	var out Set
	seen := map[Scope]bool{}
	var add func(name, filter string)
	add = func(name, filter string) {
		s := Scope{name, filter}
		if seen[s] {
			return
		}
		seen[s] = true
		out = append(out, s)
		for _, sub := range subscopes[name] {
			add(sub, filter)
		}
	}
	for _, r := range raw {
		if Check(r) != nil {
			continue
		}
		name, filter, _ := strings.Cut(strings.TrimSpace(r), "!")
		switch {
		case name == "inherit":
			continue
		case name == "self":
			if owner.User != "" {
				for _, s := range Self(owner.User) {
					n, f, _ := strings.Cut(s, "!")
					add(n, f)
				}
			}
			continue
		case filter == "user":
			if owner.User == "" {
				continue
			}
			filter = "user=" + owner.User
		case filter == "service":
			if owner.Service == "" {
				continue
			}
			filter = "service=" + owner.Service
		}
		add(name, filter)
	}
	return out
}

// Target is what a permission is checked against: a user (optionally one
// of their servers, with the groups the user is in), a group or a service.
type Target struct {
	User string
	// Server is the server's name when IsServer ("" = the default server).
	Server   string
	IsServer bool
	// Groups are the target user's groups; only needed when the set holds
	// !group= filters (see NeedsGroups).
	Groups  []string
	Group   string
	Service string
}

// Has reports whether the set grants name on t.
func (ss Set) Has(name string, t Target) bool {
	for _, s := range ss {
		if s.Name == name && s.applies(t) {
			return true
		}
	}
	return false
}

func (s Scope) applies(t Target) bool {
	kind, val, _ := strings.Cut(s.Filter, "=")
	switch kind {
	case "":
		return true
	case "user":
		return t.User != "" && val == t.User
	case "server":
		// A user-level check of access:servers accepts the default
		// server's filter: JupyterHub's single-user server asks for
		// either form.
		return t.User != "" && (t.IsServer || s.Name == "access:servers") && val == t.User+"/"+t.Server
	case "group":
		return (t.Group != "" && val == t.Group) || (t.User != "" && slices.Contains(t.Groups, val))
	case "service":
		return t.Service != "" && val == t.Service
	}
	return false
}

// HasAny reports whether the set grants name on anything (403 "wrong
// scope" differs from 404 "not yours").
func (ss Set) HasAny(name string) bool {
	return slices.ContainsFunc(ss, func(s Scope) bool { return s.Name == name })
}

// NeedsGroups reports whether deciding any of names for a user needs the
// user's groups (the set holds a !group= filter for one of them).
func (ss Set) NeedsGroups(names ...string) bool {
	return slices.ContainsFunc(ss, func(s Scope) bool {
		return strings.HasPrefix(s.Filter, "group=") && slices.Contains(names, s.Name)
	})
}

// InGroup answers whether a user is a member of a group, for comparing
// !user= with !group= filters; nil knows no memberships.
type InGroup func(user, group string) bool

// narrower returns the narrower of two filters of the same scope when one
// holds the other: "" holds everything, a user their servers, a group its
// members and their servers. ok is false when they do not overlap so.
func narrower(a, b string, in InGroup) (f string, ok bool) {
	switch {
	case a == b, b == "":
		return a, true
	case a == "":
		return b, true
	}
	for _, p := range [][2]string{{a, b}, {b, a}} {
		wide, narrow := p[0], p[1]
		if user, isUser := strings.CutPrefix(wide, "user="); isUser {
			if server, isServer := strings.CutPrefix(narrow, "server="); isServer && strings.HasPrefix(server, user+"/") {
				return narrow, true
			}
		}
		if group, isGroup := strings.CutPrefix(wide, "group="); isGroup && in != nil {
			if user, isUser := strings.CutPrefix(narrow, "user="); isUser && in(user, group) {
				return narrow, true
			}
			if server, isServer := strings.CutPrefix(narrow, "server="); isServer {
				if user, _, _ := strings.Cut(server, "/"); in(user, group) {
					return narrow, true
				}
			}
		}
	}
	return "", false
}

// Intersect keeps what both sets grant, each scope narrowed to the
// smaller filter.
func (ss Set) Intersect(other Set, in InGroup) Set {
	var out Set
	seen := map[Scope]bool{}
	for _, a := range ss {
		for _, b := range other {
			if a.Name != b.Name {
				continue
			}
			if f, ok := narrower(a.Filter, b.Filter, in); ok && !seen[Scope{a.Name, f}] {
				seen[Scope{a.Name, f}] = true
				out = append(out, Scope{a.Name, f})
			}
		}
	}
	return out
}

// Union is both sets, each scope once.
func (ss Set) Union(other Set) Set {
	out := append(Set{}, ss...)
	for _, s := range other {
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

// Covers reports whether the set grants all of s (the same scope with an
// equal or wider filter).
func (ss Set) Covers(s Scope, in InGroup) bool {
	for _, o := range ss {
		if o.Name != s.Name {
			continue
		}
		if f, ok := narrower(o.Filter, s.Filter, in); ok && f == s.Filter {
			return true
		}
	}
	return false
}

// Strings lists the scopes sorted.
func (ss Set) Strings() []string {
	out := make([]string, 0, len(ss))
	for _, s := range ss {
		out = append(out, s.String())
	}
	sort.Strings(out)
	return out
}
