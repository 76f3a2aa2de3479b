package spawner

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	sddbus "github.com/coreos/go-systemd/v22/dbus"
	"github.com/godbus/dbus/v5"

	"github.com/hubd/hubd/core/names"
)

// SystemdOptions configures the systemd spawner (config spawner.systemd).
// Zero values take the defaults; zero limits mean no limit.
type SystemdOptions struct {
	UnitPrefix string // default "hubd-server"
	// Slice holds every user server, e.g. "hubd-users.slice"; "" leaves
	// them in systemd's default (system.slice).
	Slice           string
	MemoryMax       int64 // bytes
	CPUQuotaPercent int   // 150 = one and a half CPUs
	TasksMax        int
	PrivateTmp      bool
	NoNewPrivileges bool
	ReadOnlyPaths   []string
	ReadWritePaths  []string
	// MembersGroup is the supplementary group of dynamic users' servers
	// (config auth.allowed_group).
	MembersGroup string
	// DynamicWritePaths are what dynamic users' servers may write besides
	// their home: the shared environment (and the shares root), which
	// members write through the members group. DynamicUser=yes implies
	// ProtectSystem=strict, which would leave them read-only. A path that
	// does not exist is skipped, so a server still starts without it.
	DynamicWritePaths []string
	// ExtraProperties are further unit properties in unit-file syntax
	// ("ProtectSystem" = "strict", "MemoryHigh" = "2G"); see
	// extraProperties for the ones understood.
	ExtraProperties map[string]string
	// RuntimeDir is the hub's runtime directory (config data.runtime_dir);
	// the environment files live in RuntimeDir/systemd-env. Default
	// /run/hubd. It must be on a file system systemd sees.
	RuntimeDir string
	// StopTimeout becomes each unit's TimeoutStopUSec, so systemd
	// escalates to SIGKILL on its own when a stop outlives the hub's
	// wait. Default 10 s (config spawner.stop_timeout).
	StopTimeout time.Duration
	// JournalDir, when set, is passed to journalctl -D (tests read the
	// journal of a systemd in private namespaces); "" is the system
	// journal. Journalctl defaults to /usr/bin/journalctl.
	JournalDir string
	Journalctl string
	// CreateHome creates a member's missing home directory before the
	// first start (config spawner.create_home).
	CreateHome bool
	Logger     *slog.Logger
}

// Systemd runs each server as a transient service unit started over the
// system D-Bus, as the member, with resource limits. Units live outside
// the hub's cgroup, so they survive hub restarts (a hub restart that
// kills every server is JupyterHub's most reported complaint). Starting
// units that run as other users is root's privilege: the hub must run as
// root for this spawner.
//
// Secrets never travel in unit properties (`systemctl show` prints them
// to anyone): the environment, API token included, is written to a 0400
// root-owned file in a 0700 directory, which systemd (PID 1, root) reads
// through EnvironmentFile= before it drops privileges.
type Systemd struct {
	o      SystemdOptions
	log    *slog.Logger
	extra  []sddbus.Property
	envDir string

	mu   sync.Mutex
	conn *sddbus.Conn // reconnected when the bus dropped it (dbus restart)
	// logs are the logs of units this process started, for the output of
	// an early exit (Watch).
	logs map[string]*serverLog
}

var (
	_ Spawner   = (*Systemd)(nil)
	_ Watcher   = (*Systemd)(nil)
	_ Reclaimer = (*Systemd)(nil)
)

// connectTimeout bounds connecting to the system bus.
const connectTimeout = 10 * time.Second

// NewSystemd checks the options and connects to the system bus, so a
// host without systemd fails at hub start rather than at the first spawn.
func NewSystemd(o SystemdOptions) (*Systemd, error) {
	if o.UnitPrefix == "" {
		o.UnitPrefix = "hubd-server"
	}
	if o.RuntimeDir == "" {
		o.RuntimeDir = "/run/hubd"
	}
	if o.StopTimeout <= 0 {
		o.StopTimeout = defaultStopTimeout
	}
	if o.Journalctl == "" {
		o.Journalctl = "/usr/bin/journalctl"
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if !ValidUnitPrefix(o.UnitPrefix) {
		return nil, fmt.Errorf("spawner.systemd.unit_prefix %q has characters not allowed in a unit name: use letters, digits, '-' and '_'", o.UnitPrefix)
	}
	if o.Slice != "" && !ValidSlice(o.Slice) {
		return nil, fmt.Errorf("spawner.systemd.slice %q is not a slice unit name: use e.g. \"hubd-users.slice\"", o.Slice)
	}
	for _, p := range append(append([]string{}, o.ReadOnlyPaths...), o.ReadWritePaths...) {
		if !filepath.IsAbs(p) {
			return nil, fmt.Errorf("spawner.systemd read-only/read-write path %q is not absolute", p)
		}
	}
	for _, p := range o.DynamicWritePaths {
		if !filepath.IsAbs(p) {
			return nil, fmt.Errorf("the shared path %q dynamic users write to is not absolute: set it to an absolute path", p)
		}
	}
	extra, err := extraProperties(o.ExtraProperties)
	if err != nil {
		return nil, err
	}
	if !filepath.IsAbs(o.RuntimeDir) {
		return nil, fmt.Errorf("runtime directory %q is not absolute: set data.runtime_dir to an absolute path", o.RuntimeDir)
	}
	s := &Systemd{
		o: o, extra: extra,
		log:    o.Logger.With("component", "spawner", "kind", KindSystemd),
		envDir: filepath.Join(o.RuntimeDir, "systemd-env"),
		logs:   map[string]*serverLog{},
	}
	ctx, cancel := context.WithTimeout(context.Background(), connectTimeout)
	defer cancel()
	if _, err := s.bus(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

// Close closes the bus connection. Units keep running.
func (s *Systemd) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conn != nil {
		s.conn.Close()
		s.conn = nil
	}
	return nil
}

// bus returns the connection to systemd over the system bus
// (DBUS_SYSTEM_BUS_ADDRESS, when set, says where it is).
func (s *Systemd) bus(ctx context.Context) (*sddbus.Conn, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conn != nil && s.conn.Connected() {
		return s.conn, nil
	}
	if s.conn != nil {
		s.conn.Close()
	}
	c, err := sddbus.NewSystemConnectionContext(ctx)
	if err != nil {
		s.conn = nil
		return nil, fmt.Errorf("no systemd bus: is systemd running? the systemd spawner needs it (or set spawner.kind = \"sudo\"): %w", err)
	}
	s.conn = c
	return c, nil
}

// UnitName is the unit of a user's server:
// <unit_prefix>-<escaped user>[-<escaped server>].service. Escaping turns
// '-' into \x2d, so the parts never run into each other.
func (s *Systemd) UnitName(userName, server string) (string, error) {
	if err := names.Check(userName); err != nil {
		return "", fmt.Errorf("user %s: %w", names.Quote(userName), err)
	}
	name := s.o.UnitPrefix + "-" + escapeUnitName(userName)
	if server != "" {
		name += "-" + escapeUnitName(server)
	}
	name += ".service"
	if !validUnitName(name) {
		return "", fmt.Errorf("unit name for server %s of %s is longer than systemd allows (%d bytes): use a shorter server name", names.Quote(server), userName, maxUnitName)
	}
	return name, nil
}

// Start implements Spawner. Every failure is a *StartError; one from
// systemd carries the unit's result and its journal lines. It returns once
// systemd ran the command (Type=exec); a server that exits right after is
// reported by Poll with the unit's result.
func (s *Systemd) Start(ctx context.Context, r Request) (State, error) {
	lg, err := beginStart(r, true)
	if err != nil {
		return State{}, err
	}
	defer lg.Close()
	unit, err := s.UnitName(r.User, r.Server)
	if err != nil {
		return State{}, startFailed(err)
	}
	acct, group, err := memberAccount(r.User)
	if r.Dynamic {
		acct, group, err = dynamicAccount(r.User)
	}
	if err != nil {
		return State{}, startFailed(err)
	}
	// A dynamic user's home is its StateDirectory, which systemd makes.
	if s.o.CreateHome && !r.Dynamic {
		if err := createHome(ctx, acct); err != nil {
			return State{}, startFailed(err)
		}
	}
	l, err := prepare(startRequest(r), acct)
	if err != nil {
		return State{}, startFailed(err)
	}
	conn, err := s.bus(ctx)
	if err != nil {
		return State{}, startFailed(err)
	}
	t0 := time.Now()
	if err := s.clearLeftover(ctx, conn, unit); err != nil {
		return State{}, startFailed(err)
	}
	envFile, err := s.writeEnvFile(unit, l.env)
	if err != nil {
		return State{}, startFailed(err)
	}
	props := s.properties(r, l, acct.name, group, envFile)
	if r.Dynamic {
		props = append(props, s.dynamicProperties(acct.name)...)
	}
	done := make(chan string, 1)
	if _, err := conn.StartTransientUnitContext(ctx, unit, "fail", props, done); err != nil {
		s.removeEnvFile(unit)
		err = busError(err, "start unit "+unit)
		var de dbus.Error
		if errors.As(err, &de) && de.Name == "org.freedesktop.systemd1.UnitExists" {
			err = fmt.Errorf("%w: a unit file of that name exists; remove it or change spawner.systemd.unit_prefix", err)
		}
		return State{}, startFailed(err)
	}
	var result string
	select {
	case result = <-done:
	case <-ctx.Done():
		// The job goes on without us: stop whatever it started.
		s.discard(conn, unit)
		return State{}, startFailed(fmt.Errorf("start unit %s: %w", unit, ctx.Err()))
	}
	if result != "done" {
		se := s.failedStart(ctx, conn, unit, result, lg)
		s.discard(conn, unit)
		return State{}, se
	}
	if diffs, err := s.checkLimits(ctx, conn, unit, r.Resources.Systemd); err != nil {
		s.log.Warn("cannot read the unit's limits back", "unit", unit, "err", err)
	} else if len(diffs) > 0 {
		s.log.Error("the unit's limits differ from the configured ones: systemd did not apply them as asked",
			"user", r.User, "unit", unit, "differences", strings.Join(diffs, "; "))
	}
	s.mu.Lock()
	s.logs[unit] = lg
	s.mu.Unlock()
	s.log.Info("server started", "user", r.User, "server", r.Server, "unit", unit, "port", r.Port, "took", time.Since(t0))
	return State{Kind: KindSystemd, Host: r.listenHost(), Port: r.Port, Unit: unit}, nil
}

// Watch implements Watcher for units this process started: it follows the
// unit's state and reports a failure with its result, exit status and the
// journal's and the server's last lines.
func (s *Systemd) Watch(st State) (<-chan Status, func()) {
	s.mu.Lock()
	lg := s.logs[st.Unit]
	s.mu.Unlock()
	if lg == nil {
		return nil, func() {}
	}
	ctx, cancel := context.WithCancel(context.Background())
	exited := make(chan Status, 1)
	go func() {
		defer func() {
			s.mu.Lock()
			delete(s.logs, st.Unit)
			s.mu.Unlock()
		}()
		tick := time.NewTicker(pollEvery)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			conn, err := s.bus(ctx)
			if err != nil {
				continue
			}
			p, err := conn.GetUnitPropertyContext(ctx, st.Unit, "ActiveState")
			if err != nil {
				continue
			}
			if state, _ := p.Value.Value().(string); running(state) {
				continue
			}
			se := s.failedStart(ctx, conn, st.Unit, "done", lg)
			exited <- Status{ExitCode: se.ExitCode, Reason: se.Reason, Output: se.Output}
			return
		}
	}()
	return exited, cancel
}

// memberAccount is the passwd entry a unit runs as, with the name of its
// primary group.
func memberAccount(userName string) (account, string, error) {
	u, err := user.Lookup(userName)
	if err != nil {
		return account{}, "", fmt.Errorf("look up user %s: %w", userName, err)
	}
	uid, err := strconv.Atoi(u.Uid)
	if err != nil {
		return account{}, "", fmt.Errorf("user %s has a non-numeric uid %q", userName, u.Uid)
	}
	if uid == 0 {
		return account{}, "", errors.New("refusing to run a server as root")
	}
	group := u.Gid
	if g, err := user.LookupGroupId(u.Gid); err == nil {
		group = g.Name
	}
	return account{uid: uid, name: u.Username, home: u.HomeDir, shell: loginShell(u.Username)}, group, nil
}

// DynamicHome is where a dynamic user's files live: systemd's persistent
// StateDirectory hubd-users/<name> (under /var/lib; /var/lib/private
// holds it, owned by the uid systemd derives from the name).
func DynamicHome(userName string) string { return "/var/lib/" + dynamicStateDir(userName) }

func dynamicStateDir(userName string) string { return "hubd-users/" + userName }

// dynamicAccount is a user without a Linux account: systemd allocates the
// uid when the unit starts, and the home is its state directory. A name
// that is a Linux account is refused: systemd would run the "dynamic"
// unit as that account.
func dynamicAccount(userName string) (account, string, error) {
	if _, err := user.Lookup(userName); err == nil {
		return account{}, "", fmt.Errorf("refusing to run %s as a dynamic user: a Linux account of that name exists", userName)
	}
	return account{name: userName, home: DynamicHome(userName), shell: "/bin/sh"}, "", nil
}

// running reports whether a unit in activeState may still have processes.
func running(activeState string) bool {
	switch activeState {
	case "active", "activating", "deactivating", "reloading", "refreshing":
		return true
	}
	return false
}

// failedStart describes a unit that failed during Start: its result and
// exit status, the server's output and systemd's lines about this run.
func (s *Systemd) failedStart(ctx context.Context, conn *sddbus.Conn, unit, jobResult string, lg *serverLog) *StartError {
	se := &StartError{Reason: fmt.Sprintf("unit %s did not start (job %s)", unit, jobResult)}
	props, err := conn.GetUnitTypePropertiesContext(ctx, unit, "Service")
	if err == nil {
		se.Reason, se.ExitCode = s.failure(unit, props)
	}
	out := lg.tail()
	if j := s.invocationJournal(ctx, conn, unit); j != "" {
		out = strings.TrimSpace(out + "\n" + j)
	}
	se.Output = out
	return se
}

// invocationJournal returns systemd's journal lines of the unit's latest
// run (its invocation id), where exec failures are explained ("Changing
// to the requested working directory failed: ...").
func (s *Systemd) invocationJournal(ctx context.Context, conn *sddbus.Conn, unit string) string {
	p, err := conn.GetUnitPropertyContext(ctx, unit, "InvocationID")
	if err != nil {
		return ""
	}
	id, _ := p.Value.Value().([]byte)
	if len(id) != 16 {
		return ""
	}
	hex := fmt.Sprintf("%x", id)
	lines, err := s.journal(ctx, tailLines, "_SYSTEMD_INVOCATION_ID="+hex, "+", "INVOCATION_ID="+hex)
	if err != nil {
		s.log.Debug("journal of a failed start", "unit", unit, "err", err)
		return ""
	}
	return strings.Join(lines, "\n")
}

// discard stops and forgets a unit whose start failed or was abandoned,
// and removes its environment file.
func (s *Systemd) discard(conn *sddbus.Conn, unit string) {
	ctx, cancel := context.WithTimeout(context.Background(), s.o.StopTimeout+killWait)
	defer cancel()
	if err := s.stopUnit(ctx, conn, unit, s.o.StopTimeout); err != nil {
		s.log.Warn("stop after a failed start", "unit", unit, "err", err)
	}
	s.removeEnvFile(unit)
}

// stopUnit stops a unit: SIGTERM to all its processes (KillMode=
// control-group), SIGKILL to what is left after timeout, then forgets a
// failed unit (reset-failed) so the name is free for the next start.
func (s *Systemd) stopUnit(ctx context.Context, conn *sddbus.Conn, unit string, timeout time.Duration) error {
	done := make(chan string, 1)
	if _, err := conn.StopUnitContext(ctx, unit, "replace", done); err != nil {
		if !isNoSuchUnit(err) {
			return busError(err, "stop unit "+unit)
		}
		return nil
	}
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case <-done:
	case <-ctx.Done():
		return fmt.Errorf("stop unit %s: %w", unit, ctx.Err())
	case <-timer.C:
		s.log.Warn("unit still stopping after the stop timeout; sending SIGKILL", "unit", unit, "timeout", timeout)
		if err := conn.KillUnitWithTarget(ctx, unit, sddbus.All, 9); err != nil && !isNoSuchUnit(err) {
			return busError(err, "kill unit "+unit)
		}
		kill := time.NewTimer(killWait)
		defer kill.Stop()
		select {
		case <-done:
		case <-ctx.Done():
			return fmt.Errorf("stop unit %s: %w", unit, ctx.Err())
		case <-kill.C:
			return fmt.Errorf("unit %s is still stopping after SIGKILL (a process stuck in the kernel?): see `systemctl status %s`", unit, unit)
		}
	}
	if err := conn.ResetFailedUnitContext(ctx, unit); err != nil && !isNoSuchUnit(err) {
		return busError(err, "reset-failed unit "+unit)
	}
	return nil
}

// gcWait bounds the wait for systemd to unload a unit after reset-failed.
const gcWait = 5 * time.Second

// clearLeftover stops and unloads a unit of the same name left by an
// earlier run (a hub that crashed, a failed unit nobody reset, an
// admin's systemd-run), and removes a leftover environment file: a start
// must never depend on what an earlier one left behind.
func (s *Systemd) clearLeftover(ctx context.Context, conn *sddbus.Conn, unit string) error {
	s.removeEnvFile(unit)
	// ListUnitsByPatterns lists only loaded units; ListUnitsByNames and
	// property reads would load a stub for a unit that is gone. systemd
	// matches with FNM_NOESCAPE, and unit names hold no other glob
	// characters, so the name is its own pattern.
	pattern := []string{unit}
	units, err := conn.ListUnitsByPatternsContext(ctx, nil, pattern)
	if err != nil {
		return busError(err, "look for a leftover unit "+unit)
	}
	if len(units) == 0 {
		return nil
	}
	s.log.Warn("a unit of the same name exists from an earlier run; stopping it", "unit", unit,
		"load_state", units[0].LoadState, "active_state", units[0].ActiveState, "description", units[0].Description)
	if err := s.stopUnit(ctx, conn, unit, s.o.StopTimeout); err != nil {
		return fmt.Errorf("clear the leftover unit: %w", err)
	}
	deadline := time.Now().Add(gcWait)
	tick := time.NewTicker(pollEvery)
	defer tick.Stop()
	for {
		units, err := conn.ListUnitsByPatternsContext(ctx, nil, pattern)
		if err != nil {
			return busError(err, "look for a leftover unit "+unit)
		}
		if len(units) == 0 {
			return nil
		}
		if !time.Now().Before(deadline) {
			return fmt.Errorf("unit %s is still loaded (%s, %s) after stop and reset-failed: if a unit file of that name exists, remove it or change spawner.systemd.unit_prefix",
				unit, units[0].LoadState, units[0].ActiveState)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("clear the leftover unit %s: %w", unit, ctx.Err())
		case <-tick.C:
		}
	}
}

// Stop implements Spawner. A unit that is gone is success; a unit that
// does not run as userName is left alone (a state that does not belong
// to the user must not stop someone else's server).
func (s *Systemd) Stop(ctx context.Context, userName string, st State, timeout time.Duration) error {
	if err := s.checkState(userName, st); err != nil {
		return err
	}
	if timeout <= 0 {
		timeout = s.o.StopTimeout
	}
	conn, err := s.bus(ctx)
	if err != nil {
		return err
	}
	props, err := conn.GetUnitPropertiesContext(ctx, st.Unit)
	if err != nil {
		return busError(err, "read unit "+st.Unit)
	}
	if props["LoadState"] != "loaded" {
		s.removeEnvFile(st.Unit)
		return nil
	}
	svc, err := conn.GetUnitTypePropertiesContext(ctx, st.Unit, "Service")
	if err != nil {
		return busError(err, "read unit "+st.Unit)
	}
	if owner, _ := svc["User"].(string); owner != userName {
		s.log.Warn("not stopping: the recorded unit is not the user's server", "user", userName, "unit", st.Unit, "runs_as", owner)
		return nil
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout+killWait+10*time.Second)
		defer cancel()
	}
	err = s.stopUnit(ctx, conn, st.Unit, timeout)
	s.removeEnvFile(st.Unit)
	if err != nil {
		return fmt.Errorf("stop %s's server: %w", userName, err)
	}
	s.log.Info("server stopped", "user", userName, "unit", st.Unit, "was", props["ActiveState"])
	return nil
}

// Poll implements Spawner with one D-Bus property read while the unit
// runs; only a unit that stopped costs a second read, for the reason.
func (s *Systemd) Poll(ctx context.Context, userName string, st State) (Status, error) {
	if err := s.checkState(userName, st); err != nil {
		return Status{}, err
	}
	conn, err := s.bus(ctx)
	if err != nil {
		return Status{}, err
	}
	p, err := conn.GetUnitPropertyContext(ctx, st.Unit, "ActiveState")
	if err != nil {
		return Status{}, busError(err, "read the state of unit "+st.Unit)
	}
	if state, _ := p.Value.Value().(string); running(state) {
		return Status{Running: true, ExitCode: -1}, nil
	}
	// Nothing reads the environment file of a unit that ended.
	s.removeEnvFile(st.Unit)
	props, err := conn.GetUnitTypePropertiesContext(ctx, st.Unit, "Service")
	if err != nil {
		return Status{ExitCode: -1, Reason: "unit " + st.Unit + " is not running"}, nil
	}
	reason, code := s.failure(st.Unit, props)
	return Status{ExitCode: code, Reason: reason}, nil
}

// Reclaim implements Reclaimer: the server's unit, found by its name,
// stopped.
func (s *Systemd) Reclaim(ctx context.Context, o Orphan, timeout time.Duration) (int, error) {
	unit, err := s.UnitName(o.User, o.Server)
	if err != nil {
		return 0, err
	}
	conn, err := s.bus(ctx)
	if err != nil {
		return 0, err
	}
	props, err := conn.GetUnitPropertiesContext(ctx, unit)
	if err != nil {
		return 0, busError(err, "read unit "+unit)
	}
	if props["LoadState"] != "loaded" {
		return 0, nil
	}
	// A unit that has ended is cleaned up all the same, but not counted.
	ran := props["ActiveState"] != "inactive" && props["ActiveState"] != "failed"
	if err := s.Stop(ctx, o.User, State{Kind: KindSystemd, Unit: unit}, timeout); err != nil || !ran {
		return 0, err
	}
	return 1, nil
}

func (s *Systemd) checkState(userName string, st State) error {
	if st.Kind != KindSystemd {
		return fmt.Errorf("server state of kind %q given to the systemd spawner", st.Kind)
	}
	if err := names.Check(userName); err != nil {
		return fmt.Errorf("user %s: %w", names.Quote(userName), err)
	}
	if !strings.HasSuffix(st.Unit, ".service") || !validUnitName(st.Unit) {
		return fmt.Errorf("server state names unit %s, which is not a service unit name", names.Quote(st.Unit))
	}
	return nil
}

// maxLogTail bounds LogTail's n.
const maxLogTail = 10000

// LogTail returns the last n lines the journal holds for a user's server
// unit, across its runs: systemd's own lines (started, killed by the OOM
// killer, failed with result ...) and anything the server logged to the
// journal. The server's stdout and stderr go to Request.LogPath.
func (s *Systemd) LogTail(ctx context.Context, userName, server string, n int) ([]string, error) {
	if n < 1 || n > maxLogTail {
		return nil, fmt.Errorf("ask for 1 to %d lines, not %d", maxLogTail, n)
	}
	unit, err := s.UnitName(userName, server)
	if err != nil {
		return nil, err
	}
	return s.journal(ctx, n, "--unit="+unit)
}

// journal runs journalctl with matches and returns its last n lines.
func (s *Systemd) journal(ctx context.Context, n int, matches ...string) ([]string, error) {
	args := []string{"--no-pager", "--quiet", "--output=cat", "--lines=" + strconv.Itoa(n)}
	if s.o.JournalDir != "" {
		args = append(args, "--directory="+s.o.JournalDir)
	}
	cmd := exec.CommandContext(ctx, s.o.Journalctl, append(args, matches...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &limitedWriter{w: &stderr, n: 4 << 10}
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("read the journal with %s: %w: %s", s.o.Journalctl, err, strings.TrimSpace(stderr.String()))
	}
	lines := []string{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	return lines, sc.Err()
}

// busError wraps a D-Bus error; a refusal gets the one thing to do about
// it, since a non-root hub is the usual cause.
func busError(err error, action string) error {
	var de dbus.Error
	if errors.As(err, &de) {
		switch de.Name {
		case "org.freedesktop.DBus.Error.AccessDenied", "org.freedesktop.DBus.Error.InteractiveAuthorizationRequired":
			return fmt.Errorf("%s: systemd refused (%w): the systemd spawner needs the hub to run as root, since units that run as other users are root's privilege; run hubd as root or set spawner.kind = \"sudo\"", action, err)
		}
	}
	return fmt.Errorf("%s: %w", action, err)
}

func isNoSuchUnit(err error) bool {
	var de dbus.Error
	return errors.As(err, &de) && (de.Name == "org.freedesktop.systemd1.NoSuchUnit" || de.Name == "org.freedesktop.systemd1.LoadFailed")
}
