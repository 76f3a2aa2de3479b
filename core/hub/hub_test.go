package hub

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hubd/hubd/core/config"
	"github.com/hubd/hubd/core/proxy"
	"github.com/hubd/hubd/core/spawner"
	"github.com/hubd/hubd/core/store"
)

// fakeSpawner "starts" a server by listening on the requested port in
// process, so the hub's real readiness probe and routes are exercised.
type fakeSpawner struct {
	mu      sync.Mutex
	servers map[int]*http.Server       // by pid (= port)
	reqs    map[string]spawner.Request // the latest start of each user
}

func (f *fakeSpawner) Start(_ context.Context, r spawner.Request) (spawner.State, error) {
	l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", r.Port))
	if err != nil {
		return spawner.State{}, err
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("X-JupyterHub-Version", "3.0.0")
		io.WriteString(w, "ok")
	})}
	go srv.Serve(l)
	f.mu.Lock()
	f.servers[r.Port] = srv
	f.reqs[r.User] = r
	f.mu.Unlock()
	return spawner.State{Kind: "fake", PID: r.Port}, nil
}

func (f *fakeSpawner) Stop(_ context.Context, _ string, s spawner.State, _ time.Duration) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if srv := f.servers[s.PID]; srv != nil {
		srv.Close()
		delete(f.servers, s.PID)
	}
	return nil
}

func (f *fakeSpawner) Poll(_ context.Context, _ string, s spawner.State) (spawner.Status, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return spawner.Status{Running: f.servers[s.PID] != nil, ExitCode: -1}, nil
}

type fixture struct {
	hub    *Hub
	store  *store.Store
	sp     *fakeSpawner
	routes *proxy.Table
	clock  *time.Duration // offset added to the real time
}

func newFixture(t *testing.T, culler config.Culler, tune ...func(*Options)) *fixture {
	t.Helper()
	dir := t.TempDir()
	cfg := config.Default()
	cfg.Data.LogDir = dir
	cfg.Spawner.Kind = "fake"
	cfg.Spawner.HTTPTimeout = config.Duration(10 * time.Second)
	cfg.Culler = culler
	st, err := store.Open(context.Background(), filepath.Join(dir, "hubd.sqlite"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.CreateOrCheck(context.Background()); err != nil {
		t.Fatal(err)
	}
	f := &fixture{store: st, sp: &fakeSpawner{servers: map[int]*http.Server{}, reqs: map[string]spawner.Request{}}, routes: proxy.NewTable(), clock: new(time.Duration)}
	o := Options{Config: cfg, Store: st, Spawners: map[string]spawner.Spawner{"fake": f.sp}, Routes: f.routes,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Now: func() time.Time { return time.Now().Add(*f.clock) }}
	for _, tn := range tune {
		tn(&o)
	}
	f.hub = New(o)
	t.Cleanup(func() {
		for _, s := range f.sp.servers {
			s.Close()
		}
	})
	return f
}

// running starts a user's server and waits until it is ready.
func (f *fixture) running(t *testing.T, name string) store.Server {
	t.Helper()
	ctx := context.Background()
	u, err := f.store.CreateUser(ctx, name, false)
	if err != nil {
		t.Fatal(err)
	}
	op, err := f.hub.Start(ctx, u, "")
	if err != nil {
		t.Fatal(err)
	}
	if err := op.Wait(ctx); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	srv, err := f.store.Server(ctx, u.ID, "")
	if err != nil || srv.State != store.StateRunning {
		t.Fatalf("%s's server: %+v, %v", name, srv, err)
	}
	return srv
}

func (f *fixture) server(t *testing.T, s store.Server) store.Server {
	t.Helper()
	got, err := f.store.Server(context.Background(), s.UserID, s.Name)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func culler(activity string) config.Culler {
	return config.Culler{Enabled: true, Timeout: config.Duration(time.Hour), Interval: config.Duration(time.Minute),
		Concurrency: 2, Activity: activity}
}

func TestCullerStopsIdleAndKeepsActive(t *testing.T) {
	f := newFixture(t, culler("server"))
	ctx := context.Background()
	idle, active := f.running(t, "idle"), f.running(t, "busy")
	// Two hours pass; the busy server reports activity a minute ago. The
	// idle one reported nothing, but has a tab open: with "server" as the
	// source that does not save it.
	*f.clock = 2 * time.Hour
	now := time.Now().Add(*f.clock)
	f.store.RecordActivity(ctx, active.ID, now.Add(-time.Minute), false)
	f.store.RecordActivity(ctx, idle.ID, now.Add(-time.Minute), true)

	n, err := f.hub.Cull(ctx)
	if err != nil || n != 1 {
		t.Fatalf("Cull = %d, %v; want 1", n, err)
	}
	got := f.server(t, idle)
	if got.State != store.StateStopped || got.StoppedBy != "culler" || !strings.Contains(got.StopReason, "idle for") {
		t.Errorf("idle server after cull: state %s, by %q, reason %q", got.State, got.StoppedBy, got.StopReason)
	}
	if _, ok := f.routes.Lookup(ServerPrefix("/", "idle", "")); ok {
		t.Error("the culled server's route is still there")
	}
	if st, _ := f.sp.Poll(ctx, "idle", spawner.State{PID: idle.Port}); st.Running {
		t.Error("the culled server's process still runs")
	}
	if got := f.server(t, active); got.State != store.StateRunning {
		t.Errorf("active server was culled: %+v", got)
	}
	events, _ := f.store.Events(ctx, store.EventFilter{Action: "server.stop"})
	if len(events) != 1 || events[0].Actor != "culler" || events[0].Target != "idle" {
		t.Errorf("audit log: %+v; want one stop by the culler", events)
	}
}

func TestCullerActivitySources(t *testing.T) {
	for _, c := range []struct {
		source   string
		wantCull bool
	}{{"server", true}, {"proxy", false}, {"both", false}} {
		t.Run(c.source, func(t *testing.T) {
			f := newFixture(t, culler(c.source))
			ctx := context.Background()
			s := f.running(t, "tabopen")
			*f.clock = 3 * time.Hour
			f.store.RecordActivity(ctx, s.ID, time.Now().Add(*f.clock-time.Minute), true)
			n, _ := f.hub.Cull(ctx)
			if (n == 1) != c.wantCull {
				t.Errorf("activity source %s: culled %d", c.source, n)
			}
		})
	}
}

func TestCullerMaxAgeAndClock(t *testing.T) {
	cfg := culler("server")
	cfg.MaxAge = config.Duration(2 * time.Hour)
	f := newFixture(t, cfg)
	ctx := context.Background()
	s := f.running(t, "old")
	f.store.RecordActivity(ctx, s.ID, time.Now(), false)
	if n, _ := f.hub.Cull(ctx); n != 0 {
		t.Fatalf("a fresh, active server was culled")
	}
	// Three hours later the server is still reporting activity, but it is
	// older than max_age.
	*f.clock = 3 * time.Hour
	f.store.RecordActivity(ctx, s.ID, time.Now().Add(3*time.Hour), false)
	if n, _ := f.hub.Cull(ctx); n != 1 {
		t.Fatalf("a server older than max_age was kept")
	}
	if got := f.server(t, s); !strings.Contains(got.StopReason, "max_age") {
		t.Errorf("reason %q does not name max_age", got.StopReason)
	}
}

func TestCullerLeavesPendingAndNeverActiveAlone(t *testing.T) {
	f := newFixture(t, culler("server"))
	ctx := context.Background()
	f.running(t, "quiet")
	// Never reported activity: it counts from its start, which is recent.
	if n, _ := f.hub.Cull(ctx); n != 0 {
		t.Fatal("a just-started server without activity reports was culled")
	}
	*f.clock = 2 * time.Hour
	if n, _ := f.hub.Cull(ctx); n != 1 {
		t.Fatal("a server silent since its start two hours ago was kept")
	}
}

func TestStopAllStopsEveryActiveServerAndRecordsWhy(t *testing.T) {
	f := newFixture(t, config.Culler{})
	ctx := context.Background()
	a, b := f.running(t, "ann"), f.running(t, "bo")
	stopped, err := f.hub.StopAll(ctx, "hubd was uninstalled", "root")
	if err != nil || strings.Join(stopped, ",") != "ann,bo" {
		t.Fatalf("StopAll = %v, %v; want ann,bo", stopped, err)
	}
	for _, s := range []store.Server{a, b} {
		got := f.server(t, s)
		if got.State != store.StateStopped || got.StopReason != "hubd was uninstalled" || got.StoppedBy != "root" {
			t.Errorf("%s's server: state %s, reason %q, by %q", got.User, got.State, got.StopReason, got.StoppedBy)
		}
		if st, _ := f.sp.Poll(ctx, got.User, spawner.State{PID: s.Port}); st.Running {
			t.Errorf("%s's server still runs", got.User)
		}
	}
	if stopped, err := f.hub.StopAll(ctx, "again", "root"); err != nil || len(stopped) != 0 {
		t.Errorf("a second StopAll = %v, %v; want nothing to do", stopped, err)
	}
}
