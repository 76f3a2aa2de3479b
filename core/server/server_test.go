package server_test

import (
	"context"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hubd/hubd/core/config"
	"github.com/hubd/hubd/core/server"
	"github.com/hubd/hubd/core/server/servertest"
	"github.com/hubd/hubd/internal/testutil"
)

// testConfig is a hub in a temporary directory on free loopback ports.
func testConfig(t *testing.T) config.Config {
	t.Helper()
	cfg := servertest.Config(t, nil)
	cfg.SharedEnv.Enabled = false
	return cfg
}

func TestStartServeShutdown(t *testing.T) {
	cfg := testConfig(t)
	cfg.Source = filepath.Join(t.TempDir(), "hubd.toml")
	if err := os.WriteFile(cfg.Source, []byte("# test\n"), 0o666); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(cfg.Source, 0o666); err != nil {
		t.Fatal(err)
	}
	logs := &testutil.LogBuffer{}
	ctx := context.Background()
	srv, err := server.New(ctx, server.Options{Config: cfg, Logger: slog.New(slog.NewTextHandler(logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(ctx); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{server.Public, server.Internal} {
		resp, err := http.Get("http://" + srv.Addr(name) + "/hub/health")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("%s health: %d", name, resp.StatusCode)
		}
	}
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if err := srv.Shutdown(ctx); err != nil {
		t.Errorf("second shutdown: %v", err)
	}
	if !strings.Contains(logs.String(), "writable by others than its owner") {
		t.Errorf("no warning about a world-writable configuration file:\n%s", logs.String())
	}
	// The lock is released: a second hub can take over the same state.
	again, err := server.New(ctx, server.Options{Config: cfg})
	if err != nil {
		t.Fatal(err)
	}
	again.Close()
}
