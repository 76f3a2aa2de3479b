package testlab

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hubd/hubd/internal/testutil"
)

// SystemPath is the PATH the labs run commands and daemons with, so that
// neither a developer's PATH nor an interpreter first in it leaks in.
const SystemPath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// CgroupsLock serialises what creates or cleans up cgroups and mount units
// on the host: systemd booted in namespaces (one instance per machine, and
// its cleanup compares the host's cgroup tree before and after), and the
// Docker and Slurm labs. Test packages run in parallel (make test), so
// each test that does one of these takes it.
const CgroupsLock = "/run/lock/hubtest-cgroups.lock"

// Lock takes an exclusive lock on path (created if missing) for the rest of
// the test: a lab with fixed host resources (ports, /etc files, a bridge)
// runs once at a time. It waits for another test that holds it for as
// long as this test may run (30 minutes without a deadline): packages
// that test in parallel take turns. A test of this process that already
// holds the lock (one test using two labs that share it) does not wait.
func Lock(t testing.TB, path string) {
	t.Helper()
	if held.take(path) {
		t.Cleanup(func() { held.drop(path) })
		return
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Minute)
	if d, ok := t.(interface{ Deadline() (time.Time, bool) }); ok {
		if at, set := d.Deadline(); set {
			deadline = at.Add(-time.Minute)
		}
	}
	for {
		err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			break
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) || time.Now().After(deadline) {
			f.Close()
			t.Fatalf("lock %s: %v (another test holds it)", path, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	held.add(path, f)
	t.Cleanup(func() { held.drop(path) })
}

// held are the locks this process holds, with how many of its tests hold
// each: flock locks belong to an open file, so a second open of the same
// path in this process would wait for itself. Process-wide on purpose:
// the locks themselves are.
var held = &heldLocks{files: map[string]*os.File{}, count: map[string]int{}}

type heldLocks struct {
	mu    sync.Mutex
	files map[string]*os.File
	count map[string]int
}

// take counts one more holder of a lock this process already has.
func (h *heldLocks) take(path string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.files[path] == nil {
		return false
	}
	h.count[path]++
	return true
}

func (h *heldLocks) add(path string, f *os.File) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.files[path], h.count[path] = f, 1
}

// drop releases the lock (closing its file) when its last holder is done.
func (h *heldLocks) drop(path string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.count[path]--; h.count[path] == 0 {
		h.files[path].Close()
		delete(h.files, path)
		delete(h.count, path)
	}
}

// Poll calls cond every 50 ms until it is true or timeout has passed, and
// reports whether it became true. For waits that must not fail the test at
// once (teardowns) or that take longer than testutil.WaitFor allows.
func Poll(timeout time.Duration, cond func() bool) bool {
	for deadline := time.Now().Add(timeout); !cond(); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			return false
		}
	}
	return true
}

// Run runs a command with SystemPath (and env) and returns its trimmed
// stdout; the error has its stderr.
func Run(env []string, argv ...string) (string, error) {
	return RunInput(env, nil, argv...)
}

// RunInput is Run with stdin.
func RunInput(env []string, stdin []byte, argv ...string) (string, error) {
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append([]string{SystemPath, "LANG=C.UTF-8"}, env...)
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		err = fmt.Errorf("%s: %w: %s", strings.Join(argv, " "), err, strings.TrimSpace(stderr.String()))
	}
	return strings.TrimSpace(string(out)), err
}

// KillLeftovers SIGKILLs the processes whose command line contains match
// (a path only the lab uses) and their children: what a test binary that
// died before its cleanup left running. Daemons that change their uid lose
// the parent-death signal, and children of daemons never had it. The caller
// holds the lab's lock, so no live test owns them. It returns the pids.
func KillLeftovers(match string) []int {
	pids := testutil.Procs(testutil.WithCmdline(match))
	pids = append(pids, testutil.Procs(func(p testutil.Proc) bool {
		ppid := p.PPID()
		for _, pid := range pids {
			if ppid == pid {
				return true
			}
		}
		return false
	})...)
	for _, pid := range pids {
		syscall.Kill(pid, syscall.SIGKILL)
	}
	Poll(10*time.Second, func() bool {
		for _, pid := range pids {
			if (testutil.Proc{PID: pid}).Alive() {
				return false
			}
		}
		return true
	})
	return pids
}

// KillCgroups SIGKILLs every process in the cgroups matching pattern (a
// glob such as /sys/fs/cgroup/*/hubtest-docker) and below them, removes
// those cgroups deepest first, and returns the pids it killed.
func KillCgroups(pattern string) ([]int, error) {
	roots, err := filepath.Glob(pattern)
	if err != nil {
		return nil, err
	}
	var killed []int
	var errs []error
	for _, root := range roots {
		var dirs []string
		filepath.WalkDir(root, func(p string, e os.DirEntry, err error) error {
			if err == nil && e.IsDir() {
				dirs = append(dirs, p)
			}
			return nil
		})
		for _, d := range dirs {
			procs, _ := os.ReadFile(filepath.Join(d, "cgroup.procs"))
			for _, f := range strings.Fields(string(procs)) {
				if pid, err := strconv.Atoi(f); err == nil && (testutil.Proc{PID: pid}).Alive() && syscall.Kill(pid, syscall.SIGKILL) == nil {
					killed = append(killed, pid)
				}
			}
		}
		for i := len(dirs) - 1; i >= 0; i-- {
			// A killed process leaves its cgroup a moment later.
			var err error
			Poll(5*time.Second, func() bool {
				err = os.Remove(dirs[i])
				return err == nil || errors.Is(err, os.ErrNotExist)
			})
			if err != nil && !errors.Is(err, os.ErrNotExist) {
				errs = append(errs, err)
			}
		}
	}
	return killed, errors.Join(errs...)
}
