package sharedenv

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The walk runs as root over a tree every member can write, so it must not
// be steerable out of the tree: directories are opened one level at a time
// with O_NOFOLLOW relative to their parent's descriptor, files are looked
// at with statx(AT_SYMLINK_NOFOLLOW), and every change is made through a
// descriptor opened with O_NOFOLLOW and checked to be the inode that was
// inspected. A path string is never handed to chmod/chown, so swapping a
// directory for a symlink mid-walk cannot redirect a repair to /etc.

const (
	// groupR, groupRW and groupRWX are group bits files and directories
	// need.
	groupR   = 0o040
	groupRW  = 0o060
	groupRWX = 0o070
	groupX   = 0o010
	anyExec  = 0o111

	statxMask = unix.STATX_TYPE | unix.STATX_MODE | unix.STATX_GID | unix.STATX_INO |
		unix.STATX_NLINK | unix.STATX_BLOCKS

	dirOpenFlags  = unix.O_RDONLY | unix.O_DIRECTORY | unix.O_NOFOLLOW | unix.O_CLOEXEC
	fileOpenFlags = unix.O_RDONLY | unix.O_NOFOLLOW | unix.O_NONBLOCK | unix.O_NOCTTY | unix.O_CLOEXEC
)

// errHardLinked refuses to repair a file with several names: one of them
// may be outside the environment (a member's hard link to a file they can
// read), and root must not make that file group-writable.
var errHardLinked = errors.New("has other hard links, maybe outside the environment: left unchanged, check it and fix it by hand")

// setxattrFunc is unix.Fsetxattr; tests inject failures through it.
type setxattrFunc func(fd int, attr string, data []byte, flags int) error

// walker checks, and with fix set repairs, the tree under root with a
// bounded number of goroutines.
type walker struct {
	ctx  context.Context
	root string
	gid  uint32
	// readOnly trees give the group read (and search) only: a member's
	// folder in the public area.
	readOnly bool
	fix      bool
	maxEx    int
	log      *slog.Logger
	setxattr setxattrFunc

	dev     uint64 // the walk stays on the root's filesystem
	noACL   atomic.Bool
	seen    atomic.Int64 // paths counted so far, for progress
	walked  func(int)    // progress callback; may be nil
	work    chan dirJob
	pending sync.WaitGroup

	mu  sync.Mutex // guards the example lists in rep
	rep *Report
}

// reportProgress calls walked with the paths seen so far every tenth of a
// second until the returned stop, which reports the final count.
func (w *walker) reportProgress() (stop func()) {
	if w.walked == nil {
		return func() {}
	}
	quit, finished := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-quit:
				return
			case <-t.C:
				w.walked(int(w.seen.Load()))
			}
		}
	}()
	return func() {
		close(quit)
		<-finished
		w.walked(int(w.seen.Load()))
	}
}

// dirJob is an open directory still to be read; rel is its path below the
// root, kept only to name examples.
type dirJob struct {
	fd  int
	rel string
}

// worker is one goroutine's state: its counts and reused buffers, so the
// per-file path allocates nothing.
type worker struct {
	w     *walker
	t     tally
	stx   unix.Statx_t
	dents []byte
	xattr []byte
}

// kindSet is a set of kinds found on one path.
type kindSet uint8

func (s kindSet) has(k Kind) bool { return s&(1<<k) != 0 }

func (s *kindSet) add(k Kind) { *s |= 1 << k }

func (s *kindSet) drop(k Kind) { *s &^= 1 << k }

// walkers is how many directories are read at once: the work is mostly
// waiting in syscalls, so a few more than the CPUs keeps the disk busy on
// a cold cache without crowding a shared machine.
func walkers() int { return min(2*runtime.GOMAXPROCS(0), 8) }

func (w *walker) run() (Report, error) {
	rep := Report{Path: w.root, Examples: map[Kind][]string{}}
	w.rep = &rep
	fd, err := unix.Open(w.root, dirOpenFlags&^unix.O_NOFOLLOW, 0)
	if err != nil {
		return rep, fmt.Errorf("open: %w", err)
	}
	var st unix.Statx_t
	if err := fstatx(fd, &st); err != nil {
		unix.Close(fd)
		return rep, fmt.Errorf("stat: %w", err)
	}
	w.dev = devOf(&st)

	n := walkers()
	w.work = make(chan dirJob, 4*n)
	w.pending.Add(1)
	w.work <- dirJob{fd: fd}
	workers := make([]*worker, n)
	var done sync.WaitGroup
	for i := range workers {
		k := &worker{w: w, dents: make([]byte, 32<<10), xattr: make([]byte, 256)}
		workers[i] = k
		done.Go(func() {
			for j := range w.work {
				k.visit(j)
			}
		})
	}
	stopProgress := w.reportProgress()
	w.pending.Wait()
	close(w.work)
	done.Wait()
	stopProgress()

	var sum tally
	for _, k := range workers {
		sum.add(&k.t)
	}
	sum.fill(&rep)
	rep.ACLSupported = !w.noACL.Load()
	return rep, w.ctx.Err()
}

func devOf(st *unix.Statx_t) uint64 { return unix.Mkdev(st.Dev_major, st.Dev_minor) }

// visit handles one directory and then its subdirectories: each is handed
// to an idle goroutine when the queue has room, else visited right here,
// so the number of open directories stays bounded by queue size plus
// goroutines times depth.
func (k *worker) visit(j dirJob) {
	defer k.w.pending.Done()
	defer unix.Close(j.fd)
	if k.w.ctx.Err() != nil {
		return
	}
	if err := fstatx(j.fd, &k.stx); err != nil {
		k.fail(j.rel, nil, err)
		return
	}
	if devOf(&k.stx) != k.w.dev {
		return // a mount point: not part of the environment
	}
	k.t.dirs++
	k.w.seen.Add(1)
	k.t.bytes += int64(k.stx.Blocks) * 512
	k.dir(j)
	for _, name := range k.entries(j) {
		fd, err := unix.Openat(j.fd, name, dirOpenFlags, 0)
		switch {
		case errors.Is(err, unix.ENOENT), errors.Is(err, unix.ELOOP), errors.Is(err, unix.ENOTDIR):
			continue // removed or replaced since it was listed
		case errors.Is(err, unix.EACCES):
			k.found(1<<Unreadable, j.rel, []byte(name))
			continue
		case err != nil:
			k.fail(j.rel, []byte(name), err)
			continue
		}
		child := dirJob{fd: fd, rel: joinRel(j.rel, name)}
		k.w.pending.Add(1)
		select {
		case k.w.work <- child:
		default:
			k.visit(child)
		}
	}
}

func joinRel(dir, name string) string {
	if dir == "" {
		return name
	}
	return dir + "/" + name
}

// entries checks the files of a directory and returns its subdirectories.
// It parses getdents64 records in place: the name is NUL-terminated in the
// buffer and goes to statx without a copy.
func (k *worker) entries(j dirJob) []string {
	var subdirs []string
	for {
		n, err := unix.Getdents(j.fd, k.dents)
		if err != nil {
			k.fail(j.rel, nil, fmt.Errorf("read directory: %w", err))
			return subdirs
		}
		if n <= 0 {
			return subdirs
		}
		for b := k.dents[:n]; len(b) > 0; {
			// struct linux_dirent64: ino u64, off s64, reclen u16, type u8, name.
			reclen := binary.NativeEndian.Uint16(b[16:])
			rec := b[:reclen]
			b = b[reclen:]
			typ := rec[18]
			cname := rec[19 : 19+bytes.IndexByte(rec[19:], 0)+1]
			name := cname[:len(cname)-1]
			if string(name) == "." || string(name) == ".." {
				continue
			}
			if typ == unix.DT_UNKNOWN || typ == unix.DT_REG {
				// Some filesystems do not fill in d_type; regular files need
				// the statx anyway.
				if err := statAt(j.fd, cname, unix.AT_SYMLINK_NOFOLLOW, &k.stx); err != nil {
					if !errors.Is(err, unix.ENOENT) {
						k.fail(j.rel, name, err)
					}
					continue
				}
				typ = dtype(k.stx.Mode)
			}
			switch typ {
			case unix.DT_DIR:
				subdirs = append(subdirs, string(name))
			case unix.DT_LNK:
				k.t.symlinks++
				k.w.seen.Add(1)
			case unix.DT_REG:
				k.file(j, cname)
			}
		}
	}
}

// dtype maps a file mode to the d_type of the same kind.
func dtype(mode uint16) uint8 {
	switch uint32(mode) & unix.S_IFMT {
	case unix.S_IFDIR:
		return unix.DT_DIR
	case unix.S_IFLNK:
		return unix.DT_LNK
	case unix.S_IFREG:
		return unix.DT_REG
	}
	return unix.DT_UNKNOWN
}

// statAt is statx(2) of a NUL-terminated name in dirfd. unix.Statx would
// allocate and copy the name on every call.
func statAt(dirfd int, cname []byte, flags int, stx *unix.Statx_t) error {
	_, _, errno := unix.Syscall6(unix.SYS_STATX, uintptr(dirfd), uintptr(unsafe.Pointer(&cname[0])),
		uintptr(flags|unix.AT_NO_AUTOMOUNT), statxMask, uintptr(unsafe.Pointer(stx)), 0)
	if errno != 0 {
		return errno
	}
	return nil
}

var emptyCName = []byte{0}

// fstatx is statx(2) of an open descriptor.
func fstatx(fd int, stx *unix.Statx_t) error { return statAt(fd, emptyCName, unix.AT_EMPTY_PATH, stx) }

// openAt is openat(2) of a NUL-terminated name, without unix.Openat's
// copy of the name.
func openAt(dirfd int, cname []byte, flags int) (int, error) {
	fd, _, errno := unix.Syscall6(unix.SYS_OPENAT, uintptr(dirfd), uintptr(unsafe.Pointer(&cname[0])), uintptr(flags), 0, 0, 0)
	if errno != 0 {
		return -1, errno
	}
	return int(fd), nil
}

// fileWant is the group bits a file needs: read and write (read only in
// a read-only tree), and execute when anyone may execute it (chmod g+rwX).
func (w *walker) fileWant(mode uint32) uint32 {
	want := uint32(groupRW)
	if w.readOnly {
		want = groupR
	}
	if mode&anyExec != 0 {
		want |= groupX
	}
	return want
}

// dirWant is the group bits a directory needs.
func (w *walker) dirWant() uint32 {
	if w.readOnly {
		return groupR | groupX
	}
	return groupRWX
}

// aclWant is the permission the default ACL gives the group.
func (w *walker) aclWant() uint16 {
	if w.readOnly {
		return permRX
	}
	return permRWX
}

// pipMetadata reports files pip writes 0644 on purpose (a temporary file,
// then chmod). Leaving them so is harmless: upgrading or uninstalling the
// package only deletes them, which needs write permission on the
// dist-info directory, not on the file. Reporting them would make every
// pip install look like drift.
func pipMetadata(dir string, name []byte) bool {
	if !strings.HasSuffix(dir, ".dist-info") {
		return false
	}
	switch string(name) {
	case "RECORD", "INSTALLER", "direct_url.json":
		return true
	}
	return false
}

// file checks the regular file cname (NUL-terminated) in j, whose statx
// is in k.stx.
func (k *worker) file(j dirJob, cname []byte) {
	name := cname[:len(cname)-1]
	k.t.files++
	k.w.seen.Add(1)
	k.t.bytes += int64(k.stx.Blocks) * 512
	mode := uint32(k.stx.Mode)
	var found kindSet
	if k.stx.Gid != k.w.gid {
		found.add(WrongGroup)
	}
	if want := k.w.fileWant(mode); mode&want != want && !pipMetadata(j.rel, name) {
		found.add(FileMode)
	}
	if found == 0 {
		return
	}
	if k.w.fix {
		k.fixFile(j, cname, found)
	}
	k.found(found, j.rel, name)
}

// fixFile repairs a file through a descriptor, so a file swapped for a
// symlink after the check is left alone.
func (k *worker) fixFile(j dirJob, cname []byte, found kindSet) {
	name := cname[:len(cname)-1]
	ino := k.stx.Ino
	fd, err := openAt(j.fd, cname, fileOpenFlags)
	if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ELOOP) {
		return // removed or replaced by a symlink since it was checked
	}
	if err != nil {
		k.fail(j.rel, name, err)
		return
	}
	defer unix.Close(fd)
	if err := fstatx(fd, &k.stx); err != nil {
		k.fail(j.rel, name, err)
		return
	}
	if k.stx.Ino != ino || uint32(k.stx.Mode)&unix.S_IFMT != unix.S_IFREG {
		return // replaced since it was checked; the next check looks again
	}
	if k.stx.Nlink > 1 {
		k.fail(j.rel, name, errHardLinked)
		return
	}
	if found.has(WrongGroup) {
		if err := unix.Fchown(fd, -1, int(k.w.gid)); err != nil {
			k.fail(j.rel, name, fmt.Errorf("chgrp: %w", err))
			return
		}
		k.t.fixed[WrongGroup]++
	}
	if found.has(FileMode) {
		// Setuid and setgid bits are dropped: chown drops them anyway, and a
		// group-writable setuid file would be a hole.
		mode := uint32(k.stx.Mode)
		if err := unix.Fchmod(fd, mode&0o777|k.w.fileWant(mode)); err != nil {
			k.fail(j.rel, name, fmt.Errorf("chmod: %w", err))
			return
		}
		k.t.fixed[FileMode]++
	}
}

// dir checks, and repairs, the directory j, whose statx is in k.stx.
func (k *worker) dir(j dirJob) {
	mode := uint32(k.stx.Mode)
	var found kindSet
	if k.stx.Gid != k.w.gid {
		found.add(WrongGroup)
	}
	if want := k.w.dirWant(); mode&want != want {
		found.add(DirMode)
	}
	if mode&unix.S_ISGID == 0 {
		found.add(NoSetgid)
	}
	cur, ok := k.defaultACL(j)
	if !ok {
		found.add(NoDefaultACL)
	}
	if found == 0 {
		return
	}
	if k.w.fix {
		k.fixDir(j, mode, cur, &found)
	}
	k.found(found, j.rel, nil)
}

// defaultACL reads the default ACL of j and reports whether it gives the
// group rwx. On a filesystem without ACLs it reports true: there is
// nothing to fix.
func (k *worker) defaultACL(j dirJob) (acl, bool) {
	if k.w.noACL.Load() {
		return nil, true
	}
	n, err := unix.Fgetxattr(j.fd, xattrDefaultACL, k.xattr)
	if errors.Is(err, unix.ERANGE) {
		if n, err = unix.Fgetxattr(j.fd, xattrDefaultACL, nil); err == nil {
			k.xattr = make([]byte, n)
			n, err = unix.Fgetxattr(j.fd, xattrDefaultACL, k.xattr)
		}
	}
	switch {
	case errors.Is(err, unix.ENODATA):
		return nil, false
	case errors.Is(err, unix.EOPNOTSUPP):
		k.w.aclUnsupported()
		return nil, true
	case err != nil:
		k.fail(j.rel, nil, fmt.Errorf("read default ACL: %w", err))
		return nil, true
	}
	cur, err := decodeACL(k.xattr[:n])
	if err != nil {
		return nil, false // rewritten whole by a repair
	}
	return cur, cur.groupHas(k.w.aclWant())
}

func (k *worker) fixDir(j dirJob, mode uint32, cur acl, found *kindSet) {
	if found.has(WrongGroup) {
		if err := unix.Fchown(j.fd, -1, int(k.w.gid)); err != nil {
			k.fail(j.rel, nil, fmt.Errorf("chgrp: %w", err))
			return
		}
		k.t.fixed[WrongGroup]++
	}
	if found.has(DirMode) || found.has(NoSetgid) {
		if err := unix.Fchmod(j.fd, mode&0o7777|unix.S_ISGID|k.w.dirWant()); err != nil {
			k.fail(j.rel, nil, fmt.Errorf("chmod: %w", err))
			return
		}
		for _, kind := range []Kind{DirMode, NoSetgid} {
			if found.has(kind) {
				k.t.fixed[kind]++
			}
		}
	}
	if found.has(NoDefaultACL) {
		err := k.w.setxattr(j.fd, xattrDefaultACL, cur.withGroup(k.w.aclWant()).encode(), 0)
		switch {
		case errors.Is(err, unix.EOPNOTSUPP):
			k.w.aclUnsupported()
			found.drop(NoDefaultACL)
		case err != nil:
			k.fail(j.rel, nil, fmt.Errorf("set default ACL: %w", err))
		default:
			k.t.fixed[NoDefaultACL]++
		}
	}
}

// aclUnsupported switches ACL handling off for the rest of the walk (one
// walk never leaves the root's filesystem) and warns once.
func (w *walker) aclUnsupported() {
	if w.noACL.CompareAndSwap(false, true) {
		w.log.Warn("the filesystem does not support POSIX ACLs: relying on setgid directories and group modes only;"+
			" files members create outside hubd-spawned servers (umask 0002) may need `hubd env repair`", "path", w.root)
	}
}

// found counts the kinds found on one path and keeps it as an example.
func (k *worker) found(found kindSet, dir string, name []byte) {
	if found == 0 {
		return
	}
	for kind := range numKinds {
		if found.has(kind) {
			k.t.problems[kind]++
		}
	}
	k.w.example(found, dir, name)
}

// example records path as an example of each kind in found that still has
// room; the path string is only built when it is kept.
func (w *walker) example(found kindSet, dir string, name []byte) {
	if w.maxEx <= 0 {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	p := ""
	for kind := range numKinds {
		if !found.has(kind) || len(w.rep.Examples[kind]) >= w.maxEx {
			continue
		}
		if p == "" {
			p = w.abs(dir, string(name))
		}
		w.rep.Examples[kind] = append(w.rep.Examples[kind], p)
	}
}

func (w *walker) abs(dir, name string) string {
	p := w.root
	for _, part := range []string{dir, name} {
		if part != "" {
			p = strings.TrimSuffix(p, "/") + "/" + part
		}
	}
	return p
}

// fail counts a path that could not be checked or repaired.
func (k *worker) fail(dir string, name []byte, err error) {
	k.t.errors++
	w := k.w
	w.log.Debug("shared environment walk", "path", w.abs(dir, string(name)), "err", err)
	if w.maxEx <= 0 {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.rep.ErrorExamples) < w.maxEx {
		w.rep.ErrorExamples = append(w.rep.ErrorExamples, w.abs(dir, string(name))+": "+err.Error())
	}
}
