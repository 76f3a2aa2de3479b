package faults

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/hubd/hubd/core/admin/client"
	"github.com/hubd/hubd/core/config"
	"github.com/hubd/hubd/internal/testutil"
)

// The soak runs for SOAK_MINUTES (default half a minute here; `make soak`
// runs 30) and, when HUBD_SOAK_REPORT names a path prefix, writes
// <prefix>.md and <prefix>.png.
const (
	envSoakMinutes = "SOAK_MINUTES"
	envSoakReport  = "HUBD_SOAK_REPORT"
)

// soakSample is one measurement of the hub process.
type soakSample struct {
	at         time.Duration // since the load started
	rss        int64
	fds        int
	goroutines int
	requests   int64 // proxied HTTP requests so far
	websockets int64 // websocket sessions so far
}

// soakLoad counts what the load did; the chaos loop says which user's
// server is being stopped or killed, so only requests to others must
// succeed.
type soakLoad struct {
	victim atomic.Value // string
	// round counts the servers taken away so far: a websocket opened
	// before a change of victim may have lost its server.
	round      atomic.Int64
	requests   atomic.Int64
	okRequests atomic.Int64
	websockets atomic.Int64
	refusedWS  atomic.Int64 // upgrades aimed at stopped or killed servers
	stopped    atomic.Int64 // chaos: servers stopped through the API
	killed     atomic.Int64 // chaos: servers killed behind the hub's back
	mu         sync.Mutex
	failures   []string
}

func (l *soakLoad) fail(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.failures) < 20 {
		l.failures = append(l.failures, fmt.Sprintf(format, args...))
	}
}

func (l *soakLoad) isVictim(user string) bool {
	v, _ := l.victim.Load().(string)
	return v == user
}

// spared says whether a request to user that began in round, when the
// victim was victim, had its server all along: only then must it succeed.
func (l *soakLoad) spared(user string, victim bool, round int64) bool {
	return !victim && l.round.Load() == round && !l.isVictim(user)
}

// TestSoak runs mixed traffic against a real hubd process (P11): proxied
// HTTP at about 200 requests/s, churning websockets, and websockets aimed
// at servers that were stopped through the API or killed before the hub
// noticed. RSS, open files and goroutines are sampled throughout; once the
// load stops and the clients hang up, open files and goroutines must be
// back at their baseline, and every upgrade aimed at a gone server must
// get a prompt refusal.
func TestSoak(t *testing.T) {
	minutes := 0.5
	if v := os.Getenv(envSoakMinutes); v != "" {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || f <= 0 {
			t.Fatalf("%s=%q: want a positive number of minutes", envSoakMinutes, v)
		}
		minutes = f
	}
	version := gitDescribe() // of the code under test, before anyone edits the tree
	duration := time.Duration(minutes * float64(time.Minute))
	interval := min(time.Minute, duration/10)
	churners := 20
	if minutes >= 5 {
		churners = 100
	}
	h := newChildHub(t, func(c *config.Config) {
		// Pooled upstream connections expire quickly, so quiet moments
		// are comparable; the poller looks often, as a killed server
		// must be noticed within the run.
		c.Proxy.IdleConnTimeout = config.Duration(3 * time.Second)
		c.Spawner.PollInterval = config.Duration(5 * time.Second)
		c.Hub.LogLevel = "info"
	})
	p := h.start(t)
	admin := &client.Client{Socket: h.cfg.Admin.Socket}
	users := make([]string, 10)
	apiTr := &http.Transport{}
	api := &http.Client{Transport: apiTr, Timeout: 30 * time.Second}
	for i := range users {
		users[i] = fmt.Sprintf("u%d", i+1)
		if code, body, err := h.call(api, http.MethodPost, "/users/"+users[i], "", ""); err != nil || code != http.StatusCreated {
			t.Fatalf("create %s: %d %s %v", users[i], code, body, err)
		}
		startServer(t, h, api, users[i])
	}
	sample := func(at time.Duration, l *soakLoad) soakSample {
		st, err := admin.Status(context.Background())
		if err != nil {
			t.Fatalf("admin status: %v", err)
		}
		return soakSample{at: at, rss: rssBytes(p.pid()), fds: fds(p.pid()), goroutines: st.Goroutines,
			requests: l.requests.Load(), websockets: l.websockets.Load()}
	}
	tr := &http.Transport{MaxIdleConnsPerHost: 16}
	proxied := &http.Client{Transport: tr, Timeout: 30 * time.Second}

	// Warm the paths once, then let everything go quiet: the baseline.
	warm := &soakLoad{}
	for _, u := range users {
		proxyGet(h, proxied, u, warm)
	}
	tr.CloseIdleConnections()
	apiTr.CloseIdleConnections()
	base := quiet(t, sample, warm)

	l := &soakLoad{}
	l.victim.Store("")
	ctx, stop := context.WithTimeout(context.Background(), duration)
	defer stop()
	var wg sync.WaitGroup
	for w := range 8 { // 8 workers × 25/s = 200 requests/s
		wg.Go(func() {
			tick := time.NewTicker(40 * time.Millisecond)
			defer tick.Stop()
			for i := w; ; i++ {
				select {
				case <-ctx.Done():
					return
				case <-tick.C:
				}
				proxyGet(h, proxied, users[i%len(users)], l)
			}
		})
	}
	for range churners {
		wg.Go(func() { churnWebsockets(ctx, h, users, l) })
	}
	wg.Go(func() { chaos(ctx, h, api, users, l) })

	samples := []soakSample{sample(0, l)}
	began := time.Now()
	tick := time.NewTicker(interval)
	for done := false; !done; {
		select {
		case <-ctx.Done():
			done = true
		case <-tick.C:
			samples = append(samples, sample(time.Since(began), l))
		}
	}
	tick.Stop()
	wg.Wait()
	samples = append(samples, sample(time.Since(began), l))
	tr.CloseIdleConnections()
	apiTr.CloseIdleConnections()
	end := quiet(t, sample, l)

	for _, f := range l.failures {
		t.Error(f)
	}
	warmup := duration / 6
	var afterWarmup soakSample
	for _, s := range samples {
		if s.at >= warmup {
			afterWarmup = s
			break
		}
	}
	v := soakVerdict{base: base, end: end, afterWarmup: afterWarmup, last: samples[len(samples)-1]}
	if !v.fdsBack() {
		t.Errorf("open files: %d at the end, baseline %d (more than ±5 %%)", end.fds, base.fds)
	}
	if !v.goroutinesBack() {
		t.Errorf("goroutines: %d at the end, baseline %d", end.goroutines, base.goroutines)
	}
	// RSS drift is only meaningful over a long run; a short one logs it.
	if minutes >= 10 && !v.rssFlat() {
		t.Errorf("RSS grew %.1f %% after the warm-up (goal < 10 %%)", v.rssGrowth())
	}
	t.Logf("soak %s: %d requests (%d ok), %d websockets, %d refused upgrades to gone servers, %d stops, %d kills; RSS %.1f → %.1f MiB after warm-up (%+.1f %%), fds %d → %d, goroutines %d → %d",
		duration, l.requests.Load(), l.okRequests.Load(), l.websockets.Load(), l.refusedWS.Load(), l.stopped.Load(), l.killed.Load(),
		mib(afterWarmup.rss), mib(v.last.rss), v.rssGrowth(), base.fds, end.fds, base.goroutines, end.goroutines)

	for _, u := range users {
		if code, _, err := h.call(api, http.MethodDelete, "/users/"+u+"/server", "", ""); err != nil || code != http.StatusNoContent {
			t.Errorf("stop %s: %d %v", u, code, err)
		}
	}
	p.stop(t)
	if left := mocksuProcs(); len(left) > 0 {
		t.Errorf("mock servers left after stop-all and the hub's exit: %v", left)
	}
	if prefix := os.Getenv(envSoakReport); prefix != "" {
		if err := writeSoakReport(prefix, version, duration, interval, churners, samples, v, l); err != nil {
			t.Fatal(err)
		}
	}
}

// startServer starts user's server through the API and waits until the
// hub says it is ready.
func startServer(t *testing.T, h *childHub, c *http.Client, user string) {
	t.Helper()
	code, body, err := h.call(c, http.MethodPost, "/users/"+user+"/server", "", "")
	if err != nil || (code != http.StatusCreated && code != http.StatusAccepted) {
		t.Errorf("start %s: %d %s %v", user, code, body, err)
		return
	}
	testutil.WaitFor(t, user+"'s server to be ready", func() bool {
		_, body, err := h.call(c, http.MethodGet, "/users/"+user, "", "")
		return err == nil && strings.Contains(string(body), `"ready":true`)
	})
}

// proxyGet fetches a page of user's server through the proxy.
func proxyGet(h *childHub, c *http.Client, user string, l *soakLoad) {
	victim, round := l.isVictim(user), l.round.Load()
	l.requests.Add(1)
	resp, err := c.Get(h.public + "/user/" + user + "/small")
	if err != nil {
		if l.spared(user, victim, round) {
			l.fail("GET %s's server: %v", user, err)
		}
		return
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusOK:
		l.okRequests.Add(1)
	case l.spared(user, victim, round):
		l.fail("GET %s's server: status %d", user, resp.StatusCode)
	}
}

// churnWebsockets opens a websocket to a random server, echoes a few
// messages over a few seconds, closes it, and starts again.
func churnWebsockets(ctx context.Context, h *childHub, users []string, l *soakLoad) {
	for ctx.Err() == nil {
		user := users[rand.IntN(len(users))]
		victim, round := l.isVictim(user), l.round.Load()
		c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(h.public, "http")+"/user/"+user+"/api/kernels/k/channels", nil)
		if err != nil {
			if ctx.Err() == nil && l.spared(user, victim, round) {
				l.fail("websocket to %s: %v", user, err)
			}
			continue
		}
		l.websockets.Add(1)
		for i := range 2 + rand.IntN(8) {
			msg := fmt.Sprintf("%s-%d", user, i)
			err := c.Write(ctx, websocket.MessageText, []byte(msg))
			var got []byte
			if err == nil {
				_, got, err = c.Read(ctx)
			}
			if err != nil || string(got) != msg {
				if ctx.Err() == nil && l.spared(user, victim, round) {
					l.fail("websocket echo through %s: %q %v", user, got, err)
				}
				break
			}
			select { // holding the connection open is the load itself
			case <-ctx.Done():
			case <-time.After(time.Duration(100+rand.IntN(400)) * time.Millisecond):
			}
		}
		c.CloseNow()
	}
}

// chaos takes one server at a time away, alternately stopped through the
// API and killed behind the hub's back, aims websockets at it, and starts
// it again.
func chaos(ctx context.Context, h *childHub, api *http.Client, users []string, l *soakLoad) {
	for round := 0; ctx.Err() == nil; round++ {
		select {
		case <-ctx.Done():
			return
		case <-time.After(2 * time.Second):
		}
		user := users[round%len(users)]
		l.victim.Store(user)
		l.round.Add(1)
		if round%2 == 0 {
			if code, _, err := h.call(api, http.MethodDelete, "/users/"+user+"/server", "", ""); err != nil || code != http.StatusNoContent {
				l.fail("chaos: stop %s: %d %v", user, code, err)
			}
			l.stopped.Add(1)
		} else {
			pids := testutil.Procs(func(p testutil.Proc) bool {
				return isMocksu(p) && testutil.WithEnv("JUPYTERHUB_USER="+user)(p)
			})
			for _, pid := range pids {
				if p, err := os.FindProcess(pid); err == nil {
					_ = p.Kill()
				}
			}
			l.killed.Add(1)
		}
		for range 5 {
			refusedUpgrade(h, user, l)
		}
		// Once the hub has noticed (a killed server is noticed through the
		// proxy's error), the server starts again.
		deadline := time.Now().Add(30 * time.Second)
		for {
			code, body, err := h.call(api, http.MethodPost, "/users/"+user+"/server", "", "")
			if err == nil && (code == http.StatusCreated || code == http.StatusAccepted) {
				break
			}
			if time.Now().After(deadline) {
				_, model, _ := h.call(api, http.MethodGet, "/users/"+user+"?include_stopped_servers=1", "", "")
				l.fail("chaos: restart %s: %d %s %v; the hub's model: %s", user, code, body, err, model)
				break
			}
			refusedUpgrade(h, user, l)
		}
		for time.Now().Before(deadline) {
			if _, body, err := h.call(api, http.MethodGet, "/users/"+user, "", ""); err == nil && strings.Contains(string(body), `"ready":true`) {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		l.victim.Store("")
	}
}

// refusedUpgrade aims a websocket at user's gone server: it must be
// refused promptly with a 503 and the connection closed, never hang.
func refusedUpgrade(h *childHub, user string, l *soakLoad) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, resp, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(h.public, "http")+"/user/"+user+"/api/kernels/k/channels", nil)
	switch {
	case err == nil:
		// The server was already back: not an upgrade to a gone server.
		c.CloseNow()
	case errors.Is(err, context.DeadlineExceeded):
		l.fail("websocket to %s's gone server hung for 10 s", user)
	case resp == nil || resp.StatusCode != http.StatusServiceUnavailable:
		l.fail("websocket to %s's gone server: %v", user, err)
	default:
		l.refusedWS.Add(1)
	}
}

// quiet measures the hub at rest once the clients hung up: the lowest
// open-file and goroutine counts over a window longer than the proxy
// keeps an idle upstream connection and the poller's interval, so
// background work in flight does not count.
func quiet(t *testing.T, sample func(time.Duration, *soakLoad) soakSample, l *soakLoad) soakSample {
	t.Helper()
	low := sample(0, l)
	for end := time.Now().Add(8 * time.Second); time.Now().Before(end); {
		time.Sleep(250 * time.Millisecond) // the sampling interval
		s := sample(0, l)
		low.fds, low.goroutines, low.rss = min(low.fds, s.fds), min(low.goroutines, s.goroutines), s.rss
	}
	return low
}

// soakVerdict holds the numbers the goals are judged on.
type soakVerdict struct {
	base, end, afterWarmup, last soakSample
}

// rssGrowth is the RSS growth from the first sample after the warm-up to
// the last one under load, in percent.
func (v soakVerdict) rssGrowth() float64 {
	if v.afterWarmup.rss == 0 {
		return 0
	}
	return 100 * float64(v.last.rss-v.afterWarmup.rss) / float64(v.afterWarmup.rss)
}

func (v soakVerdict) rssFlat() bool { return v.rssGrowth() < 10 }

// fdsBack: within ±5 % of the baseline (at least ±2: one stray pooled
// connection is not a leak).
func (v soakVerdict) fdsBack() bool {
	return abs(v.end.fds-v.base.fds) <= max(2, v.base.fds/20)
}

// goroutinesBack: no more than the baseline (plus a pooled connection's
// two).
func (v soakVerdict) goroutinesBack() bool { return v.end.goroutines <= v.base.goroutines+2 }

func abs(n int) int {
	if n < 0 {
		return -n
	}
	return n
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }
