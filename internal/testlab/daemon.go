// Package testlab runs the daemons of the test labs (an OpenID Connect
// provider, an LDAP directory): started in the foreground as children of the
// test, each with a log file, and stopped again by pid, also when the test
// fails. It also has the few helpers the labs share (free loopback ports,
// polling, finding the repository, running commands, a lock per lab, and
// killing what a test binary that died left behind).
package testlab

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
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

// Daemon is one process a lab started.
type Daemon struct {
	name    string
	logPath string
	cmd     *exec.Cmd
	done    chan struct{} // closed once the process has exited and been reaped
	err     error         // its exit status, valid after done

	mu     sync.Mutex
	frozen bool
}

// StartDaemon starts cmd in its own process group with its output in
// logPath, and stops it when the test ends (t.Cleanup). If the test binary
// dies first, the kernel kills the daemon (parent-death signal), unless the
// daemon changes its uid, which clears that signal.
func StartDaemon(t testing.TB, name, logPath string, cmd *exec.Cmd) (*Daemon, error) {
	t.Helper()
	logf, err := os.OpenFile(logPath, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("%s log: %w", name, err)
	}
	defer logf.Close()
	cmd.Stdout, cmd.Stderr = logf, logf
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Setpgid, cmd.SysProcAttr.Pdeathsig = true, syscall.SIGKILL
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	d := &Daemon{name: name, logPath: logPath, cmd: cmd, done: make(chan struct{})}
	go func() {
		d.err = cmd.Wait()
		close(d.done)
	}()
	t.Cleanup(func() {
		if err := d.Stop(); err != nil {
			t.Error(err)
		}
		if t.Failed() {
			t.Logf("last lines of %s:\n%s", logPath, d.LogTail(30))
		}
	})
	return d, nil
}

// Pid is the daemon's process id.
func (d *Daemon) Pid() int { return d.cmd.Process.Pid }

// Exited reports whether the process has ended.
func (d *Daemon) Exited() bool {
	select {
	case <-d.done:
		return true
	default:
		return false
	}
}

// Freeze stops the process (SIGSTOP): the kernel still accepts connections
// on its sockets, but nothing answers them. Thaw undoes it.
func (d *Daemon) Freeze(t testing.TB) {
	t.Helper()
	d.signalFrozen(t, syscall.SIGSTOP, true)
}

// Thaw lets a frozen process run again (SIGCONT).
func (d *Daemon) Thaw(t testing.TB) {
	t.Helper()
	d.signalFrozen(t, syscall.SIGCONT, false)
}

// signalFrozen sends sig and waits until every thread of the process has
// stopped (or none has): the kernel stops threads one by one, after kill
// has returned.
func (d *Daemon) signalFrozen(t testing.TB, sig syscall.Signal, frozen bool) {
	t.Helper()
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.Exited() {
		t.Fatalf("%s (pid %d) has exited", d.name, d.Pid())
	}
	if err := d.cmd.Process.Signal(sig); err != nil {
		t.Fatalf("%s %s (pid %d): %v", sig, d.name, d.Pid(), err)
	}
	d.frozen = frozen
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		states, err := d.threadStates()
		if err != nil {
			t.Fatalf("%s (pid %d): %v", d.name, d.Pid(), err)
		}
		stopped := strings.Count(states, "T")
		if frozen && stopped == len(states) || !frozen && stopped == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s (pid %d): thread states %q 10 s after %s", d.name, d.Pid(), states, sig)
		}
	}
}

// threadStates has one letter per thread of the process, as in
// /proc/PID/task/TID/stat: R running, S sleeping, T stopped...
func (d *Daemon) threadStates() (string, error) {
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", d.Pid()))
	if err != nil {
		return "", err
	}
	var states []byte
	for _, task := range tasks {
		tid, _ := strconv.Atoi(task.Name())
		if _, state, ok := (testutil.Proc{PID: tid}).Stat(); ok { // else the thread has ended
			states = append(states, state)
		}
	}
	return string(states), nil
}

// Stop ends the process: SIGTERM (after SIGCONT if it is frozen), then
// SIGKILL after 10 s. Stopping a stopped daemon does nothing.
func (d *Daemon) Stop() error {
	if d.Exited() {
		return nil
	}
	d.mu.Lock()
	if d.frozen {
		_ = d.cmd.Process.Signal(syscall.SIGCONT)
		d.frozen = false
	}
	d.mu.Unlock()
	_ = d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.done:
		return nil
	case <-time.After(10 * time.Second):
	}
	_ = d.cmd.Process.Kill()
	<-d.done
	return fmt.Errorf("%s (pid %d) ignored SIGTERM for 10 s and was killed", d.name, d.Pid())
}

// LogTail returns the last n lines of the daemon's log.
func (d *Daemon) LogTail(n int) string {
	b, err := os.ReadFile(d.logPath)
	if err != nil {
		return err.Error()
	}
	lines := bytes.Split(bytes.TrimRight(b, "\n"), []byte("\n"))
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return string(bytes.Join(lines, []byte("\n")))
}

// WaitReady polls ready every 20 ms until it returns nil. It gives up when
// the daemon exits (the error then has the end of its log) or after timeout.
func (d *Daemon) WaitReady(timeout time.Duration, ready func() error) error {
	deadline := time.Now().Add(timeout)
	for {
		err := ready()
		if err == nil {
			return nil
		}
		if d.Exited() {
			return fmt.Errorf("%s exited (%v) before it was ready:\n%s", d.name, d.err, d.LogTail(15))
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not ready after %s: %w", d.name, timeout, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// PortTaken reports whether a daemon failed because another process bound
// its port between FreePorts and the daemon's own bind.
func (d *Daemon) PortTaken() bool {
	return d.Exited() && strings.Contains(strings.ToLower(d.LogTail(50)), "address already in use")
}

// FreePorts returns n distinct TCP ports on 127.0.0.1 that were free a moment
// ago. For daemons that cannot take a listening socket from the test: a
// concurrent test may still take one first, so labs retry on PortTaken.
func FreePorts(n int) ([]int, error) {
	var ports []int
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("free port: %w", err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// RepoFile finds rel (a path inside this repository, like
// "test/lab/oidc/build.sh") from the working directory, which go test sets to
// a package directory inside the repository.
func RepoFile(rel string) (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		p := filepath.Join(dir, rel)
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("%s not found above the working directory: run the tests inside the repository", rel)
		}
		dir = parent
	}
}

// RandomHex is n random bytes in hex, for secrets and names.
func RandomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}
