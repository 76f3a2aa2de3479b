package spawner

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/hubd/hubd/core/names"
)

// systemPath is the PATH a server gets when the request has none, and the
// PATH hubd gives sudo (whose secure_path replaces it anyway).
const systemPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// pollEvery is how often stop checks /proc for the server to be gone.
const pollEvery = 25 * time.Millisecond

// defaultStopTimeout is the SIGTERM grace when Stop is given none
// (config spawner.stop_timeout's default).
const defaultStopTimeout = 10 * time.Second

// killWait bounds the wait after SIGKILL, which the kernel acts on at
// once unless a process is stuck in uninterruptible sleep.
const killWait = 5 * time.Second

// account is the passwd entry the server runs as: always the current
// uid, because the helper runs as the member and Local as the hub.
type account struct {
	uid               int
	name, home, shell string
}

func currentAccount() (account, error) {
	uid := os.Getuid()
	u, err := user.LookupId(strconv.Itoa(uid))
	if err != nil {
		return account{}, fmt.Errorf("look up uid %d: %w", uid, err)
	}
	return account{uid: uid, name: u.Username, home: u.HomeDir, shell: loginShell(u.Username)}, nil
}

// loginShell is the account's shell as NSS has it (os/user does not
// expose it): getent passwd, which also sees accounts from a directory
// (LDAP, SSSD), bounded so that a directory that hangs costs at most a
// second; /bin/sh when it gives none.
func loginShell(name string) string {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "getent", "passwd", name).Output()
	if err != nil {
		return "/bin/sh"
	}
	fields := strings.Split(strings.TrimSpace(string(out)), ":")
	if len(fields) != 7 || fields[0] != name || !filepath.IsAbs(fields[6]) {
		return "/bin/sh"
	}
	return fields[6]
}

// launch is a validated, fully resolved server command.
type launch struct {
	argv []string
	env  []string
	dir  string
	// home is the account's, for explaining a missing dir.
	home string
}

// prepare validates a start request and resolves it for acct: the
// environment is built from scratch, so nothing of the caller's (the hub's
// or sudo's) leaks into the server.
func prepare(req helperRequest, acct account) (launch, error) {
	if len(req.Command) == 0 {
		return launch{}, errors.New("no server command: set spawner.command in the configuration")
	}
	if !filepath.IsAbs(req.Command[0]) {
		return launch{}, fmt.Errorf("server command %s is not an absolute path: set spawner.command to one, e.g. /usr/bin/jupyterhub-singleuser", names.Quote(req.Command[0]))
	}
	env, err := buildEnv(req.Env, req.Path, acct)
	if err != nil {
		return launch{}, err
	}
	dir, err := resolveDir(req.WorkingDir, acct.home)
	if err != nil {
		return launch{}, err
	}
	argv := append(append([]string{}, req.Command...), req.Args...)
	return launch{argv: argv, env: env, dir: dir, home: acct.home}, nil
}

// forbiddenEnv reports variables that make the dynamic loader or a shell
// run code of the caller's choosing before the server itself starts.
func forbiddenEnv(k string) bool {
	return strings.HasPrefix(k, "LD_") || k == "BASH_ENV" || k == "ENV"
}

func buildEnv(in map[string]string, path string, acct account) ([]string, error) {
	env := make(map[string]string, len(in)+5)
	for k, v := range in {
		switch {
		case k == "" || strings.ContainsAny(k, "=\x00"):
			return nil, fmt.Errorf("environment variable name %s is invalid", names.Quote(k))
		case strings.ContainsRune(v, 0):
			return nil, fmt.Errorf("environment variable %s contains a NUL byte", k)
		case forbiddenEnv(k):
			return nil, fmt.Errorf("environment variable %s is not allowed for user servers (it runs code before the server starts): remove it from spawner.environment", k)
		}
		env[k] = v
	}
	env["HOME"], env["USER"], env["LOGNAME"], env["SHELL"] = acct.home, acct.name, acct.name, acct.shell
	env["PATH"] = path
	if path == "" {
		env["PATH"] = systemPath
	}
	out := make([]string, 0, len(env))
	for k, v := range env {
		out = append(out, k+"="+v)
	}
	sort.Strings(out)
	return out, nil
}

// resolveDir turns spawner.working_dir into an absolute directory: "" and
// "~" are the home, "~/x" must stay under it.
func resolveDir(wd, home string) (string, error) {
	switch {
	case wd == "" || wd == "~":
		return home, nil
	case strings.HasPrefix(wd, "~/"):
		dir := filepath.Join(home, wd[2:])
		if rel, err := filepath.Rel(home, dir); err != nil || rel == ".." || strings.HasPrefix(rel, "../") {
			return "", fmt.Errorf("working directory %s leaves the home directory: use a path under ~ or an absolute one", names.Quote(wd))
		}
		return dir, nil
	case filepath.IsAbs(wd):
		return filepath.Clean(wd), nil
	default:
		return "", fmt.Errorf("working directory %s must be \"~\", \"~/dir\" or absolute", names.Quote(wd))
	}
}

// started is a server process this process started and reaps.
type started struct {
	cmd      *exec.Cmd
	pid      int
	pidStart uint64
	done     chan struct{} // closed once the process is reaped; cmd.ProcessState is then set
}

// exitStatus is the final status of a reaped server; call after done.
func (s *started) exitStatus(output string) Status {
	return Status{ExitCode: exitCode(s.cmd.ProcessState), Reason: "the server exited", Output: output}
}

// startServer starts l in its own session with stdin on /dev/null and
// stdout and stderr on out. The process is reaped by a goroutine (done
// closes then); a caller that exits (the helper) leaves the server to be
// re-parented.
func startServer(l launch, out *os.File) (*started, error) {
	cmd := exec.Command(l.argv[0], l.argv[1:]...)
	cmd.Env, cmd.Dir = l.env, l.dir
	cmd.Stdout, cmd.Stderr = out, out
	// Own session: outside the hub's (or sudo's) process group and
	// controlling terminal, so signals to those never reach the server,
	// and its process group is ours to signal as a whole on stop.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		if _, serr := os.Stat(l.dir); errors.Is(serr, fs.ErrNotExist) {
			return nil, missingDir(l.dir, l.home)
		}
		return nil, fmt.Errorf("start %s: %w", l.argv[0], err)
	}
	s := &started{cmd: cmd, pid: cmd.Process.Pid, done: make(chan struct{})}
	// Read the start time before anything can reap the child: until then
	// /proc/<pid> exists, as a zombie at worst.
	st, statErr := readStat(s.pid)
	go func() {
		_ = cmd.Wait() // the exit status is read from cmd.ProcessState
		close(s.done)
	}()
	if statErr != nil {
		_ = cmd.Process.Kill()
		<-s.done
		return nil, fmt.Errorf("identify the started server: %w", statErr)
	}
	s.pidStart = st.StartTime
	return s, nil
}

// exitCode renders a wait status the way shells do: the exit status, or
// 128 plus the signal number for a killed process.
func exitCode(ps *os.ProcessState) int {
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ps.ExitCode()
}

// stopResult says what terminate did.
type stopResult struct {
	signalled bool
	note      string // why nothing was signalled
}

// terminate stops the server (pid, pidStart) owned by uid: SIGTERM to its
// process group (and to members of its session that left the group),
// up to timeout for all of them to exit, then SIGKILL. A pid whose start
// time or owner does not match is never signalled. A zombie counts as
// gone: whoever is its parent reaps it.
func terminate(ctx context.Context, pid int, pidStart uint64, uid int, timeout time.Duration) (stopResult, error) {
	id, err := identify(pid, pidStart, uid)
	if err != nil {
		return stopResult{}, err
	}
	if id == idReused || id == idForeign {
		return stopResult{note: id.String()}, nil
	}
	members, err := sessionMembers(pid, pidStart, uid)
	if err != nil {
		return stopResult{}, err
	}
	if id != idRunning && len(members) == 0 {
		return stopResult{note: id.String()}, nil
	}
	if err := signalSession(pid, id == idRunning, members, syscall.SIGTERM); err != nil {
		return stopResult{}, err
	}
	gone, err := waitGone(ctx, pid, pidStart, uid, timeout)
	if err != nil || gone {
		return stopResult{signalled: true}, err
	}
	id, err = identify(pid, pidStart, uid)
	if err != nil {
		return stopResult{}, err
	}
	if members, err = sessionMembers(pid, pidStart, uid); err != nil {
		return stopResult{}, err
	}
	if err := signalSession(pid, id == idRunning, members, syscall.SIGKILL); err != nil {
		return stopResult{}, err
	}
	gone, err = waitGone(ctx, pid, pidStart, uid, killWait)
	if err == nil && !gone {
		err = fmt.Errorf("pid %d or processes of its session are still running after SIGKILL (stuck in the kernel?)", pid)
	}
	return stopResult{signalled: true}, err
}

// signalSession sends sig to the process group the server leads (only
// while the leader is verified alive) and to every session member outside
// that group, so no member gets the signal twice.
func signalSession(pid int, leaderAlive bool, members []int, sig syscall.Signal) error {
	if leaderAlive {
		if err := syscall.Kill(-pid, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
			return fmt.Errorf("send %v to process group %d: %w", sig, pid, err)
		}
	}
	for _, m := range members {
		st, err := readStat(m)
		if err != nil || (leaderAlive && st.PGID == pid) {
			continue
		}
		if err := syscall.Kill(m, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
			return fmt.Errorf("send %v to pid %d: %w", sig, m, err)
		}
	}
	return nil
}

// waitGone polls /proc until the server and its session are gone, the
// timeout passes (false) or ctx ends (its error).
func waitGone(ctx context.Context, pid int, pidStart uint64, uid int, timeout time.Duration) (bool, error) {
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(pollEvery)
	defer tick.Stop()
	for {
		id, err := identify(pid, pidStart, uid)
		if err != nil {
			return false, err
		}
		if id != idRunning {
			members, err := sessionMembers(pid, pidStart, uid)
			if err != nil {
				return false, err
			}
			if len(members) == 0 {
				return true, nil
			}
		}
		if !time.Now().Before(deadline) {
			return false, nil
		}
		select {
		case <-ctx.Done():
			return false, fmt.Errorf("stop pid %d: %w", pid, ctx.Err())
		case <-tick.C:
		}
	}
}

// reclaim stops every server of uid that env identifies (see
// serversByEnv) and reports how many it signalled.
func reclaim(ctx context.Context, uid int, env map[string]string, timeout time.Duration) (int, error) {
	procs, err := serversByEnv(uid, env)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, p := range procs {
		res, err := terminate(ctx, p.pid, p.start, uid, timeout)
		if err != nil {
			return n, fmt.Errorf("stop pid %d: %w", p.pid, err)
		}
		if res.signalled {
			n++
		}
	}
	return n, nil
}
