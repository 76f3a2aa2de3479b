package spawner

import (
	"bytes"
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
	Group string
	// StartGrace is how long the helper watches a new server for an
	// immediate exit; default DefaultStartGrace.
	StartGrace time.Duration
	Logger     *slog.Logger
}

// Sudo starts servers as their members through
// `sudo -n -u <user> <HelperPath> spawn-helper`, the one command the
// sudoers rule allows the hub account.
type Sudo struct {
	o   SudoOptions
	log *slog.Logger
}

var _ Spawner = (*Sudo)(nil)

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
	if o.StartGrace <= 0 {
		o.StartGrace = DefaultStartGrace
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return &Sudo{o: o, log: o.Logger.With("component", "spawner", "kind", KindSudo)}
}

// Start implements Spawner. Every failure is a *StartError carrying the
// new tail of the server's log, where sudo's and the helper's complaints
// land too.
func (s *Sudo) Start(ctx context.Context, r Request) (State, error) {
	if err := names.Check(r.User); err != nil {
		// Before sudo ever sees it: "-x" would be an option, "#0" a uid.
		return State{}, &StartError{Reason: fmt.Sprintf("refusing to spawn for user %s: %v", names.Quote(r.User), err)}
	}
	lg, err := openLog(r.LogPath)
	if err != nil {
		return State{}, &StartError{Reason: err.Error()}
	}
	defer lg.Close()
	req := startRequest(r, s.o.StartGrace)
	t0 := time.Now()
	reply, err := s.call(ctx, r.User, req, lg.f, lg.tail)
	if err != nil {
		se := &StartError{Reason: err.Error(), Output: lg.tail()}
		var he *helperError
		if errors.As(err, &he) {
			se.Reason, se.ExitCode = he.reason, he.exitCode
		}
		return State{}, se
	}
	st := State{Kind: KindSudo, PID: reply.PID, PIDStart: reply.PIDStart}
	s.log.Info("server started", "user", r.User, "server", r.Server, "pid", st.PID, "port", r.Port, "took", time.Since(t0))
	return st, nil
}

// startRequest is the helper request for r; Local hands the same request
// to the same start code without sudo.
func startRequest(r Request, grace time.Duration) helperRequest {
	return helperRequest{
		V: protocolVersion, Action: actionStart, User: r.User,
		Command: r.Command, Args: r.Args, Env: r.Env,
		WorkingDir: r.WorkingDir, Path: r.Path, Port: r.Port,
		GraceMS: grace.Milliseconds(),
	}
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

// call runs the helper as userName with req on stdin. stderr receives
// sudo's and the helper's diagnostics (for start: the server's log file,
// which the server then inherits); diag reads back what was written there.
func (s *Sudo) call(ctx context.Context, userName string, req helperRequest, stderr io.Writer, diag func() string) (helperReply, error) {
	body, err := json.Marshal(req)
	if err != nil {
		return helperReply{}, fmt.Errorf("encode the helper request: %w", err)
	}
	// -n: fail instead of prompting for a password; "--" ends sudo's
	// options. The user name was checked by names.Check before this.
	cmd := exec.CommandContext(ctx, s.o.SudoPath, "-n", "-u", userName, "--", s.o.HelperPath, "spawn-helper")
	cmd.Env = []string{"PATH=" + systemPath} // sudo's env_reset drops the rest anyway
	cmd.Dir = "/"                            // sudo keeps the cwd; the member may not reach the hub's
	// No controlling terminal for sudo, even when the hub runs in one:
	// with Debian's use_pty sudo would otherwise interpose a pty and
	// relay the helper's output, and a server writing to that relay
	// after sudo exits would get SIGPIPE.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	cmd.Stdin = bytes.NewReader(body)
	var out bytes.Buffer
	cmd.Stdout = &limitedWriter{w: &out, n: maxReply}
	cmd.Stderr = stderr
	// On cancellation, TERM sudo, which relays it to the helper; KILL
	// would orphan the helper mid-request.
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 5 * time.Second
	runErr := cmd.Run()

	var reply helperReply
	parseErr := json.Unmarshal(bytes.TrimSpace(out.Bytes()), &reply)
	switch {
	case parseErr == nil && reply.OK:
		return reply, nil
	case parseErr == nil:
		reason := "the spawn helper refused: " + reply.Error
		if reply.ExitCode != 0 {
			reason = reply.Error // the server itself exited; its status follows
		}
		return reply, &helperError{reason: reason, exitCode: reply.ExitCode}
	}
	// No reply: sudo refused, could not run the helper, or the helper
	// died. Say which, never "cannot parse JSON".
	var ee *exec.ExitError
	switch {
	case errors.As(runErr, &ee):
		return reply, &helperError{reason: s.noReplyReason(userName, ee, diag()), exitCode: exitCode(ee.ProcessState)}
	case runErr != nil:
		return reply, fmt.Errorf("run %s: %w (install sudo or set spawner.sudo_path; `hubd doctor` checks this)", s.o.SudoPath, runErr)
	default:
		return reply, fmt.Errorf("the spawn helper %s exited without a valid reply (%v): is it the same hubd version as the hub?", s.o.HelperPath, parseErr)
	}
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
