package host

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/hubd/hubd/core/sharedenv"
	"github.com/hubd/hubd/internal/fsutil"
)

// Change is one difference between the host and what setup wants.
type Change struct {
	// What says what differs and what applying the step does about it.
	What string `json:"what"`
	// Fix is the command that makes it right by hand.
	Fix string `json:"fix,omitempty"`
	// Warn marks a difference that is not wrong as such (a runtime
	// directory systemd creates at start, a kernel without ipykernel):
	// doctor warns, setup leaves it alone.
	Warn bool `json:"warn,omitempty"`
}

// Step is one thing setup manages.
type Step struct {
	// Name says what the step manages, e.g. "sudoers rule /etc/sudoers.d/hubd".
	Name string
	// Check reports what differs from the wanted state; nothing means the
	// step is in place. It changes nothing.
	Check func(ctx context.Context) ([]Change, error)
	// Apply makes the host match; it runs only when Check found a change.
	Apply func(ctx context.Context) error
	// Slow steps (creating a venv) are announced before they run.
	Slow bool
}

// Steps lists what setup manages, in the order it is applied: accounts
// before the directories they own, the helper before the rule naming it,
// the unit before systemd reloads it. rec collects what Apply creates.
func (o Options) Steps(rec *Record) []Step {
	c := o.Config
	var steps []Step
	steps = append(steps, o.groupStep(c.Auth.AllowedGroup, "members group", rec))
	if c.Auth.AdminGroup != "" {
		steps = append(steps, o.groupStep(c.Auth.AdminGroup, "admin group", rec))
	}
	steps = append(steps, o.hubUserStep(rec))
	for _, m := range o.AddMembers {
		steps = append(steps, o.memberStep(m))
	}
	for _, d := range o.dirs() {
		steps = append(steps, o.dirStep(d, rec))
	}
	config := o.fileStep("configuration file", o.ConfigPath, 0o644, fromBytes(func() ([]byte, error) {
		return RenderConfig(o.Config, o.Unit())
	}), rec)
	config.keep = true
	unit := o.fileStep("systemd unit", o.UnitFile(), 0o644, fromBytes(o.unitFile), rec)
	sudoers := o.fileStep("sudoers rule", o.SudoersFile(), 0o440, fromBytes(o.RenderSudoers), rec)
	sudoers.validate = func(ctx context.Context, tmp string) error {
		_, err := o.Run.Run(ctx, "visudo", "-cf", tmp)
		return err
	}
	helper := o.fileStep("spawn helper", c.Spawner.HelperPath, 0o755, func() (io.ReadCloser, error) {
		return os.Open(o.Binary)
	}, rec)
	helper.installed = &rec.InstalledHelper
	steps = append(steps,
		config.step(),
		helper.step(),
		o.pamStep(rec),
	)
	// Before the sudoers rule that names it.
	if o.createsHomes() {
		steps = append(steps, o.fileStep("spawn PAM service", o.SpawnPAMFile(), 0o644, fromBytes(o.RenderSpawnPAMService), rec).step())
	}
	steps = append(steps, sudoers.step(), unit.step())
	if o.Systemd {
		steps = append(steps, o.reloadStep(unit))
	}
	steps = append(steps, o.fileStep("restart-hub alias", o.ProfileFile(), 0o644, fromBytes(o.profileFile), rec).step())
	if c.SharedEnv.Enabled {
		steps = append(steps, o.envStep(rec))
	}
	return steps
}

// fromBytes opens what f renders, for a fileStep.
func fromBytes(f func() ([]byte, error)) func() (io.ReadCloser, error) {
	return func() (io.ReadCloser, error) {
		b, err := f()
		return io.NopCloser(bytes.NewReader(b)), err
	}
}

// pamStep installs the login service. On a packaged host whose service is
// the package's (local accounts only), a directory in NSS cannot be served
// by that file, and the step says how to get one that can.
func (o Options) pamStep(rec *Record) Step {
	f := o.fileStep("PAM service", o.PAMFile(), 0o644, fromBytes(o.RenderPAMService), rec)
	if !o.fromPackage(f.path) {
		return f.step()
	}
	f.open = fromBytes(o.packagePAMService)
	s := f.step()
	s.Check = func(ctx context.Context) ([]Change, error) {
		ch, err := f.checkPackaged(ctx)
		dir, derr := o.hostDirectory()
		if err != nil || derr != nil || dir == nil {
			return ch, errors.Join(err, derr)
		}
		service := DefaultName + "-" + dir.Source
		return append(ch, Change{
			What: fmt.Sprintf("accounts also come from %q in %s, but %s is the hubd package's, for local accounts only: directory users cannot log in",
				dir.Source, o.NSSwitchFile(), f.path),
			Fix: fmt.Sprintf("set pam_service = %q under [auth] in %s and run `%s` (it writes /etc/pam.d/%s with %s)",
				service, o.ConfigPath, o.SetupCommand(), service, dir.PAMModule),
		}), nil
	}
	return s
}

// groupStep creates a group, or adopts an existing one, local or from a
// directory (an LDAP posixGroup).
func (o Options) groupStep(name, role string, rec *Record) Step {
	return Step{
		Name: role + " " + name,
		Check: func(ctx context.Context) ([]Change, error) {
			if _, err := user.LookupGroup(name); err == nil {
				return nil, nil
			}
			// A local group of the same name would hide the directory's.
			if why := o.directoryUnreachable(ctx, directoryProbeTimeout); why != "" {
				return nil, fmt.Errorf("group %s is not in /etc/group and %s, so setup cannot tell whether the directory has it: bring the directory back and run setup again", name, why)
			}
			return []Change{{What: "create group " + name, Fix: "groupadd " + name}}, nil
		},
		Apply: func(ctx context.Context) error {
			if _, err := o.Run.Run(ctx, "groupadd", name); err != nil {
				return err
			}
			rec.add(&rec.CreatedGroups, name)
			return nil
		},
	}
}

// hubUserStep creates the hub's system account in group shadow, or adopts
// an existing account and puts it in shadow.
func (o Options) hubUserStep(rec *Record) Step {
	name := o.HubUser
	home := filepath.Dir(o.Config.Data.DB)
	create := []string{"--system", "--user-group", "--home-dir", home, "--no-create-home",
		"--shell", "/usr/sbin/nologin", "--comment", "hubd hub account", "--groups", ShadowGroup, name}
	join := []string{"--append", "--groups", ShadowGroup, name}
	return Step{
		Name: "hub user " + name,
		Check: func(context.Context) ([]Change, error) {
			if _, err := user.LookupGroup(ShadowGroup); err != nil {
				return nil, fmt.Errorf("this system has no %s group, so an unprivileged hub cannot check passwords with PAM (on Fedora/RHEL /etc/shadow is readable by root only): no fix by setup; run the hub as root", ShadowGroup)
			}
			u, err := user.Lookup(name)
			if err != nil {
				return []Change{{What: "create system user " + name + " (home " + home + ", no login shell, in group " + ShadowGroup + ")",
					Fix: commandLine("useradd", create)}}, nil
			}
			if u.Uid == "0" {
				return nil, fmt.Errorf("user %s has uid 0: the hub must not run as root; pick another --hub-user", name)
			}
			if in, err := inGroup(u, ShadowGroup); err != nil || in {
				return nil, err
			}
			return []Change{{What: "add " + name + " to group " + ShadowGroup + " so PAM can check passwords",
				Fix: commandLine("usermod", join)}}, nil
		},
		Apply: func(ctx context.Context) error {
			if _, err := user.Lookup(name); err == nil {
				_, err := o.Run.Run(ctx, "usermod", join...)
				return err
			}
			if _, err := o.Run.Run(ctx, "useradd", create...); err != nil {
				return err
			}
			rec.add(&rec.CreatedUsers, name)
			return nil
		},
	}
}

// memberStep puts an existing user into the members group (--add-member).
func (o Options) memberStep(name string) Step {
	group := o.Config.Auth.AllowedGroup
	args := []string{"--append", "--groups", group, name}
	return Step{
		Name: "member " + name,
		Check: func(context.Context) ([]Change, error) {
			u, err := user.Lookup(name)
			if err != nil {
				return nil, fmt.Errorf("user %s does not exist: create it first (`adduser %s`)", name, name)
			}
			if in, _ := inGroup(u, group); in {
				return nil, nil
			}
			return []Change{{What: "add " + name + " to group " + group, Fix: commandLine("usermod", args)}}, nil
		},
		Apply: func(ctx context.Context) error {
			_, err := o.Run.Run(ctx, "usermod", args...)
			return err
		},
	}
}

// inGroup reports whether u belongs to group, as primary or supplementary.
func inGroup(u *user.User, group string) (bool, error) {
	g, err := user.LookupGroup(group)
	if err != nil {
		return false, nil
	}
	gids, err := u.GroupIds()
	if err != nil {
		return false, fmt.Errorf("groups of %s: %w", u.Username, err)
	}
	for _, id := range gids {
		if id == g.Gid {
			return true, nil
		}
	}
	return u.Gid == g.Gid, nil
}

// dir is one of hubd's directories.
type dir struct {
	path string
	mode fs.FileMode
	// runtime directories live in /run: gone after a reboot until the
	// hub starts, and systemd creates them for the unit.
	runtime bool
}

// dirs lists hubd's own directories, each once. All belong to the hub's
// account. The runtime directory holds the admin socket, which members and
// admins reach through its ACL, so they must be able to enter it.
func (o Options) dirs() []dir {
	c := o.Config
	all := []dir{
		{path: filepath.Dir(c.Data.DB), mode: 0o750},
		{path: filepath.Dir(c.Data.CookieSecretFile), mode: 0o750},
		{path: c.Data.LogDir, mode: 0o750},
		{path: c.Backups.Dir, mode: 0o750},
		{path: c.Data.RuntimeDir, mode: 0o755, runtime: true},
		{path: filepath.Dir(c.Admin.Socket), mode: 0o755, runtime: true},
	}
	seen := map[string]bool{}
	var out []dir
	for _, d := range all {
		if !seen[d.path] {
			seen[d.path] = true
			out = append(out, d)
		}
	}
	return out
}

// dirStep creates a directory owned by the hub's account with an exact
// mode, or corrects the owner and mode of an existing one.
func (o Options) dirStep(d dir, rec *Record) Step {
	mode := fmt.Sprintf("%04o", d.mode)
	return Step{
		Name: "directory " + d.path,
		Check: func(context.Context) ([]Change, error) {
			group := o.hubGroup()
			owner := o.HubUser + ":" + group
			fi, err := os.Lstat(d.path)
			if errors.Is(err, fs.ErrNotExist) {
				c := Change{What: "create " + d.path + " (" + mode + " " + owner + ")",
					Fix: "install -d -m " + mode + " -o " + o.HubUser + " -g " + group + " " + d.path}
				if d.runtime && o.Systemd {
					c.What = d.path + " is missing; systemd creates it when " + o.Unit() + " starts"
					c.Fix, c.Warn = "systemctl start "+o.Unit(), true
				}
				return []Change{c}, nil
			}
			if err != nil {
				return nil, err
			}
			if !fi.IsDir() {
				return nil, fmt.Errorf("%s exists and is not a directory: move it away or set another path in %s", d.path, o.ConfigPath)
			}
			var ch []Change
			if modeBits(fi) != uint32(d.mode) {
				ch = append(ch, Change{What: fmt.Sprintf("chmod %s (is %04o)", mode, modeBits(fi)), Fix: "chmod " + mode + " " + d.path})
			}
			if got := ownerOf(fi); got != owner {
				ch = append(ch, Change{What: "chown " + owner + " (is " + got + ")", Fix: "chown " + owner + " " + d.path})
			}
			return ch, nil
		},
		Apply: func(context.Context) error {
			u, err := user.Lookup(o.HubUser)
			if err != nil {
				return fmt.Errorf("hub user: %w", err)
			}
			uid, _ := strconv.Atoi(u.Uid)
			gid, _ := strconv.Atoi(u.Gid)
			if err := mkdirAll(d.path, rec); err != nil {
				return err
			}
			if err := os.Chown(d.path, uid, gid); err != nil {
				return err
			}
			// After chown: chown clears setuid/setgid bits.
			return os.Chmod(d.path, d.mode)
		},
	}
}

// hubGroup is the hub user's primary group: the group of the same name
// that useradd --user-group creates, or an adopted account's own group.
func (o Options) hubGroup() string {
	if u, err := user.Lookup(o.HubUser); err == nil {
		if g, err := user.LookupGroupId(u.Gid); err == nil {
			return g.Name
		}
	}
	return o.HubUser
}

// mkdirAll creates dir and its missing parents with mode 0755 whatever
// the umask (the caller sets dir's final mode), recording each one.
func mkdirAll(dir string, rec *Record) error {
	if _, err := os.Stat(dir); err == nil {
		return nil
	}
	if parent := filepath.Dir(dir); parent != dir {
		if err := mkdirAll(parent, rec); err != nil {
			return err
		}
	}
	if err := os.Mkdir(dir, 0o755); err != nil {
		return fmt.Errorf("create directory: %w", err)
	}
	rec.add(&rec.CreatedDirs, dir)
	return os.Chmod(dir, 0o755)
}

// missingDirs lists dir and its ancestors that do not exist yet, outermost
// first.
func missingDirs(dir string) []string {
	var out []string
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(d); err == nil || d == filepath.Dir(d) {
			break
		}
		out = append([]string{d}, out...)
	}
	return out
}

func modeBits(fi fs.FileInfo) uint32 {
	return uint32(fi.Sys().(*syscall.Stat_t).Mode & 0o7777)
}

// ownerOf is "user:group" of a file, with numeric ids for unknown ones.
func ownerOf(fi fs.FileInfo) string {
	st := fi.Sys().(*syscall.Stat_t)
	u, g := strconv.Itoa(int(st.Uid)), strconv.Itoa(int(st.Gid))
	if x, err := user.LookupId(u); err == nil {
		u = x.Username
	}
	if x, err := user.LookupGroupId(g); err == nil {
		g = x.Name
	}
	return u + ":" + g
}

// fileStep installs a root-owned file.
type fileStep struct {
	o    Options
	name string
	path string
	mode fs.FileMode
	open func() (io.ReadCloser, error)
	rec  *Record
	// keep leaves an existing file alone whatever it holds (the config).
	keep bool
	// validate checks the complete temporary file before it is renamed
	// into place.
	validate func(ctx context.Context, tmp string) error
	// installed, when set, is set in the record once the file is written.
	installed *bool
}

func (o Options) fileStep(name, path string, mode fs.FileMode, open func() (io.ReadCloser, error), rec *Record) *fileStep {
	return &fileStep{o: o, name: name, path: path, mode: mode, open: open, rec: rec}
}

// step is the file's setup step. A file the package installs is only
// checked: dpkg owns it (and keeps an admin's edits of a conffile), so a
// difference is reported, never written over.
func (f *fileStep) step() Step {
	if f.o.fromPackage(f.path) {
		return Step{Name: f.name + " " + f.path, Check: f.checkPackaged}
	}
	return Step{Name: f.name + " " + f.path, Check: f.check, Apply: f.apply}
}

// checkPackaged: a missing file is wrong (dpkg restores it), a different
// one is worth a look (an edited conffile, a unit this configuration
// would want changed, or a hubd other than the package's).
func (f *fileStep) checkPackaged(ctx context.Context) ([]Change, error) {
	ch, err := f.check(ctx)
	if err != nil || len(ch) == 0 {
		return ch, err
	}
	if _, err := os.Lstat(f.path); errors.Is(err, fs.ErrNotExist) {
		return []Change{{What: f.path + " is missing; the hubd package installs it",
			Fix: "apt-get install --reinstall -o Dpkg::Options::=--force-confmiss hubd"}}, nil
	}
	what := make([]string, len(ch))
	for i, c := range ch {
		what[i] = c.What
	}
	return []Change{{Warn: true,
		What: f.path + " is the hubd package's, edited or not what this hubd and configuration would install: " + strings.Join(what, "; "),
		Fix:  "dpkg --verify hubd; keep a deliberate edit (dpkg keeps edited conffiles), put unit changes in `systemctl edit " + f.o.Unit() + "`"}}, nil
}

func (f *fileStep) check(context.Context) ([]Change, error) {
	fix := f.o.SetupCommand()
	fi, err := os.Lstat(f.path)
	if errors.Is(err, fs.ErrNotExist) {
		return []Change{{What: fmt.Sprintf("install %s (%04o root:root)", f.path, f.mode), Fix: fix}}, nil
	}
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file: remove it, then run `%s`", f.path, fix)
	}
	if f.keep {
		return nil, nil
	}
	var ch []Change
	want, err := f.sum()
	if err != nil {
		return nil, err
	}
	if got, err := fileSum(f.path); err != nil {
		return nil, err
	} else if got != want {
		ch = append(ch, Change{What: "replace " + f.path + " (its content differs from what this hubd installs)", Fix: fix})
	}
	if modeBits(fi) != uint32(f.mode) {
		ch = append(ch, Change{What: fmt.Sprintf("chmod %04o (is %04o)", f.mode, modeBits(fi)), Fix: fmt.Sprintf("chmod %04o %s", f.mode, f.path)})
	}
	if got := ownerOf(fi); got != "root:root" {
		ch = append(ch, Change{What: "chown root:root (is " + got + ")", Fix: "chown root:root " + f.path})
	}
	return ch, nil
}

func (f *fileStep) sum() (string, error) {
	r, err := f.open()
	if err != nil {
		return "", err
	}
	defer r.Close()
	return readerSum(r)
}

// apply writes the whole file again, even when only its mode or owner
// was wrong: a fresh root-owned file with the exact mode, renamed over
// the old one, is never seen half-right.
func (f *fileStep) apply(ctx context.Context) error {
	if err := mkdirAll(filepath.Dir(f.path), f.rec); err != nil {
		return err
	}
	r, err := f.open()
	if err != nil {
		return err
	}
	defer r.Close()
	err = fsutil.WriteAtomic(f.path, f.mode, func(w io.Writer) error {
		if _, err := io.Copy(w, r); err != nil {
			return err
		}
		if f.validate == nil {
			return nil
		}
		// w is the temporary file beside the target: validating it, not a
		// copy, means the bytes checked are the bytes renamed into place.
		// Its name starts with '.', which sudo's @includedir skips.
		named, ok := w.(interface{ Name() string })
		if !ok {
			return errors.New("cannot validate: the temporary file has no name")
		}
		return f.validate(ctx, named.Name())
	})
	if err != nil {
		return err
	}
	if f.installed != nil {
		*f.installed = true
	}
	if f.keep {
		f.rec.CreatedConfig = true
	}
	return nil
}

func fileSum(path string) (string, error) {
	r, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer r.Close()
	return readerSum(r)
}

func readerSum(r io.Reader) (string, error) {
	h := sha256.New()
	if _, err := io.Copy(h, r); err != nil {
		return "", err
	}
	return fmt.Sprintf("%x", h.Sum(nil)), nil
}

// reloadStep makes systemd read the unit file again after it changed.
// systemd itself says when that is needed (NeedDaemonReload), so a reload
// missed by an interrupted setup is caught by the next run or by doctor.
func (o Options) reloadStep(unit *fileStep) Step {
	return Step{
		Name: "systemd manager configuration",
		Check: func(ctx context.Context) ([]Change, error) {
			pending, err := unit.check(ctx)
			if err != nil {
				return nil, err
			}
			out, err := o.Run.Run(ctx, "systemctl", "show", "--property=NeedDaemonReload", "--value", o.Unit())
			if err != nil {
				return nil, err
			}
			// Setup does not write the package's unit, so only systemd's
			// own answer counts for it.
			if (len(pending) == 0 || o.fromPackage(unit.path)) && out != "yes" {
				return nil, nil
			}
			return []Change{{What: "reload systemd so it sees " + o.Unit(), Fix: "systemctl daemon-reload"}}, nil
		},
		Apply: func(ctx context.Context) error {
			_, err := o.Run.Run(ctx, "systemctl", "daemon-reload")
			return err
		},
	}
}

// envStep creates the shared environment or brings it back to the shared
// layout (package sharedenv).
func (o Options) envStep(rec *Record) Step {
	c := o.Config
	opts := sharedenv.OptionsFromConfig(c, o.Logger)
	return Step{
		Name: "shared environment " + c.SharedEnv.Path,
		Slow: true,
		Check: func(ctx context.Context) ([]Change, error) {
			st, err := sharedenv.New(opts).Status(ctx, 3)
			if errors.Is(err, fs.ErrNotExist) || (err == nil && !st.Exists) {
				return []Change{{What: "create the Python environment " + c.SharedEnv.Path + " and register its kernel",
					Fix: "hubd env init" + o.configFlag()}}, nil
			}
			if err != nil {
				return nil, err
			}
			var ch []Change
			if !st.KernelRegistered {
				ch = append(ch, Change{What: "register the kernel " + st.KernelSpec, Fix: "hubd env init" + o.configFlag()})
			}
			if h := st.Health; !h.Healthy() {
				ch = append(ch, Change{What: healthText(h), Fix: "hubd env repair" + o.configFlag()})
			}
			if !st.IPyKernel {
				ch = append(ch, Change{What: "ipykernel cannot be imported in the environment, so its kernel will not start",
					Fix: filepath.Join(c.SharedEnv.Path, "bin", "pip") + " install ipykernel", Warn: true})
			}
			return ch, nil
		},
		Apply: func(ctx context.Context) error {
			// Init creates the directories itself; remember which are new
			// so that `hubd uninstall --purge` removes exactly those.
			kernel := filepath.Join(c.SharedEnv.KernelSpecDirectory, c.SharedEnv.KernelName)
			created := append(missingDirs(c.SharedEnv.Path), missingDirs(kernel)...)
			_, err := sharedenv.New(opts).Init(ctx)
			for _, d := range created {
				if _, serr := os.Stat(d); serr == nil {
					rec.add(&rec.CreatedDirs, d)
				}
			}
			return err
		},
	}
}

// healthText names what drifted in the shared environment, with examples.
func healthText(h sharedenv.Report) string {
	var parts []string
	for _, k := range sharedenv.Kinds() {
		if n := h.Problems[k]; n > 0 {
			p := fmt.Sprintf("%d %s", n, k.Description())
			if ex := h.Examples[k]; len(ex) > 0 {
				p += " (e.g. " + strings.Join(ex, ", ") + ")"
			}
			parts = append(parts, p)
		}
	}
	if h.Errors > 0 {
		parts = append(parts, fmt.Sprintf("%d paths could not be checked", h.Errors))
	}
	return "repair " + strings.Join(parts, "; ")
}
