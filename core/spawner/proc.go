package spawner

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// The hub reads /proc directly instead of asking the helper through sudo:
// /proc/<pid>/stat and /proc/<pid>/status are world-readable (no hidepid
// on the hosts we support), and a sudo round trip per server would make
// re-attaching hundreds of servers at hub start take seconds instead of
// milliseconds. Signalling, which needs the member's uid, still goes
// through the helper.

// procStat is what /proc/<pid>/stat says about one process.
type procStat struct {
	State     byte // R, S, D, Z (zombie), X (dead), ...
	PGID      int
	SID       int
	StartTime uint64 // clock ticks since boot; with the pid, a process identity
}

// errNoProcess means /proc has no such process (any more).
var errNoProcess = errors.New("no such process")

func readStat(pid int) (procStat, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		// ESRCH: the process exited between opening and reading the file.
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ESRCH) {
			return procStat{}, errNoProcess
		}
		return procStat{}, fmt.Errorf("read /proc/%d/stat: %w", pid, err)
	}
	return parseStat(b)
}

// parseStat parses a stat line. The command name (field 2) is in
// parentheses and may itself contain spaces and parentheses, so the
// fields are counted from the last ')'.
func parseStat(b []byte) (procStat, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return procStat{}, fmt.Errorf("parse /proc stat %q: no command field", b)
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state); starttime is field 22, i.e. f[19].
	if len(f) < 20 || len(f[0]) != 1 {
		return procStat{}, fmt.Errorf("parse /proc stat %q: too few fields", b)
	}
	var (
		st  = procStat{State: f[0][0]}
		err error
	)
	if st.PGID, err = strconv.Atoi(f[2]); err != nil {
		return procStat{}, fmt.Errorf("parse /proc stat pgrp: %w", err)
	}
	if st.SID, err = strconv.Atoi(f[3]); err != nil {
		return procStat{}, fmt.Errorf("parse /proc stat session: %w", err)
	}
	if st.StartTime, err = strconv.ParseUint(f[19], 10, 64); err != nil {
		return procStat{}, fmt.Errorf("parse /proc stat starttime: %w", err)
	}
	return st, nil
}

func (s procStat) exited() bool { return s.State == 'Z' || s.State == 'X' }

// readUID returns the real uid of a process. /proc/<pid> itself is owned
// by root for non-dumpable processes, so the owner of the directory is
// not a reliable answer; the Uid line of status is.
func readUID(pid int) (int, error) {
	f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return 0, errNoProcess
		}
		return 0, fmt.Errorf("read /proc/%d/status: %w", pid, err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "Uid:"); ok {
			fields := strings.Fields(rest)
			if len(fields) == 0 {
				break
			}
			return strconv.Atoi(fields[0])
		}
	}
	if err := sc.Err(); err != nil {
		// ESRCH: the process went away while we read.
		return 0, errNoProcess
	}
	return 0, fmt.Errorf("read /proc/%d/status: no Uid line", pid)
}

// identity is how a recorded (pid, starttime) relates to what runs now.
type identity int

const (
	idGone    identity = iota // no such process
	idExited                  // a zombie: exited, not reaped yet
	idReused                  // the pid now names a different process
	idForeign                 // the same process, but not owned by the expected uid
	idRunning                 // our server, alive
)

func (id identity) String() string {
	switch id {
	case idGone:
		return "the process has exited"
	case idExited:
		return "the process has exited (not reaped yet)"
	case idReused:
		return "the process has exited and its pid now belongs to another process"
	case idForeign:
		return "the pid belongs to another user's process"
	default:
		return "running"
	}
}

// identify checks that pid is still the process that started at
// pidStart and that it runs as uid.
func identify(pid int, pidStart uint64, uid int) (identity, error) {
	if pid <= 0 {
		return idGone, nil
	}
	st, err := readStat(pid)
	if errors.Is(err, errNoProcess) {
		return idGone, nil
	}
	if err != nil {
		return 0, err
	}
	if st.StartTime != pidStart {
		return idReused, nil
	}
	if st.exited() {
		return idExited, nil
	}
	owner, err := readUID(pid)
	if errors.Is(err, errNoProcess) {
		return idGone, nil
	}
	if err != nil {
		return 0, err
	}
	if owner != uid {
		return idForeign, nil
	}
	return idRunning, nil
}

// liveProcs lists the live processes of uid that keep accepts, from
// their stat line (checked before the owner, which costs another read).
func liveProcs(uid int, keep func(pid int, st procStat) bool) ([]procID, error) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, fmt.Errorf("list /proc: %w", err)
	}
	var out []procID
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || !e.IsDir() {
			continue
		}
		st, err := readStat(pid)
		if err != nil || st.exited() || !keep(pid, st) {
			continue // gone meanwhile, a kernel thread we cannot read, or not wanted
		}
		if owner, err := readUID(pid); err != nil || owner != uid {
			continue
		}
		out = append(out, procID{pid: pid, start: st.StartTime})
	}
	return out, nil
}

// sessionMembers lists the live processes of uid in the session that the
// server (pid, pidStart) leads, the leader included when it is alive.
// While any process keeps a session id, Linux does not hand that number
// out as a new pid, so members of session pid that started no earlier
// than the leader are the server's own descendants even after the leader
// is gone.
func sessionMembers(sid int, pidStart uint64, uid int) ([]int, error) {
	procs, err := liveProcs(uid, func(_ int, st procStat) bool { return st.SID == sid && st.StartTime >= pidStart })
	if err != nil {
		return nil, err
	}
	out := make([]int, len(procs))
	for i, p := range procs {
		out[i] = p.pid
	}
	return out, nil
}

// serversByEnv lists the session leaders of uid (servers are started in a
// session of their own) whose environment holds every pair of env: the
// servers of one start, found without a recorded pid. A process whose
// environment cannot be read is not one.
func serversByEnv(uid int, env map[string]string) ([]procID, error) {
	if len(env) == 0 {
		return nil, errors.New("no environment to match: that would match every server")
	}
	leaders, err := liveProcs(uid, func(pid int, st procStat) bool { return st.SID == pid })
	if err != nil {
		return nil, err
	}
	var out []procID
	for _, p := range leaders {
		if b, err := os.ReadFile("/proc/" + strconv.Itoa(p.pid) + "/environ"); err == nil && environHas(b, env) {
			out = append(out, p)
		}
	}
	return out, nil
}

// procID is a process by pid and start time.
type procID struct {
	pid   int
	start uint64
}

// environHas reports whether a NUL-separated environment block holds
// every pair of want.
func environHas(block []byte, want map[string]string) bool {
	found := 0
	for kv := range bytes.SplitSeq(block, []byte{0}) {
		k, v, ok := bytes.Cut(kv, []byte{'='})
		if w, in := want[string(k)]; ok && in && w == string(v) {
			found++
		}
	}
	return found == len(want)
}
