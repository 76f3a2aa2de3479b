package sharedenv

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"maps"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/hubd/hubd/internal/testutil"
)

const (
	envGroup = "hubtest-env"
	envAlice = "hubtest-env-alice"
	envBob   = "hubtest-env-bob"
)

// members creates the group and its two members, removing what an
// interrupted earlier run left behind first, and removes them at the end.
func members(t *testing.T) {
	t.Helper()
	testutil.NeedRoot(t)
	for _, u := range []string{envAlice, envBob} {
		if _, err := user.Lookup(u); err == nil {
			_ = exec.Command("pkill", "-KILL", "-u", u).Run()
			if out, err := exec.Command("userdel", "--remove", "--force", u).CombinedOutput(); err != nil {
				t.Fatalf("remove leftover %s: %v: %s", u, err, out)
			}
		}
	}
	if _, err := user.LookupGroup(envGroup); err == nil {
		if out, err := exec.Command("groupdel", envGroup).CombinedOutput(); err != nil {
			t.Fatalf("remove leftover group: %v: %s", err, out)
		}
	}
	h := &testutil.Host{}
	t.Cleanup(h.Cleanup)
	if err := h.Group(envGroup); err != nil {
		t.Fatal(err)
	}
	for _, u := range []string{envAlice, envBob} {
		if err := h.User(u, "", envGroup); err != nil {
			t.Fatal(err)
		}
	}
}

// as runs a shell script as a member with the environment a login would
// give (runuser alone keeps root's), umask 022 and the shared env's bin
// first on PATH, as a spawned server has it.
func as(t *testing.T, u string, env *Env, script string) (string, error) {
	t.Helper()
	acct, err := user.Lookup(u)
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("runuser", "-u", u, "--", "env", "-i",
		"PATH="+env.PathPrefix()+":/usr/bin:/bin", "HOME="+acct.HomeDir, "LANG=C.UTF-8",
		"sh", "-ec", "umask 022; cd; "+script).CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

func mustAs(t *testing.T, u string, env *Env, script string) string {
	t.Helper()
	out, err := as(t, u, env, script)
	if err != nil {
		t.Fatalf("as %s: %s: %v\n%s", u, script, err, out)
	}
	return out
}

// find lists what find(1) matches under root: an oracle independent of
// the walker.
func find(t *testing.T, root string, expr ...string) []string {
	t.Helper()
	out, err := exec.Command("find", append([]string{root}, expr...)...).Output()
	if err != nil {
		t.Fatalf("find %v: %v", expr, err)
	}
	return strings.Fields(string(out))
}

// assertShared checks the layout with find and getfacl rather than with
// the code under test.
func assertShared(t *testing.T, root string, withACL bool) {
	t.Helper()
	if bad := find(t, root, "!", "-type", "l", "!", "-group", envGroup); len(bad) > 0 {
		t.Errorf("not group %s: %v", envGroup, bad)
	}
	if bad := find(t, root, "!", "-type", "l", "!", "-perm", "-g+rw",
		"!", "-path", "*.dist-info/RECORD", "!", "-path", "*.dist-info/INSTALLER", "!", "-path", "*.dist-info/direct_url.json"); len(bad) > 0 {
		t.Errorf("not group read-write: %v", bad)
	}
	if bad := find(t, root, "-type", "d", "!", "-perm", "-g+rwxs"); len(bad) > 0 {
		t.Errorf("directories without g+rwxs: %v", bad)
	}
	if !withACL {
		return
	}
	for _, d := range find(t, root, "-type", "d") {
		out, err := exec.Command("getfacl", "-pd", d).Output()
		if err != nil || !strings.Contains(string(out), "\ngroup::rwx\n") {
			t.Errorf("getfacl -d %s: %v\n%s", d, err, out)
			return
		}
	}
}

// writePackage writes the source of a tiny package, readable by everyone.
func writePackage(t *testing.T, dir, version string) {
	t.Helper()
	files := map[string]string{
		"src/tinylab/__init__.py": "__version__ = '" + version + "'\ndef main(): print('tinylab', __version__)\n",
		"pyproject.toml": "[build-system]\nrequires = [\"setuptools>=61\"]\nbuild-backend = \"setuptools.build_meta\"\n" +
			"[project]\nname = \"tinylab\"\nversion = \"" + version + "\"\n[project.scripts]\ntinylab = \"tinylab:main\"\n",
	}
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if out, err := exec.Command("chmod", "-R", "a+rX", dir).CombinedOutput(); err != nil {
		t.Fatalf("chmod: %v: %s", err, out)
	}
}

func inode(t *testing.T, p string) uint64 {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Stat(p, &st); err != nil {
		t.Fatal(err)
	}
	return st.Ino
}

func TestEnvSharedByTwoMembers(t *testing.T) {
	members(t)
	base := publicTempDir(t, "hubtest-sharedenv-")
	ctx := context.Background()
	var logs bytes.Buffer
	var steps []string
	opts := Options{
		Path: filepath.Join(base, "env"), Group: envGroup, Python: "/usr/bin/python3", SystemSitePackages: true,
		KernelName: "hubtest-shared", KernelDisplayName: "Shared (hubd)", KernelSpecDir: filepath.Join(base, "share", "kernels"),
		Logger: slog.New(slog.NewTextHandler(&logs, nil)), Progress: func(s string) { steps = append(steps, s) },
	}
	env := New(opts)
	res, err := env.Init(ctx)
	if err != nil {
		t.Fatalf("Init: %v\n%s", err, logs.String())
	}
	if !res.Created || !res.KernelWritten || !res.IPyKernel || !res.ACLSupported || !res.Healthy() || len(steps) != 4 {
		t.Errorf("Init: created %v kernel %v ipykernel %v acl %v; problems %v fixed %v errors %v; steps %q",
			res.Created, res.KernelWritten, res.IPyKernel, res.ACLSupported, res.Problems, res.Fixed, res.ErrorExamples, steps)
	}
	if res.Fixed[FileMode] == 0 {
		t.Error("venv left every file group-writable: the repair pass after it was not exercised")
	}
	assertShared(t, opts.Path, true)

	// kernel.json: valid, runs the env's python, found by jupyter_client.
	specPath := env.KernelSpecPath()
	data, err := os.ReadFile(specPath)
	if err != nil {
		t.Fatal(err)
	}
	var spec kernelSpec
	if err := json.Unmarshal(data, &spec); err != nil {
		t.Fatalf("kernel.json: %v\n%s", err, data)
	}
	wantArgv := []string{opts.Path + "/bin/python", "-m", "ipykernel_launcher", "-f", "{connection_file}"}
	if !slices.Equal(spec.Argv, wantArgv) || spec.DisplayName != "Shared (hubd)" || spec.Language != "python" {
		t.Errorf("kernel.json = %s", data)
	}
	if mode, _ := modeOf(t, specPath); mode != 0o644 {
		t.Errorf("kernel.json mode %04o", mode)
	}
	// jupyter_client looks for kernels in $JUPYTER_PATH/kernels.
	cmd := exec.Command("/usr/bin/python3", "-c",
		"from jupyter_client.kernelspec import KernelSpecManager as M; s = M().get_kernel_spec('hubtest-shared'); print(s.display_name, s.argv[0])")
	cmd.Env = []string{"JUPYTER_PATH=" + filepath.Join(base, "share"), "PATH=" + systemPath}
	if out, err := cmd.CombinedOutput(); err != nil || strings.TrimSpace(string(out)) != "Shared (hubd) "+opts.Path+"/bin/python" {
		t.Errorf("jupyter_client does not find the kernel: %v\n%s", err, out)
	}

	// Init again: nothing to do, the venv is kept, kernel.json untouched.
	cfgIno, specIno := inode(t, filepath.Join(opts.Path, "pyvenv.cfg")), inode(t, specPath)
	res, err = env.Init(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if res.Created || res.KernelWritten || res.Drift() != 0 || inode(t, filepath.Join(opts.Path, "pyvenv.cfg")) != cfgIno || inode(t, specPath) != specIno {
		t.Errorf("second Init changed things: created %v kernel %v problems %v", res.Created, res.KernelWritten, res.Problems)
	}
	// A new display name replaces kernel.json by rename, leaving no temp file.
	renamed := opts
	renamed.KernelDisplayName = "Shared (renamed)"
	if res, err = New(renamed).Init(ctx); err != nil || !res.KernelWritten {
		t.Fatalf("Init with a new display name: written %v, %v", res.KernelWritten, err)
	}
	if inode(t, specPath) == specIno {
		t.Error("kernel.json rewritten in place, not replaced atomically")
	}
	if ents, _ := os.ReadDir(filepath.Dir(specPath)); len(ents) != 1 {
		t.Errorf("kernel dir holds %d entries, want only kernel.json", len(ents))
	}

	// Alice installs a package built from her own copy of the source, Bob
	// upgrades it and uninstalls it; all offline, each with umask 022.
	src := filepath.Join(base, "src")
	writePackage(t, filepath.Join(src, "tinylab-0.1"), "0.1")
	writePackage(t, filepath.Join(src, "tinylab-0.2"), "0.2")
	build := func(version string) string {
		return "W=$(mktemp -d); cp -r " + src + "/tinylab-" + version + " $W/; " +
			"pip wheel -q --no-deps --no-index --no-build-isolation -w $W/dist $W/tinylab-" + version + "; " +
			"pip install -q --no-index -U $W/dist/*.whl; rm -rf $W; tinylab"
	}
	if out := mustAs(t, envAlice, env, build("0.1")); !strings.HasSuffix(out, "tinylab 0.1") {
		t.Errorf("alice's install: %s", out)
	}
	if rep, err := env.Check(ctx, 5); err != nil || !rep.Healthy() {
		t.Errorf("check after a member's pip install: %v %v %v", rep.Problems, rep.Examples, err)
	}
	if out := mustAs(t, envBob, env, build("0.2")); !strings.HasSuffix(out, "tinylab 0.2") {
		t.Errorf("bob's upgrade: %s", out)
	}
	if old, _ := filepath.Glob(filepath.Join(opts.Path, "lib", "python*", "site-packages", "tinylab-0.1.dist-info")); len(old) != 0 {
		t.Errorf("alice's 0.1 metadata survived bob's upgrade: %v", old)
	}
	mustAs(t, envBob, env, "pip uninstall -q -y tinylab; ! python -c 'import tinylab' 2>/dev/null; ! test -e "+env.PathPrefix()+"/tinylab")
	assertShared(t, opts.Path, true)

	// Drift: Alice moves in a 0600 file and a directory from her home and
	// copies in a 0644 file; Bob cannot write what arrived.
	sitePkgs, _ := filepath.Glob(filepath.Join(opts.Path, "lib", "python*", "site-packages"))
	if len(sitePkgs) != 1 {
		t.Fatalf("site-packages: %v", sitePkgs)
	}
	sp := sitePkgs[0]
	mustAs(t, envAlice, env, "(umask 077; echo moved > moved.txt); mv moved.txt "+sp+"/; "+
		"mkdir pkgdir; echo x > pkgdir/x.py; mv pkgdir "+sp+"/; echo c > c.txt; cp c.txt "+sp+"/copied.txt")
	moved := filepath.Join(sp, "moved.txt")
	if _, err := as(t, envBob, env, "echo bob >> "+moved); err == nil {
		t.Fatal("bob could write the moved-in 0600 file before repair: the drift setup is wrong")
	}
	rep, err := env.Check(ctx, 5)
	if err != nil {
		t.Fatal(err)
	}
	want := map[Kind]int{WrongGroup: 3, FileMode: 3, DirMode: 1, NoSetgid: 1, NoDefaultACL: 1}
	if !maps.Equal(rep.Problems, want) || !slices.Contains(rep.Examples[FileMode], moved) ||
		!slices.Equal(rep.Examples[NoDefaultACL], []string{filepath.Join(sp, "pkgdir")}) {
		t.Errorf("check: problems %v (want %v), examples %v", rep.Problems, want, rep.Examples)
	}
	rep, err = env.Repair(ctx, 5)
	if err != nil {
		t.Fatal(err)
	}
	if !maps.Equal(rep.Fixed, want) || rep.Errors != 0 {
		t.Errorf("repair fixed %v, want %v; errors %v", rep.Fixed, want, rep.ErrorExamples)
	}
	assertShared(t, opts.Path, true)
	mustAs(t, envBob, env, "echo bob >> "+moved+"; echo bob >> "+sp+"/copied.txt; echo y > "+sp+"/pkgdir/y.py")
	if got := mustAs(t, envBob, env, "stat -c %a:%G "+sp+"/pkgdir/y.py"); got != "664:"+envGroup {
		t.Errorf("new file in the repaired directory: %s (the default ACL should override umask 022)", got)
	}

	st, err := env.Status(ctx, 3)
	if err != nil {
		t.Fatal(err)
	}
	if !st.Exists || !strings.HasPrefix(st.PythonVersion, "3.") || !st.IPyKernel || st.Packages < 1 ||
		!st.KernelRegistered || !st.Health.Healthy() || st.Health.Files < 100 || st.Health.Bytes <= 0 {
		t.Errorf("status: %+v", st)
	}
}

// TestEnvInitWithoutACLs initialises an environment on a ramfs, which
// refuses POSIX ACLs (EOPNOTSUPP): Init warns and relies on setgid and
// modes, and members' files are group-writable with umask 0002 only.
func TestEnvInitWithoutACLs(t *testing.T) {
	members(t)
	base := publicTempDir(t, "hubtest-sharedenv-noacl-")
	mnt := filepath.Join(base, "ramfs")
	if err := os.Mkdir(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "ramfs", "-o", "mode=0755", "hubtest-ramfs", mnt).CombinedOutput(); err != nil {
		t.Fatalf("mount ramfs: %v: %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", mnt).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", mnt, err, out)
		}
	})
	var logs bytes.Buffer
	env := New(Options{
		Path: filepath.Join(mnt, "env"), Group: envGroup, Python: "/usr/bin/python3", SystemSitePackages: true,
		KernelName: "hubtest-shared", KernelDisplayName: "Shared", KernelSpecDir: filepath.Join(base, "kernels"),
		Logger: slog.New(slog.NewTextHandler(&logs, nil)),
	})
	res, err := env.Init(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if res.ACLSupported || !res.Healthy() || !strings.Contains(logs.String(), "does not support POSIX ACLs") {
		t.Errorf("Init on ramfs: acl %v problems %v errors %v\n%s", res.ACLSupported, res.Problems, res.ErrorExamples, logs.String())
	}
	assertShared(t, filepath.Join(mnt, "env"), false)

	bin := env.PathPrefix()
	mustAs(t, envAlice, env, "(umask 002; echo a > "+bin+"/shared.txt); echo b > "+bin+"/private.txt")
	if got := mustAs(t, envBob, env, "echo bob >> "+bin+"/shared.txt; stat -c %a:%G "+bin+"/private.txt"); got != "644:"+envGroup {
		t.Errorf("umask 022 file on a no-ACL filesystem: %s, want 644 with the group from setgid", got)
	}
	rep, err := env.Check(context.Background(), 5)
	if err != nil {
		t.Fatal(err)
	}
	if !maps.Equal(rep.Problems, map[Kind]int{FileMode: 1}) || rep.ACLSupported {
		t.Errorf("check: %v %v acl %v", rep.Problems, rep.Examples, rep.ACLSupported)
	}
}
