package admin

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/hubd/hubd/internal/acl"
)

// socketMode is the admin socket's mode: the hub's account and group, and
// through the ACL the admin and members groups, may connect; nobody else.
const socketMode = 0o660

// ErrAlreadyRunning means another process answers on the admin socket.
var ErrAlreadyRunning = errors.New("another hubd is already serving the admin socket")

// Listen opens the admin socket: a live socket at the path means another
// hub runs (ErrAlreadyRunning); a dead one (left by a crash) is replaced.
// The socket gets mode 0660 and an ACL giving the admin and members groups
// access. Listen does nothing when the server already has a listener.
func (s *Server) Listen() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.l != nil || s.closed {
		return nil
	}
	path := s.cfg.Admin.Socket
	if err := clearStale(path); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("admin socket directory: %w (hubd setup creates %s)", err, filepath.Dir(path))
	}
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return fmt.Errorf("listen on the admin socket %s: %w", path, err)
	}
	// Close must not unlink by name: after a restart the path may already
	// belong to the next hub. removeIfSame checks the inode first.
	l.SetUnlinkOnClose(false)
	// Until the chmod the socket has the mode the umask left; that window
	// is harmless because every request is authorised by SO_PEERCRED.
	if err := s.secureSocket(path); err != nil {
		l.Close()
		os.Remove(path)
		return err
	}
	info, err := os.Lstat(path)
	if err != nil {
		l.Close()
		return fmt.Errorf("admin socket %s: %w", path, err)
	}
	s.l, s.sockInfo = l, info
	return nil
}

// probeTimeout bounds the "is someone listening" dial; a live hub accepts
// at once, even when busy (the kernel completes the connection).
const probeTimeout = 2 * time.Second

// clearStale makes path free for a new socket: nothing there is fine, a
// socket nobody listens on is removed, anything else is an error.
func clearStale(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("admin socket %s: %w", path, err)
	}
	if fi.Mode().Type() != fs.ModeSocket {
		return fmt.Errorf("admin socket %s exists and is not a socket: remove it or set admin.socket to another path", path)
	}
	c, err := net.DialTimeout("unix", path, probeTimeout)
	if err == nil {
		c.Close()
		return fmt.Errorf("%w at %s: stop it first (`systemctl stop hubd`), or give this one another admin.socket", ErrAlreadyRunning, path)
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		return fmt.Errorf("admin socket %s: cannot tell whether another hub uses it: %w", path, err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove the stale admin socket %s: %w", path, err)
	}
	return nil
}

// secureSocket sets mode 0660 and the ACL. The hub usually runs as its own
// unprivileged account, in neither the admin nor the members group, so it
// cannot give the socket to those groups with chown; as the file's owner
// it may set an ACL naming them. Without ACL support the socket stays
// 0660 and only root and the socket's group can connect.
func (s *Server) secureSocket(path string) error {
	if err := os.Chmod(path, socketMode); err != nil {
		return fmt.Errorf("chmod the admin socket %s: %w", path, err)
	}
	var gids []uint32
	var names []string
	for _, g := range []string{s.cfg.Auth.AdminGroup, s.cfg.Auth.AllowedGroup} {
		if g == "" {
			continue
		}
		grp, err := user.LookupGroup(g)
		if err != nil {
			s.log.Warn("group for the admin socket not found; its members cannot connect", "group", g, "err", err, "fix", "groupadd "+g)
			continue
		}
		gid, err := strconv.ParseUint(grp.Gid, 10, 32)
		if err != nil {
			continue
		}
		gids, names = append(gids, uint32(gid)), append(names, g)
	}
	if len(gids) == 0 {
		return nil
	}
	err := acl.Set(path, acl.GroupAccess(gids...))
	if errors.Is(err, acl.ErrUnsupported) {
		s.fallbackGroup(path, gids[0], names[0], err)
		return nil
	}
	if err != nil {
		return fmt.Errorf("give groups %v access to the admin socket: %w", names, err)
	}
	return nil
}

// fallbackGroup hands the socket to the first group (the admin group when
// configured) when ACLs are unsupported; that works when the hub runs as
// root or belongs to that group.
func (s *Server) fallbackGroup(path string, gid uint32, group string, cause error) {
	if err := os.Chown(path, -1, int(gid)); err != nil {
		s.log.Warn("POSIX ACLs are not supported for the admin socket, and it cannot be given to the group; only root and the hub's own group can connect",
			"socket", path, "group", group, "acl_err", cause, "chown_err", err,
			"fix", "put admin.socket on a file system with ACLs (tmpfs /run has them)")
		return
	}
	s.log.Warn("POSIX ACLs are not supported for the admin socket; it is 0660 to one group only",
		"socket", path, "group", group, "err", cause,
		"fix", "put admin.socket on a file system with ACLs (tmpfs /run has them)")
}

// removeIfSame removes path only when it is still the socket described by
// info.
func removeIfSame(path string, info os.FileInfo) {
	if now, err := os.Lstat(path); err == nil && os.SameFile(now, info) {
		os.Remove(path)
	}
}
