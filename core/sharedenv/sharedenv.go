// Package sharedenv manages directory trees a group shares: setgid
// directories and a default POSIX ACL give the group rwx on everything
// created in them, whoever creates it (Tree). Check finds what drifted
// from that layout (files moved in with mv or cp, installs made as root)
// and Repair fixes it. The Python environment every member of the hub's
// group can install into is one such tree (Env): a venv registered as a
// system-wide Jupyter kernel; the shares of core/shares are others.
//
// Init and Repair change ownership and so run as root; Check and Status
// only read and work as any user who can read the tree. Members must never
// be trusted by root: see walk.go for how the walk avoids following them.
package sharedenv

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/hubd/hubd/core/config"
	"github.com/hubd/hubd/internal/fsutil"
)

// systemPath is the PATH tools run with: root's own PATH may start with a
// pyenv or similar interpreter that members cannot use, and that does not
// see Debian's jupyter modules.
const systemPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// Options describes the environment.
type Options struct {
	// Path is the venv directory, e.g. /opt/hubd/env.
	Path string
	// Group is the members group that owns and may write everything.
	Group string
	// Python is the interpreter the venv is created from.
	Python             string
	SystemSitePackages bool
	// KernelName is the kernel spec's directory name under KernelSpecDir;
	// KernelDisplayName is what notebook UIs show.
	KernelName, KernelDisplayName, KernelSpecDir string
	Logger                                       *slog.Logger
	// Progress, when set, gets one line per step of Init.
	Progress func(string)
	// Walked, when set, gets the number of paths a check or repair has
	// seen so far, about ten times a second and once at the end.
	Walked func(paths int)
}

// OptionsFromConfig takes the environment's settings from hubd's
// configuration; the members group is auth.allowed_group.
func OptionsFromConfig(c config.Config, log *slog.Logger) Options {
	s := c.SharedEnv
	return Options{
		Path: s.Path, Group: c.Auth.AllowedGroup, Python: s.Python, SystemSitePackages: s.SystemSitePackages,
		KernelName: s.KernelName, KernelDisplayName: s.KernelDisplayName, KernelSpecDir: s.KernelSpecDirectory,
		Logger: log,
	}
}

// Tree is a directory tree its group shares.
type Tree struct {
	Path, Group string
	// ReadOnly trees give the group read and search only (a member's
	// folder in the public area); others give rwx.
	ReadOnly bool
	Logger   *slog.Logger
	// Walked, when set, gets the number of paths a check or repair has
	// seen so far, every tenth of a second and at the end.
	Walked   func(paths int)
	setxattr setxattrFunc
}

func (t *Tree) logger() *slog.Logger {
	if t.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return t.Logger
}

// GID is the numeric id of the tree's group.
func (t *Tree) GID() (uint32, error) {
	g, err := user.LookupGroup(t.Group)
	if err != nil {
		return 0, fmt.Errorf("group %q: %w", t.Group, err)
	}
	id, err := strconv.ParseUint(g.Gid, 10, 32)
	if err != nil {
		return 0, fmt.Errorf("group %q has gid %q: %w", t.Group, g.Gid, err)
	}
	return uint32(id), nil
}

// walk checks, or with fix repairs, the whole tree.
func (t *Tree) walk(ctx context.Context, gid uint32, fix bool, maxExamples int) (Report, error) {
	set := t.setxattr
	if set == nil {
		set = unix.Fsetxattr
	}
	w := &walker{ctx: ctx, root: t.Path, gid: gid, readOnly: t.ReadOnly, fix: fix, maxEx: maxExamples, log: t.logger(), setxattr: set, walked: t.Walked}
	rep, err := w.run()
	rep.Group = t.Group
	return rep, err
}

// Check walks the tree and reports drift from the shared layout, with up
// to maxExamples paths per kind. It changes nothing.
func (t *Tree) Check(ctx context.Context, maxExamples int) (Report, error) {
	gid, err := t.GID()
	if err != nil {
		return Report{}, err
	}
	return t.walk(ctx, gid, false, maxExamples)
}

// Repair fixes drift: group ownership, group rw(x) on files, group rwx and
// setgid on directories, and the default ACL (read and search only in a
// read-only tree). Symlinks are never followed or changed, and files with
// several hard links are reported, not changed.
func (t *Tree) Repair(ctx context.Context, maxExamples int) (Report, error) {
	gid, err := t.GID()
	if err != nil {
		return Report{}, err
	}
	return t.walk(ctx, gid, true, maxExamples)
}

// Create makes the tree's top directory with mode (plus setgid), owned by
// owner (-1 = root) and the group, with the default ACL, whatever the
// umask. An existing directory gets the same ownership and mode.
func (t *Tree) Create(mode os.FileMode, owner int) error {
	gid, err := t.GID()
	if err != nil {
		return err
	}
	if err := mkdirAll(t.Path, mode); err != nil {
		return err
	}
	if owner < 0 {
		owner = 0
	}
	if err := os.Lchown(t.Path, owner, int(gid)); err != nil {
		return fmt.Errorf("chown %s: %w", t.Path, err)
	}
	if err := os.Chmod(t.Path, mode|os.ModeSetgid); err != nil {
		return fmt.Errorf("chmod %s: %w", t.Path, err)
	}
	_, err = t.walk(context.Background(), gid, true, 0)
	return err
}

// Env is one shared environment.
type Env struct {
	opts Options
	log  *slog.Logger
	tree Tree
}

// New returns the environment described by o; nothing is touched yet.
func New(o Options) *Env {
	log := o.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	log = log.With("component", "sharedenv")
	return &Env{opts: o, log: log, tree: Tree{Path: o.Path, Group: o.Group, Logger: log, Walked: o.Walked}}
}

// PathPrefix is the directory spawned servers get first on PATH, so that
// `pip` and `python` in a terminal are the shared environment's.
func (e *Env) PathPrefix() string { return filepath.Join(e.opts.Path, "bin") }

// Python is the environment's interpreter.
func (e *Env) Python() string { return filepath.Join(e.opts.Path, "bin", "python") }

// KernelSpecPath is the kernel.json that registers the environment.
func (e *Env) KernelSpecPath() string {
	return filepath.Join(e.opts.KernelSpecDir, e.opts.KernelName, "kernel.json")
}

func (e *Env) progress(msg string) {
	if e.opts.Progress != nil {
		e.opts.Progress(msg)
	}
}

func (e *Env) gid() (uint32, error) {
	gid, err := e.tree.GID()
	if err != nil {
		return 0, fmt.Errorf("members %w: create it (`hubd setup` does) or set auth.allowed_group", err)
	}
	return gid, nil
}

// walk checks, or with fix repairs, the whole environment.
func (e *Env) walk(ctx context.Context, fix bool, maxExamples int) (Report, error) {
	gid, err := e.gid()
	if err != nil {
		return Report{}, err
	}
	rep, err := e.tree.walk(ctx, gid, fix, maxExamples)
	if errors.Is(err, fs.ErrNotExist) {
		return rep, fmt.Errorf("shared environment %s: %w: create it with `sudo hubd env init` or set shared_env.path", e.opts.Path, err)
	}
	if err != nil {
		return rep, fmt.Errorf("shared environment %s: %w", e.opts.Path, err)
	}
	return rep, nil
}

// Check walks the environment and reports drift from the shared layout,
// with up to maxExamples paths per kind. It changes nothing.
func (e *Env) Check(ctx context.Context, maxExamples int) (Report, error) {
	return e.walk(ctx, false, maxExamples)
}

// Repair fixes drift: group ownership, group rw(x) on files, group rwx and
// setgid on directories, and the default ACL. Symlinks are never followed
// or changed, and files with several hard links are reported, not changed.
func (e *Env) Repair(ctx context.Context, maxExamples int) (Report, error) {
	r, err := e.walk(ctx, true, maxExamples)
	if err == nil {
		e.log.Info("repaired shared environment", "path", e.opts.Path, "fixed", r.Drift()-r.Remaining(), "errors", r.Errors)
	}
	return r, err
}

// InitResult is what Init did.
type InitResult struct {
	// Report is the final repair pass over the environment.
	Report
	// Created is true when the venv was created now, false when an
	// existing one was kept.
	Created bool
	// KernelWritten is true when kernel.json was written or replaced.
	KernelWritten bool
	// IPyKernel is false when ipykernel cannot be imported in the
	// environment, so the registered kernel would not start.
	IPyKernel bool
}

// Init creates the environment, or brings an existing one back to the
// shared layout, and registers it as a Jupyter kernel. It is idempotent.
func (e *Env) Init(ctx context.Context) (InitResult, error) {
	var res InitResult
	o := e.opts
	gid, err := e.gid()
	if err != nil {
		return res, err
	}
	if _, err := os.Stat(o.Python); err != nil {
		return res, fmt.Errorf("python interpreter: %w: install python3-venv or set shared_env.python", err)
	}
	if err := reachable(filepath.Dir(o.Path), gid); err != nil {
		return res, err
	}
	if err := mkdirAll(o.Path, 0o775); err != nil {
		return res, err
	}
	exists, err := isVenv(o.Path)
	if err != nil {
		return res, err
	}
	if !exists {
		// Setgid and the default ACL go on first, so everything the venv
		// creates inherits them.
		e.progress("preparing " + o.Path)
		if _, err := e.walk(ctx, true, 0); err != nil {
			return res, err
		}
		e.progress("creating the Python environment (python -m venv)")
		if err := e.createVenv(ctx); err != nil {
			return res, err
		}
		res.Created = true
	}
	// venv/ensurepip chmod a few files (RECORD, activate scripts) without
	// group write, and an existing env may have drifted: one repair pass.
	e.progress("setting group ownership and permissions")
	if res.Report, err = e.walk(ctx, true, 5); err != nil {
		return res, err
	}
	e.progress("registering the Jupyter kernel " + e.KernelSpecPath())
	if res.KernelWritten, err = e.writeKernelSpec(); err != nil {
		return res, err
	}
	if _, res.IPyKernel = e.probe(ctx); !res.IPyKernel {
		e.log.Warn("ipykernel cannot be imported in the shared environment, so its kernel will not start:"+
			" install it (`"+filepath.Join(o.Path, "bin", "pip")+" install ipykernel`) or set"+
			" shared_env.system_site_packages = true with Debian's python3-ipykernel", "path", o.Path)
	}
	e.log.Info("shared environment ready", "path", o.Path, "group", o.Group, "created", res.Created,
		"fixed", res.Drift()-res.Remaining(), "acl", res.ACLSupported)
	return res, nil
}

// reachable fails when members could not get to dir: every existing
// ancestor must let others (or the group owning it) search it. A venv
// under a 0700 directory would pass every check and still be useless.
func reachable(dir string, gid uint32) error {
	for d := dir; ; d = filepath.Dir(d) {
		var st unix.Stat_t
		err := unix.Stat(d, &st)
		if err == nil && st.Mode&0o001 == 0 && (st.Gid != gid || st.Mode&0o010 == 0) {
			return fmt.Errorf("members cannot reach the environment: %s has mode %04o; run `chmod o+x %s` or choose another shared_env.path",
				d, st.Mode&0o7777, d)
		}
		if err != nil && !errors.Is(err, unix.ENOENT) {
			return fmt.Errorf("stat %s: %w", d, err)
		}
		if d == filepath.Dir(d) {
			return nil
		}
	}
}

// mkdirAll creates dir with perm and missing parents with 0755, whatever
// the umask: root's umask may be 077, which would lock members out.
func mkdirAll(dir string, perm os.FileMode) error {
	if _, err := os.Stat(dir); err == nil {
		return nil
	}
	if parent := filepath.Dir(dir); parent != dir {
		if err := mkdirAll(parent, 0o755); err != nil {
			return err
		}
	}
	if err := os.Mkdir(dir, perm); err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("create %s: %w", dir, err)
	}
	if err := os.Chmod(dir, perm); err != nil {
		return fmt.Errorf("chmod %s: %w", dir, err)
	}
	return nil
}

// isVenv tells an existing venv from an empty directory, and refuses
// anything else rather than build a venv on top of someone's files.
func isVenv(dir string) (bool, error) {
	if _, err := os.Stat(filepath.Join(dir, "pyvenv.cfg")); err == nil {
		return true, nil
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return false, fmt.Errorf("read %s: %w", dir, err)
	}
	if len(ents) > 0 {
		return false, fmt.Errorf("%s is not empty and not a Python venv (no pyvenv.cfg): move it away or set shared_env.path to another directory", dir)
	}
	return false, nil
}

func (e *Env) createVenv(ctx context.Context) error {
	args := []string{"-m", "venv"}
	if e.opts.SystemSitePackages {
		args = append(args, "--system-site-packages")
	}
	out, err := e.command(ctx, e.opts.Python, append(args, e.opts.Path)...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s -m venv %s: %w: %s (on Debian: apt-get install python3-venv)",
			e.opts.Python, e.opts.Path, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// command runs a tool with a clean environment: root's PIP_*, PYTHON* or
// virtualenv variables must not leak into the shared environment.
func (e *Env) command(ctx context.Context, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = []string{"PATH=" + systemPath, "LANG=C.UTF-8"}
	return cmd
}

// kernelSpec is a Jupyter kernel.json.
type kernelSpec struct {
	Argv        []string `json:"argv"`
	DisplayName string   `json:"display_name"`
	Language    string   `json:"language"`
}

// writeKernelSpec registers the environment as a system-wide kernel. The
// file is replaced atomically, and only when its content changes.
func (e *Env) writeKernelSpec() (bool, error) {
	spec := kernelSpec{
		Argv:        []string{e.Python(), "-m", "ipykernel_launcher", "-f", "{connection_file}"},
		DisplayName: e.opts.KernelDisplayName,
		Language:    "python",
	}
	data, err := json.MarshalIndent(spec, "", "  ")
	if err != nil {
		return false, err
	}
	data = append(data, '\n')
	path := e.KernelSpecPath()
	if old, err := os.ReadFile(path); err == nil && bytes.Equal(old, data) {
		return false, nil
	}
	if err := mkdirAll(filepath.Dir(path), 0o755); err != nil {
		return false, err
	}
	if err := fsutil.WriteFileAtomic(path, data, 0o644); err != nil {
		return false, fmt.Errorf("write kernel spec: %w", err)
	}
	return true, nil
}

// probe runs the environment's python once for its version and whether
// ipykernel imports. -I keeps the caller's user site and PYTHON* out.
func (e *Env) probe(ctx context.Context) (version string, ipykernel bool) {
	out, err := e.command(ctx, e.Python(), "-I", "-c",
		"import sys; print(sys.version.split()[0], flush=True); import ipykernel").Output()
	return strings.TrimSpace(string(out)), err == nil
}

// StatusInfo is the state of the environment at a glance.
type StatusInfo struct {
	Path string `json:"path"`
	// Exists is false when there is no venv at Path yet.
	Exists bool `json:"exists"`
	// PythonVersion is "" when the interpreter does not run.
	PythonVersion string `json:"python_version"`
	IPyKernel     bool   `json:"ipykernel"`
	// Packages counts distributions installed in the environment itself
	// (system site packages not included).
	Packages int `json:"packages"`
	// KernelSpec is the kernel.json path; KernelRegistered is true when it
	// runs this environment's python.
	KernelSpec       string `json:"kernel_spec"`
	KernelRegistered bool   `json:"kernel_registered"`
	// Health is a check of the whole tree (sizes, drift, ACL support).
	Health Report `json:"health"`
}

// Status reports the environment's state; like Check it changes nothing.
func (e *Env) Status(ctx context.Context, maxExamples int) (StatusInfo, error) {
	s := StatusInfo{Path: e.opts.Path, KernelSpec: e.KernelSpecPath()}
	var err error
	if s.Exists, err = isVenv(e.opts.Path); err != nil || !s.Exists {
		if errors.Is(err, fs.ErrNotExist) {
			err = nil
		}
		return s, err
	}
	s.PythonVersion, s.IPyKernel = e.probe(ctx)
	dists, _ := filepath.Glob(filepath.Join(e.opts.Path, "lib", "python*", "site-packages", "*.dist-info"))
	s.Packages = len(dists)
	if data, err := os.ReadFile(s.KernelSpec); err == nil {
		var spec kernelSpec
		s.KernelRegistered = json.Unmarshal(data, &spec) == nil && len(spec.Argv) > 0 && spec.Argv[0] == e.Python()
	}
	s.Health, err = e.Check(ctx, maxExamples)
	return s, err
}
