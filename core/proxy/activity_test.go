package proxy

import (
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/google/go-cmp/cmp"
)

// fakeClock is an injected clock that only moves when told to.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

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

// activityLog records OnActivity calls as "user@offset" strings.
type activityLog struct {
	mu    sync.Mutex
	start time.Time
	calls []string
}

func (l *activityLog) record(r Route, at time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.calls = append(l.calls, r.User+"@"+at.Sub(l.start).String())
}

func (l *activityLog) get() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.calls...)
}

// activityProxy serves alice (HTTP and websocket echo), bob, and a dead
// route, on a proxy whose activity clock is clock.
func activityProxy(t *testing.T) (base string, clock *fakeClock, log *activityLog) {
	t.Helper()
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	clock = &fakeClock{now: start}
	log = &activityLog{start: start}
	ws, plain := newWSBackend(t), echoBackend(t, "bob")
	tab := NewTable()
	mustSet(t, tab, "/user/alice/", ws.URL)
	mustSet(t, tab, "/user/bob/", plain.URL)
	mustSet(t, tab, "/user/dead/", deadTarget(t))
	p := New(tab, Options{OnActivity: log.record, ActivityInterval: 30 * time.Second})
	p.now = clock.Now
	return front(t, p), clock, log
}

func TestActivityIsCoalescedPerRoute(t *testing.T) {
	base, clock, log := activityProxy(t)
	c := client(t)
	hit := func(user string, n int) {
		for range n {
			get(t, c, base+"/user/"+user+"/api/status")
		}
	}

	hit("bob", 5)
	hit("dead", 3) // errors are not activity
	clock.Advance(29 * time.Second)
	hit("bob", 2)
	hit("alice", 2) // its own interval, not bob's
	clock.Advance(time.Second)
	hit("bob", 1)
	hit("bob", 1)
	clock.Advance(45 * time.Second)
	hit("bob", 1)

	want := []string{"bob@0s", "alice@29s", "bob@30s", "bob@1m15s"}
	if diff := cmp.Diff(want, log.get()); diff != "" {
		t.Errorf("OnActivity calls (-want +got):\n%s", diff)
	}
}

// TestWebsocketFramesAreActivity: an open websocket keeps reporting while
// it carries frames, with no new HTTP request.
func TestWebsocketFramesAreActivity(t *testing.T) {
	base, clock, log := activityProxy(t)
	c := dialWS(t, "ws"+strings.TrimPrefix(base, "http")+"/user/alice/api/kernels/k/channels")
	if diff := cmp.Diff([]string{"alice@0s"}, log.get()); diff != "" {
		t.Fatalf("after the upgrade (-want +got):\n%s", diff)
	}
	echo(t, c, websocket.MessageText, []byte("x"))
	clock.Advance(31 * time.Second)
	echo(t, c, websocket.MessageText, []byte("y"))
	clock.Advance(10 * time.Second)
	echo(t, c, websocket.MessageText, []byte("z"))
	c.Close(websocket.StatusNormalClosure, "")

	want := []string{"alice@0s", "alice@31s"}
	if diff := cmp.Diff(want, log.get()); diff != "" {
		t.Errorf("OnActivity calls (-want +got):\n%s", diff)
	}
}
