package spawner

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hubd/hubd/internal/testutil"
)

func localRequest(t testing.TB, port int, command ...string) Request {
	return Request{
		User:    "hubtest-sp-local",
		Command: command[:1],
		Args:    command[1:],
		Env: map[string]string{
			"JUPYTERHUB_SERVICE_URL": fmt.Sprintf("http://127.0.0.1:%d/user/hubtest-sp-local/", port),
			"JUPYTERHUB_API_TOKEN":   "local-secret-token",
		},
		Path:    systemPath,
		Port:    port,
		LogPath: filepath.Join(t.TempDir(), "server.log"),
	}
}

// TestLocalMocksu starts JupyterHub's own mock single-user server behind a
// shell that also leaves a background child in the session, and checks
// that stop leaves nothing behind.
func TestLocalMocksu(t *testing.T) {
	if _, err := os.Stat("/usr/lib/python3/dist-packages/jupyterhub/tests/mocksu.py"); err != nil {
		testutil.Require(t, false, "Debian's jupyterhub package is not installed: %v", err)
	}
	sp := NewLocal(LocalOptions{Logger: testLogger(t)})
	port, err := FreePort()
	if err != nil {
		t.Fatal(err)
	}
	r := localRequest(t, port, "/bin/sh", "-c", "sleep 600 & exec /usr/bin/python3 -m jupyterhub.tests.mocksu")
	ctx := t.Context()
	st, err := sp.Start(ctx, r)
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	stopOnCleanup(t, sp, r.User, st)
	if st.Kind != KindLocal || st.PID <= 0 || st.PIDStart == 0 {
		t.Fatalf("state %+v", st)
	}
	url := fmt.Sprintf("http://127.0.0.1:%d/user/hubtest-sp-local/echo", port)
	waitFor(t, "mocksu answers", 30*time.Second, func() (bool, error) {
		code, body, err := httpGet(url)
		return code == 200 && string(body) == "/user/hubtest-sp-local/echo", err
	})
	if s, err := sp.Poll(ctx, r.User, st); err != nil || !s.Running {
		t.Fatalf("poll while running: %+v, %v", s, err)
	}
	stat, err := readStat(st.PID)
	if err != nil {
		t.Fatal(err)
	}
	if stat.SID != st.PID || stat.PGID != st.PID {
		t.Errorf("server not in its own session: sid %d pgid %d, pid %d", stat.SID, stat.PGID, st.PID)
	}
	if left := sessionLeft(t, st.PID); len(left) < 2 {
		t.Fatalf("want the server and its background sleep in the session, got %v", left)
	}

	if err := sp.Stop(ctx, r.User, st, 10*time.Second); err != nil {
		t.Fatalf("stop: %v", err)
	}
	if s, err := sp.Poll(ctx, r.User, st); err != nil || s.Running {
		t.Errorf("poll after stop: %+v, %v", s, err)
	}
	if left := sessionLeft(t, st.PID); len(left) != 0 {
		t.Errorf("processes left in the server's session after stop: %v", left)
	}
	if _, err := os.Stat(fmt.Sprintf("/proc/%d", st.PID)); err == nil {
		t.Errorf("pid %d still exists after stop (a zombie the hub did not reap?)", st.PID)
	}
	if n := len(sp.children); n != 0 {
		t.Errorf("%d children still tracked after stop", n)
	}
	log, err := os.ReadFile(r.LogPath)
	if err != nil {
		t.Fatal(err)
	}
	mustContain(t, "server log", string(log), "Starting mock singleuser server")
	// Stopping again is "already gone", not an error.
	if err := sp.Stop(ctx, r.User, st, time.Second); err != nil {
		t.Errorf("second stop: %v", err)
	}
}

func TestLocalExitAtOnce(t *testing.T) {
	sp := NewLocal(LocalOptions{Logger: testLogger(t)})
	r := localRequest(t, 1, "/bin/sh", "-c", "echo local-boom >&2; exit 7")
	if s := exitOf(t, sp, r); s.ExitCode != 7 || !strings.Contains(s.Output, "local-boom") {
		t.Errorf("exit %+v: want exit code 7 and the output", s)
	}
}

// TestLocalPollReportsExit kills a server behind the spawner's back: Poll
// must notice and report the signal as exit status 128+9.
func TestLocalPollReportsExit(t *testing.T) {
	sp := NewLocal(LocalOptions{Logger: testLogger(t)})
	r := localRequest(t, 1, "/bin/sleep", "600")
	st, err := sp.Start(t.Context(), r)
	if err != nil {
		t.Fatal(err)
	}
	stopOnCleanup(t, sp, r.User, st)
	if err := syscall.Kill(st.PID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	var s Status
	waitFor(t, "poll reports the exit", 10*time.Second, func() (bool, error) {
		s, err = sp.Poll(t.Context(), r.User, st)
		return err == nil && !s.Running, err
	})
	if s.ExitCode != 128+int(syscall.SIGKILL) {
		t.Errorf("exit code %d, want %d", s.ExitCode, 128+int(syscall.SIGKILL))
	}
}

// TestLocalReclaim: a hub killed between starting a server and recording
// it leaves the process running; the next hub's spawner finds it by its
// environment and stops it with its session, and leaves the server of
// another name, and another hub's, alone.
func TestLocalReclaim(t *testing.T) {
	sp := NewLocal(LocalOptions{Logger: testLogger(t)})
	start := func(server, api string) State {
		r := localRequest(t, 1, "/bin/sh", "-c", "sleep 600 & exec sleep 600")
		r.Env["JUPYTERHUB_API_URL"], r.Env["JUPYTERHUB_SERVER_NAME"] = api, server
		st, err := sp.Start(t.Context(), r)
		if err != nil {
			t.Fatal(err)
		}
		stopOnCleanup(t, sp, r.User, st)
		return st
	}
	const api = "http://127.0.0.1:18081/hub/api"
	lost := start("", api)
	named := start("gpu", api)
	otherHub := start("", "http://127.0.0.1:18082/hub/api")
	testutil.WaitFor(t, "the servers to run their own command", func() bool {
		for _, st := range []State{lost, named, otherHub} {
			if !strings.Contains(string((testutil.Proc{PID: st.PID}).Read("cmdline")), "sleep") {
				return false
			}
		}
		return true
	})

	next := NewLocal(LocalOptions{Logger: testLogger(t)})
	o := Orphan{User: "hubtest-sp-local", Env: map[string]string{
		"JUPYTERHUB_API_URL": api, "JUPYTERHUB_SERVER_NAME": "",
		"JUPYTERHUB_SERVICE_URL": localRequest(t, 1, "x").Env["JUPYTERHUB_SERVICE_URL"],
	}}
	n, err := next.Reclaim(t.Context(), o, 5*time.Second)
	if err != nil || n != 1 {
		t.Fatalf("Reclaim = %d, %v; want the one lost server", n, err)
	}
	testutil.WaitFor(t, "the lost server and its session to end", func() bool {
		return len(sessionLeft(t, lost.PID)) == 0
	})
	for _, st := range []State{named, otherHub} {
		if s, err := sp.Poll(t.Context(), "hubtest-sp-local", st); err != nil || !s.Running {
			t.Errorf("a server Reclaim was not asked for (pid %d) is gone: %+v %v", st.PID, s, err)
		}
	}
	if n, err := next.Reclaim(t.Context(), o, 5*time.Second); err != nil || n != 0 {
		t.Errorf("a second Reclaim = %d, %v; want nothing left", n, err)
	}
	if _, err := next.Reclaim(t.Context(), Orphan{User: "hubtest-sp-local"}, time.Second); err == nil {
		t.Error("Reclaim with no environment to match must refuse, not stop every server")
	}
}

func TestLocalRefusesBadRequests(t *testing.T) {
	sp := NewLocal(LocalOptions{Logger: testLogger(t)})
	for name, mod := range map[string]func(*Request){
		"relative command": func(r *Request) { r.Command = []string{"sleep"} },
		"LD_PRELOAD":       func(r *Request) { r.Env["LD_PRELOAD"] = "/tmp/evil.so" },
		"BASH_ENV":         func(r *Request) { r.Env["BASH_ENV"] = "/tmp/evil.sh" },
		"dash user":        func(r *Request) { r.User = "-hubtest" },
		"no log":           func(r *Request) { r.LogPath = "" },
		"dir escapes home": func(r *Request) { r.WorkingDir = "~/../../etc" },
	} {
		t.Run(name, func(t *testing.T) {
			r := localRequest(t, 1, "/bin/sleep", "600")
			mod(&r)
			st, err := sp.Start(t.Context(), r)
			if err == nil {
				stopOnCleanup(t, sp, r.User, st)
				t.Fatal("started")
			}
			t.Log(err)
		})
	}
}

func TestParseStat(t *testing.T) {
	// A command name with spaces and parentheses must not shift fields.
	line := "4242 (a (b) c) S 1 4240 4241 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 1000 10 0 0 0 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0\n"
	st, err := parseStat([]byte(line))
	if err != nil {
		t.Fatal(err)
	}
	if st.State != 'S' || st.PGID != 4240 || st.SID != 4241 || st.StartTime != 987654 {
		t.Errorf("parsed %+v", st)
	}
	if _, err := parseStat([]byte("4242 (x) S 1")); err == nil {
		t.Error("short line parsed")
	}
}

func TestResolveDir(t *testing.T) {
	for in, want := range map[string]string{
		"": "/home/a", "~": "/home/a", "~/work": "/home/a/work", "~/x/../y": "/home/a/y", "/srv/data/": "/srv/data",
		"~/..": "", "~/../b": "", "relative": "", "~b": "",
	} {
		got, err := resolveDir(in, "/home/a")
		if got != want || (err != nil) != (want == "") {
			t.Errorf("resolveDir(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}

func TestBuildEnv(t *testing.T) {
	acct := account{uid: 1001, name: "a", home: "/home/a", shell: "/bin/bash"}
	env, err := buildEnv(map[string]string{"JUPYTERHUB_USER": "a", "HOME": "/tmp", "PATH": "/evil"}, "/usr/bin:/bin", acct)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"HOME=/home/a", "JUPYTERHUB_USER=a", "LOGNAME=a", "PATH=/usr/bin:/bin", "SHELL=/bin/bash", "USER=a"}
	if !slices.Equal(env, want) {
		t.Errorf("env %q, want %q", env, want)
	}
	for _, k := range []string{"LD_PRELOAD", "LD_LIBRARY_PATH", "BASH_ENV", "ENV", "A=B", ""} {
		if _, err := buildEnv(map[string]string{k: "x"}, "", acct); err == nil {
			t.Errorf("%q accepted", k)
		}
	}
}

// BenchmarkLocalStartStop measures spawn overhead: start a tiny Go HTTP
// server (this test binary in its server role), wait until it answers,
// stop it. The start grace is lowered to 10ms; the sudo spawner adds a
// sudo and helper exec per start and stop on top.
func BenchmarkLocalStartStop(b *testing.B) {
	self, err := os.Executable()
	if err != nil {
		b.Fatal(err)
	}
	sp := NewLocal(LocalOptions{})
	ctx := context.Background()
	for b.Loop() {
		port, err := FreePort()
		if err != nil {
			b.Fatal(err)
		}
		r := localRequest(b, port, self)
		r.Env[envRole] = "server"
		st, err := sp.Start(ctx, r)
		if err != nil {
			b.Fatal(err)
		}
		url := fmt.Sprintf("http://127.0.0.1:%d/", port)
		deadline := time.Now().Add(10 * time.Second)
		for {
			if code, _, _ := httpGet(url); code == 200 {
				break
			}
			if time.Now().After(deadline) {
				b.Fatal("tiny server never answered")
			}
			time.Sleep(time.Millisecond)
		}
		if err := sp.Stop(ctx, r.User, st, 5*time.Second); err != nil {
			b.Fatal(err)
		}
	}
}
