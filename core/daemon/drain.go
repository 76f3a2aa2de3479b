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
	changed chan struct{}
}

// NewFreshConns returns an empty tracker.
func NewFreshConns() *FreshConns {
	return &FreshConns{fresh: map[net.Conn]struct{}{}, changed: make(chan struct{})}
}

// Hook is an http.Server ConnState hook.
func (f *FreshConns) Hook(c net.Conn, s http.ConnState) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if s == http.StateNew {
		f.fresh[c] = struct{}{}
		return
	}
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
		n, changed := 0, f.changed
		for c := range f.fresh {
			if !isHTTP2(c) {
				n++
			}
		}
		f.mu.Unlock()
		if n == 0 {
			return
		}
		// A TLS handshake that ends in HTTP/2 changes nothing a hook
		// sees, so look again now and then.
		select {
		case <-ctx.Done():
			return
		case <-changed:
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// isHTTP2 reports whether c finished a TLS handshake that chose HTTP/2.
func isHTTP2(c net.Conn) bool {
	tc, ok := c.(*tls.Conn)
	if !ok {
		return false
	}
	st := tc.ConnectionState()
	return st.HandshakeComplete && st.NegotiatedProtocol == "h2"
}
