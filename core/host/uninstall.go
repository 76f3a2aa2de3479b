package host

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strings"
	"unicode"

	"github.com/hubd/hubd/internal/fsutil"
)

// UninstallMode says how far Uninstall goes.
type UninstallMode struct {
	// Purge also removes what setup created: data, backups, logs, the
	// shared environment, the configuration, accounts and groups.
	Purge bool
	// PurgePlan, when set (and not Purge), is where the list of those
	// removals is written, for the Debian package's postrm: it purges
	// after dpkg has removed hubd itself.
	PurgePlan string
}

// Uninstall removes what setup installed: first the hub and the servers it
// started (Options.StopServers), then the sudoers rule (the one privilege
// the hub has), the PAM services, unit, alias, helper and runtime
// directories; on a packaged host the files the package installs are
// dpkg's and stay. The configuration, data, logs, backups, shared
// environment, accounts and groups stay, so a later setup picks up where
// the hub was; with Purge they go too, but only what setup created (see
// Record): nothing that existed before setup is ever removed. Like setup it
// stops at the first failure and can be run again.
func Uninstall(ctx context.Context, o Options, mode UninstallMode, out io.Writer) error {
	if err := o.validate(); err != nil {
		return err
	}
	rec, err := LoadRecord(o.RecordFile())
	if err != nil {
		return err
	}
	remove := func(path string) action {
		return action{path, func() (string, error) { return removeFile(path) }}
	}
	var acts []action
	if o.Systemd && !o.Packaged {
		acts = append(acts, action{"stop and disable " + o.Unit(), func() (string, error) {
			if _, err := os.Stat(o.UnitFile()); err != nil {
				return "absent", nil
			}
			_, err := o.Run.Run(ctx, "systemctl", "disable", "--now", o.Unit())
			return "done", err
		}})
	}
	if o.StopServers != nil {
		acts = append(acts, action{"running hub and user servers", func() (string, error) { return o.StopServers(ctx) }})
	}
	for _, f := range []string{o.SudoersFile(), o.PAMFile(), o.SpawnPAMFile(), o.UnitFile(), o.ProfileFile()} {
		if !o.fromPackage(f) {
			acts = append(acts, remove(f))
		}
	}
	if o.Systemd && !o.Packaged {
		acts = append(acts, action{"systemctl daemon-reload", func() (string, error) {
			_, err := o.Run.Run(ctx, "systemctl", "daemon-reload")
			return "done", err
		}})
	}
	if rec.InstalledHelper {
		acts = append(acts, remove(o.Config.Spawner.HelperPath))
	}
	var kept []string
	for _, d := range o.dirs() {
		switch {
		case !slices.Contains(rec.CreatedDirs, d.path):
		case d.runtime:
			acts = append(acts, action{d.path, func() (string, error) { return removeTree(d.path) }})
		case !mode.Purge:
			kept = append(kept, d.path)
		}
	}
	removals := o.purgeRemovals(rec, mode.PurgePlan)
	switch {
	case mode.Purge:
		for _, r := range removals {
			acts = append(acts, action{r.String(), func() (string, error) { return o.remove(ctx, r) }})
		}
	case mode.PurgePlan != "":
		plan, err := encodePlan(removals)
		if err != nil {
			return err
		}
		acts = append(acts, action{"purge plan " + mode.PurgePlan, func() (string, error) {
			return "written", fsutil.WriteFileAtomic(mode.PurgePlan, plan, 0o600)
		}})
	}
	if !mode.Purge {
		if o.Config.SharedEnv.Enabled && slices.Contains(rec.CreatedDirs, o.Config.SharedEnv.Path) {
			kept = append(kept, o.Config.SharedEnv.Path)
		}
		if rec.CreatedConfig {
			kept = append(kept, o.ConfigPath)
		}
		for _, u := range rec.CreatedUsers {
			kept = append(kept, "user "+u)
		}
		for _, g := range rec.CreatedGroups {
			kept = append(kept, "group "+g)
		}
	}

	for i, a := range acts {
		status, err := a.do()
		if err != nil {
			fmt.Fprintf(out, "%-8s  %s: %v\n", Failed, a.name, err)
			var left []string
			for _, rest := range acts[i+1:] {
				left = append(left, rest.name)
			}
			fmt.Fprintf(out, "\nuninstall stopped; not done: %s\nfix the problem above and run `%s` again.\n", listOrNone(left), o.uninstallCommand())
			return fmt.Errorf("%s: %w", a.name, err)
		}
		fmt.Fprintf(out, "%-8s  %s\n", status, a.name)
	}
	if len(kept) > 0 {
		purge := "hubd uninstall --purge" + o.configFlag()
		if o.Packaged {
			purge = "apt purge hubd"
		}
		fmt.Fprintf(out, "\nkept (data and accounts; `%s` removes them): %s\n", purge, strings.Join(kept, "; "))
	}
	fmt.Fprintln(out, "uninstall done.")
	return nil
}

// action is one step of Uninstall; do says what it found ("removed",
// "absent", …).
type action struct {
	name string
	do   func() (string, error)
}

func (o Options) uninstallCommand() string {
	if o.Packaged {
		return "apt remove hubd"
	}
	return "hubd uninstall"
}

// RemovalKind is what a purge does to one target.
type RemovalKind string

// The kinds of removal, as written in a purge plan.
const (
	RemoveFile     RemovalKind = "file"  // remove the file
	RemoveTree     RemovalKind = "tree"  // remove the directory and everything in it
	RemoveEmptyDir RemovalKind = "dir"   // remove the directory if nothing else was put there
	RemoveUser     RemovalKind = "user"  // userdel
	RemoveGroup    RemovalKind = "group" // groupdel
)

// Removal is one thing a purge removes.
type Removal struct {
	Kind   RemovalKind
	Target string
}

func (r Removal) String() string {
	if r.Kind == RemoveUser || r.Kind == RemoveGroup {
		return string(r.Kind) + " " + r.Target
	}
	return r.Target
}

// purgeRemovals lists, in order, what a purge removes beyond a plain
// uninstall: only what the record says setup created. hubd's own
// directories go whole; parents setup had to create (/etc/hubd, /opt/hubd)
// only when empty, after the record (and extra files such as the purge
// plan) that may live in one of them.
func (o Options) purgeRemovals(rec Record, extra ...string) []Removal {
	var out []Removal
	if rec.CreatedConfig {
		out = append(out, Removal{RemoveFile, o.ConfigPath})
	}
	for _, u := range rec.CreatedUsers {
		out = append(out, Removal{RemoveUser, u})
	}
	for _, g := range rec.CreatedGroups {
		out = append(out, Removal{RemoveGroup, g})
	}
	own := map[string]bool{
		o.Config.SharedEnv.Path: true,
		filepath.Join(o.Config.SharedEnv.KernelSpecDirectory, o.Config.SharedEnv.KernelName): true,
	}
	runtime := map[string]bool{}
	for _, d := range o.dirs() {
		own[d.path], runtime[d.path] = true, d.runtime
	}
	var parents []Removal
	for _, d := range slices.Backward(rec.CreatedDirs) {
		switch {
		case runtime[d]: // removed by every uninstall
		case own[d]:
			out = append(out, Removal{RemoveTree, d})
		default:
			parents = append(parents, Removal{RemoveEmptyDir, d})
		}
	}
	out = append(out, Removal{RemoveFile, o.RecordFile()})
	for _, f := range extra {
		if f != "" {
			out = append(out, Removal{RemoveFile, f})
		}
	}
	return append(out, parents...)
}

// remove carries out one removal.
func (o Options) remove(ctx context.Context, r Removal) (string, error) {
	switch r.Kind {
	case RemoveFile:
		return removeFile(r.Target)
	case RemoveTree:
		return removeTree(r.Target)
	case RemoveEmptyDir:
		return removeEmptyDir(r.Target)
	case RemoveUser:
		return o.deleteAccount(ctx, "userdel", r.Target, userExists)
	case RemoveGroup:
		return o.deleteAccount(ctx, "groupdel", r.Target, groupExists)
	}
	return "", fmt.Errorf("unknown removal %q", r.Kind)
}

// encodePlan writes removals one per line as "<kind> <target>", for a
// shell `while read -r kind target`: a target with a line break or
// surrounding blanks could not be read back, so it is refused.
func encodePlan(removals []Removal) ([]byte, error) {
	var b bytes.Buffer
	b.WriteString("# Written by `hubd uninstall --purge-plan` when the hubd package was removed: what\n" +
		"# `apt purge hubd` removes, in order (only what hubd setup created). One \"<kind> <target>\" a line.\n")
	for _, r := range removals {
		if strings.ContainsAny(r.Target, "\n\r") || strings.TrimFunc(r.Target, unicode.IsSpace) != r.Target {
			return nil, fmt.Errorf("cannot write a purge plan for %q (a line break or surrounding blanks): use paths without them", r.Target)
		}
		fmt.Fprintf(&b, "%s %s\n", r.Kind, r.Target)
	}
	return b.Bytes(), nil
}

func removeFile(path string) (string, error) {
	err := os.Remove(path)
	if errors.Is(err, fs.ErrNotExist) {
		return "absent", nil
	}
	if err != nil {
		return "", err
	}
	return "removed", fsutil.SyncDir(filepath.Dir(path))
}

func removeTree(path string) (string, error) {
	if _, err := os.Lstat(path); errors.Is(err, fs.ErrNotExist) {
		return "absent", nil
	}
	return "removed", os.RemoveAll(path)
}

// removeEmptyDir removes a parent directory setup created (e.g. /etc/hubd)
// only when nothing else has been put there since.
func removeEmptyDir(path string) (string, error) {
	ents, err := os.ReadDir(path)
	if errors.Is(err, fs.ErrNotExist) {
		return "absent", nil
	}
	if err != nil {
		return "", err
	}
	if len(ents) > 0 {
		return "kept", nil
	}
	return "removed", os.Remove(path)
}

// deleteAccount runs userdel or groupdel unless the account is gone.
func (o Options) deleteAccount(ctx context.Context, tool, name string, lookup func(string) error) (string, error) {
	if lookup(name) != nil {
		return "absent", nil
	}
	_, err := o.Run.Run(ctx, tool, name)
	return "removed", err
}

func userExists(name string) error {
	_, err := user.Lookup(name)
	return err
}

func groupExists(name string) error {
	_, err := user.LookupGroup(name)
	return err
}
