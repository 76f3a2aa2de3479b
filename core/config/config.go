// Package config loads, validates and prints hubd's TOML configuration.
//
// One Config struct holds every setting. Default() gives a working
// configuration for a standard install; Load merges a file over it and
// rejects unknown keys and bad values with the file, line and a hint.
package config

//go:generate go run ./internal/configdoc -o ../../docs/config.md

import (
	"time"

	"github.com/hubd/hubd/core/spawner"
)

// DefaultPath is where hubd looks for its configuration file when neither
// --config nor HUBD_CONFIG names one.
const DefaultPath = "/etc/hubd/hubd.toml"

// EnvVar names the environment variable that overrides DefaultPath.
const EnvVar = "HUBD_CONFIG"

// Config is the whole configuration of hubd.
type Config struct {
	Hub       Hub       `toml:"hub"`
	Data      Data      `toml:"data"`
	Auth      Auth      `toml:"auth"`
	Spawner   Spawner   `toml:"spawner"`
	Proxy     Proxy     `toml:"proxy"`
	Admin     Admin     `toml:"admin"`
	Culler    Culler    `toml:"culler"`
	Backups   Backups   `toml:"backups"`
	SharedEnv SharedEnv `toml:"shared_env"`
	Shares    Shares    `toml:"shares"`
	// Services are programs that use the hub's API with a token of their
	// own ([[services]] tables), optionally started by the hub and served
	// under /services/<name>/.
	Services []Service `toml:"services"`
	// Roles grant scopes to users, groups and services ([[roles]] tables),
	// as JupyterHub's load_roles does.
	Roles []Role `toml:"roles"`

	// Source is the file the configuration was read from ("" for defaults).
	Source string `toml:"-"`
}

// Hub holds the listeners and the public face of the hub.
type Hub struct {
	// Listen is the public address (browsers and API clients).
	Listen string `toml:"listen"`
	// InternalListen is the address user servers call back to: loopback,
	// unless Slurm jobs on other machines must reach it.
	InternalListen string `toml:"internal_listen"`
	// BaseURL is the URL prefix the hub is served under, e.g. "/jupyter/".
	BaseURL string `toml:"base_url"`
	// TrustForwardedHeaders accepts X-Forwarded-* from a fronting proxy.
	TrustForwardedHeaders bool `toml:"trust_forwarded_headers"`
	// CookieMaxAge bounds how long a login cookie is accepted.
	CookieMaxAge Duration `toml:"cookie_max_age"`
	// JupyterHubVersion is the version announced to clients and servers.
	JupyterHubVersion string `toml:"jupyterhub_version"`
	// AutoUpgradeDB lets serve apply pending schema upgrades (with a backup).
	AutoUpgradeDB bool `toml:"auto_upgrade_db"`
	// LogLevel is one of debug, info, warn, error.
	LogLevel string `toml:"log_level"`
	// TLS serves the public listener over HTTPS.
	TLS TLS `toml:"tls"`
}

// TLS holds the public listener's certificate and what goes with HTTPS.
// The files are read when the hub starts, so `hubd restart` (or SIGHUP)
// picks up a renewed certificate without dropping a connection.
type TLS struct {
	// Cert is the PEM certificate, followed by its intermediates. Set it
	// with Key, or neither: without them the hub speaks plain HTTP (behind
	// a TLS-terminating proxy, say).
	Cert string `toml:"cert"`
	// Key is the certificate's PEM private key, readable by the hub's
	// account only.
	Key string `toml:"key"`
	// RedirectListen is a plain-HTTP address ("host:port", e.g. ":80")
	// that redirects every request to the HTTPS listener; "" for none.
	RedirectListen string `toml:"redirect_listen"`
	// HSTSMaxAge sends Strict-Transport-Security with this max-age over
	// HTTPS; 0 sends none (browsers would refuse plain HTTP to the host
	// for that long, so it is opt-in).
	HSTSMaxAge Duration `toml:"hsts_max_age"`
}

// Enabled reports whether the public listener speaks HTTPS.
func (t TLS) Enabled() bool { return t.Cert != "" || t.Key != "" }

// Data holds the paths of hubd's own state.
type Data struct {
	// DB is the sqlite state file.
	DB string `toml:"db"`
	// CookieSecretFile holds the key that signs cookies (mode 0600).
	CookieSecretFile string `toml:"cookie_secret_file"`
	// LogDir receives one log file per user server.
	LogDir string `toml:"log_dir"`
	// RuntimeDir holds sockets and per-server runtime files.
	RuntimeDir string `toml:"runtime_dir"`
}

// Auth decides who may log in and who is an admin.
type Auth struct {
	// PAMService names the file /etc/pam.d/<pam_service> that `hubd setup`
	// installs.
	PAMService string `toml:"pam_service"`
	// AllowedGroup is the Linux group whose members may log in.
	AllowedGroup string `toml:"allowed_group"`
	// Users who may log in even outside allowed_group.
	AllowedUsers []string `toml:"allowed_users"`
	// Linux group whose members are hub admins ("" = none).
	AdminGroup string `toml:"admin_group"`
	// Users who are hub admins.
	AdminUsers []string `toml:"admin_users"`
	// MinUID refuses system accounts (and root) whatever the groups say.
	MinUID int `toml:"min_uid"`
	// PAMWorkers bounds concurrent PAM conversations.
	PAMWorkers int `toml:"pam_workers"`
	// Failed logins per user (from one address) within failure_window
	// before the hub slows down; the Unix account is never locked.
	FailuresPerUser int `toml:"failures_per_user"`
	// Failed logins per address within failure_window before the hub slows
	// down.
	FailuresPerAddress int `toml:"failures_per_address"`
	// Window for the two limits above; Unix accounts are never locked.
	FailureWindow Duration `toml:"failure_window"`
	// OpenSessions runs pam_open_session on login (failures only warn).
	OpenSessions bool `toml:"open_sessions"`
	// Hub groups (managed with the groups API) whose members may log in,
	// besides the Linux group and list above.
	AllowedHubGroups []string `toml:"allowed_hub_groups"`
	// Hub groups whose members are admins.
	AdminHubGroups []string `toml:"admin_hub_groups"`
	// Methods are the login methods the login page offers: "pam" and
	// "ldap" (the password form; PAM is asked first, so local users never
	// wait for the directory) and "oidc" (a "Sign in with" button).
	Methods []string `toml:"methods"`
	// OIDC is the single sign-on login (OpenID Connect or plain OAuth2).
	OIDC OIDC `toml:"oidc"`
	// LDAP is the login method "ldap": the password form, checked by
	// binding to an LDAP directory as the user.
	LDAP LDAP `toml:"ldap"`
}

// OIDC configures the single sign-on login method "oidc": OpenID Connect
// with discovery, or plain OAuth2 with explicit endpoints.
type OIDC struct {
	// Name is shown on the button: "Sign in with <name>".
	Name string `toml:"name"`
	// Issuer is the provider's issuer URL; its
	// /.well-known/openid-configuration gives the endpoints and keys.
	// Empty for plain OAuth2 (authorize_url, token_url, userinfo_url).
	Issuer string `toml:"issuer"`
	// AuthorizeURL is the authorization endpoint of a plain OAuth2
	// provider (with issuer set, discovery's endpoint is used).
	AuthorizeURL string `toml:"authorize_url"`
	// TokenURL is the token endpoint of a plain OAuth2 provider.
	TokenURL string `toml:"token_url"`
	// UserinfoURL gives the claims of a plain OAuth2 provider, and fills
	// claims an ID token lacks.
	UserinfoURL string `toml:"userinfo_url"`
	// ClientID is the hub's client at the provider.
	ClientID string `toml:"client_id"`
	// ClientSecretFile holds the client secret (mode 0600, owned by the
	// hub's account); the secret is never written in this file.
	ClientSecretFile string `toml:"client_secret_file"`
	// Scopes asked for ("openid" is added for OpenID Connect).
	Scopes []string `toml:"scopes"`
	// RedirectURL is the callback the provider sends browsers to, as
	// registered there, e.g. "https://hub.example.org/hub/oauth_callback";
	// "" builds it from the request's host.
	RedirectURL string `toml:"redirect_url"`
	// UsernameClaim is the claim that names the user, e.g.
	// "preferred_username", "email" or "sub".
	UsernameClaim string `toml:"username_claim"`
	// SubjectClaim identifies the person for good (for plain OAuth2,
	// whose userinfo may call it "id").
	SubjectClaim string `toml:"subject_claim"`
	// GroupsClaim is the claim listing the person's groups at the
	// provider, read by allowed_groups and admin_groups.
	GroupsClaim string `toml:"groups_claim"`
	// Lowercase user names before anything else.
	Lowercase bool `toml:"lowercase"`
	// StripDomains are domains whose "@domain" is removed from user names
	// ("*" = any domain).
	StripDomains []string `toml:"strip_domains"`
	// ReplaceInvalid stands in for characters a Linux name cannot hold
	// ("-", "_" or "."); "" refuses such names.
	ReplaceInvalid string `toml:"replace_invalid"`
	// UsernameMap maps a normalised user name to the hub's, e.g.
	// { "alice.smith" = "asmith" }.
	UsernameMap map[string]string `toml:"username_map"`
	// AllowedUsers may log in (hub names, after mapping).
	AllowedUsers []string `toml:"allowed_users"`
	// AllowedGroups are provider groups (groups_claim) whose members may
	// log in.
	AllowedGroups []string `toml:"allowed_groups"`
	// AdminUsers are hub admins (hub names).
	AdminUsers []string `toml:"admin_users"`
	// AdminGroups are provider groups whose members are hub admins.
	AdminGroups []string `toml:"admin_groups"`
	// AccountMode is what servers run as: "existing" (the Linux account of
	// that name, in auth.allowed_group), "create" (such an account, made
	// at the first login) or "dynamic" (no Linux account: a systemd
	// dynamic user; spawner.kind = "systemd" only).
	AccountMode string `toml:"account_mode"`
	// SessionMaxAge bounds a hub session started by this method (at most
	// hub.cookie_max_age).
	SessionMaxAge Duration `toml:"session_max_age"`
	// Timeout bounds each request to the provider; a provider that is
	// down or slow gives a clear page after it.
	Timeout Duration `toml:"timeout"`
	// EndSessionURL is where logout sends the browser to end the
	// provider's session too ("" = the provider's end_session_endpoint
	// from discovery, if any).
	EndSessionURL string `toml:"end_session_url"`
	// LogoutFromProvider makes hub logout also end the provider's session.
	LogoutFromProvider bool `toml:"logout_from_provider"`
}

// LDAP configures the login method "ldap": the hub binds to the directory
// as the user to check the password (by a DN template, or by searching
// for the user with a service account first), then reads the user's
// groups.
type LDAP struct {
	// URLs are the directory's servers, tried in order: "ldaps://host" or
	// "ldap://host" (with start_tls).
	URLs []string `toml:"urls"`
	// StartTLS upgrades ldap:// connections to TLS before anything else
	// is sent; a server that cannot is refused.
	StartTLS bool `toml:"start_tls"`
	// CAFile is the PEM file of the CA that signed the servers'
	// certificates ("" = the system's CAs).
	CAFile string `toml:"ca_file"`
	// UserDNTemplate binds straight as this DN, "{username}" replaced by
	// the escaped user name, e.g. "uid={username},ou=people,dc=example,dc=org".
	// Empty: search for the user (user_search_base, user_filter).
	UserDNTemplate string `toml:"user_dn_template"`
	// BindDN is the service account that searches for users and groups.
	BindDN string `toml:"bind_dn"`
	// BindPasswordFile holds the service account's password (mode 0600,
	// owned by the hub's account); the password is never written here.
	BindPasswordFile string `toml:"bind_password_file"`
	// UserSearchBase is where users are searched for.
	UserSearchBase string `toml:"user_search_base"`
	// UserFilter finds one user, "{username}" replaced by the escaped
	// user name.
	UserFilter string `toml:"user_filter"`
	// UsernameAttribute holds the user name in a user's entry ("uid";
	// "sAMAccountName" in Active Directory).
	UsernameAttribute string `toml:"username_attribute"`
	// GroupMembership says where membership is recorded: "memberUid"
	// (posixGroup), "member" (groupOfNames, Active Directory) or
	// "memberOf" (an attribute of the user).
	GroupMembership string `toml:"group_membership"`
	// GroupSearchBase is where groups are searched for (memberUid and
	// member).
	GroupSearchBase string `toml:"group_search_base"`
	// AllowedUsers may log in (hub names).
	AllowedUsers []string `toml:"allowed_users"`
	// AllowedGroups are directory groups, by name (cn) or DN, whose
	// members may log in.
	AllowedGroups []string `toml:"allowed_groups"`
	// AdminUsers are hub admins (hub names).
	AdminUsers []string `toml:"admin_users"`
	// AdminGroups are directory groups, by name (cn) or DN, whose members
	// are hub admins.
	AdminGroups []string `toml:"admin_groups"`
	// AccountMode is what servers run as: "existing" (the Linux account of
	// that name, in auth.allowed_group), "create" (such an account, made
	// at the first login) or "dynamic" (no Linux account: a systemd
	// dynamic user; spawner.kind = "systemd" only).
	AccountMode string `toml:"account_mode"`
	// Connections bounds the open connections to the directory; with
	// "ldap" the only password method, also the logins checked at once
	// (with "pam" too, auth.pam_workers does).
	Connections int `toml:"connections"`
	// Timeout bounds one login's work with the directory (connecting,
	// TLS, searches, bind); a directory that is down or hangs gives a
	// clear page after it.
	Timeout Duration `toml:"timeout"`
}

// Spawner says how user servers are started.
type Spawner struct {
	// Kind is "sudo" (mediator through sudo), "systemd" (transient units),
	// "docker" (a container per server), "slurm" (batch jobs on a cluster)
	// or "local" (same uid as the hub; development and benchmarks only). A
	// profile may name another kind.
	Kind string `toml:"kind"`
	// Command is the single-user server, absolute path first.
	Command []string `toml:"command"`
	// Extra arguments for every server.
	Args []string `toml:"args"`
	// Extra environment for every server, e.g. { OMP_NUM_THREADS = "4" }
	// ("{username}" in a value is the user's name). The single-user app is
	// chosen with app, not JUPYTERHUB_SINGLEUSER_APP here.
	Environment map[string]string `toml:"environment"`
	// WorkingDir is the server's directory; "" or "~" means the home.
	WorkingDir string `toml:"working_dir"`
	// AppName is the single-user app, set as JUPYTERHUB_SINGLEUSER_APP:
	// "notebook" (the classic Notebook, landing on /tree), "jupyter-server"
	// (Jupyter Server with whatever UI extension is installed, /tree),
	// "jupyterlab" (/lab; not packaged in Debian 12, works where it is
	// installed) or "auto" (jupyterhub-singleuser picks: Jupyter Server
	// whenever it is installed). `hubd doctor` starts it as a member and
	// checks the landing page.
	AppName string `toml:"app"`
	// DefaultURL is the page a user lands on, e.g. "/tree" or "/lab"; ""
	// is the app's own.
	DefaultURL string `toml:"default_url"`
	// Path is the PATH user servers get (the shared environment's bin is
	// put in front of it when enabled).
	Path string `toml:"path"`
	// How long starting the server's process may take.
	StartTimeout Duration `toml:"start_timeout"`
	// StartGrace is no longer used: a server's early exit is noticed as it
	// happens. Still read so old files load; the hub warns when it is set.
	StartGrace *Duration `toml:"start_grace,omitempty"`
	// How long a started server may take to answer HTTP before its start
	// fails.
	HTTPTimeout Duration `toml:"http_timeout"`
	// How long a server gets to stop before it is killed.
	StopTimeout Duration `toml:"stop_timeout"`
	// How often the hub checks that servers still run.
	PollInterval Duration `toml:"poll_interval"`
	// Most servers starting at once (0 = no limit).
	ConcurrentSpawnLimit int `toml:"concurrent_spawn_limit"`
	// Let users run servers besides their default one, at
	// /user/<name>/<server>/ (JupyterHub's allow_named_servers).
	NamedServers bool `toml:"named_servers"`
	// Most named servers (running or not) a user may have; 0 = no limit.
	NamedServerLimitPerUser int `toml:"named_server_limit_per_user"`
	// sudo, as called by the hub; with helper_path it forms the one command
	// the sudoers rule allows.
	SudoPath string `toml:"sudo_path"`
	// The spawn helper the sudoers rule allows; `hubd setup` installs hubd
	// here (root-owned).
	HelperPath string `toml:"helper_path"`
	// CreateHome creates a member's home directory (from /etc/skel,
	// private to them) at their first start when it does not exist yet, as
	// for directory (LDAP, SSSD) accounts that never logged in on this
	// host. With kind sudo, sudo's PAM session for the hub does it through
	// pam_mkhomedir (`hubd setup` installs that service); with kind systemd
	// the hub, which then runs as root, does it itself.
	CreateHome bool `toml:"create_home"`
	// Device nodes every server holding a GPU also gets (the driver's
	// control nodes; those that exist).
	GPUSharedDevices []string `toml:"gpu_shared_devices"`
	// nvidia-smi, which lists the GPUs when the gpus list is empty.
	NvidiaSMI string `toml:"nvidia_smi"`
	// Systemd holds the settings of kind = "systemd".
	Systemd Systemd `toml:"systemd"`
	// Docker holds the settings of kind = "docker".
	Docker Docker `toml:"docker"`
	// Slurm holds the settings of kind = "slurm".
	Slurm Slurm `toml:"slurm"`
	// Profiles are what users choose from when they start a server
	// ([[spawner.profiles]] tables); none means every server is started
	// alike.
	Profiles []Profile `toml:"profiles"`
	// GPUs are the pool profiles draw GPUs from ([[spawner.gpus]] tables);
	// empty means the GPUs nvidia-smi lists, as /dev/nvidia<minor>.
	GPUs []GPU `toml:"gpus"`
}

// Docker holds the container settings of the docker spawner.
type Docker struct {
	// The Docker Engine's address, e.g. "unix:///var/run/docker.sock" ("" =
	// $DOCKER_HOST, else that socket).
	Host string `toml:"host"`
	// The image every server runs; it must hold spawner.command.
	Image string `toml:"image"`
	// The bridge network the containers join.
	Network string `toml:"network"`
	// The address containers reach the hub's API at; the hub listens there
	// too ("" = the network's gateway).
	HubIP string `toml:"hub_ip"`
	// Containers are named <name_prefix>-<user>[-<server>].
	NamePrefix string `toml:"name_prefix"`
	// Memory limit per server, e.g. "4G" (0 = none).
	MemoryMax ByteSize `toml:"memory_max"`
	// CPU limit per server in percent of one CPU, e.g. 200 (0 = none).
	CPUQuotaPercent int `toml:"cpu_quota_percent"`
	// Most processes and threads per server (0 = no limit).
	PidsMax int `toml:"pids_max"`
	// Mount the image's root file system read-only (/tmp stays writable).
	ReadOnlyRoot bool `toml:"read_only_root"`
	// Further bind mounts, "/host/path:/container/path[:ro]".
	Mounts []string `toml:"mounts"`
}

// Profile is one [[spawner.profiles]] table: a choice at spawn time, with
// the resources it gives. The sub-tables hold the settings of one
// spawner kind each; a kind the hub does not run ignores its table.
type Profile struct {
	// Name identifies the profile in the spawn form and in the API's
	// user_options ({"profile": "<name>"}): lowercase letters, digits
	// and '-'.
	Name string `toml:"name"`
	// What the spawn form shows ("" = the name).
	DisplayName string `toml:"display_name,omitempty"`
	// One line under it in the spawn form.
	Description string `toml:"description,omitempty"`
	// The profile of a start that names none (else the first the user
	// may use).
	Default bool `toml:"default,omitempty"`
	// The spawner kind of this profile's servers ("" = spawner.kind).
	Kind string `toml:"kind,omitempty"`
	// Hub groups (the groups API) whose members may use the profile;
	// with linux_groups empty too, everyone may.
	Groups []string `toml:"groups,omitempty"`
	// Linux groups whose members may use the profile.
	LinuxGroups []string `toml:"linux_groups,omitempty"`
	// How many GPUs of the hub's pool (spawner.gpus), each handed to one server
	// at a time (sudo, systemd, docker and local kinds; Slurm jobs ask Slurm
	// with slurm.gpus).
	GPUs int `toml:"gpus,omitempty"`
	// Settings for kind = "systemd".
	Systemd ProfileSystemd `toml:"systemd,omitempty"`
	// Settings for kind = "docker".
	Docker ProfileDocker `toml:"docker,omitempty"`
	// Settings for kind = "slurm".
	Slurm ProfileSlurm `toml:"slurm,omitempty"`
}

// ProfileSystemd overrides spawner.systemd for a profile's servers.
type ProfileSystemd struct {
	// Memory limit, e.g. "4G" (0 = spawner.systemd.memory_max).
	MemoryMax ByteSize `toml:"memory_max,omitempty"`
	// CPU limit in percent of one CPU (0 = spawner.systemd.cpu_quota_percent).
	CPUQuotaPercent int `toml:"cpu_quota_percent,omitempty"`
	// Most tasks (0 = spawner.systemd.tasks_max).
	TasksMax int `toml:"tasks_max,omitempty"`
	// Further device nodes the server may use, each "<path> <rwm>"
	// (DeviceAllow=); with these or a GPU pool a server may open no other
	// devices but the standard pseudo devices.
	DeviceAllow []string `toml:"device_allow,omitempty"`
}

// ProfileDocker overrides spawner.docker for a profile's containers.
type ProfileDocker struct {
	// The image, e.g. a CUDA or R stack ("" = spawner.docker.image); it
	// must hold spawner.command.
	Image string `toml:"image,omitempty"`
	// Memory limit, e.g. "8G" (0 = spawner.docker.memory_max).
	MemoryMax ByteSize `toml:"memory_max,omitempty"`
	// CPU limit in percent of one CPU (0 = spawner.docker.cpu_quota_percent).
	CPUQuotaPercent int `toml:"cpu_quota_percent,omitempty"`
	// Most processes and threads (0 = spawner.docker.pids_max).
	PidsMax int `toml:"pids_max,omitempty"`
}

// ProfileSlurm is what a profile's batch jobs ask of Slurm ("" and 0
// leave Slurm's defaults).
type ProfileSlurm struct {
	// The partition (sbatch --partition).
	Partition string `toml:"partition,omitempty"`
	// The time limit, e.g. "8:00:00" (sbatch --time).
	Time string `toml:"time,omitempty"`
	// The memory per node, e.g. "8G" (sbatch --mem).
	Memory string `toml:"memory,omitempty"`
	// How many CPUs (sbatch --cpus-per-task).
	CPUs int `toml:"cpus,omitempty"`
	// How many GPUs (sbatch --gres=gpu:N).
	GPUs int `toml:"gpus,omitempty"`
	// Further sbatch options, one per #SBATCH line, e.g. ["--qos=interactive"].
	Extra []string `toml:"extra,omitempty"`
}

// GPU is one [[spawner.gpus]] table: a GPU of the pool.
type GPU struct {
	// CUDA's index of the GPU (what CUDA_VISIBLE_DEVICES names).
	Index int `toml:"index"`
	// Its device node, e.g. "/dev/nvidia0".
	Device string `toml:"device"`
}

// Slurm holds the settings of the Slurm spawner: each server is a batch
// job that reports its node's address and port back to the hub.
type Slurm struct {
	// How jobs are submitted and cancelled: "sudo" (sbatch and scancel as
	// the member, through the spawn helper) or "root" (the hub runs as
	// root and passes --uid and --gid).
	Submit string `toml:"submit"`
	// The sbatch command.
	Sbatch string `toml:"sbatch"`
	// squeue, which the hub runs as itself (so Slurm's PrivateData must not
	// hide jobs).
	Squeue string `toml:"squeue"`
	// scancel.
	Scancel string `toml:"scancel"`
	// scontrol, also run by jobs on the nodes (at the same path there).
	Scontrol string `toml:"scontrol"`
	// The Python on the nodes, which reports the server's address.
	Python string `toml:"python"`
	// Jobs are named <job_name_prefix>-<user>[-<server>].
	JobNamePrefix string `toml:"job_name_prefix"`
	// sbatch options for every job, before the profile's.
	Extra []string `toml:"extra"`
	// A job script template (Go text/template) to use instead of the
	// built-in one; see docs/spawners/slurm.md.
	ScriptTemplate string `toml:"script_template"`
	// The hub's API as jobs reach it, e.g. "http://10.1.0.5:8081/hub/api"
	// ("" = from hub.internal_listen).
	HubAPIURL string `toml:"hub_api_url"`
}

// Systemd holds the transient-unit settings of the systemd spawner.
type Systemd struct {
	// Transient units are named <unit_prefix>-<user>.
	UnitPrefix string `toml:"unit_prefix"`
	// Slice the units run in.
	Slice string `toml:"slice"`
	// Memory limit per server, e.g. "4G" (0 = none).
	MemoryMax ByteSize `toml:"memory_max"`
	// CPU limit per server in percent of one CPU, e.g. 200 (0 = none).
	CPUQuotaPercent int `toml:"cpu_quota_percent"`
	// Most tasks (processes and threads) per server (0 = systemd's default).
	TasksMax int `toml:"tasks_max"`
	// Give each server its own /tmp.
	PrivateTmp bool `toml:"private_tmp"`
	// Forbid setuid programs (sudo) inside servers.
	NoNewPrivileges bool `toml:"no_new_privileges"`
	// Paths servers may only read.
	ReadOnlyPaths []string `toml:"read_only_paths"`
	// Paths servers may write even when the rest is read-only.
	ReadWritePaths []string `toml:"read_write_paths"`
	// ExtraProperties are passed through as unit properties (strings).
	ExtraProperties map[string]string `toml:"extra_properties"`
}

// Proxy tunes the built-in reverse proxy.
type Proxy struct {
	// Idle keep-alive connections kept per user server.
	MaxIdleConnsPerHost int `toml:"max_idle_conns_per_host"`
	// Timeout for connecting to a user server.
	DialTimeout Duration `toml:"dial_timeout"`
	// How long an idle connection to a user server is kept.
	IdleConnTimeout Duration `toml:"idle_conn_timeout"`
	// Largest request header accepted, in bytes.
	MaxHeaderBytes int `toml:"max_header_bytes"`
	// Largest request body the hub's own pages and API accept, e.g. "1M".
	MaxBodyBytes ByteSize `toml:"max_body_bytes"`
	// Time a client has to send its request headers.
	ReadHeaderTimeout Duration `toml:"read_header_timeout"`
	// ResponseHeaderTimeout bounds the wait for a user server's response
	// headers (504 after it); long enough for a slow notebook save.
	ResponseHeaderTimeout Duration `toml:"response_header_timeout"`
	// ResponseIdleTimeout ends a response whose body stalls for this long;
	// websockets are exempt (they have their own pings).
	ResponseIdleTimeout Duration `toml:"response_idle_timeout"`
}

// Admin configures the unix-socket admin API.
type Admin struct {
	// The admin socket used by hubtui and the hubd CLI.
	Socket string `toml:"socket"`
	// RestartMinInterval rate-limits `hubd restart`.
	RestartMinInterval Duration `toml:"restart_min_interval"`
}

// Culler stops idle servers.
type Culler struct {
	// Stop idle servers.
	Enabled bool `toml:"enabled"`
	// A server idle this long is stopped.
	Timeout Duration `toml:"timeout"`
	// How often idle servers are looked for.
	Interval Duration `toml:"interval"`
	// Stop servers older than this even when busy ("0s" = never).
	MaxAge Duration `toml:"max_age"`
	// Most servers stopped at once.
	Concurrency int `toml:"concurrency"`
	// Activity is "server" (reported by the server), "proxy" (traffic
	// seen by the proxy) or "both".
	Activity string `toml:"activity"`
}

// Backups configures where snapshots go and how many are kept.
type Backups struct {
	// Where `hubd backup create` and `hubd upgrade-db` put archives.
	Dir string `toml:"dir"`
	// Archives kept by `hubd backup prune` (0 = all).
	Keep int `toml:"keep"`
	// Archives older than this are pruned ("0s" = any age is kept).
	MaxAge Duration `toml:"max_age"`
}

// SharedEnv configures the group-writable Python environment.
type SharedEnv struct {
	// The Python environment every member can install into (`hubd env`).
	Enabled bool `toml:"enabled"`
	// The venv directory, group-owned by allowed_group.
	Path string `toml:"path"`
	// Let the venv see the system's Python packages (e.g. Debian's
	// python3-ipykernel).
	SystemSitePackages bool `toml:"system_site_packages"`
	// Interpreter the venv is created from.
	Python string `toml:"python"`
	// Directory name of the kernel spec.
	KernelName string `toml:"kernel_name"`
	// Kernel name shown in notebooks.
	KernelDisplayName string `toml:"kernel_display_name"`
	// Where system-wide kernel specs live.
	KernelSpecDirectory string `toml:"kernel_spec_dir"`
}

// Shares configures the folders shared between chosen members.
type Shares struct {
	// The directory holding one folder per share (`hubd share`), and the
	// public area in <root>/public.
	Root string `toml:"root"`
	// Each share's Linux group is <group_prefix><share name>.
	GroupPrefix string `toml:"group_prefix"`
}

// Service is one [[services]] table: a program with an API token and the
// scopes of its roles.
type Service struct {
	// Name appears in /services/<name>/ and the OAuth client service-<name>.
	Name string `toml:"name"`
	// Where the service listens (http://127.0.0.1:PORT); the hub proxies
	// /services/<name>/ there and logs visitors in through OAuth.
	URL string `toml:"url,omitempty"`
	// When set, the hub starts this command (absolute path first), keeps it
	// running and stops it with the hub, with JUPYTERHUB_API_TOKEN,
	// JUPYTERHUB_API_URL and JUPYTERHUB_SERVICE_PREFIX in its environment.
	Command []string `toml:"command,omitempty"`
	// Extra environment for the command.
	Environment map[string]string `toml:"environment,omitempty"`
	// The command's directory ("" = /).
	WorkingDir string `toml:"working_dir,omitempty"`
	// File holding the service's token (mode 0600), created with a fresh
	// token when missing; without it a started service gets a fresh token
	// each time the hub starts.
	APITokenFile string `toml:"api_token_file,omitempty"`
	// Names of [[roles]] whose scopes the service gets.
	Roles []string `toml:"roles,omitempty"`
	// The scopes granted to the service directly.
	Scopes []string `toml:"scopes,omitempty"`
	// Grant the admin role.
	Admin bool `toml:"admin,omitempty"`
	// List the service on users' home pages (when it has a URL).
	Display bool `toml:"display,omitempty"`
}

// Role is one [[roles]] table: named scopes given to users, the members
// of hub groups and services. A role named "user" adds its scopes to
// every user.
type Role struct {
	// The role's name (3 to 255 lowercase letters, digits and '-_~.').
	Name string `toml:"name"`
	// What the role is for.
	Description string `toml:"description,omitempty"`
	// JupyterHub scopes, e.g. "admin:servers!group=gpu".
	Scopes []string `toml:"scopes"`
	// The users who have the role.
	Users []string `toml:"users,omitempty"`
	// Hub groups whose members have the role.
	Groups []string `toml:"groups,omitempty"`
	// The services that have the role.
	Services []string `toml:"services,omitempty"`
}

// Default returns the configuration of a standard install.
func Default() Config {
	return Config{
		Hub: Hub{
			Listen:            ":8000",
			InternalListen:    "127.0.0.1:8081",
			BaseURL:           "/",
			CookieMaxAge:      Duration(14 * 24 * time.Hour),
			JupyterHubVersion: "3.0.0",
			LogLevel:          "info",
		},
		Data: Data{
			DB:               "/var/lib/hubd/hubd.sqlite",
			CookieSecretFile: "/var/lib/hubd/cookie_secret",
			LogDir:           "/var/log/hubd",
			RuntimeDir:       "/run/hubd",
		},
		Auth: Auth{
			PAMService:         "hubd",
			AllowedGroup:       "jupyterhub",
			AllowedUsers:       []string{},
			AdminUsers:         []string{},
			MinUID:             1000,
			PAMWorkers:         4,
			FailuresPerUser:    5,
			FailuresPerAddress: 20,
			FailureWindow:      Duration(5 * time.Minute),
			AllowedHubGroups:   []string{},
			AdminHubGroups:     []string{},
			Methods:            []string{"pam"},
			OIDC: OIDC{
				Name:          "single sign-on",
				Scopes:        []string{"openid", "profile", "email"},
				UsernameClaim: "preferred_username",
				SubjectClaim:  "sub",
				GroupsClaim:   "groups",
				Lowercase:     true,
				StripDomains:  []string{},
				UsernameMap:   map[string]string{},
				AllowedUsers:  []string{},
				AllowedGroups: []string{},
				AdminUsers:    []string{},
				AdminGroups:   []string{},
				AccountMode:   "existing",
				SessionMaxAge: Duration(8 * time.Hour),
				Timeout:       Duration(10 * time.Second),
			},
			LDAP: LDAP{
				URLs:              []string{},
				UserFilter:        "(&(objectClass=posixAccount)(uid={username}))",
				UsernameAttribute: "uid",
				GroupMembership:   "memberUid",
				AllowedUsers:      []string{},
				AllowedGroups:     []string{},
				AdminUsers:        []string{},
				AdminGroups:       []string{},
				AccountMode:       "existing",
				Connections:       4,
				Timeout:           Duration(5 * time.Second),
			},
		},
		Spawner: Spawner{
			Kind:                 spawner.KindSudo,
			Command:              []string{"/usr/bin/jupyterhub-singleuser"},
			Args:                 []string{},
			Environment:          map[string]string{},
			AppName:              AppNotebook,
			Path:                 "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
			StartTimeout:         Duration(60 * time.Second),
			HTTPTimeout:          Duration(30 * time.Second),
			StopTimeout:          Duration(10 * time.Second),
			PollInterval:         Duration(30 * time.Second),
			ConcurrentSpawnLimit: 20,
			SudoPath:             "/usr/bin/sudo",
			HelperPath:           "/usr/local/bin/hubd",
			CreateHome:           true,
			GPUSharedDevices:     []string{"/dev/nvidiactl", "/dev/nvidia-uvm", "/dev/nvidia-uvm-tools"},
			NvidiaSMI:            "/usr/bin/nvidia-smi",
			Systemd: Systemd{
				UnitPrefix:      "hubd-server",
				Slice:           "hubd-users.slice",
				TasksMax:        4096,
				NoNewPrivileges: true,
				ReadOnlyPaths:   []string{},
				ReadWritePaths:  []string{},
				ExtraProperties: map[string]string{},
			},
			Docker: Docker{
				Network:    "bridge",
				NamePrefix: "hubd",
				PidsMax:    4096,
				Mounts:     []string{},
			},
			Slurm: Slurm{
				Submit:        "sudo",
				Sbatch:        "/usr/bin/sbatch",
				Squeue:        "/usr/bin/squeue",
				Scancel:       "/usr/bin/scancel",
				Scontrol:      "/usr/bin/scontrol",
				Python:        "/usr/bin/python3",
				JobNamePrefix: "hubd",
				Extra:         []string{},
			},
			Profiles: []Profile{},
			GPUs:     []GPU{},
		},
		Proxy: Proxy{
			MaxIdleConnsPerHost:   256,
			DialTimeout:           Duration(5 * time.Second),
			IdleConnTimeout:       Duration(90 * time.Second),
			MaxHeaderBytes:        64 << 10,
			MaxBodyBytes:          ByteSize(1 << 20),
			ReadHeaderTimeout:     Duration(10 * time.Second),
			ResponseHeaderTimeout: Duration(5 * time.Minute),
			ResponseIdleTimeout:   Duration(5 * time.Minute),
		},
		Admin: Admin{
			Socket:             "/run/hubd/hubd.sock",
			RestartMinInterval: Duration(10 * time.Second),
		},
		Culler: Culler{
			Timeout:     Duration(time.Hour),
			Interval:    Duration(5 * time.Minute),
			Concurrency: 5,
			Activity:    "server",
		},
		Backups: Backups{
			Dir:  "/var/backups/hubd",
			Keep: 14,
		},
		SharedEnv: SharedEnv{
			Enabled:             true,
			Path:                "/opt/hubd/env",
			SystemSitePackages:  true,
			Python:              "/usr/bin/python3",
			KernelName:          "hubd-shared",
			KernelDisplayName:   "Shared (hubd)",
			KernelSpecDirectory: "/usr/local/share/jupyter/kernels",
		},
		Shares: Shares{
			Root:        "/srv/hubd/shares",
			GroupPrefix: "share-",
		},
		Services: []Service{},
		Roles:    []Role{},
	}
}
