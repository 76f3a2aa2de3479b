// Package proxy holds hubd's route table and its in-process reverse proxy:
// requests under a user's prefix (/user/alice/…) go to that user's server,
// websockets included, with the full original path and Host.
package proxy

import (
	"cmp"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
)

// Route sends every request under Prefix to Target.
type Route struct {
	// Prefix is a URL path in the escaped form the hub writes, e.g.
	// "/user/alice/" or "/user/a%40b/lab-2/". It matches whole path
	// segments only. Set stores it with a trailing slash.
	Prefix string
	// Target is the server's base URL, e.g. "http://127.0.0.1:41234".
	Target string
	// User and Server describe the owner; Server is "" for the default
	// server. The proxy only passes them to callbacks.
	User   string
	Server string
}

// Table is a concurrent route table with CHP's matching rules: a route
// matches its prefix on whole segments and the longest match wins. Lookups
// cost one map probe per route depth level, whatever the number of routes.
//
// A Table is meant to serve one Proxy: the proxy caches per-route state in
// the table's entries.
type Table struct {
	mu     sync.RWMutex
	routes map[string]*entry // key: prefix without its trailing slash
	// depths counts routes per depth (number of segments), so lookups
	// start at the deepest level that can match.
	depths   [MaxRouteDepth + 1]int
	maxDepth int
}

// entry is immutable once published except for the proxy's cache; Set
// replaces the whole entry, so a changed route never reuses stale state.
type entry struct {
	route   Route
	target  *url.URL
	handler atomic.Pointer[routeHandler]
}

// NewTable returns an empty table.
func NewTable() *Table {
	return &Table{routes: make(map[string]*entry)}
}

// Set adds or replaces the route for r.Prefix. The route serves the next
// request that starts after Set returns.
func (t *Table) Set(r Route) error {
	key, depth, err := routeKey(r.Prefix)
	if err != nil {
		return err
	}
	target, err := parseTarget(r.Target)
	if err != nil {
		return err
	}
	r.Prefix = key + "/"
	e := &entry{route: r, target: target}

	t.mu.Lock()
	defer t.mu.Unlock()
	if _, ok := t.routes[key]; !ok {
		t.depths[depth]++
		t.maxDepth = max(t.maxDepth, depth)
	}
	t.routes[key] = e
	return nil
}

// Delete removes the route for prefix (with or without its trailing
// slash) and reports whether there was one.
func (t *Table) Delete(prefix string) bool {
	key, depth, err := routeKey(prefix)
	if err != nil {
		return false
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, ok := t.routes[key]; !ok {
		return false
	}
	delete(t.routes, key)
	t.depths[depth]--
	for t.maxDepth > 0 && t.depths[t.maxDepth] == 0 {
		t.maxDepth--
	}
	return true
}

// Lookup returns the route that serves the escaped request path p.
func (t *Table) Lookup(p string) (Route, bool) {
	e := t.lookup(p)
	if e == nil {
		return Route{}, false
	}
	return e.route, true
}

// lookup walks p's segment prefixes from the deepest one a route could have
// to the root; the first hit is the longest match.
func (t *Table) lookup(p string) *entry {
	if p == "" || p[0] != '/' {
		return nil
	}
	t.mu.RLock()
	defer t.mu.RUnlock()
	if len(t.routes) == 0 {
		return nil
	}
	end := cutSegments(p, t.maxDepth)
	for {
		if e, ok := t.routes[p[:end]]; ok {
			return e
		}
		if end == 0 {
			return nil
		}
		end = strings.LastIndexByte(p[:end], '/')
	}
}

// cutSegments returns the length of the first n segments of p, which
// starts with '/': the index of its (n+1)th slash, or len(p).
func cutSegments(p string, n int) int {
	for i := 0; i < len(p); i++ {
		if p[i] == '/' {
			if n == 0 {
				return i
			}
			n--
		}
	}
	return len(p)
}

// List returns all routes sorted by prefix.
func (t *Table) List() []Route {
	t.mu.RLock()
	out := make([]Route, 0, len(t.routes))
	for _, e := range t.routes {
		out = append(out, e.route)
	}
	t.mu.RUnlock()
	slices.SortFunc(out, func(a, b Route) int { return cmp.Compare(a.Prefix, b.Prefix) })
	return out
}

// Len returns the number of routes.
func (t *Table) Len() int {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return len(t.routes)
}
