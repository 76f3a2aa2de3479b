package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/hubd/hubd/backups"
	"github.com/hubd/hubd/core/config"
	"github.com/hubd/hubd/core/store"
	"github.com/hubd/hubd/internal/fsutil"
	"github.com/hubd/hubd/internal/version"
	"github.com/hubd/hubd/upgrade"
)

func cmdUpgradeDB(ctx context.Context, e *env, args []string) int {
	fs := e.flags("upgrade-db", "upgrade-db [--dry-run] [--config PATH]", `
Bring the database to the schema version this hubd needs. Prints the plan
(from version, to version, each step), takes a backup of the database and
the configuration before the first step, applies every pending step in one
transaction (an interrupted upgrade leaves the database as it was) and
prints where the backup is. With nothing pending it says so and changes
nothing. Stop the hub first: hubd refuses to upgrade a database in use.`)
	dryRun := fs.Bool("dry-run", false, "print the plan and change nothing")
	if code, done := parse(fs, args); done {
		return code
	}
	cfg, err := e.loadConfig()
	if err != nil {
		return e.fail("%v", err)
	}
	if pid := fsutil.Holder(fsutil.LockPath(cfg.Data.DB)); pid != 0 && !*dryRun {
		return e.fail("hubd (pid %d) is running on %s: stop it first (systemctl stop hubd), upgrade, then start it again", pid, cfg.Data.DB)
	}
	s, err := store.Open(ctx, cfg.Data.DB, store.Options{ReadOnly: *dryRun})
	if err != nil {
		return e.fail("%v", err)
	}
	defer s.Close()

	plan, err := upgrade.MakePlan(ctx, s.DB(), upgrade.Steps())
	if err != nil {
		return e.fail("%s: %v", cfg.Data.DB, err)
	}
	printPlan(e.stdout, cfg.Data.DB, plan)
	if !plan.Pending() || *dryRun {
		if *dryRun && plan.Pending() {
			fmt.Fprintln(e.stdout, "dry run: nothing was changed")
		}
		return 0
	}
	backup, err := upgradeWithBackup(ctx, e.stdout, cfg, s)
	if err != nil {
		return e.fail("%v", err)
	}
	fmt.Fprintf(e.stdout, "database upgraded to schema version %d\n", plan.To)
	if backup != "" {
		fmt.Fprintf(e.stdout, "the backup taken before the upgrade is %s\n", backup)
	}
	return 0
}

func printPlan(w io.Writer, path string, p upgrade.Plan) {
	switch {
	case !p.Pending():
		fmt.Fprintf(w, "%s is at schema version %d, the newest this hubd knows: nothing to do\n", path, p.From)
	case p.From == 0:
		fmt.Fprintf(w, "%s is empty: it will be created at schema version %d\n", path, p.To)
	default:
		fmt.Fprintf(w, "%s: schema version %d → %d\n", path, p.From, p.To)
		for _, s := range p.Steps {
			fmt.Fprintf(w, "  step %d: %s\n", s.Version, s.Name)
		}
	}
}

// upgradeWithBackup applies the pending steps, taking a backup of the
// database and configuration right before the first one (not for an empty
// database). It returns the backup's path.
func upgradeWithBackup(ctx context.Context, out io.Writer, cfg config.Config, s *store.Store) (string, error) {
	var backupPath string
	var configFiles []string
	if cfg.Source != "" {
		configFiles = []string{cfg.Source}
	}
	_, err := upgrade.Apply(ctx, s.DB(), upgrade.Steps(), upgrade.Options{
		Before: func(ctx context.Context, p upgrade.Plan) error {
			fmt.Fprintf(out, "backing up %s to %s …\n", cfg.Data.DB, cfg.Backups.Dir)
			info, err := backups.Create(ctx, backups.CreateOptions{
				Dir:         cfg.Backups.Dir,
				DB:          s.DB(),
				DBPath:      cfg.Data.DB,
				ConfigFiles: configFiles,
				HubdVersion: version.Version,
				Label:       "pre-upgrade",
			})
			if err != nil {
				return fmt.Errorf("backup failed, nothing was upgraded: %w", err)
			}
			backupPath = info.Path
			fmt.Fprintf(out, "backup written: %s\n", info.Path)
			return nil
		},
		Progress: func(st upgrade.Step) { fmt.Fprintf(out, "applying step %d: %s\n", st.Version, st.Name) },
	})
	return backupPath, err
}

// openState opens the database for the hub: it holds the lock file, creates
// an empty database at the newest schema, and refuses an older schema
// (unless hub.auto_upgrade_db, then it upgrades with a backup) or a newer
// one. The caller releases the lock and closes the store.
func openState(ctx context.Context, out io.Writer, cfg config.Config) (*store.Store, *fsutil.Lock, error) {
	lock, pid, err := fsutil.TryLock(fsutil.LockPath(cfg.Data.DB))
	if errors.Is(err, fsutil.ErrLocked) {
		return nil, nil, fmt.Errorf("another hubd (pid %d) is already running on %s", pid, cfg.Data.DB)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("%w: the hub's user needs write access to %s", err, cfg.Data.DB)
	}
	s, err := store.Open(ctx, cfg.Data.DB, store.Options{})
	if err != nil {
		lock.Release()
		return nil, nil, err
	}
	err = s.CreateOrCheck(ctx)
	var behind *upgrade.BehindError
	if errors.As(err, &behind) && cfg.Hub.AutoUpgradeDB {
		fmt.Fprintf(out, "hub.auto_upgrade_db is set: upgrading %s from schema %d to %d\n", cfg.Data.DB, behind.DB, behind.Binary)
		_, err = upgradeWithBackup(ctx, out, cfg, s)
	}
	if err != nil {
		s.Close()
		lock.Release()
		return nil, nil, fmt.Errorf("%s: %w", cfg.Data.DB, err)
	}
	return s, lock, nil
}
