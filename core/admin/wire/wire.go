// Package wire holds the JSON shapes and protocol constants of hubd's admin
// API, shared by the server (core/admin), its client (core/admin/client),
// hubtui and the hubd CLI. It imports nothing but the standard library so
// that hubtui stays small and static.
package wire

import (
	"encoding/json"
	"time"
)

// Protocol constants.
const (
	// DefaultSocket is the admin socket of a standard install
	// (config admin.socket).
	DefaultSocket = "/run/hubd/hubd.sock"
	// Host is the pseudo-host clients send. The server refuses any other
	// non-empty Host: a browser tricked into talking to the socket through
	// some TCP forwarder would send the forwarder's name instead.
	Host = "hubd.sock"
	// VersionHeader carries the hubd version in every request and response,
	// so either side can warn about a mismatch after an upgrade.
	VersionHeader = "Hubd-Version"
	// NDJSON is the content type of streamed operations (backup create):
	// one Progress line per step, then one final StreamEnd line.
	NDJSON = "application/x-ndjson"
	// MaxBodyBytes bounds request bodies; every request body is small.
	MaxBodyBytes = 64 << 10
)

// Error is the one error body shape of every non-2xx answer.
type Error struct {
	Error string `json:"error"`
}

// Role is what the peer may do, decided per connection from SO_PEERCRED.
type Role string

// Roles. An admin (root, the hub's own uid, auth.admin_group,
// auth.admin_users) reads and changes everything; a member
// (auth.allowed_group, auth.allowed_users) reads the hub status and their
// own sessions and may restart the hub; anyone else is refused.
const (
	RoleAdmin  Role = "admin"
	RoleMember Role = "member"
)

// WhoAmI answers GET /v1/whoami: how the hub sees the caller. hubtui uses
// it to hide the actions a member cannot take.
type WhoAmI struct {
	UID  int    `json:"uid"`
	User string `json:"user"` // "" when the uid has no name
	Role Role   `json:"role"`
	// Why explains the role ("in auth.admin_group hubadmin", "uid 0").
	Why string `json:"why"`
}

// Listener is one address the hub serves.
type Listener struct {
	Name string `json:"name"` // "public", "internal", "admin"
	Addr string `json:"addr"`
}

// Status answers GET /v1/status.
type Status struct {
	Version       string     `json:"version"`
	SchemaVersion int        `json:"schema_version"`
	PID           int        `json:"pid"`
	Started       time.Time  `json:"started"`
	UptimeSeconds int64      `json:"uptime_seconds"`
	Listeners     []Listener `json:"listeners"`
	SpawnerKind   string     `json:"spawner_kind"`
	Users         int        `json:"users"`
	// Servers counts server rows by state (running, starting, stopped…).
	Servers map[string]int `json:"servers"`
	// ActiveServers is starting + running + stopping.
	ActiveServers int `json:"active_servers"`
	// Goroutines is the hub process's goroutine count: a number that only
	// ever grows under a steady load is a leak.
	Goroutines int `json:"goroutines"`
}

// Session is one active server in GET /v1/sessions.
type Session struct {
	User   string `json:"user"`
	Server string `json:"server"` // "" = the default server
	State  string `json:"state"`  // starting, running, stopping
	// Pending is "start" or "stop" while the hub is starting or stopping
	// the server.
	Pending       string    `json:"pending,omitempty"`
	Started       time.Time `json:"started"`
	LastActivity  time.Time `json:"last_activity,omitzero"`  // reported by the server
	ProxyActivity time.Time `json:"proxy_activity,omitzero"` // traffic the proxy saw
	URL           string    `json:"url"`
	Spawner       string    `json:"spawner"`
	// Profile is the profile the server was started with ("" = none).
	Profile string `json:"profile,omitempty"`
	// Address is host:port where the hub reaches the server; "" until a
	// batch job reported it.
	Address string `json:"address,omitempty"`
	PID     int    `json:"pid,omitempty"`
	Unit    string `json:"unit,omitempty"`
	// Container is a docker server's container (name) and ContainerID its
	// id; its figures below are its cgroup's.
	Container   string `json:"container,omitempty"`
	ContainerID string `json:"container_id,omitempty"`
	// JobID, Node and JobState are a Slurm server's batch job, the node
	// it runs on and what squeue says of it ("RUNNING", "PENDING").
	JobID    string `json:"job_id,omitempty"`
	Node     string `json:"node,omitempty"`
	JobState string `json:"job_state,omitempty"`
	// GPUs are the indexes of the pool's GPUs the server holds.
	GPUs []int `json:"gpus,omitempty"`
	// Procs is how many processes the server's session (or container)
	// holds (sid = the server's pid); 0 when the spawner does not run
	// servers as a process session (systemd units) or the process is
	// gone.
	Procs int `json:"procs"`
	// CPUPercent is the CPU use of the whole session since the hub last
	// sampled it (about the last second or two when polled), or over
	// the session's lifetime on the first sample; 100 = one core.
	CPUPercent float64 `json:"cpu_percent"`
	// RSSBytes sums the resident memory of the session's processes
	// (shared pages count once per process, as in ps).
	RSSBytes int64 `json:"rss_bytes"`
	// GPUMemoryBytes is the GPU memory used by the session's processes
	// as nvidia-smi reports it; nil when there is no nvidia-smi.
	GPUMemoryBytes *int64 `json:"gpu_memory_bytes,omitempty"`
}

// Sessions answers GET /v1/sessions. Members see only their own.
type Sessions struct {
	Sessions []Session `json:"sessions"`
	// GPU reports whether nvidia-smi was found and answered.
	GPU bool `json:"gpu"`
	// Warnings are problems that left some fields empty (nvidia-smi
	// failing, /proc unreadable); the list itself is still right.
	Warnings []string `json:"warnings,omitempty"`
}

// StopRequest is the body of POST /v1/sessions/stop: exactly one of
// Users, Servers and IdleFor.
type StopRequest struct {
	// Users stops these users' default servers.
	Users []string `json:"users,omitempty"`
	// Servers stops these servers, each "user" (the default server) or
	// "user/server" (a named one).
	Servers []string `json:"servers,omitempty"`
	// IdleFor selects every running server idle for longer than this Go
	// duration ("2h", "90m"); idle is judged as the culler judges it
	// (culler.activity).
	IdleFor string `json:"idle_for,omitempty"`
	// Reason is recorded with each stop.
	Reason string `json:"reason,omitempty"`
}

// StopOneRequest is the (optional) body of POST /v1/sessions/{user}/stop.
type StopOneRequest struct {
	Reason string `json:"reason,omitempty"`
	// Server names one of the user's named servers; "" is the default.
	Server string `json:"server,omitempty"`
}

// StopResult answers both stop endpoints. Servers are named "user", or
// "user/server" for a named server.
type StopResult struct {
	Stopped    []string      `json:"stopped"`
	NotRunning []string      `json:"not_running,omitempty"`
	Failed     []StopFailure `json:"failed,omitempty"`
}

// StopFailure is one server that could not be stopped.
type StopFailure struct {
	User  string `json:"user"` // "user" or "user/server"
	Error string `json:"error"`
}

// LogTail answers GET /v1/sessions/{user}/log?lines=N.
type LogTail struct {
	User  string   `json:"user"`
	Path  string   `json:"path"`
	Lines []string `json:"lines"`
	// Truncated is set when the file holds more than was returned.
	Truncated bool `json:"truncated"`
}

// Backup is one archive in backups.dir.
type Backup struct {
	Name          string    `json:"name"` // file name inside backups.dir
	Path          string    `json:"path"`
	Size          int64     `json:"size"`
	Created       time.Time `json:"created,omitzero"`
	SchemaVersion int       `json:"schema_version,omitempty"`
	HubdVersion   string    `json:"hubd_version,omitempty"`
	Label         string    `json:"label,omitempty"`
	Host          string    `json:"host,omitempty"`
	// Error is set for an archive whose manifest cannot be read.
	Error string `json:"error,omitempty"`
}

// Backups answers GET /v1/backups, newest first.
type Backups struct {
	Dir     string   `json:"dir"`
	Backups []Backup `json:"backups"`
}

// BackupRequest is the (optional) body of POST /v1/backups.
type BackupRequest struct {
	// Label ends up in the file name; default "manual".
	Label string `json:"label,omitempty"`
}

// PruneRequest is the body of POST /v1/backups/prune; a nil field takes
// the hub's backups.keep or backups.max_age.
type PruneRequest struct {
	// Keep is how many of the newest backups to keep; 0 for no count limit.
	Keep *int `json:"keep,omitempty"`
	// MaxAgeSeconds removes backups older than this; 0 for no age limit.
	MaxAgeSeconds *int64 `json:"max_age_seconds,omitempty"`
}

// PruneResult lists what a prune removed.
type PruneResult struct {
	Dir     string   `json:"dir"`
	Removed []Backup `json:"removed"`
}

// Progress is one line of a streamed operation.
type Progress struct {
	Stage string `json:"stage"`
	Done  int64  `json:"done"`
	Total int64  `json:"total"`
}

// StreamLine is any line of an NDJSON stream: a Progress, or the final
// line with exactly one of Result and Error.
type StreamLine struct {
	Progress
	Result json.RawMessage `json:"result,omitempty"`
	Error  string          `json:"error,omitempty"`
}

// UpgradeStep is one pending schema step.
type UpgradeStep struct {
	Version int    `json:"version"`
	Name    string `json:"name"`
}

// UpgradePlan answers GET /v1/upgrade/plan and POST /v1/upgrade/run.
type UpgradePlan struct {
	From    int           `json:"from"`
	To      int           `json:"to"`
	Pending bool          `json:"pending"`
	Steps   []UpgradeStep `json:"steps"`
	Message string        `json:"message"`
}

// RestartRequest is the (optional) body of POST /v1/restart.
type RestartRequest struct {
	Reason string `json:"reason,omitempty"`
}

// RestartResult answers POST /v1/restart.
type RestartResult struct {
	Message string `json:"message"`
}

// Event is one audit log entry.
type Event struct {
	ID       int64     `json:"id"`
	Time     time.Time `json:"time"`
	Actor    string    `json:"actor"`
	ActorUID int       `json:"actor_uid"` // -1 when unknown
	Source   string    `json:"source"`
	Action   string    `json:"action"`
	Target   string    `json:"target"`
	Detail   string    `json:"detail"`
}

// Events answers GET /v1/events?limit=N&before=ID&action=A&target=T,
// newest first. NextBefore is the before= of the next (older) page; 0
// when there is none.
type Events struct {
	Events     []Event `json:"events"`
	NextBefore int64   `json:"next_before,omitempty"`
}

// Token is an API token in GET /v1/tokens: owned by a user or a service.
type Token struct {
	ID           string    `json:"id"` // "a<number>", as in JupyterHub's API
	User         string    `json:"user,omitempty"`
	Service      string    `json:"service,omitempty"`
	Kind         string    `json:"kind"` // api, service (from the config)
	Scopes       []string  `json:"scopes"`
	Note         string    `json:"note"`
	Created      time.Time `json:"created"`
	ExpiresAt    time.Time `json:"expires_at,omitzero"`
	LastActivity time.Time `json:"last_activity,omitzero"`
}

// Tokens answers GET /v1/tokens?user=U&service=S.
type Tokens struct {
	Tokens []Token `json:"tokens"`
}

// TokenRequest is the body of POST /v1/tokens: exactly one of User and
// Service owns the new token.
type TokenRequest struct {
	User    string `json:"user,omitempty"`
	Service string `json:"service,omitempty"`
	// Scopes the token carries (JupyterHub's names); empty means all of
	// the owner's.
	Scopes []string `json:"scopes,omitempty"`
	// ExpiresInSeconds is the token's life; 0 for a token that does not
	// expire (a negative one is refused).
	ExpiresInSeconds int64  `json:"expires_in_seconds,omitempty"`
	Note             string `json:"note,omitempty"`
}

// NewToken answers POST /v1/tokens: the token's model and the token
// itself, which is shown this once and never stored.
type NewToken struct {
	Token
	Secret string `json:"token"`
}

// SharedEnv answers GET /v1/sharedenv: the shared Python environment as
// the hub sees it, with a check of its whole tree.
type SharedEnv struct {
	// Enabled is shared_env.enabled; nothing else is set when it is false.
	Enabled bool   `json:"enabled"`
	Path    string `json:"path"`
	Group   string `json:"group"`
	// Exists is false when there is no venv at Path yet.
	Exists           bool      `json:"exists"`
	PythonVersion    string    `json:"python_version,omitempty"`
	IPyKernel        bool      `json:"ipykernel"`
	Packages         int       `json:"packages"`
	KernelSpec       string    `json:"kernel_spec,omitempty"`
	KernelRegistered bool      `json:"kernel_registered"`
	Health           EnvReport `json:"health"`
	// Checked is when the hub walked the tree.
	Checked time.Time `json:"checked"`
}

// EnvReport is one walk over the shared environment: what it holds and
// what drifted from the shared layout (and, after a repair, what was
// fixed).
type EnvReport struct {
	Dirs         int          `json:"dirs"`
	Files        int          `json:"files"`
	Symlinks     int          `json:"symlinks"`
	Bytes        int64        `json:"bytes"`
	ACLSupported bool         `json:"acl_supported"`
	Problems     []EnvProblem `json:"problems,omitempty"`
	// Errors counts paths that could not be checked or repaired.
	Errors        int      `json:"errors"`
	ErrorExamples []string `json:"error_examples,omitempty"`
}

// EnvProblem is one kind of drift.
type EnvProblem struct {
	Kind        string   `json:"kind"`        // e.g. "file-mode"
	Description string   `json:"description"` // e.g. "files not group-writable"
	Count       int      `json:"count"`
	Fixed       int      `json:"fixed,omitempty"`
	Examples    []string `json:"examples,omitempty"`
}

// Entries is how many paths the walk saw.
func (r EnvReport) Entries() int { return r.Dirs + r.Files + r.Symlinks }

// Remaining is the number of problems found and not fixed.
func (r EnvReport) Remaining() int {
	n := 0
	for _, p := range r.Problems {
		n += p.Count - p.Fixed
	}
	return n
}

// Healthy reports whether nothing is left to fix or look at.
func (r EnvReport) Healthy() bool { return r.Remaining() == 0 && r.Errors == 0 }

// User is one hub user in GET /v1/users.
type User struct {
	Name string `json:"name"`
	// Method is the login method of the user's identity ("pam", "oidc");
	// "" for a user created through the API who has not logged in yet.
	Method string `json:"method"`
	// Admin is whether the user is an admin now: by hand, or by the login
	// rules at their last login.
	Admin bool `json:"admin"`
	// AdminByHand is set for an admin made so by an admin (hubtui, hubd
	// user admin, the REST API): it survives logins.
	AdminByHand bool `json:"admin_by_hand"`
	// AdminRule names the login rule that made the user an admin at their
	// last login ("auth.oidc.admin_groups: lab-admins"), "" when none did.
	// The rules decide again at every login.
	AdminRule string `json:"admin_rule,omitempty"`
	// Account is what the user's servers run as: "linux" (the Linux
	// account of the same name) or "dynamic" (a systemd dynamic user).
	Account  string    `json:"account"`
	Created  time.Time `json:"created"`
	LastSeen time.Time `json:"last_seen,omitzero"`
	// Server is the state of the default server (starting, running,
	// stopping, stopped, failed), "" when it never started.
	Server string `json:"server,omitempty"`
	// Pending is "start" or "stop" while the hub is starting or stopping
	// the default server.
	Pending string `json:"pending,omitempty"`
	// ActiveServers counts the servers starting, running or stopping,
	// named ones included.
	ActiveServers int `json:"active_servers"`
}

// Users answers GET /v1/users?offset=N&limit=N&name=TEXT: one page of
// users in the order they were created, with the total that match.
type Users struct {
	Users []User `json:"users"`
	Total int    `json:"total"`
	// NextOffset is the offset= of the next page; 0 when this is the last.
	NextOffset int `json:"next_offset,omitempty"`
}

// AdminRequest is the body of POST /v1/users/{user}/admin.
type AdminRequest struct {
	// Admin grants (true) or revokes (false) admin by hand.
	Admin bool `json:"admin"`
}

// AdminResult answers POST /v1/users/{user}/admin.
type AdminResult struct {
	User User `json:"user"`
	// Note says what the login rules will do about the change at the
	// user's next login, when they will do something.
	Note string `json:"note,omitempty"`
}

// DeletedUser answers DELETE /v1/users/{user}: the user as they were and
// the servers stopped first ("user" or "user/server").
type DeletedUser struct {
	User    User     `json:"user"`
	Stopped []string `json:"stopped"`
}

// Share is one folder shared between chosen members.
type Share struct {
	Name    string   `json:"name"`
	Path    string   `json:"path"`
	Group   string   `json:"group"`
	Members []string `json:"members"`
}

// Shares answers GET /v1/shares.
type Shares struct {
	Shares []Share `json:"shares"`
	// Public is the public area's path, "" when there is none yet.
	Public string `json:"public,omitempty"`
	// ReadOnly says why this hub cannot change shares (it does not run as
	// root), "" when it can.
	ReadOnly string `json:"read_only,omitempty"`
}

// ShareRequest is the body of POST /v1/shares: a share with its first
// members, or (Public) the public area.
type ShareRequest struct {
	Name    string   `json:"name,omitempty"`
	Members []string `json:"members,omitempty"`
	Public  bool     `json:"public,omitempty"`
}

// ShareMembers is the body of POST /v1/shares/{name}/members.
type ShareMembers struct {
	Add    []string `json:"add,omitempty"`
	Remove []string `json:"remove,omitempty"`
}

// ShareReport is a check or repair of one tree: a share, or one member's
// folder in the public area. Problems, Examples and Fixed are keyed by
// the kind of drift ("wrong-group", "file-mode", ...).
type ShareReport struct {
	Path     string              `json:"path"`
	Group    string              `json:"group"`
	Files    int                 `json:"files"`
	Dirs     int                 `json:"dirs"`
	Problems map[string]int      `json:"problems"`
	Examples map[string][]string `json:"examples,omitempty"`
	Fixed    map[string]int      `json:"fixed,omitempty"`
	Errors   int                 `json:"errors"`
	Healthy  bool                `json:"healthy"`
}

// ShareCheck answers POST /v1/shares/{name}/check and .../repair.
type ShareCheck struct {
	Reports []ShareReport `json:"reports"`
}
