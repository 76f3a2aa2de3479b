package spawner

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"text/template"
	"time"

	"github.com/hubd/hubd/internal/testutil"
)

// The sudo tests use real accounts, a real sudoers drop-in and the real
// hubd binary. All names start with hubtest-sp so they cannot collide
// with other packages' tests or real accounts.
const (
	spGroup = "hubtest-sp"
	spAlice = "hubtest-sp-alice"
	spBob   = "hubtest-sp-bob"
	spCarol = "hubtest-sp-carol" // not in spGroup
	spSvc   = "hubtest-sp-svc"   // plays the unprivileged hub account
	spDir   = "/usr/local/libexec/hubtest-sp"
	spRule  = "/etc/sudoers.d/hubtest-sp"
)

// The test binary runs in other roles, selected by this variable:
// "server" is a tiny HTTP server (the stand-in single-user server of the
// local tests and the benchmark), "hub" runs TestSudo's hub-account branch as spSvc.
const (
	envRole   = "HUBD_SPAWNER_TEST_ROLE"
	envHelper = "HUBD_SPAWNER_TEST_HELPER"
)

func TestMain(m *testing.M) {
	if os.Getenv(envRole) == "server" {
		os.Exit(testutil.TinyServer())
	}
	code := m.Run()
	if err := host.teardown(); err != nil {
		fmt.Fprintln(os.Stderr, "spawner tests: cleanup:", err)
		code = 1
	}
	os.Exit(code)
}

// sudoHost is the host setup of the sudo tests, made once on first use
// (so that `-run Local` or the benchmark never touch sudoers) and undone
// by TestMain.
type sudoHost struct {
	once    sync.Once
	err     error
	used    bool
	h       testutil.Host
	helper  string // the real hubd, built from ./cmd/hubd
	testBin string // a copy of this test binary that spSvc can run
}

var host sudoHost

func (s *sudoHost) get(t testing.TB) *sudoHost {
	t.Helper()
	s.once.Do(func() { s.used = true; s.err = s.setup() })
	if s.err != nil {
		t.Fatalf("sudo test host setup: %v", s.err)
	}
	return s
}

func (s *sudoHost) setup() error {
	// Leftovers of an interrupted run: the drop-in first, so that no rule
	// points at a binary we are about to replace.
	if err := s.removeFiles(); err != nil {
		return err
	}
	for _, step := range []func() error{
		func() error { return s.h.Group(spGroup) },
		func() error { return s.h.User(spAlice, "", spGroup) },
		func() error { return s.h.User(spBob, "", spGroup) },
		func() error { return s.h.User(spCarol, "") },
		func() error { return s.h.SystemUser(spSvc) },
		s.installBinaries,
		s.installRule,
	} {
		if err := step(); err != nil {
			return err
		}
	}
	return nil
}

func (s *sudoHost) installBinaries() error {
	if err := os.MkdirAll(spDir, 0o755); err != nil {
		return err
	}
	if err := os.Chmod(spDir, 0o755); err != nil {
		return err
	}
	root, err := filepath.Abs("../..")
	if err != nil {
		return err
	}
	gobin, err := exec.LookPath("go")
	if err != nil {
		return fmt.Errorf("the sudo tests build ./cmd/hubd: %w", err)
	}
	s.helper = filepath.Join(spDir, "hubd")
	build := exec.Command(gobin, "build", "-o", s.helper, "./cmd/hubd")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		return fmt.Errorf("go build ./cmd/hubd: %w\n%s", err, out)
	}
	if err := os.Chmod(s.helper, 0o755); err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	s.testBin = filepath.Join(spDir, "spawner.test")
	return copyFile(self, s.testBin, 0o755)
}

// installRule renders the shipped template, validates a temporary copy
// with visudo and only then moves it into place: a broken drop-in would
// disable sudo on the machine.
func (s *sudoHost) installRule() error {
	tmpl, err := template.ParseFiles("../host/templates/sudoers-hubd")
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	// sudo's own PAM service: no SpawnPAMService (homes are not this test's subject).
	if err := tmpl.Execute(&buf, struct {
		Name, HubUser, Group, HelperPath, ConfigPath, SpawnPAMService string
		CreateAccounts                                                bool
	}{Name: "hubtest-sp", HubUser: spSvc, Group: spGroup, HelperPath: s.helper}); err != nil {
		return err
	}
	// sudo skips files with a '.' in their name in /etc/sudoers.d, so
	// the temporary copy is never read as configuration.
	tmp, err := os.CreateTemp("/etc/sudoers.d", ".hubtest-sp.*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(buf.Bytes()); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(0o440); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if out, err := exec.Command("visudo", "-cf", tmp.Name()).CombinedOutput(); err != nil {
		return fmt.Errorf("rendered sudoers template does not validate: %w\n%s\n%s", err, out, buf.String())
	}
	return os.Rename(tmp.Name(), spRule)
}

func (s *sudoHost) removeFiles() error {
	if err := os.Remove(spRule); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return os.RemoveAll(spDir)
}

func (s *sudoHost) teardown() error {
	if !s.used {
		return nil
	}
	err := s.removeFiles()
	s.h.Cleanup()
	return err
}

func copyFile(src, dst string, mode os.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// testLogger sends the spawner's logs to the test output.
func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// waitFor polls cond until it returns true or the deadline passes.
func waitFor(t *testing.T, what string, limit time.Duration, cond func() (bool, error)) {
	t.Helper()
	deadline := time.Now().Add(limit)
	var last error
	for {
		ok, err := cond()
		if ok {
			return
		}
		last = err
		if time.Now().After(deadline) {
			t.Fatalf("%s: not after %v (last error: %v)", what, limit, last)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// httpOK reports whether GET url answers 200, returning the body.
func httpGet(url string) (int, []byte, error) {
	c := http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

// sessionLeft lists processes (any uid, any start time, zombies excluded)
// still in session sid: after a stop there must be none.
func sessionLeft(t *testing.T, sid int) []int {
	t.Helper()
	return testutil.Procs(func(p testutil.Proc) bool {
		st, err := readStat(p.PID)
		return err == nil && st.SID == sid
	})
}

// stopOnCleanup makes sure a started server is stopped even when the
// test fails before its own Stop.
func stopOnCleanup(t *testing.T, sp Spawner, user string, st State) {
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := sp.Stop(ctx, user, st, 5*time.Second); err != nil {
			t.Errorf("cleanup stop of pid %d: %v", st.PID, err)
		}
	})
}

func mustContain(t *testing.T, what, s string, subs ...string) {
	t.Helper()
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			t.Errorf("%s does not contain %q:\n%s", what, sub, s)
		}
	}
}
