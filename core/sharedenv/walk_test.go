package sharedenv

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"maps"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/hubd/hubd/internal/testutil"
)

// publicTempDir is a temporary directory other users can traverse
// (t.TempDir is 0700 under root).
func publicTempDir(t testing.TB, pattern string) string {
	t.Helper()
	dir, err := os.MkdirTemp("", pattern)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// treeGroup is an existing group to stand for the members group in tests
// that need no real members.
func treeGroup(t testing.TB) (string, int) {
	t.Helper()
	g, err := user.LookupGroup("users")
	if err != nil {
		t.Fatalf("group users: %v", err)
	}
	gid, _ := strconv.Atoi(g.Gid)
	return g.Name, gid
}

// put creates a file or (name ending in /) a directory with exactly mode
// and gid, and the shared default ACL exactly when withACL.
func put(t testing.TB, root, name string, mode uint32, gid int, withACL bool) string {
	t.Helper()
	p := filepath.Join(root, name)
	var err error
	if strings.HasSuffix(name, "/") {
		err = os.Mkdir(p, 0o700)
	} else {
		err = os.WriteFile(p, []byte("x\n"), 0o600)
	}
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(p, 0, gid); err != nil {
		t.Fatal(err)
	}
	// unix.Chmod: os.Chmod does not take raw setuid/setgid bits.
	if err := unix.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
	if withACL {
		err = unix.Setxattr(p, xattrDefaultACL, sharedDefaultACL.encode(), 0)
	} else if err = unix.Removexattr(p, xattrDefaultACL); errors.Is(err, unix.ENODATA) {
		err = nil // nothing inherited (files never inherit a default ACL)
	}
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func modeOf(t testing.TB, p string) (uint32, uint32) {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Lstat(p, &st); err != nil {
		t.Fatal(err)
	}
	return st.Mode & 0o7777, st.Gid
}

func newTestEnv(path, group string, log *bytes.Buffer) *Env {
	o := Options{Path: path, Group: group}
	if log != nil {
		o.Logger = slog.New(slog.NewTextHandler(log, nil))
	}
	return New(o)
}

// TestEnvDriftClassification builds a tree with every kind of drift (as
// root, so owners and modes can be anything) and checks what Check finds,
// what Repair fixes and what it refuses to touch.
func TestEnvDriftClassification(t *testing.T) {
	testutil.NeedRoot(t)
	group, gid := treeGroup(t)
	base := publicTempDir(t, "hubtest-sharedenv-unit-")
	root := put(t, base, "env/", 0o2775, gid, true)
	outside := put(t, base, "secret", 0o600, 0, false)
	outsideDir := put(t, base, "outside/", 0o755, 0, false)
	outsideFile := put(t, outsideDir, "f", 0o644, 0, false)

	put(t, root, "good.txt", 0o664, gid, false)
	put(t, root, "good-script", 0o775, gid, false)
	roFile := put(t, root, "ro.txt", 0o644, gid, false)         // cp of a 0644 file
	execFile := put(t, root, "tool", 0o764, gid, false)         // group may not run it
	moved := put(t, root, "moved", 0o600, 0, false)             // mv of a 0600 file
	rootGroup := put(t, root, "rootgroup.txt", 0o664, 0, false) // made elsewhere as root
	dist := put(t, root, "pkg-1.0.dist-info/", 0o2775, gid, true)
	record := put(t, dist, "RECORD", 0o644, gid, false) // pip's own 0644: not drift
	metadata := put(t, dist, "METADATA", 0o644, gid, false)
	sub := put(t, root, "sub/", 0o755, gid, false) // mv of a directory
	put(t, sub, "inner.py", 0o664, gid, false)
	sub2 := put(t, root, "sub2/", 0o2775, 0, false)
	if err := unix.Setxattr(sub2, xattrDefaultACL, styleACL.encode(), 0); err != nil { // g::r-x
		t.Fatal(err)
	}
	hard := put(t, root, "hard", 0o644, gid, false)
	if err := os.Link(hard, filepath.Join(root, "hard2")); err != nil {
		t.Fatal(err)
	}
	for link, target := range map[string]string{"link-file": outside, "link-dir": outsideDir} {
		if err := os.Symlink(target, filepath.Join(root, link)); err != nil {
			t.Fatal(err)
		}
	}
	if err := unix.Mkfifo(filepath.Join(root, "fifo"), 0o600); err != nil {
		t.Fatal(err)
	}

	env := newTestEnv(root, group, nil)
	ctx := context.Background()
	rep, err := env.Check(ctx, 10)
	if err != nil {
		t.Fatal(err)
	}
	wantProblems := map[Kind]int{
		WrongGroup:   3, // moved, rootgroup.txt, sub2
		FileMode:     6, // ro.txt, tool, moved, METADATA, hard, hard2
		DirMode:      1, // sub
		NoSetgid:     1, // sub
		NoDefaultACL: 2, // sub, sub2
	}
	if !maps.Equal(rep.Problems, wantProblems) {
		t.Errorf("Problems = %v, want %v", rep.Problems, wantProblems)
	}
	if rep.Dirs != 4 || rep.Files != 11 || rep.Symlinks != 2 || !rep.ACLSupported || rep.Errors != 0 {
		t.Errorf("counts: dirs %d files %d symlinks %d acl %v errors %d %v",
			rep.Dirs, rep.Files, rep.Symlinks, rep.ACLSupported, rep.Errors, rep.ErrorExamples)
	}
	if want := []string{moved, rootGroup, sub2}; !slices.Equal(rep.Examples[WrongGroup], want) {
		t.Errorf("WrongGroup examples = %v, want %v", rep.Examples[WrongGroup], want)
	}
	if ex := rep.Examples[FileMode]; !slices.Contains(ex, roFile) || !slices.Contains(ex, metadata) || slices.Contains(ex, record) {
		t.Errorf("FileMode examples = %v", ex)
	}
	if few, err := env.Check(ctx, 1); err != nil || len(few.Examples[FileMode]) != 1 || few.Problems[FileMode] != 6 {
		t.Errorf("Check with 1 example: %v %v, err %v", few.Examples, few.Problems, err)
	}

	var walked []int
	fixer := New(Options{Path: root, Group: group, Walked: func(n int) { walked = append(walked, n) }})
	rep, err = fixer.Repair(ctx, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(walked) == 0 || walked[len(walked)-1] != rep.Dirs+rep.Files+rep.Symlinks || !slices.IsSorted(walked) {
		t.Errorf("progress %v, want rising counts ending at %d", walked, rep.Dirs+rep.Files+rep.Symlinks)
	}
	wantFixed := maps.Clone(wantProblems)
	wantFixed[FileMode] -= 2 // the hard links
	if !maps.Equal(rep.Fixed, wantFixed) || rep.Errors != 2 || len(rep.ErrorExamples) != 2 ||
		!strings.Contains(rep.ErrorExamples[0], "hard links") {
		t.Errorf("Repair: fixed %v, want %v; errors %d %v", rep.Fixed, wantFixed, rep.Errors, rep.ErrorExamples)
	}
	for p, want := range map[string][2]uint32{
		roFile: {0o664, uint32(gid)}, execFile: {0o774, uint32(gid)}, moved: {0o660, uint32(gid)},
		rootGroup: {0o664, uint32(gid)}, metadata: {0o664, uint32(gid)}, record: {0o644, uint32(gid)},
		sub:  {0o2775, uint32(gid)},
		sub2: {0o2775, uint32(gid)}, hard: {0o644, uint32(gid)},
		outside: {0o600, 0}, outsideDir: {0o755, 0}, outsideFile: {0o644, 0},
	} {
		if mode, g := modeOf(t, p); mode != want[0] || g != want[1] {
			t.Errorf("%s: mode %04o gid %d, want %04o gid %d", p, mode, g, want[0], want[1])
		}
	}
	for _, d := range []string{sub, sub2} {
		buf := make([]byte, 256)
		n, err := unix.Getxattr(d, xattrDefaultACL, buf)
		if err != nil {
			t.Fatalf("%s: %v", d, err)
		}
		got, _ := decodeACL(buf[:n])
		if !got.groupHas(permRWX) {
			t.Errorf("%s: default ACL after repair %+v", d, got)
		}
	}

	rep, err = env.Check(ctx, 10)
	if err != nil {
		t.Fatal(err)
	}
	if !maps.Equal(rep.Problems, map[Kind]int{FileMode: 2}) {
		t.Errorf("after repair: %v %v", rep.Problems, rep.Examples)
	}
}

func TestEnvRepairSetuidFileDropsSetuid(t *testing.T) {
	testutil.NeedRoot(t)
	group, gid := treeGroup(t)
	base := publicTempDir(t, "hubtest-sharedenv-unit-")
	root := put(t, base, "env/", 0o2775, gid, true)
	f := put(t, root, "suid", 0o4755, gid, false) // group cannot write it
	if _, err := newTestEnv(root, group, nil).Repair(context.Background(), 0); err != nil {
		t.Fatal(err)
	}
	if mode, _ := modeOf(t, f); mode != 0o775 {
		t.Errorf("mode %04o, want 0775", mode)
	}
}

// TestEnvRepairWithoutACLSupport takes the EOPNOTSUPP branch of setting the
// default ACL through an injected setxattr (the integration test also runs
// on a ramfs, where reading the ACL already fails).
func TestEnvRepairWithoutACLSupport(t *testing.T) {
	testutil.NeedRoot(t)
	group, gid := treeGroup(t)
	base := publicTempDir(t, "hubtest-sharedenv-unit-")
	root := put(t, base, "env/", 0o755, gid, false)
	sub := put(t, root, "sub/", 0o755, 0, false)
	f := put(t, sub, "f", 0o644, gid, false)

	var logs bytes.Buffer
	env := newTestEnv(root, group, &logs)
	calls := 0
	env.tree.setxattr = func(int, string, []byte, int) error { calls++; return unix.EOPNOTSUPP }
	rep, err := env.Repair(context.Background(), 5)
	if err != nil {
		t.Fatal(err)
	}
	if rep.ACLSupported || rep.Errors != 0 || rep.Problems[NoDefaultACL] != 0 || rep.Remaining() != 0 {
		t.Errorf("report: acl %v errors %d %v problems %v fixed %v", rep.ACLSupported, rep.Errors, rep.ErrorExamples, rep.Problems, rep.Fixed)
	}
	if calls == 0 {
		t.Error("setxattr never called")
	}
	if n := strings.Count(logs.String(), "does not support POSIX ACLs"); n != 1 {
		t.Errorf("warning logged %d times:\n%s", n, logs.String())
	}
	for p, want := range map[string]uint32{root: 0o2775, sub: 0o2775, f: 0o664} {
		if mode, g := modeOf(t, p); mode != want || g != uint32(gid) {
			t.Errorf("%s: mode %04o gid %d, want %04o gid %d", p, mode, g, want, gid)
		}
	}
}

func TestEnvCheckErrors(t *testing.T) {
	ctx := context.Background()
	if _, err := newTestEnv(t.TempDir(), "hubtest-no-such-group", nil).Check(ctx, 1); err == nil ||
		!strings.Contains(err.Error(), "auth.allowed_group") {
		t.Errorf("unknown group: %v", err)
	}
	g, err := user.LookupGroupId(strconv.Itoa(os.Getgid()))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := newTestEnv(filepath.Join(t.TempDir(), "absent"), g.Name, nil).Check(ctx, 1); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("absent env: %v", err)
	}
	canceled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := newTestEnv(t.TempDir(), g.Name, nil).Check(canceled, 1); !errors.Is(err, context.Canceled) {
		t.Errorf("canceled: %v", err)
	}
}
