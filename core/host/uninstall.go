package host

import (
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

	"github.com/hubd/hubd/internal/fsutil"
)

// Uninstall removes what setup installed: first the sudoers rule (the one
// privilege the hub has), then the PAM service, unit, alias, helper and
// runtime directories. The configuration, data, logs, backups, shared
// environment, accounts and groups stay, so a later setup picks up where
// the hub was; with purge they go too, but only what setup created (see
// Record): nothing that existed before setup is ever removed. Like setup
// it stops at the first failure and can be run again.
func Uninstall(ctx context.Context, o Options, purge bool, out io.Writer) error {
	if err := o.validate(); err != nil {
		return err
	}
	rec, err := LoadRecord(o.RecordFile())
	if err != nil {
		return err
	}
	type action struct {
		name string
		do   func() (string, error)
	}
	remove := func(path string) action {
		return action{path, func() (string, error) { return removeFile(path) }}
	}
	var acts []action
	if o.Systemd {
		acts = append(acts, action{"stop and disable " + o.Unit(), func() (string, error) {
			if _, err := os.Stat(o.UnitFile()); err != nil {
				return "absent", nil
			}
			_, err := o.Run.Run(ctx, "systemctl", "disable", "--now", o.Unit())
			return "done", err
		}})
	}
	acts = append(acts, remove(o.SudoersFile()), remove(o.PAMFile()), remove(o.UnitFile()), remove(o.ProfileFile()))
	if o.Systemd {
		acts = append(acts, action{"systemctl daemon-reload", func() (string, error) {
			_, err := o.Run.Run(ctx, "systemctl", "daemon-reload")
			return "done", err
		}})
	}
	if rec.InstalledHelper {
		acts = append(acts, remove(o.Config.Spawner.HelperPath))
	}
	own := map[string]bool{
		o.Config.SharedEnv.Path: true,
		filepath.Join(o.Config.SharedEnv.KernelSpecDirectory, o.Config.SharedEnv.KernelName): true,
	}
	var kept []string
	gone := map[string]bool{}
	for _, d := range o.dirs() {
		own[d.path] = true
		switch {
		case !slices.Contains(rec.CreatedDirs, d.path):
		case d.runtime:
			gone[d.path] = true
			acts = append(acts, action{d.path, func() (string, error) { return removeTree(d.path) }})
		case !purge:
			kept = append(kept, d.path)
		}
	}
	if purge {
		if rec.CreatedConfig {
			acts = append(acts, remove(o.ConfigPath))
		}
		for _, u := range rec.CreatedUsers {
			acts = append(acts, action{"user " + u, func() (string, error) { return o.deleteAccount(ctx, "userdel", u, userExists) }})
		}
		for _, g := range rec.CreatedGroups {
			acts = append(acts, action{"group " + g, func() (string, error) { return o.deleteAccount(ctx, "groupdel", g, groupExists) }})
		}
		// hubd's own directories go whole; parents setup had to create
		// (/etc/hubd, /opt/hubd) only when empty, after the record that
		// may live in one of them.
		var parents []string
		for _, d := range slices.Backward(rec.CreatedDirs) {
			switch {
			case gone[d]:
			case own[d]:
				acts = append(acts, action{d, func() (string, error) { return removeTree(d) }})
			default:
				parents = append(parents, d)
			}
		}
		acts = append(acts, remove(o.RecordFile()))
		for _, d := range parents {
			acts = append(acts, action{d, func() (string, error) { return removeEmptyDir(d) }})
		}
	} else {
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
			fmt.Fprintf(out, "\nuninstall stopped; not done: %s\nfix the problem above and run `hubd uninstall` again.\n", listOrNone(left))
			return fmt.Errorf("%s: %w", a.name, err)
		}
		fmt.Fprintf(out, "%-8s  %s\n", status, a.name)
	}
	if len(kept) > 0 {
		fmt.Fprintf(out, "\nkept (data and accounts; `hubd uninstall --purge%s` removes them): %s\n", o.configFlag(), strings.Join(kept, "; "))
	}
	fmt.Fprintln(out, "uninstall done.")
	return nil
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
