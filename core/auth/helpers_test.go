package auth

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hubd/hubd/core/config"
)

// logBuffer collects log output from any goroutine.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func newLogger(w *logBuffer) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug})).With("component", "auth")
}

// fakeClock is the throttle's clock in tests.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{now: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// testConfig is config.Default's auth section with the given changes.
func testConfig(change func(*config.Auth)) config.Auth {
	cfg := config.Default().Auth
	if change != nil {
		change(&cfg)
	}
	return cfg
}

// wantKind fails unless err is an *Error of the given kind.
func wantKind(t *testing.T, err, kind error) *Error {
	t.Helper()
	if kind == nil {
		if err != nil {
			t.Fatalf("got error %v, want success", err)
		}
		return nil
	}
	e, ok := errors.AsType[*Error](err)
	if !ok {
		t.Fatalf("got %T %v, want an *auth.Error of kind %q", err, err, kind)
	}
	if !errors.Is(err, kind) {
		t.Fatalf("got kind %q (%v), want %q", e.Kind, err, kind)
	}
	if e.Public == "" || strings.ToUpper(e.Public[:1]) != e.Public[:1] || !strings.HasSuffix(e.Public, ".") {
		t.Errorf("public message %q is not a sentence for the login page", e.Public)
	}
	return e
}
