package ui

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/colorprofile"
	"github.com/charmbracelet/x/ansi"
	"github.com/charmbracelet/x/exp/teatest/v2"

	"github.com/hubd/hubd/core/admin/wire"
)

// fakeEnv is a shared environment with drift: a cp'd file and a
// directory moved in from a home.
func fakeEnv() wire.SharedEnv {
	return wire.SharedEnv{
		Enabled: true, Path: "/opt/hubd/env", Group: "jupyterhub", Exists: true,
		PythonVersion: "3.11.2", IPyKernel: true, Packages: 23,
		KernelSpec: "/usr/local/share/jupyter/kernels/hubd-shared/kernel.json", KernelRegistered: true,
		Checked: now.Add(-20 * time.Second),
		Health: wire.EnvReport{Dirs: 1234, Files: 12345, Symlinks: 12, Bytes: 1 << 30, ACLSupported: true,
			Problems: []wire.EnvProblem{
				{Kind: "file-mode", Description: "files not group-writable", Count: 2,
					Examples: []string{"/opt/hubd/env/lib/python3.11/site-packages/mine.py", "/opt/hubd/env/bin/tool"}},
				{Kind: "no-setgid", Description: "directories without setgid", Count: 1,
					Examples: []string{"/opt/hubd/env/share/moved"}},
			}},
	}
}

func (f *fake) Restart(context.Context, string) (wire.RestartResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.restarts++
	return wire.RestartResult{Message: "the hub is restarting; user servers keep running"}, nil
}

func (f *fake) SharedEnv(context.Context) (wire.SharedEnv, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.checks++
	return f.env, f.read(nil)
}

func (f *fake) envChecks() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.checks
}

// fakeRepair stands in for the root repair: it walks in three steps and
// leaves the environment healthy.
type fakeRepair struct {
	mu     sync.Mutex
	f      *fake
	calls  int
	steps  []int
	target string
}

func (r *fakeRepair) repair(_ context.Context, path, group string, walked func(int)) (wire.EnvReport, error) {
	r.mu.Lock()
	r.calls++
	r.target = path + " " + group
	r.mu.Unlock()
	for _, n := range []int{5000, 10000, 13591} {
		walked(n)
		r.mu.Lock()
		r.steps = append(r.steps, n)
		r.mu.Unlock()
	}
	r.f.mu.Lock()
	rep := r.f.env.Health
	rep.Problems = nil
	r.f.env.Health = rep
	r.f.env.Checked = now
	r.f.mu.Unlock()
	done := fakeEnv().Health
	for i := range done.Problems {
		done.Problems[i].Fixed = done.Problems[i].Count
	}
	return done, nil
}

func startWith(f *fake, repair EnvRepairer, w, h int) Model {
	m := New(Options{Client: f, Now: clock, Repair: repair})
	return drive(m, tea.WindowSizeMsg{Width: w, Height: h}, m.Init()())
}

// The hub view shows the check; f repairs after a confirmation, the
// progress goes through the status line, and the view checks again.
func TestHubViewRepairsWithConfirmation(t *testing.T) {
	f := newFake()
	r := &fakeRepair{f: f}
	m := startWith(f, r.repair, 100, 30)
	m = drive(m, press("6")...)
	screen := ansi.Strip(m.Render())
	for _, want := range []string{"Shared environment /opt/hubd/env (group jupyterhub)", "3 problems", "files not group-writable: 2", "/opt/hubd/env/share/moved", "f repairs it"} {
		if !strings.Contains(screen, want) {
			t.Errorf("hub view lacks %q:\n%s", want, screen)
		}
	}
	m = drive(m, press("f")...)
	if !strings.Contains(ansi.Strip(m.Render()), "Repair the shared environment /opt/hubd/env (3 problems)?") || r.calls != 0 {
		t.Fatalf("f did not ask first:\n%s", ansi.Strip(m.Render()))
	}
	m = drive(m, press("y")...)
	screen = ansi.Strip(m.Render())
	if r.calls != 1 || r.target != "/opt/hubd/env jupyterhub" || len(r.steps) != 3 {
		t.Errorf("repair calls %d target %q steps %v", r.calls, r.target, r.steps)
	}
	if !strings.Contains(screen, "Repaired /opt/hubd/env: fixed 3 problems in 13591 paths.") || !strings.Contains(screen, "ok: everything is shared") {
		t.Errorf("after the repair:\n%s", screen)
	}
}

// Without root there is no repairer: f says what to run instead. R
// restarts the hub after a y, for admins and members alike.
func TestHubViewWithoutRootAndRestart(t *testing.T) {
	f := newFake()
	f.who = wire.WhoAmI{UID: 1001, User: "alice", Role: wire.RoleMember, Why: "in auth.allowed_group"}
	m := startWith(f, nil, 100, 30)
	m = drive(m, press("6", "f")...)
	if screen := ansi.Strip(m.Render()); strings.Contains(screen, "Repair the shared environment") {
		t.Errorf("a member without root was asked to repair:\n%s", screen)
	}
	m = drive(m, press("R")...)
	if !strings.Contains(ansi.Strip(m.Render()), "Restart the hub in place?") || f.restarts != 0 {
		t.Fatalf("R did not ask first:\n%s", ansi.Strip(m.Render()))
	}
	m = drive(m, press("n", "R", "y")...)
	if f.restarts != 1 || !strings.Contains(ansi.Strip(m.Render()), "the hub is restarting") {
		t.Errorf("restarts %d:\n%s", f.restarts, ansi.Strip(m.Render()))
	}

	// --readonly hides the restart too.
	ro := New(Options{Client: f, Now: clock, ReadOnly: true})
	ro = drive(ro, tea.WindowSizeMsg{Width: 100, Height: 30}, ro.Init()())
	ro = drive(ro, press("6", "R")...)
	if f.restarts != 1 || strings.Contains(ansi.Strip(ro.Render()), "Restart the hub in place?") {
		t.Errorf("--readonly restarted or asked:\n%s", ansi.Strip(ro.Render()))
	}
}

// In a real program: the repair's progress reaches the status line and
// the view shows the new check afterwards.
func TestHubViewRepairInProgram(t *testing.T) {
	f := newFake()
	r := &fakeRepair{f: f}
	tm := teatest.NewTestModel(t, New(Options{Client: f, Now: clock, Repair: r.repair}),
		teatest.WithInitialTermSize(100, 30),
		teatest.WithProgramOptions(tea.WithColorProfile(colorprofile.Ascii)))
	waitScreen(t, tm, "carol")
	send(tm, "6")
	waitScreen(t, tm, "directories without setgid")
	send(tm, "f")
	waitScreen(t, tm, "Repair the shared environment")
	send(tm, "y")
	waitScreen(t, tm, "Repaired /opt/hubd/env")
	// The view asks the hub for a new check (what it then shows is
	// TestHubViewRepairsWithConfirmation's).
	deadline := time.Now().Add(5 * time.Second)
	for f.envChecks() < 2 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	quit(t, tm, false)
	if r.calls != 1 || f.envChecks() < 2 {
		t.Errorf("repair ran %d times, environment checked %d times", r.calls, f.envChecks())
	}
}
