package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/hubd/hubd/core/auth"
	"github.com/hubd/hubd/core/config"
	"github.com/hubd/hubd/core/hub"
	"github.com/hubd/hubd/core/proxy"
	"github.com/hubd/hubd/core/spawner"
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
		return e.fail("invalid configuration:\n%v", err)
	}
	log := e.logger(cfg.Hub.LogLevel).With("component", "serve")
	if err := serve(ctx, e, cfg, log); err != nil {
		log.Error("hub stopped", "err", err)
		return e.fail("%v", err)
	}
	return 0
}

func serve(ctx context.Context, e *env, cfg config.Config, log *slog.Logger) error {
	root := e.logger(cfg.Hub.LogLevel)
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

	// Routes come back before the hub answers anyone.
	if _, err := h.Reattach(ctx); err != nil {
		return err
	}
	handler := w.Handler(px)
	public, err := listen(cfg.Hub.Listen)
	if err != nil {
		return err
	}
	internal, err := listen(cfg.Hub.InternalListen)
	if err != nil {
		public.Close()
		return err
	}
	servers := []*http.Server{newHTTPServer(cfg, handler, root), newHTTPServer(cfg, w.Handler(nil), root)}
	log.Info("hub ready", "version", version.Version, "public", public.Addr().String(), "internal", internal.Addr().String(),
		"spawner", cfg.Spawner.Kind, "db", cfg.Data.DB)

	pollCtx, stopPoll := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); h.RunPoller(pollCtx) }()
	go func() { defer wg.Done(); h.RunCuller(pollCtx) }()
	errc := make(chan error, 2)
	for i, l := range []net.Listener{public, internal} {
		go func() { errc <- servers[i].Serve(l) }()
	}
	select {
	case <-ctx.Done():
		log.Info("stopping the hub; user servers keep running")
	case err = <-errc:
	}
	stopPoll()
	shutCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, s := range servers {
		_ = s.Shutdown(shutCtx)
	}
	wg.Wait()
	h.Wait()
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}

func listen(addr string) (net.Listener, error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w (is another hub or program using the port? `ss -ltnp` shows who)", addr, err)
	}
	return l, nil
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
	out := map[string]spawner.Spawner{}
	switch cfg.Spawner.Kind {
	case "sudo":
		out[spawner.KindSudo] = spawner.NewSudo(spawner.SudoOptions{SudoPath: cfg.Spawner.SudoPath,
			HelperPath: cfg.Spawner.HelperPath, Group: cfg.Auth.AllowedGroup, Logger: log})
	case "local":
		out[spawner.KindLocal] = spawner.NewLocal(spawner.LocalOptions{Logger: log})
	default:
		return nil, fmt.Errorf("spawner.kind %q is not available in this build", cfg.Spawner.Kind)
	}
	return out, nil
}
