// Package spawner starts, stops and polls users' single-user servers.
//
// Each kind is a Spawner. Sudo (production) runs as the unprivileged hub
// account and starts each server as its member through one sudoers rule,
// `sudo -n -u <user> <hubd> spawn-helper`; the helper (RunHelper) reads one
// JSON request on stdin, does the work as the member and answers JSON on
// stdout. Local runs servers as the hub's own uid without sudo, for
// development and benchmarks; Local and Sudo start, identify and stop
// processes with the same code (process.go), so what the tests prove for
// one holds for the other. Systemd runs each server as a transient unit.
// Slurm runs each server as a batch job on a cluster node: the job picks
// its port there and reports its address back to the hub (Placer).
//
// A server always runs outside the hub's process group and cgroup, so
// that stopping or restarting the hub never takes user servers with it. A
// process is identified by its pid plus its start time from /proc, so a
// recycled pid is never signalled.
//
// Start returns as soon as the server is started: the hub then waits for
// it to answer HTTP. A server that exits before that is reported the
// moment it exits by spawners that see it happen (Watcher), and by Poll
// otherwise.
package spawner

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/hubd/hubd/core/names"
)

// Kinds of State, as persisted in the servers row and named by
// spawner.kind in the configuration.
const (
	KindSudo    = "sudo"
	KindLocal   = "local"
	KindSystemd = "systemd"
	KindDocker  = "docker"
	KindSlurm   = "slurm"
)

// Kinds lists every spawner kind, in the order the configuration names
// them.
var Kinds = []string{KindSudo, KindSystemd, KindDocker, KindLocal, KindSlurm}

// DefaultHost is where servers started on the hub's own machine listen.
const DefaultHost = "127.0.0.1"

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
	// Host and Port are where the server listens, chosen by the hub and
	// also inside Env's JUPYTERHUB_SERVICE_URL; both are empty for a
	// Placer, whose server picks them where it lands.
	Host string
	Port int
	// LogPath is the hub-owned per-server log file; the spawner opens it
	// for appending (creating it 0640) and the server's stdout and stderr
	// go there. Required.
	LogPath string
	// Dynamic: the user has no Linux account; only the systemd spawner
	// can run such a server (a dynamic user), the others refuse it.
	Dynamic bool
	// Shares are the shared folders the user belongs to at this start: a
	// link ~/shares/<name> for the spawners that run servers on the host,
	// a mount at the same path in a container.
	Shares []Share
	// Resources are what the server's profile asks for; each kind reads
	// its own part.
	Resources Resources
}

// Share is one shared folder a server gets.
type Share struct {
	Name string `json:"name"`
	Path string `json:"path"`
}

// Resources are what a profile asks of a spawner. The hub resolves a
// profile into them; a kind ignores the parts of other kinds.
type Resources struct {
	Profile string // the profile's name, for logs and job names ("" = none)
	// GPUs are the devices of the hub's pool handed to this server alone
	// (CUDA_VISIBLE_DEVICES is in Env already). Restrict says whether
	// the server may open only these of the pool's device nodes: set
	// whenever the hub has a pool, so a server without GPUs gets none.
	GPUs     []GPU
	Restrict bool
	// SharedDevices are device nodes every server with a GPU needs too
	// (the driver's control nodes), those that exist.
	SharedDevices []string
	Systemd       SystemdLimits
	Docker        DockerLimits
	Slurm         SlurmJob
}

// GPU is one GPU of the hub's pool.
type GPU struct {
	Index  int    `json:"index"`  // CUDA's device index
	Device string `json:"device"` // its device node, e.g. /dev/nvidia0
}

// SystemdLimits override spawner.systemd's limits for one server; zero
// keeps the configured one.
type SystemdLimits struct {
	MemoryMax       int64 // bytes
	CPUQuotaPercent int
	TasksMax        int
	// DeviceAllow are further device nodes the server may use, each
	// "<path> <r|w|m...>" as systemd writes DeviceAllow=.
	DeviceAllow []string
}

// DockerLimits override spawner.docker's image and limits for one
// server; "" and zero keep the configured ones.
type DockerLimits struct {
	Image           string
	MemoryMax       int64 // bytes
	CPUQuotaPercent int
	PidsMax         int
}

// SlurmJob is what a batch job asks of Slurm; "" and 0 leave Slurm's
// defaults.
type SlurmJob struct {
	Partition string
	Time      string // --time, e.g. "8:00:00"
	Memory    string // --mem, e.g. "8G"
	CPUs      int    // --cpus-per-task
	GPUs      int    // --gres=gpu:N
	// Extra are further sbatch options, one per #SBATCH line.
	Extra []string
}

// State identifies a started server; it is persisted as JSON in the
// servers row and used to re-attach after a hub restart.
type State struct {
	Kind string `json:"kind"`
	// Host and Port are where the hub reaches the server ("" = DefaultHost).
	Host     string `json:"host,omitempty"`
	Port     int    `json:"port,omitempty"`
	PID      int    `json:"pid,omitempty"`
	PIDStart uint64 `json:"pid_start,omitempty"` // /proc/<pid>/stat starttime: guards against pid reuse
	Unit     string `json:"unit,omitempty"`
	// Container and ContainerID name a docker server's container; the
	// name is checked against the container's labels before any use.
	Container   string `json:"container,omitempty"`
	ContainerID string `json:"container_id,omitempty"`
	// JobID and Node are a Slurm server's batch job and the node it runs on.
	JobID string `json:"job_id,omitempty"`
	Node  string `json:"node,omitempty"`
	// GPUs are the pool's GPUs the server holds, for the admin.
	GPUs []int `json:"gpus,omitempty"`
}

// Started reports whether the state names something that was started.
func (s State) Started() bool {
	return s.PID != 0 || s.Unit != "" || s.Container != "" || s.JobID != ""
}

// Addr is host:port, where the hub reaches the server.
func (s State) Addr() string {
	host := s.Host
	if host == "" {
		host = DefaultHost
	}
	return net.JoinHostPort(host, strconv.Itoa(s.Port))
}

// Status is what Poll found.
type Status struct {
	Running bool
	// ExitCode is the server's exit status when the hub learnt it (a
	// process it reaped, a unit's result), and -1 when it is running or
	// the status is unknown.
	ExitCode int
	Reason   string // why it is not running, for logs and the admin
	// Output holds the last lines the server wrote during this start, when
	// the spawner has them.
	Output string
	// Detail is what the spawner's own bookkeeping says about a running
	// server, for the admin ("RUNNING on node2" for a Slurm job).
	Detail string
}

// Error describes a server that stopped running: the reason, its exit
// status and the last line of its output.
func (s Status) Error() string {
	msg := s.Reason
	if s.ExitCode > 0 {
		msg += fmt.Sprintf(" (exit status %d)", s.ExitCode)
	}
	if last := lastLine(s.Output); last != "" {
		msg += ": " + last
	}
	return msg
}

// Watcher is implemented by spawners that learn of a server's exit the
// moment it happens (their process reaps it). Watch returns a channel
// that yields the server's final status if it exits, and stop, which ends
// the watch once the server is ready; the server keeps running. A state
// the spawner does not watch (re-attached after a restart) gives a nil
// channel.
type Watcher interface {
	Watch(s State) (exited <-chan Status, stop func())
}

// Reattacher is implemented by spawners that resume work for a server
// they find running after a hub restart (copying its output into its
// log).
type Reattacher interface {
	Reattach(s State, logPath string)
}

// Reclaimer is implemented by spawners that can find a server a start
// launched but the hub never recorded (the hub was killed between the
// two) and stop it, so a crash mid-start leaves no server nobody tracks.
// Reclaim reports how many it stopped. Slurm needs none: a job whose
// address report the hub refuses ends itself.
type Reclaimer interface {
	Reclaim(ctx context.Context, o Orphan, timeout time.Duration) (int, error)
}

// Orphan names a server that may run unrecorded: its user and server
// name, and environment variables it was started with that belong to it
// alone (the hub's API URL and the server's own URL), for the spawners
// that find servers by their processes.
type Orphan struct {
	User, Server string
	Env          map[string]string
}

// Usager is implemented by spawners that measure a server's resource use
// themselves (a container's cgroup) rather than through its process
// session.
type Usager interface {
	Usage(ctx context.Context, user string, s State) (Usage, error)
}

// Placer is implemented by spawners whose servers learn their address
// only once they run: a batch job waits in a queue, lands on some node,
// picks a free port there and reports (host, port) to the hub with the
// server's own token. The hub calls Place between Start and its
// readiness probe, hands it every report the server makes, and passes on
// its progress messages ("pending (Resources)", "running on node2") to
// the spawn page. Place returns the state with Host and Port set, or an
// error once ctx ends (the hub then stops the server).
type Placer interface {
	Place(ctx context.Context, user string, s State, reports <-chan AddressReport, progress func(string)) (State, error)
}

// AddressReport is a server's report of where it listens. Place answers
// on Reply: nil accepts it, an error refuses it (the report's caller sees
// why).
type AddressReport struct {
	Host  string
	Port  int
	Reply chan<- error
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
	// Err is the cause, for errors.Is (a cancelled start).
	Err error
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

func (e *StartError) Unwrap() error { return e.Err }

// startFailed is a StartError for an error of the start itself.
func startFailed(err error) *StartError { return &StartError{Reason: err.Error(), Err: err} }

// beginStart is what every spawner does first: refuse a name that could
// be read as an option or a uid before it reaches sudo or systemd, and
// open the server's log.
func beginStart(r Request, dynamicOK bool) (*serverLog, error) {
	if err := names.Check(r.User); err != nil {
		return nil, &StartError{Reason: fmt.Sprintf("refusing to spawn for user %s: %v", names.Quote(r.User), err), Err: err}
	}
	if r.Dynamic && !dynamicOK {
		err := errors.New("this user has no Linux account (a dynamic user): only spawner.kind = \"systemd\" can run their server")
		return nil, &StartError{Reason: err.Error(), Err: err}
	}
	lg, err := openLog(r.LogPath)
	if err != nil {
		return nil, startFailed(err)
	}
	return lg, nil
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

// listenHost is where a server the hub placed listens: the request's host,
// else DefaultHost.
func (r Request) listenHost() string {
	if r.Host == "" {
		return DefaultHost
	}
	return r.Host
}
