package proxy

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// rawBackend accepts connections, reads one request from each and then
// does whatever serve says; it keeps every connection for inspection.
type rawBackend struct {
	l     net.Listener
	mu    sync.Mutex
	conns []net.Conn
	wg    sync.WaitGroup
}

func newRawBackend(t testing.TB, serve func(net.Conn)) *rawBackend {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	rb := &rawBackend{l: l}
	rb.wg.Go(func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			rb.mu.Lock()
			rb.conns = append(rb.conns, c)
			rb.mu.Unlock()
			rb.wg.Go(func() {
				if _, err := http.ReadRequest(bufio.NewReader(c)); err == nil {
					serve(c)
				}
			})
		}
	})
	t.Cleanup(func() {
		l.Close()
		rb.mu.Lock()
		for _, c := range rb.conns {
			c.Close()
		}
		rb.mu.Unlock()
		rb.wg.Wait()
	})
	return rb
}

func (rb *rawBackend) URL() string { return "http://" + rb.l.Addr().String() }

// assertAllClosed checks that the proxy closed every connection it made
// to rb: reading each must end, not time out.
func (rb *rawBackend) assertAllClosed(t *testing.T) {
	t.Helper()
	rb.mu.Lock()
	conns := append([]net.Conn(nil), rb.conns...)
	rb.mu.Unlock()
	if len(conns) == 0 {
		t.Fatal("backend saw no connections")
	}
	for i, c := range conns {
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		_, err := io.Copy(io.Discard, c)
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Errorf("connection %d of %d still open on the proxy side", i+1, len(conns))
		}
	}
}

// hang holds the connection open and never answers.
func hang(net.Conn) {}

// resetMidBody promises 1 MiB, sends 64 KiB, then resets the connection.
func resetMidBody(c net.Conn) {
	fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n", 1<<20)
	c.Write(make([]byte, 64<<10))
	c.(*net.TCPConn).SetLinger(0)
	c.Close()
}

func TestDeadUpstreamIs503(t *testing.T) {
	tab := NewTable()
	mustSet(t, tab, "/user/alice/", deadTarget(t))
	code, body := get(t, client(t), front(t, New(tab, Options{}))+"/user/alice/tree")
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "not responding") {
		t.Errorf("got %d %q, want the default 503 page", code, body)
	}
}

func TestErrorHandlerGetsRouteAndError(t *testing.T) {
	tab := NewTable()
	if err := tab.Set(Route{Prefix: "/user/alice/gpu/", Target: deadTarget(t), User: "alice", Server: "gpu"}); err != nil {
		t.Fatal(err)
	}
	var got Route
	var gotStatus int
	var gotPath string
	onError := func(w http.ResponseWriter, r *http.Request, route Route, err error) {
		got, gotStatus, gotPath = route, ErrorStatus(err), r.URL.Path
		http.Error(w, "your server is not running", http.StatusServiceUnavailable)
	}
	base := front(t, New(tab, Options{ErrorHandler: onError}))
	code, body := get(t, client(t), base+"/user/alice/gpu/lab")
	if code != http.StatusServiceUnavailable || body != "your server is not running\n" {
		t.Errorf("got %d %q from the custom handler", code, body)
	}
	if got.User != "alice" || got.Server != "gpu" || gotStatus != http.StatusServiceUnavailable || gotPath != "/user/alice/gpu/lab" {
		t.Errorf("handler got route %+v, status %d, path %q", got, gotStatus, gotPath)
	}
}

func TestUnansweringUpstreamTimesOut(t *testing.T) {
	rb := newRawBackend(t, hang)
	tab := NewTable()
	mustSet(t, tab, "/user/alice/", rb.URL())
	p := New(tab, Options{ResponseHeaderTimeout: 100 * time.Millisecond})
	base := front(t, p)
	c := client(t)
	for range 3 {
		if code, _ := get(t, c, base+"/user/alice/api/status"); code != http.StatusGatewayTimeout {
			t.Errorf("status %d, want 504", code)
		}
	}
	rb.assertAllClosed(t)
}

func TestResetMidBodyTruncates(t *testing.T) {
	rb := newRawBackend(t, resetMidBody)
	tab := NewTable()
	mustSet(t, tab, "/user/alice/", rb.URL())
	base := front(t, New(tab, Options{}))

	res, err := client(t).Get(base + "/user/alice/files/big")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("status %d, want the backend's 200", res.StatusCode)
	}
	n, err := io.Copy(io.Discard, res.Body)
	if err == nil || n >= 1<<20 {
		t.Fatalf("read %d bytes, err %v; want a truncated body and an error", n, err)
	}
}

// TestFailuresLeakNothing drives many failing requests of each kind, then
// expects the goroutine count back at its baseline and every upstream
// connection closed.
func TestFailuresLeakNothing(t *testing.T) {
	hanging := newRawBackend(t, hang)
	resetting := newRawBackend(t, resetMidBody)
	tab := NewTable()
	mustSet(t, tab, "/user/dead/", deadTarget(t))
	mustSet(t, tab, "/user/hang/", hanging.URL())
	mustSet(t, tab, "/user/reset/", resetting.URL())
	p := New(tab, Options{ResponseHeaderTimeout: 20 * time.Millisecond})
	base := front(t, p)
	tr := &http.Transport{MaxIdleConnsPerHost: 8}
	c := &http.Client{Transport: tr, Timeout: 20 * time.Second}
	baseline := runtime.NumGoroutine()

	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := range 150 {
				user := []string{"dead", "hang", "reset"}[(i+w)%3]
				res, err := c.Get(base + "/user/" + user + "/x")
				if err != nil {
					t.Error(err)
					return
				}
				io.Copy(io.Discard, res.Body)
				res.Body.Close()
			}
		})
	}
	wg.Wait()
	tr.CloseIdleConnections()
	p.Close()
	waitGoroutines(t, baseline)
	hanging.assertAllClosed(t)
	resetting.assertAllClosed(t)
}

// A backend that sends its headers and part of the body, then nothing, is
// cut off after the idle timeout; a websocket quiet for longer is not.
func TestStalledBodyIsCutOff(t *testing.T) {
	rb := newRawBackend(t, func(c net.Conn) {
		fmt.Fprint(c, "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\npartial")
		hang(c)
	})
	tab := NewTable()
	mustSet(t, tab, "/user/alice/", rb.URL())
	base := front(t, New(tab, Options{ResponseIdleTimeout: 200 * time.Millisecond}))
	// The answer is aborted: before its buffered headers reach the client,
	// or at the latest before the body is complete.
	res, err := client(t).Get(base + "/user/alice/files/big")
	if err == nil {
		_, err = io.ReadAll(res.Body)
		res.Body.Close()
	}
	if err == nil {
		t.Fatal("a stalled body was passed on as complete")
	}
	rb.assertAllClosed(t)
}
