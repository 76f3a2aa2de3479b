// Package shares manages folders shared between chosen members, and the
// public area where every member publishes into a folder of their own.
//
// A share is a directory <root>/<name> with a Linux group of its own,
// <group_prefix><name>: the directory is root's, mode 2770, so only the
// group may enter it, and it is a sharedenv.Tree (setgid directories and a
// default ACL granting the group rwx), so every member can read and change
// every file in it, whoever created it. Membership is the group's: a
// server started after a member was removed no longer has the group, and
// no longer sees the share (a running server keeps what it had).
//
// The public area <root>/public is root's, group the hub's members group,
// mode 3775 (setgid, sticky): every member creates their own folder there
// (the spawners do it at start) and may write only in it; each folder is
// a read-only sharedenv.Tree, so the other members read everything in it.
//
// Creating shares, changing their groups and repairing them is root's
// work; listing and checking is anyone's who can read the tree.
package shares

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"

	"github.com/hubd/hubd/core/config"
	"github.com/hubd/hubd/core/names"
	"github.com/hubd/hubd/core/sharedenv"
	"github.com/hubd/hubd/core/spawner"
)

// Public is the name of the public area, which no share may take.
const Public = "public"

// maxGroupName is the longest group name the shadow tools accept.
const maxGroupName = 32

// nameRE is what a share may be called: it is a directory name, part of a
// group name and a link name in members' homes.
var nameRE = regexp.MustCompile(`^[a-z][a-z0-9_-]*$`)

// systemPath is the PATH the shadow tools run with.
const systemPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// Options say where shares live.
type Options struct {
	Root        string // shares.root
	GroupPrefix string // shares.group_prefix
	// Members is the hub's members group (auth.allowed_group), which owns
	// the public area.
	Members string
	Logger  *slog.Logger
}

// OptionsFromConfig takes the settings from hubd's configuration.
func OptionsFromConfig(c config.Config, log *slog.Logger) Options {
	return Options{Root: c.Shares.Root, GroupPrefix: c.Shares.GroupPrefix, Members: c.Auth.AllowedGroup, Logger: log}
}

// Manager creates, lists, changes and repairs shares.
type Manager struct {
	o   Options
	log *slog.Logger
}

// New returns the manager of the shares o describes; nothing is touched.
func New(o Options) *Manager {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return &Manager{o: o, log: o.Logger.With("component", "shares")}
}

// Share is one share as the file system and the group database say.
type Share struct {
	Name    string   `json:"name"`
	Path    string   `json:"path"`
	Group   string   `json:"group"`
	Members []string `json:"members"`
}

// CheckName says what is wrong with a share's name, or nil.
func (m *Manager) CheckName(name string) error {
	shown := name
	if len(shown) > 40 {
		shown = shown[:40] + "…"
	}
	switch {
	case name == Public:
		return fmt.Errorf("%q is the public area, not a share: `hubd share create` makes it with --public", Public)
	case !nameRE.MatchString(name):
		return fmt.Errorf("share name %q is not valid: use lowercase letters, digits, '-' and '_', starting with a letter", shown)
	case len(m.o.GroupPrefix)+len(name) > maxGroupName:
		return fmt.Errorf("share name %q is too long: with the group prefix %q it must fit a %d-character group name", shown, m.o.GroupPrefix, maxGroupName)
	}
	return nil
}

// Path is the directory of a share.
func (m *Manager) Path(name string) string { return filepath.Join(m.o.Root, name) }

// Group is the Linux group of a share.
func (m *Manager) Group(name string) string { return m.o.GroupPrefix + name }

// PublicPath is the public area.
func (m *Manager) PublicPath() string { return filepath.Join(m.o.Root, Public) }

func (m *Manager) tree(name string) *sharedenv.Tree {
	return &sharedenv.Tree{Path: m.Path(name), Group: m.Group(name), Logger: m.log}
}

// NotFoundError is a share that does not exist.
type NotFoundError struct{ Name string }

func (e *NotFoundError) Error() string {
	return fmt.Sprintf("there is no share %q: `hubd share list` shows them", e.Name)
}

// Get returns a share, or a *NotFoundError.
func (m *Manager) Get(ctx context.Context, name string) (Share, error) {
	if err := m.CheckName(name); err != nil {
		return Share{}, err
	}
	p := m.Path(name)
	fi, err := os.Stat(p)
	if errors.Is(err, fs.ErrNotExist) {
		return Share{}, &NotFoundError{Name: name}
	}
	if err != nil {
		return Share{}, err
	}
	if !fi.IsDir() {
		return Share{}, fmt.Errorf("%s is not a directory", p)
	}
	members, err := groupMembers(ctx, m.Group(name))
	if err != nil {
		return Share{}, err
	}
	return Share{Name: name, Path: p, Group: m.Group(name), Members: members}, nil
}

// List returns every share, by name.
func (m *Manager) List(ctx context.Context) ([]Share, error) {
	ents, err := os.ReadDir(m.o.Root)
	if errors.Is(err, fs.ErrNotExist) {
		return []Share{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list shares: %w", err)
	}
	out := []Share{}
	for _, e := range ents {
		if !e.IsDir() || m.CheckName(e.Name()) != nil {
			continue
		}
		s, err := m.Get(ctx, e.Name())
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}

// Create makes a share: its group (with members), then its directory. An
// existing share is an error; a group of that name that exists already
// is refused, so a share never takes over a group with other uses.
func (m *Manager) Create(ctx context.Context, name string, members []string) (Share, error) {
	if err := m.CheckName(name); err != nil {
		return Share{}, err
	}
	if err := checkUsers(members); err != nil {
		return Share{}, err
	}
	if _, err := os.Stat(m.Path(name)); err == nil {
		return Share{}, fmt.Errorf("share %q exists already: `hubd share add %s USER` adds members", name, name)
	}
	group := m.Group(name)
	if _, err := user.LookupGroup(group); err == nil {
		return Share{}, fmt.Errorf("group %s exists already and is not a share's: remove it, or choose another share name", group)
	}
	if err := mkdirRoot(m.o.Root); err != nil {
		return Share{}, err
	}
	if err := run(ctx, "groupadd", group); err != nil {
		return Share{}, err
	}
	if err := m.tree(name).Create(0o770, -1); err != nil {
		return Share{}, fmt.Errorf("create share %s: %w", name, err)
	}
	for _, u := range members {
		if err := run(ctx, "gpasswd", "-a", u, group); err != nil {
			return Share{}, err
		}
	}
	m.log.Info("share created", "share", name, "group", group, "members", members)
	return m.Get(ctx, name)
}

// Add makes users members of a share; they see it from their next
// server start.
func (m *Manager) Add(ctx context.Context, name string, users []string) (Share, error) {
	if _, err := m.Get(ctx, name); err != nil {
		return Share{}, err
	}
	if err := checkUsers(users); err != nil {
		return Share{}, err
	}
	for _, u := range users {
		if err := run(ctx, "gpasswd", "-a", u, m.Group(name)); err != nil {
			return Share{}, err
		}
	}
	m.log.Info("share members added", "share", name, "users", users)
	return m.Get(ctx, name)
}

// Remove takes users out of a share. Their servers keep the group until
// they stop; the next start no longer has it.
func (m *Manager) Remove(ctx context.Context, name string, users []string) (Share, error) {
	s, err := m.Get(ctx, name)
	if err != nil {
		return Share{}, err
	}
	for _, u := range users {
		if !slices.Contains(s.Members, u) {
			return Share{}, fmt.Errorf("%s is not a member of share %s (members: %s)", names.Quote(u), name, strings.Join(s.Members, ", "))
		}
	}
	for _, u := range users {
		if err := run(ctx, "gpasswd", "-d", u, m.Group(name)); err != nil {
			return Share{}, err
		}
	}
	m.log.Info("share members removed", "share", name, "users", users)
	return m.Get(ctx, name)
}

// Delete removes a share's group and its directory. A share that still
// holds files is removed only with purge.
func (m *Manager) Delete(ctx context.Context, name string, purge bool) error {
	if _, err := m.Get(ctx, name); err != nil {
		return err
	}
	p := m.Path(name)
	ents, err := os.ReadDir(p)
	if err != nil {
		return err
	}
	if len(ents) > 0 && !purge {
		return fmt.Errorf("share %s still holds %d entries: move them away, or delete it with --purge to remove them too", name, len(ents))
	}
	if err := os.RemoveAll(p); err != nil {
		return fmt.Errorf("remove %s: %w", p, err)
	}
	if err := run(ctx, "groupdel", m.Group(name)); err != nil {
		return err
	}
	m.log.Info("share deleted", "share", name, "purged", len(ents) > 0)
	return nil
}

// CreatePublic makes (or brings back in shape) the public area.
func (m *Manager) CreatePublic() error {
	if err := mkdirRoot(m.o.Root); err != nil {
		return err
	}
	t := sharedenv.Tree{Path: m.PublicPath(), Group: m.o.Members, ReadOnly: true, Logger: m.log}
	if err := t.Create(0o775, -1); err != nil {
		return fmt.Errorf("create the public area: %w", err)
	}
	// Sticky: members may create their own folder, and remove only it.
	if err := os.Chmod(t.Path, 0o775|os.ModeSetgid|os.ModeSticky); err != nil {
		return fmt.Errorf("chmod %s: %w", t.Path, err)
	}
	m.log.Info("public area ready", "path", t.Path, "group", m.o.Members)
	return nil
}

// Report is a check or repair of one share, or of the public area (one
// report per member's folder).
type Report = sharedenv.Report

// Check reports what members of a share cannot read or change (files a
// `cp -p` or `mv` brought in with their own group or mode); for the public
// area, what other members cannot read.
func (m *Manager) Check(ctx context.Context, name string, maxExamples int) ([]Report, error) {
	return m.walk(ctx, name, false, maxExamples)
}

// Repair fixes what Check finds.
func (m *Manager) Repair(ctx context.Context, name string, maxExamples int) ([]Report, error) {
	return m.walk(ctx, name, true, maxExamples)
}

func (m *Manager) walk(ctx context.Context, name string, fix bool, maxExamples int) ([]Report, error) {
	var trees []*sharedenv.Tree
	if name == Public {
		ents, err := os.ReadDir(m.PublicPath())
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("there is no public area: `hubd share create --public` makes it")
		}
		if err != nil {
			return nil, err
		}
		for _, e := range ents {
			if e.IsDir() {
				trees = append(trees, &sharedenv.Tree{Path: filepath.Join(m.PublicPath(), e.Name()), Group: m.o.Members, ReadOnly: true, Logger: m.log})
			}
		}
	} else {
		if _, err := m.Get(ctx, name); err != nil {
			return nil, err
		}
		trees = append(trees, m.tree(name))
	}
	out := []Report{}
	for _, t := range trees {
		walk := t.Check
		if fix {
			walk = t.Repair
		}
		rep, err := walk(ctx, maxExamples)
		if err != nil {
			return out, fmt.Errorf("%s: %w", t.Path, err)
		}
		out = append(out, rep)
	}
	return out, nil
}

// Of returns the shares a user belongs to now, and the public area when
// there is one and the user is in the members group: what their next
// server gets.
func (m *Manager) Of(userName string) ([]spawner.Share, error) {
	u, err := user.Lookup(userName)
	if err != nil {
		return nil, fmt.Errorf("look up user %s: %w", userName, err)
	}
	gids, err := u.GroupIds()
	if err != nil {
		return nil, fmt.Errorf("groups of %s: %w", userName, err)
	}
	ents, err := os.ReadDir(m.o.Root)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list shares: %w", err)
	}
	var out []spawner.Share
	for _, e := range ents {
		if !e.IsDir() {
			continue
		}
		name := e.Name()
		p := filepath.Join(m.o.Root, name)
		var group string
		switch {
		case name == Public:
			group = m.o.Members
		case m.CheckName(name) == nil:
			group = m.Group(name)
		default:
			continue
		}
		g, err := user.LookupGroup(group)
		if err != nil {
			continue // a directory without its group is no share
		}
		var st syscall.Stat_t
		if err := syscall.Stat(p, &st); err != nil || strconv.FormatUint(uint64(st.Gid), 10) != g.Gid {
			continue
		}
		if slices.Contains(gids, g.Gid) {
			out = append(out, spawner.Share{Name: name, Path: p})
		}
	}
	return out, nil
}

// checkUsers refuses names that are not accounts here.
func checkUsers(users []string) error {
	for _, u := range users {
		if err := names.Check(u); err != nil {
			return fmt.Errorf("user %s: %w", names.Quote(u), err)
		}
		if _, err := user.Lookup(u); err != nil {
			return fmt.Errorf("there is no user %s on this machine: create the account first", names.Quote(u))
		}
	}
	return nil
}

// groupMembers lists a group's members as the group database has them.
func groupMembers(ctx context.Context, group string) ([]string, error) {
	cmd := exec.CommandContext(ctx, "getent", "group", group)
	cmd.Env = []string{"PATH=" + systemPath}
	out, err := cmd.Output()
	var ee *exec.ExitError
	if errors.As(err, &ee) && ee.ExitCode() == 2 {
		return nil, fmt.Errorf("the share's group %s is missing: recreate it with `groupadd %s` and add the members back", group, group)
	}
	if err != nil {
		return nil, fmt.Errorf("getent group %s: %w", group, err)
	}
	sc := bufio.NewScanner(bytes.NewReader(out))
	members := []string{}
	if sc.Scan() {
		f := strings.Split(sc.Text(), ":")
		if len(f) == 4 && f[3] != "" {
			members = strings.Split(f[3], ",")
		}
	}
	slices.Sort(members)
	return members, nil
}

// mkdirRoot makes the shares' root, 0755 and root's, whatever the umask.
func mkdirRoot(root string) error {
	if err := os.MkdirAll(root, 0o755); err != nil {
		return fmt.Errorf("create %s: %w", root, err)
	}
	return os.Chmod(root, 0o755)
}

// run runs a shadow tool with a system PATH and says what failed.
func run(ctx context.Context, name string, args ...string) error {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = []string{"PATH=" + systemPath, "LANG=C"}
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}
