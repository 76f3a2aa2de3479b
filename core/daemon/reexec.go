package daemon

import (
	"fmt"
	"net"
	"os"
	"sort"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// Handover is the set of listeners a restart passes to the new process.
type Handover struct {
	files map[string]*os.File
}

// PrepareHandover duplicates the listeners (so they stay open, and keep
// queueing connections, after the servers that use them shut down).
func PrepareHandover(listeners map[string]net.Listener) (*Handover, error) {
	h := &Handover{files: map[string]*os.File{}}
	for name, ln := range listeners {
		f, err := fileOf(ln)
		if err != nil {
			h.Abort()
			return nil, fmt.Errorf("hand over the %s listener: %w", name, err)
		}
		h.files[name] = f
	}
	return h, nil
}

// Abort closes the duplicates (the restart was called off).
func (h *Handover) Abort() {
	for _, f := range h.files {
		f.Close()
	}
}

// Exec replaces this process with exe (normally the path hubd was started
// from, so an upgraded binary takes over) keeping the PID, which systemd
// and the sudo'd servers' parentage do not notice. It returns only on
// failure.
func (h *Handover) Exec(exe string, args []string) error {
	names := make([]string, 0, len(h.files))
	for n := range h.files {
		names = append(names, n)
	}
	sort.Strings(names)
	var spec []string
	for _, n := range names {
		spec = append(spec, n+":"+strconv.Itoa(int(h.files[n].Fd())))
	}
	env := append(withoutVar(os.Environ(), inheritEnv), inheritEnv+"="+strings.Join(spec, ","))
	// LISTEN_* described the first process's systemd sockets; they are
	// now among the inherited ones.
	env = withoutVar(withoutVar(withoutVar(env, "LISTEN_FDS"), "LISTEN_PID"), "LISTEN_FDNAMES")
	if err := syscall.Exec(exe, args, env); err != nil {
		return fmt.Errorf("exec %s: %w", exe, err)
	}
	return nil
}

func withoutVar(env []string, name string) []string {
	out := env[:0:0]
	for _, e := range env {
		if !strings.HasPrefix(e, name+"=") {
			out = append(out, e)
		}
	}
	return out
}

// monotonicUsec is CLOCK_MONOTONIC in microseconds, which systemd wants
// with RELOADING=1.
func monotonicUsec() string {
	var ts unix.Timespec
	_ = unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	return strconv.FormatInt(ts.Sec*1_000_000+ts.Nsec/1000, 10)
}
