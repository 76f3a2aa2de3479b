// Package spawner starts, stops and polls users' single-user servers.
//
// Two kinds live here. Sudo (production) runs as the unprivileged hub
// account and starts each server as its member through one sudoers rule,
// `sudo -n -u <user> <hubd> spawn-helper`; the helper (RunHelper) reads one
// JSON request on stdin, does the work as the member and answers one JSON
// object on stdout. Local runs servers as the hub's own uid without sudo,
// for development and benchmarks. Both start, identify and stop processes
// with the same code (process.go), so what the tests prove for one holds
// for the other.
//
// A server always runs in its own session (setsid), outside the hub's
// process group, so that stopping or restarting the hub never takes user
// servers with it (anchors.md, complaint 1). It is identified by its pid
// plus its start time from /proc, so a recycled pid is never signalled.
package spawner

import (
	"context"
	"fmt"
	"net"
	"strings"
	"time"
)

// Kinds of State, as persisted in the servers row.
const (
	KindSudo  = "sudo"
	KindLocal = "local"
)

// DefaultStartGrace is how long Start watches a new server for an
// immediate exit before reporting it started. A server that dies on a bad
// option or a missing module does so well within it, and the user then
// sees the exit status and output at once instead of a readiness timeout
// (anchors.md, complaint 11).
const DefaultStartGrace = time.Second

// Request is everything needed to start one server.
type Request struct {
	User   string // already validated Unix name
	Server string // "" = default server
	// Command is the single-user server, absolute path first (config
	// spawner.command); Args follow it.
	Command []string
	Args    []string
	// Env holds the JUPYTERHUB_* variables including the API token, a
	// secret: it travels on the helper's stdin, never on a command line.
	Env map[string]string
	// WorkingDir is "" or "~" for the home, "~/x" for a directory under
	// it, or an absolute path.
	WorkingDir string
	Path       string // PATH for the server (a system PATH)
	Port       int    // chosen by the hub; also inside Env's JUPYTERHUB_SERVICE_URL
	// LogPath is the hub-owned per-server log file; the spawner opens it
	// for appending (creating it 0640) and the server's stdout and stderr
	// go there. Required.
	LogPath string
}

// State identifies a started server; it is persisted as JSON in the
// servers row and used to re-attach after a hub restart.
type State struct {
	Kind     string `json:"kind"`
	PID      int    `json:"pid,omitempty"`
	PIDStart uint64 `json:"pid_start,omitempty"` // /proc/<pid>/stat starttime: guards against pid reuse
	Unit     string `json:"unit,omitempty"`
}

// Status is what Poll found.
type Status struct {
	Running bool
	// ExitCode is the server's exit status when the hub reaped it itself
	// (Local), and -1 when it is running or the status is unknown.
	ExitCode int
	Reason   string // why it is not running, for logs and the admin
}

// Spawner starts, stops and polls single-user servers.
type Spawner interface {
	// Start returns once the process is started (HTTP readiness is the
	// hub's job). A server that exits at once yields a *StartError.
	Start(ctx context.Context, r Request) (State, error)
	// Stop sends SIGTERM to the server's process group, waits up to
	// timeout, then sends SIGKILL. A server that is already gone is
	// success.
	Stop(ctx context.Context, user string, s State, timeout time.Duration) error
	// Poll is cheap: it is called for hundreds of servers at hub start.
	Poll(ctx context.Context, user string, s State) (Status, error)
}

// StartError reports a server (or the helper, or sudo) that failed during
// Start, with what the user and the admin need to see.
type StartError struct {
	Reason   string
	ExitCode int
	// Output holds the last lines the server, the helper or sudo wrote
	// to the server's log during this start.
	Output string
}

func (e *StartError) Error() string {
	msg := e.Reason
	if e.ExitCode != 0 {
		msg += fmt.Sprintf(" (exit status %d)", e.ExitCode)
	}
	if last := lastLine(e.Output); last != "" {
		msg += ": " + last
	}
	return msg
}

// lastLine is the last line of output that is not the helper's own log
// line (the helper's errors are already in the reason), for one-line
// error messages.
func lastLine(s string) string {
	lines := strings.Split(s, "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if l := strings.TrimSpace(lines[i]); l != "" && !strings.Contains(l, "component="+helperComponent) {
			return l
		}
	}
	return ""
}

// FreePort returns a TCP port on the loopback interface that was free a
// moment ago (the kernel picks it; the socket is closed again, as
// JupyterHub's random_port does).
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free loopback port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
