package config

import (
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/hubd/hubd/core/names"
	"github.com/hubd/hubd/core/scopes"
	"github.com/hubd/hubd/core/spawner"
)

// validator collects problems keyed by their dotted setting name.
type validator struct{ problems []Problem }

func (v *validator) add(key, msg, hint string) {
	v.problems = append(v.problems, Problem{Key: key, Msg: msg, Hint: hint})
}

func (v *validator) absPath(key, p string) {
	if p == "" || !filepath.IsAbs(p) || filepath.Clean(p) != p {
		v.add(key, fmt.Sprintf("%q is not a clean absolute path", p), "write it like \"/var/lib/hubd/hubd.sqlite\"")
	}
}

func (v *validator) positive(key string, d Duration) {
	if d <= 0 {
		v.add(key, "must be longer than zero", "write it like \"30s\"")
	}
}

// notNegative is for durations where zero turns a limit off (hint says so).
func (v *validator) notNegative(key string, d Duration, hint string) {
	if d < 0 {
		v.add(key, "must not be negative", hint)
	}
}

func (v *validator) oneOf(key, val string, allowed ...string) {
	for _, a := range allowed {
		if val == a {
			return
		}
	}
	v.add(key, fmt.Sprintf("%q is not one of %s", val, strings.Join(allowed, ", ")), "")
}

func (v *validator) atLeast(key string, n, lo int) {
	if n < lo {
		v.add(key, fmt.Sprintf("%d is below the minimum %d", n, lo), "")
	}
}

func (v *validator) name(key, n string) {
	if n == "" {
		return
	}
	if err := names.Check(n); err != nil {
		v.add(key, fmt.Sprintf("%s: %v", names.Quote(n), err), "use a plain Unix user or group name")
	}
}

func (v *validator) names(key string, list []string) {
	for _, n := range list {
		v.name(key, n)
	}
}

func (v *validator) listen(key, addr string, loopbackOnly bool) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		v.add(key, fmt.Sprintf("%q is not host:port", addr), "write it like \":8000\" or \"127.0.0.1:8081\"")
		return
	}
	if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
		v.add(key, fmt.Sprintf("port %q is not between 1 and 65535", port), "")
	}
	if !loopbackOnly {
		return
	}
	if host == "localhost" {
		return
	}
	ip, err := netip.ParseAddr(host)
	if err != nil || !ip.IsLoopback() {
		v.add(key, fmt.Sprintf("%q is not a loopback address", host), "user servers call this address; keep it on 127.0.0.1")
	}
}

// ldap checks [auth.ldap], only when the method is offered.
func (v *validator) ldap(c Config) {
	l := c.Auth.LDAP
	const k = "auth.ldap."
	if len(l.URLs) == 0 {
		v.add(k+"urls", "no directory server", "e.g. [\"ldaps://ldap.example.org\"]")
	}
	for _, raw := range l.URLs {
		u, err := url.Parse(raw)
		if err != nil || (u.Scheme != "ldap" && u.Scheme != "ldaps") || u.Host == "" || (u.Path != "" && u.Path != "/") {
			v.add(k+"urls", fmt.Sprintf("%q is not an ldap:// or ldaps:// URL of a server", raw), "write it like \"ldaps://ldap.example.org\"")
			continue
		}
		if u.Scheme == "ldap" && !l.StartTLS && !isLoopback(u.Hostname()) {
			v.add(k+"urls", fmt.Sprintf("%q without start_tls would send passwords in clear text", raw), "use ldaps://, or set auth.ldap.start_tls = true")
		}
	}
	if l.CAFile != "" {
		v.absPath(k+"ca_file", l.CAFile)
	}
	if l.UserDNTemplate != "" {
		if !strings.Contains(l.UserDNTemplate, "{username}") {
			v.add(k+"user_dn_template", "has no {username}", "e.g. \"uid={username},ou=people,dc=example,dc=org\"")
		}
	} else {
		if l.UserSearchBase == "" {
			v.add(k+"user_search_base", "is needed without user_dn_template", "the DN users are found under, e.g. \"ou=people,dc=example,dc=org\"")
		}
		if !strings.Contains(l.UserFilter, "{username}") {
			v.add(k+"user_filter", fmt.Sprintf("%q has no {username}", l.UserFilter), "e.g. \"(&(objectClass=posixAccount)(uid={username}))\"")
		}
		if l.BindDN == "" {
			v.add(k+"bind_dn", "searching for users needs a service account", "set bind_dn and bind_password_file, or user_dn_template")
		}
	}
	if l.BindDN != "" {
		if l.BindPasswordFile == "" {
			v.add(k+"bind_password_file", "is needed with bind_dn", "a file (mode 0600) holding the service account's password")
		} else {
			v.absPath(k+"bind_password_file", l.BindPasswordFile)
		}
	}
	if l.UsernameAttribute == "" {
		v.add(k+"username_attribute", "must not be empty", "\"uid\", or \"sAMAccountName\" in Active Directory")
	}
	v.oneOf(k+"group_membership", l.GroupMembership, "memberUid", "member", "memberOf")
	if l.GroupMembership != "memberOf" && l.GroupSearchBase == "" {
		v.add(k+"group_search_base", "is needed with group_membership "+strconv.Quote(l.GroupMembership), "the DN groups are found under, e.g. \"ou=groups,dc=example,dc=org\"")
	}
	v.rules(MethodLDAP, "directory groups, by name or DN", l.AllowedUsers, l.AllowedGroups, l.AdminUsers, l.AdminGroups, l.AccountMode, c)
	v.atLeast(k+"connections", l.Connections, 1)
	v.positive(k+"timeout", l.Timeout)
}

// isLoopback: a directory on this machine, where clear text never
// crosses a network.
func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}

var (
	versionRE    = regexp.MustCompile(`^\d+\.\d+\.\d+$`)
	envNameRE    = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	kernelNameRE = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)
	// sudoersPathRE is a command path sudoers takes literally.
	sudoersPathRE = regexp.MustCompile(`^/[A-Za-z0-9._+/-]+$`)
	// serviceNameRE is what a service may be called: it appears in URLs
	// (/services/<name>/), OAuth client ids and log file names.
	serviceNameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,62}$`)
	// roleNameRE is JupyterHub's rule for role names.
	roleNameRE = regexp.MustCompile(`^[a-z][a-z0-9\-_~.]{1,253}[a-z0-9]$`)
	// groupPrefixRE leaves room in the 32 characters of a group name for
	// the share's own name.
	groupPrefixRE = regexp.MustCompile(`^[a-z][a-z0-9_-]{0,15}$`)
	// profileNameRE is what a profile may be called: it travels in forms,
	// user_options and job names.
	profileNameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)
	// Slurm's spellings of a partition, a time limit and a memory size.
	partitionRE = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,64}$`)
	slurmTimeRE = regexp.MustCompile(`^([0-9]+-)?[0-9]+(:[0-9]+){0,2}$|^(UNLIMITED|INFINITE)$`)
	slurmMemRE  = regexp.MustCompile(`^[0-9]+[KMGT]?$`)
	// deviceRuleRE is a DeviceAllow= entry: a node or a device class, then
	// the access.
	deviceRuleRE = regexp.MustCompile(`^(/dev/[A-Za-z0-9._/-]+|(char|block)-[A-Za-z0-9_*-]+)( +[rwm]{1,3})?$`)
)

// builtinRoles cannot be redefined ("user" can: it adds to every user).
var builtinRoles = []string{"admin", "server", "token"}

// Login methods, as auth.methods names them.
const (
	MethodPAM  = "pam"
	MethodOIDC = "oidc"
	MethodLDAP = "ldap"
)

// HasMethod reports whether the login page offers method.
func (a Auth) HasMethod(method string) bool { return slices.Contains(a.Methods, method) }

func (v *validator) methods(c Config) {
	if len(c.Auth.Methods) == 0 {
		v.add("auth.methods", "nobody could log in", `offer at least one method: "pam", "ldap" or "oidc", e.g. ["pam"] or ["pam", "ldap"]`)
	}
	for i, m := range c.Auth.Methods {
		v.oneOf("auth.methods", m, MethodPAM, MethodLDAP, MethodOIDC)
		if slices.Contains(c.Auth.Methods[:i], m) {
			v.add("auth.methods", fmt.Sprintf("%q is listed twice", m), "")
		}
	}
	if c.Auth.HasMethod(MethodOIDC) {
		v.oidc(c)
	}
	if c.Auth.HasMethod(MethodLDAP) {
		v.ldap(c)
	}
}

// CreatesAccounts reports whether a login method offered makes Linux
// accounts at the first login (account_mode = "create").
func (a Auth) CreatesAccounts() bool {
	return (a.HasMethod(MethodOIDC) && a.OIDC.AccountMode == "create") || (a.HasMethod(MethodLDAP) && a.LDAP.AccountMode == "create")
}

// HasPasswordMethod reports whether the login page shows the password
// form: PAM, LDAP or both check it.
func (a Auth) HasPasswordMethod() bool { return a.HasMethod(MethodPAM) || a.HasMethod(MethodLDAP) }

// oidc checks [auth.oidc], only when the method is offered.
func (v *validator) oidc(c Config) {
	o := c.Auth.OIDC
	const k = "auth.oidc."
	if o.Name == "" {
		v.add(k+"name", "must not be empty", `the button says "Sign in with <name>", e.g. "Keycloak"`)
	}
	explicit := o.AuthorizeURL != "" || o.TokenURL != ""
	switch {
	case o.Issuer == "" && !explicit:
		v.add(k+"issuer", "no provider configured", "set issuer (OpenID Connect) or authorize_url, token_url and userinfo_url (plain OAuth2)")
	case o.Issuer != "":
		v.providerURL(k+"issuer", o.Issuer)
	default:
		v.providerURL(k+"authorize_url", o.AuthorizeURL)
		v.providerURL(k+"token_url", o.TokenURL)
		v.providerURL(k+"userinfo_url", o.UserinfoURL)
	}
	if o.Issuer != "" && explicit {
		v.add(k+"authorize_url", "set together with issuer", "with issuer, discovery gives the endpoints: remove authorize_url and token_url")
	}
	if o.Issuer != "" && o.UserinfoURL != "" {
		v.providerURL(k+"userinfo_url", o.UserinfoURL)
	}
	for key, u := range map[string]string{"end_session_url": o.EndSessionURL, "redirect_url": o.RedirectURL} {
		if u != "" {
			v.providerURL(k+key, u)
		}
	}
	if o.RedirectURL != "" && !strings.HasSuffix(o.RedirectURL, c.Hub.BaseURL+"hub/oauth_callback") {
		v.add(k+"redirect_url", fmt.Sprintf("%q does not end in %shub/oauth_callback", o.RedirectURL, c.Hub.BaseURL), "the hub answers the provider there")
	}
	if o.ClientID == "" {
		v.add(k+"client_id", "must not be empty", "the client id the provider gave the hub")
	}
	v.absPath(k+"client_secret_file", o.ClientSecretFile)
	if o.UsernameClaim == "" {
		v.add(k+"username_claim", "must not be empty", `e.g. "preferred_username", "email" or "sub"`)
	}
	if o.SubjectClaim == "" {
		v.add(k+"subject_claim", "must not be empty", `"sub" for OpenID Connect`)
	}
	v.oneOf(k+"replace_invalid", o.ReplaceInvalid, "", "-", "_", ".")
	for from, to := range o.UsernameMap {
		v.name(k+"username_map", to)
		if from == "" {
			v.add(k+"username_map", "an empty name is mapped", "")
		}
	}
	v.rules(MethodOIDC, "groups from groups_claim", o.AllowedUsers, o.AllowedGroups, o.AdminUsers, o.AdminGroups, o.AccountMode, c)
	v.positive(k+"session_max_age", o.SessionMaxAge)
	v.positive(k+"timeout", o.Timeout)
}

// rules checks the allow and admin rules and the account mode of a login
// method whose accounts the hub does not own (oidc, ldap); groups says
// what its groups are, for the hint.
func (v *validator) rules(method, groups string, allowedUsers, allowedGroups, adminUsers, adminGroups []string, mode string, c Config) {
	k := "auth." + method + "."
	v.names(k+"allowed_users", allowedUsers)
	v.names(k+"admin_users", adminUsers)
	if len(allowedUsers) == 0 && len(allowedGroups) == 0 && len(adminUsers) == 0 && len(adminGroups) == 0 {
		v.add(k+"allowed_groups", "nobody could sign in", "set allowed_groups ("+groups+") or allowed_users")
	}
	v.oneOf(k+"account_mode", mode, "existing", "create", "dynamic")
	if mode == "dynamic" && c.Spawner.Kind != spawner.KindSystemd {
		v.add(k+"account_mode", fmt.Sprintf("\"dynamic\" needs spawner.kind = \"systemd\" (it is %q)", c.Spawner.Kind),
			"only systemd can run a server as a user without a Linux account (DynamicUser=yes); use \"existing\" or \"create\" with other spawners")
	}
	if c.Auth.AllowedGroup == "" {
		v.add("auth.allowed_group", "must be set for the "+method+" method", "its accounts are checked against, or put in, the members group")
	}
}

// providerURL accepts https URLs, and http only on a loopback host (a
// provider on the same machine, or tests).
func (v *validator) providerURL(key, raw string) {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		v.add(key, fmt.Sprintf("%q is not an http(s) URL", raw), "write it like \"https://sso.example.org/realms/lab\"")
		return
	}
	if u.Scheme == "http" {
		if ip, err := netip.ParseAddr(u.Hostname()); u.Hostname() != "localhost" && (err != nil || !ip.IsLoopback()) {
			v.add(key, fmt.Sprintf("%q is not https", raw), "tokens and secrets travel there: use https (http only on loopback)")
		}
	}
}

// Validate checks every value and returns an *Error listing all problems.
func (c Config) Validate() error {
	v := &validator{}

	v.listen("hub.listen", c.Hub.Listen, false)
	// Slurm jobs on other machines report to the internal API, so it may
	// listen beyond loopback then (the hub warns when it does).
	v.listen("hub.internal_listen", c.Hub.InternalListen, !slices.Contains(c.Spawner.KindsInUse(), spawner.KindSlurm))
	b := c.Hub.BaseURL
	if !strings.HasPrefix(b, "/") || !strings.HasSuffix(b, "/") || strings.Contains(b, "//") ||
		strings.ContainsAny(b, "?#% \\") || strings.Contains(b, "/../") || strings.Contains(b, "/./") {
		v.add("hub.base_url", fmt.Sprintf("%q is not a URL path prefix", b), "it must start and end with '/', like \"/\" or \"/jupyter/\"")
	}
	v.positive("hub.cookie_max_age", c.Hub.CookieMaxAge)
	if !versionRE.MatchString(c.Hub.JupyterHubVersion) {
		v.add("hub.jupyterhub_version", fmt.Sprintf("%q is not a version like \"3.0.0\"", c.Hub.JupyterHubVersion), "")
	}
	v.oneOf("hub.log_level", c.Hub.LogLevel, "debug", "info", "warn", "error")
	if t := c.Hub.TLS; t.Enabled() {
		if t.Cert == "" || t.Key == "" {
			v.add("hub.tls.cert", "set both hub.tls.cert and hub.tls.key, or neither", "the certificate and its private key, as PEM files")
		}
		if t.Cert != "" {
			v.absPath("hub.tls.cert", t.Cert)
		}
		if t.Key != "" {
			v.absPath("hub.tls.key", t.Key)
		}
		if t.RedirectListen != "" {
			v.listen("hub.tls.redirect_listen", t.RedirectListen, false)
			if t.RedirectListen == c.Hub.Listen {
				v.add("hub.tls.redirect_listen", "is the same address as hub.listen", "redirect from another port, e.g. \":80\"")
			}
		}
	} else if t.RedirectListen != "" || t.HSTSMaxAge != 0 {
		v.add("hub.tls", "redirect_listen and hsts_max_age need HTTPS", "set hub.tls.cert and hub.tls.key first")
	}
	if c.Hub.TLS.HSTSMaxAge < 0 {
		v.add("hub.tls.hsts_max_age", "must not be negative", "\"0s\" sends no HSTS header")
	}

	v.absPath("data.db", c.Data.DB)
	v.absPath("data.cookie_secret_file", c.Data.CookieSecretFile)
	v.absPath("data.log_dir", c.Data.LogDir)
	v.absPath("data.runtime_dir", c.Data.RuntimeDir)

	if c.Auth.PAMService == "" || strings.ContainsAny(c.Auth.PAMService, "/ ") {
		v.add("auth.pam_service", fmt.Sprintf("%q is not a PAM service name", c.Auth.PAMService), "the name of a file in /etc/pam.d, like \"hubd\"")
	}
	v.name("auth.allowed_group", c.Auth.AllowedGroup)
	v.names("auth.allowed_users", c.Auth.AllowedUsers)
	v.name("auth.admin_group", c.Auth.AdminGroup)
	v.names("auth.admin_users", c.Auth.AdminUsers)
	v.names("auth.allowed_hub_groups", c.Auth.AllowedHubGroups)
	v.names("auth.admin_hub_groups", c.Auth.AdminHubGroups)
	if c.Auth.AllowedGroup == "" && len(c.Auth.AllowedUsers) == 0 && len(c.Auth.AllowedHubGroups) == 0 {
		v.add("auth.allowed_group", "nobody could log in", "set allowed_group (e.g. \"jupyterhub\") or allowed_users")
	}
	v.atLeast("auth.min_uid", c.Auth.MinUID, 1)
	v.atLeast("auth.pam_workers", c.Auth.PAMWorkers, 1)
	v.atLeast("auth.failures_per_user", c.Auth.FailuresPerUser, 1)
	v.atLeast("auth.failures_per_address", c.Auth.FailuresPerAddress, 1)
	v.positive("auth.failure_window", c.Auth.FailureWindow)
	v.methods(c)

	s := c.Spawner
	v.oneOf("spawner.kind", s.Kind, spawner.Kinds...)
	if len(s.Command) == 0 || !filepath.IsAbs(s.Command[0]) {
		v.add("spawner.command", "must start with an absolute path", "e.g. [\"/usr/bin/jupyterhub-singleuser\"]")
	}
	for k := range s.Environment {
		if !envNameRE.MatchString(k) {
			v.add("spawner.environment", fmt.Sprintf("%q is not an environment variable name", k), "")
		}
	}
	if s.WorkingDir != "" && s.WorkingDir != "~" && !filepath.IsAbs(s.WorkingDir) && !strings.HasPrefix(s.WorkingDir, "~/") {
		v.add("spawner.working_dir", fmt.Sprintf("%q is neither absolute nor under ~/", s.WorkingDir), "")
	}
	v.oneOf("spawner.app", s.AppName, AppNames()...)
	if env, ok := s.Environment["JUPYTERHUB_SINGLEUSER_APP"]; ok && s.AppName != AppAuto && env != s.App().Class {
		v.add("spawner.app", fmt.Sprintf("spawner.environment sets JUPYTERHUB_SINGLEUSER_APP = %q, which is not the %s's class %q", env, s.App().Title, s.App().Class),
			"choose the app with spawner.app alone and remove JUPYTERHUB_SINGLEUSER_APP from spawner.environment")
	}
	if s.DefaultURL != "" && !strings.HasPrefix(s.DefaultURL, "/") {
		v.add("spawner.default_url", fmt.Sprintf("%q must start with '/'", s.DefaultURL), "e.g. \"/tree\" or \"/lab\"")
	}
	if s.Path == "" {
		v.add("spawner.path", "must not be empty", "a system PATH like \"/usr/local/bin:/usr/bin:/bin\"")
	}
	v.positive("spawner.start_timeout", s.StartTimeout)
	v.positive("spawner.http_timeout", s.HTTPTimeout)
	v.positive("spawner.stop_timeout", s.StopTimeout)
	v.positive("spawner.poll_interval", s.PollInterval)
	v.atLeast("spawner.concurrent_spawn_limit", s.ConcurrentSpawnLimit, 0)
	v.atLeast("spawner.named_server_limit_per_user", s.NamedServerLimitPerUser, 0)
	v.absPath("spawner.sudo_path", s.SudoPath)
	v.absPath("spawner.helper_path", s.HelperPath)
	if !sudoersPathRE.MatchString(s.HelperPath) {
		// The path is written into the sudoers rule, where a space, ',',
		// ':', '=' or '\\' would change what the rule allows.
		v.add("spawner.helper_path", fmt.Sprintf("%q has characters that sudoers would read as syntax", s.HelperPath), "use letters, digits and . _ + - / only, e.g. \"/usr/bin/hubd\"")
	}
	if !spawner.ValidUnitPrefix(s.Systemd.UnitPrefix) {
		v.add("spawner.systemd.unit_prefix", fmt.Sprintf("%q has characters not allowed in a unit name", s.Systemd.UnitPrefix), "letters, digits, '-' and '_'")
	}
	if s.Systemd.Slice != "" && !spawner.ValidSlice(s.Systemd.Slice) {
		v.add("spawner.systemd.slice", fmt.Sprintf("%q is not a slice name", s.Systemd.Slice), "e.g. \"hubd-users.slice\"")
	}
	v.atLeast("spawner.systemd.cpu_quota_percent", s.Systemd.CPUQuotaPercent, 0)
	v.atLeast("spawner.systemd.tasks_max", s.Systemd.TasksMax, 0)
	for _, p := range s.Systemd.ReadOnlyPaths {
		v.absPath("spawner.systemd.read_only_paths", p)
	}
	for _, p := range s.Systemd.ReadWritePaths {
		v.absPath("spawner.systemd.read_write_paths", p)
	}
	v.docker(s)

	v.atLeast("proxy.max_idle_conns_per_host", c.Proxy.MaxIdleConnsPerHost, 1)
	v.positive("proxy.dial_timeout", c.Proxy.DialTimeout)
	v.positive("proxy.idle_conn_timeout", c.Proxy.IdleConnTimeout)
	v.atLeast("proxy.max_header_bytes", c.Proxy.MaxHeaderBytes, 4096)
	if c.Proxy.MaxBodyBytes < 1024 {
		v.add("proxy.max_body_bytes", "must be at least 1K", "")
	}
	v.positive("proxy.read_header_timeout", c.Proxy.ReadHeaderTimeout)
	v.positive("proxy.response_header_timeout", c.Proxy.ResponseHeaderTimeout)
	v.positive("proxy.response_idle_timeout", c.Proxy.ResponseIdleTimeout)

	v.absPath("admin.socket", c.Admin.Socket)
	v.positive("admin.restart_min_interval", c.Admin.RestartMinInterval)

	if c.Culler.Enabled {
		v.positive("culler.timeout", c.Culler.Timeout)
		v.positive("culler.interval", c.Culler.Interval)
	}
	v.notNegative("culler.max_age", c.Culler.MaxAge, "0 turns it off")
	v.atLeast("culler.concurrency", c.Culler.Concurrency, 1)
	v.oneOf("culler.activity", c.Culler.Activity, "server", "proxy", "both")

	v.absPath("backups.dir", c.Backups.Dir)
	v.atLeast("backups.keep", c.Backups.Keep, 0)
	v.notNegative("backups.max_age", c.Backups.MaxAge, "0 keeps backups of any age")

	v.absPath("shared_env.path", c.SharedEnv.Path)
	v.absPath("shared_env.python", c.SharedEnv.Python)
	v.absPath("shared_env.kernel_spec_dir", c.SharedEnv.KernelSpecDirectory)
	if !kernelNameRE.MatchString(c.SharedEnv.KernelName) {
		v.add("shared_env.kernel_name", fmt.Sprintf("%q is not a kernel name", c.SharedEnv.KernelName), "letters, digits, '-' and '_'")
	}

	v.absPath("shares.root", c.Shares.Root)
	if !groupPrefixRE.MatchString(c.Shares.GroupPrefix) {
		v.add("shares.group_prefix", fmt.Sprintf("%q cannot start a group name", c.Shares.GroupPrefix), "1 to 16 lowercase letters, digits, '-' and '_', starting with a letter, like \"share-\"")
	}

	v.slurm(s.Slurm)
	v.gpus(s)
	v.profiles(s)
	v.servicesAndRoles(c)

	if len(v.problems) > 0 {
		return &Error{Problems: v.problems}
	}
	return nil
}

// docker checks spawner.docker; the image is required only when docker
// starts new servers.
func (v *validator) docker(s Spawner) {
	d := s.Docker
	if d.Image == "" && s.needsHubImage() {
		v.add("spawner.docker.image", "no image for the docker spawner", "name an image that holds spawner.command, e.g. \"quay.io/jupyter/base-notebook:latest\"")
	}
	if d.Image != "" && !imageRE.MatchString(d.Image) {
		v.add("spawner.docker.image", fmt.Sprintf("%q is not an image reference", d.Image), "write it like \"quay.io/jupyter/base-notebook:latest\"")
	}
	if err := spawner.CheckDockerHost(d.Host); err != nil {
		v.add("spawner.docker.host", err.Error(), "e.g. \"unix:///var/run/docker.sock\"")
	}
	if !spawner.ValidContainerName(d.NamePrefix) {
		v.add("spawner.docker.name_prefix", fmt.Sprintf("%q is not a container name prefix", d.NamePrefix), "letters, digits, '_', '.' and '-', starting with a letter or digit")
	}
	if d.Network == "" || !spawner.ValidContainerName(d.Network) {
		v.add("spawner.docker.network", fmt.Sprintf("%q is not a network name", d.Network), "e.g. \"bridge\"")
	}
	if d.HubIP != "" {
		if _, err := netip.ParseAddr(d.HubIP); err != nil {
			v.add("spawner.docker.hub_ip", fmt.Sprintf("%q is not an IP address", d.HubIP), "leave it empty for the network's gateway")
		}
	}
	v.atLeast("spawner.docker.cpu_quota_percent", d.CPUQuotaPercent, 0)
	v.atLeast("spawner.docker.pids_max", d.PidsMax, 0)
	for _, m := range d.Mounts {
		if _, err := spawner.ParseMount(m); err != nil {
			v.add("spawner.docker.mounts", err.Error(), "write it like \"/data:/data:ro\"")
		}
	}
}

// imageRE is the form of an image reference: a name with optional
// registry, tag and digest, nothing an option parser or a shell could
// take for something else.
var imageRE = regexp.MustCompile(`^[a-z0-9][A-Za-z0-9._/:@-]*$`)

// needsHubImage reports whether a start would fall back on
// spawner.docker.image: the hub's kind is docker and no profiles exist, or
// a docker profile names no image of its own.
func (s Spawner) needsHubImage() bool {
	if len(s.Profiles) == 0 {
		return s.Kind == spawner.KindDocker
	}
	return slices.ContainsFunc(s.Profiles, func(p Profile) bool {
		return s.ProfileKind(p) == spawner.KindDocker && p.Docker.Image == ""
	})
}

// DockerImages lists the images docker starts use, each once: the hub's
// when a start falls back on it, and the profiles' own.
func (s Spawner) DockerImages() []string {
	var out []string
	if s.Docker.Image != "" && s.needsHubImage() {
		out = append(out, s.Docker.Image)
	}
	for _, p := range s.Profiles {
		if s.ProfileKind(p) == spawner.KindDocker && p.Docker.Image != "" && !slices.Contains(out, p.Docker.Image) {
			out = append(out, p.Docker.Image)
		}
	}
	return out
}

// KindsInUse lists the spawner kinds that start servers: spawner.kind and
// every kind a profile names, each once.
func (s Spawner) KindsInUse() []string {
	kinds := []string{s.Kind}
	for _, p := range s.Profiles {
		if p.Kind != "" && !slices.Contains(kinds, p.Kind) {
			kinds = append(kinds, p.Kind)
		}
	}
	return kinds
}

// ProfileKind is the spawner kind of a profile's servers.
func (s Spawner) ProfileKind(p Profile) string {
	if p.Kind != "" {
		return p.Kind
	}
	return s.Kind
}

func (v *validator) slurm(sl Slurm) {
	v.oneOf("spawner.slurm.submit", sl.Submit, spawner.SlurmSubmitSudo, spawner.SlurmSubmitRoot)
	for key, p := range map[string]string{"sbatch": sl.Sbatch, "squeue": sl.Squeue, "scancel": sl.Scancel, "scontrol": sl.Scontrol, "python": sl.Python} {
		v.absPath("spawner.slurm."+key, p)
	}
	if !profileNameRE.MatchString(sl.JobNamePrefix) {
		v.add("spawner.slurm.job_name_prefix", fmt.Sprintf("%q is not a job name prefix", sl.JobNamePrefix), "lowercase letters, digits and '-'")
	}
	for _, e := range sl.Extra {
		if err := spawner.CheckSbatchOption(e); err != nil {
			v.add("spawner.slurm.extra", err.Error(), "")
		}
	}
	if sl.ScriptTemplate != "" {
		v.absPath("spawner.slurm.script_template", sl.ScriptTemplate)
	}
	if sl.HubAPIURL != "" {
		u, err := url.Parse(sl.HubAPIURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || !strings.HasSuffix(u.Path, "/hub/api") {
			v.add("spawner.slurm.hub_api_url", fmt.Sprintf("%q is not the hub's API URL", sl.HubAPIURL), "write it like \"http://10.1.0.5:8081/hub/api\"")
		}
	}
}

func (v *validator) gpus(s Spawner) {
	seen := map[int]bool{}
	for _, g := range s.GPUs {
		if g.Index < 0 || seen[g.Index] {
			v.add("spawner.gpus", fmt.Sprintf("GPU index %d is negative or listed twice", g.Index), "each [[spawner.gpus]] has its own index")
		}
		seen[g.Index] = true
		v.absPath("spawner.gpus.device", g.Device)
	}
	for _, d := range s.GPUSharedDevices {
		v.absPath("spawner.gpu_shared_devices", d)
	}
	if s.NvidiaSMI != "" {
		v.absPath("spawner.nvidia_smi", s.NvidiaSMI)
	}
}

func (v *validator) profiles(s Spawner) {
	seen := map[string]bool{}
	defaults := 0
	for _, p := range s.Profiles {
		v.listName("spawner.profiles", "profile", p.Name, profileNameRE, "1 to 63 lowercase letters, digits and '-', e.g. \"gpu\"", seen)
		if p.Default {
			defaults++
		}
		if p.Kind != "" {
			v.oneOf("spawner.profiles.kind", p.Kind, spawner.Kinds...)
		}
		v.names("spawner.profiles.groups", p.Groups)
		v.names("spawner.profiles.linux_groups", p.LinuxGroups)
		v.atLeast("spawner.profiles.gpus", p.GPUs, 0)
		if p.GPUs > 0 && s.ProfileKind(p) == spawner.KindSlurm {
			v.add("spawner.profiles.gpus", fmt.Sprintf("profile %s runs Slurm jobs, which get their GPUs from Slurm", p.Name), "set [spawner.profiles.slurm] gpus instead")
		}
		v.atLeast("spawner.profiles.systemd.cpu_quota_percent", p.Systemd.CPUQuotaPercent, 0)
		v.atLeast("spawner.profiles.systemd.tasks_max", p.Systemd.TasksMax, 0)
		if p.Docker.Image != "" && !imageRE.MatchString(p.Docker.Image) {
			v.add("spawner.profiles.docker.image", fmt.Sprintf("profile %s: %q is not an image reference", p.Name, p.Docker.Image), "write it like \"quay.io/jupyter/r-notebook:latest\"")
		}
		v.atLeast("spawner.profiles.docker.cpu_quota_percent", p.Docker.CPUQuotaPercent, 0)
		v.atLeast("spawner.profiles.docker.pids_max", p.Docker.PidsMax, 0)
		for _, d := range p.Systemd.DeviceAllow {
			if !deviceRuleRE.MatchString(d) {
				v.add("spawner.profiles.systemd.device_allow", fmt.Sprintf("profile %s: %q is not a device rule", p.Name, d), "write it like \"/dev/fuse rw\"")
			}
		}
		sl := p.Slurm
		if sl.Partition != "" && !partitionRE.MatchString(sl.Partition) {
			v.add("spawner.profiles.slurm.partition", fmt.Sprintf("profile %s: %q is not a partition name", p.Name, sl.Partition), "")
		}
		if sl.Time != "" && !slurmTimeRE.MatchString(sl.Time) {
			v.add("spawner.profiles.slurm.time", fmt.Sprintf("profile %s: %q is not a Slurm time limit", p.Name, sl.Time), "write it like \"8:00:00\", \"90\" (minutes) or \"2-00:00:00\"")
		}
		if sl.Memory != "" && !slurmMemRE.MatchString(sl.Memory) {
			v.add("spawner.profiles.slurm.memory", fmt.Sprintf("profile %s: %q is not a Slurm memory size", p.Name, sl.Memory), "write it like \"8G\" or \"512M\"")
		}
		v.atLeast("spawner.profiles.slurm.cpus", sl.CPUs, 0)
		v.atLeast("spawner.profiles.slurm.gpus", sl.GPUs, 0)
		for _, e := range sl.Extra {
			if err := spawner.CheckSbatchOption(e); err != nil {
				v.add("spawner.profiles.slurm.extra", fmt.Sprintf("profile %s: %v", p.Name, err), "")
			}
		}
	}
	if defaults > 1 {
		v.add("spawner.profiles", fmt.Sprintf("%d profiles are the default", defaults), "mark one profile default = true")
	}
}

// listName checks the name of one table of a list ([[services]],
// [[spawner.profiles]]): its form, and that no other table has it.
func (v *validator) listName(key, what, name string, re *regexp.Regexp, hint string, seen map[string]bool) {
	switch {
	case !re.MatchString(name):
		v.add(key, fmt.Sprintf("%s name %q is not valid", what, name), hint)
	case seen[name]:
		v.add(key, fmt.Sprintf("%s %q is defined twice", what, name), "")
	}
	seen[name] = true
}

func (v *validator) scopeList(key string, list []string) {
	for _, sc := range list {
		if err := scopes.Check(sc); err != nil {
			v.add(key, err.Error(), "use JupyterHub's scope names, e.g. \"list:users\", \"read:users:activity\", \"servers!group=gpu\"")
		} else if strings.HasPrefix(sc, "inherit") {
			v.add(key, "\"inherit\" is for tokens, not roles or services", "list the scopes")
		}
	}
}

func (v *validator) servicesAndRoles(c Config) {
	roles := map[string]bool{}
	for _, r := range c.Roles {
		switch {
		case !roleNameRE.MatchString(r.Name):
			v.add("roles", fmt.Sprintf("role name %q is not valid", r.Name), "3 to 255 lowercase letters, digits and '-_~.', starting with a letter")
		case slices.Contains(builtinRoles, r.Name):
			v.add("roles", fmt.Sprintf("role %q is built in and cannot be redefined", r.Name), "give the role another name")
		case roles[r.Name]:
			v.add("roles", fmt.Sprintf("role %q is defined twice", r.Name), "")
		}
		roles[r.Name] = true
		v.scopeList("roles.scopes", r.Scopes)
		v.names("roles.users", r.Users)
		v.names("roles.groups", r.Groups)
	}
	seen := map[string]bool{}
	for _, sv := range c.Services {
		v.listName("services", "service", sv.Name, serviceNameRE, "1 to 63 lowercase letters, digits and '._-', starting with a letter or digit", seen)
		if sv.URL != "" {
			u, err := url.Parse(sv.URL)
			if err != nil || u.Scheme != "http" || u.Host == "" || u.Port() == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" {
				v.add("services.url", fmt.Sprintf("service %s: %q is not an address like \"http://127.0.0.1:10101\"", sv.Name, sv.URL), "")
			}
		}
		if len(sv.Command) > 0 && !filepath.IsAbs(sv.Command[0]) {
			v.add("services.command", fmt.Sprintf("service %s: the command must start with an absolute path", sv.Name), "e.g. [\"/usr/bin/python3\", \"/opt/culler.py\"]")
		}
		for k := range sv.Environment {
			if !envNameRE.MatchString(k) {
				v.add("services.environment", fmt.Sprintf("service %s: %q is not an environment variable name", sv.Name, k), "")
			}
		}
		if sv.WorkingDir != "" {
			v.absPath("services.working_dir", sv.WorkingDir)
		}
		if sv.APITokenFile != "" {
			v.absPath("services.api_token_file", sv.APITokenFile)
		}
		for _, r := range sv.Roles {
			if !roles[r] && r != "admin" && r != "user" {
				v.add("services.roles", fmt.Sprintf("service %s: no [[roles]] named %q", sv.Name, r), "define the role or remove it from the list")
			}
		}
		v.scopeList("services.scopes", sv.Scopes)
	}
	for _, r := range c.Roles {
		for _, name := range r.Services {
			if !seen[name] {
				v.add("roles.services", fmt.Sprintf("role %s names service %q, which is not defined", r.Name, name), "add a [[services]] table or remove the name")
			}
		}
	}
}
