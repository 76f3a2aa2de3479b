package client

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hubd/hubd/core/admin/wire"
)

// fakeHub serves h on a unix socket in a temporary directory.
func fakeHub(t *testing.T, h http.HandlerFunc) string {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "hubd.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return sock
}

func TestTypedErrors(t *testing.T) {
	sock := fakeHub(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Host != wire.Host || r.Header.Get(wire.VersionHeader) == "" {
			t.Errorf("request host %q, version %q", r.Host, r.Header.Get(wire.VersionHeader))
		}
		switch r.URL.Path {
		case "/v1/whoami":
			w.WriteHeader(http.StatusForbidden)
			io.WriteString(w, `{"error":"access denied: go away"}`)
		case "/v1/restart":
			w.Header().Set("Retry-After", "7")
			w.WriteHeader(http.StatusTooManyRequests)
			io.WriteString(w, `{"error":"too soon"}`)
		default:
			http.Error(w, "plain text from net/http", http.StatusBadRequest)
		}
	})
	c := &Client{Socket: sock}
	ctx := context.Background()
	_, err := c.WhoAmI(ctx)
	if e, ok := errors.AsType[*AccessDeniedError](err); !ok || e.Message != "access denied: go away" {
		t.Errorf("403: %#v", err)
	}
	_, err = c.Restart(ctx, "")
	if e, ok := errors.AsType[*APIError](err); !ok || e.Status != 429 || e.RetryAfter != 7*time.Second {
		t.Errorf("429: %#v", err)
	}
	_, err = c.Status(ctx)
	if e, ok := errors.AsType[*APIError](err); !ok || e.Status != 400 || !strings.Contains(e.Message, "plain text from net/http") {
		t.Errorf("non-JSON error: %#v", err)
	}
}

func TestNotRunning(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing.sock")
	_, err := (&Client{Socket: missing}).Status(context.Background())
	if _, ok := errors.AsType[*NotRunningError](err); !ok || !errors.Is(err, syscall.ENOENT) || !strings.Contains(err.Error(), "systemctl status hubd") || !strings.Contains(err.Error(), missing) {
		t.Fatalf("missing socket: %v", err)
	}
	// A socket file nobody listens on: refused.
	stale := filepath.Join(dir, "stale.sock")
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: stale, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	l.SetUnlinkOnClose(false)
	l.Close()
	_, err = (&Client{Socket: stale}).Status(context.Background())
	if _, ok := errors.AsType[*NotRunningError](err); !ok || !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("stale socket: %v", err)
	}
}

func TestZeroValueUsesDefaultSocket(t *testing.T) {
	var c Client
	if c.socket() != wire.DefaultSocket {
		t.Fatalf("zero Client dials %s", c.socket())
	}
}

func TestVersionMismatchOnce(t *testing.T) {
	sock := fakeHub(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set(wire.VersionHeader, "9.9.9")
		io.WriteString(w, `{"version":"9.9.9"}`)
	})
	var calls []string
	c := &Client{Socket: sock, OnVersionMismatch: func(client, hub string) { calls = append(calls, hub) }}
	for range 3 {
		if _, err := c.Status(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if len(calls) != 1 || calls[0] != "9.9.9" || c.HubVersion() != "9.9.9" {
		t.Fatalf("mismatch calls %v, hub version %q", calls, c.HubVersion())
	}
}

func TestStream(t *testing.T) {
	body := map[string]string{
		"ok":        `{"stage":"snapshot","done":0,"total":10}` + "\n" + `{"stage":"compress","done":5,"total":10}` + "\n" + `{"result":{"name":"b.tar.gz","size":3}}` + "\n",
		"error":     `{"stage":"snapshot","done":0,"total":10}` + "\n" + `{"error":"backup failed: disk full"}` + "\n",
		"truncated": `{"stage":"snapshot","done":0,"total":10}` + "\n",
		"garbage":   "not json\n",
	}
	var which string
	sock := fakeHub(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", wire.NDJSON)
		io.WriteString(w, body[which])
	})
	c := &Client{Socket: sock}
	ctx := context.Background()

	which = "ok"
	var seen []wire.Progress
	b, err := c.CreateBackup(ctx, "", func(p wire.Progress) { seen = append(seen, p) })
	if err != nil || b.Name != "b.tar.gz" || b.Size != 3 || len(seen) != 2 || seen[1].Done != 5 {
		t.Fatalf("ok stream: %+v, %v, progress %+v", b, err, seen)
	}
	which = "error"
	_, err = c.CreateBackup(ctx, "", nil)
	if e, ok := errors.AsType[*APIError](err); !ok || e.Message != "backup failed: disk full" {
		t.Fatalf("error line: %v", err)
	}
	which = "truncated"
	if _, err = c.CreateBackup(ctx, "", nil); err == nil || !strings.Contains(err.Error(), "without a result") {
		t.Fatalf("stream without a result: %v", err)
	}
	which = "garbage"
	if _, err = c.CreateBackup(ctx, "", nil); err == nil {
		t.Fatal("garbage stream accepted")
	}
}

// TestAllUsersFollowsPages: AllUsers asks for the pages the hub names
// until the last, keeping the name filter.
func TestAllUsersFollowsPages(t *testing.T) {
	var (
		mu    sync.Mutex
		asked []string
	)
	sock := fakeHub(t, func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		asked = append(asked, r.URL.RawQuery)
		mu.Unlock()
		switch r.URL.Query().Get("offset") {
		case "":
			io.WriteString(w, `{"users":[{"name":"al"},{"name":"alf"}],"total":3,"next_offset":2}`)
		case "2":
			io.WriteString(w, `{"users":[{"name":"sal"}],"total":3}`)
		default:
			t.Errorf("unexpected page %s", r.URL.RawQuery)
		}
	})
	got, err := (&Client{Socket: sock}).AllUsers(context.Background(), "al")
	if err != nil || len(got) != 3 || got[2].Name != "sal" {
		t.Fatalf("AllUsers = %+v, %v", got, err)
	}
	mu.Lock()
	defer mu.Unlock()
	if want := []string{"limit=1000&name=al", "limit=1000&name=al&offset=2"}; strings.Join(asked, " ") != strings.Join(want, " ") {
		t.Errorf("asked for %q, want %q", asked, want)
	}
}
