package host

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/user"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/hubd/hubd/backups"
	"github.com/hubd/hubd/core/admin/client"
	"github.com/hubd/hubd/core/auth"
	"github.com/hubd/hubd/core/config"
	"github.com/hubd/hubd/core/identity"
	"github.com/hubd/hubd/core/spawner"
	"github.com/hubd/hubd/core/store"
	"github.com/hubd/hubd/internal/version"
	"github.com/hubd/hubd/upgrade"
)

// Level is how bad a finding is.
type Level string

// Finding levels: FAIL means the hub will not work as set up, WARN means
// something to look at.
const (
	OK   Level = "OK"
	Warn Level = "WARN"
	Fail Level = "FAIL"
)

// Finding is one line of `hubd doctor`.
type Finding struct {
	Check   string `json:"check"`
	Level   Level  `json:"status"`
	Message string `json:"message"`
	// Fix is the command that fixes it; empty for OK.
	Fix string `json:"fix,omitempty"`
}

// DoctorOptions are the inputs of the checks that go beyond setup's steps.
type DoctorOptions struct {
	// User, when set, is tried as a PAM login with Password, and is the
	// member the sudo and single-user checks run as (else the first
	// member of the group).
	User, Password string
	// Now is the clock for the age of backups.
	Now time.Time
	// PortTimeout bounds each connection to a port or socket.
	PortTimeout time.Duration
	// Docker is the docker spawner, when the configuration uses it.
	Docker DockerChecker
}

// backupMaxAge is when the newest backup counts as stale.
const backupMaxAge = 48 * time.Hour

// Doctor checks every setup step and then what only a working host shows:
// the database schema, password checks, the sudo rule, the single-user
// server, Slurm when profiles use it, the ports, the admin socket and the
// backups.
func Doctor(ctx context.Context, o Options, d DoctorOptions) []Finding {
	if err := o.validate(); err != nil {
		return []Finding{{Check: "options", Level: Fail, Message: err.Error(), Fix: "hubd doctor --help"}}
	}
	if d.PortTimeout == 0 {
		d.PortTimeout = 3 * time.Second
	}
	var out []Finding
	var scratch Record
	for _, s := range o.Steps(&scratch) {
		out = append(out, stepFinding(ctx, s))
	}
	out = append(out, o.checkHelperDirs(), o.checkSchema(ctx), o.checkShadow(ctx))
	out = append(out, o.checkDirectory(ctx, d.PortTimeout)...)
	out = append(out, o.checkLDAPLogin(ctx)...)
	if d.User != "" {
		out = append(out, o.checkLogin(ctx, d.User, d.Password))
	}
	member := d.User
	if member == "" {
		member = o.firstMember(ctx)
	}
	out = append(out, o.checkSudo(ctx, member), o.checkSingleUser(ctx, member), o.checkSingleUserApp(ctx, member))
	if f, ok := o.checkAccountHelper(ctx); ok {
		out = append(out, f)
	}
	out = append(out, o.checkSlurm(ctx)...)
	for _, l := range []struct{ key, addr string }{
		{"hub.listen", o.Config.Hub.Listen}, {"hub.internal_listen", o.Config.Hub.InternalListen},
	} {
		out = append(out, o.checkPort(ctx, l.key, l.addr, d.PortTimeout))
	}
	if d.Docker != nil {
		out = append(out, o.checkDocker(ctx, d.Docker)...)
	}
	return append(out, o.checkSocket(ctx, d.PortTimeout), o.checkBackups(d.Now))
}

// AnyFailed reports whether any finding is a FAIL.
func AnyFailed(fs []Finding) bool {
	return slices.ContainsFunc(fs, func(f Finding) bool { return f.Level == Fail })
}

// PrintFindings writes one line per finding, with its fix.
func PrintFindings(w io.Writer, fs []Finding) {
	var fails, warns int
	for _, f := range fs {
		line := fmt.Sprintf("%-4s  %s: %s", f.Level, f.Check, f.Message)
		if f.Fix != "" {
			line += "  → fix: " + f.Fix
		}
		fmt.Fprintln(w, line)
		switch f.Level {
		case Fail:
			fails++
		case Warn:
			warns++
		}
	}
	fmt.Fprintf(w, "\n%d checks: %d OK, %d WARN, %d FAIL\n", len(fs), len(fs)-fails-warns, warns, fails)
}

// stepFinding turns a setup step's check into a finding.
func stepFinding(ctx context.Context, s Step) Finding {
	f := Finding{Check: s.Name, Level: OK, Message: "as setup installs it"}
	ch, err := s.Check(ctx)
	if err != nil {
		f.Level, f.Message = Fail, err.Error()
		return f
	}
	if len(ch) == 0 {
		return f
	}
	f.Level = Warn
	var what, fixes []string
	for _, c := range ch {
		if !c.Warn {
			f.Level = Fail
		}
		what = append(what, c.What)
		if !slices.Contains(fixes, c.Fix) {
			fixes = append(fixes, c.Fix)
		}
	}
	f.Message, f.Fix = strings.Join(what, "; "), strings.Join(fixes, " && ")
	return f
}

// checkHelperDirs: sudo runs the helper as any member, so whoever can
// replace it or a directory above it can run code as every member.
func (o Options) checkHelperDirs() Finding {
	f := Finding{Check: "spawn helper ownership", Level: OK}
	for p := o.Config.Spawner.HelperPath; ; p = filepath.Dir(p) {
		fi, err := os.Lstat(p)
		if err == nil {
			st := fi.Sys().(*syscall.Stat_t)
			// A root-owned sticky directory (/tmp) lets others add
			// entries but not replace root's.
			sticky := fi.IsDir() && fi.Mode()&fs.ModeSticky != 0
			if st.Uid != 0 || (st.Mode&0o022 != 0 && !sticky) {
				f.Level = Fail
				f.Message = fmt.Sprintf("%s is %s %04o: a non-root user could replace the helper every member runs through sudo", p, ownerOf(fi), modeBits(fi))
				f.Fix = "chown root " + p + " && chmod go-w " + p
				return f
			}
		}
		if p == filepath.Dir(p) {
			break
		}
	}
	f.Message = o.Config.Spawner.HelperPath + " and every directory above it can only be changed by root"
	return f
}

func (o Options) checkSchema(ctx context.Context) Finding {
	db := o.Config.Data.DB
	f := Finding{Check: "database schema " + db, Level: OK}
	if _, err := os.Stat(db); errors.Is(err, fs.ErrNotExist) {
		f.Message = "no database yet: the hub creates it when it first starts"
		return f
	}
	s, err := store.Open(ctx, db, store.Options{ReadOnly: true})
	if err != nil {
		f.Level, f.Message, f.Fix = Fail, err.Error(), "hubd backup list"+o.configFlag()+" (then `hubd backup restore`)"
		return f
	}
	defer s.Close()
	err = s.Check(ctx)
	var behind *upgrade.BehindError
	var newer *upgrade.NewerError
	switch {
	case err == nil:
		f.Message = fmt.Sprintf("at version %d, as hubd %s needs", upgrade.Latest(), version.Version)
	case errors.As(err, &behind):
		f.Level, f.Message = Fail, err.Error()
		f.Fix = "hubd upgrade-db" + o.configFlag()
		if o.Systemd {
			f.Fix = "systemctl stop " + o.Unit() + " && " + f.Fix + " && systemctl start " + o.Unit()
		}
	case errors.As(err, &newer):
		f.Level, f.Message, f.Fix = Fail, err.Error(), "install the hubd release that wrote it, or `hubd backup restore` a backup from this version"
	default:
		f.Level, f.Message, f.Fix = Fail, err.Error(), "hubd backup list"+o.configFlag()
	}
	return f
}

func (o Options) startCommand() string {
	if o.Systemd {
		return "systemctl start " + o.Unit()
	}
	return o.serveCommand()
}

// serveCommand runs the hub without systemd: as the hub account, with the
// groups /etc/group gives it (shadow), as the unit would.
func (o Options) serveCommand() string {
	return "runuser -u " + o.HubUser + " -- " + o.hubBinary() + " serve" + o.configFlag()
}

// asHub is the argv that runs a command as the hub user with the groups
// /etc/group gives it, as systemd starts the unit.
func (o Options) asHub(args ...string) []string {
	return append([]string{"--reuid=" + o.HubUser, "--regid=" + o.hubGroup(), "--init-groups", "--"}, args...)
}

func (o Options) checkShadow(ctx context.Context) Finding {
	f := Finding{Check: "password checks", Level: OK}
	if _, err := user.Lookup(o.HubUser); err != nil {
		f.Level, f.Message, f.Fix = Fail, "hub user "+o.HubUser+" does not exist", o.SetupCommand()
		return f
	}
	if _, err := o.Run.Run(ctx, "setpriv", o.asHub("test", "-r", "/etc/shadow")...); err != nil {
		f.Level = Fail
		f.Message = o.HubUser + " cannot read /etc/shadow, so PAM will refuse every member's password"
		f.Fix = "usermod -aG " + ShadowGroup + " " + o.HubUser
		if o.Systemd {
			f.Fix += " && systemctl restart " + o.Unit()
		}
		return f
	}
	f.Message = o.HubUser + " can read /etc/shadow, so PAM can check members' passwords"
	return f
}

func (o Options) checkLogin(ctx context.Context, name, password string) Finding {
	a := o.Config.Auth
	f := Finding{Check: "PAM login of " + name + " (service " + a.PAMService + ")", Level: OK}
	ldap := a.HasMethod(config.MethodLDAP)
	if ldap {
		f.Check = "password login of " + name + " (" + strings.Join(slices.DeleteFunc(slices.Clone(a.Methods), func(m string) bool { return m == config.MethodOIDC }), ", ") + ")"
	}
	login, err := auth.New(a, o.Logger, nil)
	if err != nil {
		f.Level, f.Message, f.Fix = Fail, err.Error(), "hubd config check"+o.configFlag()
		return f
	}
	var u identity.Account
	ext, err := login.Check(ctx, name, password, "127.0.0.1")
	if err == nil {
		// The hub's rules, without recording a login.
		u, err = identity.FromConfig(o.Config, nil, identity.System{}, o.Logger).Check(ctx, ext)
	}
	if err == nil {
		f.Message = fmt.Sprintf("%s (uid %d) logged in", u.Name, u.UID)
		if u.Admin {
			f.Message += " as an admin"
		}
		return f
	}
	f.Level, f.Message = Fail, err.Error()
	switch {
	case errors.Is(err, auth.ErrInvalidCredentials):
		f.Fix = "check the password, or set a new one with `passwd " + name + "`"
		if ldap {
			f.Fix += " (a directory account's in the directory)"
		}
	case errors.Is(err, identity.ErrNotAllowed):
		f.Fix = o.addMember(name)
	case errors.Is(err, auth.ErrAccountUnavailable):
		f.Fix = "chage -l " + name + " (then `chage -E -1 " + name + "` or `passwd " + name + "`)"
	case errors.Is(err, auth.ErrCannotVerify):
		f.Fix = "usermod -aG " + ShadowGroup + " " + o.HubUser
	default:
		f.Fix = o.SetupCommand()
	}
	return f
}

// firstMember is the first user listed in the members group, "" if none.
func (o Options) firstMember(ctx context.Context) string {
	out, err := o.Run.Run(ctx, "getent", "group", o.Config.Auth.AllowedGroup)
	if err != nil {
		return ""
	}
	fields := strings.Split(out, ":")
	if len(fields) < 4 || fields[3] == "" {
		return ""
	}
	return strings.Split(fields[3], ",")[0]
}

// noMember is the finding for checks that need a member when there is none.
func (o Options) noMember(check string) Finding {
	g := o.Config.Auth.AllowedGroup
	return Finding{Check: check, Level: Warn, Message: "group " + g + " has no members yet, so this cannot be tried",
		Fix: o.addMember("USER") + " (or `hubd doctor --user USER`)"}
}

// memberProblem explains why name cannot be used as a member, or "".
func (o Options) memberProblem(check, name string) (Finding, bool) {
	g := o.Config.Auth.AllowedGroup
	u, err := user.Lookup(name)
	if err != nil {
		return Finding{Check: check, Level: Fail, Message: "user " + name + " does not exist", Fix: "adduser " + name}, true
	}
	if in, _ := inGroup(u, g); !in {
		return Finding{Check: check, Level: Fail, Message: name + " is not a member of " + g, Fix: o.addMember(name)}, true
	}
	return Finding{}, false
}

// checkSudo runs, as the hub user, the question the sudo spawner relies
// on: may I run the helper as this member without a password?
func (o Options) checkSudo(ctx context.Context, member string) Finding {
	check := "sudo rule"
	if member == "" {
		return o.noMember(check)
	}
	check += " (as " + member + ")"
	if f, bad := o.memberProblem(check, member); bad {
		return f
	}
	helper := o.Config.Spawner.HelperPath
	out, err := o.Run.Run(ctx, "setpriv", o.asHub(o.Config.Spawner.SudoPath, "-n", "-l", "-u", member, helper, "spawn-helper")...)
	if err != nil {
		return Finding{Check: check, Level: Fail,
			Message: o.HubUser + " may not run the spawn helper as " + member + " without a password: " + err.Error(),
			Fix:     o.SetupCommand()}
	}
	return Finding{Check: check, Level: OK, Message: o.HubUser + " may run `" + firstLine(out) + "` as " + member + " without a password"}
}

// checkAccountHelper asks sudo, as the hub user, whether the account
// helper of account_mode = "create" may run as root (ok is false when the
// configuration creates no accounts through sudo).
func (o Options) checkAccountHelper(ctx context.Context) (Finding, bool) {
	c := o.Config
	if !c.Auth.CreatesAccounts() || c.Spawner.Kind != spawner.KindSudo {
		return Finding{}, false
	}
	check := "sudo rule for the account helper"
	out, err := o.Run.Run(ctx, "setpriv", o.asHub(c.Spawner.SudoPath, "-n", "-l", c.Spawner.HelperPath, "account-helper", "--config", o.ConfigPath)...)
	if err != nil {
		return Finding{Check: check, Level: Fail,
			Message: o.HubUser + " may not run the account helper as root, so single sign-on and LDAP users cannot get accounts: " + err.Error(),
			Fix:     o.SetupCommand()}, true
	}
	return Finding{Check: check, Level: OK, Message: o.HubUser + " may run `" + firstLine(out) + "` as root"}, true
}

// checkSingleUser runs the configured single-user server's --version as a
// member with the environment servers get, so a missing package or an
// interpreter members cannot read shows up here and not at a spawn.
func (o Options) checkSingleUser(ctx context.Context, member string) Finding {
	cmd := o.Config.Spawner.Command[0]
	check := "single-user server " + cmd
	if member == "" {
		return o.noMember(check)
	}
	if f, bad := o.memberProblem(check, member); bad {
		return f
	}
	u, _ := user.Lookup(member)
	path := o.Config.Spawner.Path
	if o.Config.SharedEnv.Enabled {
		path = filepath.Join(o.Config.SharedEnv.Path, "bin") + ":" + path
	}
	out, err := o.Run.Run(ctx, "runuser", "-u", member, "--", "env", "-i", "PATH="+path, "HOME="+u.HomeDir, cmd, "--version")
	if err != nil {
		return Finding{Check: check, Level: Fail, Message: member + " cannot run it: " + err.Error(),
			Fix: "apt-get install jupyterhub (or install jupyterhub into the shared environment), or set spawner.command in " + o.ConfigPath}
	}
	return Finding{Check: check, Level: OK, Message: "runs as " + member + ": version " + lastLine(out)}
}

// lastLine skips the log lines jupyterhub-singleuser prints before its version.
func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	return s
}

// checkPort: nothing listening is fine (the hub will bind it), a listener
// answering /hub/api with X-JupyterHub-Version is the hub, anything else is
// a conflict, named from ss(8) (an upgrade that installed another web
// server on the port is a common cause of a hub that cannot start).
func (o Options) checkPort(ctx context.Context, key, addr string, timeout time.Duration) Finding {
	f := Finding{Check: "port " + addr + " (" + key + ")", Level: OK}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		f.Level, f.Message, f.Fix = Fail, err.Error(), "hubd config check"+o.configFlag()
		return f
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	target := net.JoinHostPort(host, port)
	conn, err := (&net.Dialer{Timeout: timeout}).DialContext(ctx, "tcp", target)
	if err != nil {
		f.Message = "free"
		return f
	}
	conn.Close()
	scheme, hc := "http", &http.Client{Timeout: timeout}
	if key == "hub.listen" && o.Config.Hub.TLS.Enabled() {
		// Only asking who listens: the certificate is not what this
		// check is about (the hub refuses to start with a bad one).
		scheme = "https"
		hc.Transport = &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, scheme+"://"+target+o.Config.Hub.BaseURL+"hub/api", nil)
	if err == nil {
		if resp, err := hc.Do(req); err == nil {
			resp.Body.Close()
			if v := resp.Header.Get("X-JupyterHub-Version"); v != "" {
				f.Message = "in use by the hub (X-JupyterHub-Version " + v + ")"
				return f
			}
		}
	}
	f.Level = Fail
	f.Message = "in use by " + o.portOwner(ctx, port) + ", which is not the hub"
	f.Fix = "stop that program, or set " + key + " to a free port in " + o.ConfigPath
	return f
}

var ssUsers = regexp.MustCompile(`\("([^"]+)",pid=(\d+)`)

// portOwner names the process listening on port, as ss -ltnp reports it.
func (o Options) portOwner(ctx context.Context, port string) string {
	out, err := o.Run.Run(ctx, "ss", "-H", "-ltnp", "sport = :"+port)
	if m := ssUsers.FindStringSubmatch(out); err == nil && m != nil {
		return m[1] + " (pid " + m[2] + ")"
	}
	return "another program (`ss -ltnp 'sport = :" + port + "'` names it)"
}

func (o Options) checkSocket(ctx context.Context, timeout time.Duration) Finding {
	sock := o.Config.Admin.Socket
	f := Finding{Check: "admin socket " + sock, Level: OK}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	c := &client.Client{Socket: sock}
	st, err := c.Status(ctx)
	if err != nil {
		f.Level, f.Message, f.Fix = Warn, "not reachable: "+err.Error(), o.startCommand()
		return f
	}
	f.Message = fmt.Sprintf("hub %s answers (pid %d, up %s)", st.Version, st.PID, time.Duration(st.UptimeSeconds)*time.Second)
	if st.Version != version.Version {
		f.Level = Warn
		f.Message += "; this hubd is " + version.Version
		f.Fix = "hubd restart" + o.configFlag()
	}
	return f
}

func (o Options) checkBackups(now time.Time) Finding {
	dir := o.Config.Backups.Dir
	f := Finding{Check: "backups in " + dir, Level: OK}
	create := "hubd backup create" + o.configFlag()
	list, err := backups.List(dir)
	switch {
	case err != nil:
		f.Level, f.Message, f.Fix = Warn, err.Error(), o.SetupCommand()
	case len(list) == 0:
		f.Level, f.Message, f.Fix = Warn, "no backups yet", create
	default:
		newest := list[0]
		when := newest.Manifest.Created
		if newest.Err != nil {
			f.Level, f.Message, f.Fix = Warn, "the newest backup cannot be read: "+newest.Err.Error(), create
			return f
		}
		age := now.Sub(when).Round(time.Minute)
		f.Message = fmt.Sprintf("newest is %s, %s old", filepath.Base(newest.Path), age)
		if age > backupMaxAge {
			f.Level, f.Fix = Warn, create
			f.Message += fmt.Sprintf(" (older than %s)", backupMaxAge)
		}
	}
	return f
}
