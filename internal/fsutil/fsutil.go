// Package fsutil has the small file-system helpers shared by hubd's
// packages: atomic file replacement and the lock file that marks a running
// hub.
package fsutil

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// WriteFileAtomic writes data to path through a temporary file in the same
// directory (mode perm, fsynced, then renamed over path), so a reader sees
// either the old or the new content, never a half-written file.
func WriteFileAtomic(path string, data []byte, perm os.FileMode) error {
	return WriteAtomic(path, perm, func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	})
}

// WriteAtomic is WriteFileAtomic with the content produced by fill.
func WriteAtomic(path string, perm os.FileMode, fill func(io.Writer) error) (err error) {
	if fi, err := os.Lstat(path); err == nil && !fi.Mode().IsRegular() {
		return fmt.Errorf("refusing to replace %s: not a regular file", path)
	}
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("create temporary file in %s: %w", dir, err)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if err = f.Chmod(perm); err != nil {
		return fmt.Errorf("chmod %s: %w", tmp, err)
	}
	if err = fill(f); err != nil {
		return fmt.Errorf("write %s: %w", tmp, err)
	}
	if err = f.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", tmp, err)
	}
	if err = f.Close(); err != nil {
		return fmt.Errorf("close %s: %w", tmp, err)
	}
	if err = os.Rename(tmp, path); err != nil {
		return fmt.Errorf("rename %s to %s: %w", tmp, path, err)
	}
	return SyncDir(dir)
}

// SyncDir fsyncs a directory so a rename in it survives a crash.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("open directory %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, syscall.EINVAL) {
		return fmt.Errorf("sync directory %s: %w", dir, err)
	}
	return nil
}

// ErrLocked means another process holds the lock.
var ErrLocked = errors.New("locked by another process")

// Lock is an exclusive flock(2) on a small file beside the database. The
// lock file is separate from the database itself: opening and closing any
// descriptor of the database file would drop SQLite's POSIX locks.
type Lock struct {
	f *os.File
}

// LockPath is the lock file used for the database at dbPath.
func LockPath(dbPath string) string { return dbPath + ".lock" }

// TryLock takes the lock without waiting and records our pid in the file.
// When the lock is held it returns ErrLocked and the holder's pid (0 if
// unknown).
func TryLock(path string) (*Lock, int, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, 0, fmt.Errorf("open lock file: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		pid := readPid(f)
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, pid, ErrLocked
		}
		return nil, 0, fmt.Errorf("lock %s: %w", path, err)
	}
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return &Lock{f: f}, 0, nil
}

// Holder returns the pid recorded in an existing lock file if the lock is
// currently held, else 0.
func Holder(path string) int {
	l, pid, err := TryLock(path)
	if err == nil {
		l.Release()
		return 0
	}
	return pid
}

func readPid(f *os.File) int {
	buf := make([]byte, 32)
	n, _ := f.ReadAt(buf, 0)
	pid, _ := strconv.Atoi(strings.TrimSpace(string(buf[:n])))
	return pid
}

// Release drops the lock. The file stays: removing it would race with a
// process that has just opened it.
func (l *Lock) Release() {
	if l == nil || l.f == nil {
		return
	}
	l.f.Close()
	l.f = nil
}

// File exposes the descriptor so a re-executed hub can inherit the lock.
func (l *Lock) File() *os.File { return l.f }

// ErrHolderAlive is returned by StopHolder when the holder kept the lock
// for the whole wait after SIGTERM.
var ErrHolderAlive = errors.New("still running after SIGTERM")

// StopHolder sends SIGTERM to pid, the holder of the lock at path (a
// running hub), and takes the lock once the holder lets go, waiting at
// most wait.
func StopHolder(ctx context.Context, path string, pid int, wait time.Duration) (*Lock, error) {
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		return nil, fmt.Errorf("send SIGTERM to pid %d: %w", pid, err)
	}
	deadline := time.NewTimer(wait)
	defer deadline.Stop()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-deadline.C:
			return nil, fmt.Errorf("pid %d: %w for %s", pid, ErrHolderAlive, wait)
		case <-tick.C:
			if lock, _, err := TryLock(path); err == nil {
				return lock, nil
			}
		}
	}
}
