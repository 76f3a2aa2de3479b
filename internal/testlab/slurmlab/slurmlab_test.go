package slurmlab_test

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"os/user"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hubd/hubd/internal/testlab"
	"github.com/hubd/hubd/internal/testlab/slurmlab"
	"github.com/hubd/hubd/internal/testutil"
)

const member = "hubtest-slurmu"

// serverScript is a batch job the way a spawner submits one: it finds its
// node's address, reports its pid, leaves a setsid'd, double-forked
// grandchild behind (which scancel must still kill), and serves HTTP on
// that address.
func serverScript(home, node string) string {
	return fmt.Sprintf(`#!/bin/bash
#SBATCH --job-name=hubtest-server
#SBATCH --output=%[1]s/hubtest-%%j.out
#SBATCH --chdir=%[1]s
#SBATCH --nodelist=%[2]s
addr=$(/usr/bin/scontrol show node "$SLURMD_NODENAME" | /bin/sed -n 's/.*NodeAddr=\([^ ]*\).*/\1/p')
echo "pid=$$ node=$SLURMD_NODENAME addr=$addr"
( /usr/bin/setsid /bin/sh -c 'echo "grandchild=$$"; exec /bin/sleep 300' & )
exec /usr/bin/python3 -u -m http.server --bind "$addr" 0
`, home, node)
}

// jobOutput waits until every key=value in want has appeared in the job's
// output file and returns the values.
func jobOutput(t *testing.T, path string, keys ...string) map[string]string {
	t.Helper()
	vals := map[string]string{}
	var data []byte
	if !testlab.Poll(20*time.Second, func() bool {
		data, _ = os.ReadFile(path)
		for _, k := range keys {
			m := regexp.MustCompile(`(?:^|\s)` + k + `=(\S+)`).FindSubmatch(data)
			if m == nil {
				return false
			}
			vals[k] = string(m[1])
		}
		return true
	}) {
		t.Fatalf("job output %s lacks %v:\n%s", path, keys, data)
	}
	return vals
}

func pidOf(t *testing.T, s string) int {
	t.Helper()
	pid, err := strconv.Atoi(s)
	if err != nil {
		t.Fatal(err)
	}
	return pid
}

func TestCluster(t *testing.T) {
	testutil.NeedRoot(t)
	var h testutil.Host
	t.Cleanup(h.Cleanup) // after the cluster's teardown (cleanups run last-in first-out)
	if err := h.User(member, ""); err != nil {
		t.Fatal(err)
	}
	u, err := user.Lookup(member)
	if err != nil {
		t.Fatal(err)
	}
	// The cluster lives in this subtest; its teardown runs when the subtest
	// ends, and the checks after it see what the teardown left.
	t.Run("cluster", func(t *testing.T) { testCluster(t, u) })

	// Start refuses a slurm.conf that is not the lab's, so none is left.
	for _, p := range []string{slurmlab.ConfPath, slurmlab.StateDir} {
		if _, err := os.Stat(p); err == nil {
			t.Errorf("%s is left", p)
		}
	}
	for _, match := range []string{slurmlab.ConfPath, slurmlab.StateDir} {
		if pids := testutil.Procs(testutil.WithCmdline(match)); len(pids) > 0 {
			t.Errorf("lab daemons still run: %v", pids)
		}
	}
	if dirs, _ := filepath.Glob("/sys/fs/cgroup/*/slurm_node*"); len(dirs) > 0 {
		t.Errorf("cgroups left: %v", dirs)
	}
}

func testCluster(t *testing.T, u *user.User) {
	start := time.Now()
	c := slurmlab.Start(t, slurmlab.Options{})
	t.Logf("cluster up (nodes idle) in %s, proctrack/%s", time.Since(start).Round(time.Millisecond), c.Proctrack)
	node2 := c.Node("node2")
	if node2.Addr != "127.0.0.2" {
		t.Fatalf("node2 at %s, want 127.0.0.2", node2.Addr)
	}

	t.Run("jobs", func(t *testing.T) {
		t.Run("TimeLimit", func(t *testing.T) {
			t.Parallel()
			script := fmt.Sprintf("#!/bin/bash\n#SBATCH --output=%s/hubtest-limit-%%j.out\n#SBATCH --nodelist=node1\nexec /bin/sleep 600\n", u.HomeDir)
			id, err := slurmlab.Submit(script, "sudo", "-n", "-u", member, "/usr/bin/sbatch", "--partition="+c.ShortPartition)
			if err != nil {
				t.Fatal(err)
			}
			job := c.WaitJobState(id, "RUNNING", 30*time.Second)
			if job["TimeLimit"] != "00:01:00" {
				t.Errorf("a job in the short partition has TimeLimit=%s, want its MaxTime 00:01:00", job["TimeLimit"])
			}
			c.ExpireJob(id)
			job = c.WaitJobState(id, "TIMEOUT", 45*time.Second)
			if job["Reason"] != "TimeLimit" {
				t.Errorf("scontrol: a timed-out job has Reason=%s, want TimeLimit", job["Reason"])
			}
			if out, err := testlab.Run(nil, "squeue", "-h", "--states=all", "-j", id, "-o", "%T %r"); err != nil || out != "TIMEOUT TimeLimit" {
				t.Errorf("squeue --states=all: %q %v, want TIMEOUT TimeLimit", out, err)
			}
			if !testlab.Poll(10*time.Second, func() bool {
				out, _ := testlab.Run(nil, "sacct", "--completion", "-n", "-j", id, "-o", "State")
				return strings.TrimSpace(out) == "TIMEOUT"
			}) {
				out, err := testlab.Run(nil, "sacct", "--completion", "-j", id)
				t.Errorf("sacct --completion does not show TIMEOUT: %v\n%s", err, out)
			}
			data, _ := os.ReadFile(job["StdErr"])
			if !strings.Contains(string(data), "DUE TO TIME LIMIT") {
				t.Errorf("the job's stderr %s does not say DUE TO TIME LIMIT:\n%s", job["StdErr"], data)
			}
		})
		t.Run("Server", func(t *testing.T) {
			t.Parallel()
			submitters := []struct {
				name   string
				submit []string
				cancel []string
			}{
				{"sudo", []string{"sudo", "-n", "-u", member, "/usr/bin/sbatch"}, []string{"sudo", "-n", "-u", member, "/usr/bin/scancel"}},
				{"root-uid-gid", []string{"/usr/bin/sbatch", "--uid=" + member, "--gid=" + u.Gid, "--export=NONE"}, []string{"/usr/bin/scancel"}},
			}
			for _, s := range submitters {
				t.Run(s.name, func(t *testing.T) {
					start := time.Now()
					id, err := slurmlab.Submit(serverScript(u.HomeDir, node2.Name), s.submit...)
					if err != nil {
						t.Fatal(err)
					}
					job := c.WaitJobState(id, "RUNNING", 30*time.Second)
					if job["BatchHost"] != node2.Name {
						t.Errorf("job runs on %s, want %s", job["BatchHost"], node2.Name)
					}
					if out, err := testlab.Run(nil, "squeue", "-h", "-j", id, "-o", "%T %N %u"); err != nil || out != "RUNNING node2 "+member {
						t.Errorf("squeue: %q %v, want RUNNING node2 %s", out, err, member)
					}
					out := filepath.Join(u.HomeDir, "hubtest-"+id+".out")
					vals := jobOutput(t, out, "pid", "addr", "grandchild")
					if vals["addr"] != node2.Addr {
						t.Errorf("the job found its node address %q, want %s", vals["addr"], node2.Addr)
					}
					var port string
					if !testlab.Poll(20*time.Second, func() bool {
						data, _ := os.ReadFile(out)
						m := regexp.MustCompile(`Serving HTTP on 127\.0\.0\.2 port (\d+)`).FindSubmatch(data)
						if m != nil {
							port = string(m[1])
						}
						return m != nil
					}) {
						data, _ := os.ReadFile(out)
						t.Fatalf("no server in the job's output:\n%s", data)
					}
					t.Logf("%s: sbatch to listening server: %s", s.name, time.Since(start).Round(time.Millisecond))
					resp, err := http.Get("http://" + node2.Addr + ":" + port + "/")
					if err != nil {
						t.Fatal(err)
					}
					body, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					if resp.StatusCode != 200 || !strings.Contains(string(body), "Directory listing") {
						t.Errorf("GET the job's server: %d\n%s", resp.StatusCode, body)
					}

					pid, grandchild := pidOf(t, vals["pid"]), pidOf(t, vals["grandchild"])
					uid, gid, groups, _ := testutil.Proc{PID: pid}.IDs()
					if uid != u.Uid || gid != u.Gid || !slices.Contains(groups, u.Gid) {
						t.Errorf("the server runs as uid %s gid %s groups %v, want %s %s with %s", uid, gid, groups, u.Uid, u.Gid, u.Gid)
					}
					if !(testutil.Proc{PID: grandchild}).Alive() {
						t.Fatalf("the setsid'd grandchild %d is not running", grandchild)
					}

					if o, err := testlab.Run(nil, append(s.cancel, id)...); err != nil {
						t.Fatalf("scancel: %v %s", err, o)
					}
					if !testlab.Poll(15*time.Second, func() bool { return !(testutil.Proc{PID: pid}).Alive() }) {
						t.Errorf("the server %d outlived scancel", pid)
					}
					gone := testlab.Poll(15*time.Second, func() bool { return !(testutil.Proc{PID: grandchild}).Alive() })
					switch {
					case c.Proctrack == "cgroup" && !gone:
						t.Errorf("with proctrack/cgroup the setsid'd grandchild %d outlived scancel", grandchild)
					case c.Proctrack != "cgroup" && gone:
						t.Errorf("with proctrack/%s the setsid'd grandchild %d was expected to escape scancel", c.Proctrack, grandchild)
					case !gone:
						syscall.Kill(grandchild, syscall.SIGKILL)
					}
					c.WaitJobState(id, "CANCELLED", 15*time.Second)
				})
			}
		})
	})

	t.Run("ControllerDown", func(t *testing.T) {
		script := fmt.Sprintf("#!/bin/bash\n#SBATCH --output=%s/hubtest-down-%%j.out\necho pid=$$\nexec /bin/sleep 600\n", u.HomeDir)
		submit := []string{"/usr/bin/sbatch", "--uid=" + member, "--gid=" + u.Gid, "--export=NONE"}
		id, err := slurmlab.Submit(script, submit...)
		if err != nil {
			t.Fatal(err)
		}
		c.WaitJobState(id, "RUNNING", 30*time.Second)
		pid := pidOf(t, jobOutput(t, filepath.Join(u.HomeDir, "hubtest-down-"+id+".out"), "pid")["pid"])

		t0 := time.Now()
		c.StopController()
		t.Logf("controller stopped in %s", time.Since(t0))
		// Both retry for about 9 s before they give up: run them together.
		t0 = time.Now()
		squeueErr := make(chan error)
		go func() {
			_, err := testlab.Run(nil, "squeue", "-h")
			squeueErr <- err
		}()
		if _, err := slurmlab.Submit(script, submit...); err == nil || !strings.Contains(err.Error(), "Unable to contact slurm controller") {
			t.Errorf("sbatch with the controller down: %v, want Unable to contact slurm controller", err)
		}
		if err := <-squeueErr; err == nil || !strings.Contains(err.Error(), "Unable to contact slurm controller") {
			t.Errorf("squeue with the controller down: %v, want Unable to contact slurm controller", err)
		}
		t.Logf("sbatch and squeue failed after %s", time.Since(t0))
		if !(testutil.Proc{PID: pid}).Alive() {
			t.Error("the running job died with the controller")
		}
		t0 = time.Now()
		c.StartController()
		t.Logf("controller answers after %s", time.Since(t0))
		c.WaitJobState(id, "RUNNING", 30*time.Second)
		t.Logf("job known again after %s", time.Since(t0))
		if !(testutil.Proc{PID: pid}).Alive() {
			t.Error("the job's process is gone after the controller came back")
		}
	})
}
