package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/hubd/hubd/core/server"
	"github.com/hubd/hubd/core/spawner"
	"github.com/hubd/hubd/core/store"
	"github.com/hubd/hubd/core/web"
	"github.com/hubd/hubd/internal/testutil"
)

// A real Prometheus (Debian's) scrapes /hub/metrics with a read:metrics
// token, as an admin would set it up, and its query for running servers
// follows the hub: 2 with two servers up, 1 after one stops.
func TestPrometheusScrapesRunningServers(t *testing.T) {
	prom, err := exec.LookPath("prometheus")
	testutil.Require(t, err == nil, "prometheus is not installed (apt-get install prometheus)")
	cfg := testConfig(t)
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cfg.Spawner.Command = []string{exe}
	cfg.Spawner.Environment = map[string]string{envTiny: "1"}
	ctx := context.Background()
	srv, err := server.New(ctx, server.Options{Config: cfg})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Shutdown(ctx) })

	st := srv.Store()
	var users []store.User
	for _, name := range []string{"alice", "bob"} {
		u, err := st.CreateUser(ctx, name, false)
		if err != nil {
			t.Fatal(err)
		}
		users = append(users, u)
		op, err := srv.Hub().Start(ctx, u, "")
		if err != nil {
			t.Fatal(err)
		}
		if err := op.Wait(ctx); err != nil {
			t.Fatalf("start %s: %v", name, err)
		}
		t.Cleanup(func() { _ = srv.Hub().Stop(ctx, u, "", "test cleanup", "test") })
	}
	admin, err := st.CreateUser(ctx, "prom-admin", true)
	if err != nil {
		t.Fatal(err)
	}
	token := web.NewToken()
	if _, err := st.CreateToken(ctx, store.Token{UserID: admin.ID, Hash: store.HashToken(token), Prefix: token[:4],
		Kind: store.TokenAPI, Scopes: `["read:metrics"]`, Note: "prometheus"}); err != nil {
		t.Fatal(err)
	}

	api := startPrometheus(t, prom, srv.Addr(server.Public), token)
	waitForValue(t, api, `up{job="hubd"}`, "1")
	waitForValue(t, api, "jupyterhub_running_servers", "2")
	waitForValue(t, api, "jupyterhub_total_users", "3")
	if err := srv.Hub().Stop(ctx, users[0], "", "test", "test"); err != nil {
		t.Fatal(err)
	}
	waitForValue(t, api, "jupyterhub_running_servers", "1")
	waitForValue(t, api, `jupyterhub_server_spawn_duration_seconds_count{status="success"}`, "2")
}

// startPrometheus runs prometheus scraping the hub at addr every second
// with the token from a credentials file, and returns its API's base URL.
// It is stopped by pid when the test ends.
func startPrometheus(t *testing.T, prom, addr, token string) string {
	t.Helper()
	dir := t.TempDir()
	cred := filepath.Join(dir, "token")
	if err := os.WriteFile(cred, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(conf, fmt.Appendf(nil, `global:
  scrape_interval: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: hubd
    metrics_path: /hub/metrics
    authorization:
      type: Bearer
      credentials_file: %s
    static_configs:
      - targets: [%q]
`, cred, addr), 0o600); err != nil {
		t.Fatal(err)
	}
	port, err := spawner.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	listen := fmt.Sprintf("127.0.0.1:%d", port)
	logs := &testutil.LogBuffer{}
	cmd := exec.Command(prom, "--config.file="+conf, "--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+listen, "--log.level=warn")
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("prometheus log:\n%s", logs.String())
		}
	})
	return "http://" + listen
}

// waitForValue polls an instant query until its single result has value.
func waitForValue(t *testing.T, api, query, want string) {
	t.Helper()
	var last string
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		last = instantQuery(api, query)
		if last == want {
			return
		}
		time.Sleep(200 * time.Millisecond) // poll interval
	}
	t.Fatalf("prometheus: %s = %q, want %q", query, last, want)
}

// instantQuery returns the value of a query's only sample, or what went
// wrong.
func instantQuery(api, query string) string {
	resp, err := http.Get(api + "/api/v1/query?query=" + url.QueryEscape(query))
	if err != nil {
		return err.Error()
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var r struct {
		Status string
		Data   struct {
			Result []struct {
				Value [2]any
			}
		}
	}
	if err := json.Unmarshal(body, &r); err != nil || r.Status != "success" {
		return fmt.Sprintf("status %d: %.200s", resp.StatusCode, body)
	}
	if len(r.Data.Result) != 1 {
		return fmt.Sprintf("%d samples", len(r.Data.Result))
	}
	v, _ := r.Data.Result[0].Value[1].(string)
	return v
}
