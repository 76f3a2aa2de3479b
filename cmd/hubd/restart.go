package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"golang.org/x/sys/unix"

	"github.com/hubd/hubd/core/admin/client"
	"github.com/hubd/hubd/core/config"
	"github.com/hubd/hubd/core/store"
	"github.com/hubd/hubd/internal/version"
	"github.com/hubd/hubd/upgrade"
)

func cmdRestart(ctx context.Context, e *env, args []string) int {
	fs := e.flags("restart", "restart [--reason TEXT] [--no-wait] [--if-running] [--config PATH]", `
Ask the running hub to restart itself in place: it hands its listening
sockets to a fresh copy of the installed hubd binary, so no connection is
refused and every user's server keeps running. Members of the hub's group
may run it (the restart-hub alias calls it); it is rate limited and written
to the audit log with your uid. When the installed hubd needs a newer
database schema (and hub.auto_upgrade_db is off), the restart is refused and
the running hub keeps serving until the database is upgraded.`)
	reason := fs.String("reason", "", "why, for the audit log")
	noWait := fs.Bool("no-wait", false, "return once the hub has accepted the request")
	ifRunning := fs.Bool("if-running", false, "do nothing, successfully, when no hub answers on the admin socket (for package upgrades)")
	timeout := fs.Duration("timeout", 2*time.Minute, "how long to wait for the hub to be back")
	if code, done := parse(fs, args); done {
		return code
	}
	cfg, err := e.loadConfig()
	if err != nil {
		return e.fail("%v", err)
	}
	c := &client.Client{Socket: cfg.Admin.Socket}
	before, err := c.Status(ctx)
	var down *client.NotRunningError
	if *ifRunning && errors.As(err, &down) {
		fmt.Fprintf(e.stdout, "no hub answers on %s: nothing to restart\n", cfg.Admin.Socket)
		return 0
	}
	if err != nil {
		return e.fail("%v", err)
	}
	if err := canServe(ctx, cfg); err != nil {
		return e.fail("%v", err)
	}
	res, err := c.Restart(ctx, *reason)
	var api *client.APIError
	if errors.As(err, &api) && api.RetryAfter > 0 {
		return e.fail("%v (try again in %s)", err, api.RetryAfter)
	}
	if err != nil {
		return e.fail("%v", err)
	}
	fmt.Fprintln(e.stdout, res.Message)
	if *noWait {
		return 0
	}
	// The hub is back when a new process (a later start time) answers.
	deadline := time.Now().Add(*timeout)
	fresh := &client.Client{Socket: cfg.Admin.Socket}
	for time.Now().Before(deadline) {
		st, err := fresh.Status(ctx)
		if err == nil && st.Started.After(before.Started) {
			fmt.Fprintf(e.stdout, "hub restarted: version %s, %d servers running\n", st.Version, st.Servers["running"])
			return 0
		}
		select {
		case <-ctx.Done():
			return e.fail("interrupted while waiting for the hub")
		case <-time.After(200 * time.Millisecond):
		}
	}
	return e.fail("the hub did not come back within %s: see `journalctl -u hubd`", *timeout)
}

// canServe refuses a restart into this hubd when it could not serve the
// database: the new process would exit at once and the hub would be down,
// while the running one can keep serving until the admin upgrades the
// schema. A database the caller cannot read (a member) is not checked.
func canServe(ctx context.Context, cfg config.Config) error {
	if cfg.Hub.AutoUpgradeDB {
		return nil
	}
	// Access, not a trial open: no code of hubd opens and closes a
	// descriptor on a database file (in a hub that would drop SQLite's
	// locks).
	if unix.Access(cfg.Data.DB, unix.R_OK) != nil {
		return nil
	}
	st, err := store.Open(ctx, cfg.Data.DB, store.Options{ReadOnly: true})
	if err != nil {
		return nil
	}
	defer st.Close()
	var behind *upgrade.BehindError
	if err := st.Check(ctx); errors.As(err, &behind) {
		return fmt.Errorf("not restarting into hubd %s: %v. The running hub keeps serving meanwhile; switch with `systemctl stop hubd && hubd upgrade-db && systemctl start hubd` (or set hub.auto_upgrade_db = true)",
			version.Version, err)
	}
	return nil
}
