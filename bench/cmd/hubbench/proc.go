package main

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// proc is a child started in its own process group, so stopping it also
// stops whatever it started in that group (CHP under JupyterHub, wrk).
type proc struct {
	name string
	cmd  *exec.Cmd
	done chan struct{}
}

var (
	procsMu sync.Mutex
	procs   = map[*proc]bool{}
)

// start runs argv with env added to ours, output to logPath.
func start(name, logPath string, env []string, argv ...string) (*proc, error) {
	lf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("%s log: %w", name, err)
	}
	defer lf.Close()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = lf, lf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(p.done) }()
	procsMu.Lock()
	procs[p] = true
	procsMu.Unlock()
	return p, nil
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop sends SIGTERM to the group, and SIGKILL after grace.
func (p *proc) stop(grace time.Duration) {
	_ = syscall.Kill(-p.pid(), syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(grace):
		_ = syscall.Kill(-p.pid(), syscall.SIGKILL)
		<-p.done
	}
	// Anything left in the group (a child that ignored SIGTERM).
	_ = syscall.Kill(-p.pid(), syscall.SIGKILL)
	procsMu.Lock()
	delete(procs, p)
	procsMu.Unlock()
}

// stopAll is the last resort on exit or interrupt.
func stopAll() {
	procsMu.Lock()
	all := make([]*proc, 0, len(procs))
	for p := range procs {
		all = append(all, p)
	}
	procsMu.Unlock()
	for _, p := range all {
		p.stop(3 * time.Second)
	}
}

// rssKB is VmRSS of pid in KiB, 0 if it is gone.
func rssKB(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			f := strings.Fields(v)
			if len(f) > 0 {
				n, _ := strconv.ParseFloat(f[0], 64)
				return n
			}
		}
	}
	return 0
}

// pidStart is field 22 of /proc/<pid>/stat, which hubd records to guard
// against pid reuse.
func pidStart(pid int) (uint64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, fmt.Errorf("read stat: %w", err)
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 20 {
		return 0, fmt.Errorf("short /proc/%d/stat", pid)
	}
	return strconv.ParseUint(f[19], 10, 64)
}

func cmdline(pid int) string {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	return strings.ReplaceAll(string(b), "\x00", " ")
}

// matching lists the pids whose command line contains needle.
func matching(needle string) []int {
	var out []int
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err == nil && strings.Contains(strings.ReplaceAll(string(b), "\x00", " "), needle) {
			out = append(out, pid)
		}
	}
	return out
}

// reapOrphans counts the processes matching needle, kills them so the run
// leaves nothing behind, and returns the count.
func reapOrphans(needle string) int {
	pids := matching(needle)
	for _, pid := range pids {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	return len(pids)
}

// freePort asks the kernel for a free loopback port.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// waitHTTP polls url until it answers 200, and returns how long that
// took from since. It fails when p exits or timeout passes.
func waitHTTP(url string, p *proc, since time.Time, timeout time.Duration) (time.Duration, error) {
	return waitStatus(url, http.StatusOK, p, since, timeout)
}

// waitStatus is waitHTTP for an answer with status want.
func waitStatus(url string, want int, p *proc, since time.Time, timeout time.Duration) (time.Duration, error) {
	c := &http.Client{Timeout: 2 * time.Second}
	deadline := since.Add(timeout)
	for time.Now().Before(deadline) {
		resp, err := c.Get(url)
		if err == nil {
			resp.Body.Close()
			// 200 only: CHP answers 404 until JupyterHub adds its route.
			if resp.StatusCode == want {
				return time.Since(since), nil
			}
		}
		if p != nil && p.exited() {
			return 0, fmt.Errorf("%s exited before %s answered", p.name, url)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return 0, fmt.Errorf("%s did not answer within %s", url, timeout)
}

// deadPID returns the pid of a process that has exited and been reaped.
func deadPID() (int, error) {
	cmd := exec.Command("/bin/true")
	if err := cmd.Run(); err != nil {
		return 0, fmt.Errorf("run /bin/true: %w", err)
	}
	return cmd.Process.Pid, nil
}
