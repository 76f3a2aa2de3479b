package daemon

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/hubd/hubd/internal/testutil"
)

// TestFreshConnsWait: a TLS connection that chose HTTP/2 and has sent
// nothing (its state changes reach no hook; Shutdown's GOAWAY covers it)
// does not hold Wait; an HTTP/1.1 one that has sent nothing holds it
// until its first request.
func TestFreshConnsWait(t *testing.T) {
	f := NewFreshConns()
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	srv.EnableHTTP2 = true
	srv.Config.ConnState = f.Hook
	srv.StartTLS()
	t.Cleanup(srv.Close)
	roots := srv.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs
	dial := func(proto string) *tls.Conn {
		t.Helper()
		c, err := tls.Dial("tcp", srv.Listener.Addr().String(), &tls.Config{RootCAs: roots, NextProtos: []string{proto}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		// Without an ALPN match the connection is HTTP/1.1 all the same.
		if got := c.ConnectionState().NegotiatedProtocol; got != proto && (proto != "http/1.1" || got != "") {
			t.Fatalf("negotiated %q, want %q", got, proto)
		}
		return c
	}
	fresh := func() int {
		f.mu.Lock()
		defer f.mu.Unlock()
		return len(f.fresh)
	}

	dial("h2")
	testutil.WaitFor(t, "the server to track the HTTP/2 connection", func() bool { return fresh() == 1 })
	waited := waitInBackground(f)
	testutil.WaitFor(t, "Wait to return with only an HTTP/2 connection open", func() bool { return done(waited) })
	if n := fresh(); n != 0 {
		t.Errorf("%d fresh connections after Wait, want the HTTP/2 one forgotten", n)
	}

	h1 := dial("http/1.1")
	testutil.WaitFor(t, "the server to track the HTTP/1.1 connection", func() bool { return fresh() == 1 })
	waited = waitInBackground(f)
	if done(waited) {
		t.Fatal("Wait returned while an HTTP/1.1 connection had sent nothing")
	}
	if _, err := h1.Write([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, "Wait to return after the first request", func() bool { return done(waited) })
}

// TestFreshConnsStalledHandshake: a client that opens a TLS connection and
// never finishes its handshake holds Wait (it might still send a request),
// but nothing else: other connections are served meanwhile, and once it
// goes, Wait returns.
func TestFreshConnsStalledHandshake(t *testing.T) {
	f := NewFreshConns()
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	srv.Config.ConnState = f.Hook
	srv.StartTLS()
	t.Cleanup(srv.Close)
	stalled, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, "the server to track the stalled connection", func() bool {
		f.mu.Lock()
		defer f.mu.Unlock()
		return len(f.fresh) == 1
	})
	waited := waitInBackground(f)
	resp, err := srv.Client().Get(srv.URL)
	if err != nil {
		t.Fatalf("a request while Wait waits on a stalled handshake: %v", err)
	}
	resp.Body.Close()
	if done(waited) {
		t.Fatal("Wait returned while a connection had sent nothing")
	}
	stalled.Close()
	testutil.WaitFor(t, "Wait to return once the stalled connection is gone", func() bool { return done(waited) })
}

// waitInBackground runs Wait with a limit no test reaches and closes the
// channel when it returns.
func waitInBackground(f *FreshConns) chan struct{} {
	ch := make(chan struct{})
	go func() {
		f.Wait(context.Background(), time.Hour)
		close(ch)
	}()
	return ch
}

func done(ch chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}
