package spawner

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// protocolVersion is the "v" of helper requests. The hub and the helper
// are the same binary, but a hub that was not restarted after an upgrade
// talks to the new helper: a version mismatch is refused with a message
// instead of being misread.
//
// Version 2: start answers as soon as the server runs, then watches it
// while the hub keeps the helper's stdin open, and reports its exit on a
// second line; the hub closes stdin once the server answers HTTP.
const protocolVersion = 2

// Helper actions. The Slurm ones submit and cancel a batch job as the
// member, so Slurm records the job as theirs and only they (and Slurm's
// operators) can cancel it.
const (
	actionStart       = "start"
	actionStop        = "stop"
	actionStatus      = "status"
	actionReclaim     = "reclaim"
	actionSlurmSubmit = "slurm-submit"
	actionSlurmCancel = "slurm-cancel"
)

// helperComponent tags the helper's lines in the server log.
const helperComponent = "spawn-helper"

// maxRequest bounds the request the helper reads from stdin.
const maxRequest = 1 << 20

// maxStopTimeout bounds the SIGTERM wait a request may ask for.
const maxStopTimeout = 5 * time.Minute

// helperRequest is the one JSON object the hub writes to the helper's
// stdin. It carries the secrets (the API token in Env), which is why it
// never travels on a command line.
type helperRequest struct {
	V      int    `json:"v"`
	Action string `json:"action"`
	// User is who the hub means to act as; the helper checks that it runs
	// as exactly that account.
	User string `json:"user"`

	// start
	Command    []string          `json:"command,omitempty"`
	Args       []string          `json:"args,omitempty"`
	Env        map[string]string `json:"env,omitempty"`
	WorkingDir string            `json:"working_dir,omitempty"`
	Path       string            `json:"path,omitempty"`
	Port       int               `json:"port,omitempty"`
	Shares     []Share           `json:"shares,omitempty"`

	// stop, status, reclaim (which matches servers by Env instead of a pid)
	PID       int    `json:"pid,omitempty"`
	PIDStart  uint64 `json:"pid_start,omitempty"`
	TimeoutMS int64  `json:"timeout_ms,omitempty"`

	// slurm-submit: sbatch's path and the job script, which holds the
	// server's token (sbatch reads it on stdin); slurm-cancel: scancel's
	// path and the job.
	Program string `json:"program,omitempty"`
	Script  string `json:"script,omitempty"`
	JobID   string `json:"job_id,omitempty"`
}

// helperReply is a JSON line the helper writes to stdout: the answer to
// the request, and for start possibly a second one, the server's exit.
type helperReply struct {
	OK    bool   `json:"ok"`
	Error string `json:"error,omitempty"`
	// Exited marks start's second line: the server exited, with ExitCode.
	Exited   bool `json:"exited,omitempty"`
	ExitCode int  `json:"exit_code,omitempty"`

	PID      int    `json:"pid,omitempty"`       // start
	PIDStart uint64 `json:"pid_start,omitempty"` // start
	Running  bool   `json:"running"`             // start, status
	// Signalled is false when stop found nothing to stop; Reason says why.
	Signalled bool   `json:"signalled,omitempty"`
	Reason    string `json:"reason,omitempty"`
	JobID     string `json:"job_id,omitempty"` // slurm-submit
	Reclaimed int    `json:"reclaimed,omitempty"`
}

// Exit codes of the helper besides 0.
const (
	helperFailed     = 1 // the request was refused or failed; the reply says why
	helperBadRequest = 2 // stdin did not hold a request
)

// RunHelper is `hubd spawn-helper`: it runs as a member through
// `sudo -n -u <member> hubd spawn-helper`, reads one JSON request from
// stdin, writes one JSON reply to stdout and returns the exit code.
// stderr is the server's log file (the hub hands it to sudo): the helper's
// diagnostics go there, and so does a started server's output when stderr
// is an *os.File.
func RunHelper(ctx context.Context, stdin io.Reader, stdout, stderr io.Writer) int {
	log := slog.New(slog.NewTextHandler(stderr, nil)).With("component", helperComponent)
	enc := json.NewEncoder(stdout)
	enc.SetEscapeHTML(false) // the reply is read by the hub, not a browser: keep "<member>" legible
	send := func(r helperReply) bool {
		if !r.OK && !r.Exited {
			log.Error("request failed", "error", r.Error)
		}
		if err := enc.Encode(r); err != nil {
			log.Error("cannot write the reply", "error", err)
			return false
		}
		return true
	}
	reply, code := runHelper(ctx, stdin, stderr, send, log)
	if reply != nil && !send(*reply) {
		return helperFailed
	}
	return code
}

// runHelper serves one request. send writes a reply line; the returned
// reply, when not nil, is the last line.
func runHelper(ctx context.Context, stdin io.Reader, stderr io.Writer, send func(helperReply) bool, log *slog.Logger) (*helperReply, int) {
	var req helperRequest
	dec := json.NewDecoder(io.LimitReader(stdin, maxRequest))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return failed(fmt.Errorf("read the request from stdin: %w (the hub writes one JSON object; see `hubd spawn-helper --help`)", err)), helperBadRequest
	}
	if req.V != protocolVersion {
		return failed(fmt.Errorf("request protocol version %d, this helper speaks %d: restart the hub after upgrading hubd", req.V, protocolVersion)), helperBadRequest
	}
	acct, err := helperAccount()
	if err != nil {
		return failed(err), helperFailed
	}
	if req.User != acct.name {
		return failed(fmt.Errorf("request is for user %q but the helper runs as %q", req.User, acct.name)), helperFailed
	}
	switch req.Action {
	case actionStart:
		// What follows the request on stdin is only ever its end.
		return helperStart(req, acct, serverOutput(stderr), io.MultiReader(dec.Buffered(), stdin), send, log)
	case actionStop:
		timeout, err := req.stopTimeout()
		if err != nil {
			return failed(err), helperBadRequest
		}
		res, err := terminate(ctx, req.PID, req.PIDStart, acct.uid, timeout)
		if err != nil {
			return failed(err), helperFailed
		}
		log.Info("stop", "pid", req.PID, "signalled", res.signalled, "note", res.note)
		return &helperReply{OK: true, Signalled: res.signalled, Reason: res.note}, 0
	case actionReclaim:
		timeout, err := req.stopTimeout()
		if err != nil {
			return failed(err), helperBadRequest
		}
		// Only servers of this member's own: the hub's API URL and the
		// member's name must be among what is matched.
		if req.Env["JUPYTERHUB_API_URL"] == "" || req.Env["JUPYTERHUB_USER"] != acct.name {
			return failed(errors.New("reclaim needs JUPYTERHUB_API_URL and this member's JUPYTERHUB_USER to match")), helperBadRequest
		}
		n, err := reclaim(ctx, acct.uid, req.Env, timeout)
		if err != nil {
			return failed(err), helperFailed
		}
		log.Info("reclaim", "stopped", n)
		return &helperReply{OK: true, Reclaimed: n}, 0
	case actionStatus:
		id, err := identify(req.PID, req.PIDStart, acct.uid)
		if err != nil {
			return failed(err), helperFailed
		}
		r := &helperReply{OK: true, Running: id == idRunning}
		if !r.Running {
			r.Reason = id.String()
		}
		return r, 0
	case actionSlurmSubmit:
		id, err := sbatch(ctx, req.Program, req.Script, sbatchEnv(acct))
		if err != nil {
			return failed(err), helperFailed
		}
		log.Info("submitted batch job", "job", id)
		return &helperReply{OK: true, JobID: id}, 0
	case actionSlurmCancel:
		if err := scancel(ctx, req.Program, req.JobID, sbatchEnv(acct)); err != nil {
			return failed(err), helperFailed
		}
		log.Info("cancelled batch job", "job", req.JobID)
		return &helperReply{OK: true}, 0
	default:
		return failed(fmt.Errorf("unknown action %q (want %s, %s, %s, %s, %s or %s)", req.Action,
			actionStart, actionStop, actionStatus, actionReclaim, actionSlurmSubmit, actionSlurmCancel)), helperBadRequest
	}
}

// stopTimeout is the SIGTERM wait a stop or reclaim asks for, bounded.
func (req helperRequest) stopTimeout() (time.Duration, error) {
	timeout := time.Duration(req.TimeoutMS) * time.Millisecond
	if timeout <= 0 || timeout > maxStopTimeout {
		return 0, fmt.Errorf("stop timeout %v out of range (0, %v]", timeout, maxStopTimeout)
	}
	return timeout, nil
}

func failed(err error) *helperReply { return &helperReply{Error: err.Error()} }

// helperAccount refuses to act as root or a system account: the sudoers
// rule only allows members, and a helper started any other way must not
// become a way to run commands with elevated rights.
func helperAccount() (account, error) {
	if os.Getuid() == 0 || os.Geteuid() == 0 {
		return account{}, errors.New("refusing to run as root: the hub runs `sudo -n -u <member> hubd spawn-helper` as its own unprivileged account")
	}
	if os.Getuid() != os.Geteuid() {
		return account{}, errors.New("refusing to run with differing real and effective uids (setuid?): run it through sudo")
	}
	if first := uidMin(); os.Getuid() < first {
		return account{}, fmt.Errorf("refusing to run as system uid %d (below UID_MIN %d in /etc/login.defs): servers run as members' login accounts", os.Getuid(), first)
	}
	return currentAccount()
}

// uidMin is UID_MIN from /etc/login.defs, the first uid of a login
// account (1000 when the file does not say).
func uidMin() int {
	f, err := os.Open("/etc/login.defs")
	if err != nil {
		return 1000
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) == 2 && fields[0] == "UID_MIN" {
			if n, err := strconv.Atoi(fields[1]); err == nil {
				return n
			}
		}
	}
	return 1000
}

// serverOutput is where a started server's stdout and stderr go: the log
// file sudo passed as the helper's stderr. Never the helper's stdout: the
// hub reads that pipe to EOF and would wait for the server to exit. An
// in-process caller with a non-file stderr gets the server's output
// discarded.
func serverOutput(stderr io.Writer) *os.File {
	if f, ok := stderr.(*os.File); ok {
		return f
	}
	f, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		return os.Stderr
	}
	return f
}

// helperStart starts the server, answers with its pid at once, then
// waits: for the server to exit (reported on a second line, with its
// status) or for the hub to close stdin (the server answers HTTP; the
// helper leaves it running).
func helperStart(req helperRequest, acct account, out *os.File, stdin io.Reader, send func(helperReply) bool, log *slog.Logger) (*helperReply, int) {
	l, err := prepare(req, acct)
	if err != nil {
		return failed(err), helperFailed
	}
	// Files the server creates are group-writable, for the shared
	// environment and project directories, as with the other spawners.
	// umask is per process, which is fine here: the helper does nothing
	// else.
	syscall.Umask(0o002)
	for _, err := range linkShares(acct.home, acct.name, req.Shares) {
		log.Warn("shares", "err", err)
	}
	log.Info("starting server", "user", acct.name, "command", l.argv[0], "port", req.Port, "dir", l.dir)
	s, err := startServer(l, out)
	if err != nil {
		return failed(err), helperFailed
	}
	log.Info("server started", "pid", s.pid)
	if !send(helperReply{OK: true, PID: s.pid, PIDStart: s.pidStart, Running: true}) {
		return nil, helperFailed
	}
	released := make(chan struct{})
	go func() {
		_, _ = io.Copy(io.Discard, stdin)
		close(released)
	}()
	select {
	case <-s.done:
		code := exitCode(s.cmd.ProcessState)
		log.Info("server exited while the hub waited for it", "pid", s.pid, "exit_code", code)
		return &helperReply{Exited: true, ExitCode: code}, 0
	case <-released:
		return nil, 0
	}
}
