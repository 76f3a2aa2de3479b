package proxy

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// backend is a real loopback server that counts connections and requests.
type backend struct {
	*httptest.Server
	mu       sync.Mutex
	conns    int
	requests int
}

func newBackend(t testing.TB, h http.Handler) *backend {
	t.Helper()
	b := &backend{}
	b.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b.mu.Lock()
		b.requests++
		b.mu.Unlock()
		h.ServeHTTP(w, r)
	}))
	b.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			b.mu.Lock()
			b.conns++
			b.mu.Unlock()
		}
	}
	b.Start()
	t.Cleanup(b.Close)
	return b
}

func (b *backend) counts() (conns, requests int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.conns, b.requests
}

// front serves p on a loopback listener, as the hub's public listener
// would, and returns its base URL.
func front(t testing.TB, p *Proxy) string {
	t.Helper()
	s := httptest.NewServer(p)
	t.Cleanup(func() {
		s.Close()
		p.Close()
	})
	return s.URL
}

// client returns an HTTP client whose connections are dropped at cleanup,
// with a timeout that turns a hang into a failure.
func client(t testing.TB) *http.Client {
	t.Helper()
	tr := &http.Transport{MaxIdleConnsPerHost: 64}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 20 * time.Second}
}

func mustSet(t testing.TB, tab *Table, prefix, target string) {
	t.Helper()
	if err := tab.Set(Route{Prefix: prefix, Target: target, User: userOf(prefix)}); err != nil {
		t.Fatalf("Set(%q): %v", prefix, err)
	}
}

// userOf returns <name> from /user/<name>/….
func userOf(prefix string) string {
	parts := strings.Split(prefix, "/")
	if len(parts) < 3 {
		return ""
	}
	return parts[2]
}

// get fetches url and returns the status and body.
func get(t testing.TB, c *http.Client, url string) (int, string) {
	t.Helper()
	res, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("GET %s: reading body: %v", url, err)
	}
	return res.StatusCode, string(body)
}

// rawRequest writes req verbatim to addr (host:port) and parses the reply,
// for request lines a Go client would refuse or rewrite.
func rawRequest(t testing.TB, addr, req string) *http.Response {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if err := c.SetDeadline(time.Now().Add(20 * time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(c, req); err != nil {
		t.Fatal(err)
	}
	res, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("reading response to %q: %v", req, err)
	}
	return res
}

// waitGoroutines polls until the goroutine count is back to at most base.
func waitGoroutines(t testing.TB, base int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		n := runtime.NumGoroutine()
		if n <= base {
			return
		}
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("goroutines: %d, baseline %d\n%s", n, base, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(10 * time.Millisecond)
	}
}
