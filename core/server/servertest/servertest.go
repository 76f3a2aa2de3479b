// Package servertest starts a whole hub for tests through core/server,
// exactly as `hubd serve` wires it, in a temporary directory on loopback
// ports. Servers are started by the local spawner re-executing the test
// binary, which plays the single-user server (see Config).
package servertest

import (
	"context"
	"log/slog"
	"maps"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/hubd/hubd/core/config"
	"github.com/hubd/hubd/core/daemon"
	"github.com/hubd/hubd/core/server"
	"github.com/hubd/hubd/core/spawner"
	"github.com/hubd/hubd/core/store"
	"github.com/hubd/hubd/internal/testutil"
)

// Config is a hub in a fresh temporary directory: every path under it,
// loopback ports, the local spawner running this test binary with env
// (a TestMain tells its server role by it), in the directory, and
// timeouts short enough for tests.
func Config(t testing.TB, env map[string]string) config.Config {
	t.Helper()
	dir := t.TempDir()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cfg := config.Default()
	cfg.Hub.Listen = "127.0.0.1:0"
	cfg.Hub.InternalListen = "127.0.0.1:0"
	cfg.Data.DB = filepath.Join(dir, "hubd.sqlite")
	cfg.Data.CookieSecretFile = filepath.Join(dir, "cookie_secret")
	cfg.Data.LogDir = filepath.Join(dir, "logs")
	cfg.Data.RuntimeDir = dir
	cfg.Admin.Socket = filepath.Join(dir, "hubd.sock")
	cfg.Backups.Dir = filepath.Join(dir, "backups")
	cfg.Spawner.Kind = spawner.KindLocal
	cfg.Spawner.Command = []string{exe}
	cfg.Spawner.WorkingDir = dir
	cfg.Spawner.Environment = env
	cfg.Spawner.StartTimeout = config.Duration(10 * time.Second)
	cfg.Spawner.HTTPTimeout = config.Duration(10 * time.Second)
	cfg.Spawner.StopTimeout = config.Duration(5 * time.Second)
	for _, d := range []string{cfg.Data.LogDir, cfg.Backups.Dir} {
		if err := os.MkdirAll(d, 0o750); err != nil {
			t.Fatal(err)
		}
	}
	return cfg
}

// Hub is a started hub.
type Hub struct {
	*server.Server
	Config config.Config
	// URL and Internal are the base URLs of the public and the internal
	// listener, "http://127.0.0.1:<port>".
	URL, Internal string
	// Logs holds the hub's log (debug level); a failed test prints it.
	Logs *testutil.LogBuffer
}

// Start builds the hub of cfg with o's seams (o.Config, o.Logger and
// o.Listeners are set here) and starts it. An internal_listen on port 0
// is bound first, so that servers are told the real address. When the
// test ends, every user's server is stopped and the hub shut down.
func Start(t testing.TB, cfg config.Config, o server.Options) *Hub {
	t.Helper()
	h, err := TryStart(t, cfg, o, nil)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// TryStart is Start for a hub that may refuse to start: it returns the
// error instead of failing the test. handed are listening sockets handed
// over as by a previous hub process (by listener name, e.g. server.Admin),
// for tests of a restart in place.
func TryStart(t testing.TB, cfg config.Config, o server.Options, handed map[string]*os.File) (*Hub, error) {
	t.Helper()
	logs := &testutil.LogBuffer{}
	files := map[string]*os.File{}
	maps.Copy(files, handed)
	if host, port, err := net.SplitHostPort(cfg.Hub.InternalListen); err == nil && port == "0" {
		ln, err := net.Listen("tcp", net.JoinHostPort(host, port))
		if err != nil {
			t.Fatal(err)
		}
		f, err := ln.(*net.TCPListener).File()
		ln.Close()
		if err != nil {
			t.Fatal(err)
		}
		files[server.Internal] = f
		cfg.Hub.InternalListen = ln.Addr().String()
	}
	o.Config = cfg
	o.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	o.Listeners = daemon.ListenersOf(files)
	ctx := context.Background()
	srv, err := server.New(ctx, o)
	if err != nil {
		return nil, err
	}
	h := &Hub{Server: srv, Config: cfg, Logs: logs}
	t.Cleanup(func() {
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		if t.Failed() {
			t.Logf("hub log:\n%s", logs.String())
		}
	})
	if err := srv.Start(ctx); err != nil {
		return nil, err
	}
	h.URL, h.Internal = "http://"+srv.Addr(server.Public), "http://"+srv.Addr(server.Internal)
	// Runs first: no test leaves a server (or a start) behind.
	t.Cleanup(func() { h.StopAll(t) })
	return h, nil
}

// StopAll stops every user's servers (named ones too) and waits for
// starts under way.
func (h *Hub) StopAll(t testing.TB) {
	t.Helper()
	ctx := context.Background()
	users, _, err := h.Store().ListUsers(ctx, store.UserFilter{Limit: 10000})
	if err != nil {
		t.Errorf("stop all: %v", err)
	}
	for _, u := range users {
		if err := h.Hub().StopUser(ctx, u, "test cleanup", "test"); err != nil {
			t.Errorf("stop all: stop %s: %v", u.Name, err)
		}
	}
	h.Hub().Wait()
}

// AdminToken creates, before any hub runs on cfg, the admin
// hubtest-admin and an API token of theirs with all their scopes, for
// tests that drive a hub in another process through its API.
func AdminToken(t testing.TB, cfg config.Config) string {
	t.Helper()
	ctx := context.Background()
	st, lock, err := server.OpenState(ctx, cfg, os.Stderr, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Release()
	defer st.Close()
	u, err := st.CreateUser(ctx, "hubtest-admin", true)
	if err != nil {
		t.Fatal(err)
	}
	tok := store.RandomID(16)
	if _, err := st.CreateToken(ctx, store.Token{UserID: u.ID, Hash: store.HashToken(tok), Prefix: tok[:4],
		Kind: store.TokenAPI, Scopes: `["inherit"]`, Note: "test"}); err != nil {
		t.Fatal(err)
	}
	return tok
}
