// Package admin is hubd's admin API: HTTP+JSON over a unix socket
// (admin.socket, default /run/hubd/hubd.sock) for hubtui and the hubd CLI.
//
// Who may do what is decided per connection from the peer's SO_PEERCRED
// uid, never from anything the client sends: root, the hub's own uid,
// auth.admin_users and members of auth.admin_group read and change
// everything; members of the hub (auth.allowed_group, auth.allowed_users)
// may read the status and their own sessions and logs, and restart the
// hub; everyone else is refused. Requests shaped like a browser's (Origin,
// Referer, a foreign Host) are refused, so a web page can never drive the
// socket through some local TCP forwarder. Every mutating call is written
// to the audit log with the peer's uid.
//
// The client and the wire types live in the sub-packages client and wire,
// which import nothing of the hub.
package admin

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/hubd/hubd/core/access"
	"github.com/hubd/hubd/core/admin/wire"
	"github.com/hubd/hubd/core/config"
	"github.com/hubd/hubd/core/hub"
	"github.com/hubd/hubd/core/metrics"
	"github.com/hubd/hubd/core/shares"
	"github.com/hubd/hubd/core/store"
	"github.com/hubd/hubd/internal/version"
)

// Restarter restarts the hub gracefully. Restart should return once the
// restart is under way, so the caller still gets its answer; by names who
// asked (a user name, or uid:N).
type Restarter interface {
	Restart(ctx context.Context, by string) error
}

// Options build a Server. Every dependency is explicit.
type Options struct {
	Config    config.Config
	Store     *store.Store
	Hub       *hub.Hub
	Restarter Restarter // nil: restart answers how to restart by hand
	Logger    *slog.Logger
	// StartTime is when the hub started, for the uptime in the status.
	StartTime time.Time
	// Listeners are the hub's other addresses, shown in the status.
	Listeners []wire.Listener
	// Listener, when set, is an already-listening socket (systemd socket
	// activation); the socket file is then left alone.
	Listener net.Listener
	// Now is the clock; time.Now when nil.
	Now func() time.Time
	// BodyTimeout bounds how long a peer may take to send a request body
	// (default 10 s): bodies are read before a request waits for its turn,
	// so a peer that announces a body and sends nothing holds no slot.
	BodyTimeout time.Duration
	// Metrics records each request's endpoint, status and duration; nil
	// records nothing.
	Metrics *metrics.Metrics
}

// Server serves the admin API.
type Server struct {
	cfg       config.Config
	store     *store.Store
	hub       *hub.Hub
	access    *access.Access
	restarter Restarter
	log       *slog.Logger
	started   time.Time
	listeners []wire.Listener
	now       func() time.Time
	hubUID    int
	mux       *http.ServeMux
	procs     *procSampler
	shares    *shares.Manager
	gpu       *gpuProbe
	active    fresh[[]store.Server]
	counts    fresh[counts]
	// reads and writes bound the admin requests handled at once, so a
	// flood of console clients queues instead of taking the cores the
	// public side needs; reads (status, sessions) never wait behind writes,
	// and peers take turns.
	reads, writes *fairSlots
	bodyTimeout   time.Duration

	// backupSlot allows one backup (or prune) at a time: two backups would
	// each need the space of the database twice over and gain nothing.
	backupSlot chan struct{}

	restartMu sync.Mutex
	// lastRestart is the last restart that went ahead, read from the
	// audit log at the first request (restartSeeded).
	lastRestart   time.Time
	restartSeeded bool

	mu       sync.Mutex
	l        net.Listener
	sockInfo os.FileInfo // the socket file we created, to remove only ours
	srv      *http.Server
	closed   bool
}

// NewServer builds a Server; Listen or Serve opens the socket.
func NewServer(o Options) *Server {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.StartTime.IsZero() {
		o.StartTime = o.Now()
	}
	if o.BodyTimeout <= 0 {
		o.BodyTimeout = 10 * time.Second
	}
	s := &Server{
		cfg: o.Config, store: o.Store, hub: o.Hub, restarter: o.Restarter, access: access.New(o.Config, o.Store, o.Now),
		log: o.Logger.With("component", "admin"), started: o.StartTime,
		listeners: o.Listeners, now: o.Now, hubUID: os.Getuid(), l: o.Listener,
		procs:  newProcSampler(o.Now),
		shares: shares.New(shares.OptionsFromConfig(o.Config, o.Logger)),
		gpu:    newGPUProbe("nvidia-smi", o.Now),
		reads:  newFairSlots(readSlots), writes: newFairSlots(writeSlots),
		bodyTimeout: o.BodyTimeout, backupSlot: make(chan struct{}, 1),
	}
	s.mux = s.routes()
	s.srv = &http.Server{
		Handler: o.Metrics.AdminSocket(s),
		// Header and body limits make garbage, a 1 MB line or a client
		// that stops mid-request cost a bounded amount and fail cleanly.
		// No read or write timeout: net/http cancels the request context
		// when the read deadline passes, which would cut a backup that
		// streams its progress for minutes.
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ConnContext:       s.connContext,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	return s
}

// Serve answers requests until ctx ends or Close is called, opening the
// socket first unless Listen already did. It returns nil after a clean
// shutdown.
func (s *Server) Serve(ctx context.Context) error {
	if err := s.Listen(); err != nil {
		return err
	}
	s.mu.Lock()
	l, closed := s.l, s.closed
	s.mu.Unlock()
	if closed {
		return nil
	}
	stop := context.AfterFunc(ctx, func() { _ = s.Close() })
	defer stop()
	s.log.Info("admin socket ready", "socket", l.Addr().String())
	err := s.srv.Serve(l)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return fmt.Errorf("admin socket %s: %w", s.cfg.Admin.Socket, err)
}

// Listener is the listening admin socket, nil before Listen. A graceful
// restart passes it on to the next hub process (net.FileListener there,
// given back as Options.Listener); call KeepSocketFile before Close then.
func (s *Server) Listener() net.Listener {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.l
}

// KeepSocketFile makes Close leave the socket file in place: after a
// handover the next hub process serves the same socket.
func (s *Server) KeepSocketFile() {
	s.mu.Lock()
	s.sockInfo = nil
	s.mu.Unlock()
}

// shutdownGrace is how long Close lets answers in flight finish (a
// restart's own answer, a stop) before cutting connections; a backup
// still streaming is cancelled and cleans up after itself.
const shutdownGrace = 5 * time.Second

// Close stops the server and removes the socket file if it is still the
// one this server created.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	info := s.sockInfo
	s.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	err := s.srv.Shutdown(ctx)
	if err != nil {
		err = s.srv.Close()
	}
	// A listener that never served is not closed by Shutdown.
	s.mu.Lock()
	if s.l != nil {
		s.l.Close()
	}
	s.mu.Unlock()
	if info != nil {
		removeIfSame(s.cfg.Admin.Socket, info)
	}
	return err
}

// ServeHTTP refuses browser-shaped requests, sets the headers every answer
// carries and dispatches through the route table.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set(wire.VersionHeader, version.Version)
	// Nothing here is ever meant for a browser; if one does get an
	// answer, it must not render, frame or cache it.
	h.Set("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'")
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-store")
	if why := browserShaped(r); why != "" {
		who := identityOf(r.Context())
		s.log.Warn("refused a browser-shaped request", "uid", who.uid, "user", who.name, "path", r.URL.Path, "why", why)
		writeError(w, &httpError{status: http.StatusForbidden,
			msg: "refusing a request that looks like it comes from a web browser (" + why + "): the admin socket is only for hubtui and the hubd CLI"})
		return
	}
	// A refused peer is answered before anything else happens for it: its
	// body is not read, and it learns nothing of the routes, not even how
	// they clean a path.
	if who := identityOf(r.Context()); who.role == "" {
		s.log.Info("refused admin request", "uid", who.uid, "pid", who.pid, "user", who.name, "method", r.Method, "path", r.URL.Path, "why", who.why)
		writeError(w, &httpError{status: http.StatusForbidden, msg: refusal(s.cfg.Auth, who)})
		return
	}
	if !strings.HasPrefix(r.URL.Path, "/") {
		// "*" and other non-path targets, which the route table would
		// answer in plain text.
		writeError(w, errorf(http.StatusBadRequest, "request target %q is not a path", r.RequestURI))
		return
	}
	if err := s.readBody(w, r); err != nil {
		w.Header().Set("Connection", "close")
		writeError(w, err)
		return
	}
	s.mux.ServeHTTP(w, r)
}

// Waiting is how many requests wait for their turn, for the metrics.
func (s *Server) Waiting() int { return s.reads.queued() + s.writes.queued() }

// How many admin requests of each kind run at once; the rest wait their
// turn. About one core's worth leaves the other for browsers and servers.
const (
	readSlots  = 2
	writeSlots = 1
)

// readBody reads the whole request body, bounded in size and time, before
// the request queues for a slot: a slow or silent sender then only ever
// costs its own connection.
func (s *Server) readBody(w http.ResponseWriter, r *http.Request) *httpError {
	if r.Body == nil || r.Body == http.NoBody {
		return nil
	}
	rc := http.NewResponseController(w)
	_ = rc.SetReadDeadline(s.now().Add(s.bodyTimeout))
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, wire.MaxBodyBytes))
	_ = rc.SetReadDeadline(time.Time{})
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		return errorf(http.StatusRequestEntityTooLarge, "request body over %d bytes", wire.MaxBodyBytes)
	case errors.Is(err, os.ErrDeadlineExceeded):
		return errorf(http.StatusRequestTimeout, "the request body did not arrive within %s", s.bodyTimeout)
	case err != nil:
		return errorf(http.StatusBadRequest, "read the request body: %v", err)
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	return nil
}

// browserShaped says why r looks like a browser's request, or "". Browsers
// always send Origin on cross-origin POSTs and usually Referer, and the
// Host of whatever they think they talk to; our client sends neither
// Origin nor Referer and Host wire.Host.
func browserShaped(r *http.Request) string {
	switch {
	case r.Header.Get("Origin") != "":
		return "it has an Origin header"
	case r.Header.Get("Referer") != "":
		return "it has a Referer header"
	case r.Header.Get("Sec-Fetch-Mode") != "":
		return "it has a Sec-Fetch-Mode header"
	case r.Host != "" && r.Host != wire.Host:
		return fmt.Sprintf("its Host is %q, not %q", r.Host, wire.Host)
	}
	return ""
}
