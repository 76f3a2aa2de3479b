package proxy

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// wsBackend echoes every websocket message and records the upgrade
// request's path and Host.
type wsBackend struct {
	*backend
	mu   sync.Mutex
	uris []string
	host string
	// ended receives once per websocket whose backend side has finished.
	ended chan struct{}
}

func newWSBackend(t testing.TB) *wsBackend {
	t.Helper()
	wb := &wsBackend{ended: make(chan struct{}, 64)}
	wb.backend = newBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		wb.mu.Lock()
		wb.uris = append(wb.uris, r.RequestURI)
		wb.host = r.Host
		wb.mu.Unlock()
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer func() {
			c.CloseNow()
			wb.ended <- struct{}{}
		}()
		c.SetReadLimit(1 << 20)
		ctx := r.Context()
		for {
			typ, data, err := c.Read(ctx)
			if err != nil {
				return
			}
			if err := c.Write(ctx, typ, data); err != nil {
				return
			}
		}
	}))
	return wb
}

func dialWS(t testing.TB, url string) *websocket.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, res, err := websocket.Dial(ctx, url, &websocket.DialOptions{Host: "hub.example.org"})
	if err != nil {
		t.Fatalf("dial %s: %v", url, err)
	}
	if res.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("dial %s: status %d", url, res.StatusCode)
	}
	c.SetReadLimit(1 << 20)
	t.Cleanup(func() { c.CloseNow() })
	return c
}

func echo(t testing.TB, c *websocket.Conn, typ websocket.MessageType, msg []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.Write(ctx, typ, msg); err != nil {
		t.Fatalf("write: %v", err)
	}
	gotTyp, got, err := c.Read(ctx)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	if gotTyp != typ || !bytes.Equal(got, msg) {
		t.Fatalf("echo of %d bytes came back as %d bytes (type %v)", len(msg), len(got), gotTyp)
	}
}

func TestWebsocketEcho(t *testing.T) {
	wb := newWSBackend(t)
	tab := NewTable()
	mustSet(t, tab, "/user/alice/", wb.URL)
	base := front(t, New(tab, Options{}))

	c := dialWS(t, "ws"+strings.TrimPrefix(base, "http")+"/user/alice/api/kernels/k1/channels?session_id=s")
	echo(t, c, websocket.MessageText, []byte(`{"msg_type":"execute_request"}`))
	big := bytes.Repeat([]byte("0123456789abcdef"), 4<<10) // 64 KiB
	for range 4 {
		echo(t, c, websocket.MessageBinary, big)
	}
	if err := c.Close(websocket.StatusNormalClosure, ""); err != nil {
		t.Errorf("close: %v", err)
	}

	wb.mu.Lock()
	defer wb.mu.Unlock()
	if len(wb.uris) != 1 || wb.uris[0] != "/user/alice/api/kernels/k1/channels?session_id=s" {
		t.Errorf("backend upgrade requests: %q", wb.uris)
	}
	if wb.host != "hub.example.org" {
		t.Errorf("backend saw Host %q", wb.host)
	}
}

func TestWebsocketUpgradeIsCaseInsensitive(t *testing.T) {
	wb := newWSBackend(t)
	tab := NewTable()
	mustSet(t, tab, "/user/alice/", wb.URL)
	addr := strings.TrimPrefix(front(t, New(tab, Options{})), "http://")

	res := rawRequest(t, addr, "GET /user/alice/terminals/websocket/1 HTTP/1.1\r\nHost: x\r\n"+
		"Connection: keep-alive, Upgrade\r\nUpgrade: WebSocket\r\n"+
		"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")
	if res.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("status %d, want 101", res.StatusCode)
	}
	if got := res.Header.Get("Sec-WebSocket-Accept"); got != "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" {
		t.Errorf("Sec-WebSocket-Accept %q", got)
	}
}

// TestIdleWebsocketOutlivesTimeouts: kernel websockets sit idle for hours;
// no proxy timeout may cut them. The sleep is the idle period under test,
// not synchronisation.
func TestIdleWebsocketOutlivesTimeouts(t *testing.T) {
	wb := newWSBackend(t)
	tab := NewTable()
	mustSet(t, tab, "/user/alice/", wb.URL)
	const short = 50 * time.Millisecond
	base := front(t, New(tab, Options{IdleConnTimeout: short, ResponseHeaderTimeout: short, ResponseIdleTimeout: short}))

	c := dialWS(t, "ws"+strings.TrimPrefix(base, "http")+"/user/alice/api/kernels/k1/channels")
	echo(t, c, websocket.MessageText, []byte("before"))
	time.Sleep(6 * short)
	echo(t, c, websocket.MessageText, []byte("after"))
}

// TestWebsocketToDeadServer: the upgrade gets a prompt 503 and the client
// connection is closed rather than left to linger (CHP #557).
func TestWebsocketToDeadServer(t *testing.T) {
	tab := NewTable()
	mustSet(t, tab, "/user/alice/", deadTarget(t))
	addr := strings.TrimPrefix(front(t, New(tab, Options{})), "http://")

	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(c, "GET /user/alice/api/kernels/k/channels HTTP/1.1\r\nHost: x\r\n"+
		"Connection: Upgrade\r\nUpgrade: websocket\r\n"+
		"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")
	body, err := io.ReadAll(c) // returns only when the proxy closes
	if err != nil {
		t.Fatalf("reading until close: %v", err)
	}
	if !bytes.HasPrefix(body, []byte("HTTP/1.1 503 ")) {
		t.Fatalf("response %q, want a 503", body)
	}
}

// TestClientVanishingClosesUpstream: when the browser side drops without
// a close frame, the proxy must close the backend side too (CHP #557 (c)).
func TestClientVanishingClosesUpstream(t *testing.T) {
	wb := newWSBackend(t)
	tab := NewTable()
	mustSet(t, tab, "/user/alice/", wb.URL)
	base := front(t, New(tab, Options{}))

	c := dialWS(t, "ws"+strings.TrimPrefix(base, "http")+"/user/alice/api/kernels/k/channels")
	echo(t, c, websocket.MessageText, []byte("hello"))
	c.CloseNow() // TCP close, no websocket close handshake
	select {
	case <-wb.ended:
	case <-time.After(10 * time.Second):
		t.Fatal("backend websocket still open after the client vanished")
	}
}

// deadTarget returns the URL of a loopback port that refuses connections.
func deadTarget(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	if err := l.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
		t.Fatal(err)
	}
	return "http://" + addr
}
