package proxy

import (
	"bufio"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

// underPrefix says whether the path p (which must start with '/') lies
// under the route prefix (which ends in '/') on whole segments, or is the
// prefix without its slash.
func underPrefix(p, prefix string) bool {
	return strings.HasPrefix(p, "/") && (p == strings.TrimSuffix(prefix, "/") || strings.HasPrefix(p, prefix))
}

// FuzzRoute: a route table accepts a prefix only in the canonical escaped
// form it can match, finds it again, and a lookup returns the longest
// route whose prefix holds the path on whole segments, or none.
func FuzzRoute(f *testing.F) {
	for _, s := range [][2]string{{"/user/carol/", "/user/carol/lab"}, {"/user/alice/gpu/", "/user/alice/gpu"},
		{"/user/a%40b/", "/user/a%40b/x"}, {"/", "/anything"}, {"/user/x/../y/", "/user/y/"}, {"/user//x/", "/user//x/"},
		{"user/", "/user/alice/"}, {"/user/alice", "/user/alicex/"}, {"/%2e%2e/", "/../"}, {"/user/%2F/", "/user/%2F/a"}} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, prefix, path string) {
		tab := NewTable()
		fixed := []string{"/user/alice/", "/user/alice/gpu/", "/user/bob/"}
		for _, p := range fixed {
			if err := tab.Set(Route{Prefix: p, Target: "http://127.0.0.1:1", User: userOf(p)}); err != nil {
				t.Fatal(err)
			}
		}
		if err := tab.Set(Route{Prefix: prefix, Target: "http://127.0.0.1:2"}); err == nil {
			key := strings.TrimSuffix(prefix, "/")
			if badPath(mustUnescape(t, key+"/")) != "" || strings.Contains(key, "//") {
				t.Fatalf("accepted prefix %q with a dot segment, NUL or empty segment", prefix)
			}
			r, ok := tab.Lookup(key + "/")
			if !ok || r.Prefix != key+"/" {
				t.Fatalf("Set(%q) then Lookup(%q) = %+v %v", prefix, key+"/", r, ok)
			}
			fixed = append(fixed, key+"/")
		}
		r, ok := tab.Lookup(path)
		best := ""
		for _, p := range fixed {
			if underPrefix(path, p) && len(p) > len(best) {
				best = p
			}
		}
		if !ok {
			if best != "" {
				t.Fatalf("Lookup(%q) found nothing; %q holds it", path, best)
			}
			return
		}
		if r.Prefix != best {
			t.Fatalf("Lookup(%q) = %q, want the longest whole-segment match %q", path, r.Prefix, best)
		}
	})
}

func mustUnescape(t *testing.T, p string) string {
	t.Helper()
	u, err := url.PathUnescape(p)
	if err != nil {
		t.Fatalf("accepted prefix %q does not unescape: %v", p, err)
	}
	return u
}

// FuzzProxyPath sends a fuzzed request target through the proxy as the
// server parses it: a refused path never reaches a route; a forwarded
// one goes out exactly as it came in, lies under its route's prefix in
// escaped and decoded form (no dot segment climbs out of it), and so never
// reaches another user's server.
func FuzzProxyPath(f *testing.F) {
	for _, s := range []string{"/user/alice/tree", "/user/alice/../bob/", "/user/alice/%2e%2e/bob/", "/user/alice/..%2Fbob/",
		"/user/alice%2F..%2Fbob/", "/user/bob/%2e%2e/alice/x", "//user/bob/", "/user/alicex/", "/user/alice/gpu/lab?x=1",
		"/user/alice/a%00b", "/user/./alice/", "/user/ALICE/", "/user/alice/%252e%252e/", "*", "/user/alice/" + strings.Repeat("a/", 100)} {
		f.Add(s)
	}
	tab := NewTable()
	for _, p := range []string{"/user/alice/", "/user/alice/gpu/", "/user/bob/"} {
		// Nothing listens on port 1: the error handler sees the request
		// exactly as it would have gone out.
		if err := tab.Set(Route{Prefix: p, Target: "http://127.0.0.1:1", User: userOf(p)}); err != nil {
			f.Fatal(err)
		}
	}
	var forwarded *http.Request
	var route Route
	p := New(tab, Options{
		NotFound: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNotFound) }),
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, rt Route, err error) {
			forwarded, route = r, rt
			w.WriteHeader(http.StatusBadGateway)
		},
	})
	f.Cleanup(p.Close)
	f.Fuzz(func(t *testing.T, target string) {
		if strings.ContainsAny(target, " \r\n") {
			return // not one request line
		}
		in, err := http.ReadRequest(bufio.NewReader(strings.NewReader("GET " + target + " HTTP/1.1\r\nHost: hub\r\n\r\n")))
		if err != nil {
			return // net/http refuses it before any handler
		}
		forwarded, route = nil, Route{}
		rec := httptest.NewRecorder()
		p.ServeHTTP(rec, in)
		switch rec.Code {
		case http.StatusBadRequest, http.StatusNotFound:
			if forwarded != nil {
				t.Fatalf("%q: refused or unrouted, yet forwarded", target)
			}
			return
		case http.StatusBadGateway:
		default:
			t.Fatalf("%q: status %d", target, rec.Code)
		}
		if forwarded == nil {
			t.Fatalf("%q: 502 without reaching the error handler", target)
		}
		out := forwarded.URL.EscapedPath()
		if out != in.URL.EscapedPath() {
			t.Fatalf("%q: looked up %q but forwarded %q", target, in.URL.EscapedPath(), out)
		}
		if !underPrefix(out, route.Prefix) {
			t.Fatalf("%q: forwarded %q outside its route %q", target, out, route.Prefix)
		}
		decoded := forwarded.URL.Path
		if badPath(decoded) != "" || !underPrefix(decoded, mustUnescape(t, route.Prefix)) {
			t.Fatalf("%q: decoded path %q escapes route %q", target, decoded, route.Prefix)
		}
		if other := map[string]string{"alice": "/user/bob/", "bob": "/user/alice/"}[route.User]; strings.HasPrefix(decoded, other) {
			t.Fatalf("%q: %s's route took a request for %q", target, route.User, decoded)
		}
	})
}
