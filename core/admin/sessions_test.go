package admin_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hubd/hubd/core/admin"
	"github.com/hubd/hubd/core/admin/client"
	"github.com/hubd/hubd/core/admin/wire"
	"github.com/hubd/hubd/core/config"
	"github.com/hubd/hubd/core/store"
	"github.com/hubd/hubd/internal/testutil"
)

// TestSessionsLocalServers starts real servers with the local spawner,
// each behind a shell that leaves a second process in the server's
// session, and checks the process-tree numbers and the GPU attribution.
func TestSessionsLocalServers(t *testing.T) {
	exe, _ := os.Executable()
	e := newTestEnv(t, func(c *config.Config) {
		// sh execs into the server, so the session holds the server and
		// the sleeping child.
		c.Spawner.Command = []string{"/bin/sh", "-c", `sleep 600 & exec "$0"`, exe}
	})
	e.start(t, "alice")
	e.start(t, "bob")

	rec := e.do(idRoot, "GET", "/v1/sessions", "")
	var got wire.Sessions
	if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil || rec.Code != 200 {
		t.Fatalf("%d %s", rec.Code, rec.Body)
	}
	if len(got.Sessions) != 2 {
		t.Fatalf("sessions %+v", got.Sessions)
	}
	pids := map[string]int{}
	for _, s := range got.Sessions {
		if s.State != store.StateRunning || s.Spawner != "local" || s.URL != "/user/"+s.User+"/" {
			t.Errorf("%s: %+v", s.User, s)
		}
		if s.PID <= 0 || s.Procs != 2 {
			t.Errorf("%s: pid %d with %d processes, want the server and its sleep", s.User, s.PID, s.Procs)
		}
		if s.RSSBytes < 1<<20 {
			t.Errorf("%s: RSS %d bytes, less than a Go server and a sleep use", s.User, s.RSSBytes)
		}
		if s.CPUPercent < 0 || math.IsNaN(s.CPUPercent) || s.CPUPercent > 100*float64(runtime.NumCPU()) {
			t.Errorf("%s: CPU %.1f%%", s.User, s.CPUPercent)
		}
		if s.Started.IsZero() || s.LastActivity.IsZero() {
			t.Errorf("%s: started %v, last activity %v", s.User, s.Started, s.LastActivity)
		}
		if s.GPUMemoryBytes != nil {
			t.Errorf("%s: GPU memory without nvidia-smi", s.User)
		}
		pids[s.User] = s.PID
	}

	// A fake nvidia-smi reports alice's server, a process of nobody's,
	// and a line it cannot measure.
	fake := filepath.Join(t.TempDir(), "nvidia-smi")
	script := fmt.Sprintf("#!/bin/sh\nprintf '%d, 1024\\n1, 77\\n%d, [N/A]\\n'\n", pids["alice"], pids["bob"])
	if err := os.WriteFile(fake, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	e.srv.SetGPUProbe(fake)
	rec = e.do(idRoot, "GET", "/v1/sessions", "")
	got = wire.Sessions{}
	if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	if !got.GPU || len(got.Warnings) != 0 {
		t.Fatalf("gpu %v, warnings %v", got.GPU, got.Warnings)
	}
	for _, s := range got.Sessions {
		want := map[string]int64{"alice": 1024 << 20, "bob": 0}[s.User]
		if s.GPUMemoryBytes == nil || *s.GPUMemoryBytes != want {
			t.Errorf("%s: GPU memory %v, want %d", s.User, s.GPUMemoryBytes, want)
		}
	}

	// A broken driver is a warning; the list is still there.
	if err := os.WriteFile(fake, []byte("#!/bin/sh\necho 'NVIDIA-SMI has failed' >&2\nexit 9\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	e.srv.SetGPUProbe(fake)
	rec = e.do(idRoot, "GET", "/v1/sessions", "")
	got = wire.Sessions{}
	if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil || rec.Code != 200 {
		t.Fatalf("%d %s", rec.Code, rec.Body)
	}
	if got.GPU || len(got.Sessions) != 2 || len(got.Warnings) != 1 || !strings.Contains(got.Warnings[0], "NVIDIA-SMI has failed") {
		t.Fatalf("with a failing nvidia-smi: gpu %v, %d sessions, warnings %q", got.GPU, len(got.Sessions), got.Warnings)
	}

	// A member sees only their own.
	rec = e.do(admin.NewIdentity(5, "bob", wire.RoleMember, ""), "GET", "/v1/sessions", "")
	got = wire.Sessions{}
	if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	if len(got.Sessions) != 1 || got.Sessions[0].User != "bob" {
		t.Fatalf("bob sees %+v", got.Sessions)
	}

	// The server's own log, through the client on a real socket.
	c := &client.Client{Socket: e.cfg.Admin.Socket}
	tail, err := c.ServerLog(context.Background(), "alice", "", 5)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(tail.Lines, func(l string) bool { return strings.Contains(l, "tiny server listening") }) {
		t.Errorf("alice's log tail: %q", tail.Lines)
	}
	var apiErr *client.APIError
	if _, err := c.ServerLog(context.Background(), "alice", "../x", 5); !errors.As(err, &apiErr) || apiErr.Status != 400 {
		t.Errorf("a named server's log with a bad name: %v; want 400", err)
	}
	if _, err := c.ServerLog(context.Background(), "alice", "gpu", 5); !errors.As(err, &apiErr) || apiErr.Status != 404 {
		t.Errorf("the log of a named server never started: %v; want 404", err)
	}

	// Stop alice's server; bob's stays.
	res, err := c.StopServer(context.Background(), "alice", "")
	if err != nil || !slices.Equal(res.Stopped, []string{"alice"}) {
		t.Fatalf("stop alice: %+v, %v", res, err)
	}
	res, err = c.StopServer(context.Background(), "alice", "")
	if err != nil || len(res.Stopped) != 0 || !slices.Equal(res.NotRunning, []string{"alice"}) {
		t.Fatalf("stop alice again: %+v, %v", res, err)
	}
	list, err := c.Sessions(context.Background(), "")
	if err != nil || len(list.Sessions) != 1 || list.Sessions[0].User != "bob" {
		t.Fatalf("after stopping alice: %+v, %v", list, err)
	}
	u, _ := e.store.UserByName(context.Background(), "alice")
	srv, _ := e.store.Server(context.Background(), u.ID, "")
	if srv.StoppedBy != "root" || !strings.Contains(srv.StopReason, "admin socket") {
		t.Errorf("alice's server stopped by %q for %q", srv.StoppedBy, srv.StopReason)
	}
}

// TestStopMany covers the list and idle forms, unknown and bad names.
func TestStopMany(t *testing.T) {
	e := newTestEnv(t)
	e.start(t, "alice")
	e.start(t, "bob")
	e.user(t, "carol") // no server
	ctx := context.Background()
	// alice has been idle for three hours, bob was active just now.
	ua, _ := e.store.UserByName(ctx, "alice")
	sa, _ := e.store.Server(ctx, ua.ID, "")
	if _, err := testutil.RawDB(t, e.store.Path()).ExecContext(ctx, `UPDATE servers SET last_activity = ?, started = ? WHERE id = ?`,
		store.FormatTime(time.Now().Add(-3*time.Hour)), store.FormatTime(time.Now().Add(-4*time.Hour)), sa.ID); err != nil {
		t.Fatal(err)
	}

	for _, c := range []struct{ body, want string }{
		{`{}`, "give one of"},
		{`{"users":["bob"],"idle_for":"1h"}`, "give one of"},
		{`{"idle_for":"soon"}`, "positive duration"},
		{`{"idle_for":"-1h"}`, "positive duration"},
		{`{"users":"bob"}`, "bad request body"},
		{`{"users":["bob"],"extra":1}`, "unknown field"},
		{`{"users":["bob"]} {"users":["alice"]}`, "more than one"},
	} {
		rec := e.do(idRoot, "POST", "/v1/sessions/stop", c.body)
		if rec.Code != 400 || !strings.Contains(rec.Body.String(), c.want) {
			t.Errorf("%s: %d %s", c.body, rec.Code, rec.Body)
		}
	}

	rec := e.do(idRoot, "POST", "/v1/sessions/stop", `{"idle_for":"2h","reason":"idle sweep"}`)
	var res wire.StopResult
	if err := json.Unmarshal(rec.Body.Bytes(), &res); err != nil || rec.Code != 200 {
		t.Fatalf("%d %s", rec.Code, rec.Body)
	}
	if !slices.Equal(res.Stopped, []string{"alice"}) || len(res.Failed) != 0 {
		t.Fatalf("idle stop: %+v", res)
	}
	sa, _ = e.store.Server(ctx, ua.ID, "")
	if sa.StopReason != "idle sweep" {
		t.Errorf("stop reason %q", sa.StopReason)
	}

	rec = e.do(idAdmin, "POST", "/v1/sessions/stop", `{"users":["bob","carol","nobody","../etc","alice"]}`)
	res = wire.StopResult{}
	if err := json.Unmarshal(rec.Body.Bytes(), &res); err != nil || rec.Code != 200 {
		t.Fatalf("%d %s", rec.Code, rec.Body)
	}
	if !slices.Equal(res.Stopped, []string{"bob"}) || !slices.Equal(res.NotRunning, []string{"alice", "carol"}) || len(res.Failed) != 2 {
		t.Fatalf("list stop: %+v", res)
	}
	ev := e.adminEvents(t)[0]
	if ev.Action != "server.stop-many" || ev.ActorUID != idAdmin.UID() || !strings.Contains(ev.Detail, "stopped 1, not running 2, failed 2") {
		t.Errorf("audit %+v", ev)
	}

	for path, want := range map[string]int{
		"/v1/sessions/nobody/stop":    404,
		"/v1/sessions/..%2Fx/stop":    400,
		"/v1/sessions/-rf/stop":       400,
		"/v1/sessions/nobody/log":     404,
		"/v1/sessions/Bad%20Name/log": 400,
	} {
		method := "POST"
		if strings.HasSuffix(path, "/log") {
			method = "GET"
		}
		if rec := e.do(idRoot, method, path, ""); rec.Code != want {
			t.Errorf("%s %s: %d %s, want %d", method, path, rec.Code, rec.Body, want)
		}
	}
}
