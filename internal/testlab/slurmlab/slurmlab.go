// Package slurmlab runs a real Slurm cluster on this machine for tests:
// its own munged, slurmctld and two slurmd nodes, node1 at 127.0.0.1 and
// node2 at 127.0.0.2 (both loopback, so a job on node2 can bind its server
// to 127.0.0.2 and the hub reaches it there), a default partition and a
// short one. Slurm's commands find the cluster through /etc/slurm/slurm.conf,
// which the lab writes (marked as its own) and removes again.
//
// Facts the tests rely on, found on Slurm 22.05 (Debian 12):
//   - Always pass --gid with `sbatch --uid`: without it the job runs with
//     gid 0; and --export=NONE, or root's environment reaches the job.
//   - Time limits are whole minutes, and slurmctld checks them every 30 s,
//     so a job at its limit ends up to 30 s late. ExpireJob sets a running
//     job's limit to zero: the same check then ends it within 30 s.
//   - Without slurmdbd there is no sacct accounting. A finished job's state
//     and reason (JobState=TIMEOUT Reason=TimeLimit) stay in `scontrol show
//     job` and `squeue --states=all` for MinJobAge (300 s); the job
//     completion log (`sacct --completion`) keeps the state for good; and
//     slurmstepd writes "*** JOB n ON node CANCELLED AT ... DUE TO TIME
//     LIMIT ***" to the job's stderr.
//   - With the controller down, sbatch and squeue retry for about 9 s
//     before they fail with "Unable to contact slurm controller"; running
//     jobs go on, and a restarted controller recovers them from its state.
//   - slurmctld starts no job in its first seconds; Start runs one job per
//     node before it returns, so a test's first job starts at once.
//   - slurmd writes its pid file only once registered, so every daemon runs
//     in the foreground as a child of the test and is stopped by pid.
package slurmlab

import (
	"bytes"
	"crypto/rand"
	_ "embed"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"text/template"
	"time"

	"golang.org/x/sys/unix"

	"github.com/hubd/hubd/internal/testlab"
	"github.com/hubd/hubd/internal/testutil"
)

// Fixed places: Slurm's commands read /etc/slurm/slurm.conf (sbatch run
// through sudo sees no SLURM_CONF), and that file names absolute paths.
const (
	ConfPath = "/etc/slurm/slurm.conf"
	StateDir = "/var/lib/hubtest-slurm"
	cgConf   = "/etc/slurm/cgroup.conf"
	runDir   = "/run/hubtest-slurm"
	lockPath = "/run/hubtest-slurm.lock"
	mark     = "# hubd test lab: written by internal/testlab/slurmlab, removed when its test ends"
	// cgroups are the ones slurmd makes for jobs, slurm_<node> in each
	// hierarchy.
	cgroups     = "/sys/fs/cgroup/*/slurm_node*"
	mungeSocket = runDir + "/munge/munge.socket"
)

//go:embed slurm.conf.tmpl
var confTemplate string

// Options tune the cluster.
type Options struct {
	// ShortMaxTime is the MaxTime, in minutes, of the short partition
	// (default 1, Slurm's smallest).
	ShortMaxTime int
	// Proctrack is "cgroup" or "linuxproc"; by default cgroup when the v1
	// freezer hierarchy is mounted, else linuxproc.
	Proctrack string
	// OverSubscribe lets up to this many jobs share each CPU of the
	// default partition (OverSubscribe=FORCE:N), for tests that run more
	// jobs at once than the machine has cores; 0 gives each job its own.
	OverSubscribe int
}

// Node is one slurmd.
type Node struct {
	Name string
	Addr string // NodeAddr: where slurmctld, the hub and its jobs reach it
	Port int    // slurmd's port
}

// Cluster is a running lab cluster.
type Cluster struct {
	Nodes            []Node // node1 (127.0.0.1) and node2 (127.0.0.2)
	DefaultPartition string
	ShortPartition   string // MaxTime = Options.ShortMaxTime
	// Proctrack is "cgroup" (scancel kills every process of a job) or
	// "linuxproc" (processes that setsid and double-fork escape scancel).
	Proctrack string

	t         testing.TB
	munged    *testlab.Daemon
	ctld      *testlab.Daemon
	slurmd    map[string]*testlab.Daemon
	files     []*etcFile
	cancelled bool
}

// Start brings the cluster up. Its teardown (t.Cleanup) cancels every job,
// stops exactly the daemons it started, kills anything left in the jobs'
// cgroups, and removes its state and /etc files.
func Start(t testing.TB, o Options) *Cluster {
	t.Helper()
	testutil.NeedRoot(t)
	for _, bin := range []string{"/usr/sbin/munged", "/usr/sbin/slurmctld", "/usr/sbin/slurmd", "/usr/bin/sbatch"} {
		_, err := os.Stat(bin)
		testutil.Require(t, err == nil, "%s is missing (packages munge slurmctld slurmd slurm-client)", bin)
	}
	if o.ShortMaxTime <= 0 {
		o.ShortMaxTime = 1
	}
	if o.Proctrack == "" {
		o.Proctrack = "linuxproc"
		var st unix.Statfs_t
		if unix.Statfs("/sys/fs/cgroup/freezer", &st) == nil && st.Type == unix.CGROUP_SUPER_MAGIC {
			o.Proctrack = "cgroup"
		}
	}
	testlab.Lock(t, testlab.CgroupsLock)
	testlab.Lock(t, lockPath)

	c := &Cluster{
		Nodes:            []Node{{"node1", "127.0.0.1", 17001}, {"node2", "127.0.0.2", 17002}},
		DefaultPartition: "main",
		ShortPartition:   "short",
		Proctrack:        o.Proctrack,
		t:                t,
		slurmd:           map[string]*testlab.Daemon{},
		files:            []*etcFile{{path: ConfPath}, {path: cgConf}},
	}
	for _, f := range c.files {
		if err := f.check(); err != nil {
			t.Fatal(err)
		}
	}
	// What a test binary that died before its cleanup left running.
	for _, match := range []string{"-f " + ConfPath, StateDir + "/"} {
		testlab.KillLeftovers(match)
	}
	if _, err := testlab.KillCgroups(cgroups); err != nil {
		t.Fatal(err)
	}
	// Registered first, so it runs last: after the daemons have stopped.
	t.Cleanup(c.removeAll)
	if err := c.prepare(o); err != nil {
		t.Fatalf("slurm lab: %v", err)
	}
	if err := c.startMunge(); err != nil {
		t.Fatalf("slurm lab: %v", err)
	}
	if err := c.startController(); err != nil {
		t.Fatalf("slurm lab: %v", err)
	}
	for _, n := range c.Nodes {
		cmd := exec.Command("/usr/sbin/slurmd", "-D", "-f", ConfPath, "-N", n.Name)
		cmd.Env = []string{testlab.SystemPath, "LANG=C.UTF-8"}
		d, err := testlab.StartDaemon(t, "slurmd-"+n.Name, StateDir+"/log/slurmd-"+n.Name+".out", cmd)
		if err != nil {
			t.Fatalf("slurm lab: %v", err)
		}
		c.slurmd[n.Name] = d
	}
	// Cleanups run last-in first-out: this one before any daemon stops.
	t.Cleanup(c.cancelAll)
	if err := c.ctld.WaitReady(30*time.Second, c.allIdle); err != nil {
		t.Fatalf("slurm lab: %v", err)
	}
	for _, n := range c.Nodes {
		id, err := Submit("#!/bin/sh\ntrue\n", "sbatch", "--output=/dev/null", "--nodelist="+n.Name)
		if err != nil {
			t.Fatalf("slurm lab: %v", err)
		}
		c.WaitJobState(id, "COMPLETED", 30*time.Second)
	}
	return c
}

// prepare writes the directories, the munge key and the configuration.
func (c *Cluster) prepare(o Options) error {
	slurmUID, slurmGID, err := lookupIDs("slurm")
	if err != nil {
		return fmt.Errorf("user slurm (package slurmctld): %w", err)
	}
	mungeUID, mungeGID, err := lookupIDs("munge")
	if err != nil {
		return fmt.Errorf("user munge (package munge): %w", err)
	}
	os.RemoveAll(StateDir)
	os.RemoveAll(runDir)
	type dir struct {
		path     string
		mode     os.FileMode
		uid, gid int
	}
	dirs := []dir{
		{StateDir, 0o755, 0, 0},
		{StateDir + "/run", 0o755, 0, 0}, // the daemons' pid files
		{StateDir + "/ctld", 0o700, slurmUID, slurmGID},
		{StateDir + "/log", 0o755, slurmUID, slurmGID},
		{StateDir + "/munge", 0o700, mungeUID, mungeGID},
		{runDir, 0o755, 0, 0},
		{runDir + "/munge", 0o755, mungeUID, mungeGID},
	}
	for _, n := range c.Nodes {
		dirs = append(dirs, dir{StateDir + "/spool-" + n.Name, 0o755, 0, 0})
	}
	for _, d := range dirs {
		if err := os.Mkdir(d.path, d.mode); err != nil {
			return err
		}
		if err := os.Chmod(d.path, d.mode); err != nil { // whatever the umask
			return err
		}
		if err := os.Chown(d.path, d.uid, d.gid); err != nil {
			return err
		}
	}
	key := make([]byte, 1024)
	rand.Read(key)
	keyFile := StateDir + "/munge/munge.key"
	if err := os.WriteFile(keyFile, key, 0o400); err != nil {
		return err
	}
	if err := os.Chown(keyFile, mungeUID, mungeGID); err != nil {
		return err
	}

	memMB, err := memTotalMB()
	if err != nil {
		return err
	}
	var conf bytes.Buffer
	err = template.Must(template.New("slurm.conf").Parse(confTemplate)).Execute(&conf, map[string]any{
		"MungeSocket":      mungeSocket,
		"State":            StateDir,
		"Proctrack":        o.Proctrack,
		"Nodes":            c.Nodes,
		"CPUs":             runtime.NumCPU(),
		"MemoryMB":         memMB / len(c.Nodes), // slurmd refuses a node claiming more than the machine has
		"DefaultPartition": c.DefaultPartition,
		"ShortPartition":   c.ShortPartition,
		"ShortMaxTime":     o.ShortMaxTime,
		"OverSubscribe":    o.OverSubscribe,
	})
	if err != nil {
		return err
	}
	if err := c.files[0].write(conf.String()); err != nil {
		return err
	}
	if o.Proctrack == "cgroup" {
		return c.files[1].write("CgroupPlugin=cgroup/v1\nConstrainCores=no\nConstrainRAMSpace=no\n")
	}
	return nil
}

func lookupIDs(name string) (uid, gid int, err error) {
	u, err := user.Lookup(name)
	if err != nil {
		return 0, 0, err
	}
	if uid, err = strconv.Atoi(u.Uid); err != nil {
		return 0, 0, err
	}
	gid, err = strconv.Atoi(u.Gid)
	return uid, gid, err
}

// memTotalMB is the machine's memory less 256 MB for the system.
func memTotalMB() (int, error) {
	data, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0, err
	}
	for line := range strings.SplitSeq(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "MemTotal:"); ok {
			kb, err := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(rest), " kB"))
			return kb/1024 - 256, err
		}
	}
	return 0, errors.New("no MemTotal in /proc/meminfo")
}

// startMunge starts the lab's own munged, on its own socket with its own
// key: a munged of the host is neither used nor touched.
func (c *Cluster) startMunge() error {
	uid, gid, err := lookupIDs("munge")
	if err != nil {
		return err
	}
	cmd := exec.Command("/usr/sbin/munged", "--foreground", "--socket="+mungeSocket,
		"--key-file="+StateDir+"/munge/munge.key", "--pid-file="+runDir+"/munge/munged.pid",
		"--seed-file="+StateDir+"/munge/munged.seed", "--log-file="+StateDir+"/munge/munged.log")
	cmd.Env = []string{testlab.SystemPath, "LANG=C.UTF-8"}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), Groups: []uint32{}}}
	c.munged, err = testlab.StartDaemon(c.t, "munged", StateDir+"/log/munged.out", cmd)
	if err != nil {
		return err
	}
	return c.munged.WaitReady(10*time.Second, func() error {
		_, err := testlab.Run(nil, "munge", "--socket="+mungeSocket, "--no-input")
		return err
	})
}

// StopController stops slurmctld, as when the controller is down.
func (c *Cluster) StopController() {
	c.t.Helper()
	if err := c.ctld.Stop(); err != nil {
		c.t.Error(err)
	}
}

// StartController starts slurmctld again and waits until it answers. It
// recovers its jobs from its state directory.
func (c *Cluster) StartController() {
	c.t.Helper()
	if err := c.startController(); err != nil {
		c.t.Fatalf("slurm lab: %v", err)
	}
	// This slurmctld's Stop was registered last: cancel the jobs before it.
	c.t.Cleanup(c.cancelAll)
}

func (c *Cluster) startController() error {
	cmd := exec.Command("/usr/sbin/slurmctld", "-D", "-f", ConfPath)
	cmd.Env = []string{testlab.SystemPath, "LANG=C.UTF-8"}
	d, err := testlab.StartDaemon(c.t, "slurmctld", StateDir+"/log/slurmctld.out", cmd)
	if err != nil {
		return err
	}
	c.ctld = d
	return d.WaitReady(30*time.Second, func() error {
		_, err := testlab.Run(nil, "scontrol", "ping")
		return err
	})
}

func (c *Cluster) allIdle() error {
	out, err := testlab.Run(nil, "sinfo", "-h", "-N", "-p", c.DefaultPartition, "-o", "%N=%t")
	if err != nil {
		return err
	}
	for _, n := range c.Nodes {
		if !slices.Contains(strings.Fields(out), n.Name+"=idle") {
			return fmt.Errorf("nodes not idle: %s", out)
		}
	}
	return nil
}

// Node returns the node with that name.
func (c *Cluster) Node(name string) Node {
	for _, n := range c.Nodes {
		if n.Name == name {
			return n
		}
	}
	c.t.Fatalf("slurm lab: no node %q", name)
	return Node{}
}

// Job returns the fields of `scontrol show job` (JobState, Reason,
// BatchHost, StdOut, StdErr, TimeLimit, ...), known while slurmctld keeps
// the job.
func (c *Cluster) Job(id string) (map[string]string, error) {
	out, err := testlab.Run(nil, "scontrol", "-o", "show", "job", id)
	if err != nil {
		return nil, err
	}
	fields := map[string]string{}
	for _, kv := range strings.Fields(out) {
		if k, v, ok := strings.Cut(kv, "="); ok {
			fields[k] = v
		}
	}
	return fields, nil
}

// WaitJobState waits until the job reaches state (RUNNING, TIMEOUT, ...)
// and returns its fields then.
func (c *Cluster) WaitJobState(id, state string, timeout time.Duration) map[string]string {
	c.t.Helper()
	var job map[string]string
	var err error
	if !testlab.Poll(timeout, func() bool {
		job, err = c.Job(id)
		return err == nil && job["JobState"] == state
	}) {
		c.t.Fatalf("job %s not %s after %s: state %s reason %s (%v)", id, state, timeout, job["JobState"], job["Reason"], err)
	}
	return job
}

// ExpireJob sets a running job's time limit to zero. slurmctld ends it at
// its next time-limit check (within 30 s) as TIMEOUT with reason TimeLimit,
// exactly as when a job reaches its limit, without waiting whole minutes.
func (c *Cluster) ExpireJob(id string) {
	c.t.Helper()
	if _, err := testlab.Run(nil, "scontrol", "update", "JobId="+id, "TimeLimit=0"); err != nil {
		c.t.Fatalf("expire job %s: %v", id, err)
	}
}

// Submit runs sbatch with the script on stdin (as batchspawner does) and
// returns the job id. argv is the command up to the script, for example
// {"sudo", "-n", "-u", user, "/usr/bin/sbatch"} or {"sbatch", "--uid", ...}.
func Submit(script string, argv ...string) (string, error) {
	out, err := testlab.RunInput(nil, []byte(script), append(slices.Clip(argv), "--parsable")...)
	id, _, _ := strings.Cut(out, ";") // "id;cluster" on federations
	return id, err
}

// cancelAll is the first step of the teardown: cancel every job and wait
// until none is left, with the controller (started again if a test stopped
// it) and the nodes still running. Only its first call does anything. It must not stop the test (no Fatal):
// the rest of the teardown has to run.
func (c *Cluster) cancelAll() {
	t := c.t
	if c.cancelled || c.munged.Exited() {
		return
	}
	c.cancelled = true
	if c.ctld.Exited() {
		if err := c.startController(); err != nil {
			t.Errorf("slurm lab: start the controller again to cancel the jobs: %v", err)
			return
		}
	}
	// scancel's filters take one partition or user each: name the jobs.
	ids, err := testlab.Run(nil, "squeue", "-h", "-o", "%i")
	if err == nil && ids != "" {
		_, err = testlab.Run(nil, append([]string{"scancel"}, strings.Fields(ids)...)...)
	}
	if err != nil {
		t.Errorf("slurm lab: cancel the jobs: %v", err)
	}
	if !testlab.Poll(30*time.Second, func() bool {
		out, err := testlab.Run(nil, "squeue", "-h", "-o", "%i")
		return err == nil && out == ""
	}) {
		out, _ := testlab.Run(nil, "squeue")
		t.Errorf("slurm lab: jobs left 30 s after scancel:\n%s", out)
	}
}

// removeAll is the last step of the teardown, after the daemons stopped.
func (c *Cluster) removeAll() {
	t := c.t
	if pids, err := testlab.KillCgroups(cgroups); err != nil || len(pids) > 0 {
		t.Errorf("slurm lab: processes outlived their jobs and were killed: %v (%v)", pids, err)
	}
	for _, f := range c.files {
		if err := f.remove(); err != nil {
			t.Error(err)
		}
	}
	for _, d := range []string{StateDir, runDir} {
		if err := os.RemoveAll(d); err != nil {
			t.Error(err)
		}
	}
}

// etcFile is a configuration file the lab writes under /etc. Its first
// line is mark; an existing file without it belongs to the host and is
// never overwritten. A marked file left by a test that died is the lab's.
type etcFile struct{ path string }

func (e *etcFile) check() error {
	data, err := os.ReadFile(e.path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if !bytes.HasPrefix(data, []byte(mark+"\n")) {
		return fmt.Errorf("%s exists and was not written by the slurm test lab: move it away to run this test", e.path)
	}
	return nil
}

func (e *etcFile) write(content string) error {
	if err := e.check(); err != nil {
		return err
	}
	return os.WriteFile(e.path, []byte(mark+"\n"+content), 0o644)
}

// remove deletes the file if it is the lab's, which leaves /etc/slurm as
// the packages installed it.
func (e *etcFile) remove() error {
	if err := e.check(); err != nil {
		return err
	}
	if err := os.Remove(e.path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}
