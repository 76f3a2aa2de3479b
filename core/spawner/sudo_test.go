package spawner

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hubd/hubd/internal/testutil"
)

// TestSudo sets up the host (accounts, the real hubd as helper, the
// shipped sudoers template) and runs itself again as the unprivileged hub
// account, where it takes the sudoAsHub branch: as in production, the
// spawner code never runs as root here.
func TestSudo(t *testing.T) {
	if os.Getenv(envRole) == "hub" {
		sudoAsHub(t)
		return
	}
	testutil.NeedRoot(t)
	hs := host.get(t)
	cmd := exec.Command("setpriv", "--reuid", spSvc, "--regid", spSvc, "--init-groups", "--",
		hs.testBin, "-test.run", "^TestSudo$", "-test.v", "-test.count=1", "-test.timeout=5m")
	cmd.Dir = "/"
	cmd.Env = []string{
		"PATH=" + systemPath, "HOME=/var/lib/" + spSvc, "LANG=C.UTF-8", "TMPDIR=/tmp",
		envRole + "=hub", envHelper + "=" + hs.helper,
	}
	out, err := cmd.CombinedOutput()
	t.Logf("as %s:\n%s", spSvc, out)
	if err != nil {
		t.Fatalf("sudo tests as %s failed: %v", spSvc, err)
	}
	if !bytes.Contains(out, []byte("--- PASS: TestSudo/JupyterhubSingleuser")) {
		t.Fatal("the hub-account run did not run its tests")
	}
}

// sudoAsHub is TestSudo's run as spSvc.
func sudoAsHub(t *testing.T) {
	if os.Getuid() == 0 {
		t.Fatal("the hub-account run must not be root")
	}
	sp := NewSudo(SudoOptions{HelperPath: os.Getenv(envHelper), Group: spGroup, Logger: testLogger(t)})
	t.Run("JupyterhubSingleuser", func(t *testing.T) { testSingleuser(t, sp) })
	t.Run("NonMember", func(t *testing.T) {
		_, err := sp.Start(t.Context(), sleeper(t, spCarol))
		se := startError(t, err)
		mustContain(t, "error", se.Reason, "sudo refused", "sudoers", spGroup, "hubd doctor")
		mustContain(t, "output", se.Output, "sudo: a password is required")
	})
	t.Run("HostileNamesNeverReachSudo", func(t *testing.T) {
		dir := t.TempDir()
		marker := filepath.Join(dir, "sudo-ran")
		fake := filepath.Join(dir, "sudo")
		if err := os.WriteFile(fake, []byte("#!/bin/sh\ntouch "+marker+"\n"), 0o755); err != nil {
			t.Fatal(err)
		}
		fakeSudo := NewSudo(SudoOptions{SudoPath: fake, HelperPath: os.Getenv(envHelper), Logger: testLogger(t)})
		for _, name := range []string{"-hubtest-sp-alice", "--user=root", "hubtest-sp-alice root", "#0", ""} {
			_, err := fakeSudo.Start(t.Context(), sleeper(t, name))
			mustContain(t, "error", startError(t, err).Reason, "refusing to spawn")
		}
		if _, err := os.Stat(marker); err == nil {
			t.Error("sudo was run for a hostile user name")
		}
	})
	t.Run("ExitsAtOnce", func(t *testing.T) {
		r := sleeper(t, spAlice)
		r.Command, r.Args = []string{"/bin/false"}, nil
		if s := exitOf(t, sp, r); s.ExitCode != 1 {
			t.Errorf("/bin/false: %+v", s)
		}
		r.Command, r.Args = []string{"/bin/sh"}, []string{"-c", "echo sudo-boom-$(id -un) >&2; exit 3"}
		s := exitOf(t, sp, r)
		if s.ExitCode != 3 {
			t.Errorf("exit code %d, want 3", s.ExitCode)
		}
		mustContain(t, "output", s.Output, "sudo-boom-"+spAlice)
		mustContain(t, "error", s.Error(), "exit status 3")
	})
	t.Run("NeverListensStillStarts", func(t *testing.T) {
		r := sleeper(t, spAlice)
		st := start(t, sp, r)
		if s, err := sp.Poll(t.Context(), spAlice, st); err != nil || !s.Running {
			t.Fatalf("poll: %+v %v", s, err)
		}
		stopAndCheck(t, sp, spAlice, st)
	})
	t.Run("StopKillsProcessGroup", func(t *testing.T) {
		r := sleeper(t, spAlice)
		r.Command, r.Args = []string{"/bin/sh"}, []string{"-c", "sleep 600 & sleep 600 & wait"}
		st := start(t, sp, r)
		waitFor(t, "both children started", 10*time.Second, func() (bool, error) {
			return len(sessionLeft(t, st.PID)) == 3, nil
		})
		stopAndCheck(t, sp, spAlice, st)
	})
	t.Run("ReclaimUnrecorded", func(t *testing.T) {
		// A hub killed mid-start: the next one finds the member's server
		// by its environment, through the helper, and stops it with its
		// session; another member's server of the same environment (a
		// name that is not theirs) is out of the helper's reach.
		api := "http://127.0.0.1:18091/hub/api"
		r := sleeper(t, spAlice)
		r.Command, r.Args = []string{"/bin/sh"}, []string{"-c", "sleep 600 & exec sleep 600"}
		r.Env["JUPYTERHUB_API_URL"], r.Env["JUPYTERHUB_USER"] = api, spAlice
		lost := start(t, sp, r)
		rb := sleeper(t, spBob)
		rb.Env["JUPYTERHUB_API_URL"], rb.Env["JUPYTERHUB_USER"] = api, spAlice
		bob := start(t, sp, rb)
		waitFor(t, "the server runs its command", 10*time.Second, func() (bool, error) {
			return len(sessionLeft(t, lost.PID)) == 2, nil
		})
		o := Orphan{User: spAlice, Env: map[string]string{"JUPYTERHUB_API_URL": api, "JUPYTERHUB_USER": spAlice}}
		n, err := sp.Reclaim(t.Context(), o, 5*time.Second)
		if err != nil || n != 1 {
			t.Fatalf("Reclaim = %d, %v; want alice's one server", n, err)
		}
		if left := sessionLeft(t, lost.PID); len(left) != 0 {
			t.Errorf("processes of the reclaimed server's session left: %v", left)
		}
		if s, err := sp.Poll(t.Context(), spBob, bob); err != nil || !s.Running {
			t.Errorf("bob's server: %+v %v", s, err)
		}
		// The helper refuses to match without the member's own name.
		o.Env["JUPYTERHUB_USER"] = spBob
		if _, err := sp.Reclaim(t.Context(), o, time.Second); err == nil || !strings.Contains(err.Error(), "JUPYTERHUB_USER") {
			t.Errorf("Reclaim naming another user: %v", err)
		}
	})
	t.Run("StartTimeMismatchNeverSignalled", func(t *testing.T) {
		st := start(t, sp, sleeper(t, spAlice))
		wrong := st
		wrong.PIDStart++
		if err := sp.Stop(t.Context(), spAlice, wrong, time.Second); err != nil {
			t.Errorf("stop with a wrong start time: %v", err)
		}
		// The helper itself refuses too, not only the hub-side check.
		reply := rawHelper(t, sp, spAlice, helperRequest{Action: actionStop, PID: wrong.PID, PIDStart: wrong.PIDStart, TimeoutMS: 1000})
		if !reply.OK || reply.Signalled {
			t.Errorf("helper stop with a wrong start time: %+v", reply)
		}
		if s, err := sp.Poll(t.Context(), spAlice, st); err != nil || !s.Running {
			t.Fatalf("server was signalled: %+v %v", s, err)
		}
		stopAndCheck(t, sp, spAlice, st)
	})
	t.Run("OtherUsersPidNeverSignalled", func(t *testing.T) {
		bobs := start(t, sp, sleeper(t, spBob))
		if err := sp.Stop(t.Context(), spAlice, bobs, time.Second); err != nil {
			t.Errorf("stop of bob's pid as alice: %v", err)
		}
		reply := rawHelper(t, sp, spAlice, helperRequest{Action: actionStop, PID: bobs.PID, PIDStart: bobs.PIDStart, TimeoutMS: 1000})
		if !reply.OK || reply.Signalled || !strings.Contains(reply.Reason, "another user") {
			t.Errorf("helper stop of bob's pid as alice: %+v", reply)
		}
		if s, err := sp.Poll(t.Context(), spBob, bobs); err != nil || !s.Running {
			t.Fatalf("bob's server was signalled: %+v %v", s, err)
		}
		if s, err := sp.Poll(t.Context(), spAlice, bobs); err != nil || s.Running {
			t.Errorf("poll as alice of bob's server: %+v %v", s, err)
		}
		stopAndCheck(t, sp, spBob, bobs)
	})
	t.Run("StatusOfDeadPid", func(t *testing.T) {
		st := start(t, sp, sleeper(t, spAlice))
		stopAndCheck(t, sp, spAlice, st)
		reply := rawHelper(t, sp, spAlice, helperRequest{Action: actionStatus, PID: st.PID, PIDStart: st.PIDStart})
		if !reply.OK || reply.Running {
			t.Errorf("status of a stopped server: %+v", reply)
		}
		// Stopping again is "already gone": success.
		if err := sp.Stop(t.Context(), spAlice, st, time.Second); err != nil {
			t.Errorf("second stop: %v", err)
		}
	})
	t.Run("LoaderVariablesRefused", func(t *testing.T) {
		for _, k := range []string{"LD_PRELOAD", "LD_LIBRARY_PATH", "BASH_ENV"} {
			r := sleeper(t, spAlice)
			r.Env[k] = "/tmp/evil"
			_, err := sp.Start(t.Context(), r)
			mustContain(t, "error", startError(t, err).Reason, "spawn helper refused", k)
		}
	})
	t.Run("HelperChecksUser", func(t *testing.T) {
		// A request meant for bob, delivered to alice's helper.
		reply := rawHelper(t, sp, spAlice, helperRequest{Action: actionStatus, User: spBob, PID: 1, PIDStart: 1})
		if reply.OK || !strings.Contains(reply.Error, "runs as") {
			t.Errorf("reply %+v", reply)
		}
	})
}

// testSingleuser starts the real jupyterhub-singleuser as alice through
// sudo, against a fake hub API (the version probe is all it needs to
// start; the real end-to-end test lives with the hub).
func testSingleuser(t *testing.T, sp *Sudo) {
	r, prefix := singleuserRequest(t, spAlice)
	token := r.Env["JUPYTERHUB_API_TOKEN"]
	st := start(t, sp, r)
	waitSingleuser(t, r, prefix)

	alice, err := user.Lookup(spAlice)
	if err != nil {
		t.Fatal(err)
	}
	if uid, err := readUID(st.PID); err != nil || strconv.Itoa(uid) != alice.Uid {
		t.Errorf("server uid %d (%v), want alice's %s", uid, err, alice.Uid)
	}
	stat, err := readStat(st.PID)
	if err != nil {
		t.Fatal(err)
	}
	if stat.SID != st.PID || stat.PGID != st.PID {
		t.Errorf("server not in its own session: sid %d pgid %d, pid %d", stat.SID, stat.PGID, st.PID)
	}
	if pids := testutil.Procs(testutil.WithCmdline(token)); len(pids) > 0 {
		t.Errorf("the API token is on the command line of pids %v", pids)
	}
	if s, err := sp.Poll(t.Context(), spAlice, st); err != nil || !s.Running {
		t.Errorf("poll: %+v %v", s, err)
	}

	stopAndCheck(t, sp, spAlice, st)
	logText, err := os.ReadFile(r.LogPath)
	if err != nil {
		t.Fatal(err)
	}
	// The helper's diagnostics and the server's own output; never the token.
	mustContain(t, "server log", string(logText), "component=spawn-helper", "server started", "jupyterhub-singleuser", prefix)
	if strings.Contains(string(logText), token) {
		t.Error("the API token was written to the server log")
	}
	if fi, err := os.Stat(r.LogPath); err != nil || fi.Mode().Perm() != 0o640 {
		t.Errorf("log file mode %v (%v), want 0640", fi.Mode(), err)
	}
}

// sleeper is a request for a server that starts and never listens.
func sleeper(t *testing.T, userName string) Request {
	return Request{
		User:    userName,
		Command: []string{"/bin/sleep"},
		Args:    []string{"600"},
		Env:     map[string]string{"JUPYTERHUB_API_TOKEN": randomHex(t)},
		Path:    systemPath,
		LogPath: filepath.Join(t.TempDir(), "server.log"),
	}
}

func start(t *testing.T, sp *Sudo, r Request) State {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	st, err := sp.Start(ctx, r)
	if err != nil {
		t.Fatalf("start as %s: %v", r.User, err)
	}
	stopOnCleanup(t, sp, r.User, st)
	if st.Kind != KindSudo || st.PID <= 0 || st.PIDStart == 0 {
		t.Fatalf("state %+v", st)
	}
	return st
}

// stopAndCheck stops a server and checks that it and everything in its
// session are gone.
func stopAndCheck(t *testing.T, sp *Sudo, userName string, st State) {
	t.Helper()
	if err := sp.Stop(t.Context(), userName, st, 10*time.Second); err != nil {
		t.Fatalf("stop: %v", err)
	}
	if s, err := sp.Poll(t.Context(), userName, st); err != nil || s.Running {
		t.Errorf("poll after stop: %+v %v", s, err)
	}
	if left := sessionLeft(t, st.PID); len(left) > 0 {
		t.Errorf("processes left in the session of pid %d after stop: %v", st.PID, left)
	}
}

func startError(t *testing.T, err error) *StartError {
	t.Helper()
	var se *StartError
	if !errors.As(err, &se) {
		t.Fatalf("want *StartError, got %v", err)
	}
	t.Logf("StartError: %v\noutput:\n%s", se, se.Output)
	return se
}

// exitOf starts r, which must exit at once, and returns how it ended as
// the hub learns it: through the spawner's watch.
func exitOf(t *testing.T, sp Spawner, r Request) Status {
	t.Helper()
	st, err := sp.Start(t.Context(), r)
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	exited, stop := sp.(Watcher).Watch(st)
	defer stop()
	if exited == nil {
		t.Fatal("the spawner does not watch the server it just started")
	}
	select {
	case s := <-exited:
		t.Logf("exited: %s\noutput:\n%s", s.Error(), s.Output)
		return s
	case <-time.After(30 * time.Second):
		t.Fatal("no exit reported for a server that exits at once")
	}
	return Status{}
}

// rawHelper sends a request straight to the helper through sudo,
// bypassing the hub-side checks of Stop, to test the helper's own.
func rawHelper(t *testing.T, sp *Sudo, userName string, req helperRequest) helperReply {
	t.Helper()
	req.V = protocolVersion
	if req.User == "" {
		req.User = userName
	}
	var diag bytes.Buffer
	reply, err := sp.call(t.Context(), userName, req, &diag, diag.String)
	var he *helperError
	if err != nil && !errors.As(err, &he) {
		t.Fatalf("helper call: %v\n%s", err, diag.String())
	}
	return reply
}

func randomHex(t *testing.T) string {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// TestHelperRefusesRoot runs the helper in-process as root, as a
// misconfigured sudoers rule (or an admin) might.
func TestHelperRefusesRoot(t *testing.T) {
	testutil.NeedRoot(t)
	req, _ := json.Marshal(helperRequest{V: protocolVersion, Action: actionStart, User: "root", Command: []string{"/bin/sleep"}, Args: []string{"600"}})
	var out, diag bytes.Buffer
	code := RunHelper(t.Context(), bytes.NewReader(req), &out, &diag)
	var reply helperReply
	if err := json.Unmarshal(out.Bytes(), &reply); err != nil {
		t.Fatalf("reply %q: %v", out.String(), err)
	}
	if code == 0 || reply.OK || !strings.Contains(reply.Error, "refusing to run as root") {
		t.Errorf("exit %d, reply %+v", code, reply)
	}
	mustContain(t, "diagnostics", diag.String(), "refusing to run as root")
}

func TestHelperBadRequest(t *testing.T) {
	for _, in := range []string{"", "not json", `{"v":1,"action":"start","extra":1}`, `{"v":99,"action":"status"}`} {
		var out, diag bytes.Buffer
		code := RunHelper(t.Context(), strings.NewReader(in), &out, &diag)
		var reply helperReply
		if err := json.Unmarshal(out.Bytes(), &reply); err != nil || reply.OK || code != helperBadRequest {
			t.Errorf("%q: exit %d, reply %q (%v)", in, code, out.String(), err)
		}
	}
}

// singleuserRequest is a start request for the real jupyterhub-singleuser
// as user, against a fake hub API (the version probe is all it needs to
// start; the real end-to-end tests live in test/e2e). It returns the
// request and the server's URL prefix; the fake hub stops with the test.
func singleuserRequest(t *testing.T, user string) (Request, string) {
	t.Helper()
	if _, err := os.Stat("/usr/bin/jupyterhub-singleuser"); err != nil {
		testutil.Require(t, false, "jupyterhub-singleuser not installed: %v", err)
	}
	hub := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-JupyterHub-Version", "3.0.0")
		w.Header().Set("Content-Type", "application/json")
		if r.URL.Path == "/hub/api" || r.URL.Path == "/hub/api/" {
			fmt.Fprint(w, `{"version":"3.0.0"}`)
			return
		}
		fmt.Fprint(w, `{}`)
	}))
	t.Cleanup(hub.Close)
	port, err := FreePort()
	if err != nil {
		t.Fatal(err)
	}
	token := randomHex(t)
	prefix := "/user/" + user + "/"
	return Request{
		User:    user,
		Command: []string{"/usr/bin/jupyterhub-singleuser"},
		Env: map[string]string{
			"JUPYTERHUB_API_TOKEN":           token,
			"JPY_API_TOKEN":                  token,
			"JUPYTERHUB_CLIENT_ID":           "jupyterhub-user-" + user,
			"JUPYTERHUB_API_URL":             hub.URL + "/hub/api",
			"JUPYTERHUB_ACTIVITY_URL":        hub.URL + "/hub/api/users/" + user + "/activity",
			"JUPYTERHUB_BASE_URL":            "/",
			"JUPYTERHUB_HOST":                "",
			"JUPYTERHUB_SERVICE_PREFIX":      prefix,
			"JUPYTERHUB_SERVICE_URL":         fmt.Sprintf("http://127.0.0.1:%d%s", port, prefix),
			"JUPYTERHUB_OAUTH_CALLBACK_URL":  prefix + "oauth_callback",
			"JUPYTERHUB_OAUTH_ACCESS_SCOPES": fmt.Sprintf(`["access:servers!server=%s/", "access:servers!user=%s"]`, user, user),
			"JUPYTERHUB_USER":                user,
			"JUPYTERHUB_SERVER_NAME":         "",
			"LANG":                           "C.UTF-8",
		},
		Path:    systemPath,
		Port:    port,
		LogPath: filepath.Join(t.TempDir(), user+".log"),
	}, prefix
}

// waitSingleuser waits until the server answers its API and checks the
// version it reports.
func waitSingleuser(t *testing.T, r Request, prefix string) {
	t.Helper()
	var body []byte
	waitFor(t, "jupyterhub-singleuser answers", 90*time.Second, func() (bool, error) {
		code, b, err := httpGet(fmt.Sprintf("http://127.0.0.1:%d%sapi", r.Port, prefix))
		body = b
		return code == 200, err
	})
	var api struct{ Version string }
	if err := json.Unmarshal(body, &api); err != nil || api.Version == "" {
		t.Errorf("GET %sapi: %q, %v", prefix, body, err)
	}
}
