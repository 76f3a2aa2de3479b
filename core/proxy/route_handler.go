package proxy

import (
	"io"
	"math"
	"net/http"
	"net/http/httputil"
	"net/url"
	"slices"
	"sync/atomic"
	"time"
)

// routeHandler is the per-route half of the proxy: a ReverseProxy whose
// hooks already know the route, so the hot path needs no context value
// to carry it from ServeHTTP to Rewrite and ErrorHandler.
type routeHandler struct {
	owner  *Proxy
	route  Route
	target *url.URL
	rp     httputil.ReverseProxy
	// lastActivity is when OnActivity last ran, in nanoseconds since
	// owner.epoch (monotonic, so wall-clock jumps cannot stall it).
	lastActivity atomic.Int64
}

// neverActive marks a route handler that has not reported activity yet.
const neverActive = math.MinInt64

// handler returns e's handler for p, building it on first use. Entries are
// replaced, never edited, so a cached handler never outlives its route.
func (p *Proxy) handler(e *entry) *routeHandler {
	old := e.handler.Load()
	if old != nil && old.owner == p {
		return old
	}
	h := &routeHandler{owner: p, route: e.route, target: e.target}
	h.lastActivity.Store(neverActive)
	h.rp = httputil.ReverseProxy{
		Rewrite:      h.rewrite,
		Transport:    p.transport,
		BufferPool:   p.buffers,
		ErrorLog:     p.errorLog,
		ErrorHandler: h.fail,
	}
	if p.opts.OnActivity != nil || p.opts.ResponseIdleTimeout > 0 {
		h.rp.ModifyResponse = h.modifyResponse
	}
	if !e.handler.CompareAndSwap(old, h) {
		// Another request built one first; use it so activity state is
		// shared.
		if cur := e.handler.Load(); cur != nil && cur.owner == p {
			return cur
		}
	}
	return h
}

func (h *routeHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.rp.ServeHTTP(w, r)
}

// rewrite keeps the full path and the client's Host: single-user servers
// serve under their /user/<name>/ prefix and build URLs from Host.
// ReverseProxy has already dropped the client's forwarding headers.
func (h *routeHandler) rewrite(pr *httputil.ProxyRequest) {
	pr.SetURL(h.target)
	pr.Out.Host = pr.In.Host
	if !h.owner.opts.TrustForwardedHeaders {
		pr.SetXForwarded()
		return
	}
	in, out := pr.In.Header, pr.Out.Header
	for _, k := range []string{"X-Forwarded-For", "Forwarded"} {
		if v, ok := in[k]; ok {
			out[k] = slices.Clone(v)
		}
	}
	pr.SetXForwarded() // appends the peer to X-Forwarded-For
	for _, k := range []string{"X-Forwarded-Host", "X-Forwarded-Proto"} {
		if v, ok := in[k]; ok {
			out[k] = slices.Clone(v)
		}
	}
}

// fail hands an upstream error to the configured handler.
func (h *routeHandler) fail(w http.ResponseWriter, r *http.Request, err error) {
	if r.Context().Err() != nil {
		return // the client is gone: nobody to answer, nothing to log
	}
	if r.Header.Get("Upgrade") != "" {
		// A refused websocket gets its answer and a close, so no client
		// connection lingers on a dead server (CHP #557).
		w.Header().Set("Connection", "close")
	}
	h.owner.opts.Logger.Debug("upstream error", "user", h.route.User,
		"server", h.route.Server, "target", h.route.Target, "err", err)
	h.owner.opts.ErrorHandler(w, r, h.route, err)
}

// modifyResponse counts a backend answer as activity and makes an
// upgraded connection count its frames too; other bodies get the idle
// timeout.
func (h *routeHandler) modifyResponse(res *http.Response) error {
	if h.owner.opts.OnActivity != nil {
		h.touch()
		if res.StatusCode == http.StatusSwitchingProtocols {
			if rwc, ok := res.Body.(io.ReadWriteCloser); ok {
				res.Body = &activityConn{ReadWriteCloser: rwc, h: h}
			}
		}
	}
	if idle := h.owner.opts.ResponseIdleTimeout; idle > 0 && res.StatusCode != http.StatusSwitchingProtocols {
		res.Body = newIdleBody(res.Body, idle)
	}
	return nil
}

// idleBody closes a response body that yields nothing for a while: the
// Read blocked on the stalled backend then fails and the proxy ends the
// response.
type idleBody struct {
	io.ReadCloser
	timer *time.Timer
	idle  time.Duration
}

func newIdleBody(b io.ReadCloser, idle time.Duration) *idleBody {
	ib := &idleBody{ReadCloser: b, idle: idle}
	ib.timer = time.AfterFunc(idle, func() { _ = b.Close() })
	return ib
}

func (b *idleBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if n > 0 {
		b.timer.Reset(b.idle)
	}
	return n, err
}

func (b *idleBody) Close() error {
	b.timer.Stop()
	return b.ReadCloser.Close()
}

// touch calls OnActivity unless it ran for this route less than
// ActivityInterval ago, so busy routes cost one atomic load per request.
func (h *routeHandler) touch() {
	p := h.owner
	now := p.now()
	at := int64(now.Sub(p.epoch))
	last := h.lastActivity.Load()
	if last != neverActive && at-last < int64(p.opts.ActivityInterval) {
		return
	}
	if !h.lastActivity.CompareAndSwap(last, at) {
		return // a concurrent request reports this moment
	}
	p.opts.OnActivity(h.route, now)
}

// activityConn is the backend side of a websocket: data in either
// direction is activity.
type activityConn struct {
	io.ReadWriteCloser
	h *routeHandler
}

func (c *activityConn) Read(b []byte) (int, error) {
	n, err := c.ReadWriteCloser.Read(b)
	if n > 0 {
		c.h.touch()
	}
	return n, err
}

func (c *activityConn) Write(b []byte) (int, error) {
	n, err := c.ReadWriteCloser.Write(b)
	if n > 0 {
		c.h.touch()
	}
	return n, err
}

// CloseWrite passes half-closes through, as ReverseProxy expects of the
// transport's own body.
func (c *activityConn) CloseWrite() error {
	if cw, ok := c.ReadWriteCloser.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return http.ErrNotSupported
}
