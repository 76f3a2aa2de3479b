package daemon

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"sync"
	"time"
)

// FreshConns tracks connections that were accepted but have not sent
// their first request yet. net/http's Shutdown drops such a connection
// without an answer when its request arrives after shutdown began
// (clients only retry on reused connections), so a restart stops
// accepting, waits for these to become active, and only then shuts down.
type FreshConns struct {
	mu      sync.Mutex
	fresh   map[net.Conn]struct{}
	checked map[net.Conn]struct{} // TLS connections Wait is asking for their protocol
	changed chan struct{}
}

// NewFreshConns returns an empty tracker.
func NewFreshConns() *FreshConns {
	return &FreshConns{fresh: map[net.Conn]struct{}{}, checked: map[net.Conn]struct{}{}, changed: make(chan struct{})}
}

// Hook is an http.Server ConnState hook.
func (f *FreshConns) Hook(c net.Conn, s http.ConnState) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if s == http.StateNew {
		f.fresh[c] = struct{}{}
		return
	}
	f.forget(c)
}

// forget drops c from the fresh connections and wakes Wait; f.mu is held.
func (f *FreshConns) forget(c net.Conn) {
	delete(f.checked, c)
	if _, ok := f.fresh[c]; ok {
		delete(f.fresh, c)
		close(f.changed)
		f.changed = make(chan struct{})
	}
}

// Wait returns once no accepted connection is waiting for its first
// request, or after limit (a client that connected and sends nothing is
// not waited for forever). HTTP/2 connections are not waited for: their
// state changes reach no hook, and Shutdown's GOAWAY tells their clients
// which requests to send again.
func (f *FreshConns) Wait(ctx context.Context, limit time.Duration) {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	for {
		f.mu.Lock()
		n, changed := len(f.fresh), f.changed
		for c := range f.fresh {
			if _, asked := f.checked[c]; !asked {
				if tc, ok := c.(*tls.Conn); ok {
					f.checked[c] = struct{}{}
					go f.dropIfHTTP2(tc)
				}
			}
		}
		f.mu.Unlock()
		if n == 0 {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-changed:
		}
	}
}

// dropIfHTTP2 forgets c once its TLS handshake has chosen HTTP/2.
// ConnectionState waits for the handshake, so it runs on a goroutine of
// its own, never under f.mu: a client that stalls its handshake holds up
// nothing but this goroutine (until the server's handshake timeout).
func (f *FreshConns) dropIfHTTP2(c *tls.Conn) {
	if st := c.ConnectionState(); !st.HandshakeComplete || st.NegotiatedProtocol != "h2" {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.forget(c)
}
