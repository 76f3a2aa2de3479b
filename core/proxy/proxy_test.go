package proxy

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// seen is what the echo backend reports about the request it received.
type seen struct {
	Backend    string
	RequestURI string
	Host       string
	XFF        []string
	XFHost     []string
	XFProto    []string
	Forwarded  []string
	Cookie     string
}

func echoBackend(t testing.TB, name string) *backend {
	return newBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(seen{
			Backend:    name,
			RequestURI: r.RequestURI,
			Host:       r.Host,
			XFF:        r.Header.Values("X-Forwarded-For"),
			XFHost:     r.Header.Values("X-Forwarded-Host"),
			XFProto:    r.Header.Values("X-Forwarded-Proto"),
			Forwarded:  r.Header.Values("Forwarded"),
			Cookie:     r.Header.Get("Cookie"),
		})
	}))
}

// do sends req through c and decodes the echo backend's report.
func do(t *testing.T, c *http.Client, req *http.Request) seen {
	t.Helper()
	res, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(res.Body)
		t.Fatalf("%s %s: status %d: %s", req.Method, req.URL, res.StatusCode, body)
	}
	var s seen
	if err := json.NewDecoder(res.Body).Decode(&s); err != nil {
		t.Fatal(err)
	}
	return s
}

func TestProxyRoutesToLongestPrefix(t *testing.T) {
	alice, named, bob := echoBackend(t, "alice"), echoBackend(t, "alice/foo"), echoBackend(t, "bob")
	tab := NewTable()
	mustSet(t, tab, "/user/alice/", alice.URL)
	mustSet(t, tab, "/user/alice/foo/", named.URL)
	mustSet(t, tab, "/user/bob/", bob.URL)
	base := front(t, New(tab, Options{}))
	c := client(t)

	for path, want := range map[string]string{
		"/user/alice":          "alice",
		"/user/alice/tree":     "alice",
		"/user/alice/foo/lab":  "alice/foo",
		"/user/alice/foobar":   "alice",
		"/user/bob/api/status": "bob",
	} {
		req, _ := http.NewRequest("GET", base+path, nil)
		if got := do(t, c, req).Backend; got != want {
			t.Errorf("%s went to %q, want %q", path, got, want)
		}
	}
}

func TestProxyForwardsPathAndHost(t *testing.T) {
	b := echoBackend(t, "alice")
	tab := NewTable()
	mustSet(t, tab, "/user/alice/", b.URL)
	base := front(t, New(tab, Options{}))

	req, _ := http.NewRequest("GET", base+"/user/alice/files/a%20b%2Fc.txt?x=1&y=%2F", nil)
	req.Host = "hub.example.org:8000"
	req.Header.Set("Cookie", "jupyterhub-user-alice=v")
	got := do(t, client(t), req)
	want := seen{
		Backend:    "alice",
		RequestURI: "/user/alice/files/a%20b%2Fc.txt?x=1&y=%2F",
		Host:       "hub.example.org:8000",
		XFF:        []string{"127.0.0.1"},
		XFHost:     []string{"hub.example.org:8000"},
		XFProto:    []string{"http"},
		Cookie:     "jupyterhub-user-alice=v",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("backend saw (-want +got):\n%s", diff)
	}
}

func TestProxyForwardedHeaders(t *testing.T) {
	b := echoBackend(t, "alice")
	tab := NewTable()
	mustSet(t, tab, "/user/alice/", b.URL)

	spoof := func(base string) *http.Request {
		req, _ := http.NewRequest("GET", base+"/user/alice/", nil)
		req.Host = "hub.example.org"
		req.Header.Set("X-Forwarded-For", "203.0.113.7")
		req.Header.Set("X-Forwarded-Host", "evil.example")
		req.Header.Set("X-Forwarded-Proto", "https")
		req.Header.Set("Forwarded", "for=203.0.113.7")
		return req
	}
	tests := []struct {
		name  string
		trust bool
		want  seen
	}{
		{"untrusted", false, seen{
			XFF: []string{"127.0.0.1"}, XFHost: []string{"hub.example.org"}, XFProto: []string{"http"},
		}},
		{"trusted", true, seen{
			XFF: []string{"203.0.113.7, 127.0.0.1"}, XFHost: []string{"evil.example"},
			XFProto: []string{"https"}, Forwarded: []string{"for=203.0.113.7"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			base := front(t, New(tab, Options{TrustForwardedHeaders: tt.trust}))
			got := do(t, client(t), spoof(base))
			got.Backend, got.RequestURI, got.Host = "", "", ""
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("backend saw (-want +got):\n%s", diff)
			}
		})
	}
}

// TestHopByHopCannotStripProxyHeaders: naming the forwarding headers in
// Connection must not remove what the proxy sets (golang/go#50580).
func TestHopByHopCannotStripProxyHeaders(t *testing.T) {
	b := echoBackend(t, "alice")
	tab := NewTable()
	mustSet(t, tab, "/user/alice/", b.URL)
	base := front(t, New(tab, Options{}))

	req, _ := http.NewRequest("GET", base+"/user/alice/", nil)
	req.Header.Set("Connection", "X-Forwarded-For, X-Forwarded-Host, X-Forwarded-Proto, Cookie")
	req.Header.Set("Cookie", "c=1")
	got := do(t, client(t), req)
	if len(got.XFF) != 1 || got.XFF[0] != "127.0.0.1" || len(got.XFProto) != 1 || len(got.XFHost) != 1 {
		t.Errorf("forwarding headers lost: XFF %q, XFHost %q, XFProto %q", got.XFF, got.XFHost, got.XFProto)
	}
}

func TestNoRouteCallsNotFound(t *testing.T) {
	b := echoBackend(t, "alice")
	tab := NewTable()
	mustSet(t, tab, "/user/alice/", b.URL)
	var missed []string
	notFound := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		missed = append(missed, r.URL.Path)
		http.Redirect(w, r, "/hub/spawn", http.StatusFound)
	})
	base := front(t, New(tab, Options{NotFound: notFound}))
	c := client(t)
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

	for _, path := range []string{"/user/alicex/tree", "/user/bob/"} {
		if code, _ := get(t, c, base+path); code != http.StatusFound {
			t.Errorf("GET %s = %d, want the NotFound handler's 302", path, code)
		}
	}
	if diff := cmp.Diff([]string{"/user/alicex/tree", "/user/bob/"}, missed); diff != "" {
		t.Errorf("NotFound saw (-want +got):\n%s", diff)
	}
	if _, n := b.counts(); n != 0 {
		t.Errorf("backend got %d requests for paths outside its prefix", n)
	}
}

// TestRefusedRequests sends hostile request lines verbatim: none may reach
// a backend or the NotFound handler.
func TestRefusedRequests(t *testing.T) {
	b := echoBackend(t, "alice")
	tab := NewTable()
	mustSet(t, tab, "/", b.URL) // catch-all: anything not refused lands here
	mustSet(t, tab, "/user/alice/", b.URL)
	p := New(tab, Options{})
	addr := strings.TrimPrefix(front(t, p), "http://")

	long := "/user/alice/" + strings.Repeat("a", DefaultMaxPathBytes)
	tests := map[string]string{
		"dot-dot":         "GET /user/alice/../bob/ HTTP/1.1\r\nHost: x\r\n\r\n",
		"dot":             "GET /user/alice/./tree HTTP/1.1\r\nHost: x\r\n\r\n",
		"trailing dotdot": "GET /user/alice/.. HTTP/1.1\r\nHost: x\r\n\r\n",
		"encoded dotdot":  "GET /user/alice/%2e%2e/bob/ HTTP/1.1\r\nHost: x\r\n\r\n",
		"mixed case enc":  "GET /user/alice/%2E./bob/ HTTP/1.1\r\nHost: x\r\n\r\n",
		"encoded slash":   "GET /user/alice/..%2Fbob/ HTTP/1.1\r\nHost: x\r\n\r\n",
		"encoded NUL":     "GET /user/alice/a%00b HTTP/1.1\r\nHost: x\r\n\r\n",
		"too long":        "GET " + long + " HTTP/1.1\r\nHost: x\r\n\r\n",
		"h2c":             "GET /user/alice/ HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n",
		"h2c no conn":     "GET /user/alice/ HTTP/1.1\r\nHost: x\r\nUpgrade: h2c\r\n\r\n",
		"two upgrades":    "GET /user/alice/ HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket, h2c\r\n\r\n",
		"tls upgrade":     "GET /user/alice/ HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: TLS/1.2\r\n\r\n",
	}
	for name, req := range tests {
		t.Run(name, func(t *testing.T) {
			res := rawRequest(t, addr, req)
			res.Body.Close()
			if res.StatusCode != http.StatusBadRequest {
				t.Errorf("status %d, want 400", res.StatusCode)
			}
		})
	}
	if _, n := b.counts(); n != 0 {
		t.Errorf("backend got %d refused requests", n)
	}
	// The same connection shape with a clean path does get through, so the
	// refusals above are about the path and the upgrade, not the harness.
	res := rawRequest(t, addr, "GET /user/alice/..x/.y/ HTTP/1.1\r\nHost: x\r\n\r\n")
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Errorf("clean path: status %d, want 200", res.StatusCode)
	}
}

func TestMaxPathBytesOption(t *testing.T) {
	b := echoBackend(t, "alice")
	tab := NewTable()
	mustSet(t, tab, "/user/alice/", b.URL)
	base := front(t, New(tab, Options{MaxPathBytes: 64}))
	c := client(t)
	path := "/user/alice/" + strings.Repeat("x", 64-len("/user/alice/"))
	if code, _ := get(t, c, base+path); code != http.StatusOK {
		t.Errorf("%d-byte path: status %d, want 200", len(path), code)
	}
	if code, _ := get(t, c, base+path+"y"); code != http.StatusBadRequest {
		t.Errorf("%d-byte path: status %d, want 400", len(path)+1, code)
	}
}

func TestRouteChangeAppliesToNextRequest(t *testing.T) {
	one, two := echoBackend(t, "one"), echoBackend(t, "two")
	tab := NewTable()
	base := front(t, New(tab, Options{}))
	c := client(t)
	for i := range 20 {
		b := one
		if i%2 == 1 {
			b = two
		}
		mustSet(t, tab, "/user/alice/", b.URL)
		req, _ := http.NewRequest("GET", base+"/user/alice/", nil)
		if got, want := do(t, c, req).Backend, map[bool]string{false: "one", true: "two"}[i%2 == 1]; got != want {
			t.Fatalf("request %d after Set went to %q, want %q", i, got, want)
		}
	}
	tab.Delete("/user/alice/")
	if code, _ := get(t, c, base+"/user/alice/"); code != http.StatusNotFound {
		t.Fatalf("after Delete: status %d, want 404", code)
	}
}

func ExampleTable_Lookup() {
	tab := NewTable()
	tab.Set(Route{Prefix: "/user/alice/", Target: "http://127.0.0.1:41001", User: "alice"})
	tab.Set(Route{Prefix: "/user/alice/gpu/", Target: "http://127.0.0.1:41002", User: "alice", Server: "gpu"})
	for _, p := range []string{"/user/alice/lab", "/user/alice/gpu/lab", "/user/alicex/"} {
		r, ok := tab.Lookup(p)
		fmt.Printf("%s → %q %v\n", p, r.Target, ok)
	}
	// Output:
	// /user/alice/lab → "http://127.0.0.1:41001" true
	// /user/alice/gpu/lab → "http://127.0.0.1:41002" true
	// /user/alicex/ → "" false
}

// TestRefusesPathWithoutSlash covers request targets a Go server answers
// itself (OPTIONS *) or never produces, should another server hand them in.
func TestRefusesPathWithoutSlash(t *testing.T) {
	tab := NewTable()
	mustSet(t, tab, "/", target)
	notFound := http.HandlerFunc(func(http.ResponseWriter, *http.Request) { t.Error("NotFound called") })
	p := New(tab, Options{NotFound: notFound})
	for _, path := range []string{"*", "", "user/alice/"} {
		rec := httptest.NewRecorder()
		p.ServeHTTP(rec, &http.Request{Method: "GET", URL: &url.URL{Path: path}, Header: http.Header{}})
		if rec.Code != http.StatusBadRequest {
			t.Errorf("path %q: status %d, want 400", path, rec.Code)
		}
	}
}
