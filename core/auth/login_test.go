package auth

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hubd/hubd/core/config"
	"github.com/hubd/hubd/core/identity"
	"github.com/hubd/hubd/internal/testutil"
)

// fakeChecker stands in for PAM: users in passwords log in with that
// password; the password "flood" blocks until release is closed, then fails.
type fakeChecker struct {
	passwords map[string]string
	release   chan struct{}

	mu                    sync.Mutex
	calls                 int
	inflight, maxInflight int
}

func newFakeChecker(passwords map[string]string) *fakeChecker {
	return &fakeChecker{passwords: passwords, release: make(chan struct{})}
}

func (f *fakeChecker) check(user, password string) (identity.External, error) {
	f.mu.Lock()
	f.calls++
	f.inflight++
	f.maxInflight = max(f.maxInflight, f.inflight)
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		f.inflight--
		f.mu.Unlock()
	}()
	if password == "flood" {
		<-f.release
	}
	if want, ok := f.passwords[user]; ok && want == password {
		return identity.External{Method: identity.MethodPAM, Subject: user, Name: user}, nil
	}
	return identity.External{}, newError(ErrInvalidCredentials, msgInvalidCredentials, errors.New("fake: wrong password"))
}

func (f *fakeChecker) stats() (calls, inflight, maxInflight int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls, f.inflight, f.maxInflight
}

// The policy tests use accounts every Debian system has: nobody (uid
// 65534, primary group nogroup) and daemon (uid 1).
func newFakeLogin(t *testing.T, cfg config.Auth, checker passwordChecker, clock *fakeClock) (*Login, *logBuffer) {
	t.Helper()
	logs := &logBuffer{}
	l, err := newLogin(cfg, newLogger(logs), checker, clock.Now)
	if err != nil {
		t.Fatal(err)
	}
	return l, logs
}

// TestNamesBeforePAM: hostile names (empty, huge, NUL, newlines, escapes, `..`,
// leading '-', uppercase) and impossible
// passwords are refused without PAM being asked, and logged harmlessly.
func TestNamesBeforePAM(t *testing.T) {
	huge := strings.Repeat("a", 1<<20)
	cases := []struct {
		name, username, password string
		kind                     error
	}{
		{"empty", "", "pw", ErrBadUsername},
		{"spaces only", "   ", "pw", ErrBadUsername},
		{"slash", "/", "pw", ErrBadUsername},
		{"path", "nobody/../root", "pw", ErrBadUsername},
		{"dotdot", "..", "pw", ErrBadUsername},
		{"leading dash", "-nobody", "pw", ErrBadUsername},
		{"option", "--help", "pw", ErrBadUsername},
		{"1 MB name", huge, "pw", ErrBadUsername},
		{"33 bytes", strings.Repeat("a", 33), "pw", ErrBadUsername},
		{"NUL", "nobody\x00root", "pw", ErrBadUsername},
		{"newline forging a log line", "nobody\ntime=x level=INFO msg=\"login accepted\" user=root", "pw", ErrBadUsername},
		{"ANSI escape", "\x1b[31mnobody", "pw", ErrBadUsername},
		{"inner space", "no body", "pw", ErrBadUsername},
		{"Cyrillic confusable", "nоbody", "pw", ErrBadUsername},
		{"DOMAIN backslash", `HOST\nobody`, "pw", ErrBadUsername},
		{"user@realm", "nobody@example.org", "pw", ErrBadUsername},
		{"root", "root", "pw", ErrNotAllowed},
		{"root uppercase", " ROOT ", "pw", ErrNotAllowed},
		{"empty password", "nobody", "", ErrInvalidCredentials},
		{"NUL in password", "nobody", "right\x00junk", ErrInvalidCredentials},
		{"password too long", "nobody", strings.Repeat("p", maxPasswordLen+1), ErrInvalidCredentials},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			fake := newFakeChecker(map[string]string{"nobody": "right", "root": "pw"})
			l, logs := newFakeLogin(t, testConfig(func(a *config.Auth) { a.AllowedGroup = "nogroup" }), fake, newFakeClock())
			_, err := l.Check(t.Context(), c.username, c.password, "192.0.2.1")
			wantKind(t, err, c.kind)
			if calls, _, _ := fake.stats(); calls != 0 {
				t.Errorf("PAM was asked %d times; must be refused before PAM", calls)
			}
			out := logs.String()
			if strings.Count(out, "\n") != 1 {
				t.Errorf("want exactly one log line, got:\n%s", out)
			}
			if len(out) > 1000 {
				t.Errorf("log line is %d bytes; hostile input must be cut", len(out))
			}
			if strings.ContainsAny(strings.TrimSuffix(out, "\n"), "\x00\x1b\n") {
				t.Errorf("raw control characters reached the log: %q", out)
			}
		})
	}
}

// TestNormalisedNamesReachPAM: what people type (case, surrounding spaces)
// is normalised, and that normalised name is what PAM sees.
func TestNormalisedNamesReachPAM(t *testing.T) {
	for _, typed := range []string{"nobody", "NoBody", "  nobody\t", "NOBODY"} {
		fake := newFakeChecker(map[string]string{"nobody": "right"})
		l, _ := newFakeLogin(t, testConfig(func(a *config.Auth) { a.AllowedGroup = "nogroup" }), fake, newFakeClock())
		u, err := l.Check(t.Context(), typed, "right", "192.0.2.1")
		if err != nil {
			t.Fatalf("%q: %v", typed, err)
		}
		if u.Name != "nobody" || u.Subject != "nobody" {
			t.Errorf("%q: got %+v, want nobody", typed, u)
		}
	}
}

// TestPolicyNeedsPassword: a user the policy would refuse gets the same
// answer as everybody else when the password is wrong.
func TestPolicyNeedsPassword(t *testing.T) {
	fake := newFakeChecker(map[string]string{"daemon": "right", "nobody": "right"})
	l, _ := newFakeLogin(t, testConfig(func(a *config.Auth) { a.AllowedGroup = "hubtest-auth-nosuchgroup" }), fake, newFakeClock())
	for _, u := range []string{"daemon", "nobody", "hubtest-auth-nosuchuser"} {
		_, err := l.Check(t.Context(), u, "wrong", "192.0.2.1")
		e := wantKind(t, err, ErrInvalidCredentials)
		if e.Public != msgInvalidCredentials {
			t.Errorf("%s: public message %q, want the generic one", u, e.Public)
		}
	}
}

// TestLoginThrottle: limits per address and per (user, address); a clean
// address still works for a user under attack; the window ends.
func TestLoginThrottle(t *testing.T) {
	clock := newFakeClock()
	fake := newFakeChecker(map[string]string{"nobody": "right"})
	cfg := testConfig(func(a *config.Auth) {
		a.AllowedGroup = "nogroup"
		a.FailuresPerUser = 3
		a.FailuresPerAddress = 5
		a.FailureWindow = config.Duration(time.Minute)
	})
	l, logs := newFakeLogin(t, cfg, fake, clock)
	ctx := t.Context()

	// Someone guesses at nobody's password from two addresses.
	for _, addr := range []string{"192.0.2.1", "192.0.2.1", "192.0.2.2"} {
		wantKind(t, loginErr(l.Check(ctx, "nobody", "guess", addr)), ErrInvalidCredentials)
	}
	clock.Advance(10 * time.Second)
	callsBefore, _, _ := fake.stats()
	for _, addr := range []string{"192.0.2.1", "192.0.2.2"} {
		e := wantKind(t, loginErr(l.Check(ctx, "nobody", "right", addr)), ErrThrottled)
		if e.RetryAfter <= 0 || e.RetryAfter > time.Minute || !strings.Contains(e.Public, "Try again in 50s") {
			t.Errorf("from %s: retry after %v, message %q; want 50s left of the minute", addr, e.RetryAfter, e.Public)
		}
	}
	if calls, _, _ := fake.stats(); calls != callsBefore {
		t.Errorf("throttled attempts reached PAM (%d calls)", calls-callsBefore)
	}
	if !strings.Contains(logs.String(), "login refused by the throttle") {
		t.Errorf("throttle refusals not logged:\n%s", logs)
	}
	// The real nobody, from a clean address, is not locked out ...
	if _, err := l.Check(ctx, "nobody", "right", "198.51.100.7"); err != nil {
		t.Fatalf("user under attack could not log in from a clean address: %v", err)
	}
	// ... and a clean address gets one try even with the user's limit hit,
	// after which it is marked too.
	wantKind(t, loginErr(l.Check(ctx, "nobody", "guess", "203.0.113.9")), ErrInvalidCredentials)
	wantKind(t, loginErr(l.Check(ctx, "nobody", "right", "203.0.113.9")), ErrThrottled)
	// Other users at the guessing addresses are unaffected (address limit not reached).
	wantKind(t, loginErr(l.Check(ctx, "daemon", "x", "192.0.2.1")), ErrInvalidCredentials)

	// The address limit: 192.0.2.1 has 3 failures; 2 more reach 5.
	wantKind(t, loginErr(l.Check(ctx, "hubtest-a", "x", "192.0.2.1")), ErrInvalidCredentials)
	wantKind(t, loginErr(l.Check(ctx, "hubtest-b", "x", "192.0.2.1")), ErrInvalidCredentials)
	wantKind(t, loginErr(l.Check(ctx, "hubtest-c", "x", "192.0.2.1")), ErrThrottled)

	// The window ends; nothing was locked for good.
	clock.Advance(time.Minute)
	if _, err := l.Check(ctx, "nobody", "right", "192.0.2.1"); err != nil {
		t.Fatalf("after the window: %v", err)
	}
}

func loginErr(_ identity.External, err error) error { return err }

// TestThrottleSuccessClearsPair: an address that logged in successfully is
// no longer marked for that user.
func TestThrottleSuccessClearsPair(t *testing.T) {
	clock := newFakeClock()
	th := newThrottle(clock.Now, time.Minute, 2, 100)
	th.fail("alice", "a1")
	th.fail("alice", "a2")
	if th.wait("alice", "a1") <= 0 || th.wait("alice", "a2") <= 0 {
		t.Fatal("user limit reached but failed addresses not held back")
	}
	th.succeed("alice", "a1")
	if w := th.wait("alice", "a1"); w != 0 {
		t.Errorf("after success from a1: wait %v, want 0", w)
	}
	if th.wait("alice", "a2") <= 0 {
		t.Error("success from a1 must not clear a2")
	}
}

// TestThrottleBoundedMemory: distinct keys beyond the cap evict the oldest;
// expired entries go first.
func TestThrottleBoundedMemory(t *testing.T) {
	clock := newFakeClock()
	th := newThrottle(clock.Now, time.Minute, 1000, 1000)
	th.maxEntries = 50
	for i := range 200 {
		th.fail(fmt.Sprintf("user%d", i), fmt.Sprintf("addr%d", i))
		clock.Advance(time.Second)
	}
	for name, m := range map[string]map[string]*counter{"users": th.users, "addrs": th.addrs, "pairs": th.pairs} {
		if len(m) > th.maxEntries {
			t.Errorf("%s: %d entries, cap %d", name, len(m), th.maxEntries)
		}
	}
	if _, ok := th.addrs["addr199"]; !ok {
		t.Error("the newest entry was evicted instead of the oldest")
	}
	// Everything older than the window is gone at the next prune.
	clock.Advance(2 * time.Minute)
	th.fail("fresh", "fresh")
	for i := range 60 {
		th.fail(fmt.Sprintf("later%d", i), "fresh")
	}
	if _, ok := th.users["user199"]; ok {
		t.Error("expired entry survived a prune")
	}
}

// TestPoolFairness: a flood from one address holds at most its share of
// the workers, and a login from another address goes through while the
// flood is still stuck in PAM.
func TestPoolFairness(t *testing.T) {
	fake := newFakeChecker(map[string]string{"nobody": "right"})
	cfg := testConfig(func(a *config.Auth) {
		a.AllowedGroup = "nogroup"
		a.PAMWorkers = 4
		a.FailuresPerUser = 1000
		a.FailuresPerAddress = 1000
	})
	l, _ := newFakeLogin(t, cfg, fake, newFakeClock())

	const flood = 50
	floodCtx, stopFlood := context.WithCancel(t.Context())
	defer stopFlood()
	var wg sync.WaitGroup
	var mu sync.Mutex
	results := map[error]int{}
	for i := range flood {
		wg.Go(func() {
			_, err := l.Check(floodCtx, fmt.Sprintf("hubtest-victim%d", i%3), "flood", "192.0.2.66:4711")
			mu.Lock()
			results[asError(err).Kind]++
			mu.Unlock()
		})
	}
	share := perAddrShare(cfg.PAMWorkers)
	testutil.WaitFor(t, "the flood to fill its share of the pool", func() bool {
		_, inflight, _ := fake.stats()
		return inflight == share
	})

	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second) // a hang guard, not a latency bound
	defer cancel()
	u, err := l.Check(ctx, "nobody", "right", "198.51.100.7")
	if err != nil {
		t.Fatalf("login from another address during the flood: %v", err)
	}
	if u.Name != "nobody" {
		t.Fatalf("got %+v", u)
	}
	mu.Lock()
	finished := len(results)
	mu.Unlock()
	if finished != 0 {
		t.Fatalf("flood attempts finished before the release (%v); the test proves nothing", results)
	}

	// An attempt from the flooding address that gives up while queued
	// gets ErrBusy with its context's error.
	waitCtx, giveUp := context.WithCancel(t.Context())
	late := make(chan error, 1)
	go func() {
		_, err := l.Check(waitCtx, "hubtest-late", "x", "192.0.2.66")
		late <- err
	}()
	testutil.WaitFor(t, "the late attempt to queue", func() bool { return l.pool.refs("192.0.2.66") == flood+1 })
	giveUp()
	err = <-late
	wantKind(t, err, ErrBusy)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("ErrBusy does not carry the context error: %v", err)
	}

	close(fake.release)
	wg.Wait()
	_, _, maxInflight := fake.stats()
	if maxInflight > share+1 {
		t.Errorf("at most %d flood attempts plus one login should have been in PAM at once, saw %d", share, maxInflight)
	}
	if results[ErrInvalidCredentials] != flood {
		t.Errorf("flood outcomes %v, want %d wrong passwords", results, flood)
	}
	testutil.WaitFor(t, "the pool to drain", func() bool { return len(l.pool.workers) == 0 && l.pool.tracked() == 0 })
}

// TestAbandonedAttemptStillCounts: hanging up while PAM runs does not
// dodge the throttle, and the worker stays busy until PAM returns.
func TestAbandonedAttemptStillCounts(t *testing.T) {
	fake := newFakeChecker(nil)
	cfg := testConfig(func(a *config.Auth) { a.FailuresPerAddress = 1 })
	l, logs := newFakeLogin(t, cfg, fake, newFakeClock())

	ctx, hangUp := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		_, err := l.Check(ctx, "hubtest-x", "flood", "192.0.2.5")
		done <- err
	}()
	testutil.WaitFor(t, "the attempt to reach PAM", func() bool { _, n, _ := fake.stats(); return n == 1 })
	hangUp()
	wantKind(t, <-done, ErrBusy)
	if len(l.pool.workers) != 1 {
		t.Errorf("worker released while PAM still runs (%d busy)", len(l.pool.workers))
	}
	close(fake.release)
	testutil.WaitFor(t, "the abandoned attempt to be counted", func() bool { return l.throttle.wait("hubtest-y", "192.0.2.5") > 0 })
	testutil.WaitFor(t, "the pool to drain", func() bool { return len(l.pool.workers) == 0 })
	if !strings.Contains(logs.String(), "outcome=\"wrong user name or password\"") {
		t.Errorf("the abandoned attempt's outcome was not logged:\n%s", logs)
	}
}

// refs is how many attempts from addr are running or queued.
func (p *pool) refs(addr string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if a := p.addrs[addr]; a != nil {
		return a.refs
	}
	return 0
}

// tracked is how many addresses have attempts running or queued.
func (p *pool) tracked() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.addrs)
}

func TestPerAddrShare(t *testing.T) {
	for workers, want := range map[int]int{1: 1, 2: 1, 3: 1, 4: 2, 16: 2} {
		if got := perAddrShare(workers); got != want {
			t.Errorf("perAddrShare(%d) = %d, want %d", workers, got, want)
		}
	}
}

func TestAddrKey(t *testing.T) {
	for in, want := range map[string]string{
		"192.0.2.1":                   "192.0.2.1",
		"192.0.2.1:5555":              "192.0.2.1",
		"::ffff:192.0.2.1":            "192.0.2.1",
		"[2001:db8:1:2:3:4:5:6]:443":  "2001:db8:1:2::/64",
		"2001:db8:1:2:ffff::1":        "2001:db8:1:2::/64",
		"fe80::1%eth0":                "fe80::/64",
		"":                            "",
		"@":                           "@",
		strings.Repeat("x", 100):      strings.Repeat("x", 64),
		"not-an-ip.example.org:12345": "not-an-ip.example.org",
	} {
		if got := addrKey(in); got != want {
			t.Errorf("addrKey(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestNewRefusesUnvalidatedConfig(t *testing.T) {
	for _, change := range []func(*config.Auth){
		func(a *config.Auth) { a.PAMWorkers = 0 },
		func(a *config.Auth) { a.FailuresPerUser = 0 },
		func(a *config.Auth) { a.FailuresPerAddress = 0 },
		func(a *config.Auth) { a.FailureWindow = 0 },
	} {
		if _, err := newLogin(testConfig(change), newLogger(&logBuffer{}), newFakeChecker(nil), time.Now); err == nil {
			t.Errorf("accepted %+v", testConfig(change))
		}
	}
}

func TestErrorWrapping(t *testing.T) {
	err := error(newError(ErrBusy, msgBusy, fmt.Errorf("waiting: %w", context.DeadlineExceeded)))
	if !errors.Is(err, ErrBusy) || !errors.Is(err, context.DeadlineExceeded) || errors.Is(err, ErrThrottled) {
		t.Errorf("errors.Is does not see kind and cause correctly: %v", err)
	}
	if got := err.Error(); got != "login not completed: waiting: context deadline exceeded" {
		t.Errorf("Error() = %q", got)
	}
	e := throttled(1500 * time.Millisecond)
	if e.RetryAfter != 2*time.Second || e.Public != "Too many failed logins. Try again in 2s." {
		t.Errorf("throttled(1.5s) = %v, %q", e.RetryAfter, e.Public)
	}
}

// TestWrongCredentialsPadded: a wrong-credential answer is held back to the
// typical duration of a successful check; other answers are not.
func TestWrongCredentialsPadded(t *testing.T) {
	fake := newFakeChecker(map[string]string{"nobody": "right"})
	l, _ := newFakeLogin(t, testConfig(func(a *config.Auth) { a.AllowedGroup = "nogroup" }), fake, newFakeClock())
	l.recordPAM(80 * time.Millisecond)
	l.recordPAM(0)
	if got := time.Duration(l.typicalPAM.Load()); got != 70*time.Millisecond {
		t.Errorf("moving average after 80ms and 0 = %v, want 70ms", got)
	}
	l.typicalPAM.Store(int64(time.Hour)) // far above what the fake takes
	_, pad, err := l.verify("hubtest-x", "wrong", "192.0.2.1")
	wantKind(t, err, ErrInvalidCredentials)
	if pad <= 59*time.Minute || pad > time.Hour {
		t.Errorf("wrong password padded by %v, want just under an hour", pad)
	}
	if _, pad, err := l.verify("nobody", "right", "192.0.2.2"); err != nil || pad != 0 {
		t.Errorf("right password: pad %v, err %v; want no padding", pad, err)
	}
	if _, pad, err := l.verify("daemon", "x", "192.0.2.3"); !errors.Is(err, ErrInvalidCredentials) || pad <= 0 {
		t.Errorf("a system account, wrong password: pad %v, err %v; want padded like any other", pad, err)
	}
}
