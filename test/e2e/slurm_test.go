package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hubd/hubd/core/admin/client"
	"github.com/hubd/hubd/core/admin/wire"
	"github.com/hubd/hubd/internal/testlab"
	"github.com/hubd/hubd/internal/testlab/slurmlab"
	"github.com/hubd/hubd/internal/testutil"
)

// slurmTemplate is the built-in job template, except that jobs of the
// profile "silent" never report where they listen.
const slurmTemplate = `#!/bin/bash
{{range .Directives}}#SBATCH {{.}}
{{end}}
{{.Environment}}
{{if eq .Profile "silent"}}exec sleep 600{{else}}{{.Start}}{{end}}
`

// slurmProfiles run servers beside the hub (sudo) or as jobs of the lab
// cluster; one is for a hub group only.
const slurmProfiles = `
[[spawner.profiles]]
name = "local"
display_name = "This machine"
description = "A server beside the hub"
default = true

[[spawner.profiles]]
name = "slurm"
display_name = "Slurm job on node2"
description = "A batch job in partition main"
kind = "slurm"
[spawner.profiles.slurm]
partition = "main"
time = "1:00:00"
extra = ["--nodelist=node2"]

[[spawner.profiles]]
name = "anywhere"
display_name = "Slurm job on any node"
kind = "slurm"
[spawner.profiles.slurm]
partition = "main"

[[spawner.profiles]]
name = "short"
kind = "slurm"
[spawner.profiles.slurm]
partition = "short"
extra = ["--nodelist=node2"]

[[spawner.profiles]]
name = "nosuch"
kind = "slurm"
[spawner.profiles.slurm]
partition = "nosuch"

[[spawner.profiles]]
name = "silent"
kind = "slurm"
[spawner.profiles.slurm]
extra = ["--nodelist=node2"]

[[spawner.profiles]]
name = "members-only"
description = "For the hub group hubtest-e2e-gpu"
groups = ["hubtest-e2e-gpu"]
`

// slurmHub is a hub of its own whose servers run beside it (sudo) or as
// Slurm jobs, submitted as the member through the spawn helper.
type slurmHub struct {
	*hubProcess
	cfg   *hubConfig
	admin string // bob's token; bob is an admin of this hub
}

func startSlurmHub(t testing.TB) *slurmHub {
	t.Helper()
	c := newHubConfig(t, "hubtest-e2e-slurm-")
	tmpl := filepath.Join(c.dir, "job.sh.tmpl")
	if err := os.WriteFile(tmpl, []byte(slurmTemplate), 0o644); err != nil {
		t.Fatal(err)
	}
	c.set("admin_users", `["`+bob+`"]`)
	c.set("start_timeout", `"20s"`)
	c.set("script_template", strconv.Quote(tmpl))
	c.drop("profiles")
	c.add(slurmProfiles)
	h := &slurmHub{hubProcess: c.start("slurm"), cfg: c}
	loggedIn(t, h, bob, bobPW) // a user exists once logged in
	out, err := h.hubd("token", "create", "--user", bob, "--note", "e2e admin", "--expires-in", "1h")
	if err != nil {
		t.Fatalf("hubd token create: %v", err)
	}
	h.admin = strings.TrimSpace(out)
	return h
}

// start asks for user's server with a profile through the API, with the
// user's own token, and returns the answer's status and body.
func (h *slurmHub) start(t testing.TB, name, profile string) (int, string) {
	t.Helper()
	code, body := h.api(t, http.MethodPost, "/users/"+name+"/server", h.token(t, name), map[string]string{"profile": profile})
	return code, string(body)
}

// token is a fresh API token of a user (through the admin socket).
func (h *slurmHub) token(t testing.TB, name string) string {
	t.Helper()
	out, err := h.hubd("token", "create", "--user", name, "--expires-in", "1h")
	if err != nil {
		t.Fatalf("hubd token create --user %s: %v", name, err)
	}
	return strings.TrimSpace(out)
}

// session is what the admin socket (hubtui's source) says of a user's
// default server.
func (h *slurmHub) session(t *testing.T, name string) (wire.Session, bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := (&client.Client{Socket: h.cfg.socket()}).Sessions(ctx, name)
	if err != nil {
		t.Fatalf("sessions: %v", err)
	}
	for _, sess := range s.Sessions {
		if sess.User == name && sess.Server == "" {
			return sess, true
		}
	}
	return wire.Session{}, false
}

// homeSays waits until name's home page holds want and returns the page.
func (h *slurmHub) homeSays(t *testing.T, b *browser, want string, limit time.Duration) string {
	t.Helper()
	var home string
	if err := waitFor(limit, func() error {
		home = readAll(b.do("GET", "/hub/home", nil, nil))
		if !strings.Contains(home, want) {
			return fmt.Errorf("the home page does not say %q", want)
		}
		return nil
	}); err != nil {
		t.Fatalf("%v:\n%s\nhub log:\n%s", err, failureLine(home), h.logTail())
	}
	return home
}

var failureRE = regexp.MustCompile(`Your server stopped:[^<]*`)

func failureLine(home string) string { return failureRE.FindString(home) }

// jobProcs lists the processes of a Slurm job: those in its cgroup
// (slurmd's proctrack/cgroup puts every process of job N in .../job_N).
func jobProcs(id string) []int {
	in := regexp.MustCompile(`/job_` + regexp.QuoteMeta(id) + `(/|$)`)
	return testutil.Procs(func(p testutil.Proc) bool {
		for line := range strings.Lines(string(p.Read("cgroup"))) {
			if in.MatchString(strings.TrimSpace(line)) {
				return true
			}
		}
		return false
	})
}

// noneLeft waits until nothing of the job runs: none of the processes
// seen in it before, nothing in its cgroup.
func noneLeft(t *testing.T, id string, before []int, after string) {
	t.Helper()
	if err := waitFor(30*time.Second, func() error {
		left := jobProcs(id)
		for _, pid := range before {
			if (testutil.Proc{PID: pid}).Alive() {
				left = append(left, pid)
			}
		}
		if len(left) > 0 {
			return fmt.Errorf("processes of job %s left %s: %v", id, after, left)
		}
		return nil
	}); err != nil {
		t.Error(err)
	}
}

var jobIDRE = regexp.MustCompile(`Slurm job (\d+)`)

// jobOf is what squeue says of a job: "STATE node user".
func jobOf(t *testing.T, id string) string {
	t.Helper()
	out, err := testlab.Run(nil, "squeue", "--noheader", "--states=all", "--jobs="+id, "--format=%T %N %u")
	if err != nil {
		t.Fatalf("squeue: %v", err)
	}
	return out
}

func loggedIn(t testing.TB, h *slurmHub, name, pw string) *browser {
	t.Helper()
	b := newBrowserAt(t, h.public)
	if r := b.login(name, pw); r.StatusCode != http.StatusFound {
		t.Fatalf("login %s: %d", name, r.StatusCode)
	}
	return b
}

func TestSlurm(t *testing.T) {
	need(t)
	c := slurmlab.Start(t, slurmlab.Options{})
	h := startSlurmHub(t)
	aliceU, _ := user.Lookup(alice)
	var jobID string

	t.Run("Chromium picks the Slurm profile; the server runs as a job on node2", func(t *testing.T) {
		shots := filepath.Join(repoRoot(), "test-artifacts", "e2e-slurm")
		_ = os.MkdirAll(shots, 0o755)
		ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
		defer cancel()
		out, err := exec.CommandContext(ctx, "node", filepath.Join(repoRoot(), "test/browser/profile-spawn.js"), h.public, alice, alicePW, "slurm", shots).CombinedOutput()
		var res struct {
			OK       bool
			Messages []string
			Cell     string
			Env      string
			Seconds  float64
		}
		if err != nil || json.Unmarshal(out, &res) != nil || !res.OK {
			t.Fatalf("browser: %v\n%s\nhub log:\n%s", err, out, h.logTail())
		}
		t.Logf("click to a cell's output in %.1f s; the spawn page said %q", res.Seconds, res.Messages)
		said := strings.Join(res.Messages, "\n")
		if !strings.Contains(said, "Slurm job") || !strings.Contains(said, "on node2") {
			t.Errorf("the spawn page did not follow the job: %q", res.Messages)
		}
		node, id, _ := strings.Cut(res.Env, " ")
		if node != "node2" || id == "" {
			t.Fatalf("the kernel runs on %q in job %q, want node2", node, id)
		}
		jobID = id
		if got := jobOf(t, id); got != "RUNNING node2 "+alice {
			t.Errorf("squeue: %q, want RUNNING on node2 as %s", got, alice)
		}
		s, ok := h.session(t, alice)
		if !ok || s.JobID != id || s.Node != "node2" || s.JobState != "RUNNING" || s.Profile != "slurm" || !strings.HasPrefix(s.Address, "127.0.0.2:") {
			t.Errorf("the admin socket's session: %+v", s)
		}
		var server []int
		for _, pid := range serverPIDs(t, alice) {
			if cg := string((testutil.Proc{PID: pid}).Read("cgroup")); strings.Contains(cg, "slurm_node2") && strings.Contains(cg, "job_"+id) {
				server = append(server, pid)
			}
		}
		if len(server) != 1 {
			t.Fatalf("no single jupyterhub-singleuser of %s in job %s's cgroup on node2: %v", alice, id, server)
		}
		if uid := procUID(server[0]); uid != aliceU.Uid {
			t.Errorf("the server runs as uid %s, want %s", uid, aliceU.Uid)
		}
	})
	if jobID == "" {
		t.FailNow()
	}

	b := loggedIn(t, h, alice, alicePW)
	openTree(t, b, alice)
	kernel := startKernel(t, b, alice)

	t.Run("hubtui shows the job, its node and state", func(t *testing.T) {
		x := hubtuiOn(t, h.cfg.socket())
		x.run("send-keys", "-t", "t", "/")
		x.run("send-keys", "-t", "t", "-l", "alice")
		x.run("send-keys", "-t", "t", "Enter", "Enter")
		screen := x.waitScreen("Slurm job")
		for _, want := range []string{jobID, "node2", "RUNNING", "slurm", "127.0.0.2:"} {
			if !strings.Contains(screen, want) {
				t.Errorf("hubtui's detail lacks %q:\n%s", want, screen)
			}
		}
	})

	t.Run("kill -9 of the hub and a restart re-attach the job", func(t *testing.T) {
		before := jobProcs(jobID)
		h.kill9()
		if err := h.hubProcess.start(); err != nil {
			t.Fatalf("restart: %v\n%s", err, h.logTail())
		}
		if got := jobOf(t, jobID); got != "RUNNING node2 "+alice {
			t.Errorf("squeue after the restart: %q", got)
		}
		if after := jobProcs(jobID); fmt.Sprint(after) != fmt.Sprint(before) {
			t.Errorf("the job's processes changed across the crash: %v → %v", before, after)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		if got, err := b.execute(ctx, alice, kernel, "40+2"); err != nil || got != "42" {
			t.Fatalf("a cell over the websocket after the restart: %q %v\n%s", got, err, h.logTail())
		}
		if s, ok := h.session(t, alice); !ok || s.JobID != jobID || s.State != "running" {
			t.Errorf("session after the restart: %+v", s)
		}
	})

	t.Run("stop cancels the job and nothing of it survives", func(t *testing.T) {
		before := jobProcs(jobID)
		if len(before) < 2 {
			t.Fatalf("expected the server and its kernel in the job, found %v", before)
		}
		r := b.do("DELETE", "/hub/api/users/"+alice+"/server", nil, map[string]string{"X-XSRFToken": b.cookie("/hub/", "_xsrf")})
		if body := readAll(r); r.StatusCode != http.StatusNoContent {
			t.Fatalf("stop: %d %s", r.StatusCode, body)
		}
		if got := jobOf(t, jobID); !strings.HasPrefix(got, "CANCELLED") {
			t.Errorf("squeue after the stop: %q, want CANCELLED", got)
		}
		noneLeft(t, jobID, before, "after the stop")
	})

	t.Run("a job at its time limit: the home page says so", func(t *testing.T) {
		bobs := loggedIn(t, h, bob, bobPW)
		if code, body := h.start(t, bob, "short"); code != http.StatusCreated {
			t.Fatalf("start: %d %s\n%s", code, body, h.logTail())
		}
		s, _ := h.session(t, bob)
		before := jobProcs(s.JobID)
		if len(before) == 0 {
			t.Fatalf("no processes in job %s", s.JobID)
		}
		c.ExpireJob(s.JobID)
		home := h.homeSays(t, bobs, "reached its time limit", 90*time.Second)
		t.Logf("home page: %s", failureLine(home))
		if !strings.Contains(home, "TIMEOUT") || !strings.Contains(home, "TimeLimit") {
			t.Errorf("the home page does not give Slurm's state and reason: %s", failureLine(home))
		}
		noneLeft(t, s.JobID, before, "after the time limit")
	})

	t.Run("a partition that does not exist: sbatch's words", func(t *testing.T) {
		code, body := h.start(t, alice, "nosuch")
		if code != http.StatusInternalServerError || !strings.Contains(body, "invalid partition specified: nosuch") {
			t.Errorf("start: %d %s", code, body)
		}
		h.homeSays(t, b, "invalid partition specified: nosuch", 10*time.Second)
	})

	t.Run("a job that never reports: cancelled at the start timeout", func(t *testing.T) {
		t0 := time.Now()
		code, body := h.start(t, alice, "silent")
		if code != http.StatusAccepted {
			t.Errorf("start: %d %s", code, body)
		}
		home := h.homeSays(t, b, "did not report its address", 60*time.Second)
		t.Logf("failed after %s: %s", time.Since(t0).Round(time.Second), failureLine(home))
		m := jobIDRE.FindStringSubmatch(failureLine(home))
		if m == nil {
			t.Fatalf("the failure names no job: %s", failureLine(home))
		}
		if got := jobOf(t, m[1]); !strings.HasPrefix(got, "CANCELLED") {
			t.Errorf("squeue: %q, want the job cancelled", got)
		}
		noneLeft(t, m[1], nil, "after the timeout")
	})

	t.Run("the controller down: a clear error; servers beside the hub still start", func(t *testing.T) {
		c.StopController()
		defer c.StartController()
		done := make(chan string, 1)
		go func() {
			code, body := h.start(t, alice, "slurm")
			done <- fmt.Sprintf("%d %s", code, body)
		}()
		if code, body := h.start(t, bob, "local"); code != http.StatusCreated {
			t.Errorf("a sudo server with the controller down: %d %s", code, body)
		}
		if r := readAll(loggedIn(t, h, bob, bobPW).do("GET", "/user/"+bob+"/api", nil, nil)); !strings.Contains(r, "version") {
			t.Errorf("bob's server through the proxy: %s", r)
		}
		<-done
		home := h.homeSays(t, b, "Unable to contact slurm controller", 60*time.Second)
		if !strings.Contains(home, "slurmctld running") {
			t.Errorf("the error does not say what to check: %s", failureLine(home))
		}
		if code, body := h.api(t, http.MethodDelete, "/users/"+bob+"/server", h.admin, nil); code != http.StatusNoContent {
			t.Errorf("stop bob: %d %s", code, body)
		}
	})

	t.Run("a profile for a group: not offered to others, refused by the API", func(t *testing.T) {
		if code, body := h.api(t, http.MethodPost, "/groups/hubtest-e2e-gpu", h.admin, map[string][]string{"users": {alice}}); code != http.StatusCreated {
			t.Fatalf("create the group: %d %s", code, body)
		}
		bobs := loggedIn(t, h, bob, bobPW)
		form := readAll(bobs.do("GET", "/hub/spawn", nil, nil))
		if !strings.Contains(form, `value="slurm"`) || strings.Contains(form, "members-only") {
			t.Errorf("bob's form offers the group's profile, or lacks the others:\n%s", form)
		}
		if code, body := h.start(t, bob, "members-only"); code != http.StatusForbidden || !strings.Contains(body, "not available to you") {
			t.Errorf("bob starting the group's profile: %d %s", code, body)
		}
		if form := readAll(b.do("GET", "/hub/spawn", nil, nil)); !strings.Contains(form, `value="members-only"`) {
			t.Errorf("alice's form lacks her group's profile:\n%s", form)
		}
	})

	t.Run("hubd doctor checks the controller and the profiles' partitions", func(t *testing.T) {
		out, _ := exec.Command(helperBin, "doctor", "--json", "--config", h.config, "--hub-user", hubUser).Output()
		var findings []struct{ Check, Status, Message string }
		if err := json.Unmarshal(out, &findings); err != nil {
			t.Fatalf("doctor --json: %v\n%s", err, out)
		}
		got := map[string]string{}
		for _, f := range findings {
			if strings.HasPrefix(f.Check, "Slurm") {
				got[strings.Fields(f.Check)[1]] = f.Status + " " + f.Message
			}
		}
		for check, want := range map[string]string{"controller": "OK answers; partitions main, short", "queue": "OK",
			"partitions": "FAIL no such partition: nosuch (profile nosuch)", "process": "OK proctrack/" + c.Proctrack} {
			if !strings.HasPrefix(got[check], want) {
				t.Errorf("doctor's Slurm %s check: %q, want %q…", check, got[check], want)
			}
		}
	})
}

// hubtuiOn runs hubtui on an admin socket in a private tmux server.
func hubtuiOn(t *testing.T, socket string) tmux {
	t.Helper()
	bin := filepath.Join(binDir, "hubtui")
	build := exec.Command("go", "build", "-o", bin, "./cmd/hubtui")
	build.Dir = repoRoot()
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build hubtui: %v\n%s", err, out)
	}
	x := tmux{t: t, socket: "hubtest-e2e"}
	exec.Command("tmux", "-L", x.socket, "kill-server").Run()
	t.Cleanup(func() { exec.Command("tmux", "-L", x.socket, "kill-server").Run() })
	x.run("new-session", "-d", "-s", "t", "-x", "160", "-y", "48", bin+" --socket "+socket+" --refresh 500ms")
	x.run("set-option", "-t", "t", "remain-on-exit", "on")
	x.waitScreen("Sessions")
	return x
}
