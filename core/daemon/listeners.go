// Package daemon is hubd's life as a service: listening sockets that
// survive a restart (inherited across re-exec, or held by systemd socket
// activation), sd_notify readiness, status and watchdog, journal-friendly
// logs, and the graceful in-place re-exec behind `hubd restart`.
package daemon

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"

	"github.com/coreos/go-systemd/v22/activation"
	"golang.org/x/sys/unix"
)

// inheritEnv carries "name:fd,name:fd" from a hub to the hub it re-execs.
const inheritEnv = "HUBD_INHERITED_FDS"

// Listeners hands out listening sockets by name: ones inherited from the
// previous hub process, ones systemd passed (socket activation, matched by
// FileDescriptorName=, e.g. "public"), or new ones.
type Listeners struct {
	inherited map[string]*os.File
	activated map[string]net.Listener
	// Sources records where each listener came from, for the log.
	Sources map[string]string
}

// LoadListeners reads what this process was given. It clears the
// environment variables so children never see them.
func LoadListeners() (*Listeners, error) {
	l := ListenersOf(nil)
	if spec := os.Getenv(inheritEnv); spec != "" {
		os.Unsetenv(inheritEnv)
		for _, part := range strings.Split(spec, ",") {
			name, num, ok := strings.Cut(part, ":")
			fd, err := strconv.Atoi(num)
			if !ok || err != nil || fd < 3 {
				return nil, fmt.Errorf("bad %s entry %q", inheritEnv, part)
			}
			unix.CloseOnExec(fd)
			l.inherited[name] = os.NewFile(uintptr(fd), name)
		}
	}
	named, err := activation.ListenersWithNames()
	if err != nil {
		return nil, fmt.Errorf("socket activation: %w", err)
	}
	for name, ls := range named {
		if len(ls) > 0 && ls[0] != nil {
			l.activated[name] = ls[0]
		}
	}
	return l, nil
}

// ListenersOf is what a hub re-executed for a restart in place is handed:
// listening sockets as files, by name. Tests play both hubs in one process
// with it.
func ListenersOf(files map[string]*os.File) *Listeners {
	l := &Listeners{inherited: map[string]*os.File{}, activated: map[string]net.Listener{}, Sources: map[string]string{}}
	for name, f := range files {
		l.inherited[name] = f
	}
	return l
}

// Listen returns the listener called name: inherited, activated, or a new
// TCP (addr "host:port") or unix ("/path") listener.
func (l *Listeners) Listen(name, addr string) (net.Listener, error) {
	if f := l.inherited[name]; f != nil {
		delete(l.inherited, name)
		ln, err := net.FileListener(f)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("inherited %s listener: %w", name, err)
		}
		l.Sources[name] = "inherited from the previous hub"
		return ln, nil
	}
	if ln := l.activated[name]; ln != nil {
		delete(l.activated, name)
		l.Sources[name] = "from systemd socket activation"
		return ln, nil
	}
	network := "tcp"
	if strings.HasPrefix(addr, "/") {
		network = "unix"
	}
	ln, err := net.Listen(network, addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w (is another hub or program using it? `ss -ltnp` shows who)", addr, err)
	}
	l.Sources[name] = "new"
	return ln, nil
}

// Inherited reports whether a listener called name was handed over.
func (l *Listeners) Inherited(name string) bool { return l.inherited[name] != nil }

// Close releases whatever was given but not used.
func (l *Listeners) Close() {
	for _, f := range l.inherited {
		f.Close()
	}
	for _, ln := range l.activated {
		ln.Close()
	}
}

// fileOf returns a duplicate descriptor of a listener that survives exec.
func fileOf(ln net.Listener) (*os.File, error) {
	type filer interface{ File() (*os.File, error) }
	fl, ok := ln.(filer)
	if !ok {
		return nil, errors.New("listener cannot be handed over")
	}
	f, err := fl.File()
	if err != nil {
		return nil, err
	}
	// File() duplicates with close-on-exec set; the new hub needs it open.
	if _, err := unix.FcntlInt(f.Fd(), unix.F_SETFD, 0); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}
