package proxy

import (
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
)

const target = "http://127.0.0.1:9"

func TestLookupWholeSegments(t *testing.T) {
	tab := NewTable()
	for _, p := range []string{"/user/alice/", "/user/alice/foo/", "/user/al/", "/user/a%40b/", "/hub"} {
		mustSet(t, tab, p, target)
	}
	tests := []struct {
		path string
		want string // matched prefix, "" for none
	}{
		{"/user/alice", "/user/alice/"},
		{"/user/alice/", "/user/alice/"},
		{"/user/alice/tree", "/user/alice/"},
		{"/user/alice/tree/a/b/c", "/user/alice/"},
		{"/user/alicex", ""},
		{"/user/alicex/tree", ""},
		{"/user/alic", ""},
		{"/user/al", "/user/al/"},
		{"/user/al/x", "/user/al/"},
		{"/user/ali/x", ""},
		{"/user/alice/foo", "/user/alice/foo/"},
		{"/user/alice/foo/", "/user/alice/foo/"},
		{"/user/alice/foo/lab", "/user/alice/foo/"},
		{"/user/alice/foobar", "/user/alice/"},
		{"/user/alice/fo", "/user/alice/"},
		{"/user/a%40b/", "/user/a%40b/"},
		{"/user/a%40b/api/kernels", "/user/a%40b/"},
		{"/user/a%40bx/", ""},
		{"/user/a@b/", ""}, // routes compare escaped paths, as forwarded
		{"/user/", ""},
		{"/user", ""},
		{"/", ""},
		{"/hub", "/hub/"},
		{"/hubx", ""},
		{"//user/alice/", ""},
		{"user/alice/", ""},
		{"", ""},
	}
	for _, tt := range tests {
		r, ok := tab.Lookup(tt.path)
		if got := r.Prefix; got != tt.want || ok != (tt.want != "") {
			t.Errorf("Lookup(%q) = %q, %v; want %q", tt.path, got, ok, tt.want)
		}
	}
}

func TestRootRouteIsTheFallback(t *testing.T) {
	tab := NewTable()
	mustSet(t, tab, "/", "http://127.0.0.1:1")
	mustSet(t, tab, "/user/alice", target)
	for path, want := range map[string]string{
		"/":                "/",
		"/hub/home":        "/",
		"/user/alicex":     "/",
		"/user/alice/tree": "/user/alice/",
	} {
		if r, _ := tab.Lookup(path); r.Prefix != want {
			t.Errorf("Lookup(%q) = %q, want %q", path, r.Prefix, want)
		}
	}
}

func TestSetStoresCanonicalPrefix(t *testing.T) {
	tab := NewTable()
	if err := tab.Set(Route{Prefix: "/user/bob", Target: "http://127.0.0.1:8888/", User: "bob"}); err != nil {
		t.Fatal(err)
	}
	got, ok := tab.Lookup("/user/bob/lab")
	want := Route{Prefix: "/user/bob/", Target: "http://127.0.0.1:8888/", User: "bob"}
	if !ok || got != want {
		t.Fatalf("Lookup = %+v, %v; want %+v", got, ok, want)
	}
}

func TestSetRejectsBadRoutes(t *testing.T) {
	tests := []Route{
		{Prefix: "", Target: target},
		{Prefix: "user/x/", Target: target},
		{Prefix: "/user/../x/", Target: target},
		{Prefix: "/user/./x/", Target: target},
		{Prefix: "/user/%2e%2e/", Target: target},
		{Prefix: "/user//x/", Target: target},
		{Prefix: "/user/a b/", Target: target},
		{Prefix: "/user/x?y/", Target: target},
		{Prefix: "/user/x#y/", Target: target},
		{Prefix: "/user/%zz/", Target: target},
		{Prefix: "/user/a%00/", Target: target},
		{Prefix: "/a/b/c/d/e/f/g/h/i/j/k/l/m/n/o/p/q/", Target: target},
		{Prefix: "/user/x/", Target: ""},
		{Prefix: "/user/x/", Target: "ftp://127.0.0.1:21"},
		{Prefix: "/user/x/", Target: "127.0.0.1:8888"},
		{Prefix: "/user/x/", Target: "http://"},
		{Prefix: "/user/x/", Target: "http://127.0.0.1:8888/user/x/"},
		{Prefix: "/user/x/", Target: "http://u:p@127.0.0.1:8888"},
		{Prefix: "/user/x/", Target: "http://127.0.0.1:8888?q=1"},
	}
	tab := NewTable()
	for _, r := range tests {
		if err := tab.Set(r); !errors.Is(err, ErrInvalidRoute) {
			t.Errorf("Set(%+v) = %v, want ErrInvalidRoute", r, err)
		}
	}
	if n := tab.Len(); n != 0 {
		t.Errorf("Len = %d after only bad routes", n)
	}
}

func TestDeleteFallsBackToShorterRoute(t *testing.T) {
	tab := NewTable()
	mustSet(t, tab, "/user/alice/", target)
	mustSet(t, tab, "/user/alice/foo/", target)
	if !tab.Delete("/user/alice/foo") {
		t.Fatal("Delete of an existing route returned false")
	}
	if tab.Delete("/user/alice/foo/") {
		t.Fatal("second Delete returned true")
	}
	if r, _ := tab.Lookup("/user/alice/foo/lab"); r.Prefix != "/user/alice/" {
		t.Fatalf("after Delete, Lookup = %q, want the default server", r.Prefix)
	}
	if !tab.Delete("/user/alice/") {
		t.Fatal("Delete of the default route returned false")
	}
	if r, ok := tab.Lookup("/user/alice/"); ok {
		t.Fatalf("Lookup after deleting everything = %+v", r)
	}
	if tab.Delete("/../") {
		t.Fatal("Delete of an invalid prefix returned true")
	}
}

func TestListAndLen(t *testing.T) {
	tab := NewTable()
	mustSet(t, tab, "/user/bob/", target)
	mustSet(t, tab, "/user/alice/", target)
	mustSet(t, tab, "/user/alice/", "http://127.0.0.1:10") // replace, not add
	want := []Route{
		{Prefix: "/user/alice/", Target: "http://127.0.0.1:10", User: "alice"},
		{Prefix: "/user/bob/", Target: target, User: "bob"},
	}
	if diff := cmp.Diff(want, tab.List()); diff != "" {
		t.Errorf("List (-want +got):\n%s", diff)
	}
	if n := tab.Len(); n != 2 {
		t.Errorf("Len = %d, want 2", n)
	}
}

// TestConcurrentSetLookup is for -race: readers must only ever see their
// own user's route or none while writers churn the table.
func TestConcurrentSetLookup(t *testing.T) {
	tab := NewTable()
	const users = 50
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := range 2000 {
				u := (i*7 + w) % users
				prefix := fmt.Sprintf("/user/u%d/", u)
				if i%3 == 0 {
					tab.Delete(prefix)
				} else {
					mustSet(t, tab, prefix, target)
				}
				if i%5 == 0 {
					mustSet(t, tab, prefix+"named/", target)
				}
			}
		})
	}
	for range 4 {
		wg.Go(func() {
			for i := range 5000 {
				u := i % users
				want := fmt.Sprintf("u%d", u)
				if r, ok := tab.Lookup(fmt.Sprintf("/user/u%d/named/api", u)); ok && r.User != want {
					t.Errorf("Lookup for %s returned %+v", want, r)
					return
				}
				_ = tab.List()
			}
		})
	}
	wg.Wait()
}
