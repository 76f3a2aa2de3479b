package daemon

import (
	"context"
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
// not waited for forever).
func (f *FreshConns) Wait(ctx context.Context, limit time.Duration) {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	for {
		f.mu.Lock()
		n, changed := len(f.fresh), f.changed
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
