//go:build linux && cgo

package auth

// Tests against the real PAM stack. As root (CI), TestMain creates hubtest
// users and groups and installs hubtest-auth* service files in /etc/pam.d
// rendered from the shipped core/host/templates/pam.d-hubd; all of it is
// removed again when the tests end, pass or fail. A crashed run leaves
// them behind, and the next run resets them (the creation is idempotent).
//
// The same test binary doubles as a tiny PAM client (helper mode), which
// the tests re-execute as the unprivileged hub account under setpriv, and
// under pam_wrapper without root.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"text/template"
	"time"

	"github.com/hubd/hubd/core/config"
	"github.com/hubd/hubd/core/identity"
	"github.com/hubd/hubd/core/store/storetest"
	"github.com/hubd/hubd/internal/testutil"
)

const (
	testGroup  = "hubtest-auth"
	adminGroup = "hubtest-auth-admins"
	alice      = "hubtest-auth-alice" // member
	dan        = "hubtest-auth-dan"   // member and admin
	bob        = "hubtest-auth-bob"   // member, locked (usermod -L)
	eve        = "hubtest-auth-eve"   // member, expired (chage -E 0)
	carol      = "hubtest-auth-carol" // not a member
	nopw       = "hubtest-auth-nopw"  // member with an empty password hash
	svcUser    = "hubtest-auth-svc"   // the unprivileged hub account
	password   = "hubtest-Auth-pw-7"

	serviceMain    = "hubtest-auth"         // the shipped file as is
	serviceSlow    = "hubtest-auth-slow"    // plus pam_faildelay: each failure holds a worker 1 s
	serviceNologin = "hubtest-auth-nologin" // pam_nologin pointed at a test file
	serviceSession = "hubtest-auth-session" // plus a session stanza that always fails

	helperEnv = "HUBTEST_AUTH_HELPER"
)

var (
	// hostErr is why the root setup failed; root tests fail with it.
	hostErr error
	// nologinPath is the file serviceNologin's pam_nologin looks at.
	nologinPath string
)

func TestMain(m *testing.M) {
	if os.Getenv(helperEnv) != "" {
		os.Exit(helperMain())
	}
	if !testutil.IsRoot() {
		os.Exit(m.Run())
	}
	h := &testutil.Host{}
	dir, err := os.MkdirTemp("", "hubtest-auth")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	nologinPath = filepath.Join(dir, "nologin")
	hostErr = setupHost(h)
	code := m.Run()
	removePAMFiles()
	h.Cleanup()
	os.RemoveAll(dir)
	os.Exit(code)
}

func pamFile(service string) string { return filepath.Join("/etc/pam.d", service) }

func removePAMFiles() {
	for _, s := range []string{serviceMain, serviceSlow, serviceNologin, serviceSession} {
		os.Remove(pamFile(s))
	}
}

func runCmd(name string, args ...string) error {
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		return fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, out)
	}
	return nil
}

func setupHost(h *testutil.Host) error {
	// The shipped template, as `hubd setup` renders it for a host with
	// local accounts only (core/host tests the directory variants).
	tmpl, err := template.ParseFiles("../host/templates/pam.d-hubd")
	if err != nil {
		return err
	}
	var rendered bytes.Buffer
	if err := tmpl.Execute(&rendered, map[string]any{"Service": serviceMain, "Directory": nil, "ModuleArgs": "", "MinUID": 1000}); err != nil {
		return err
	}
	shipped := rendered.Bytes()
	nologinLine := regexp.MustCompile(`(?m)^(auth\s+requisite\s+pam_nologin\.so)$`)
	if !nologinLine.Match(shipped) {
		return errors.New("the shipped PAM file has no plain `auth requisite pam_nologin.so` line")
	}
	files := map[string]string{
		serviceMain:    string(shipped),
		serviceSlow:    "auth optional pam_faildelay.so delay=1000000\n" + string(shipped),
		serviceNologin: nologinLine.ReplaceAllString(string(shipped), "$1 file="+nologinPath),
		serviceSession: string(shipped) + "session required pam_deny.so\n",
	}
	steps := []func() error{
		func() error { return h.Group(testGroup) },
		func() error { return h.Group(adminGroup) },
		func() error { return h.User(alice, password, testGroup) },
		func() error { return h.User(dan, password, testGroup, adminGroup) },
		func() error { return h.User(bob, password, testGroup) },
		func() error { return runCmd("usermod", "--lock", bob) },
		func() error { return h.User(eve, password, testGroup) },
		func() error { return runCmd("chage", "--expiredate", "0", eve) },
		func() error { return h.User(carol, password) },
		func() error { return h.User(nopw, "", testGroup) },
		func() error { return h.SystemUser(svcUser) },
	}
	for service, text := range files {
		steps = append(steps, func() error { return os.WriteFile(pamFile(service), []byte(text), 0o644) })
	}
	for _, step := range steps {
		if err := step(); err != nil {
			return err
		}
	}
	return nil
}

func needHost(t testing.TB) {
	t.Helper()
	testutil.NeedRoot(t)
	if hostErr != nil {
		t.Fatalf("setting up test users and PAM services failed: %v", hostErr)
	}
}

// countingChecker counts the PAM transactions that were started.
type countingChecker struct {
	inner passwordChecker
	n     atomic.Int64
}

func (c *countingChecker) check(user, password string) (identity.External, error) {
	c.n.Add(1)
	return c.inner.check(user, password)
}

// realLogin is New with the test services and groups, its PAM calls
// counted, and its log shown when the test fails.
func realLogin(t *testing.T, service string, change func(*config.Auth)) (*Login, *countingChecker, *logBuffer) {
	t.Helper()
	cfg := testConfig(func(a *config.Auth) {
		a.PAMService = service
		a.AllowedGroup = testGroup
		a.AdminGroup = adminGroup
		if change != nil {
			change(a)
		}
	})
	logs := &logBuffer{}
	l, err := New(cfg, slog.New(slog.NewTextHandler(logs, nil)), nil)
	if err != nil {
		t.Fatal(err)
	}
	counter := &countingChecker{inner: l.checker}
	l.checker = counter
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("auth log:\n%s", logs)
		}
	})
	return l, counter, logs
}

// admitter is the identity step of a hub with l's configuration, on a
// fresh database: what the login form runs after a password check.
func admitter(t *testing.T, cfg config.Auth) *identity.Admitter {
	t.Helper()
	hub := config.Default()
	hub.Auth = cfg
	return identity.FromConfig(hub, storetest.New(t), identity.System{}, slog.New(slog.DiscardHandler))
}

// publicOf is the login page's sentence for a refusal from either step.
func publicOf(err error) string {
	if e, ok := errors.AsType[*Error](err); ok {
		return e.Public
	}
	if e, ok := errors.AsType[*identity.Error](err); ok {
		return e.Public
	}
	return ""
}

// TestLoginRealPAM: the password check through the real PAM stack, then
// the identity step, as the login form runs them.
func TestLoginRealPAM(t *testing.T) {
	needHost(t)
	l, counter, _ := realLogin(t, serviceMain, nil)
	admit := admitter(t, testConfig(func(a *config.Auth) { a.AllowedGroup, a.AdminGroup = testGroup, adminGroup }))
	cases := []struct {
		name, user, password string
		kind                 error
		public               string
		pam                  bool // whether PAM must have been asked
		admin                bool
	}{
		{name: "member, right password", user: alice, password: password, pam: true},
		{name: "typed in capitals with spaces", user: "  " + strings.ToUpper(alice) + " ", password: password, pam: true},
		{name: "admin group member", user: dan, password: password, pam: true, admin: true},
		{name: "wrong password", user: alice, password: "wrong", kind: ErrInvalidCredentials, public: msgInvalidCredentials, pam: true},
		{name: "unknown user", user: "hubtest-auth-nosuch", password: password, kind: ErrInvalidCredentials, public: msgInvalidCredentials, pam: true},
		{name: "locked, right password", user: bob, password: password, kind: ErrInvalidCredentials, public: msgInvalidCredentials, pam: true},
		{name: "expired, right password", user: eve, password: password, kind: ErrAccountUnavailable, public: msgAccountExpired, pam: true},
		{name: "not a member, right password", user: carol, password: password, kind: identity.ErrNotAllowed, public: `You are not a member of group "hubtest-auth". Ask an administrator to add you.`, pam: true},
		{name: "not a member, wrong password", user: carol, password: "wrong", kind: ErrInvalidCredentials, public: msgInvalidCredentials, pam: true},
		{name: "empty password hash, empty password", user: nopw, password: "", kind: ErrInvalidCredentials, public: msgInvalidCredentials},
		{name: "empty password hash, some password", user: nopw, password: "x", kind: ErrInvalidCredentials, public: msgInvalidCredentials, pam: true},
		{name: "root", user: "root", password: "x", kind: ErrNotAllowed, public: msgRootRefused},
		{name: "leading dash", user: "-" + alice, password: password, kind: ErrBadUsername, public: msgBadUsername},
		{name: "newline", user: alice + "\nroot", password: password, kind: ErrBadUsername, public: msgBadUsername},
		{name: "path", user: "../" + alice, password: password, kind: ErrBadUsername, public: msgBadUsername},
		{name: "control character", user: alice + "\x07", password: password, kind: ErrBadUsername, public: msgBadUsername},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := counter.n.Load()
			// A fresh address per case keeps the throttle out of the way.
			ext, err := l.Check(t.Context(), c.user, c.password, fmt.Sprintf("192.0.2.%d", i+1))
			var u identity.Account
			if err == nil {
				u, err = admit.Admit(t.Context(), ext)
			}
			if !errors.Is(err, c.kind) || (c.kind == nil) != (err == nil) {
				t.Fatalf("got %v, want %v", err, c.kind)
			}
			if got := publicOf(err); got != c.public {
				t.Errorf("public message %q, want %q", got, c.public)
			}
			if asked := counter.n.Load() > before; asked != c.pam {
				t.Errorf("PAM asked: %v, want %v", asked, c.pam)
			}
			if c.kind != nil {
				return
			}
			want, err := user.Lookup(strings.TrimSpace(strings.ToLower(c.user)))
			if err != nil {
				t.Fatal(err)
			}
			if u.Name != want.Username || fmt.Sprint(u.UID) != want.Uid || fmt.Sprint(u.GID) != want.Gid || u.Home != want.HomeDir || u.Admin != c.admin ||
				u.User.Name != want.Username || u.User.Method != identity.MethodPAM {
				t.Errorf("got %+v, want %s uid %s gid %s home %s admin %v", u, want.Username, want.Uid, want.Gid, want.HomeDir, c.admin)
			}
		})
	}
}

// TestPAMRefusesNullPassword: the account with an empty hash is refused by
// PAM itself, not only by Login's own empty-password check.
func TestPAMRefusesNullPassword(t *testing.T) {
	needHost(t)
	c := newPAMChecker(serviceMain, false, newLogger(&logBuffer{}))
	for _, pw := range []string{"", "x"} {
		_, err := c.check(nopw, pw)
		wantKind(t, err, ErrInvalidCredentials)
	}
}

// TestNologin: while the nologin file exists the right password does not
// help, and the page says logins are disabled rather than "wrong password".
func TestNologin(t *testing.T) {
	needHost(t)
	l, _, logs := realLogin(t, serviceNologin, nil)
	if err := os.WriteFile(nologinPath, []byte("hubtest maintenance until noon\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := l.Check(t.Context(), alice, password, "192.0.2.1")
	if e := wantKind(t, err, ErrAccountUnavailable); e.Public != msgLoginsDisabled {
		t.Errorf("public message %q, want %q", e.Public, msgLoginsDisabled)
	}
	if !strings.Contains(logs.String(), "hubtest maintenance until noon") {
		t.Errorf("the nologin text is not in the log:\n%s", logs)
	}
	if err := os.Remove(nologinPath); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Check(t.Context(), alice, password, "192.0.2.1"); err != nil {
		t.Fatalf("without the nologin file: %v", err)
	}
}

// TestOpenSessions: with auth.open_sessions a failing session stack is a
// warning, not a failed login.
func TestOpenSessions(t *testing.T) {
	needHost(t)
	for _, c := range []struct {
		service string
		warn    bool
	}{{serviceMain, false}, {serviceSession, true}} {
		l, _, logs := realLogin(t, c.service, func(a *config.Auth) { a.OpenSessions = true })
		if _, err := l.Check(t.Context(), alice, password, "192.0.2.1"); err != nil {
			t.Fatalf("%s: %v", c.service, err)
		}
		if warned := strings.Contains(logs.String(), "level=WARN msg=\"PAM open_session failed"); warned != c.warn {
			t.Errorf("%s: open_session warning logged: %v, want %v\n%s", c.service, warned, c.warn, logs)
		}
	}
}

// helperResult is what the test binary prints in helper mode.
type helperResult struct {
	EUID          int
	Kind          string // "ok" or the error kind
	Public, Err   string
	CanReadShadow bool
	Why           string
}

// helperMain checks one password with PAM: service and user from the
// environment, password on stdin, result as JSON on stdout.
func helperMain() int {
	pw, err := io.ReadAll(os.Stdin)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	c := newPAMChecker(os.Getenv("HUBTEST_AUTH_SERVICE"), false, slog.New(slog.NewTextHandler(os.Stderr, nil)))
	r := helperResult{EUID: os.Geteuid(), Kind: "ok"}
	if _, err := c.check(os.Getenv("HUBTEST_AUTH_USER"), string(pw)); err != nil {
		e := asError(err)
		r.Kind, r.Public, r.Err = e.Kind.Error(), e.Public, e.Error()
	}
	r.CanReadShadow, r.Why = CanReadShadow()
	if err := json.NewEncoder(os.Stdout).Encode(r); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	return 0
}

// runHelper runs binary in helper mode, behind the prefix command (setpriv)
// and with extra environment.
func runHelper(t *testing.T, prefix []string, binary string, env []string, service, user, pw string) helperResult {
	t.Helper()
	args := append(append([]string{}, prefix...), binary)
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Dir = filepath.Dir(binary)
	cmd.Env = append(os.Environ(), append(env, helperEnv+"=1", "HUBTEST_AUTH_SERVICE="+service, "HUBTEST_AUTH_USER="+user)...)
	cmd.Stdin = strings.NewReader(pw)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%v: %v\n%s", args, err, stderr.String())
	}
	var r helperResult
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatalf("%v: %v in %q\n%s", args, err, out, stderr.String())
	}
	return r
}

// copyTestBinary puts this test binary where another user can run it.
func copyTestBinary(t *testing.T) string {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	dir, err := os.MkdirTemp("", "hubtest-auth-bin")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "auth.test")
	if err := os.WriteFile(bin, data, 0o755); err != nil {
		t.Fatal(err)
	}
	return bin
}

// TestHubAccountNeedsShadow runs PAM as an unprivileged hub account: with
// the supplementary group shadow it checks other users' passwords; without
// it the error says exactly that and how to fix it, instead of looking
// like a wrong password.
func TestHubAccountNeedsShadow(t *testing.T) {
	needHost(t)
	svc, err := user.Lookup(svcUser)
	if err != nil {
		t.Fatal(err)
	}
	bin := copyTestBinary(t)
	as := func(groups string) []string {
		return []string{"setpriv", "--reuid=" + svcUser, "--regid=" + svcUser, groups, "--"}
	}
	withShadow, withoutShadow := as("--groups=shadow"), as("--clear-groups")
	fix := "usermod -aG shadow " + svcUser

	r := runHelper(t, withShadow, bin, nil, serviceMain, alice, password)
	if fmt.Sprint(r.EUID) != svc.Uid || r.Kind != "ok" || !r.CanReadShadow {
		t.Errorf("in group shadow, right password: %+v; want uid %s, ok, can read shadow", r, svc.Uid)
	}
	r = runHelper(t, withShadow, bin, nil, serviceMain, alice, "wrong")
	if r.Kind != ErrInvalidCredentials.Error() {
		t.Errorf("in group shadow, wrong password: %+v", r)
	}
	for _, pw := range []string{password, "wrong"} {
		r = runHelper(t, withoutShadow, bin, nil, serviceMain, alice, pw)
		if fmt.Sprint(r.EUID) != svc.Uid || r.Kind != ErrCannotVerify.Error() || r.Public != msgCannotVerify {
			t.Errorf("outside shadow, password %q: %+v; want %q", pw, r, ErrCannotVerify)
		}
		if !strings.Contains(r.Err, fix) || r.CanReadShadow || !strings.Contains(r.Why, fix) {
			t.Errorf("outside shadow: the log text %q / %q does not name %q", r.Err, r.Why, fix)
		}
	}
}

// TestPAMWrapper exercises the cgo PAM code (conversation, error mapping)
// without root, against pam_wrapper's fake user database.
func TestPAMWrapper(t *testing.T) {
	module := func(pattern string) string {
		m, _ := filepath.Glob(pattern)
		if len(m) == 0 {
			testutil.Require(t, false, "%s not installed (apt-get install libpam-wrapper)", pattern)
		}
		return m[0]
	}
	matrix := module("/usr/lib/*/pam_wrapper/pam_matrix.so")
	const service = "hubtest-auth-wrap"
	dir := t.TempDir()
	services := filepath.Join(dir, "services")
	passdb := filepath.Join(dir, "passdb")
	if err := os.Mkdir(services, 0o755); err != nil {
		t.Fatal(err)
	}
	// user:password:the one service the account may use
	db := "hubtest-wrap-alice:secret-a:" + service + "\nhubtest-wrap-bob:secret-b:elsewhere\n"
	stack := fmt.Sprintf("auth required %[1]s passdb=%[2]s\naccount required %[1]s passdb=%[2]s\n", matrix, passdb)
	for path, text := range map[string]string{
		passdb:                           db,
		filepath.Join(services, service): stack,
		filepath.Join(services, "other"): "auth required " + module("/usr/lib/*/security/pam_deny.so") + "\n",
	} {
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	env := []string{"LD_PRELOAD=libpam_wrapper.so", "PAM_WRAPPER=1", "PAM_WRAPPER_SERVICE_DIR=" + services}
	for _, c := range []struct {
		user, pw string
		kind     error
		public   string
	}{
		{"hubtest-wrap-alice", "secret-a", nil, ""},
		{"hubtest-wrap-alice", "wrong", ErrInvalidCredentials, msgInvalidCredentials},
		{"hubtest-wrap-nosuch", "secret-a", ErrInvalidCredentials, msgInvalidCredentials},
		{"hubtest-wrap-bob", "secret-b", ErrAccountUnavailable, msgAccountRefused},
	} {
		r := runHelper(t, nil, self, env, service, c.user, c.pw)
		want := "ok"
		if c.kind != nil {
			want = c.kind.Error()
		}
		if r.Kind != want || r.Public != c.public {
			t.Errorf("%s/%s: got %+v, want %q %q", c.user, c.pw, r, want, c.public)
		}
	}
}

// TestFloodRealPAM: 50 concurrent wrong passwords, each holding a PAM
// worker for a second (pam_faildelay), do not keep another person's
// correct login out; hubd's throttle never locks the Unix account.
func TestFloodRealPAM(t *testing.T) {
	needHost(t)
	const flood = 50

	t.Run("pool", func(t *testing.T) {
		l, _, _ := realLogin(t, serviceSlow, func(a *config.Auth) {
			a.PAMWorkers = 4
			a.FailuresPerUser, a.FailuresPerAddress = 1000, 1000 // the pool alone must hold
		})
		floodCtx, stopFlood := context.WithCancel(t.Context())
		var wg sync.WaitGroup
		var finished atomic.Int64
		errs := make(chan error, flood)
		for range flood {
			wg.Go(func() {
				_, err := l.Check(floodCtx, carol, "wrong", "192.0.2.66")
				finished.Add(1)
				errs <- err
			})
		}
		testutil.WaitFor(t, "the flood to occupy its share of the workers", func() bool {
			return l.pool.refs("192.0.2.66") == flood && len(l.pool.workers) == perAddrShare(4)
		})
		ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second) // hang guard only
		defer cancel()
		u, err := l.Check(ctx, alice, password, "198.51.100.7")
		if err != nil || u.Name != alice || u.Method != identity.MethodPAM {
			t.Errorf("correct login during the flood: %+v, %v", u, err)
		}
		if n := finished.Load(); n == flood {
			t.Errorf("the whole flood was over before the correct login returned; nothing was proven")
		}
		stopFlood()
		wg.Wait()
		close(errs)
		for err := range errs {
			if !errors.Is(err, ErrInvalidCredentials) && !errors.Is(err, ErrBusy) {
				t.Errorf("flood attempt: %v", err)
			}
		}
		// Abandoned attempts finish their PAM call; wait so cleanup does
		// not remove users under a running transaction.
		testutil.WaitFor(t, "the pool to drain", func() bool { return len(l.pool.workers) == 0 })
	})

	t.Run("throttle", func(t *testing.T) {
		l, _, _ := realLogin(t, serviceMain, nil) // default limits: 5 per user, 20 per address
		var wg sync.WaitGroup
		var throttledN, wrong atomic.Int64
		for i := range flood {
			wg.Go(func() {
				_, err := l.Check(t.Context(), alice, "guess", fmt.Sprintf("192.0.2.%d", 10+i%5))
				switch {
				case errors.Is(err, ErrThrottled):
					throttledN.Add(1)
				case errors.Is(err, ErrInvalidCredentials):
					wrong.Add(1)
				default:
					t.Errorf("guess: %v", err)
				}
			})
		}
		wg.Wait()
		if throttledN.Load() < flood/2 {
			t.Errorf("%d guesses reached PAM and only %d were throttled; want most of them throttled", wrong.Load(), throttledN.Load())
		}
		_, err := l.Check(t.Context(), alice, password, "192.0.2.10")
		wantKind(t, err, ErrThrottled)
		if _, err := l.Check(t.Context(), alice, password, "198.51.100.7"); err != nil {
			t.Errorf("alice from a clean address after the guessing: %v", err)
		}
		out, err := exec.Command("passwd", "--status", alice).Output()
		if err != nil {
			t.Fatal(err)
		}
		if f := strings.Fields(string(out)); len(f) < 2 || f[1] != "P" {
			t.Errorf("passwd --status %s = %q; the Unix account must stay usable (P)", alice, out)
		}
	})
}

// BenchmarkLoginPAM: correct-password logins through the real pam_unix
// stack, as many at once as the pool allows.
func BenchmarkLoginPAM(b *testing.B) {
	needHost(b)
	l, err := New(testConfig(func(a *config.Auth) {
		a.PAMService = serviceMain
		a.AllowedGroup = testGroup
	}), slog.New(slog.DiscardHandler), nil)
	if err != nil {
		b.Fatal(err)
	}
	var client atomic.Int64
	b.RunParallel(func(pb *testing.PB) {
		addr := fmt.Sprintf("192.0.2.%d", client.Add(1)) // one address per client: the per-address share is not the subject
		for pb.Next() {
			if _, err := l.Check(context.Background(), alice, password, addr); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "logins/s")
}
