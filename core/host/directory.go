package host

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hubd/hubd/core/ldapdir"
	"github.com/hubd/hubd/core/names"
)

// Directory is a network user directory the host's name service asks
// besides its own files: its accounts resolve (id, sudo -u) and log in
// through its own PAM module, which the hub's PAM service must then
// include after pam_unix.
type Directory struct {
	// Source is its name on the passwd line of nsswitch.conf.
	Source string
	// Daemon answers the NSS and PAM modules' questions.
	Daemon string
	// PAMModule logs the directory's users in; Package installs it.
	PAMModule, Package string
}

// directories are the sources setup knows a PAM module for.
var directories = []Directory{
	{Source: "ldap", Daemon: "nslcd", PAMModule: "pam_ldap.so", Package: "libpam-ldapd"},
	{Source: "sss", Daemon: "sssd", PAMModule: "pam_sss.so", Package: "libpam-sss"},
}

// NSSwitchFile is <etc>/nsswitch.conf.
func (o Options) NSSwitchFile() string { return filepath.Join(o.Etc, "nsswitch.conf") }

// hostDirectory is the directory nsswitch.conf names for passwd, nil when
// accounts come from local sources only (or there is no nsswitch.conf,
// which means the same to glibc).
func (o Options) hostDirectory() (*Directory, error) {
	conf, err := os.ReadFile(o.NSSwitchFile())
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return directoryOf(conf), nil
}

// directoryOf finds the first known directory source of the passwd line.
func directoryOf(nsswitch []byte) *Directory {
	for _, src := range nssSources(nsswitch, "passwd") {
		for _, d := range directories {
			if d.Source == src {
				return &d
			}
		}
	}
	return nil
}

// nssSources lists the sources of one database in nsswitch.conf, without
// the [STATUS=action] items between them.
func nssSources(conf []byte, db string) []string {
	var out []string
	sc := bufio.NewScanner(bytes.NewReader(conf))
	for sc.Scan() {
		line, _, _ := strings.Cut(sc.Text(), "#")
		name, rest, ok := strings.Cut(line, ":")
		if !ok || strings.TrimSpace(name) != db {
			continue
		}
		inAction := false
		for _, f := range strings.Fields(rest) {
			switch {
			case strings.HasPrefix(f, "["):
				inAction = !strings.HasSuffix(f, "]")
			case inAction:
				inAction = !strings.HasSuffix(f, "]")
			default:
				out = append(out, f)
			}
		}
	}
	return out
}

// pamModuleDirs are where Linux-PAM loads modules from on Debian
// (multiarch) and elsewhere.
var pamModuleDirs = []string{"/lib/*/security", "/usr/lib/*/security", "/lib/security", "/usr/lib/security", "/lib64/security", "/usr/lib64/security"}

// pamModuleInstalled reports whether module is in one of PAM's directories.
func pamModuleInstalled(module string) bool {
	for _, dir := range pamModuleDirs {
		if found, _ := filepath.Glob(filepath.Join(dir, module)); len(found) > 0 {
			return true
		}
	}
	return false
}

// daemonPID finds a running process of the program at exe (0: none): the
// directory daemons are looked for by their binary, which is what runs
// whatever the service manager calls it.
func daemonPID(exe string) int {
	procs, _ := filepath.Glob("/proc/[0-9]*")
	for _, p := range procs {
		if target, err := os.Readlink(filepath.Join(p, "exe")); err == nil && target == exe {
			pid, _ := strconv.Atoi(filepath.Base(p))
			return pid
		}
	}
	return 0
}

// nslcdConf is what doctor reads of nslcd's configuration.
type nslcdConf struct {
	// Path is the file read: the running nslcd's own view of
	// /etc/nslcd.conf (through /proc/<pid>/root, which also covers an
	// nslcd in a mount namespace of its own), else the host's.
	Path string
	URIs []string
	// SSL is "on" (LDAPS), "start_tls" or "" (off).
	SSL        string
	CACertFile string
	// BindTimelimit and Timelimit are in seconds; -1 when not set.
	BindTimelimit, Timelimit int
	// InitgroupsIgnoreLocal is nss_initgroups_ignoreusers ALLLOCAL: local
	// users' group lists never ask the directory.
	InitgroupsIgnoreLocal bool
}

// nslcdDefaultBindTimelimit is nslcd's bind_timelimit when none is set;
// an unset timelimit means no limit at all.
const nslcdDefaultBindTimelimit = 10

func readNslcdConf(path string) (nslcdConf, error) {
	c := nslcdConf{Path: path, BindTimelimit: -1, Timelimit: -1}
	data, err := os.ReadFile(path)
	if err != nil {
		return c, err
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 2 || strings.HasPrefix(f[0], "#") {
			continue
		}
		switch strings.ToLower(f[0]) {
		case "uri":
			for _, u := range f[1:] {
				// "DNS" means SRV records, which doctor does not resolve.
				if u != "DNS" && !strings.HasPrefix(u, "DNS:") {
					c.URIs = append(c.URIs, u)
				}
			}
		case "ssl":
			switch strings.ToLower(f[1]) {
			case "on", "yes", "true":
				c.SSL = "on"
			case "start_tls":
				c.SSL = "start_tls"
			}
		case "tls_cacertfile":
			c.CACertFile = f[1]
		case "bind_timelimit":
			c.BindTimelimit, _ = strconv.Atoi(f[1])
		case "timelimit":
			c.Timelimit, _ = strconv.Atoi(f[1])
		case "nss_initgroups_ignoreusers":
			c.InitgroupsIgnoreLocal = slices.Contains(strings.Split(strings.Join(f[1:], ","), ","), "ALLLOCAL")
		}
	}
	return c, sc.Err()
}

// settingsProblems names what makes a slow or dead directory cost more
// than a few seconds per lookup, or makes local users wait for it.
func (c nslcdConf) settingsProblems() (problems, fixes []string) {
	bind := c.BindTimelimit
	if bind < 0 {
		bind = nslcdDefaultBindTimelimit
	}
	if bind > maxDirectoryWait {
		problems = append(problems, fmt.Sprintf("nslcd waits up to %ds to connect to a directory that hangs (bind_timelimit)", bind))
		fixes = append(fixes, fmt.Sprintf("bind_timelimit %d", maxDirectoryWait))
	}
	if c.Timelimit < 0 || c.Timelimit > maxDirectoryWait {
		limit := "without a limit"
		if c.Timelimit > 0 {
			limit = fmt.Sprintf("up to %ds", c.Timelimit)
		}
		problems = append(problems, "nslcd waits "+limit+" for a search to answer (timelimit)")
		fixes = append(fixes, fmt.Sprintf("timelimit %d", maxDirectoryWait))
	}
	if !c.InitgroupsIgnoreLocal {
		problems = append(problems, "local users' group lists ask the directory too, so local logins and spawns wait for it when it is down")
		fixes = append(fixes, "nss_initgroups_ignoreusers ALLLOCAL")
	}
	return problems, fixes
}

// maxDirectoryWait (seconds) is the longest wait for the directory doctor
// accepts in nslcd's settings: each login, sudo and spawn of a directory
// user may wait this long when it hangs.
const maxDirectoryWait = 5

// nslcdExe is the binary of nslcd, found among running processes.
const nslcdExe = "/usr/sbin/nslcd"

// directoryProbeTimeout bounds setup's look at the directory.
const directoryProbeTimeout = 3 * time.Second

// slowLookup is when doctor calls a directory lookup slow: every login,
// sudo and spawn of a directory user waits this long (or more).
const slowLookup = time.Second

// nslcdProbe is the running nslcd's configuration, with a dialer for the
// directory it asks. pid is 0 when nslcd does not run.
func nslcdProbe(timeout time.Duration) (pid int, conf nslcdConf, d ldapdir.Dialer, err error) {
	pid = daemonPID(nslcdExe)
	if pid == 0 {
		return 0, conf, d, nil
	}
	root := fmt.Sprintf("/proc/%d/root", pid)
	conf, err = readNslcdConf(root + "/etc/nslcd.conf")
	if err != nil {
		return pid, conf, d, fmt.Errorf("read nslcd's configuration: %w", err)
	}
	d = ldapdir.Dialer{URLs: conf.URIs, StartTLS: conf.SSL == "start_tls", DialTimeout: timeout, Timeout: timeout}
	if conf.SSL != "" {
		ca := conf.CACertFile
		if ca != "" {
			ca = root + ca
		}
		if d.TLS, err = ldapdir.TLSConfig(ca); err != nil {
			return pid, conf, d, err
		}
	}
	return pid, conf, d, nil
}

// directoryUnreachable says why the directory of the host's NSS does not
// answer; "" when it does, when there is none, or when it is not one
// doctor can ask directly (only nslcd's is).
func (o Options) directoryUnreachable(ctx context.Context, timeout time.Duration) string {
	if dir, err := o.hostDirectory(); err != nil || dir == nil || dir.Daemon != "nslcd" {
		return ""
	}
	pid, conf, d, err := nslcdProbe(timeout)
	switch {
	case err != nil:
		return err.Error()
	case pid == 0 || len(conf.URIs) == 0:
		return ""
	}
	ctx, cancel := context.WithTimeout(ctx, 2*timeout)
	defer cancel()
	if _, err := d.Probe(ctx); err != nil {
		return fmt.Sprintf("the directory nslcd asks (%s) does not answer: %v", strings.Join(conf.URIs, " "), err)
	}
	return ""
}

// checkDirectory: when accounts also come from a directory, does its
// daemon run, does the directory answer, will a slow one stay bounded, and
// do the hub's groups resolve, with members, quickly? Nothing when the
// host has local accounts only.
func (o Options) checkDirectory(ctx context.Context, timeout time.Duration) []Finding {
	dir, err := o.hostDirectory()
	if err != nil {
		return []Finding{{Check: "user directory", Level: Fail, Message: err.Error(), Fix: "fix " + o.NSSwitchFile()}}
	}
	if dir == nil {
		return nil
	}
	out := o.checkDirectoryDaemon(ctx, *dir, timeout)
	out = append(out, o.checkDirectoryGroup(ctx, "members group", o.Config.Auth.AllowedGroup))
	if g := o.Config.Auth.AdminGroup; g != "" {
		out = append(out, o.checkDirectoryGroup(ctx, "admin group", g))
	}
	return out
}

// checkDirectoryDaemon checks the daemon between NSS and the directory
// and, for nslcd, the directory itself and the settings that bound a
// directory's slowness.
func (o Options) checkDirectoryDaemon(ctx context.Context, dir Directory, timeout time.Duration) []Finding {
	check := "user directory (" + dir.Source + " in " + o.NSSwitchFile() + ", through " + dir.Daemon + ")"
	if dir.Daemon != "nslcd" {
		if pid := daemonPID("/usr/sbin/" + dir.Daemon); pid == 0 {
			return []Finding{{Check: check, Level: Fail, Message: dir.Daemon + " is not running, so no directory user resolves or logs in",
				Fix: "systemctl start " + dir.Daemon}}
		}
		return []Finding{{Check: check, Level: OK, Message: dir.Daemon + " runs; the group checks below show whether the directory answers"}}
	}
	pid, conf, d, err := nslcdProbe(timeout)
	switch {
	case pid == 0:
		return []Finding{{Check: check, Level: Fail, Message: "nslcd is not running, so no directory user resolves or logs in",
			Fix: "systemctl start nslcd (apt-get install nslcd if it is missing)"}}
	case err != nil:
		return []Finding{{Check: check, Level: Fail, Message: err.Error(), Fix: "check /etc/nslcd.conf, then `systemctl restart nslcd`"}}
	case len(conf.URIs) == 0:
		return []Finding{{Check: check, Level: Warn, Message: "nslcd.conf names no uri doctor can try (DNS SRV records are not looked up)",
			Fix: "set `uri ldap://…` in /etc/nslcd.conf to let doctor try it"}}
	}
	uris := strings.Join(conf.URIs, " ")
	pctx, cancel := context.WithTimeout(ctx, 2*timeout)
	defer cancel()
	took, err := d.Probe(pctx)
	out := []Finding{{Check: check, Level: OK, Message: fmt.Sprintf("nslcd (pid %d) asks %s, which answered in %s", pid, uris, roundDuration(took))}}
	if err != nil {
		out[0] = Finding{Check: check, Level: Fail,
			Message: fmt.Sprintf("nslcd (pid %d) asks %s, which does not answer (%v): directory users can neither log in nor start servers", pid, uris, err),
			Fix:     "start the directory server, or correct `uri` in /etc/nslcd.conf and run `systemctl restart nslcd`"}
	}
	settings := Finding{Check: "nslcd settings", Level: OK,
		Message: fmt.Sprintf("bind_timelimit %ds, timelimit %ds, local users' groups never ask the directory", max(conf.BindTimelimit, 0), conf.Timelimit)}
	if problems, fixes := conf.settingsProblems(); len(problems) > 0 {
		settings.Level, settings.Message = Warn, strings.Join(problems, "; ")
		settings.Fix = "put `" + strings.Join(fixes, "`, `") + "` in /etc/nslcd.conf, then `systemctl restart nslcd`"
	}
	return append(out, settings)
}

// checkDirectoryGroup looks up one of the hub's groups through NSS, as
// the hub will at every login, and times it and a lookup of its first
// member. A local group (in /etc/group) only gets the timing.
func (o Options) checkDirectoryGroup(ctx context.Context, role, name string) Finding {
	f := Finding{Check: role + " " + name + " through NSS", Level: OK}
	start := time.Now()
	out, err := o.Run.Run(ctx, "getent", "group", name)
	took := time.Since(start)
	if err != nil {
		f.Level = Fail
		f.Message = fmt.Sprintf("does not resolve (the lookup took %s): neither /etc/group nor the directory returns it", roundDuration(took))
		f.Fix = "create the posixGroup " + name + " in the directory (or `groupadd " + name + "` for a local one); if the directory is down, see its finding"
		return f
	}
	fields := strings.Split(out, ":")
	if len(fields) < 4 {
		f.Level, f.Message, f.Fix = Fail, "getent printed "+names.Quote(out), "getent group "+name
		return f
	}
	var members []string
	if fields[3] != "" {
		members = strings.Split(fields[3], ",")
	}
	where := "the directory"
	if local, _ := inGroupFile(filepath.Join(o.Etc, "group"), name); local {
		where = "/etc/group"
	}
	f.Message = fmt.Sprintf("gid %s from %s, %d members", fields[2], where, len(members))
	if len(members) > 0 {
		f.Message += " (" + strings.Join(members[:min(len(members), 5)], ", ")
		if len(members) > 5 {
			f.Message += ", …"
		}
		f.Message += ")"
	}
	f.Message += "; the lookup took " + roundDuration(took)
	slowest := took
	if len(members) > 0 {
		start = time.Now()
		_, err := o.Run.Run(ctx, "getent", "passwd", members[0])
		mt := time.Since(start)
		slowest = max(slowest, mt)
		if err != nil {
			f.Level = Warn
			f.Message += fmt.Sprintf("; its member %s does not resolve as a user (%s)", members[0], roundDuration(mt))
			f.Fix = "remove " + members[0] + " from the group, or create the account"
		} else {
			f.Message += fmt.Sprintf(", a lookup of %s %s", members[0], roundDuration(mt))
		}
	}
	if slowest > slowLookup {
		f.Level = Warn
		f.Message += ": a directory this slow makes every login, sudo and spawn wait as long"
		f.Fix = "look at the directory server's load and the network to it; keep nslcd's timelimit and bind_timelimit low"
	}
	return f
}

// addMember is how to make user a member of the members group: usermod
// for a local group, the directory's own tools for one of its groups.
func (o Options) addMember(user string) string {
	g := o.Config.Auth.AllowedGroup
	local, err := inGroupFile(filepath.Join(o.Etc, "group"), g)
	if dir, derr := o.hostDirectory(); err == nil && !local && derr == nil && dir != nil {
		return "add " + user + " to the group " + g + " in the directory (memberUid of its posixGroup)"
	}
	return "usermod -aG " + g + " " + user
}

// inGroupFile reports whether the group file at path defines name.
func inGroupFile(path, name string) (bool, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return false, err
	}
	for line := range strings.Lines(string(data)) {
		if n, _, ok := strings.Cut(line, ":"); ok && n == name {
			return true, nil
		}
	}
	return false, nil
}

func roundDuration(d time.Duration) string {
	if d < 10*time.Millisecond {
		return d.Round(100 * time.Microsecond).String()
	}
	return d.Round(time.Millisecond).String()
}
