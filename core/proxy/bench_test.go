package proxy

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/coder/websocket"
)

var benchSizes = []int{1000, 10000}

// benchTable holds n users' default routes plus a named server for every
// tenth user, so lookups start at depth 3 as in a real hub.
func benchTable(b *testing.B, n int, target string) *Table {
	tab := NewTable()
	for i := range n {
		mustSet(b, tab, fmt.Sprintf("/user/u%d/", i), target)
		if i%10 == 0 {
			mustSet(b, tab, fmt.Sprintf("/user/u%d/gpu/", i), target)
		}
	}
	return tab
}

func lookupPaths(n int) []string {
	paths := make([]string, 1024)
	for i := range paths {
		u := (i * 7919) % n
		paths[i] = fmt.Sprintf("/user/u%d/api/kernels/5f2a/channels", u)
	}
	return paths
}

func BenchmarkLookup(b *testing.B) {
	for _, n := range benchSizes {
		tab := benchTable(b, n, target)
		paths := lookupPaths(n)
		b.Run(fmt.Sprintf("routes=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if tab.lookup(paths[i&1023]) == nil {
					b.Fatal("miss")
				}
				i++
			}
		})
		b.Run(fmt.Sprintf("routes=%d/parallel", n), func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				i := 0
				for pb.Next() {
					if tab.lookup(paths[i&1023]) == nil {
						b.Error("miss")
						return
					}
					i++
				}
			})
		})
	}
}

func BenchmarkSetRoute(b *testing.B) {
	for _, n := range benchSizes {
		b.Run(fmt.Sprintf("routes=%d", n), func(b *testing.B) {
			tab := benchTable(b, n, target)
			routes := make([]Route, 1024)
			for i := range routes {
				routes[i] = Route{Prefix: fmt.Sprintf("/user/u%d/", (i*7919)%n), Target: "http://127.0.0.1:8888", User: "u"}
			}
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if err := tab.Set(routes[i&1023]); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
	}
}

// BenchmarkProxySmall compares a 2-byte response fetched directly from
// the backend with the same response through the proxy and 1000 routes;
// client, proxy and backend share the machine's cores.
func BenchmarkProxySmall(b *testing.B) {
	be := newBackend(b, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("ok"))
	}))
	tab := benchTable(b, 1000, be.URL)
	base := front(b, New(tab, Options{}))
	for _, arm := range []struct{ name, url string }{
		{"direct", be.URL + "/user/u1/small"},
		{"proxied", base + "/user/u1/small"},
	} {
		b.Run(arm.name, func(b *testing.B) {
			c := client(b)
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					res, err := c.Get(arm.url)
					if err != nil {
						b.Error(err)
						return
					}
					io.Copy(io.Discard, res.Body)
					res.Body.Close()
					if res.StatusCode != http.StatusOK {
						b.Errorf("status %d", res.StatusCode)
						return
					}
				}
			})
		})
	}
}

// BenchmarkWebsocketEcho is the small-message websocket round trip, direct
// and through the proxy (the goal: the proxy adds ≤ 100 µs p50, ≤ 1 ms p99).
func BenchmarkWebsocketEcho(b *testing.B) {
	wb := newWSBackend(b)
	tab := NewTable()
	mustSet(b, tab, "/user/alice/", wb.URL)
	base := front(b, New(tab, Options{}))
	msg := []byte(`{"header":{"msg_type":"kernel_info_request"}}`)
	for _, arm := range []struct{ name, url string }{
		{"direct", wb.URL},
		{"proxied", base},
	} {
		b.Run(arm.name, func(b *testing.B) {
			c := dialWS(b, "ws"+strings.TrimPrefix(arm.url, "http")+"/user/alice/api/kernels/k/channels")
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				if err := c.Write(ctx, websocket.MessageText, msg); err != nil {
					b.Fatal(err)
				}
				if _, _, err := c.Read(ctx); err != nil {
					b.Fatal(err)
				}
			}
			c.Close(websocket.StatusNormalClosure, "")
		})
	}
}

// BenchmarkDeadUpstream is the time to the 503 for a route whose server is
// gone (the goal: well under a second).
func BenchmarkDeadUpstream(b *testing.B) {
	tab := NewTable()
	mustSet(b, tab, "/user/alice/", deadTarget(b))
	base := front(b, New(tab, Options{}))
	c := client(b)
	b.ReportAllocs()
	for b.Loop() {
		res, err := c.Get(base + "/user/alice/")
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		if res.StatusCode != http.StatusServiceUnavailable {
			b.Fatalf("status %d", res.StatusCode)
		}
	}
}
