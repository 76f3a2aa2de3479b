package spawner

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	sddbus "github.com/coreos/go-systemd/v22/dbus"

	"github.com/hubd/hubd/internal/testlab"
	"github.com/hubd/hubd/internal/testutil"
)

// The systemd tests run the spawner against the real systemd of this
// machine, booted as PID 1 of private namespaces by
// scripts/systemd-in-ns.sh (see CONTRIBUTING.md), with real accounts.
const (
	sdAlice = "hubtest-sd-alice"
	sdBob   = "hubtest-sd-bob"
	sdOdd   = "hubtest-sd-o.k_1" // '.', '_' and '-' in a unit name
	sdUnits = "hubtest-sd"       // unit prefix
)

// nsSystemd is the booted systemd in namespaces.
type nsSystemd struct {
	script     string
	pid        string
	busAddr    string
	journalDir string
}

// bootSystemd starts the namespaced systemd and stops it in the test's
// cleanup, also when the test fails. Only one may run per machine, so
// another user's instance is waited for, never touched.
func bootSystemd(t *testing.T) *nsSystemd {
	t.Helper()
	script, err := filepath.Abs("../../scripts/systemd-in-ns.sh")
	if err != nil {
		t.Fatal(err)
	}
	ns := &nsSystemd{script: script}
	testlab.Lock(t, testlab.CgroupsLock)
	cgroupsBefore := unitCgroups(t)
	waitFor(t, "the namespaced systemd starts (one instance per machine)", 3*time.Minute, func() (bool, error) {
		out, err := exec.Command(script, "start").Output()
		if err == nil {
			ns.pid = strings.TrimSpace(string(out))
			return true, nil
		}
		var ee *exec.ExitError
		if errors.As(err, &ee) && bytes.Contains(ee.Stderr, []byte("already run")) {
			return false, fmt.Errorf("%s", bytes.TrimSpace(ee.Stderr))
		}
		t.Fatalf("%s start: %v\n%s", script, err, stderrOf(err))
		return false, nil
	})
	t.Cleanup(func() {
		if out, err := exec.Command(script, "stop").CombinedOutput(); err != nil {
			t.Errorf("%s stop: %v\n%s", script, err, out)
		}
		if _, err := os.Stat("/proc/" + ns.pid); err == nil {
			t.Errorf("the namespaced systemd (pid %s) still runs after stop", ns.pid)
		}
		if l, _ := os.Readlink("/dev/log"); l == "/run/systemd/journal/dev-log" {
			t.Error("/dev/log still points into the stopped instance's /run")
		}
		for dir := range unitCgroups(t) {
			if !cgroupsBefore[dir] {
				t.Errorf("cgroup directory left on the host after stop: %s", dir)
			}
		}
	})
	if out, err := exec.Command(script, "start").CombinedOutput(); err == nil || !bytes.Contains(out, []byte("already running")) {
		t.Errorf("a second start was not refused: %v\n%s", err, out)
	}
	ns.busAddr = strings.TrimSpace(ns.run(t, "bus-address"))
	ns.journalDir = strings.TrimSpace(ns.run(t, "journal-dir"))
	return ns
}

// unitCgroups lists the host's cgroup directories named like units,
// which is what systemd creates.
func unitCgroups(t *testing.T) map[string]bool {
	t.Helper()
	dirs := map[string]bool{}
	err := filepath.WalkDir("/sys/fs/cgroup", func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return nil // cgroups come and go while we walk
		}
		if d.IsDir() {
			switch filepath.Ext(path) {
			case ".slice", ".scope", ".service", ".socket", ".mount", ".swap":
				dirs[path] = true
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return dirs
}

func (ns *nsSystemd) run(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command(ns.script, args...).Output()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s%s", ns.script, strings.Join(args, " "), err, out, stderrOf(err))
	}
	return string(out)
}

// exec runs a command inside the namespaces and returns its stdout and
// whether it exited 0.
func (ns *nsSystemd) exec(args ...string) (string, bool) {
	out, err := exec.Command(ns.script, append([]string{"exec"}, args...)...).Output()
	return string(out), err == nil
}

func stderrOf(err error) string {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return string(ee.Stderr)
	}
	return ""
}

// TestSystemd boots systemd once for all systemd subtests.
func TestSystemd(t *testing.T) {
	testutil.NeedRoot(t)
	for _, need := range []string{"/lib/systemd/systemd", "/usr/bin/dbus-daemon", "/usr/bin/journalctl"} {
		if _, err := os.Stat(need); err != nil {
			testutil.Require(t, false, "needs the packages systemd and dbus: %v", err)
		}
	}
	// Cleanups run last-registered first: units (in the subtests), then
	// systemd, then the accounts.
	var h testutil.Host
	t.Cleanup(h.Cleanup)
	for _, u := range []string{sdAlice, sdBob, sdOdd} {
		if err := h.User(u, ""); err != nil {
			t.Fatal(err)
		}
	}
	ns := bootSystemd(t)
	t.Setenv("DBUS_SYSTEM_BUS_ADDRESS", ns.busAddr)
	sp := newTestSystemd(t, ns, SystemdOptions{
		MemoryMax: 512 << 20, CPUQuotaPercent: 150, TasksMax: 256,
		PrivateTmp: true, NoNewPrivileges: true,
		ReadOnlyPaths: []string{"/usr/local"}, ReadWritePaths: []string{"/var/tmp"},
		ExtraProperties: map[string]string{"ProtectSystem": "full"},
	})

	t.Run("JupyterhubSingleuser", func(t *testing.T) { testSystemdSingleuser(t, ns, sp) })
	t.Run("MemoryMaxKillsAndPollSaysWhy", func(t *testing.T) { testSystemdOOM(t, ns) })
	t.Run("LeftoverUnitsAndEnvFile", func(t *testing.T) { testSystemdLeftovers(t, ns, sp) })
	t.Run("ExitsAtOnce", func(t *testing.T) {
		r := sleeper(t, sdAlice)
		r.Command, r.Args = []string{"/bin/sh"}, []string{"-c", "echo boom-$(id -un) >&2; exit 3"}
		s := exitOf(t, sp, r)
		if s.ExitCode != 3 {
			t.Errorf("exit code %d, want 3", s.ExitCode)
		}
		// "$(id -un)" reached the shell unexpanded by systemd.
		mustContain(t, "output", s.Output, "boom-"+sdAlice, "status=3")
		mustContain(t, "reason", s.Reason, "result exit-code", "exited with status 3")
		st, _ := sp.UnitName(sdAlice, "")
		if err := sp.Stop(t.Context(), sdAlice, State{Kind: KindSystemd, Unit: st}, time.Second); err != nil {
			t.Fatal(err)
		}
		assertNoEnvFile(t, sp, r)

		r = sleeper(t, sdAlice)
		r.WorkingDir = "/nonexistent-hubtest"
		_, err := sp.Start(t.Context(), r)
		se := startError(t, err)
		mustContain(t, "reason", se.Reason, "status 200", "working directory")
		mustContain(t, "output", se.Output, "status=200/CHDIR")
	})
	t.Run("OddNamesAndEnvironment", func(t *testing.T) { testSystemdOddNames(t, ns, sp) })
	t.Run("DynamicUser", func(t *testing.T) { testSystemdDynamic(t, ns, &h) })
	t.Run("OtherUsersUnitNeverStopped", func(t *testing.T) {
		st := sdStart(t, sp, sleeper(t, sdBob))
		if err := sp.Stop(t.Context(), sdAlice, st, time.Second); err != nil {
			t.Errorf("stop of bob's unit as alice: %v", err)
		}
		if s, err := sp.Poll(t.Context(), sdBob, st); err != nil || !s.Running {
			t.Fatalf("bob's unit was stopped: %+v %v", s, err)
		}
		sdStopAndCheck(t, ns, sp, sdBob, st)
	})

	conn, err := sp.bus(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	left, err := conn.ListUnitsByPatternsContext(t.Context(), nil, []string{sdUnits + "-*"})
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range left {
		t.Errorf("unit left behind: %s (%s)", u.Name, u.ActiveState)
	}
}

// testSystemdDynamic runs a server for a user without a Linux account: a
// dynamic user with its state directory as home, the members group as a
// supplementary group, its files kept across a stop and a start; a name
// that is a Linux account is refused.
func testSystemdDynamic(t *testing.T, ns *nsSystemd, h *testutil.Host) {
	const dyn, members = "hubtest-sd-dyn", "hubtest-sd-members"
	if err := h.Group(members); err != nil {
		t.Fatal(err)
	}
	g, err := user.LookupGroup(members)
	if err != nil {
		t.Fatal(err)
	}
	env := sharedDir(t, g)
	sp := newTestSystemd(t, ns, SystemdOptions{MembersGroup: members, ReadWritePaths: []string{"/var/tmp"},
		DynamicWritePaths: []string{env, "/nonexistent-hubtest-shares"}})
	home := DynamicHome(dyn)
	t.Cleanup(func() {
		// The files of the dynamic user live in /var/lib/private.
		os.RemoveAll("/var/lib/private/" + dynamicStateDir(dyn))
		os.Remove(home)
		os.Remove(filepath.Dir(home))
		os.Remove("/var/lib/private/" + filepath.Dir(dynamicStateDir(dyn)))
	})
	run := func() State {
		r := sleeper(t, dyn)
		r.Dynamic = true
		r.Command, r.Args = []string{"/bin/sh"}, []string{"-c", `echo "$(id -u) $HOME" >> "$HOME/runs"; exec sleep 600`}
		st := sdStart(t, sp, r)
		waitFor(t, "the dynamic user's server writes its file", 30*time.Second, func() (bool, error) {
			out, ok := ns.exec("cat", home+"/runs")
			return ok && strings.TrimSpace(out) != "", nil
		})
		pids := unitProcs(st.Unit)
		if len(pids) != 1 {
			t.Fatalf("unit %s has processes %v", st.Unit, pids)
		}
		uid, err := readUID(pids[0])
		if err != nil || uid == 0 {
			t.Fatalf("the server runs as uid %d (%v)", uid, err)
		}
		if _, err := user.LookupId(strconv.Itoa(uid)); err == nil {
			t.Errorf("uid %d is a Linux account; want a dynamic one", uid)
		}
		status, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pids[0]))
		mustContain(t, "process status", string(status), "\t"+g.Gid)
		return st
	}
	st := run()
	if err := sp.Stop(t.Context(), dyn, st, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	st = run()
	out, _ := ns.exec("cat", home+"/runs")
	if lines := strings.Split(strings.TrimSpace(out), "\n"); len(lines) != 2 || !strings.HasSuffix(lines[0], " "+home) {
		t.Errorf("the file the first run wrote, after a second run:\n%s", out)
	}
	sdStopAndCheck(t, ns, sp, dyn, st)

	// The shared environment: writable through the members group, with
	// the path added to ReadWritePaths; without it, ProtectSystem=strict
	// leaves it read-only.
	st = sdStart(t, sp, writer(t, dyn, env))
	mustContain(t, "systemctl show", showUnit(t, ns, st.Unit), "ProtectSystem=strict",
		"ReadWritePaths=/var/tmp -"+env+" -/nonexistent-hubtest-shares")
	if got := writeOutcome(t, ns, home); got != "wrote" {
		t.Errorf("the dynamic user's server writing the shared environment: %q, want wrote", got)
	}
	fi, err := os.Stat(filepath.Join(env, "by-"+dyn))
	if err != nil {
		t.Fatal(err)
	}
	if st := fi.Sys().(*syscall.Stat_t); strconv.Itoa(int(st.Gid)) != g.Gid || fi.Mode().Perm()&0o020 == 0 {
		t.Errorf("the file it wrote has gid %d and mode %v; want the members group %s, group-writable", st.Gid, fi.Mode(), g.Gid)
	}
	sdStopAndCheck(t, ns, sp, dyn, st)
	os.Remove(filepath.Join(env, "by-"+dyn))
	bare := newTestSystemd(t, ns, SystemdOptions{MembersGroup: members})
	st = sdStart(t, bare, writer(t, dyn, env))
	if got := writeOutcome(t, ns, home); got != "refused" {
		t.Errorf("without the shared path in ReadWritePaths: %q, want refused (the test would prove nothing)", got)
	}
	sdStopAndCheck(t, ns, bare, dyn, st)

	r := sleeper(t, sdAlice)
	r.Dynamic = true
	_, err = sp.Start(t.Context(), r)
	mustContain(t, "start of a dynamic user named like an account", fmt.Sprint(err), "a Linux account of that name exists")
}

// sharedDir makes a directory like the shared environment: root's,
// group g's, setgid and group-writable, outside /tmp (dynamic users get a
// private one).
func sharedDir(t *testing.T, g *user.Group) string {
	t.Helper()
	dir, err := os.MkdirTemp("/opt", "hubtest-sd-env-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	gid, _ := strconv.Atoi(g.Gid)
	if err := os.Chown(dir, 0, gid); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o775|os.ModeSetgid); err != nil {
		t.Fatal(err)
	}
	return dir
}

// writer is a dynamic user's server that tries to write a file into dir
// and records "wrote" or "refused" in $HOME/outcome.
func writer(t *testing.T, userName, dir string) Request {
	r := sleeper(t, userName)
	r.Dynamic = true
	r.Command, r.Args = []string{"/bin/sh"}, []string{"-c", `if echo x > "$0/by-$1"; then echo wrote; else echo refused; fi > "$HOME/outcome.new"
mv "$HOME/outcome.new" "$HOME/outcome"
exec sleep 600`, dir, userName}
	return r
}

// writeOutcome waits for what writer recorded, and removes it for the
// next run.
func writeOutcome(t *testing.T, ns *nsSystemd, home string) string {
	t.Helper()
	defer ns.exec("rm", "-f", home+"/outcome")
	var out string
	waitFor(t, "the server records whether it could write", 30*time.Second, func() (bool, error) {
		var ok bool
		out, ok = ns.exec("cat", home+"/outcome")
		return ok && strings.TrimSpace(out) != "", nil
	})
	return strings.TrimSpace(out)
}

func newTestSystemd(t *testing.T, ns *nsSystemd, o SystemdOptions) *Systemd {
	t.Helper()
	o.UnitPrefix, o.Slice = sdUnits, "hubtest-sd.slice"
	o.RuntimeDir = t.TempDir() // /tmp: a file system the namespaced systemd shares
	o.JournalDir = ns.journalDir
	o.StopTimeout = 5 * time.Second
	o.Logger = testLogger(t)
	sp, err := NewSystemd(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sp.Close() })
	return sp
}

func sdStart(t *testing.T, sp *Systemd, r Request) State {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	st, err := sp.Start(ctx, r)
	if err != nil {
		t.Fatalf("start as %s: %v", r.User, err)
	}
	stopOnCleanup(t, sp, r.User, st)
	want, _ := sp.UnitName(r.User, r.Server)
	if st.Kind != KindSystemd || st.Unit != want {
		t.Fatalf("state %+v, want unit %s", st, want)
	}
	return st
}

// sdStopAndCheck stops a unit and checks that systemd forgot it, no
// process of it is left and its environment file is gone.
func sdStopAndCheck(t *testing.T, ns *nsSystemd, sp *Systemd, userName string, st State) {
	t.Helper()
	if err := sp.Stop(t.Context(), userName, st, 10*time.Second); err != nil {
		t.Fatalf("stop: %v", err)
	}
	if s, err := sp.Poll(t.Context(), userName, st); err != nil || s.Running {
		t.Errorf("poll after stop: %+v %v", s, err)
	}
	if pids := unitProcs(st.Unit); len(pids) > 0 {
		t.Errorf("processes of %s left after stop: %v", st.Unit, pids)
	}
	if out, _ := ns.exec("systemctl", "list-units", "--all", "--plain", "--no-legend", st.Unit); strings.TrimSpace(out) != "" {
		t.Errorf("systemd still has the unit after stop: %s", out)
	}
	if _, err := os.Stat(sp.envFilePath(st.Unit)); !os.IsNotExist(err) {
		t.Errorf("environment file of %s not removed after stop: %v", st.Unit, err)
	}
}

func assertNoEnvFile(t *testing.T, sp *Systemd, r Request) {
	t.Helper()
	unit, _ := sp.UnitName(r.User, r.Server)
	if _, err := os.Stat(sp.envFilePath(unit)); !os.IsNotExist(err) {
		t.Errorf("environment file of %s left after a failed start: %v", unit, err)
	}
}

// unitProcs lists the host pids of live processes in a unit's cgroup.
func unitProcs(unit string) []int {
	return testutil.Procs(func(p testutil.Proc) bool { return bytes.Contains(p.Read("cgroup"), []byte("/"+unit+"\n")) })
}

// unitEnv reads the environment of the unit's only process.
func unitEnv(t *testing.T, unit string) map[string]string {
	t.Helper()
	pids := unitProcs(unit)
	if len(pids) != 1 {
		t.Fatalf("unit %s has processes %v, want one", unit, pids)
	}
	return testutil.Environ(pids[0])
}

// showUnit is `systemctl show UNIT` inside the namespaces.
func showUnit(t *testing.T, ns *nsSystemd, unit string) string {
	t.Helper()
	out, ok := ns.exec("systemctl", "show", unit)
	if !ok {
		t.Fatalf("systemctl show %s failed:\n%s", unit, out)
	}
	return out
}

// testSystemdSingleuser runs the real jupyterhub-singleuser as a unit,
// against a fake hub API on the host's loopback (the network namespace is
// shared).
func testSystemdSingleuser(t *testing.T, ns *nsSystemd, sp *Systemd) {
	r, prefix := singleuserRequest(t, sdAlice)
	token := r.Env["JUPYTERHUB_API_TOKEN"]
	st := sdStart(t, sp, r)
	waitSingleuser(t, r, prefix)
	if s, err := sp.Poll(t.Context(), sdAlice, st); err != nil || !s.Running {
		t.Errorf("poll: %+v %v", s, err)
	}

	// It runs as alice, in the unit's cgroup, under the slice.
	alice, err := user.Lookup(sdAlice)
	if err != nil {
		t.Fatal(err)
	}
	pids := unitProcs(st.Unit)
	if len(pids) == 0 {
		t.Fatalf("no process in the cgroup of %s", st.Unit)
	}
	for _, pid := range pids {
		if uid, err := readUID(pid); err != nil || strconv.Itoa(uid) != alice.Uid {
			t.Errorf("pid %d runs as uid %d (%v), want alice's %s", pid, uid, err, alice.Uid)
		}
	}

	// The token is in no command line, no unit property and no log; the
	// environment file is root's alone.
	if pids := testutil.Procs(testutil.WithCmdline(token)); len(pids) > 0 {
		t.Errorf("the API token is on the command line of pids %v", pids)
	}
	show := showUnit(t, ns, st.Unit)
	if strings.Contains(show, token) {
		t.Error("the API token is in `systemctl show` output")
	}
	envFile := sp.envFilePath(st.Unit)
	mustContain(t, "systemctl show", show, "User="+sdAlice, "UMask=0002", "OOMPolicy=continue", "Slice=hubtest-sd.slice",
		"EnvironmentFiles="+envFile, "PrivateTmp=yes", "NoNewPrivileges=yes", "ProtectSystem=full",
		"ReadOnlyPaths=/usr/local", "ReadWritePaths=/var/tmp", "WorkingDirectory="+alice.HomeDir,
		"MemoryMax=536870912", "TasksMax=256", "CPUQuotaPerSecUSec=1.500000s")
	checkPrivate(t, envFile, 0o400)
	checkPrivate(t, filepath.Dir(envFile), 0o700|os.ModeDir)
	if b, err := os.ReadFile(envFile); err != nil || !bytes.Contains(b, []byte(token)) || !bytes.Contains(b, []byte("HOME=\""+alice.HomeDir)) {
		t.Errorf("environment file %s: %v\n%s", envFile, err, b)
	}
	if diffs, err := sp.checkLimits(t.Context(), mustBus(t, sp), st.Unit, SystemdLimits{}); err != nil || len(diffs) > 0 {
		t.Errorf("limits read back: %v %v", diffs, err)
	}
	// The kernel enforces the memory limit on the unit's cgroup.
	if lim, err := (testutil.Proc{PID: pids[0]}).MemoryLimit(); err != nil || lim != 512<<20 {
		t.Errorf("memory limit of the unit's cgroup: %d (%v), want %d", lim, err, 512<<20)
	}

	sdStopAndCheck(t, ns, sp, sdAlice, st)
	lines, err := sp.LogTail(t.Context(), sdAlice, "", 50)
	if err != nil {
		t.Fatal(err)
	}
	journal := strings.Join(lines, "\n")
	mustContain(t, "journal", journal, "Started "+st.Unit, "Stopped "+st.Unit)
	logText, err := os.ReadFile(r.LogPath)
	if err != nil {
		t.Fatal(err)
	}
	mustContain(t, "server log", string(logText), "jupyterhub-singleuser", prefix)
	if strings.Contains(string(logText)+journal, token) {
		t.Error("the API token was written to the server log or the journal")
	}
}

func mustBus(t *testing.T, sp *Systemd) *sddbus.Conn {
	t.Helper()
	c, err := sp.bus(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func checkPrivate(t *testing.T, path string, mode os.FileMode) {
	t.Helper()
	fi, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode() != mode {
		t.Errorf("%s has mode %v, want %v", path, fi.Mode(), mode)
	}
	if st := fi.Sys().(*syscall.Stat_t); st.Uid != 0 || st.Gid != 0 {
		t.Errorf("%s is owned by %d:%d, want root", path, st.Uid, st.Gid)
	}
}

// testSystemdOOM runs a server that, once told to, allocates more than
// its MemoryMax: the kernel kills it, and Poll and the journal say so.
func testSystemdOOM(t *testing.T, ns *nsSystemd) {
	sp := newTestSystemd(t, ns, SystemdOptions{MemoryMax: 64 << 20})
	bob, err := user.Lookup(sdBob)
	if err != nil {
		t.Fatal(err)
	}
	trigger := filepath.Join(bob.HomeDir, "allocate-now")
	r := sleeper(t, sdBob)
	r.Command = []string{"/usr/bin/python3"}
	r.Args = []string{"-c", "import os, time\n" +
		"while not os.path.exists(" + strconv.Quote(trigger) + "): time.sleep(0.02)\n" +
		"b = bytearray(600 << 20)\n" +
		"print('allocated', len(b), flush=True)\n"}
	st := sdStart(t, sp, r)
	if s, err := sp.Poll(t.Context(), sdBob, st); err != nil || !s.Running {
		t.Fatalf("poll before the allocation: %+v %v", s, err)
	}
	if err := os.WriteFile(trigger, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	defer os.Remove(trigger)
	var s Status
	waitFor(t, "the unit fails", 60*time.Second, func() (bool, error) {
		s, err = sp.Poll(t.Context(), sdBob, st)
		return err == nil && !s.Running, err
	})
	t.Logf("poll: %+v", s)
	if s.ExitCode != 128+9 {
		t.Errorf("exit code %d, want %d (SIGKILL)", s.ExitCode, 128+9)
	}
	mustContain(t, "reason", s.Reason, st.Unit, "SIGKILL", "OOM killer", "memory")
	if !strings.Contains(s.Reason, "result oom-kill") && !strings.Contains(s.Reason, "result signal") {
		t.Errorf("reason %q names neither result oom-kill nor signal", s.Reason)
	}
	if _, err := os.Stat(sp.envFilePath(st.Unit)); !os.IsNotExist(err) {
		t.Errorf("environment file kept after the unit failed: %v", err)
	}
	lines, err := sp.LogTail(t.Context(), sdBob, "", 20)
	if err != nil {
		t.Fatal(err)
	}
	mustContain(t, "journal", strings.Join(lines, "\n"), "status=9/KILL", "Failed with result")
	if b, _ := os.ReadFile(r.LogPath); bytes.Contains(b, []byte("allocated")) {
		t.Errorf("the allocation succeeded despite MemoryMax:\n%s", b)
	}
	// Stop forgets the failed unit.
	sdStopAndCheck(t, ns, sp, sdBob, st)
}

// testSystemdLeftovers: a unit of the same name from an earlier run
// (running, or failed and never reset) and a stale environment file do
// not stop a start.
func testSystemdLeftovers(t *testing.T, ns *nsSystemd, sp *Systemd) {
	r := sleeper(t, sdAlice)
	unit, _ := sp.UnitName(sdAlice, "")
	if out, ok := ns.exec("systemd-run", "--quiet", "--unit="+unit, "/bin/sleep", "600"); !ok {
		t.Fatalf("systemd-run: %s", out)
	}
	if err := os.MkdirAll(filepath.Dir(sp.envFilePath(unit)), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(sp.envFilePath(unit), []byte("STALE=1\n"), 0o400); err != nil {
		t.Fatal(err)
	}
	st := sdStart(t, sp, r)
	env := unitEnv(t, unit)
	if env["USER"] != sdAlice || env["JUPYTERHUB_API_TOKEN"] != r.Env["JUPYTERHUB_API_TOKEN"] || env["STALE"] != "" {
		t.Errorf("the unit runs with the leftover's setup: %v", env)
	}
	sdStopAndCheck(t, ns, sp, sdAlice, st)

	// A failed unit stays loaded (CollectMode=inactive) until reset.
	if out, ok := ns.exec("systemd-run", "--quiet", "--unit="+unit, "/bin/false"); !ok {
		t.Fatalf("systemd-run: %s", out)
	}
	waitFor(t, "the leftover unit fails", 10*time.Second, func() (bool, error) {
		_, failed := ns.exec("systemctl", "is-failed", "--quiet", unit)
		return failed, nil
	})
	st = sdStart(t, sp, sleeper(t, sdAlice))
	sdStopAndCheck(t, ns, sp, sdAlice, st)

	// A start the hub never recorded: Reclaim finds the unit by its name
	// and stops it; nothing is left to find the second time, and another
	// server's unit is not this one.
	st = sdStart(t, sp, sleeper(t, sdAlice))
	if n, err := sp.Reclaim(t.Context(), Orphan{User: sdAlice, Server: "gpu"}, time.Second); err != nil || n != 0 {
		t.Errorf("Reclaim of a server that never ran = %d, %v", n, err)
	}
	if n, err := sp.Reclaim(t.Context(), Orphan{User: sdAlice}, 5*time.Second); err != nil || n != 1 {
		t.Fatalf("Reclaim = %d, %v; want the one unit", n, err)
	}
	if s, err := sp.Poll(t.Context(), sdAlice, st); err != nil || s.Running {
		t.Errorf("the reclaimed unit still runs: %+v %v", s, err)
	}
	if n, err := sp.Reclaim(t.Context(), Orphan{User: sdAlice}, time.Second); err != nil || n != 0 {
		t.Errorf("a second Reclaim = %d, %v", n, err)
	}
	sdStopAndCheck(t, ns, sp, sdAlice, st)
}

// testSystemdOddNames: escaped unit names work for real, and values with
// quotes, '$' and backslashes reach the server unchanged.
func testSystemdOddNames(t *testing.T, ns *nsSystemd, sp *Systemd) {
	r := sleeper(t, sdOdd)
	r.Server = "my server/ü-1"
	odd := ` a "b" 'c' $HOME ${PATH} \n back\slash ` + "`x`" + ` %h `
	r.Env["HUBTEST_ODD"] = odd
	st := sdStart(t, sp, r)
	if want := sdUnits + `-hubtest\x2dsd\x2do.k_1-my\x20server-\xc3\xbc\x2d1.service`; st.Unit != want {
		t.Errorf("unit %s, want %s", st.Unit, want)
	}
	if out, ok := ns.exec("systemctl", "is-active", st.Unit); !ok || strings.TrimSpace(out) != "active" {
		t.Errorf("systemctl is-active %s: %q", st.Unit, out)
	}
	env := unitEnv(t, st.Unit)
	if env["HUBTEST_ODD"] != odd {
		t.Errorf("HUBTEST_ODD reached the server as %q, want %q", env["HUBTEST_ODD"], odd)
	}
	mustContain(t, "description", showUnit(t, ns, st.Unit), "Description=hubd server of "+sdOdd+" (my server/ü-1)")
	sdStopAndCheck(t, ns, sp, sdOdd, st)

	r.Env["BAD"] = "line\nbreak"
	_, err := sp.Start(t.Context(), r)
	mustContain(t, "error", startError(t, err).Reason, "BAD", "line break")
}
