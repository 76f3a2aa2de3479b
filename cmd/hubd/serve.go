package main

import (
	"context"
	"log/slog"

	"github.com/hubd/hubd/core/daemon"
	"github.com/hubd/hubd/core/server"
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
	root := slog.New(daemon.LogHandler(e.stderr, logLevel(cfg.Hub.LogLevel)))
	log := root.With("component", "serve")
	srv, err := server.New(ctx, server.Options{Config: cfg, Logger: root, Out: e.stderr})
	if err == nil {
		err = srv.Run(ctx)
	}
	if err != nil {
		log.Error("hub stopped", "err", err)
		return e.fail("%v", err)
	}
	return 0
}

func logLevel(name string) slog.Level {
	var l slog.Level
	_ = l.UnmarshalText([]byte(name))
	return l
}
