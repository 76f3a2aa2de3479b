package metrics

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func scrape(t *testing.T, m *Metrics) string {
	t.Helper()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/hub/metrics", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("scrape: %d %s", rec.Code, rec.Body)
	}
	return rec.Body.String()
}

func mustContain(t *testing.T, body string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(body, w) {
			t.Errorf("scrape lacks %s", w)
		}
	}
}

// A nil *Metrics is a valid "record nothing", so callers need no checks.
func TestNilRecordsNothing(t *testing.T) {
	var m *Metrics
	m.Request("GET", "/", 200, time.Second)
	m.Spawn(SpawnSuccess, time.Second)
	m.Stop(true, time.Second)
	m.Started(time.Second)
	m.ProxyError(502)
	m.Login("")
	m.PAMWait(time.Second)
	m.Admin("GET", "/v1/status", 200, time.Second)
	m.Watch(Sources{})
	h := http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})
	if m.Hub(h) == nil || m.AdminSocket(h) == nil {
		t.Fatal("nil metrics lost the handler")
	}
}

func TestNamesBucketsAndScrapeTimeValues(t *testing.T) {
	m := New(nil)
	fail := false
	m.Watch(Sources{
		Counts: func(context.Context) (Counts, error) {
			if fail {
				return Counts{}, errors.New("database is locked")
			}
			return Counts{Users: 7, RunningServers: 3}, nil
		},
		PAM:          func() PoolStats { return PoolStats{Workers: 4, Busy: 2, Waiting: 5} },
		AdminWaiting: func() int { return 1 },
	})
	m.Spawn(SpawnSuccess, 4*time.Second)
	m.Login("throttled")
	m.ProxyError(http.StatusServiceUnavailable)
	body := scrape(t, m)
	mustContain(t, body,
		"jupyterhub_total_users 7", "jupyterhub_running_servers 3",
		`jupyterhub_server_spawn_duration_seconds_bucket{status="success",le="2.5"} 0`,
		`jupyterhub_server_spawn_duration_seconds_bucket{status="success",le="5"} 1`,
		`jupyterhub_server_spawn_duration_seconds_bucket{status="success",le="600"} 1`,
		`jupyterhub_server_spawn_duration_seconds_count{status="throttled"} 0`,
		`jupyterhub_server_stop_seconds_count{status="failure"} 0`,
		`hubd_login_failures_total{reason="throttled"} 1`,
		`hubd_proxy_errors_total{code="503"} 1`, `hubd_proxy_errors_total{code="504"} 0`,
		"hubd_pam_workers 4", "hubd_pam_workers_busy 2", "hubd_pam_queue_length 5", "hubd_admin_queue_length 1",
		"go_goroutines", "process_resident_memory_bytes")

	// A database that cannot answer leaves the totals out rather than
	// reporting 0 servers.
	fail = true
	body = scrape(t, m)
	if strings.Contains(body, "jupyterhub_running_servers ") {
		t.Error("a failed read still reported running servers")
	}
	mustContain(t, body, "hubd_pam_workers 4")
}

// Requests are recorded under the pattern the mux matched, with bounded
// method labels, and a flushing handler keeps its Flusher.
func TestInstrumentUsesThePattern(t *testing.T) {
	m := New(nil)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/sessions/{user}/log", func(w http.ResponseWriter, r *http.Request) {
		if _, ok := w.(http.Flusher); !ok {
			t.Error("the wrapped writer lost http.Flusher")
		}
		w.WriteHeader(http.StatusTeapot)
	})
	srv := httptest.NewServer(m.AdminSocket(mux))
	defer srv.Close()
	for _, req := range []struct{ method, path string }{{"GET", "/v1/sessions/alice/log"}, {"BREW", "/nope"}} {
		r, _ := http.NewRequest(req.method, srv.URL+req.path, nil)
		resp, err := http.DefaultClient.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	mustContain(t, scrape(t, m),
		`hubd_admin_request_duration_seconds_count{code="418",endpoint="GET /v1/sessions/{user}/log",method="GET"} 1`,
		`hubd_admin_request_duration_seconds_count{code="404",endpoint="unknown",method="other"} 1`)
}
