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
	// server. Service names the hub service a route leads to instead
	// (User is then ""). The proxy only passes them to callbacks.
	User    string
	Server  string
	Service string
}

// Table is a concurrent route table with CHP's matching rules: a route
// matches its prefix on whole segments and the longest match wins. Lookups
// cost one map probe per route depth level, whatever the number of routes,
// and take no lock: on a many-core server an RWMutex's shared reader count
// becomes the bottleneck (see BenchmarkLookup), and a copy-on-write map
// makes each Set cost O(routes).
//
// A Table is meant to serve one Proxy: the proxy caches per-route state in
// the table's entries.
type Table struct {
	routes sync.Map // prefix without its trailing slash → *entry

	mu sync.Mutex // serialises writers; guards n and depths
	n  int
	// depths counts routes per depth (number of segments); maxDepth, the
	// deepest level in use, is where lookups start. Written under mu,
	// read by lookups without it.
	depths   [MaxRouteDepth + 1]int
	maxDepth atomic.Int32
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
	return &Table{}
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
	if _, replaced := t.routes.Swap(key, e); !replaced {
		t.n++
		t.depths[depth]++
		// Raised after the store: a lookup that sees the new depth
		// also sees the route.
		if int32(depth) > t.maxDepth.Load() {
			t.maxDepth.Store(int32(depth))
		}
	}
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
	if _, ok := t.routes.LoadAndDelete(key); !ok {
		return false
	}
	t.n--
	t.depths[depth]--
	d := t.maxDepth.Load()
	for d > 0 && t.depths[d] == 0 {
		d--
	}
	t.maxDepth.Store(d)
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
	end := cutSegments(p, int(t.maxDepth.Load()))
	for {
		if e, ok := t.routes.Load(p[:end]); ok {
			return e.(*entry)
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
	t.mu.Lock()
	out := make([]Route, 0, t.n)
	t.routes.Range(func(_, e any) bool {
		out = append(out, e.(*entry).route)
		return true
	})
	t.mu.Unlock()
	slices.SortFunc(out, func(a, b Route) int { return cmp.Compare(a.Prefix, b.Prefix) })
	return out
}

// Len returns the number of routes.
func (t *Table) Len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.n
}
