package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/hubd/hubd/core/admin"
	"github.com/hubd/hubd/core/admin/wire"
	"github.com/hubd/hubd/core/auth"
	"github.com/hubd/hubd/core/config"
	"github.com/hubd/hubd/core/daemon"
	"github.com/hubd/hubd/core/hub"
	"github.com/hubd/hubd/core/proxy"
	"github.com/hubd/hubd/core/spawner"
	"github.com/hubd/hubd/core/store"
	"github.com/hubd/hubd/core/web"
	"github.com/hubd/hubd/internal/version"
)

func cmdServe(ctx context.Context, e *env, args []string) int {
	fs := e.flags("serve", "serve [--config PATH]", `
Run the hub: the public listener (login pages, the JupyterHub REST API and
the proxy to users' servers) and the loopback listener user servers call.
Servers that were running when the hub last stopped are re-attached before
the hub answers; stopping the hub leaves them running.`)
	if code, done := parse(fs, args); done {
		return code
	}
	cfg, err := e.loadConfig()
	if err != nil {
		return e.fail("%v", err)
	}
	log := slog.New(daemon.LogHandler(e.stderr, logLevel(cfg.Hub.LogLevel))).With("component", "serve")
	if err := serve(ctx, e, cfg, log); err != nil {
		log.Error("hub stopped", "err", err)
		return e.fail("%v", err)
	}
	return 0
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

func serve(ctx context.Context, e *env, cfg config.Config, log *slog.Logger) error {
	// The path we were started from: a restart execs it again, so an
	// upgraded binary installed there takes over.
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("find the hubd binary: %w", err)
	}
	root := slog.New(daemon.LogHandler(e.stderr, logLevel(cfg.Hub.LogLevel)))
	notify := daemon.NewNotifier(root.With("component", "systemd"))
	listeners, err := daemon.LoadListeners()
	if err != nil {
		return err
	}
	defer listeners.Close()
	st, lock, err := openState(ctx, e.stderr, cfg)
	if err != nil {
		return err
	}
	defer lock.Release()
	defer st.Close()
	secret, err := web.LoadCookieSecret(cfg.Data.CookieSecretFile)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(cfg.Data.LogDir, 0o750); err != nil {
		return fmt.Errorf("server log directory: %w (hubd setup creates it)", err)
	}
	spawners, err := newSpawners(cfg, root)
	if err != nil {
		return err
	}
	login, err := auth.New(cfg.Auth, root)
	if err != nil {
		return err
	}
	routes := proxy.NewTable()
	h := hub.New(hub.Options{Config: cfg, Store: st, Spawners: spawners, Routes: routes, Logger: root})
	w := web.New(web.Options{Config: cfg, Store: st, Hub: h, Auth: login, CookieSecret: secret, Logger: root})
	popts := proxy.OptionsFromConfig(&cfg)
	popts.Logger = root
	popts.NotFound = w.UserFallback()
	popts.ErrorHandler = func(rw http.ResponseWriter, r *http.Request, route proxy.Route, err error) {
		w.ProxyError(rw, r, route.User, err)
	}
	popts.OnActivity = func(route proxy.Route, t time.Time) { h.RecordProxyActivity(route.User, route.Server, t) }
	px := proxy.New(routes, popts)
	defer px.Close()

	// Listeners first (an inherited one keeps queueing connections while we
	// start), then routes back, and only then READY and serving.
	public, err := listeners.Listen("public", cfg.Hub.Listen)
	if err != nil {
		return err
	}
	internal, err := listeners.Listen("internal", cfg.Hub.InternalListen)
	if err != nil {
		public.Close()
		return err
	}
	res, err := h.Reattach(ctx)
	if err != nil {
		return err
	}
	restarts := make(restarter, 1)
	var adminLn net.Listener
	if listeners.Inherited("admin") {
		if adminLn, err = listeners.Listen("admin", cfg.Admin.Socket); err != nil {
			return err
		}
	}
	adm := admin.NewServer(admin.Options{Config: cfg, Store: st, Hub: h, Restarter: restarts, Logger: root, Listener: adminLn,
		Listeners: []wire.Listener{{Name: "public", Addr: public.Addr().String()}, {Name: "internal", Addr: internal.Addr().String()}}})
	if err := adm.Listen(); err != nil {
		return err
	}
	fresh := daemon.NewFreshConns()
	servers := map[string]*http.Server{"public": newHTTPServer(cfg, w.Handler(px), root), "internal": newHTTPServer(cfg, w.Handler(nil), root)}
	for _, srv := range servers {
		srv.ConnState = fresh.Hook
	}
	errc := make(chan error, 2)
	for name, l := range map[string]net.Listener{"public": public, "internal": internal} {
		go func() { errc <- servers[name].Serve(l) }()
	}
	log.Info("hub ready", "version", version.Version, "public", public.Addr().String(), "public_from", listeners.Sources["public"],
		"internal", internal.Addr().String(), "spawner", cfg.Spawner.Kind, "db", cfg.Data.DB, "reattached", res.Restored)
	notify.Ready(statusLine(ctx, st))

	bgCtx, stopBG := context.WithCancel(context.WithoutCancel(ctx))
	var wg sync.WaitGroup
	wg.Add(5)
	go func() {
		defer wg.Done()
		if err := adm.Serve(bgCtx); err != nil {
			log.Error("admin socket stopped", "err", err)
		}
	}()
	go func() { defer wg.Done(); h.RunPoller(bgCtx) }()
	go func() { defer wg.Done(); h.RunCuller(bgCtx) }()
	go func() {
		defer wg.Done()
		notify.Watchdog(bgCtx, func(c context.Context) error { return st.DB().PingContext(c) })
	}()
	go func() { defer wg.Done(); reportStatus(bgCtx, notify, st) }()

	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	var restartBy string
	select {
	case <-ctx.Done():
		log.Info("stopping the hub; user servers keep running")
		notify.Stopping()
	case err = <-errc:
		notify.Stopping()
	case <-hup:
		restartBy = "SIGHUP"
	case req := <-restarts:
		restartBy = req.by
	}
	var handover *daemon.Handover
	if restartBy != "" {
		log.Info("restarting the hub in place; user servers keep running", "requested_by", restartBy, "binary", exe)
		notify.Reloading()
		handover, err = daemon.PrepareHandover(map[string]net.Listener{"public": public, "internal": internal, "admin": adm.Listener()})
		if err != nil {
			log.Error("restart: cannot hand the listeners over; stopping instead", "err", err)
			notify.Stopping()
		} else {
			adm.KeepSocketFile()
			// Stop accepting (the duplicates keep the ports queueing for the
			// next process), then let connections already accepted send their
			// first request before Shutdown, which would drop it unanswered.
			public.Close()
			internal.Close()
			// Serve returns only after registering every connection it
			// accepted, so wait for both before counting fresh ones.
			for range servers {
				select {
				case <-errc:
				case <-time.After(2 * time.Second):
				}
			}
			fresh.Wait(ctx, 2*time.Second)
		}
	}
	_ = adm.Close()
	stopBG()
	shutCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, s := range servers {
		_ = s.Shutdown(shutCtx)
	}
	wg.Wait()
	h.Wait()
	if handover != nil {
		// The state is closed and the lock released right before the exec;
		// the new process takes both again.
		st.Close()
		lock.Release()
		return handover.Exec(exe, os.Args)
	}
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}

func logLevel(name string) slog.Level {
	var l slog.Level
	_ = l.UnmarshalText([]byte(name))
	return l
}

// statusLine is what `systemctl status hubd` shows.
func statusLine(ctx context.Context, st *store.Store) string {
	users, _ := st.CountUsers(ctx)
	counts, _ := st.CountServers(ctx)
	return fmt.Sprintf("%d users, %d servers running, %d starting", users, counts[store.StateRunning], counts[store.StateStarting])
}

func reportStatus(ctx context.Context, n *daemon.Notifier, st *store.Store) {
	t := time.NewTicker(30 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			n.Status(statusLine(ctx, st))
		}
	}
}

// newHTTPServer bounds headers and their arrival time, but sets no
// read/write timeout: kernel websockets and event streams live for hours.
func newHTTPServer(cfg config.Config, h http.Handler, log *slog.Logger) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: cfg.Proxy.ReadHeaderTimeout.D(),
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    cfg.Proxy.MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(log.With("component", "http").Handler(), slog.LevelWarn),
	}
}

// newSpawners builds the spawner that starts new servers, plus every kind
// that may still own servers recorded in the database.
func newSpawners(cfg config.Config, log *slog.Logger) (map[string]spawner.Spawner, error) {
	grace := cfg.Spawner.StartGrace.D()
	out := map[string]spawner.Spawner{}
	sudo := func() spawner.Spawner {
		return spawner.NewSudo(spawner.SudoOptions{SudoPath: cfg.Spawner.SudoPath,
			HelperPath: cfg.Spawner.HelperPath, Group: cfg.Auth.AllowedGroup, StartGrace: grace, Logger: log})
	}
	switch cfg.Spawner.Kind {
	case "sudo":
		out[spawner.KindSudo] = sudo()
	case "local":
		out[spawner.KindLocal] = spawner.NewLocal(spawner.LocalOptions{StartGrace: grace, Logger: log})
	case "systemd":
		sd := cfg.Spawner.Systemd
		s, err := spawner.NewSystemd(spawner.SystemdOptions{
			UnitPrefix: sd.UnitPrefix, Slice: sd.Slice, MemoryMax: int64(sd.MemoryMax),
			CPUQuotaPercent: sd.CPUQuotaPercent, TasksMax: sd.TasksMax,
			PrivateTmp: sd.PrivateTmp, NoNewPrivileges: sd.NoNewPrivileges,
			ReadOnlyPaths: sd.ReadOnlyPaths, ReadWritePaths: sd.ReadWritePaths, ExtraProperties: sd.ExtraProperties,
			RuntimeDir: cfg.Data.RuntimeDir, StopTimeout: cfg.Spawner.StopTimeout.D(), StartGrace: grace, Logger: log,
		})
		if err != nil {
			return nil, err
		}
		out[spawner.KindSystemd] = s
		// Servers started through sudo before a switch to systemd stay
		// stoppable; building the sudo spawner costs nothing.
		out[spawner.KindSudo] = sudo()
	default:
		return nil, fmt.Errorf("spawner.kind %q is not available in this build", cfg.Spawner.Kind)
	}
	return out, nil
}
