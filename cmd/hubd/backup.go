package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/hubd/hubd/backups"
	"github.com/hubd/hubd/core/admin/client"
	"github.com/hubd/hubd/core/admin/wire"
	"github.com/hubd/hubd/core/config"
	"github.com/hubd/hubd/core/store"
	"github.com/hubd/hubd/internal/fsutil"
	"github.com/hubd/hubd/internal/version"
	"github.com/hubd/hubd/upgrade"
)

func cmdBackup(ctx context.Context, e *env, args []string) int {
	actions := []action{
		{"create", backupCreate},
		{"list", backupList},
		{"verify", backupVerify},
		{"restore", backupRestore},
		{"prune", backupPrune},
	}
	return e.dispatch(ctx, "backup", `Usage: hubd backup <action> [--config PATH] [flags]

Actions:
  create   snapshot the database and config into a new archive (the hub may keep running)
  list     show the backups, newest first
  verify   check an archive's checksums and the database inside it
  restore  replace the database with the one in an archive (the hub must be stopped)
  prune    remove old backups (backups.keep, backups.max_age)

Backups live in backups.dir (default /var/backups/hubd) as hubd-<UTC time>[-label].tar.gz.
Run `+"`hubd backup <action> --help`"+` for an action's flags.
`, actions, args)
}

func backupCreate(ctx context.Context, e *env, args []string) int {
	fs := e.flags("backup create", "backup create [--label L] [--dir D] [--config PATH]", `
Take a consistent snapshot of the database (VACUUM INTO; the hub may keep
running and writing) and write it with the configuration file and a
manifest of sha256 checksums into one archive, mode 0600.`)
	label := fs.String("label", "manual", "label added to the file name (lowercase letters, digits, dashes)")
	dir := fs.String("dir", "", "backup directory (default backups.dir)")
	cfg, code, done := e.backupArgs(fs, args, dir)
	if done {
		return code
	}
	return e.withHubOrLock(ctx, cfg, *dir, "backup create", func(c *client.Client) int {
		// Through the hub: its one-backup-at-a-time lock (this waits for a
		// backup under way) and its audit log apply.
		b, err := c.CreateBackup(ctx, *label, e.wireProgress())
		if err != nil {
			return e.fail("backup failed: %v", err)
		}
		fmt.Fprintf(e.stdout, "backup written to %s (%s, schema version %d) by the running hub\n", b.Path, backups.HumanSize(b.Size), b.SchemaVersion)
		return 0
	}, func() int {
		// store.Open would create an empty database; there is nothing to back up.
		if _, err := os.Stat(cfg.Data.DB); err != nil {
			return e.fail("database %s: %v: check data.db in the configuration", cfg.Data.DB, err)
		}
		s, err := store.Open(ctx, cfg.Data.DB, store.Options{})
		if err != nil {
			return e.fail("%v", err)
		}
		defer s.Close()
		var configs []string
		if cfg.Source != "" {
			configs = append(configs, cfg.Source)
		}
		info, err := s.Backup(ctx, backups.CreateOptions{
			Dir: *dir, ConfigFiles: configs, HubdVersion: version.Version, Label: *label, Progress: e.progress(),
		})
		if err != nil {
			return e.fail("backup failed: %v", err)
		}
		fmt.Fprintf(e.stdout, "backup written to %s (%s, schema version %d)\n", info.Path, backups.HumanSize(info.Size), info.Manifest.SchemaVersion)
		return 0
	})
}

// withHubOrLock runs viaHub when a hub holds the database, through its
// admin socket, so the hub's own locks and audit log apply; otherwise it
// takes the hub's lock itself (no hub can start meanwhile) and runs alone.
// dir is the backup directory asked for: a running hub only writes to its
// own backups.dir.
func (e *env) withHubOrLock(ctx context.Context, cfg config.Config, dir, what string, viaHub func(*client.Client) int, alone func() int) int {
	lock, pid, err := fsutil.TryLock(fsutil.LockPath(cfg.Data.DB))
	switch {
	case errors.Is(err, fsutil.ErrLocked):
		if filepath.Clean(dir) != filepath.Clean(cfg.Backups.Dir) {
			return e.fail("the hub (pid %d) is running and works on its own backups.dir %s; stop it to %s in %s, or leave out --dir", pid, cfg.Backups.Dir, what, dir)
		}
		c := &client.Client{Socket: cfg.Admin.Socket}
		if _, err := c.WhoAmI(ctx); err != nil {
			return e.fail("the hub (pid %d) holds the database, so %s goes through its admin socket, which refused: %v", pid, what, err)
		}
		return viaHub(c)
	case err != nil:
		return e.fail("%v: %s needs write access to %s", err, what, filepath.Dir(cfg.Data.DB))
	}
	defer lock.Release()
	return alone()
}

// wireProgress prints a running hub's backup progress like progress does.
func (e *env) wireProgress() func(wire.Progress) {
	p := e.progress()
	return func(w wire.Progress) { p(backups.Progress{Stage: w.Stage, Done: w.Done, Total: w.Total}) }
}

// jsonInfo is one backup in `list --json`.
type jsonInfo struct {
	Path     string            `json:"path"`
	Size     int64             `json:"size"`
	Manifest *backups.Manifest `json:"manifest,omitempty"`
	Error    string            `json:"error,omitempty"`
}

func backupList(_ context.Context, e *env, args []string) int {
	fs := e.flags("backup list", "backup list [--json] [--dir D] [--config PATH]", `
List the backups, newest first, with size, schema version and label. A
damaged archive is listed with what is wrong with it.`)
	asJSON := fs.Bool("json", false, "print JSON instead of a table")
	dir := fs.String("dir", "", "backup directory (default backups.dir)")
	_, code, done := e.backupArgs(fs, args, dir)
	if done {
		return code
	}
	list, err := backups.List(*dir)
	if err != nil {
		return e.fail("%v", err)
	}
	if *asJSON {
		out := make([]jsonInfo, 0, len(list))
		for _, info := range list {
			j := jsonInfo{Path: info.Path, Size: info.Size}
			if info.Err != nil {
				j.Error = info.Err.Error()
			} else {
				j.Manifest = &info.Manifest
			}
			out = append(out, j)
		}
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(out); err != nil {
			return e.fail("%v", err)
		}
		return 0
	}
	if len(list) == 0 {
		fmt.Fprintf(e.stdout, "no backups in %s; make one with `hubd backup create`\n", *dir)
		return 0
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "CREATED (UTC)\tSIZE\tSCHEMA\tLABEL\tFILE")
	for _, info := range list {
		if info.Err != nil {
			fmt.Fprintf(tw, "?\t%s\t?\t?\t%s (unreadable: %v)\n", backups.HumanSize(info.Size), info.Path, info.Err)
			continue
		}
		m := info.Manifest
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\n", m.Created.UTC().Format("2006-01-02 15:04:05"), backups.HumanSize(info.Size), m.SchemaVersion, m.Label, info.Path)
	}
	if err := tw.Flush(); err != nil {
		return e.fail("%v", err)
	}
	return 0
}

func backupVerify(ctx context.Context, e *env, args []string) int {
	fs := e.flags("backup verify", "backup verify ARCHIVE", `
Read the whole archive: every member against its sha256 in the manifest,
then PRAGMA integrity_check on the database inside.`)
	if code, done := parse(fs, args); done {
		return code
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return 2
	}
	info, err := backups.Verify(ctx, fs.Arg(0))
	if err != nil {
		return e.fail("verify failed: %v", err)
	}
	m := info.Manifest
	fmt.Fprintf(e.stdout, "ok: %s (schema version %d, made %s by hubd %s on %s, %d members)\n",
		info.Path, m.SchemaVersion, m.Created.UTC().Format(time.RFC3339), m.HubdVersion, m.Host, len(m.Members))
	return 0
}

func backupRestore(ctx context.Context, e *env, args []string) int {
	fs := e.flags("backup restore", "backup restore ARCHIVE [--stop-hub] [--with-config] [--yes]", `
Replace the database with the one in ARCHIVE. The archive is checked
first; the current database is saved as a "pre-restore" backup; the new
file is moved into place in one rename. The hub must not be running: stop
it with `+"`systemctl stop hubd`"+` or pass --stop-hub. Config files are only
written back with --with-config.`)
	stopHub := fs.Bool("stop-hub", false, "send SIGTERM to a running hub and wait for it to exit")
	withConfig := fs.Bool("with-config", false, "also restore the config file(s) to where they were")
	yes := fs.Bool("yes", false, "do not ask for confirmation (needed without a terminal)")
	if code, done := parse(fs, args); done {
		return code
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return 2
	}
	archive := fs.Arg(0)
	cfg, err := e.loadConfig()
	if err != nil {
		return e.fail("%v", err)
	}
	m, err := backups.ReadManifest(archive)
	if err != nil {
		return e.fail("%v", err)
	}
	if !*yes {
		if !isTerminal(e.stdin) {
			return e.fail("restore replaces %s: pass --yes to confirm (there is no terminal to ask on)", cfg.Data.DB)
		}
		fmt.Fprintf(e.stdout, "Replace %s with the database from %s\n(made %s, schema version %d)? A safety backup is taken first. [y/N] ",
			cfg.Data.DB, archive, m.Created.UTC().Format(time.RFC3339), m.SchemaVersion)
		answer, _ := bufio.NewReader(e.stdin).ReadString('\n')
		if a := strings.ToLower(strings.TrimSpace(answer)); a != "y" && a != "yes" {
			fmt.Fprintln(e.stdout, "nothing was changed")
			return 1
		}
	}
	res, err := backups.Restore(ctx, backups.RestoreOptions{
		Archive: archive, DBPath: cfg.Data.DB, Dir: cfg.Backups.Dir,
		RestoreConfig: *withConfig, StopHub: *stopHub, MaxSchema: upgrade.Latest(),
		HubdVersion: version.Version, Progress: e.progress(),
	})
	if err != nil {
		return e.fail("restore failed: %v", err)
	}
	fmt.Fprintf(e.stdout, "restored %s from %s (schema version %d)\n", cfg.Data.DB, archive, m.SchemaVersion)
	for _, c := range res.Configs {
		if c.Restored {
			fmt.Fprintf(e.stdout, "restored config file %s\n", c.Path)
		} else {
			fmt.Fprintf(e.stdout, "config file %s was not restored; it is in the archive as %s (use --with-config, or `tar -xzf %s %s`)\n", c.Path, c.Member, archive, c.Member)
		}
	}
	if m.SchemaVersion < upgrade.Latest() {
		fmt.Fprintf(e.stdout, "the restored database is at schema version %d: run `hubd upgrade-db` before starting the hub\n", m.SchemaVersion)
	}
	if res.StoppedPid != 0 {
		fmt.Fprintf(e.stdout, "the hub (pid %d) was stopped: start it again with `systemctl start hubd`\n", res.StoppedPid)
	}
	if res.SafetyBackup.Path != "" {
		fmt.Fprintf(e.stdout, "the previous database was saved in %s\n", res.SafetyBackup.Path)
	}
	return 0
}

func backupPrune(ctx context.Context, e *env, args []string) int {
	fs := e.flags("backup prune", "backup prune [--keep N] [--max-age AGE] [--dir D]", `
Remove old backups: all but the newest N and/or those older than AGE. The
newest backup is always kept, and files that are not readable hubd
backups are never touched.`)
	keep := fs.Int("keep", -1, "keep the newest N backups, 0 for no count limit (default backups.keep)")
	maxAge := fs.String("max-age", "", `remove backups older than this, e.g. "30d" or "12h"; "0" for no age limit (default backups.max_age)`)
	dir := fs.String("dir", "", "backup directory (default backups.dir)")
	cfg, code, done := e.backupArgs(fs, args, dir)
	if done {
		return code
	}
	if *keep < 0 {
		*keep = cfg.Backups.Keep
	}
	age := cfg.Backups.MaxAge.D()
	if *maxAge != "" {
		var err error
		if age, err = parseAge(*maxAge); err != nil {
			fmt.Fprintf(e.stderr, "hubd: --max-age: %v\n", err)
			return 2
		}
	}
	report := func(removed []string, err error) int {
		for _, path := range removed {
			fmt.Fprintf(e.stdout, "removed %s\n", path)
		}
		if err != nil {
			return e.fail("%v", err)
		}
		fmt.Fprintf(e.stdout, "removed %d backup(s) from %s\n", len(removed), *dir)
		return 0
	}
	return e.withHubOrLock(ctx, cfg, *dir, "backup prune", func(c *client.Client) int {
		secs := int64(age / time.Second)
		res, err := c.PruneBackups(ctx, wire.PruneRequest{Keep: keep, MaxAgeSeconds: &secs})
		var paths []string
		for _, b := range res.Removed {
			paths = append(paths, b.Path)
		}
		return report(paths, err)
	}, func() int {
		removed, err := backups.Prune(*dir, *keep, age, time.Now())
		var paths []string
		for _, info := range removed {
			paths = append(paths, info.Path)
		}
		return report(paths, err)
	})
}

// parseAge reads a Go duration or a whole number of days ("30d").
func parseAge(s string) (time.Duration, error) {
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil || n < 0 {
			return 0, fmt.Errorf("%q is not a number of days: write it like \"30d\"", s)
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	var d config.Duration
	if err := d.UnmarshalText([]byte(s)); err != nil {
		return 0, err
	}
	if d < 0 {
		return 0, fmt.Errorf("%q is negative", s)
	}
	return d.D(), nil
}

// progress prints a line per stage and per tenth done: enough to show a
// long backup is moving without flooding a log.
func (e *env) progress() func(backups.Progress) {
	stage, tenth := "", int64(-1)
	return func(p backups.Progress) {
		t := int64(10)
		if p.Total > 0 {
			t = min(10, p.Done*10/p.Total)
		}
		if p.Stage == stage && t == tenth {
			return
		}
		stage, tenth = p.Stage, t
		fmt.Fprintf(e.stdout, "%s: %3d%% of %s\n", p.Stage, t*10, backups.HumanSize(p.Total))
	}
}

// isTerminal reports whether r is an interactive terminal.
func isTerminal(r io.Reader) bool {
	f, ok := r.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// backupArgs finishes a backup command that takes no arguments: it parses
// the flags, loads the configuration and defaults --dir to backups.dir.
func (e *env) backupArgs(fs *flag.FlagSet, args []string, dir *string) (config.Config, int, bool) {
	if code, done := parse(fs, args); done {
		return config.Config{}, code, true
	}
	if fs.NArg() > 0 {
		fs.Usage()
		return config.Config{}, 2, true
	}
	cfg, err := e.loadConfig()
	if err != nil {
		return config.Config{}, e.fail("%v", err), true
	}
	if *dir == "" {
		*dir = cfg.Backups.Dir
	}
	return cfg, 0, false
}
