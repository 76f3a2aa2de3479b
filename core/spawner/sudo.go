package spawner

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"os/user"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hubd/hubd/core/names"
)

// SudoOptions configures the sudo spawner. Zero values take the defaults.
type SudoOptions struct {
	SudoPath   string // default /usr/bin/sudo
	HelperPath string // the hubd binary the sudoers rule names; default /usr/local/bin/hubd
	// Group is the members group of the sudoers rule; it is only used to
	// name the rule in error messages. Default "jupyterhub".
	Group  string
	Logger *slog.Logger
}

// Sudo starts servers as their members through
// `sudo -n -u <user> <HelperPath> spawn-helper`, the one command the
// sudoers rule allows the hub account.
type Sudo struct {
	o   SudoOptions
	log *slog.Logger

	mu sync.Mutex
	// watches are the helpers still watching a server they started, by
	// pid: they report its exit until the hub releases them.
	watches map[int]*helperWatch
}

var (
	_ Spawner   = (*Sudo)(nil)
	_ Watcher   = (*Sudo)(nil)
	_ Reclaimer = (*Sudo)(nil)
)

// NewSudo returns a sudo spawner.
func NewSudo(o SudoOptions) *Sudo {
	if o.SudoPath == "" {
		o.SudoPath = "/usr/bin/sudo"
	}
	if o.HelperPath == "" {
		o.HelperPath = "/usr/local/bin/hubd"
	}
	if o.Group == "" {
		o.Group = "jupyterhub"
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return &Sudo{o: o, log: o.Logger.With("component", "spawner", "kind", KindSudo), watches: map[int]*helperWatch{}}
}

// Start implements Spawner. Every failure is a *StartError carrying the
// new tail of the server's log, where sudo's and the helper's complaints
// land too. The helper stays to watch the server until Watch's stop.
func (s *Sudo) Start(ctx context.Context, r Request) (State, error) {
	lg, err := beginStart(r, false)
	if err != nil {
		return State{}, err
	}
	defer lg.Close()
	t0 := time.Now()
	w, reply, err := s.startHelper(ctx, r.User, startRequest(r), lg)
	if err != nil {
		se := &StartError{Reason: err.Error(), Output: lg.tail(), Err: err}
		if he, ok := errors.AsType[*helperError](err); ok {
			se.Reason, se.ExitCode = he.reason, he.exitCode
		}
		return State{}, se
	}
	st := State{Kind: KindSudo, Host: r.listenHost(), Port: r.Port, PID: reply.PID, PIDStart: reply.PIDStart}
	s.mu.Lock()
	s.watches[st.PID] = w
	s.mu.Unlock()
	go w.wait()
	s.log.Info("server started", "user", r.User, "server", r.Server, "pid", st.PID, "port", r.Port, "took", time.Since(t0))
	return st, nil
}

// Watch implements Watcher for the servers this process started; stop
// releases the helper that watches.
func (s *Sudo) Watch(st State) (<-chan Status, func()) {
	s.mu.Lock()
	w := s.watches[st.PID]
	s.mu.Unlock()
	if w == nil {
		return nil, func() {}
	}
	return w.exited, func() {
		w.release()
		s.mu.Lock()
		if s.watches[st.PID] == w {
			delete(s.watches, st.PID)
		}
		s.mu.Unlock()
	}
}

// helperWatch is a start helper that stays to watch its server.
type helperWatch struct {
	cmd     *exec.Cmd
	stdin   io.WriteCloser
	lines   *bufio.Scanner
	log     *serverLog
	exited  chan Status
	once    sync.Once
	waitErr error
}

// release closes the helper's stdin: the server runs on, the helper exits.
func (w *helperWatch) release() { w.once.Do(func() { _ = w.stdin.Close() }) }

// wait reads the helper's second line (the server's exit), if any, and
// reaps the helper.
func (w *helperWatch) wait() {
	if w.lines.Scan() {
		var r helperReply
		if json.Unmarshal(w.lines.Bytes(), &r) == nil && r.Exited {
			w.exited <- Status{ExitCode: r.ExitCode, Reason: "the server exited", Output: w.log.tail()}
		}
	}
	w.release()
	w.waitErr = w.cmd.Wait()
}

// startRequest is the helper request for r; Local hands the same request
// to the same start code without sudo.
func startRequest(r Request) helperRequest {
	return helperRequest{
		V: protocolVersion, Action: actionStart, User: r.User,
		Command: r.Command, Args: r.Args, Env: r.Env,
		WorkingDir: r.WorkingDir, Path: r.Path, Port: r.Port, Shares: r.Shares,
	}
}

// startHelper runs the start helper as userName and reads its first
// reply. The helper's stderr is the server's log.
func (s *Sudo) startHelper(ctx context.Context, userName string, req helperRequest, lg *serverLog) (*helperWatch, helperReply, error) {
	var reply helperReply
	body, err := json.Marshal(req)
	if err != nil {
		return nil, reply, fmt.Errorf("encode the helper request: %w", err)
	}
	// Not CommandContext: the helper outlives this call while it watches.
	cmd := s.helperCommand(userName)
	cmd.Stderr = lg.f
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, reply, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, reply, err
	}
	if err := cmd.Start(); err != nil {
		return nil, reply, fmt.Errorf("run %s: %w (install sudo or set spawner.sudo_path; `hubd doctor` checks this)", s.o.SudoPath, err)
	}
	w := &helperWatch{cmd: cmd, stdin: stdin, log: lg, exited: make(chan Status, 1),
		lines: bufio.NewScanner(io.LimitReader(stdout, maxReply))}
	w.lines.Buffer(make([]byte, 0, 4096), maxReply)
	if _, err := stdin.Write(append(body, '\n')); err != nil {
		w.release()
		_ = cmd.Wait()
		return nil, reply, s.noReply(userName, cmd, lg.tail, err)
	}
	first := make(chan bool, 1)
	go func() { first <- w.lines.Scan() }()
	var got bool
	select {
	case got = <-first:
	case <-ctx.Done():
		// TERM sudo, which relays it to the helper; KILL would orphan
		// the helper mid-request.
		_ = cmd.Process.Signal(syscall.SIGTERM)
		w.release()
		<-first
		_ = cmd.Wait()
		return nil, reply, fmt.Errorf("start through the spawn helper: %w", ctx.Err())
	}
	if !got || json.Unmarshal(w.lines.Bytes(), &reply) != nil {
		w.release()
		err := cmd.Wait()
		return nil, reply, s.noReply(userName, cmd, lg.tail, err)
	}
	if !reply.OK {
		w.release()
		_ = cmd.Wait()
		return nil, reply, &helperError{reason: "the spawn helper refused: " + reply.Error}
	}
	return w, reply, nil
}

// helperCommand is `sudo -n -u <user> -- <helper> spawn-helper`: -n fails
// instead of prompting for a password, "--" ends sudo's options. The user
// name was checked by names.Check before this.
func (s *Sudo) helperCommand(userName string) *exec.Cmd {
	cmd := exec.Command(s.o.SudoPath, "-n", "-u", userName, "--", s.o.HelperPath, "spawn-helper")
	cmd.Env = []string{"PATH=" + systemPath} // sudo's env_reset drops the rest anyway
	cmd.Dir = "/"                            // sudo keeps the cwd; the member may not reach the hub's
	// No controlling terminal for sudo, even when the hub runs in one:
	// with Debian's use_pty sudo would otherwise interpose a pty and
	// relay the helper's output, and a server writing to that relay
	// after sudo exits would get SIGPIPE.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	return cmd
}

// noReply explains a helper run that ended without a valid reply: sudo
// refused, could not run the helper, or the helper died. Never "cannot
// parse JSON".
func (s *Sudo) noReply(userName string, cmd *exec.Cmd, diag func() string, runErr error) error {
	if ee, ok := errors.AsType[*exec.ExitError](runErr); ok {
		return &helperError{reason: s.noReplyReason(userName, ee, diag()), exitCode: exitCode(ee.ProcessState)}
	}
	if runErr != nil {
		return fmt.Errorf("the spawn helper %s via sudo failed: %w", s.o.HelperPath, runErr)
	}
	return fmt.Errorf("the spawn helper %s exited without a valid reply: is it the same hubd version as the hub?", s.o.HelperPath)
}

// Stop implements Spawner. When /proc shows nothing left of the server it
// returns without a sudo round trip (this also covers a member who was
// removed from the group or deleted meanwhile).
func (s *Sudo) Stop(ctx context.Context, userName string, st State, timeout time.Duration) error {
	uid, err := s.checkState(userName, st)
	if err != nil {
		return err
	}
	id, err := identify(st.PID, st.PIDStart, uid)
	if err != nil {
		return err
	}
	if id == idReused || id == idForeign {
		s.log.Warn("not stopping: the recorded pid is not the user's server", "user", userName, "pid", st.PID, "reason", id.String())
		return nil
	}
	if id != idRunning {
		members, err := sessionMembers(st.PID, st.PIDStart, uid)
		if err != nil {
			return err
		}
		if len(members) == 0 {
			return nil
		}
	}
	if timeout <= 0 {
		timeout = defaultStopTimeout
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout+killWait+10*time.Second)
		defer cancel()
	}
	var diag bytes.Buffer
	reply, err := s.call(ctx, userName, helperRequest{
		V: protocolVersion, Action: actionStop, User: userName,
		PID: st.PID, PIDStart: st.PIDStart, TimeoutMS: timeout.Milliseconds(),
	}, &diag, diag.String)
	if err != nil {
		return fmt.Errorf("stop %s's server (pid %d): %w", userName, st.PID, withOutput(err, diag.String()))
	}
	s.log.Info("server stopped", "user", userName, "pid", st.PID, "signalled", reply.Signalled, "note", reply.Reason)
	return nil
}

// Reclaim implements Reclaimer through the helper, which as the member
// finds the member's processes whose environment names the server.
func (s *Sudo) Reclaim(ctx context.Context, o Orphan, timeout time.Duration) (int, error) {
	if err := names.Check(o.User); err != nil {
		return 0, fmt.Errorf("user %s: %w", names.Quote(o.User), err)
	}
	var diag bytes.Buffer
	reply, err := s.call(ctx, o.User, helperRequest{
		V: protocolVersion, Action: actionReclaim, User: o.User, Env: o.Env,
		TimeoutMS: cmp.Or(timeout, defaultStopTimeout).Milliseconds(),
	}, &diag, diag.String)
	if err != nil {
		return 0, fmt.Errorf("look for %s's unrecorded server: %w", o.User, withOutput(err, diag.String()))
	}
	if reply.Reclaimed > 0 {
		s.log.Info("stopped a server the hub had not recorded", "user", o.User, "server", o.Server, "count", reply.Reclaimed)
	}
	return reply.Reclaimed, nil
}

// Poll implements Spawner from /proc alone (see proc.go for why).
func (s *Sudo) Poll(_ context.Context, userName string, st State) (Status, error) {
	uid, err := s.checkState(userName, st)
	if err != nil {
		return Status{}, err
	}
	return pollProc(st, uid)
}

func pollProc(st State, uid int) (Status, error) {
	id, err := identify(st.PID, st.PIDStart, uid)
	if err != nil {
		return Status{}, err
	}
	if id == idRunning {
		return Status{Running: true, ExitCode: -1}, nil
	}
	return Status{ExitCode: -1, Reason: id.String()}, nil
}

// checkState validates a persisted state for this spawner and returns the
// member's uid.
func (s *Sudo) checkState(userName string, st State) (int, error) {
	if st.Kind != KindSudo {
		return 0, fmt.Errorf("server state of kind %q given to the sudo spawner", st.Kind)
	}
	if err := names.Check(userName); err != nil {
		return 0, fmt.Errorf("user %s: %w", names.Quote(userName), err)
	}
	u, err := user.Lookup(userName)
	if err != nil {
		return 0, fmt.Errorf("look up user %s: %w", userName, err)
	}
	return strconv.Atoi(u.Uid)
}

// maxReply bounds what is read from the helper's stdout.
const maxReply = 1 << 16

// call runs the helper as userName with req on stdin and reads its one
// reply. stderr receives sudo's and the helper's diagnostics; diag reads
// back what was written there.
func (s *Sudo) call(ctx context.Context, userName string, req helperRequest, stderr io.Writer, diag func() string) (helperReply, error) {
	body, err := json.Marshal(req)
	if err != nil {
		return helperReply{}, fmt.Errorf("encode the helper request: %w", err)
	}
	cmd := s.helperCommand(userName)
	cmd.Stdin = bytes.NewReader(body)
	var out bytes.Buffer
	cmd.Stdout = &limitedWriter{w: &out, n: maxReply}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		return helperReply{}, fmt.Errorf("run %s: %w (install sudo or set spawner.sudo_path; `hubd doctor` checks this)", s.o.SudoPath, err)
	}
	// On cancellation, TERM sudo, which relays it to the helper; KILL
	// would orphan the helper mid-request.
	stop := context.AfterFunc(ctx, func() { _ = cmd.Process.Signal(syscall.SIGTERM) })
	runErr := cmd.Wait()
	stop()
	var reply helperReply
	switch {
	case json.Unmarshal(bytes.TrimSpace(out.Bytes()), &reply) != nil:
		return reply, s.noReply(userName, cmd, diag, runErr)
	case !reply.OK:
		return reply, &helperError{reason: "the spawn helper refused: " + reply.Error}
	}
	return reply, nil
}

// helperError is a helper run that failed: the helper's own error, the
// server's immediate exit, or sudo's refusal.
type helperError struct {
	reason   string
	exitCode int // the server's exit status, or the helper's (or sudo's) without a reply
}

func (e *helperError) Error() string {
	if e.exitCode != 0 {
		return fmt.Sprintf("%s (exit status %d)", e.reason, e.exitCode)
	}
	return e.reason
}

// noReplyReason explains a helper run that ended without a reply.
func (s *Sudo) noReplyReason(userName string, ee *exec.ExitError, diag string) string {
	if sudoComplained(diag) {
		return fmt.Sprintf("sudo refused to run the spawn helper as %s: the hub account may run only `%s spawn-helper`, only as members of group %s, without a password "+
			"(sudoers rule `%s ALL=(%%%s) NOPASSWD: %s spawn-helper` in /etc/sudoers.d/hubd); check that %s is a member of %s and run `hubd doctor`",
			userName, s.o.HelperPath, s.o.Group, hubAccount(), s.o.Group, s.o.HelperPath, userName, s.o.Group)
	}
	return fmt.Sprintf("the spawn helper (%s via sudo as %s) failed without a reply: %v; `hubd doctor` checks the helper and the sudoers rule", s.o.HelperPath, userName, ee)
}

// sudoComplained reports whether sudo itself wrote an error: its messages
// start with "sudo: " (or "Sorry, user ..." for a rule mismatch).
func sudoComplained(diag string) bool {
	for _, line := range strings.Split(diag, "\n") {
		if strings.HasPrefix(line, "sudo: ") || strings.HasPrefix(line, "Sorry, user ") {
			return true
		}
	}
	return false
}

func hubAccount() string {
	if u, err := user.Current(); err == nil {
		return u.Username
	}
	return strconv.Itoa(os.Getuid())
}

// withOutput appends the helper's diagnostics to an error.
func withOutput(err error, diag string) error {
	if last := lastLine(diag); last != "" {
		return fmt.Errorf("%w; helper said: %s", err, last)
	}
	return err
}

// limitedWriter keeps the first n bytes and discards the rest, so a
// misbehaving helper cannot make the hub buffer without bound.
type limitedWriter struct {
	w io.Writer
	n int
}

func (l *limitedWriter) Write(p []byte) (int, error) {
	if l.n > 0 {
		k := min(len(p), l.n)
		if _, err := l.w.Write(p[:k]); err != nil {
			return 0, err
		}
		l.n -= k
	}
	return len(p), nil
}
