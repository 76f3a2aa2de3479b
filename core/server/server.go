// Package server is the running hub: it wires the state, the login
// methods, the spawners, the hub, the web layer, the proxy and the admin
// socket together, serves them, restarts in place and shuts down in order.
// `hubd serve` runs it, and the tests start the hub through it too, so a
// test runs exactly what production runs.
package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/hubd/hubd/core/admin"
	"github.com/hubd/hubd/core/admin/wire"
	"github.com/hubd/hubd/core/auth"
	"github.com/hubd/hubd/core/config"
	"github.com/hubd/hubd/core/daemon"
	"github.com/hubd/hubd/core/hub"
	"github.com/hubd/hubd/core/identity"
	"github.com/hubd/hubd/core/metrics"
	"github.com/hubd/hubd/core/proxy"
	"github.com/hubd/hubd/core/services"
	"github.com/hubd/hubd/core/spawner"
	"github.com/hubd/hubd/core/sso"
	"github.com/hubd/hubd/core/store"
	"github.com/hubd/hubd/core/web"
	"github.com/hubd/hubd/internal/fsutil"
	"github.com/hubd/hubd/internal/tick"
	"github.com/hubd/hubd/internal/version"
)

// Options build a Server. Zero values take the production defaults; the
// fields marked as seams let tests replace what needs privileges.
type Options struct {
	Config config.Config
	// Logger is the root logger (each part adds its component); nil
	// discards.
	Logger *slog.Logger
	// Out receives messages meant for the person starting the hub, such as
	// an automatic schema upgrade's progress; nil discards.
	Out io.Writer
	// Listeners are sockets handed over by the previous hub process or by
	// systemd; nil opens new ones.
	Listeners *daemon.Listeners
	// Executable and Args are what a restart re-executes; by default the
	// path this process was started from (so an upgraded binary takes
	// over) and os.Args.
	Executable string
	Args       []string

	// Password checks the login form's passwords (seam); nil is PAM per
	// Config.Auth.
	Password auth.Password
	// Accounts is the Linux user database the identity step reads (seam);
	// nil is the system's.
	Accounts identity.Accounts
	// Spawners by kind (seam); nil builds them from Config.Spawner.
	Spawners map[string]spawner.Spawner
	// Now is the clock (seam); nil is time.Now.
	Now func() time.Time
	// AdminBodyTimeout bounds how long an admin-socket peer may take to
	// send a request body; zero is the admin server's default.
	AdminBodyTimeout time.Duration
}

// Listener names, as handed over across restarts and named in socket
// activation (FileDescriptorName=).
const (
	Public   = "public"
	Internal = "internal"
	Admin    = "admin"
	// Containers is the hub's API where docker servers reach it: the
	// internal handler on the containers' network gateway.
	Containers = "containers"
)

// Server is one running hub.
type Server struct {
	cfg       config.Config
	root      *slog.Logger
	log       *slog.Logger
	notify    *daemon.Notifier
	listeners *daemon.Listeners
	exe       string
	args      []string
	started   time.Time
	now       func() time.Time
	adminBody time.Duration

	store   *store.Store
	lock    *fsutil.Lock
	hub     *hub.Hub
	svcs    *services.Manager
	web     *web.Web
	proxy   *proxy.Proxy
	routes  *proxy.Table
	admin   *admin.Server
	metrics *metrics.Metrics
	login   auth.Password

	tls      *tls.Config // nil: the public listener speaks plain HTTP
	restarts restarter
	fresh    *daemon.FreshConns
	// lnMu guards ln and serving against the containers' listener, which
	// the docker spawner may open after Start.
	lnMu     sync.Mutex
	ln       map[string]net.Listener
	serving  bool
	docker   *spawner.Docker
	http     map[string]*http.Server
	errc     chan error
	stopBG   context.CancelFunc
	bg       sync.WaitGroup
	stopOnce sync.Once
	stopErr  error
	// stopping says whether Shutdown tells systemd the service is stopping
	// (not when it is a restart in place).
	stopping bool
}

// New opens the state (refusing a lost or mismatched database) and builds
// every part of the hub. Nothing listens yet: see Start. Close releases
// what New took when Start is never called.
func New(ctx context.Context, o Options) (*Server, error) {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Out == nil {
		o.Out = io.Discard
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Executable == "" {
		exe, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("find the hubd binary: %w", err)
		}
		o.Executable = exe
	}
	if o.Args == nil {
		o.Args = os.Args
	}
	cfg := o.Config
	s := &Server{
		cfg: cfg, root: o.Logger, log: o.Logger.With("component", "serve"), listeners: o.Listeners,
		notify: daemon.NewNotifier(o.Logger.With("component", "systemd")),
		exe:    o.Executable, args: o.Args, started: o.Now(), now: o.Now, adminBody: o.AdminBodyTimeout,
		restarts: make(restarter, 1), fresh: daemon.NewFreshConns(), stopping: true,
		ln: map[string]net.Listener{}, http: map[string]*http.Server{},
		metrics: metrics.New(o.Logger),
	}
	warnLooseConfig(cfg.Source, s.log)
	warnSlurmReach(cfg, s.log)
	if cfg.Spawner.StartGrace != nil {
		s.log.Warn("spawner.start_grace is no longer used: a server's early exit is noticed the moment it happens; remove the setting", "file", cfg.Source)
	}
	var err error
	if s.listeners == nil {
		if s.listeners, err = daemon.LoadListeners(); err != nil {
			return nil, err
		}
	}
	if s.store, s.lock, err = OpenState(ctx, cfg, o.Out, o.Now); err != nil {
		s.listeners.Close()
		return nil, err
	}
	if err := s.build(o); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

func (s *Server) build(o Options) error {
	cfg := s.cfg
	secret, err := web.LoadCookieSecret(cfg.Data.CookieSecretFile)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(cfg.Data.LogDir, 0o750); err != nil {
		return fmt.Errorf("server log directory: %w (hubd setup creates it)", err)
	}
	if cfg.Hub.TLS.Enabled() {
		if s.tls, err = loadTLS(cfg.Hub.TLS, o.Now(), s.log); err != nil {
			return err
		}
	}
	spawners := o.Spawners
	if spawners == nil {
		if spawners, err = NewSpawners(cfg, o.Logger); err != nil {
			return err
		}
	}
	login := o.Password
	if login == nil {
		if login, err = auth.New(cfg.Auth, o.Logger, s.metrics); err != nil {
			return err
		}
	}
	accounts := o.Accounts
	if accounts == nil {
		accounts = identity.System{Creator: creator(cfg)}
	}
	admit := identity.FromConfig(cfg, s.store, accounts, o.Logger)
	var single *sso.Client
	if cfg.Auth.HasMethod(config.MethodOIDC) {
		if single, err = sso.New(sso.Options{Config: cfg.Auth.OIDC, Logger: o.Logger, Now: o.Now}); err != nil {
			return err
		}
	}
	s.login = login
	pool, err := hub.GPUPool(context.Background(), cfg)
	if err != nil {
		s.log.Warn("no GPUs to hand out", "err", err)
	}
	if hub.UsesGPUPool(cfg) {
		s.log.Info("GPU pool", "gpus", len(pool))
	}
	s.routes = proxy.NewTable()
	s.hub = hub.New(hub.Options{Config: cfg, Store: s.store, Spawners: spawners, Routes: s.routes, GPUPool: pool,
		Logger: o.Logger, Now: o.Now, Metrics: s.metrics})
	s.svcs = services.New(services.Options{Config: cfg, Store: s.store, Routes: s.routes, Logger: o.Logger})
	s.web = web.New(web.Options{Config: cfg, Store: s.store, Hub: s.hub, Password: login, Identity: admit, SSO: single, CookieSecret: secret,
		Services: s.svcs, Logger: o.Logger, Now: o.Now, Metrics: s.metrics})
	popts := proxy.OptionsFromConfig(&cfg)
	popts.Logger = o.Logger
	popts.NotFound = s.web.UserFallback()
	popts.ErrorHandler = func(rw http.ResponseWriter, r *http.Request, route proxy.Route, err error) {
		s.metrics.ProxyError(proxy.ErrorStatus(err))
		s.web.ProxyError(rw, r, route.User, err)
	}
	popts.OnActivity = func(route proxy.Route, t time.Time) { s.hub.RecordProxyActivity(route.User, route.Server, t) }
	s.proxy = proxy.New(s.routes, popts)
	s.http[Public] = s.newHTTPServer(s.web.Handler(s.proxy))
	s.http[Public].TLSConfig = s.tls
	s.http[Internal] = s.newHTTPServer(s.web.Handler(nil))
	if s.tls != nil && cfg.Hub.TLS.RedirectListen != "" {
		// Its handler needs the HTTPS port, known once Start has listened.
		s.http[Redirect] = s.newHTTPServer(nil)
	}
	if d, ok := spawners[spawner.KindDocker].(*spawner.Docker); ok {
		s.docker = d
		s.http[Containers] = s.newHTTPServer(s.web.Handler(nil))
		d.OnHubAddr(s.listenForContainers)
	}
	return nil
}

// listenForContainers opens (once) the listener docker servers reach the
// hub's API at; before Start it only opens it, Start serves it.
func (s *Server) listenForContainers(addr string) error {
	s.lnMu.Lock()
	defer s.lnMu.Unlock()
	if s.ln[Containers] != nil {
		return nil
	}
	ln, err := s.listeners.Listen(Containers, addr)
	if err != nil {
		return fmt.Errorf("listen for containers at %s (spawner.docker.hub_ip): %w", addr, err)
	}
	s.ln[Containers] = ln
	if s.serving {
		srv := s.http[Containers]
		srv.ConnState = s.fresh.Hook
		go func() { s.errc <- srv.Serve(ln) }()
	}
	s.log.Info("listening for containers", "addr", ln.Addr().String())
	return nil
}

// creator makes the Linux accounts of account_mode = "create": useradd
// itself when the hub runs as root (the systemd spawner), else the
// account helper through its sudoers rule. nil when nothing is created.
func creator(cfg config.Config) func(ctx context.Context, name, group string) error {
	if !cfg.Auth.CreatesAccounts() {
		return nil
	}
	if os.Geteuid() == 0 {
		return identity.UserAdd
	}
	path := cfg.Source
	if path == "" {
		path = config.DefaultPath
	}
	return identity.SudoCreator(cfg.Spawner.SudoPath, cfg.Spawner.HelperPath, path)
}

// Start listens (on handed-over sockets where there are any), re-attaches
// to the servers recorded as running, starts serving and the background
// work, and only then tells systemd the hub is ready.
func (s *Server) Start(ctx context.Context) error {
	addrs := []struct{ name, addr string }{{Public, s.cfg.Hub.Listen}, {Internal, s.cfg.Hub.InternalListen}}
	if s.http[Redirect] != nil {
		addrs = append(addrs, struct{ name, addr string }{Redirect, s.cfg.Hub.TLS.RedirectListen})
	}
	for _, l := range addrs {
		ln, err := s.listeners.Listen(l.name, l.addr)
		if err != nil {
			return err
		}
		s.ln[l.name] = ln
	}
	if r := s.http[Redirect]; r != nil {
		r.Handler = redirectHandler(s.Addr(Public))
	}
	if s.docker != nil {
		// Before the re-attach: running containers report to the hub.
		// An engine that is down now is asked again at the next start.
		if _, err := s.docker.HubAddr(ctx); err != nil {
			s.log.Error("docker servers cannot reach the hub until the engine answers", "err", err)
		}
	}
	res, err := s.hub.Reattach(ctx)
	if err != nil {
		return err
	}
	if err := s.svcs.Sync(ctx); err != nil {
		return err
	}
	var adminLn net.Listener
	if s.listeners.Inherited(Admin) {
		if adminLn, err = s.listeners.Listen(Admin, s.cfg.Admin.Socket); err != nil {
			return err
		}
	}
	s.admin = admin.NewServer(admin.Options{Config: s.cfg, Store: s.store, Hub: s.hub, Restarter: s.restarts,
		Logger: s.root, StartTime: s.started, Listener: adminLn, Now: s.now, BodyTimeout: s.adminBody, Metrics: s.metrics,
		Listeners: []wire.Listener{{Name: Public, Addr: s.Addr(Public)}, {Name: Internal, Addr: s.Addr(Internal)}}})
	if err := s.admin.Listen(); err != nil {
		return err
	}
	s.watchMetrics()
	s.errc = make(chan error, len(s.http))
	s.lnMu.Lock()
	for name, srv := range s.http {
		ln := s.ln[name]
		if ln == nil {
			continue // the containers' listener, once the engine answers
		}
		srv.ConnState = s.fresh.Hook
		if srv.TLSConfig != nil {
			// ServeTLS adds HTTP/2; the certificate is in TLSConfig.
			go func() { s.errc <- srv.ServeTLS(ln, "", "") }()
			continue
		}
		go func() { s.errc <- srv.Serve(ln) }()
	}
	s.serving = true
	s.lnMu.Unlock()
	bgCtx, stop := context.WithCancel(context.WithoutCancel(ctx))
	s.stopBG = stop
	s.goBG(func() {
		if err := s.admin.Serve(bgCtx); err != nil {
			s.log.Error("admin socket stopped", "err", err)
		}
	})
	s.goBG(func() { s.hub.RunPoller(bgCtx) })
	s.goBG(func() { s.hub.RunCuller(bgCtx) })
	s.goBG(func() { s.svcs.Run(bgCtx) })
	s.goBG(func() { s.notify.Watchdog(bgCtx, s.store.Ping) })
	s.goBG(func() { s.reportStatus(bgCtx) })
	s.log.Info("hub ready", "version", version.Version, "public", s.URL(), "public_from", s.listeners.Sources[Public],
		"internal", s.Addr(Internal), "spawner", s.cfg.Spawner.Kind, "db", s.cfg.Data.DB, "reattached", res.Restored)
	s.metrics.Started(time.Since(s.started))
	s.notify.Ready(s.statusLine(ctx))
	return nil
}

// watchMetrics registers what the metrics read at each scrape: the totals
// from the database, the PAM pool and the admin socket's queue.
func (s *Server) watchMetrics() {
	src := metrics.Sources{
		Counts:       s.web.Totals,
		AdminWaiting: s.admin.Waiting,
	}
	if p, ok := s.login.(interface{ PoolStats() metrics.PoolStats }); ok {
		src.PAM = p.PoolStats
	}
	s.metrics.Watch(src)
}

func (s *Server) goBG(f func()) {
	s.bg.Add(1)
	go func() { defer s.bg.Done(); f() }()
}

// Addr is the address a listener (Public, Internal, Containers) is bound
// to, "" before Start.
func (s *Server) Addr(name string) string {
	s.lnMu.Lock()
	defer s.lnMu.Unlock()
	if ln := s.ln[name]; ln != nil {
		return ln.Addr().String()
	}
	return ""
}

// URL is the public listener's base URL, e.g. https://127.0.0.1:8000/.
func (s *Server) URL() string {
	scheme := "http"
	if s.tls != nil {
		scheme = "https"
	}
	return scheme + "://" + s.Addr(Public) + s.cfg.Hub.BaseURL
}

// Store, Hub and Handler give tests the parts they inspect.
func (s *Server) Store() *store.Store { return s.store }

// Hub is the server manager.
func (s *Server) Hub() *hub.Hub { return s.hub }

// Routes is the proxy's route table.
func (s *Server) Routes() *proxy.Table { return s.routes }

// Admin is the admin socket's server; nil before Start.
func (s *Server) Admin() *admin.Server { return s.admin }

// Handler is the public listener's handler, for handler-level tests.
func (s *Server) Handler() http.Handler { return s.http[Public].Handler }

// Run starts the hub and serves until ctx ends (shutdown), a listener
// fails, or a restart is asked for by SIGHUP or the admin socket; a
// restart re-executes the binary with the listeners handed over and does
// not return unless that fails.
func (s *Server) Run(ctx context.Context) error {
	if err := s.Start(ctx); err != nil {
		s.Close()
		return err
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	var err error
	by := ""
	select {
	case <-ctx.Done():
		s.log.Info("stopping the hub; user servers keep running")
	case err = <-s.errc:
	case <-hup:
		by = "SIGHUP"
	case req := <-s.restarts:
		by = req.by
	}
	if by != "" {
		return s.restart(ctx, by)
	}
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return errors.Join(err, s.Shutdown(context.Background()))
}

// restart hands the listeners to a re-exec of the binary. Every step
// before the exec is the ordinary shutdown, minus closing the sockets.
func (s *Server) restart(ctx context.Context, by string) error {
	s.log.Info("restarting the hub in place; user servers keep running", "requested_by", by, "binary", s.exe)
	s.notify.Reloading()
	hand := map[string]net.Listener{Public: s.ln[Public], Internal: s.ln[Internal], Admin: s.admin.Listener()}
	s.lnMu.Lock()
	for _, name := range []string{Redirect, Containers} {
		if ln := s.ln[name]; ln != nil {
			hand[name] = ln
		}
	}
	s.lnMu.Unlock()
	handover, err := daemon.PrepareHandover(hand)
	if err != nil {
		s.log.Error("restart: cannot hand the listeners over; stopping instead", "err", err)
		return errors.Join(err, s.Shutdown(context.Background()))
	}
	s.stopping = false
	s.admin.KeepSocketFile()
	// Stop accepting (the duplicates keep the ports queueing for the next
	// process), then let connections already accepted send their first
	// request before Shutdown, which would drop it unanswered. Serve
	// returns only after registering every connection it accepted, so
	// wait for both before counting fresh ones.
	s.lnMu.Lock()
	open := len(s.ln)
	for _, ln := range s.ln {
		ln.Close()
	}
	s.lnMu.Unlock()
	for range open {
		select {
		case <-s.errc:
		case <-time.After(2 * time.Second):
		}
	}
	s.fresh.Wait(ctx, 2*time.Second)
	if err := s.Shutdown(context.Background()); err != nil {
		s.log.Warn("restart: shutdown", "err", err)
	}
	// The state is closed and the lock released right before the exec; the
	// new process takes both again.
	return handover.Exec(s.exe, s.args)
}

// shutdownGrace bounds how long requests in flight may finish.
const shutdownGrace = 30 * time.Second

// Shutdown stops serving (answering requests in flight, up to a grace
// period), stops the background work, waits for starts under way, and
// closes the state. User servers keep running. It is safe to call twice.
func (s *Server) Shutdown(ctx context.Context) error {
	s.stopOnce.Do(func() {
		if s.stopping {
			s.notify.Stopping()
		}
		if s.admin != nil {
			_ = s.admin.Close()
		}
		if s.stopBG != nil {
			s.stopBG()
		}
		ctx, cancel := context.WithTimeout(ctx, shutdownGrace)
		defer cancel()
		for _, srv := range s.http {
			_ = srv.Shutdown(ctx)
		}
		s.bg.Wait()
		s.hub.Wait()
		s.web.Wait()
		s.stopErr = s.Close()
	})
	return s.stopErr
}

// Close releases the listeners, the proxy's connections, the state and
// its lock. Shutdown calls it; call it directly only when Start was never
// called.
func (s *Server) Close() error {
	var err error
	s.lnMu.Lock()
	for _, ln := range s.ln {
		ln.Close()
	}
	s.lnMu.Unlock()
	if s.proxy != nil {
		s.proxy.Close()
	}
	if s.listeners != nil {
		s.listeners.Close()
	}
	if s.store != nil {
		err = s.store.Close()
		s.store = nil
	}
	if s.lock != nil {
		s.lock.Release()
		s.lock = nil
	}
	return err
}

// restartRequest asks the serve loop to restart in place.
type restartRequest struct{ by string }

// restarter is what the admin socket calls for `hubd restart`.
type restarter chan restartRequest

// Restart asks the running serve loop to re-exec; it returns once the
// request is queued (the caller's connection ends with the old process).
func (r restarter) Restart(_ context.Context, by string) error {
	select {
	case r <- restartRequest{by: by}:
		return nil
	default:
		return errors.New("a restart is already under way")
	}
}

// statusLine is what `systemctl status hubd` shows.
func (s *Server) statusLine(ctx context.Context) string {
	users, _ := s.store.CountUsers(ctx)
	counts, _ := s.store.CountServers(ctx)
	return fmt.Sprintf("%d users, %d servers running, %d starting", users, counts[store.StateRunning], counts[store.StateStarting])
}

func (s *Server) reportStatus(ctx context.Context) {
	tick.Every(ctx, 30*time.Second, func() { s.notify.Status(s.statusLine(ctx)) })
}

// newHTTPServer bounds headers and their arrival time, but sets no
// read/write timeout: kernel websockets and event streams live for hours.
func (s *Server) newHTTPServer(h http.Handler) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: s.cfg.Proxy.ReadHeaderTimeout.D(),
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    s.cfg.Proxy.MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(s.log.With("component", "http").Handler(), slog.LevelWarn),
	}
}

// warnLooseConfig warns when others may change the configuration file:
// whoever writes it decides what the hub runs and who logs in. Being
// readable by all is fine (members' `hubd restart` reads it; secrets live
// in 0600 files it names, never in it).
func warnLooseConfig(path string, log *slog.Logger) {
	if path == "" {
		return
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm()&0o022 == 0 {
		return
	}
	log.Warn("the configuration file is writable by others than its owner: whoever can write it controls the hub",
		"file", path, "mode", fmt.Sprintf("%04o", fi.Mode().Perm()), "fix", "chmod go-w "+path)
}

// dynamicWritePaths are the shared paths members write through the members
// group, which dynamic users' servers must be able to write as well.
func dynamicWritePaths(cfg config.Config) []string {
	var out []string
	if cfg.SharedEnv.Enabled {
		out = append(out, cfg.SharedEnv.Path)
	}
	return out
}

// NewSpawners builds the spawners that start new servers (spawner.kind
// and the kinds profiles name), plus every kind that may still own
// servers recorded in the database.
func NewSpawners(cfg config.Config, log *slog.Logger) (map[string]spawner.Spawner, error) {
	sudo := spawner.NewSudo(spawner.SudoOptions{SudoPath: cfg.Spawner.SudoPath,
		HelperPath: cfg.Spawner.HelperPath, Group: cfg.Auth.AllowedGroup, Logger: log})
	// Servers started through sudo before a switch to another kind stay
	// stoppable; building the sudo spawner costs nothing.
	out := map[string]spawner.Spawner{spawner.KindSudo: sudo}
	for _, kind := range cfg.Spawner.KindsInUse() {
		switch kind {
		case spawner.KindSudo:
		case spawner.KindLocal:
			out[kind] = spawner.NewLocal(spawner.LocalOptions{Logger: log})
		case spawner.KindSystemd:
			sd := cfg.Spawner.Systemd
			s, err := spawner.NewSystemd(spawner.SystemdOptions{
				UnitPrefix: sd.UnitPrefix, Slice: sd.Slice, MemoryMax: int64(sd.MemoryMax),
				CPUQuotaPercent: sd.CPUQuotaPercent, TasksMax: sd.TasksMax,
				PrivateTmp: sd.PrivateTmp, NoNewPrivileges: sd.NoNewPrivileges,
				ReadOnlyPaths: sd.ReadOnlyPaths, ReadWritePaths: sd.ReadWritePaths, ExtraProperties: sd.ExtraProperties,
				MembersGroup: cfg.Auth.AllowedGroup, DynamicWritePaths: dynamicWritePaths(cfg),
				RuntimeDir: cfg.Data.RuntimeDir, StopTimeout: cfg.Spawner.StopTimeout.D(), CreateHome: cfg.Spawner.CreateHome, Logger: log,
			})
			if err != nil {
				return nil, err
			}
			out[kind] = s
		case spawner.KindDocker:
			d, err := NewDocker(cfg, log)
			if err != nil {
				return nil, err
			}
			out[kind] = d
		case spawner.KindSlurm:
			s, err := newSlurm(cfg, sudo, log)
			if err != nil {
				return nil, err
			}
			out[kind] = s
		default:
			return nil, fmt.Errorf("spawner kind %q is not available in this build", kind)
		}
	}
	return out, nil
}

// NewDocker builds the docker spawner from spawner.docker; containers
// reach the hub on the internal listener's port.
func NewDocker(cfg config.Config, log *slog.Logger) (*spawner.Docker, error) {
	d := cfg.Spawner.Docker
	_, port, _ := net.SplitHostPort(cfg.Hub.InternalListen)
	hubPort, _ := strconv.Atoi(port)
	env := ""
	if cfg.SharedEnv.Enabled {
		env = cfg.SharedEnv.Path
	}
	return spawner.NewDocker(spawner.DockerOptions{
		Host: d.Host, Image: d.Image, Network: d.Network, HubIP: d.HubIP, HubPort: hubPort,
		NamePrefix: d.NamePrefix, MemoryMax: int64(d.MemoryMax), CPUQuotaPercent: d.CPUQuotaPercent,
		PidsMax: d.PidsMax, ReadOnlyRoot: d.ReadOnlyRoot, Mounts: d.Mounts, SharedEnv: env,
		StopTimeout: cfg.Spawner.StopTimeout.D(), Logger: log,
	})
}

// newSlurm builds the Slurm spawner from spawner.slurm.
func newSlurm(cfg config.Config, sudo *spawner.Sudo, log *slog.Logger) (*spawner.Slurm, error) {
	sl := cfg.Spawner.Slurm
	var tmpl string
	if sl.ScriptTemplate != "" {
		b, err := os.ReadFile(sl.ScriptTemplate)
		if err != nil {
			return nil, fmt.Errorf("spawner.slurm.script_template: %w", err)
		}
		tmpl = string(b)
	}
	return spawner.NewSlurm(spawner.SlurmOptions{
		Submit: sl.Submit, Sbatch: sl.Sbatch, Squeue: sl.Squeue, Scancel: sl.Scancel, Scontrol: sl.Scontrol,
		Python: sl.Python, JobNamePrefix: sl.JobNamePrefix, Extra: sl.Extra, Template: tmpl, Sudo: sudo,
		StopTimeout: cfg.Spawner.StopTimeout.D(), Logger: log,
	})
}

// warnSlurmReach says what the internal listener means for Slurm jobs: on
// loopback only nodes on this machine can report to it; beyond loopback,
// the hub's API is open to the network it listens on.
func warnSlurmReach(cfg config.Config, log *slog.Logger) {
	if !slices.Contains(cfg.Spawner.KindsInUse(), spawner.KindSlurm) || cfg.Spawner.Slurm.HubAPIURL != "" {
		return
	}
	host, _, _ := net.SplitHostPort(cfg.Hub.InternalListen)
	if ip, err := netip.ParseAddr(host); host == "localhost" || (err == nil && ip.IsLoopback()) {
		log.Info("Slurm jobs report to the internal API on loopback: only nodes on this machine can reach it; "+
			"for a cluster, set hub.internal_listen to the hub's cluster address (or spawner.slurm.hub_api_url)", "internal_listen", cfg.Hub.InternalListen)
		return
	}
	log.Warn("hub.internal_listen is not on loopback, so Slurm jobs can report their address; the hub's API and pages "+
		"answer there too: listen on the cluster network only and keep it firewalled from elsewhere", "internal_listen", cfg.Hub.InternalListen)
}
