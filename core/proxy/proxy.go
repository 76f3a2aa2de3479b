package proxy

import (
	"log"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/hubd/hubd/core/names"
)

// Proxy is an http.Handler that sends each request to the server its route
// names, keeping the full path and the Host header. Only websocket
// upgrades pass; hostile paths are refused before any lookup.
type Proxy struct {
	table     *Table
	opts      Options
	transport *http.Transport
	buffers   bufferPool
	errorLog  *log.Logger
	// now is the activity clock, read relative to epoch; tests replace
	// it.
	now   func() time.Time
	epoch time.Time
}

// New returns a proxy serving the routes in table.
func New(table *Table, opts Options) *Proxy {
	opts = opts.withDefaults()
	return &Proxy{
		table:     table,
		opts:      opts,
		transport: newTransport(opts),
		buffers:   newBufferPool(64),
		errorLog:  slog.NewLogLogger(opts.Logger.Handler(), slog.LevelDebug),
		now:       time.Now,
		epoch:     time.Now(),
	}
}

// Close drops idle upstream connections. Requests in flight and open
// websockets are not cut.
func (p *Proxy) Close() {
	p.transport.CloseIdleConnections()
}

// ServeHTTP routes on the escaped path, the exact string forwarded.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if reason := p.refusal(r); reason != "" {
		p.opts.Logger.Debug("request refused", "reason", reason,
			"path", names.Quote(r.URL.EscapedPath()), "remote", r.RemoteAddr)
		http.Error(w, "400 bad request: "+reason, http.StatusBadRequest)
		return
	}
	e := p.table.lookup(r.URL.EscapedPath())
	if e == nil {
		p.opts.NotFound.ServeHTTP(w, r)
		return
	}
	p.handler(e).ServeHTTP(w, r)
}

// refusal says why r must not be proxied, or "".
func (p *Proxy) refusal(r *http.Request) string {
	if len(r.URL.Path) > p.opts.MaxPathBytes || len(r.URL.RawPath) > p.opts.MaxPathBytes {
		return "path too long"
	}
	if reason := badPath(r.URL.Path); reason != "" {
		return reason
	}
	// Any other protocol switch (h2c) would open a tunnel past every later
	// path check (golang/go#80416); refuse it even without Connection:
	// upgrade, so no backend ever sees it.
	if up, ok := r.Header["Upgrade"]; ok {
		if len(up) != 1 || !strings.EqualFold(strings.TrimSpace(up[0]), "websocket") {
			return "only websocket upgrades are proxied"
		}
	}
	return ""
}
