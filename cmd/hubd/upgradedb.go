package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/hubd/hubd/core/server"
	"github.com/hubd/hubd/core/store"
	"github.com/hubd/hubd/internal/fsutil"
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
	if _, err := os.Stat(cfg.Data.DB); errors.Is(err, os.ErrNotExist) {
		if err := server.CheckNotLost(cfg, 0); err != nil {
			return e.fail("%v", err)
		}
	}
	var s *store.Store
	if *dryRun {
		// Reading the plan changes nothing, so it needs no lock and works
		// beside a running hub (with this binary's idea of the schema).
		s, err = store.Open(ctx, cfg.Data.DB, store.Options{ReadOnly: true})
	} else {
		// The hub's own lock: no hub can start while the steps run.
		lock, pid, lerr := fsutil.TryLock(fsutil.LockPath(cfg.Data.DB))
		if errors.Is(lerr, fsutil.ErrLocked) {
			return e.fail("hubd (pid %d) is running on %s: stop it first (systemctl stop hubd), upgrade, then start it again", pid, cfg.Data.DB)
		}
		if lerr != nil {
			return e.fail("%v: upgrading needs write access to %s", lerr, cfg.Data.DB)
		}
		defer lock.Release()
		s, err = store.Open(ctx, cfg.Data.DB, store.Options{})
	}
	if err != nil {
		return e.fail("%v", err)
	}
	defer s.Close()

	plan, err := s.Plan(ctx)
	if err != nil {
		return e.fail("%s: %v", cfg.Data.DB, err)
	}
	if err := server.CheckNotLost(cfg, plan.From); err != nil {
		return e.fail("%v", err)
	}
	printPlan(e.stdout, cfg.Data.DB, plan)
	if !plan.Pending() || *dryRun {
		if *dryRun && plan.Pending() {
			fmt.Fprintln(e.stdout, "dry run: nothing was changed")
		}
		return 0
	}
	backup, err := server.UpgradeWithBackup(ctx, e.stdout, cfg, s)
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
