package spawner

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unicode/utf8"

	sddbus "github.com/coreos/go-systemd/v22/dbus"
	"github.com/godbus/dbus/v5"
	"golang.org/x/sys/unix"
)

// maxUnitName is systemd's UNIT_NAME_MAX minus the terminating NUL.
const maxUnitName = 255

// escapeUnitName is systemd's unit_name_escape (`systemd-escape`): '/'
// becomes '-', and every byte outside [A-Za-z0-9:_.] (and a leading '.')
// becomes \xNN. go-systemd's unit.UnitNameEscape writes a single hex digit
// for bytes below 0x10, which systemd would read differently.
func escapeUnitName(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '/':
			b.WriteByte('-')
		case c == '.' && i == 0, !unitNameChar(c):
			fmt.Fprintf(&b, `\x%02x`, c)
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

func unitNameChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == ':' || c == '_' || c == '.'
}

// ValidUnitPrefix reports whether p can start every server's unit name:
// non-empty, only letters, digits, '-' and '_' (nothing systemd would
// escape or read as a type suffix). The configuration check and
// NewSystemd both use it.
func ValidUnitPrefix(p string) bool {
	if p == "" {
		return false
	}
	for i := 0; i < len(p); i++ {
		if c := p[i]; c == '.' || c == ':' || !unitNameChar(c) && c != '-' {
			return false
		}
	}
	return true
}

// ValidSlice reports whether name is a slice unit name systemd accepts.
func ValidSlice(name string) bool {
	return strings.HasSuffix(name, ".slice") && validUnitName(name)
}

// validUnitName checks a full unit name the way systemd does for plain
// (non-template) names: allowed characters, a type suffix, the length.
func validUnitName(name string) bool {
	dot := strings.LastIndexByte(name, '.')
	if dot <= 0 || dot == len(name)-1 || len(name) > maxUnitName {
		return false
	}
	for i := 0; i < dot; i++ {
		if c := name[i]; !unitNameChar(c) && c != '-' && c != '\\' {
			return false
		}
	}
	return true
}

func prop(name string, v any) sddbus.Property {
	return sddbus.Property{Name: name, Value: dbus.MakeVariant(v)}
}

// environmentFile is one EnvironmentFiles entry, D-Bus type (sb).
type environmentFile struct {
	Path         string
	IgnoreErrors bool
}

// properties are the unit's properties. Nothing secret goes here: all of
// it is world-readable through `systemctl show`.
func (s *Systemd) properties(r Request, l launch, userName, group, envFile string) []sddbus.Property {
	desc := "hubd server of " + userName
	if r.Server != "" {
		desc += " (" + r.Server + ")"
	}
	props := []sddbus.Property{
		sddbus.PropDescription(desc),
		// exec: the start job fails when the command cannot be executed
		// (missing binary, user or directory) instead of succeeding and
		// failing a moment later.
		sddbus.PropType("exec"),
		// false: a failing server fails the unit (true would be the '-'
		// prefix, "ignore failure").
		sddbus.PropExecStart(execArgs(l.argv), false),
		prop("User", userName),
		prop("WorkingDirectory", l.dir),
		prop("EnvironmentFiles", []environmentFile{{Path: envFile}}),
		// Files the server creates are group-writable, for the shared
		// environment and project directories, as with
		// the other spawners.
		prop("UMask", uint32(0o002)),
		// A kernel the OOM killer ends must not take the whole server
		// down (systemdspawner PR #101). The server's main process going
		// over MemoryMax still fails the unit: it exits by SIGKILL.
		prop("OOMPolicy", "continue"),
		prop("KillMode", "control-group"),
		prop("TimeoutStopUSec", uint64(s.o.StopTimeout/time.Microsecond)),
		prop("PrivateTmp", s.o.PrivateTmp),
		prop("NoNewPrivileges", s.o.NoNewPrivileges),
		// No CollectMode=inactive-or-failed: a failed unit stays loaded
		// so Poll can report its result and exit status; Stop and the
		// next Start reset it.
	}
	if group != "" {
		props = append(props, prop("Group", group))
	}
	if r.LogPath != "" {
		// Same per-server log as the other spawners (the hub's log hints
		// and the admin API read it); systemd's own lines about the unit
		// stay in the journal (LogTail).
		props = append(props, prop("StandardOutputFileToAppend", r.LogPath), prop("StandardError", "inherit"))
	}
	if s.o.Slice != "" {
		props = append(props, sddbus.PropSlice(s.o.Slice))
	}
	lim := s.limits(r.Resources.Systemd)
	if lim.MemoryMax > 0 {
		props = append(props, prop("MemoryAccounting", true), prop("MemoryMax", uint64(lim.MemoryMax)))
	}
	if lim.CPUQuotaPercent > 0 {
		props = append(props, prop("CPUAccounting", true), prop("CPUQuotaPerSecUSec", cpuQuotaUSec(lim.CPUQuotaPercent)))
	}
	if lim.TasksMax > 0 {
		props = append(props, prop("TasksAccounting", true), prop("TasksMax", uint64(lim.TasksMax)))
	}
	if devices := deviceAllow(r.Resources); devices != nil {
		// closed: the standard pseudo devices (/dev/null, /dev/tty, ...)
		// and exactly the listed nodes; the kernel's device controller
		// refuses the others, the pool's other GPUs included.
		props = append(props, prop("DevicePolicy", "closed"), prop("DeviceAllow", devices))
	}
	if len(s.o.ReadOnlyPaths) > 0 {
		props = append(props, prop("ReadOnlyPaths", s.o.ReadOnlyPaths))
	}
	if len(s.o.ReadWritePaths) > 0 {
		props = append(props, prop("ReadWritePaths", s.o.ReadWritePaths))
	}
	return append(props, s.extra...)
}

// dynamicProperties make a unit run as a dynamic user: no Linux account,
// a uid systemd derives from the name, the persistent state directory as
// home (files survive restarts and re-logins), and the members group as a
// supplementary group so the shared environment works. DynamicUser=yes
// also turns on systemd's own sandbox (ProtectSystem=strict,
// ProtectHome=read-only, PrivateTmp, NoNewPrivileges, RemoveIPC), so the
// shared paths members write are made writable again; systemd adds them
// to the configured ReadWritePaths.
func (s *Systemd) dynamicProperties(userName string) []sddbus.Property {
	props := []sddbus.Property{
		prop("DynamicUser", true),
		prop("StateDirectory", []string{dynamicStateDir(userName)}),
		prop("StateDirectoryMode", uint32(0o700)),
	}
	if s.o.MembersGroup != "" {
		props = append(props, prop("SupplementaryGroups", []string{s.o.MembersGroup}))
	}
	if len(s.o.DynamicWritePaths) > 0 {
		paths := make([]string, len(s.o.DynamicWritePaths))
		for i, p := range s.o.DynamicWritePaths {
			paths[i] = "-" + p // '-': a missing path is skipped, not a failed start
		}
		props = append(props, prop("ReadWritePaths", paths))
	}
	return props
}

// limits are the configured limits with a profile's overrides.
func (s *Systemd) limits(p SystemdLimits) SystemdLimits {
	if p.MemoryMax == 0 {
		p.MemoryMax = s.o.MemoryMax
	}
	if p.CPUQuotaPercent == 0 {
		p.CPUQuotaPercent = s.o.CPUQuotaPercent
	}
	if p.TasksMax == 0 {
		p.TasksMax = s.o.TasksMax
	}
	return p
}

// deviceRule is one DeviceAllow= entry, D-Bus type (ss).
type deviceRule struct {
	Path, Access string
}

// deviceAllow lists the device nodes a server restricted to its own GPUs
// may open: its GPUs and the driver's shared nodes read-write, terminals'
// pseudo-terminals (Jupyter's terminals need them), and the profile's
// device_allow. nil means no restriction.
func deviceAllow(r Resources) []deviceRule {
	if !r.Restrict && len(r.Systemd.DeviceAllow) == 0 {
		return nil
	}
	rules := []deviceRule{{"char-pts", "rw"}}
	for _, g := range r.GPUs {
		rules = append(rules, deviceRule{g.Device, "rw"})
	}
	if len(r.GPUs) > 0 {
		for _, d := range r.SharedDevices {
			rules = append(rules, deviceRule{d, "rw"})
		}
	}
	for _, d := range r.Systemd.DeviceAllow {
		path, access, _ := strings.Cut(strings.TrimSpace(d), " ")
		if access = strings.TrimSpace(access); access == "" {
			access = "rw"
		}
		rules = append(rules, deviceRule{path, access})
	}
	return rules
}

// cpuQuotaUSec is CPUQuota= in the unit D-Bus wants: µs of CPU time per
// second (150 % = 1 500 000), an integer, so no float formatting can make
// it invalid (systemdspawner#21).
func cpuQuotaUSec(percent int) uint64 { return uint64(percent) * 10000 }

// execArgs protects the command from systemd's $VAR expansion in
// ExecStart: "$$" is a literal '$'.
func execArgs(argv []string) []string {
	out := make([]string, len(argv))
	for i, a := range argv {
		out[i] = strings.ReplaceAll(a, "$", "$$")
	}
	return out
}

// extraKind is how a unit-file value of spawner.systemd.extra_properties
// becomes the typed D-Bus value systemd wants.
type extraKind int

const (
	extraBool   extraKind = iota // yes/no
	extraString                  // as is
	extraList                    // space-separated words
	extraBytes                   // 512M, 2G (base 1024), infinity
	extraUint                    // a number, infinity
	extraInt32                   // a signed number
	extraSec                     // a duration (90s, 8h, infinity); D-Bus name ...USec
)

// extraKinds are the properties extra_properties may set. D-Bus
// properties are typed and systemd refuses a wrong type only at the first
// spawn, so unknown names are refused at hub start instead.
var extraKinds = func() map[string]extraKind {
	m := map[string]extraKind{}
	for kind, props := range map[extraKind][]string{
		extraBool: {"PrivateDevices", "PrivateNetwork", "PrivateIPC", "ProtectKernelTunables", "ProtectKernelModules",
			"ProtectKernelLogs", "ProtectControlGroups", "ProtectClock", "ProtectHostname", "RestrictSUIDSGID",
			"RestrictRealtime", "LockPersonality", "MemoryDenyWriteExecute", "RemoveIPC"},
		extraString: {"ProtectSystem", "ProtectHome", "ProtectProc", "ProcSubset", "DevicePolicy"},
		extraList:   {"InaccessiblePaths", "ExecPaths", "NoExecPaths", "SupplementaryGroups"},
		extraBytes:  {"MemoryHigh", "MemoryLow", "MemoryMin", "MemorySwapMax", "LimitCORE", "LimitFSIZE", "LimitAS"},
		extraUint:   {"CPUWeight", "StartupCPUWeight", "IOWeight", "LimitNOFILE", "LimitNPROC"},
		extraInt32:  {"Nice", "OOMScoreAdjust"},
		extraSec:    {"RuntimeMaxSec"},
	} {
		for _, p := range props {
			m[p] = kind
		}
	}
	return m
}()

// managedProperties are set by the spawner from its own settings.
var managedProperties = map[string]string{
	"MemoryMax": "spawner.systemd.memory_max", "CPUQuota": "spawner.systemd.cpu_quota_percent",
	"CPUQuotaPerSecUSec": "spawner.systemd.cpu_quota_percent", "TasksMax": "spawner.systemd.tasks_max",
	"PrivateTmp": "spawner.systemd.private_tmp", "NoNewPrivileges": "spawner.systemd.no_new_privileges",
	"ReadOnlyPaths": "spawner.systemd.read_only_paths", "ReadWritePaths": "spawner.systemd.read_write_paths",
	"Slice": "spawner.systemd.slice", "WorkingDirectory": "spawner.working_dir",
	"ExecStart": "spawner.command", "Environment": "spawner.environment", "EnvironmentFile": "spawner.environment",
	"TimeoutStopSec": "spawner.stop_timeout",
}

// extraProperties converts spawner.systemd.extra_properties, in a stable
// order.
func extraProperties(in map[string]string) ([]sddbus.Property, error) {
	keys := make([]string, 0, len(in))
	for k := range in {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([]sddbus.Property, 0, len(in))
	for _, k := range keys {
		p, err := extraProperty(k, in[k])
		if err != nil {
			return nil, fmt.Errorf("spawner.systemd.extra_properties.%s: %w", k, err)
		}
		out = append(out, p)
	}
	return out, nil
}

func extraProperty(name, v string) (sddbus.Property, error) {
	kind, ok := extraKinds[name]
	if !ok {
		if key, managed := managedProperties[name]; managed {
			return sddbus.Property{}, fmt.Errorf("set by the spawner: use %s", key)
		}
		known := make([]string, 0, len(extraKinds))
		for k := range extraKinds {
			known = append(known, k)
		}
		slices.Sort(known)
		return sddbus.Property{}, fmt.Errorf("not a property hubd can pass (it sets User, Group, ExecStart, the environment and kill settings itself); supported: %s", strings.Join(known, ", "))
	}
	v = strings.TrimSpace(v)
	switch kind {
	case extraBool:
		switch strings.ToLower(v) {
		case "yes", "true", "on", "1":
			return prop(name, true), nil
		case "no", "false", "off", "0":
			return prop(name, false), nil
		}
		return sddbus.Property{}, fmt.Errorf("%q is not yes or no", v)
	case extraString:
		return prop(name, v), nil
	case extraList:
		return prop(name, strings.Fields(v)), nil
	case extraBytes:
		n, err := parseBytes(v)
		if err != nil {
			return sddbus.Property{}, err
		}
		return prop(name, n), nil
	case extraUint:
		if v == "infinity" {
			return prop(name, uint64(math.MaxUint64)), nil
		}
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return sddbus.Property{}, fmt.Errorf("%q is not a number", v)
		}
		return prop(name, n), nil
	case extraInt32:
		n, err := strconv.ParseInt(v, 10, 32)
		if err != nil {
			return sddbus.Property{}, fmt.Errorf("%q is not a number", v)
		}
		return prop(name, int32(n)), nil
	default: // extraSec
		usec := uint64(math.MaxUint64)
		if v != "infinity" {
			d, err := time.ParseDuration(v)
			if err != nil || d <= 0 {
				return sddbus.Property{}, fmt.Errorf("%q is not a duration like 90s or 8h", v)
			}
			usec = uint64(d / time.Microsecond)
		}
		return prop(strings.TrimSuffix(name, "Sec")+"USec", usec), nil
	}
}

// parseBytes reads a size the way systemd does: K, M, G, T are powers of
// 1024; "infinity" is no limit.
func parseBytes(v string) (uint64, error) {
	if v == "infinity" {
		return math.MaxUint64, nil
	}
	mult := uint64(1)
	if i := strings.IndexAny(v, "KMGT"); i > 0 && i == len(v)-1 {
		mult = 1 << (10 * (strings.IndexByte("KMGT", v[i]) + 1))
		v = v[:i]
	}
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil || n > math.MaxUint64/mult {
		return 0, fmt.Errorf("%q is not a size like 512M or 2G", v)
	}
	return n * mult, nil
}

// envFileValue quotes an environment value for systemd's EnvironmentFile=
// parser: inside double quotes, a backslash makes ", \, ` and $ literal;
// nothing is expanded. Newlines are refused: they would be read as a line
// continuation or a new assignment.
func envFileValue(v string) (string, error) {
	if !utf8.ValidString(v) {
		return "", errors.New("is not valid UTF-8 (systemd drops such values)")
	}
	if strings.ContainsAny(v, "\n\r\x00") {
		return "", errors.New("contains a line break or NUL, which an environment file cannot carry")
	}
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range v {
		if strings.ContainsRune("\"\\`$", r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	b.WriteByte('"')
	return b.String(), nil
}

// envFileContent renders "K=V" entries (from buildEnv) as an environment
// file. Names systemd would silently skip are refused instead.
func envFileContent(env []string) ([]byte, error) {
	var b strings.Builder
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		if !envName(k) {
			return nil, fmt.Errorf("environment variable name %s is not one systemd accepts (letters, digits and '_', not starting with a digit): rename it in spawner.environment", strconv.Quote(k))
		}
		q, err := envFileValue(v)
		if err != nil {
			return nil, fmt.Errorf("environment variable %s %w: remove it from spawner.environment", k, err)
		}
		b.WriteString(k + "=" + q + "\n")
	}
	return []byte(b.String()), nil
}

func envName(k string) bool {
	if k == "" || k[0] >= '0' && k[0] <= '9' {
		return false
	}
	for i := 0; i < len(k); i++ {
		if c := k[i]; !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

// envDirReady makes the environment files' directory: 0700 and owned by
// the hub, so only root (and systemd) can read the files in it.
func (s *Systemd) envDirReady() error {
	if err := os.MkdirAll(s.envDir, 0o700); err != nil {
		return fmt.Errorf("create %s: %w", s.envDir, err)
	}
	fi, err := os.Lstat(s.envDir)
	if err != nil {
		return fmt.Errorf("check %s: %w", s.envDir, err)
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !fi.IsDir() || !ok || int(st.Uid) != os.Geteuid() {
		return fmt.Errorf("%s is not a directory owned by the hub (uid %d): remove it and restart the hub", s.envDir, os.Geteuid())
	}
	if fi.Mode().Perm() != 0o700 {
		if err := os.Chmod(s.envDir, 0o700); err != nil {
			return fmt.Errorf("make %s private: %w", s.envDir, err)
		}
	}
	return nil
}

// envFilePath is where a unit's environment file lives. systemd globs
// EnvironmentFile= paths, so the backslashes of the unit name (\x2d)
// become '%', which no unit name contains and glob leaves alone.
func (s *Systemd) envFilePath(unit string) string {
	return filepath.Join(s.envDir, strings.ReplaceAll(unit, `\`, "%")+".env")
}

// writeEnvFile writes the unit's environment (0400) and returns its path.
// It is written under a temporary name and renamed, so systemd never
// reads half a file and a stale file of the same name is replaced.
func (s *Systemd) writeEnvFile(unit string, env []string) (string, error) {
	content, err := envFileContent(env)
	if err != nil {
		return "", err
	}
	if err := s.envDirReady(); err != nil {
		return "", err
	}
	path := s.envFilePath(unit)
	f, err := os.CreateTemp(s.envDir, ".tmp-*")
	if err != nil {
		return "", fmt.Errorf("write the environment file: %w", err)
	}
	_, werr := f.Write(content)
	if err := errors.Join(werr, f.Chmod(0o400), f.Close()); err != nil {
		os.Remove(f.Name())
		return "", fmt.Errorf("write the environment file: %w", err)
	}
	if err := os.Rename(f.Name(), path); err != nil {
		os.Remove(f.Name())
		return "", fmt.Errorf("write the environment file: %w", err)
	}
	return path, nil
}

func (s *Systemd) removeEnvFile(unit string) {
	if err := os.Remove(s.envFilePath(unit)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		s.log.Warn("cannot remove the environment file", "unit", unit, "err", err)
	}
}

// Values of ExecMainCode (siginfo si_code).
const (
	cldExited = 1
	cldKilled = 2
	cldDumped = 3
)

// systemdSteps explains the exit statuses systemd itself uses when it
// cannot set up the process (systemd.exec(5), "Process exit codes").
var systemdSteps = map[int32]string{
	200: "systemd could not change to the working directory: does it exist and can the user enter it?",
	203: "systemd could not execute the server command: check spawner.command",
	209: "systemd could not open the server's log file",
	216: "systemd could not set the user's group",
	217: "systemd could not switch to the user: does the account exist?",
	226: "systemd could not set up the file system namespace: do all read_only_paths and read_write_paths exist?",
}

// failure explains a unit that is not running, from its Service
// properties, and gives the exit code the way shells do (128 + signal).
func (s *Systemd) failure(unit string, props map[string]any) (string, int) {
	result, _ := props["Result"].(string)
	memMax := s.o.MemoryMax
	if m, ok := props["MemoryMax"].(uint64); ok && m > 0 && m < math.MaxInt64 {
		memMax = int64(m) // the unit's own, which a profile may have set
	}
	code, _ := props["ExecMainCode"].(int32)
	status, _ := props["ExecMainStatus"].(int32)
	var what string
	exit := -1
	switch code {
	case cldExited:
		exit = int(status)
		what = fmt.Sprintf("exited with status %d", status)
		if step, ok := systemdSteps[status]; ok {
			what += ": " + step
		}
	case cldKilled, cldDumped:
		exit = 128 + int(status)
		what = fmt.Sprintf("killed by signal %s", unix.SignalName(syscall.Signal(status)))
		if syscall.Signal(status) == syscall.SIGKILL && memMax > 0 && result != "oom-kill" {
			// cgroup v1 kernels report an OOM kill as a plain SIGKILL.
			what += fmt.Sprintf(", most likely by the OOM killer for going over its memory limit (MemoryMax=%d bytes; spawner.systemd.memory_max or the profile's)", memMax)
		}
	case 0:
		what = "is gone: it ended or was stopped outside the hub"
		if result != "" && result != "success" {
			what = fmt.Sprintf("never ran: systemd could not set it up (`journalctl -u %s` says why)", unit)
		}
	}
	if result == "oom-kill" {
		what = fmt.Sprintf("was killed by the OOM killer for going over its memory limit (MemoryMax=%d bytes; raise spawner.systemd.memory_max or the profile's): %s", memMax, what)
	}
	reason := "unit " + unit + " " + what
	if result != "" && result != "success" {
		reason = fmt.Sprintf("unit %s failed (result %s): %s", unit, result, what)
	}
	return reason, exit
}

// checkLimits reads the unit's limits back and lists those that differ
// from the configured ones: a limit systemd silently ignored must not
// pass for one in force.
func (s *Systemd) checkLimits(ctx context.Context, conn *sddbus.Conn, unit string, want SystemdLimits) ([]string, error) {
	props, err := conn.GetUnitTypePropertiesContext(ctx, unit, "Service")
	if err != nil {
		return nil, busError(err, "read the limits of unit "+unit)
	}
	return s.limitDiffs(props, want), nil
}

func (s *Systemd) limitDiffs(props map[string]any, want SystemdLimits) []string {
	lim := s.limits(want)
	var diffs []string
	check := func(name string, want uint64) {
		if got, ok := props[name].(uint64); !ok || got != want {
			diffs = append(diffs, fmt.Sprintf("%s is %v, configured %d", name, props[name], want))
		}
	}
	if lim.MemoryMax > 0 {
		check("MemoryMax", uint64(lim.MemoryMax))
	}
	if lim.CPUQuotaPercent > 0 {
		check("CPUQuotaPerSecUSec", cpuQuotaUSec(lim.CPUQuotaPercent))
	}
	if lim.TasksMax > 0 {
		check("TasksMax", uint64(lim.TasksMax))
	}
	return diffs
}
