package testutil

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Proc is a process found in /proc.
type Proc struct{ PID int }

// Read returns /proc/<pid>/<name>, or nil when the process is gone or the
// file cannot be read.
func (p Proc) Read(name string) []byte {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(p.PID) + "/" + name)
	if err != nil {
		return nil
	}
	return b
}

// Stat returns the command name and the state (R running, S sleeping, T
// stopped, Z zombie...) from /proc/<pid>/stat; ok is false when the process
// is gone. A thread id works as well as a pid.
func (p Proc) Stat() (comm string, state byte, ok bool) {
	b := p.Read("stat")
	// "pid (comm) state ...": comm may contain spaces and parentheses.
	open, end := bytes.IndexByte(b, '('), bytes.LastIndexByte(b, ')')
	if open < 0 || end < open || end+3 > len(b) {
		return "", 0, false
	}
	return string(b[open+1 : end]), b[end+2], true
}

// Alive reports whether the process has not exited: a zombie (Z) or dead
// (X) process is gone, its parent merely has not reaped it yet.
func (p Proc) Alive() bool {
	_, state, ok := p.Stat()
	return ok && state != 'Z' && state != 'X'
}

// IDs returns the real uid and gid and the supplementary groups of the
// process (from /proc/<pid>/status); ok is false when it is gone.
func (p Proc) IDs() (uid, gid string, groups []string, ok bool) {
	for line := range strings.SplitSeq(string(p.Read("status")), "\n") {
		k, v, _ := strings.Cut(line, ":")
		f := strings.Fields(v)
		switch {
		case k == "Uid" && len(f) > 0:
			uid = f[0]
		case k == "Gid" && len(f) > 0:
			gid = f[0]
		case k == "Groups":
			groups = f
		}
	}
	return uid, gid, groups, uid != ""
}

// PPID returns the parent's pid from /proc/<pid>/stat (0 when gone).
func (p Proc) PPID() int {
	b := p.Read("stat")
	end := bytes.LastIndexByte(b, ')')
	if end < 0 {
		return 0
	}
	f := strings.Fields(string(b[end+1:]))
	if len(f) < 2 {
		return 0
	}
	ppid, _ := strconv.Atoi(f[1])
	return ppid
}

// Procs lists the pids of live processes (zombies excluded) for which
// keep is true, in /proc's order. Tests use it to find the servers they
// started and to prove that none is left behind.
func Procs(keep func(Proc) bool) []int {
	dirs, _ := os.ReadDir("/proc")
	var out []int
	for _, d := range dirs {
		pid, err := strconv.Atoi(d.Name())
		if err != nil {
			continue
		}
		if p := (Proc{PID: pid}); keep(p) && p.Alive() {
			out = append(out, pid)
		}
	}
	return out
}

// WithEnv keeps processes whose environment holds every one of kv
// ("NAME=value").
func WithEnv(kv ...string) func(Proc) bool {
	return func(p Proc) bool {
		env := p.Read("environ")
		for _, s := range kv {
			if !bytes.HasPrefix(env, []byte(s+"\x00")) && !bytes.Contains(env, []byte("\x00"+s+"\x00")) {
				return false
			}
		}
		return env != nil
	}
}

// WithCmdline keeps processes whose command line (arguments joined by
// spaces) contains s.
func WithCmdline(s string) func(Proc) bool {
	return func(p Proc) bool {
		return strings.Contains(strings.ReplaceAll(string(p.Read("cmdline")), "\x00", " "), s)
	}
}

// Environ returns the environment of process pid as a map (empty when
// the process is gone).
func Environ(pid int) map[string]string {
	out := map[string]string{}
	for _, kv := range strings.Split(string(Proc{PID: pid}.Read("environ")), "\x00") {
		if k, v, ok := strings.Cut(kv, "="); ok {
			out[k] = v
		}
	}
	return out
}

// MemoryLimit reads the memory limit the kernel enforces on the process's
// cgroup (cgroup v1 memory.limit_in_bytes, or v2 memory.max).
func (p Proc) MemoryLimit() (int64, error) {
	b := p.Read("cgroup")
	var file string
	for line := range strings.SplitSeq(strings.TrimSpace(string(b)), "\n") {
		f := strings.SplitN(line, ":", 3)
		switch {
		case len(f) != 3:
		case strings.Contains(","+f[1]+",", ",memory,"):
			file = filepath.Join("/sys/fs/cgroup", f[1], f[2], "memory.limit_in_bytes")
		case f[0] == "0" && file == "":
			if _, err := os.Stat("/sys/fs/cgroup/cgroup.controllers"); err == nil {
				file = filepath.Join("/sys/fs/cgroup", f[2], "memory.max")
			}
		}
	}
	if file == "" {
		return 0, fmt.Errorf("no memory cgroup for pid %d:\n%s", p.PID, b)
	}
	v, err := os.ReadFile(file)
	if err != nil {
		return 0, err
	}
	return strconv.ParseInt(strings.TrimSpace(string(v)), 10, 64)
}
